"""The torch front end as a whole: the fallback chain, its errors, names and sources, and the
same findings as the ONNX export of the same model."""

from __future__ import annotations

import inspect
import io
import threading
import time
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from deconvlint.config.settings import Settings  # noqa: E402
from deconvlint.core.ir import Graph, Kind  # noqa: E402
from deconvlint.engine import check_graph  # noqa: E402
from deconvlint.errors import TraceError  # noqa: E402
from deconvlint.frontends.torch.load import graph_from_exported, load_module, read_with  # noqa: E402

pytestmark = pytest.mark.torch
HERE = "test_torch_chain.py"


def rules(graph: Graph) -> list[tuple]:
    """Findings without value names (``output``), which differ between readers."""
    return [
        (f.node, f.rule, f.severity, _unnamed(f.metrics)) for f in check_graph(graph, Settings())
    ]


def _unnamed(metrics: dict) -> dict:
    kept = {k: v for k, v in metrics.items() if k not in ("output", "outputs")}
    if "outputs" in metrics:  # the coverage at each output, without the value's name
        kept["outputs"] = [
            {k: v for k, v in o.items() if k != "output"} for o in metrics["outputs"]
        ]
    return kept


def _unnamed_nodes(metrics: dict) -> dict:
    """Metrics without node names either (they differ between a module and its export)."""
    kept = {k: v for k, v in metrics.items() if k not in ("nodes", "shuffle", "compensated_by")}
    if "outputs" in kept:
        kept["outputs"] = [{k: v for k, v in o.items() if k != "node"} for o in kept["outputs"]]
    return kept


def line_of(obj, text: str) -> int:
    """The line of ``obj``'s source that contains ``text``."""
    lines, start = inspect.getsourcelines(obj)
    (index,) = [i for i, line in enumerate(lines) if text in line]
    return start + index


# --- the chain -----------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.act(self.up(x))
        x = F.interpolate(x, scale_factor=2)
        return F.interpolate(x, scale_factor=2, mode="nearest-exact")


class Decoder(nn.Module):
    """Three readers, one naming: qualified modules, ``module:function#n``, root ``:f``."""

    def __init__(self, gate: str = "none") -> None:
        super().__init__()
        self.gate = gate
        self.block = Block()
        self.head = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        if self.gate == "size" and x.shape[-1] < 64:  # fx cannot branch on a traced size
            x = x + 0
        if self.gate == "data" and x.sum() > -1e9:  # nor export on a traced value
            x = x * 1
        y = self.block(x)
        y += 1  # in place
        y = F.relu_(y)
        out = F.interpolate(self.head(y), scale_factor=0.5, mode="bilinear")
        return {"image": out, "extras": [torch.tanh(out), (y,)]}


EXPECTED_NAMES = [
    "block.up.0",
    "block.act",
    "block:interpolate",
    "block:interpolate#2",
    "add",
    "relu",
    "head",
    "interpolate",
    "tanh",
]


@pytest.mark.parametrize(
    ("gate", "reader"), [("none", "fx"), ("size", "export"), ("data", "hooks")]
)
def test_each_reader_is_reached_and_names_agree(gate: str, reader: str) -> None:
    """The forward is recorded whatever the branch; the one fallback that reads each variant
    names the layers as the recording does."""
    inputs = (torch.randn(1, 4, 8, 8),)
    graph, used = load_module(Decoder(gate), inputs)
    assert used == "hooks" and not graph.notes
    assert [n.name for n in read_with(reader, Decoder(gate), inputs).nodes] == [
        n.name for n in graph.nodes
    ]
    names = [n.name for n in graph.nodes]
    if gate == "size":  # x + 0 is kept by export: a pointwise node at the root
        assert names[0] == "add" and names[1:] == [
            *EXPECTED_NAMES[:4],
            "add#2",
            *EXPECTED_NAMES[5:],
        ]
    elif gate == "data":
        assert names[0] == "mul" and names[1:] == EXPECTED_NAMES
    else:
        assert names == EXPECTED_NAMES
    assert len(graph.outputs) == 3  # the dict, the list and the tuple inside it
    assert [f[1] for f in rules(graph) if f[0] == "block.up.0"] == ["DL001"]


def test_sources_point_at_the_constructions_and_calls() -> None:
    expected = {
        "block.up.0": line_of(Block, "self.up = nn.Sequential("),  # a Sequential's child
        "block.act": line_of(Block, "self.act = nn.ReLU"),
        "block:interpolate": line_of(Block, "F.interpolate(x, scale_factor=2)"),
        "head": line_of(Decoder, "self.head = nn.Conv2d"),
        "tanh": line_of(Decoder, "torch.tanh(out)"),
    }
    inputs = (torch.randn(1, 4, 8, 8),)
    for reader in ("fx", "export", "hooks"):
        graph = read_with(reader, Decoder(), inputs)
        sources = {n.name: n.source for n in graph.nodes}
        for name, line in expected.items():
            assert sources[name] and sources[name].endswith(f"{HERE}:{line}"), (reader, name)


def test_in_place_ops_keep_the_connectivity() -> None:
    graph = read_with("hooks", Decoder(), (torch.randn(1, 4, 8, 8),))
    by_name = {n.name: n for n in graph.nodes}
    assert by_name["add"].inputs == by_name["block:interpolate#2"].outputs
    assert by_name["relu"].inputs == by_name["add"].outputs
    assert by_name["head"].inputs == by_name["relu"].outputs
    assert by_name["block.act"].inputs == by_name["block.up.0"].outputs


def test_an_exported_program_reads_like_the_module() -> None:
    model, inputs = Decoder(), (torch.randn(1, 4, 8, 8),)
    program = torch.export.export(model.eval(), inputs, strict=False)
    direct = graph_from_exported(program)
    through, _ = load_module(model, inputs)
    assert [n.name for n in direct.nodes] == [n.name for n in through.nodes]
    assert rules(direct) == rules(through)
    assert {n.name: n.source for n in direct.nodes}["head"].endswith(
        f"{HERE}:{line_of(Decoder, 'self.head = nn.Conv2d')}"
    )


# --- errors --------------------------------------------------------------------------------------


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)

    def forward(self, x):
        raise ValueError("no weights for this variant")


def test_a_forward_that_raises_names_each_reader() -> None:
    with pytest.raises(TraceError) as raised:
        load_module(Raises(), (torch.randn(1, 4, 8, 8),))
    message = str(raised.value)
    assert "\n" not in message
    # the same cause under every reader is stated once, naming them all
    assert (
        message
        == "could not read the model: hooks, fx, export: ValueError: no weights for this variant"
    )


def test_wrong_example_inputs_fail_every_reader() -> None:
    with pytest.raises(TraceError) as raised:
        load_module(Decoder(), (torch.randn(1, 3, 8, 8),))
    message = str(raised.value)
    assert message.startswith(
        "could not read the model: hooks, fx, export: the model does not run on the example inputs"
    )
    assert message.count("expected input[1, 3, 8, 8]") == 1, message


def test_without_example_inputs_the_fallbacks_say_they_need_them() -> None:
    with pytest.raises(TraceError) as raised:
        load_module(Decoder("size"))
    message = str(raised.value)
    assert "fx: TraceError" in message
    assert message.endswith("; hooks, export: needs example inputs")


class Hangs(nn.Module):
    """fx refuses the branch, export its guard; the forward itself never returns."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)
        self.stop = threading.Event()  # lets the test end the thread it leaves behind

    def forward(self, x):
        while x.sum() > -1e9 and not self.stop.is_set():
            time.sleep(0.01)
        return self.up(x)


def test_a_forward_that_never_returns_times_out() -> None:
    model = Hangs()
    start = time.monotonic()
    try:
        with pytest.raises(TraceError, match=r"hooks: the forward pass did not return within 1 s"):
            load_module(model, (torch.randn(1, 4, 4, 4),), timeout=1)
    finally:
        model.stop.set()
    assert time.monotonic() - start < 30


def test_lazy_modules_need_example_inputs() -> None:
    model = nn.Sequential(nn.LazyConvTranspose2d(4, 3, stride=2, padding=1))
    with pytest.raises(TraceError, match="example inputs are needed"):
        load_module(model)
    graph, reader = load_module(model, (torch.randn(1, 2, 8, 8),))
    assert reader == "hooks" and graph.nodes[0].in_channels == 2
    assert graph.nodes[0].kind is Kind.CONV_TRANSPOSE


def test_the_model_is_left_as_it_was() -> None:
    model = Decoder("data").train()
    load_module(model, (torch.randn(1, 4, 8, 8),))
    assert all(m.training for m in model.modules())


# --- the same findings as the ONNX export --------------------------------------------------------


class ResizeConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.head(F.relu(self.up2(F.relu(self.up(x))))))


class Subpixel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.up = nn.Upsample(scale_factor=1.5, mode="nearest")

    def forward(self, x):
        return self.up(self.shuffle(self.conv(x)))


class Strided(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 3, 5, stride=2, padding=2, output_padding=1)

    def forward(self, x):
        y = self.down(x)
        return torch.tanh(self.up(torch.cat([y, y], 1)[:, :4]))


@pytest.mark.parametrize(
    ("model", "shape"),
    [(ResizeConv, (1, 4, 8, 8)), (Subpixel, (1, 2, 8, 8)), (Strided, (1, 3, 16, 16))],
)
def test_same_rules_and_metrics_as_the_onnx_export(model, shape) -> None:
    onnx = pytest.importorskip("onnx")
    from deconvlint.frontends.onnx.reader import graph_from_model

    module, inputs = model().eval(), (torch.randn(*shape),)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, buffer, dynamo=False)
    by_onnx = graph_from_model(onnx.load_from_string(buffer.getvalue()))

    def signature(graph: Graph) -> list[tuple]:  # without node names, which differ
        return [(f[1], f[2], _unnamed_nodes(f[3])) for f in rules(graph)]

    onnx_side = signature(by_onnx)
    for reader in ("fx", "export", "hooks"):
        torch_side = signature(read_with(reader, module, inputs))
        assert torch_side == onnx_side, reader
    assert onnx_side  # every model has something to say

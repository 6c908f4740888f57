"""The torch front end, op by op: every family through every reader that can read it.

Each model is read by fx, export and hooks on their own (``read_with``) and must give the same
nodes (name, op type, kind, geometry); its findings (rules and metrics) are compared with the
expected ones.  The fallback chain, errors, names and sources are in ``test_torch_chain.py``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from deconvlint.config.settings import Settings  # noqa: E402
from deconvlint.core.ir import Graph, Kind, ResizeSpec, ShiftAxis, WindowAxis  # noqa: E402
from deconvlint.engine import check_graph  # noqa: E402
from deconvlint.frontends.torch.load import read_with  # noqa: E402
from deconvlint.frontends.torch.window import TRAINABLE_FILTER  # noqa: E402

pytestmark = pytest.mark.torch
READERS = ("fx", "export", "hooks")


def x4(c: int = 4, n: int = 8) -> tuple:
    return (torch.randn(1, c, n, n),)


def layout(graph: Graph) -> list[tuple]:
    """What must agree between readers: names, op types, kinds and geometry."""
    return [
        (
            n.name,
            n.op_type,
            n.kind.value,
            n.window,
            n.resize,
            n.block,
            n.shift,
            None if n.fixed_kernel is None else n.fixed_kernel.round(9).tolist(),
            (n.in_channels, n.out_channels, n.groups, n.has_bias),
        )
        for n in graph.nodes
    ]


def findings(graph: Graph) -> list[tuple]:
    return [
        (f.node, f.rule, f.severity, f.metrics.get("pattern"))
        for f in check_graph(graph, Settings())
    ]


def read_all(model: nn.Module, inputs: tuple, readers=READERS) -> dict[str, Graph]:
    model.eval()
    graphs = {r: read_with(r, model, inputs) for r in readers}
    first = graphs[readers[0]]
    for reader, graph in graphs.items():
        assert layout(graph) == layout(first), f"{reader} differs from {readers[0]}"
        assert findings(graph) == findings(first), reader
        assert graph.outputs and graph.inputs, reader
    return graphs


def node(graph: Graph, name: str):
    (found,) = [n for n in graph.nodes if n.name == name]
    return found


# --- transposed convolutions -------------------------------------------------------------------


class ConvTransposes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose1d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2, bias=False)
        self.up3 = nn.ConvTranspose3d(2, 2, 3, stride=2, padding=1, dilation=2)

    def forward(self, a, b, c):
        return self.up1(a), self.up2(b, output_size=(17, 17)), self.up3(c)


def test_conv_transposes_with_output_size_and_nested_outputs() -> None:
    inputs = (torch.randn(1, 4, 5), torch.randn(1, 4, 8, 8), torch.randn(1, 2, 4, 4, 4))
    graphs = read_all(ConvTransposes(), inputs)
    graph = graphs["fx"]
    assert node(graph, "up1").window == (WindowAxis(3, 2, 1, 1, 1, 1),)
    up2 = node(graph, "up2")  # output_size=(17, 17): (8-1)*2 - 2 + 4 = 16, so op = 1
    assert up2.window == (WindowAxis(4, 2, 1, 1, 1, 1),) * 2
    assert (up2.in_channels, up2.out_channels, up2.groups, up2.has_bias) == (4, 6, 2, False)
    assert node(graph, "up3").window == (WindowAxis(3, 2, 2, 1, 1, 0),) * 3
    assert len(graph.outputs) == 3
    assert [(f[0], f[1], f[3]) for f in findings(graph) if f[1] in ("DL001", "DL002")] == [
        ("up1", "DL001", [[1, 2]]),
        ("up3", "DL002", [[0, 3]] * 3),  # taps at -1, 1, 3: all odd
    ]


# --- convolutions ------------------------------------------------------------------------------


class Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.same = nn.Conv2d(4, 4, 4, padding="same")
        self.valid = nn.Conv2d(4, 4, 3, padding="valid")
        self.reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.dilated = nn.Conv1d(4, 4, 3, stride=2, dilation=2, padding=2)
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        blur = (taps[:, None] * taps[None, :] / 64).expand(4, 1, 4, 4).clone()
        self.blur = nn.Conv2d(4, 4, 4, padding=2, groups=4, bias=False)
        self.blur.weight = nn.Parameter(blur, requires_grad=False)
        self.trained = nn.Conv2d(4, 4, 4, padding=2, groups=4, bias=False)
        self.trained.weight = nn.Parameter(blur.clone())

    def forward(self, x, y):
        x = self.reflect(self.valid(self.same(x)))
        return self.blur(x), self.trained(x), self.dilated(y)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_convs_padding_strings_modes_and_fixed_filters() -> None:
    graphs = read_all(Convs(), (torch.randn(1, 4, 12, 12), torch.randn(1, 4, 16)))
    graph = graphs["export"]
    assert node(graph, "same").window == (WindowAxis(4, 1, 1, 1, 2, 0),) * 2  # odd pad at the end
    assert node(graph, "valid").window == (WindowAxis(3, 1, 1, 0, 0, 0),) * 2
    assert node(graph, "reflect").window == (WindowAxis(3, 1, 1, 1, 1, 0),) * 2
    assert node(graph, "dilated").window == (WindowAxis(3, 2, 2, 2, 2, 0),)
    taps = np.array([1, 3, 3, 1]) / 8
    np.testing.assert_allclose(node(graph, "blur").fixed_kernel, np.outer(taps, taps))
    # trainable but equal on every channel: read by value, as the ONNX export is, with a note
    np.testing.assert_allclose(node(graph, "trained").fixed_kernel, np.outer(taps, taps))
    assert node(graph, "trained").notes == (TRAINABLE_FILTER,)
    assert node(graph, "blur").notes == ()
    assert node(graph, "blur").groups == 4


class NormedBlur(nn.Module):
    """A depthwise blur under weight_norm: its weight is computed from two parameters."""

    def __init__(self, trainable: bool) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        conv = nn.Conv2d(4, 4, 4, padding=2, groups=4, bias=False)
        conv.weight = nn.Parameter((taps[:, None] * taps[None, :] / 64).expand(4, 1, 4, 4).clone())
        self.blur = nn.utils.parametrizations.weight_norm(conv)
        self.blur.requires_grad_(trainable)

    def forward(self, x):
        return self.blur(x)


@pytest.mark.parametrize("trainable", [True, False])
def test_a_weight_normed_filter_is_trainable_as_its_parameters_are(trainable: bool) -> None:
    # the readers compute the weight without autograd (where it never requires grad): whether
    # it is trained comes from the parametrization's parameters, with or without inputs
    model = NormedBlur(trainable)
    graphs = read_all(model, x4())
    graphs["fx without inputs"] = read_with("fx", model)
    expected = (TRAINABLE_FILTER,) if trainable else ()
    for reader, graph in graphs.items():
        assert node(graph, "blur").fixed_kernel is not None, reader
        assert node(graph, "blur").notes == expected, reader


# --- resizes -----------------------------------------------------------------------------------


class Resizes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.bilinear = nn.UpsamplingBilinear2d(scale_factor=2)  # align_corners=True

    def forward(self, x, v):
        a = self.up(x)
        b = F.interpolate(x, size=(12, 12), mode="nearest")
        c = F.interpolate(x, scale_factor=1.5, mode="nearest-exact")
        d = F.interpolate(x, scale_factor=1.3, mode="bilinear", recompute_scale_factor=True)
        e = F.interpolate(x, scale_factor=2.5, mode="bicubic")
        f = F.interpolate(x, scale_factor=0.5, mode="area")
        g = F.interpolate(v, scale_factor=2, mode="trilinear")
        return a, b, c, d, e, f, g, self.bilinear(x)


def test_resizes() -> None:
    inputs = (torch.randn(1, 2, 8, 8), torch.randn(1, 2, 4, 4, 4))
    graph = read_all(Resizes(), inputs, readers=("fx", "hooks"))["fx"]
    # in the aten graph, area mode is adaptive average pooling, and is named so
    exported = layout(read_with("export", Resizes(), inputs))
    assert exported[5][:2] == ("adaptive_avg_pool2d", "adaptive_avg_pool2d")
    assert [row[2:] for row in exported] == [row[2:] for row in layout(graph)]
    assert [row[:2] for row in exported[:5]] == [row[:2] for row in layout(graph)[:5]]
    assert node(graph, "up").resize == ResizeSpec(
        "nearest", (Fraction(2),) * 2, "asymmetric", "floor", -0.75, False, (8, 8), (16, 16)
    )
    assert node(graph, "interpolate").resize.scales == (Fraction(3, 2),) * 2  # size 12 / 8
    exact = node(graph, "interpolate#2").resize
    assert (exact.coordinate_transformation_mode, exact.nearest_mode) == (
        "half_pixel",
        "round_prefer_ceil",
    )
    recomputed = node(graph, "interpolate#3").resize  # floor(8 * 1.3) = 10: scale 10/8
    assert recomputed.scales == (Fraction(5, 4),) * 2 and recomputed.mode == "linear"
    cubic = node(graph, "interpolate#4").resize
    assert (cubic.mode, cubic.scales, cubic.cubic_coeff_a) == (
        "cubic",
        (Fraction(5, 2),) * 2,
        -0.75,
    )
    area = node(graph, "interpolate#5")
    assert area.kind is Kind.AVG_POOL and area.window == (WindowAxis(2, 2),) * 2
    assert node(graph, "interpolate#6").resize.spatial_rank == 3
    corners = node(graph, "bilinear").resize
    assert corners.coordinate_transformation_mode == "align_corners"
    assert (corners.input_lengths, corners.output_lengths) == ((8, 8), (16, 16))
    rules = {(f[0], f[1]) for f in findings(graph)}
    assert ("interpolate", "DL005") in rules  # nearest x3/2: footprints [2, 1]
    assert ("interpolate#2", "DL005") in rules


def test_scale_factor_is_kept_without_recompute() -> None:
    # torch maps with the given 1.3 (not 10/8) when recompute_scale_factor is not set
    class M(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=1.25, mode="nearest")

    graph = read_with("fx", M(), (torch.randn(1, 1, 7, 7),))
    resize = graph.nodes[0].resize
    assert resize.scales == (Fraction(5, 4),) * 2 and resize.output_lengths == (8, 8)


def test_size_without_example_inputs_is_unknown_not_guessed() -> None:
    class M(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(24, 24))

    graph = read_with("fx", M())
    (up,) = graph.nodes
    assert up.resize.scales == (None, None)
    assert any("example inputs" in note for note in up.notes)


# --- shuffles, unpooling, pools ----------------------------------------------------------------


class Shuffles(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shuffle = nn.PixelShuffle(2)
        self.unshuffle = nn.PixelUnshuffle(2)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x):
        y = self.unshuffle(self.shuffle(x))
        y = F.pixel_shuffle(y, 2)
        pooled, indices = self.pool(y)
        z = self.unpool(pooled, indices)
        pooled2, indices2 = F.max_pool2d(z, 3, stride=2, padding=1, return_indices=True)
        return F.max_unpool2d(pooled2, indices2, 3, stride=2, padding=1, output_size=z.shape[2:])


def test_shuffles_and_unpooling() -> None:
    graphs = read_all(Shuffles(), (torch.randn(1, 8, 4, 4),))
    graph = graphs["hooks"]
    assert node(graph, "shuffle").kind is Kind.DEPTH_TO_SPACE
    assert node(graph, "shuffle").block == (2, 2)
    assert node(graph, "unshuffle").kind is Kind.SPACE_TO_DEPTH
    assert node(graph, "pixel_shuffle").depth_to_space_mode == "CRD"
    unpool = node(graph, "unpool")
    assert unpool.kind is Kind.MAX_UNPOOL and unpool.inputs == (node(graph, "pool").outputs[0],)
    assert node(graph, "max_unpool2d").window == (WindowAxis(3, 2, 1, 1, 1),) * 2
    assert ("unpool", "DL001") not in {(f[0], f[1]) for f in findings(graph)}  # k = s = 2
    assert ("max_unpool2d", "DL001") in {(f[0], f[1]) for f in findings(graph)}


class Pools(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.avg = nn.AvgPool2d(3, stride=2, padding=1)
        self.max = nn.MaxPool2d(2)
        self.lp = nn.LPPool2d(2, 2)
        self.adaptive = nn.AdaptiveAvgPool2d(1)
        self.uneven = nn.AdaptiveAvgPool2d(3)

    def forward(self, x):
        return self.adaptive(self.lp(self.max(self.avg(x)))), self.uneven(x)


def test_pools() -> None:
    graph = read_all(Pools(), x4(2, 16))["fx"]
    assert node(graph, "avg").kind is Kind.AVG_POOL
    assert node(graph, "avg").window == (WindowAxis(3, 2, 1, 1, 1),) * 2
    assert node(graph, "max").kind is Kind.MAX_POOL
    assert node(graph, "lp").window == (WindowAxis(2, 2),) * 2
    assert node(graph, "adaptive").kind is Kind.AVG_POOL  # 2 -> 1: a pool k = s = 2
    assert node(graph, "adaptive").window == (WindowAxis(2, 2),) * 2
    assert node(graph, "uneven").kind is Kind.BARRIER  # 16 -> 3: windows differ
    assert node(graph, "uneven").notes


# --- pads and slices -----------------------------------------------------------------------------


class Shifts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.zero = nn.ZeroPad2d((1, 0, 2, 0))
        self.reflect = nn.ReflectionPad2d(1)
        self.replicate = nn.ReplicationPad2d(2)
        self.constant = nn.ConstantPad2d(1, 0.5)

    def forward(self, x):
        x = self.constant(self.replicate(self.reflect(self.zero(x))))
        x = F.pad(x, (0, 0, 3, 1), mode="reflect")
        return x[:, :, 1:, ::2]


def test_pads_and_slices() -> None:
    graphs = read_all(Shifts(), x4(2, 8), readers=("fx", "hooks"))
    graph = graphs["fx"]
    assert node(graph, "zero").shift == (ShiftAxis(-2), ShiftAxis(-1))  # (left, right, top, bottom)
    assert node(graph, "replicate").shift == (ShiftAxis(-2), ShiftAxis(-2))
    assert node(graph, "pad").shift == (ShiftAxis(-3), ShiftAxis(0))
    assert node(graph, "getitem").shift == (ShiftAxis(1, 1), ShiftAxis(0, 2))
    # export writes the slice as one aten.slice per axis: same geometry, two nodes
    exported = read_with("export", Shifts(), x4(2, 8))
    assert [n.shift for n in exported.nodes[-2:]] == [
        (ShiftAxis(1, 1), ShiftAxis(0, 1)),
        (ShiftAxis(0, 1), ShiftAxis(0, 2)),
    ]
    assert layout(exported)[:-2] == layout(graph)[:-1]


# --- functional convolutions -----------------------------------------------------------------------


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 2, 3, 3))
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", (taps[:, None] * taps / 16).expand(2, 1, 3, 3).clone())
        self.weight1d = nn.Parameter(torch.randn(2, 2, 4))

    def forward(self, x, y):
        x = F.conv_transpose2d(x, self.weight, stride=2, padding=1, output_padding=1)
        x = F.conv2d(x, self.blur, padding=1, groups=2)
        return x, F.conv_transpose1d(y, self.weight1d, stride=2, padding=1)


def test_functional_convolutions() -> None:
    graphs = read_all(Functional(), (torch.randn(1, 4, 4, 4), torch.randn(1, 2, 6)))
    graph = graphs["export"]
    up = node(graph, "conv_transpose2d")
    assert up.window == (WindowAxis(3, 2, 1, 1, 1, 1),) * 2
    assert (up.in_channels, up.out_channels, up.has_bias) == (4, 2, False)
    blur = node(graph, "conv2d")
    np.testing.assert_allclose(blur.fixed_kernel, np.outer([1, 2, 1], [1, 2, 1]) / 16)
    assert node(graph, "conv_transpose1d").window == (WindowAxis(4, 2, 1, 1, 1, 0),)
    rules = findings(graph)
    assert ("conv_transpose2d", "DL001", "info", [[1, 2], [1, 2]]) in rules  # the blur evens it


# --- pointwise, joins and barriers -----------------------------------------------------------------


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.act = nn.LeakyReLU(0.2)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(4 * 16 * 16, 2)

    def forward(self, x):
        y = self.drop(self.act(self.norm(self.up(x))))
        y = F.gelu(y) * 2 + torch.sigmoid(y)
        joined = torch.cat([y, F.relu(y)], dim=1)
        wide = torch.cat([y, y], dim=3)
        return joined, wide, self.head(y.flatten(1))


def test_pointwise_joins_and_barriers() -> None:
    graph = read_all(Mixed(), x4(4, 8))["fx"]
    kinds = {n.name: n.kind for n in graph.nodes}
    assert kinds["norm"] is kinds["act"] is kinds["drop"] is kinds["gelu"] is Kind.POINTWISE
    assert kinds["mul"] is Kind.POINTWISE  # one data operand
    assert kinds["add"] is Kind.JOIN  # two
    assert kinds["cat"] is Kind.JOIN and kinds["cat#2"] is Kind.BARRIER
    assert node(graph, "cat#2").inputs == node(graph, "add").outputs  # [y, y]: one input
    assert kinds["flatten"] is Kind.BARRIER and kinds["head"] is Kind.BARRIER
    assert node(graph, "norm").op_type == "BatchNorm2d"

"""One finding per mistake: a stack is one DL003, an output already explained by a layer or
stack finding gets no DL004, DL006 is opt-in, and ``warn=True`` leaves info findings alone."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import deconvlint
from deconvlint.config.settings import Settings
from deconvlint.core.ir import Graph, Kind, Node
from deconvlint.rules.registry import run_rules
from tests.core.test_analysis import chain_graph, layer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _found(findings) -> list[tuple[str, str]]:
    return [(f.node, f.rule) for f in findings]


def test_one_uneven_layer_is_one_finding_carrying_the_output() -> None:
    graph = chain_graph(
        "ConvTranspose2d(k=3, s=2, p=1, op=1, name=up) -> Conv2d(k=3, p=1, name=out)"
    )
    (dl001,) = run_rules(graph, Settings())
    assert dl001.rule == "DL001" and dl001.node == "up"
    (output,) = dl001.metrics["outputs"]
    assert output["output"] == "v2" and output["node"] == "out"
    assert output["pattern"] == [[5, 4], [5, 4]] and output["ratio"] == pytest.approx(1.5625)
    # DL004 alone still reports the output: nothing else explains it then
    assert _found(run_rules(graph, Settings(select=("DL004",)))) == [("out", "DL004")]


def test_a_stack_is_one_dl003_on_its_last_layer_not_one_per_path() -> None:
    # a U-Net's decoder: up1 -> up2 -> up3, and a skip that brings a second path (a 2-stack
    # up2 -> up3 from the skip's side) to the same last layer
    nodes = [
        layer("ConvTranspose1d(k=3, s=2, p=1, op=1)", "up1", ("x",), "a"),
        layer("ConvTranspose1d(k=3, s=2, p=1, op=1)", "up2", ("m",), "b"),
        layer("Conv1d(k=3, s=2, p=1)", "down", ("x",), "d"),
        layer("Conv1d(k=3, s=2, p=1)", "down2", ("d",), "d2"),
        Node("cat", "Concat", Kind.JOIN, ("a", "d"), ("m",)),
        layer("ConvTranspose1d(k=3, s=2, p=1, op=1)", "up3", ("n",), "y"),
        Node("cat2", "Concat", Kind.JOIN, ("b", "x"), ("n",)),
    ]
    # topological order: down, down2 are not on the way; the joins come before their users
    order = ["down", "down2", "up1", "cat", "up2", "cat2", "up3"]
    by_name = {n.name: n for n in nodes}
    graph = Graph("g", [by_name[n] for n in order], ("x",), ("y",))
    found = run_rules(graph, Settings())
    stacks = [f for f in found if f.rule == "DL003"]
    assert len(stacks) == 1, [f.message for f in stacks]
    assert stacks[0].node == "up3" and stacks[0].metrics["nodes"] == ["up1", "up2", "up3"]
    assert [f.rule for f in found] == ["DL001", "DL001", "DL001", "DL003"]
    assert [o["output"] for o in stacks[0].metrics["outputs"]] == ["y"]


def test_dl006_is_opt_in() -> None:
    graph = chain_graph("Conv2d(k=3, s=2, p=1, name=down) -> ReLU()")
    assert run_rules(graph, Settings()) == []
    assert run_rules(graph, Settings(select=("DL00",))) == []
    assert _found(run_rules(graph, Settings(extend_select=("DL006",)))) == [("down", "DL006")]


def test_cyclegan_decoder_is_two_layers_and_one_stack() -> None:
    report = deconvlint.check(str(EXAMPLES / "cyclegan_decoder.onnx"), config=Settings())
    assert _found(report.findings) == [
        ("decoder.up1", "DL001"),
        ("decoder.up2", "DL001"),
        ("decoder.up2", "DL003"),
    ]
    (output,) = report.findings[-1].metrics["outputs"]
    assert output == {
        "output": "image",
        "node": "decoder.tanh",
        "pattern": [[17, 15, 16, 15], [17, 15, 16, 15]],
        "period": [4, 4],
        "max_coverage": 289,
        "min_coverage": 225,
        "ratio": 1.2844,
        "cv": 0.0745,
    }
    assert "at output 'image': H [17, 15, 16, 15] x W [17, 15, 16, 15]" in str(report)


def test_warn_true_issues_no_python_warning_for_info_findings() -> None:
    path = str(EXAMPLES / "stylegan_blur.onnx")  # its only finding is an info
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = deconvlint.check(path, config=Settings(), warn=True)
    assert [f.severity for f in report.findings] == ["info"]
    assert [w for w in caught if issubclass(w.category, deconvlint.DeconvLintWarning)] == []


@pytest.mark.optional
def test_monai_default_unet_is_one_finding_per_mistake() -> None:
    torch = pytest.importorskip("torch")
    nets = pytest.importorskip("monai", reason="MONAI is not installed").networks.nets
    model = nets.UNet(
        spatial_dims=2, in_channels=1, out_channels=1, channels=(16, 32, 64, 128), strides=(2, 2, 2)
    ).eval()
    report = deconvlint.check(model, (torch.randn(1, 1, 64, 64),), config=Settings())
    ups = [
        "model.1.submodule.1.submodule.2.conv",
        "model.1.submodule.2.conv",
        "model.2.conv",
    ]
    assert _found(report.findings) == [*((u, "DL001") for u in ups), ("model.2.conv", "DL003")]
    assert report.findings[-1].metrics["nodes"] == ups
    headers = [line for line in str(report).splitlines() if line.startswith("<UNet>:")]
    assert len(headers) == 4, str(report)
    assert not report.findings[0].metrics.get("outputs")  # the stack carries the output
    assert [o["ratio"] for o in report.findings[-1].metrics["outputs"]] == [25]

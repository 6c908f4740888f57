"""The public API end to end: chains -> real ONNX files -> load_graph, and no torch import."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import deconvlint.frontends.onnx.reader as onnx_frontend
from deconvlint.core.chainspec import parse_chain
from deconvlint.core.ir import Graph, Kind, Node
from deconvlint.frontends.onnx import context as onnx_context
from deconvlint.frontends.onnx import fold as onnx_fold
from deconvlint.frontends.onnx import infer as onnx_infer
from deconvlint.frontends.onnx import ops as onnx_ops
from deconvlint.frontends.onnx import prepare as onnx_prepare
from deconvlint.frontends.onnx import resize as onnx_resize
from deconvlint.frontends.onnx import shuffle as onnx_shuffle
from deconvlint.frontends.onnx import skim as onnx_skim
from deconvlint.frontends.onnx import tensors as onnx_tensors
from deconvlint.frontends.onnx.reader import graph_from_model, load_graph
from tests.support import onnx_factory
from tests.support.cli import REPO
from tests.support.onnx_factory import model_from_chain, run, save


def assert_same_geometry(chain: list[Node], graph: Graph) -> None:
    assert [n.name for n in graph.nodes] == [n.name for n in chain]
    for expected, got in zip(chain, graph.nodes, strict=True):
        where = f"{expected.name} ({expected.op_type})"
        shuffles = {Kind.DEPTH_TO_SPACE, Kind.SPACE_TO_DEPTH}
        if expected.kind in shuffles and set(expected.block or ()) == {1}:
            # A block-1 shuffle is the identity; on a tensor whose spatial size is 1 too, its
            # Reshape -> Transpose -> Reshape export reads the same either way (1-D CRD and space
            # to depth share the permutation), so either kind is a correct reading.
            assert got.kind in shuffles, where
        else:
            assert got.kind is expected.kind, where
        assert got.window == expected.window, where
        assert got.block == expected.block, where
        assert got.shift == expected.shift, where
        if expected.kind is Kind.DEPTH_TO_SPACE:
            assert got.depth_to_space_mode == expected.depth_to_space_mode, where
        if expected.fixed_kernel is not None:
            np.testing.assert_allclose(got.fixed_kernel, expected.fixed_kernel, rtol=1e-6)
        if expected.resize is not None:
            assert got.resize is not None, where
            for field in ("scales", "mode", "coordinate_transformation_mode", "nearest_mode"):
                assert getattr(got.resize, field) == getattr(expected.resize, field), where


def _per_axis(draw, rank: int, values) -> str:
    picked = [draw(values) for _ in range(rank)]
    return str(picked[0]) if len(set(picked)) == 1 else str(tuple(picked))


@st.composite
def layer(draw, rank: int) -> tuple[str, float]:
    """One chain-spec layer and how much it may grow each axis."""
    kind = draw(
        st.sampled_from(
            [
                "ConvTranspose",
                "Conv",
                "AvgPool",
                "MaxPool",
                "MaxUnpool",
                "Blur",
                "Upsample",
                "PixelShuffle",
                "PixelUnshuffle",
                "Pad",
                "Slice",
                "ReLU",
            ]
        )
    )
    suffix = f"{rank}d"
    if kind == "ConvTranspose":
        k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        extent = (k - 1) * d
        args = (
            f"k={k}, s={s}, d={d}, p={draw(st.integers(0, extent))}, "
            f"pe={draw(st.integers(0, extent))}, op={draw(st.integers(0, s - 1))}"
        )
        return f"ConvTranspose{suffix}({args})", s + k
    if kind in ("Conv", "MaxPool"):
        k, d = draw(st.integers(1, 4)), draw(st.integers(1, 2))
        p = draw(st.integers(0, k - 1))
        return f"{kind}{suffix}(k={k}, s={draw(st.integers(1, 3))}, p={p}, d={d})", 1
    if kind == "AvgPool":
        k = draw(st.integers(1, 4))
        return f"AvgPool{suffix}(k={k}, s={draw(st.integers(1, 3))}, p={k // 2})", 1
    if kind == "MaxUnpool":
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        return f"MaxUnpool{suffix}(k={k}, s={s}, p={draw(st.integers(0, (k - 1) // 2))})", s + k
    if kind == "Blur":
        taps = draw(st.sampled_from(["(1, 1)", "(1, 2, 1)", "(1, 3, 3, 1)"]))
        return f"Blur{suffix}(taps={taps}, p={draw(st.integers(0, 1))})", 1
    if kind == "Upsample":
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "cubic"]))
        scale = draw(st.sampled_from(["2", "3", "3/2", "5/2", "4/3"]))
        corners = ", align_corners=1" if mode == "linear" and draw(st.booleans()) else ""
        return f"Upsample(scale={scale}, mode={mode}, rank={rank}{corners})", 3
    if kind in ("PixelShuffle", "PixelUnshuffle"):
        r = _per_axis(draw, rank, st.integers(1, 3))
        return f"{kind}(r={r}, rank={rank})", 3 if kind == "PixelShuffle" else 1
    if kind == "Pad":
        # an all-zero Pad pads no spatial axis: POINTWISE, not SHIFT
        return f"Pad{suffix}(p={_per_axis(draw, rank, st.integers(1, 2))})", 1.5
    if kind == "Slice":
        start = _per_axis(draw, rank, st.integers(0, 2))
        return f"Slice{suffix}(start={start}, step={_per_axis(draw, rank, st.integers(1, 2))})", 1
    return "ReLU()", 1


@st.composite
def chain_spec(draw) -> str:
    rank = draw(st.integers(1, 3))
    layers = [draw(layer(rank)) for _ in range(draw(st.integers(1, 4)))]
    growth = math.prod(g for _, g in layers)
    assume((6 * growth) ** rank <= 300_000)  # keep the models (and MaxUnpool indices) small
    return " -> ".join(text for text, _ in layers)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    spec=chain_spec(),
    opset=st.sampled_from([13, 18, 19]),
    weights=st.sampled_from(["ones", "random"]),
)
def test_round_trip_keeps_kinds_and_geometry(
    tmp_path_factory, spec: str, opset: int, weights: str
) -> None:
    chain = parse_chain(spec)
    try:
        model = model_from_chain(
            chain,
            spatial=(6,) * chain[0].spatial_rank if chain[0].spatial_rank else None,
            opset=opset,
            weights=weights,
        )
    except ValueError:  # a length fell to zero, or a block does not divide
        assume(False)
    onnx.checker.check_model(model, full_check=True)
    path = save(model, tmp_path_factory.mktemp("chain") / "model.onnx")
    graph = load_graph(path)
    assert_same_geometry(chain, graph)
    assert graph.inputs == ("v0",) and graph.outputs == (f"v{len(chain)}",)
    assert graph.name == "model" and not graph.notes


FACTORY_SPECS = [
    "ConvTranspose2d(k=3, s=2, p=1, op=1) -> ReLU() -> Conv2d(k=3, p=1, s=2)",
    "Blur2d(taps=(1, 3, 3, 1), p=1) -> AvgPool2d(k=2, s=2) -> MaxPool2d(k=3, p=1, d=2)",
    "MaxUnpool2d(k=2, s=2) -> Upsample(scale=3/2, mode=linear) -> Upsample(scale=2, mode=cubic)",
    "PixelShuffle(r=2) -> PixelUnshuffle(r=2) -> PixelShuffle(r=(2, 3)) -> Pad2d(p=1)",
    "ConvTranspose1d(k=4, s=2, p=1) -> PixelShuffle(r=3, rank=1) -> Slice1d(start=1, step=2)",
    "ConvTranspose3d(k=3, s=2, p=1, op=1) -> PixelShuffle(r=2, rank=3) -> "
    "PixelUnshuffle(r=2, rank=3) -> Slice3d(start=2, step=-1)",
]


@pytest.mark.parametrize("spec", FACTORY_SPECS)
def test_factory_models_run_in_onnxruntime(spec: str) -> None:
    chain = parse_chain(spec)
    model = model_from_chain(chain, spatial=(8,) * chain[0].spatial_rank, weights="random")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    expected = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    (out,) = run(model, {"v0": np.ones(shape, np.float32)})
    assert list(out.shape) == expected
    assert_same_geometry(chain, graph_from_model(model))


def test_factory_refuses_impossible_chains() -> None:
    with pytest.raises(ValueError, match="mixes spatial ranks"):
        model_from_chain(parse_chain("Conv1d(k=1) -> Conv2d(k=1)"))
    with pytest.raises(ValueError, match="output lengths"):
        model_from_chain(parse_chain("Conv2d(k=5)"), spatial=(3, 3))


def test_load_graph_names_the_graph_after_the_file(tmp_path: Path) -> None:
    chain = parse_chain("Upsample(scale=2) -> Conv2d(k=3, p=1)")
    graph = load_graph(save(model_from_chain(chain), tmp_path / "decoder.onnx"))
    assert graph.name == "decoder"
    assert graph.nodes[0].resize is not None and graph.nodes[0].resize.scales == (
        Fraction(2),
        Fraction(2),
    )
    assert graph.shapes["v2"] == (1, 4, 32, 32)


def test_front_end_never_imports_torch(tmp_path: Path) -> None:
    path = save(
        model_from_chain(parse_chain("ConvTranspose2d(k=4, s=2, p=1) -> ReLU()")),
        tmp_path / "m.onnx",
    )
    code = (
        "import sys, deconvlint.frontends.onnx.reader as m; g = m.load_graph(sys.argv[1]); "
        "assert g.nodes[0].kind.value == 'conv_transpose'; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "module",
    [
        onnx_frontend,
        onnx_context,
        onnx_fold,
        onnx_infer,
        onnx_ops,
        onnx_prepare,
        onnx_resize,
        onnx_shuffle,
        onnx_skim,
        onnx_tensors,
        onnx_factory,
    ],
)
def test_docstring_examples(module) -> None:
    failures, tried = doctest.testmod(module)
    assert tried and not failures

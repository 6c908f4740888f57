"""The weight-aware indexes (DL007/DL008) against brute force: torch on a constant input with the
real weights, for random layers and for the fixed cases of issue 5."""

from __future__ import annotations

import numpy as np
import pytest

from deconvlint.config.settings import Settings
from deconvlint.core import weights as wg
from deconvlint.core.chainspec import parse_chain
from deconvlint.core.ir import Graph, WindowAxis
from deconvlint.rules.registry import run_rules

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _conv_transpose_brute(kernel, bias, axes, groups, n=None):
    """Per output channel and phase, the interior of ``conv_transpose`` of an all-ones input."""
    rank = len(axes)
    n = n or max(a.kernel * a.dilation for a in axes) + 4
    x = torch.ones(1, kernel.shape[0], *([n] * rank), dtype=torch.float64)
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    y = fn(
        x,
        torch.from_numpy(kernel),
        None if bias is None else torch.from_numpy(bias),
        stride=tuple(a.stride for a in axes),
        padding=tuple(a.pads_begin for a in axes),
        dilation=tuple(a.dilation for a in axes),
        groups=groups,
    )[0].numpy()
    # interior: o in [(k-1)d - p, s(n-1) - p], where every tap reads a real input
    index = []
    for a, axis in enumerate(axes):
        lo = (axis.kernel - 1) * axis.dilation - axis.pads_begin
        hi = axis.stride * (n - 1) - axis.pads_begin
        assert hi - lo + 1 >= axis.stride, "input too short for a full period of interior"
        first = lo + (-lo) % axis.stride  # the first interior index of phase 0
        index.append(slice(first, first + axis.stride))
        del a
    return y[(slice(None), *index)]


@pytest.mark.parametrize("seed", range(60))
def test_conv_transpose_response_matches_torch_on_random_layers(seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    axes = []
    for _ in range(rank):
        k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, d * (k - 1) + 1))
        axes.append(WindowAxis(kernel=k, stride=s, dilation=d, pads_begin=p, pads_end=p))
    kernel = rng.normal(size=(c_in, c_out // groups, *[a.kernel for a in axes]))
    bias = rng.normal(size=c_out) if rng.random() < 0.5 else None
    expected = _conv_transpose_brute(kernel, bias, axes, groups)
    found = wg.conv_transpose_response(kernel, bias, axes, groups)
    np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-10, err_msg=f"{axes}")
    brute_indexes = [wg.checkerboard_index(r) for r in expected]
    np.testing.assert_allclose(wg.channel_indexes(found), brute_indexes, atol=1e-12)


def _layer_index(chain: str) -> float:
    nodes = parse_chain(chain)
    graph = Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],))
    found = run_rules(graph, Settings(select=("DL007",), rule_options={"DL007": {"max-index": 0}}))
    return max((f.metrics["checkerboard_index"] for f in found), default=0.0)


@pytest.mark.parametrize(
    ("taps", "k", "op", "free"),
    [
        ((1, 1, 1), 3, 1, False),
        ((0.5, 1, 0.5), 3, 1, True),
        ((0.25, 0.75, 0.75, 0.25), 4, 0, True),
        ((1, 2, 3, 4), 4, 0, False),
    ],
)
@pytest.mark.parametrize("rank", [1, 2])
def test_fixed_transposed_conv_cases(taps, k, op, free, rank):
    kernel = np.asarray(taps, dtype=float)
    for _ in range(rank - 1):
        kernel = np.multiply.outer(kernel, np.asarray(taps, dtype=float))
    kernel = kernel[None, None]
    axes = [WindowAxis(kernel=k, stride=2, pads_begin=1, pads_end=1, output_padding=op)] * rank
    brute = _conv_transpose_brute(kernel, None, axes, 1)
    index = wg.checkerboard_index(brute[0])
    assert (index < 1e-12) == free, (taps, brute[0], index)
    chain = f"ConvTranspose{rank}d(k={k}, s=2, p=1, op={op}, taps={tuple(taps)})"
    assert _layer_index(chain) == pytest.approx(index, abs=1e-6)
    if taps == (1, 2, 3, 4):
        assert brute[0].ravel()[:2].tolist() == ([6.0, 4.0] if rank == 1 else [36.0, 24.0])


def _subpixel_brute(kernel, bias, r, mode):
    """Conv + depth-to-space of an all-ones input, one r x r block of the interior."""
    n = kernel.shape[-1] + 4
    x = torch.ones(1, kernel.shape[1], n, n, dtype=torch.float64)
    y = F.conv2d(x, torch.from_numpy(kernel), None if bias is None else torch.from_numpy(bias))
    c = y.shape[1] // (r * r)
    if mode == "CRD":
        z = F.pixel_shuffle(y, r)
    else:  # the ONNX DepthToSpace DCR formula
        b, _, h, w = y.shape
        z = y.reshape(b, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h * r, w * r)
    return z[0, :, :r, :r].numpy()


@pytest.mark.parametrize("mode", ["CRD", "DCR"])
@pytest.mark.parametrize("seed", range(10))
def test_subpixel_response_matches_torch(seed, mode):
    rng = np.random.default_rng(seed)
    r, c, c_in, k = int(rng.integers(2, 4)), int(rng.integers(1, 4)), 2, int(rng.integers(1, 4))
    kernel = rng.normal(size=(c * r * r, c_in, k, k))
    bias = rng.normal(size=c * r * r)
    expected = _subpixel_brute(kernel, bias, r, mode)
    np.testing.assert_allclose(wg.subpixel_response(kernel, bias, (r, r), mode), expected)


def _icnr(c, c_in, k, r, rng):
    return np.repeat(rng.normal(size=(c, c_in, k, k)), r * r, axis=0)


def test_subpixel_fixed_cases():
    rng = np.random.default_rng(0)
    icnr = _icnr(3, 2, 3, 2, rng)
    assert max(wg.checkerboard_index(b) for b in _subpixel_brute(icnr, None, 2, "CRD")) < 1e-12
    # the same kernels in DCR order are not ICNR for that shuffle
    assert max(wg.checkerboard_index(b) for b in _subpixel_brute(icnr, None, 2, "DCR")) > 0.01
    default = torch.nn.Conv2d(2, 12, 3)  # PyTorch's default initialisation
    w, b = default.weight.detach().double().numpy(), default.bias.detach().double().numpy()
    assert max(wg.checkerboard_index(x) for x in _subpixel_brute(w, b, 2, "CRD")) > 0.01
    zero = np.zeros((4, 1, 1, 1))
    bias = np.array([0.0, 1.0, 2.0, 3.0])
    block = _subpixel_brute(zero, bias, 2, "CRD")[0]
    assert block.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert wg.checkerboard_index(block) == pytest.approx(1 - 36 / 56)


def test_dl008_flags_default_init_and_phase_bias_not_icnr():
    def dl008(chain):
        nodes = parse_chain(chain)
        graph = Graph("g", nodes, ("v0",), (nodes[-1].outputs[0],))
        return [f for f in run_rules(graph, Settings(select=("DL008",)))]

    assert not dl008("Conv2d(k=3, p=1, cin=2, cout=8, init=icnr, r=2) -> PixelShuffle(r=2)")
    found = dl008("Conv2d(k=1, cout=4, taps=(0,), bias=(0, 1, 2, 3)) -> PixelShuffle(r=2)")
    assert [f.metrics["response"] for f in found] == [[[0, 1], [2, 3]]]
    assert "biases" in found[0].message and "sub-kernels" not in found[0].message
    code = found[0].suggestions[0].code
    assert "repeat_interleave(r**2, dim=0)" in code and "# conv = model.layer0\n" in code
    assert "icnr_(conv.weight)" in code
    default = dl008("Conv2d(k=3, p=1, cin=2, cout=8, init=default) -> PixelShuffle(r=2)")
    assert "sub-kernels and biases" in default[0].message


def test_icnr_code_makes_a_free_layer():
    """The suggested code, run on a real conv, gives identical sub-kernels (index 0)."""
    conv = torch.nn.Conv2d(3, 3 * 4, 3, padding=1)
    model = torch.nn.Module()
    model.up = conv
    exec(wg.icnr_code("model.up", 2), {"model": model})
    w, b = conv.weight.detach().double().numpy(), conv.bias.detach().double().numpy()
    assert max(wg.checkerboard_index(x) for x in _subpixel_brute(w, b, 2, "CRD")) < 1e-12
    kernels, _ = wg.subpixel_subkernels(w, b, (2, 2), "CRD")
    assert max(wg.spread(k) for k in kernels) == 0.0


def _onnx_upsampler(kernel, op="ConvTranspose", mode=None):
    from onnx import helper

    from tests.support.onnx_factory import make_model, tensor, value_info

    c = kernel.shape[1] if op == "ConvTranspose" else kernel.shape[0]
    nodes = [
        helper.make_node(
            "ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], pads=[1] * 4
        )
        if op == "ConvTranspose"
        else helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    ]
    out = "y"
    if mode is not None:
        nodes.append(
            helper.make_node("DepthToSpace", ["y"], ["z"], name="shuffle", blocksize=2, mode=mode)
        )
        out = "z"
    cin = kernel.shape[0] if op == "ConvTranspose" else kernel.shape[1]
    del c
    return make_model(
        nodes, [value_info("x", [1, cin, 8, 8])], [value_info(out, None)], [tensor("w", kernel)]
    )


def test_onnx_initializers_feed_dl007_and_are_read_only_when_asked():
    from deconvlint.frontends.onnx.reader import graph_from_model

    taps = np.array([1.0, 2.0, 3.0, 4.0])
    graph = graph_from_model(_onnx_upsampler(np.outer(taps, taps)[None, None]))
    calls = []
    for node in graph.nodes:
        if node.weights is not None:
            source = node.weights
            node.weights = lambda source=source: calls.append(1) or source()
    assert run_rules(graph, Settings()) == [] and calls == []  # the default rules read none
    found = run_rules(graph, Settings(select=("DL007",)))
    assert calls and [f.metrics["response"] for f in found] == [[[36, 24], [24, 16]]]


@pytest.mark.parametrize(("mode", "flagged"), [("CRD", False), ("DCR", True)])
def test_onnx_depth_to_space_mode_decides_the_phase_order(mode, flagged):
    from deconvlint.frontends.onnx.reader import graph_from_model

    icnr_crd = _icnr(2, 3, 1, 2, np.random.default_rng(1)).astype(np.float32)
    graph = graph_from_model(_onnx_upsampler(icnr_crd, op="Conv", mode=mode))
    found = run_rules(graph, Settings(select=("DL008",)))
    assert bool(found) == flagged, [f.message for f in found]
    if found:
        assert found[0].node == "conv" and found[0].metrics["mode"] == "DCR"
        assert "base.repeat(r**2" in found[0].suggestions[0].code

"""deconvlint.core.geometry against the brute-force oracle, and the oracle against torch and onnxruntime.

Two referees in a row: first the oracle (``tests/support/oracle.py``, written from the definitions) is
checked against the frameworks on real modules with ones weights, borders included; then the
fast period-based geometry is checked against the oracle on thousands of random layers and
hundreds of random chains, 1-D to 3-D.  A failure prints the chain spec to paste into
``parse_chain`` and the oracle's interior next to the claimed pattern.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deconvlint.core import geometry
from deconvlint.core.chainspec import parse_chain, parse_layer
from deconvlint.core.ir import Kind, Node, ResizeSpec, WindowAxis
from tests.support import oracle
from tests.support.strategies import (
    chains,
    conv_transpose_axis,
    conv_transpose_layer,
    fixed_kernel_conv,
    op_on_a_pattern,
    resize_layer,
    resize_node,
    resize_spec,
    uneven_conv_transpose,
)


def examples(count: int) -> settings:
    """Hypothesis settings: ``count`` examples, no deadline (the brute force is the slow side)."""
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def definition_count(k: int, s: int, d: int, p: int) -> list[int]:
    """#{j in [0, k): (j*d - p) mod s == q}, literally."""
    return [sum(1 for j in range(k) if (j * d - p) % s == q) for q in range(s)]


def as_periodic(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two patterns over one common period (both are functions of index mod length)."""
    span = math.lcm(len(a), len(b))
    return np.tile(np.asarray(a, float), span // len(a)), np.tile(
        np.asarray(b, float), span // len(b)
    )


def check_chain(spec: str) -> None:
    nodes = parse_chain(spec)
    patterns = geometry.chain_patterns(nodes)
    assert len(patterns) == oracle.chain_rank(nodes), spec
    assert all(p.dtype == np.float64 and p.ndim == 1 for p in patterns), spec
    ok, detail = oracle.interior_matches(nodes, patterns)
    assert ok, f"{spec}\n{detail}\ngeometry: {[p.tolist() for p in patterns]}"


# ------------------------------------------------------------------------------------------------
# phase_pattern: the single-layer formula


@examples(3000)
@given(k=st.integers(1, 8), s=st.integers(1, 5), d=st.integers(1, 4), data=st.data())
def test_phase_pattern_is_the_tap_count_and_the_simulated_interior(k, s, d, data):
    p = data.draw(st.integers(0, d * (k - 1)), label="p")
    pattern = geometry.phase_pattern(k, s, d, p)
    assert len(pattern) == s
    assert pattern.tolist() == definition_count(k, s, d, p)
    nodes = [
        Node(
            "ct",
            "ConvTranspose1d",
            Kind.CONV_TRANSPOSE,
            ("x",),
            ("y",),
            window=(WindowAxis(k, s, d, p, p),),
        )
    ]
    ok, detail = oracle.interior_matches(nodes, [pattern])
    assert ok, detail


def test_phase_pattern_theorem_exhaustive():
    """Constant pattern <=> s | k and gcd(d, s) == 1 (every k<=12, s<=6, d<=6, p<=d*(k-1))."""
    for k in range(1, 13):
        for s in range(1, 7):
            for d in range(1, 7):
                for p in range(0, d * (k - 1) + 1):
                    pattern = geometry.phase_pattern(k, s, d, p)
                    constant = bool(np.all(pattern == pattern[0]))
                    assert constant == (k % s == 0 and math.gcd(d, s) == 1), (k, s, d, p)
                    # pads only rotate: P_p[q] = P_0[(q + p) mod s]
                    assert (
                        pattern.tolist() == np.roll(geometry.phase_pattern(k, s, d, 0), -p).tolist()
                    )
                    assert pattern.sum() == k


def test_phase_pattern_theorem_on_the_oracle():
    """The theorem itself, on simulated interiors (no geometry involved)."""
    for k in range(1, 9):
        for s in range(1, 6):
            for d in range(1, 5):
                for p in sorted({0, d * (k - 1) // 2, d * (k - 1)}):
                    node = parse_layer(f"ConvTranspose1d(k={k}, s={s}, d={d}, p={p})")
                    (pattern,) = oracle.oracle_patterns([node])
                    assert pattern.tolist() == definition_count(k, s, d, p), (k, s, d, p)
                    constant = bool(np.all(pattern == pattern[0]))
                    assert constant == (k % s == 0 and math.gcd(d, s) == 1), (k, s, d, p)


# ------------------------------------------------------------------------------------------------
# chain_patterns on single layers: 1-D, 2-D, 3-D


@examples(3000)
@given(conv_transpose_layer(1))
def test_single_conv_transpose_1d(spec):
    check_chain(spec)


@examples(500)
@given(conv_transpose_layer(2))
def test_single_conv_transpose_2d(spec):
    check_chain(spec)


@examples(300)
@given(conv_transpose_layer(3))
def test_single_conv_transpose_3d(spec):
    check_chain(spec)


@examples(500)
@given(axis=conv_transpose_axis())
def test_output_padding_and_end_pad_never_change_the_interior(axis):
    plain = f"ConvTranspose1d(k={axis['k']}, s={axis['s']}, d={axis['d']}, p={axis['p']})"
    padded = plain[:-1] + f", pe={axis['pe']}, op={axis['op']})"
    a, b = as_periodic(
        geometry.chain_patterns(parse_chain(plain))[0],
        geometry.chain_patterns(parse_chain(padded))[0],
    )
    assert a.tolist() == b.tolist(), (plain, padded)


@examples(500)
@given(axis=conv_transpose_axis())
def test_pads_begin_only_rotates_the_chain_pattern(axis):
    k, s, d, p = axis["k"], axis["s"], axis["d"], axis["p"]
    rotated = geometry.chain_patterns(parse_chain(f"ConvTranspose1d(k={k}, s={s}, d={d}, p={p})"))
    base = geometry.chain_patterns(parse_chain(f"ConvTranspose1d(k={k}, s={s}, d={d})"))
    a, b = as_periodic(rotated[0], base[0])
    assert a.tolist() == np.roll(b, -p).tolist()


# ------------------------------------------------------------------------------------------------
# chain_patterns on random chains


@examples(1500)
@given(chains(rank=1))
def test_chains_1d(spec):
    check_chain(spec)


@examples(600)
@given(chains(rank=2))
def test_chains_2d(spec):
    check_chain(spec)


@examples(300)
@given(chains(rank=3, max_layers=4))
def test_chains_3d(spec):
    check_chain(spec)


@examples(200)
@given(
    st.lists(
        st.one_of(conv_transpose_layer(1, max_kernel=5, max_stride=3), resize_layer(1)),
        min_size=2,
        max_size=4,
    ).map(" -> ".join)
)
def test_chains_with_every_resize_mode_1d(spec):
    check_chain(spec)


@examples(1500)
@given(op_on_a_pattern(rank=1))
def test_every_op_on_an_uneven_pattern_1d(spec):
    check_chain(spec)


@examples(300)
@given(op_on_a_pattern(rank=2))
def test_every_op_on_an_uneven_pattern_2d(spec):
    check_chain(spec)


#: Coordinate maps that depend on the lengths: periodic only when the incoming pattern is flat
#: (align_corners) or when length*scale is whole (half_pixel_symmetric).
LENGTH_DEPENDENT = ("align_corners", "half_pixel_symmetric")


def check_nodes_allowing_length_dependence(nodes) -> None:
    try:
        patterns = geometry.chain_patterns(nodes)
    except geometry.UnknownGeometry:
        modes = {n.resize.coordinate_transformation_mode for n in nodes if n.resize is not None}
        assert modes & set(LENGTH_DEPENDENT), "UnknownGeometry for a statically known chain"
        return
    ok, detail = oracle.interior_matches(nodes, patterns)
    assert ok, f"{oracle.describe(nodes)}\n{detail}\ngeometry: {[p.tolist() for p in patterns]}"


@examples(600)
@given(before=uneven_conv_transpose(1), resize=resize_spec(1), after=st.booleans())
def test_every_resize_mode_on_an_uneven_pattern_1d(before, resize, after):
    """All of Resize-19 (modes x coordinate transforms x rounding x cubic a) on a pattern."""
    nodes = [*parse_chain(before), resize_node(resize)]
    if after:
        nodes += parse_chain("ConvTranspose1d(k=3, s=2, p=1)")
    check_nodes_allowing_length_dependence(nodes)


@examples(200)
@given(before=uneven_conv_transpose(2), resize=resize_spec(2))
def test_every_resize_mode_with_per_axis_scales_2d(before, resize):
    check_nodes_allowing_length_dependence([*parse_chain(before), resize_node(resize)])


@examples(100)
@given(resize=resize_spec(2))
def test_every_resize_maps_uniform_to_uniform(resize):
    """From a uniform input every resize (even the length-dependent maps) stays uniform."""
    nodes = [resize_node(resize)]
    patterns = geometry.chain_patterns(nodes)
    assert all(np.allclose(p, 1.0) for p in patterns)
    ok, detail = oracle.interior_matches(nodes, patterns)
    assert ok, detail


def test_half_pixel_symmetric_after_an_odd_length():
    """Regression (geometry used to answer half_pixel's [1, 1, 2]).

    ConvT(k=3, s=2, p=1) always has odd length 2n-1, so x1.5 is fractional: the
    half_pixel_symmetric offset is frac(1.5*L)/(2*1.5) = 1/6, not 0.  onnxruntime 1.32 gives
    [1, 2, 2] repeating for this chain.
    """
    spec = ResizeSpec(
        mode="nearest",
        scales=(Fraction(3, 2),),
        coordinate_transformation_mode="half_pixel_symmetric",
    )
    nodes = [
        *parse_chain("ConvTranspose1d(k=3, s=2, p=1)"),
        Node("up", "Resize", Kind.RESIZE, ("v1",), ("v2",), resize=spec),
    ]
    assert as_periodic(oracle.oracle_patterns(nodes)[0], [1, 2, 2])[0].tolist() == [1, 2, 2] * 2
    check_nodes_allowing_length_dependence(nodes)


@examples(250)
@given(chains(rank=2, max_layers=4, small=True))
def test_chains_2d_direct_nd_simulation(spec):
    """The outer product of the axis patterns against a direct 2-D run (tests separability)."""
    nodes = parse_chain(spec)
    try:
        ok, detail = oracle.interior_matches_nd(nodes, geometry.chain_patterns(nodes))
    except oracle.TooLarge:
        assume(False)
    assert ok, f"{spec}\n{detail}"


@examples(120)
@given(chains(rank=3, max_layers=3, small=True))
def test_chains_3d_direct_nd_simulation(spec):
    nodes = parse_chain(spec)
    try:
        ok, detail = oracle.interior_matches_nd(nodes, geometry.chain_patterns(nodes))
    except oracle.TooLarge:
        assume(False)
    assert ok, f"{spec}\n{detail}"


@examples(300)
@given(before=uneven_conv_transpose(2), fixed=fixed_kernel_conv(2))
def test_separable_fixed_kernels_any_sum_stride_dilation_2d(before, fixed):
    """Fixed taps (BlurPool-like strides, unnormalised sums), checked in N-D: how the kernel sum
    is split among the axis patterns is a convention, their outer product is not."""
    nodes = [*parse_chain(before), fixed]
    ok, detail = oracle.interior_matches_nd(nodes, geometry.chain_patterns(nodes))
    assert ok, f"{oracle.describe(nodes)} taps {fixed.fixed_kernel.tolist()}\n{detail}"


@examples(200)
@given(
    before=st.sampled_from(["", "ConvTranspose2d(k=3, s=2, p=1)"]),
    fixed=fixed_kernel_conv(2, separable=False),
)
def test_non_separable_fixed_kernel_is_refused_or_right(before, fixed):
    """Per-axis patterns cannot hold a non-separable coverage: UnknownGeometry, or the truth."""
    nodes = [*parse_chain(before), fixed] if before else [fixed]
    try:
        patterns = geometry.chain_patterns(nodes)
    except geometry.UnknownGeometry:
        return
    ok, detail = oracle.interior_matches_nd(nodes, patterns)
    assert ok, f"{oracle.describe(nodes)} taps {fixed.fixed_kernel.tolist()}\n{detail}"


def test_unknown_resize_scale_raises():
    spec = ResizeSpec(mode="nearest", scales=(None, Fraction(2)))
    nodes = [
        *parse_chain("ConvTranspose2d(k=3, s=2)"),
        Node("up", "Resize", Kind.RESIZE, ("v1",), ("v2",), resize=spec),
    ]
    with pytest.raises(geometry.UnknownGeometry):
        geometry.chain_patterns(nodes)


@examples(300)
@given(
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -2.0])),
    taps=st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=9),
    stride=st.integers(1, 5),
    dilation=st.integers(1, 4),
    pad=st.integers(0, 6),
    reduce=st.sampled_from(["sum", "max"]),
)
def test_a_uniform_pattern_takes_the_short_path_to_the_same_bits(
    value, taps, stride, dilation, pad, reduce
):
    # a period-1 pattern skips the index arithmetic: same numbers, to the bit, nan included
    c = np.array([value])
    taps = np.array(taps)
    index = (np.arange(1)[:, None] * stride + np.arange(len(taps)) * dilation - pad) % 1
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0, on both sides alike
        expected = c[index].max(axis=1) if reduce == "max" else c[index] @ taps
        got = geometry.conv_step(c, taps, stride, dilation, pad, reduce)
    assert got.tobytes() == expected.tobytes() and got.shape == (1,)
    spread = np.ptp(c) <= geometry._RTOL * max(1.0, float(np.max(np.abs(c))))
    assert geometry.is_uniform(c) == bool(spread)


# ------------------------------------------------------------------------------------------------
# The oracle refereed: its own consistency


@examples(200)
@given(chains(rank=2, max_layers=4, small=True))
def test_oracle_nd_run_is_the_outer_product_of_axis_runs(spec):
    """Every op here is separable, so the whole N-D output (borders too) is an outer product."""
    nodes = parse_chain(spec)
    shape = (9, 12)
    try:
        full = oracle.simulate(nodes, shape)
    except ValueError:  # an output became empty on this short input
        assume(False)
    expected = np.multiply.outer(
        oracle.simulate_axis(nodes, 0, 9), oracle.simulate_axis(nodes, 1, 12)
    )
    np.testing.assert_allclose(full, expected, rtol=1e-12, atol=1e-12)


def _translation(nodes, axis) -> tuple[int, int]:
    """Input shift that moves the output by a whole number of samples: (input, output) shift."""
    denominators = 1
    for node in nodes:
        node = oracle.axis_node(node, axis)
        if node.kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
            denominators *= node.window[0].stride
        elif node.kind == Kind.SHIFT:
            denominators *= node.shift[0].step
        elif node.kind == Kind.RESIZE:
            denominators *= Fraction(node.resize.scales[0]).denominator
    shift = Fraction(denominators)
    for node in nodes:
        node = oracle.axis_node(node, axis)
        if node.kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
            shift *= node.window[0].stride
        elif node.kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
            shift /= node.window[0].stride
        elif node.kind == Kind.SHIFT:
            shift /= node.shift[0].step
        elif node.kind == Kind.RESIZE:
            shift *= Fraction(node.resize.scales[0])
        elif node.kind == Kind.DEPTH_TO_SPACE:
            shift *= node.block[0]
    assert shift.denominator == 1
    return denominators, int(shift)


@examples(300)
@given(chains(rank=1))
def test_oracle_interior_is_free_of_both_borders(spec):
    """Clean samples of a run agree with a run on a longer input, extended at either end.

    Extending at the end checks the right margin; prepending a whole number of input periods
    (which moves every output by a whole number of samples) checks the left margin.
    """
    nodes = parse_chain(spec)
    n = oracle.input_length_for(nodes, 0, 8)
    _, first, last = oracle.clean_range(nodes, 0, n)
    short = oracle.simulate_axis(nodes, 0, n)[first : last + 1]
    longer = oracle.simulate_axis(nodes, 0, 2 * n)
    np.testing.assert_allclose(short, longer[first : last + 1], rtol=1e-12)
    shift_in, shift_out = _translation(nodes, 0)
    prepended = oracle.simulate_axis(nodes, 0, n + shift_in)
    np.testing.assert_allclose(
        short, prepended[first + shift_out : last + 1 + shift_out], rtol=1e-12
    )


# ------------------------------------------------------------------------------------------------
# The oracle refereed: torch (ones weights) and onnxruntime


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _ones_conv_transpose(torch, rank, axes, x):
    module = getattr(torch.nn, f"ConvTranspose{rank}d")(
        1,
        1,
        [a["k"] for a in axes],
        stride=[a["s"] for a in axes],
        padding=[a["p"] for a in axes],
        output_padding=[a["op"] for a in axes],
        dilation=[a["d"] for a in axes],
        bias=False,
    ).double()
    torch.nn.init.ones_(module.weight)
    with torch.no_grad():
        return module(torch.from_numpy(x)[None, None])[0, 0].numpy()


def _window_axes(axes, end_pad=False):
    return tuple(
        WindowAxis(a["k"], a["s"], a["d"], a["p"], a["pe"] if end_pad else a["p"], a.get("op", 0))
        for a in axes
    )


@pytest.mark.torch
@pytest.mark.parametrize("rank,count", [(1, 400), (2, 80), (3, 40)])
def test_oracle_conv_transpose_equals_torch(torch, rank, count):
    """Whole output (borders, output_padding) of nn.ConvTranspose{1,2,3}d with ones weights."""

    @examples(count)
    @given(
        axes=st.lists(conv_transpose_axis(), min_size=rank, max_size=rank),
        lengths=st.lists(st.integers(1, 7 if rank < 3 else 4), min_size=rank, max_size=rank),
        seed=st.integers(0, 2**16),
    )
    def check(axes, lengths, seed):
        x = np.random.default_rng(seed).random(lengths)
        assume(
            all(
                oracle.conv_transpose_length(n, w) > 0
                for n, w in zip(lengths, _window_axes(axes), strict=True)
            )
        )
        np.testing.assert_allclose(
            oracle.conv_transpose(x, _window_axes(axes)),
            _ones_conv_transpose(torch, rank, axes, x),
            atol=1e-12,
        )

    check()


@pytest.mark.torch
@given(
    axes=st.lists(
        st.fixed_dictionaries(
            {
                "k": st.integers(1, 6),
                "s": st.integers(1, 3),
                "d": st.integers(1, 3),
                "p": st.integers(0, 4),
                "pe": st.integers(0, 4),
            }
        ),
        min_size=2,
        max_size=2,
    ),
    seed=st.integers(0, 2**16),
)
@examples(150)
def test_oracle_conv_pools_and_blur_equal_torch(torch, axes, seed):
    """Conv with asymmetric pads (F.pad + conv2d), avg/max pool, and a fixed blur kernel."""
    F = torch.nn.functional
    x = np.random.default_rng(seed).random((11, 13))
    windows = _window_axes(axes, end_pad=True)
    assume(all(oracle.conv_length(n, w) > 0 for n, w in zip(x.shape, windows, strict=True)))
    t = torch.from_numpy(x)[None, None]
    padded = F.pad(t, (axes[1]["p"], axes[1]["pe"], axes[0]["p"], axes[0]["pe"]))
    kernel = np.random.default_rng(seed + 1).random([a["k"] for a in axes])
    for weight, mine in (
        (None, oracle.conv(x, windows)),
        (kernel, oracle.conv(x, windows, kernel)),
    ):
        w = (
            torch.ones(1, 1, *kernel.shape, dtype=torch.float64)
            if weight is None
            else (torch.from_numpy(weight)[None, None])
        )
        theirs = F.conv2d(padded, w, stride=[a["s"] for a in axes], dilation=[a["d"] for a in axes])
        np.testing.assert_allclose(mine, theirs[0, 0].numpy(), atol=1e-12)
    # pools: torch pads symmetrically with p <= k/2
    pool = tuple(
        WindowAxis(a["k"], a["s"], 1, min(a["p"], a["k"] // 2), min(a["p"], a["k"] // 2))
        for a in axes
    )
    args = ([w.kernel for w in pool], [w.stride for w in pool], [w.pads_begin for w in pool])
    avg = Node("a", "AvgPool2d", Kind.AVG_POOL, ("x",), ("y",), window=pool)
    mx = Node("m", "MaxPool2d", Kind.MAX_POOL, ("x",), ("y",), window=pool)
    np.testing.assert_allclose(
        oracle.apply_node(x, avg), F.avg_pool2d(t, *args, count_include_pad=True)[0, 0].numpy()
    )
    np.testing.assert_allclose(oracle.apply_node(x, mx), F.max_pool2d(t, *args)[0, 0].numpy())


def test_blur_spec_is_the_normalised_outer_product():
    node = parse_layer("Blur2d(taps=(1, 3, 3, 1))")
    taps = np.array([1, 3, 3, 1]) / 8
    np.testing.assert_allclose(node.fixed_kernel, np.multiply.outer(taps, taps))
    np.testing.assert_allclose(oracle.axis_node(node, 1).fixed_kernel, taps)


RESIZE_SCALES = ["2", "3", "3/2", "5/2", "4/3", "5/3", "7/3", "2/3", "1/2", "3/4", "7/4"]
TORCH_MODES = [  # chain-language mode, torch mode, rank, align_corners
    ("nearest", "nearest", 1, None),
    ("nearest-exact", "nearest-exact", 1, None),
    ("linear", "linear", 1, False),
    ("linear", "linear", 1, True),
    ("linear", "bilinear", 2, False),
    ("cubic", "bicubic", 2, False),
    ("cubic", "bicubic", 2, True),
    ("linear", "trilinear", 3, True),
    ("nearest-exact", "nearest-exact", 3, None),
]


@pytest.mark.torch
@pytest.mark.parametrize("mode,torch_mode,rank,align", TORCH_MODES)
def test_oracle_resize_equals_torch_interpolate(torch, mode, torch_mode, rank, align):
    """F.interpolate(scale_factor=...) on random inputs: values and sizes, borders included."""
    rng = np.random.default_rng(0)
    for scale in RESIZE_SCALES:
        for n in (4, 5, 7, 12, 16):
            corners = ", align_corners=1" if align else ""
            node = parse_layer(f"Upsample(scale={scale}, mode={mode}, rank={rank}{corners})")
            x = rng.random((n,) * rank)
            kwargs = {} if align is None else {"align_corners": align}
            theirs = torch.nn.functional.interpolate(
                torch.from_numpy(x)[None, None],
                scale_factor=float(Fraction(scale)),
                mode=torch_mode,
                **kwargs,
            )[0, 0].numpy()
            np.testing.assert_allclose(
                oracle.resize(x, node), theirs, atol=1e-12, err_msg=f"{torch_mode} x{scale} n={n}"
            )


def _ort_session(onnx_model):
    ort = pytest.importorskip("onnxruntime")
    ort.set_default_logger_severity(4)
    return ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])


def _ort_resize(x, scale, mode, coord, nearest, cubic_a, opset):
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    # 4-D (1,1,n,1): onnxruntime's cubic accepts only 2 spatial axes
    inputs = [h.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [1, 1, x.size, 1])]
    consts = [
        h.make_tensor("roi", onnx.TensorProto.FLOAT, [0], []),
        h.make_tensor("scales", onnx.TensorProto.FLOAT, [4], [1, 1, float(scale), 1]),
    ]
    node = h.make_node(
        "Resize",
        ["X", "roi", "scales"],
        ["Y"],
        mode=mode,
        coordinate_transformation_mode=coord,
        nearest_mode=nearest,
        cubic_coeff_a=cubic_a,
    )
    graph = h.make_graph(
        [node],
        "resize",
        inputs,
        [h.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)],
        consts,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    out = _ort_session(model).run(None, {"X": x.reshape(1, 1, -1, 1).astype(np.float32)})[0]
    return out.reshape(-1)


ORT_COORDS = [
    "half_pixel",
    "pytorch_half_pixel",
    "asymmetric",
    "align_corners",
    "half_pixel_symmetric",
    "tf_half_pixel_for_nn",
]


@pytest.mark.torch
def test_torch_nearest_exact_is_half_pixel_round_prefer_ceil(torch):
    """chainspec maps nearest-exact to (half_pixel, round_prefer_ceil); round_prefer_floor (as the
    ResizeSpec docstring in ir.py says) differs from torch at x1.5 wherever x_original ties."""
    node = parse_layer("Upsample(scale=3/2, mode=nearest-exact, rank=1)")
    assert node.resize.coordinate_transformation_mode == "half_pixel"
    assert node.resize.nearest_mode == "round_prefer_ceil"
    x = np.arange(8.0)
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None, None], scale_factor=1.5, mode="nearest-exact"
    )[0, 0].numpy()
    np.testing.assert_array_equal(oracle.resize(x, node), theirs)
    floor_node = dataclasses.replace(
        node, resize=dataclasses.replace(node.resize, nearest_mode="round_prefer_floor")
    )
    assert not np.array_equal(oracle.resize(x, floor_node), theirs)


@pytest.mark.parametrize("coord", ORT_COORDS)
def test_oracle_resize_equals_onnxruntime(coord):
    """Every coordinate transform x every nearest rounding, linear and cubic (a = -0.75, -0.5).

    onnxruntime computes in float32: where x_original is *exactly* an integer (floor/ceil) or a
    half-integer (round_prefer_*), its rounding may land on the other side.  Those knife-edge
    samples are the only disagreements allowed, and the test asserts they are knife-edges.
    """
    rng = np.random.default_rng(1)
    opset = 13 if coord == "tf_half_pixel_for_nn" else 19  # removed from Resize-18 on
    cases = [
        ("nearest", rule, -0.75)
        for rule in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
    ]
    if coord != "tf_half_pixel_for_nn":
        cases += [("linear", "floor", -0.75), ("cubic", "floor", -0.75), ("cubic", "floor", -0.5)]
    for scale in RESIZE_SCALES:
        for n in (5, 6, 7, 12):
            x = rng.random(n)
            for mode, rule, cubic_a in cases:
                spec = ResizeSpec(
                    mode=mode,
                    scales=(Fraction(scale),),
                    coordinate_transformation_mode=coord,
                    nearest_mode=rule,
                    cubic_coeff_a=cubic_a,
                )
                node = Node("r", "Resize", Kind.RESIZE, ("x",), ("y",), resize=spec)
                mine = oracle.resize(x, node)
                theirs = _ort_resize(x, Fraction(scale), mode, coord, rule, cubic_a, opset)
                assert mine.shape == theirs.shape, (scale, n, mode, rule)
                bad = np.flatnonzero(~np.isclose(mine, theirs, atol=1e-5))
                if bad.size:
                    alpha, beta = oracle._resize_coordinate(spec, n, mine.size)
                    x_original = [alpha * int(o) + beta for o in bad]
                    edge = Fraction(1, 2) if rule.startswith("round") else Fraction(0)
                    assert mode == "nearest" and all(
                        v - math.floor(v) == edge for v in x_original
                    ), f"{coord} {mode} {rule} x{scale} n={n}: outputs {bad.tolist()} differ"


@pytest.mark.parametrize("auto_pad,pads", [("SAME_UPPER", (0, 1)), ("SAME_LOWER", (1, 0))])
def test_oracle_conv_transpose_equals_onnxruntime_auto_pad(auto_pad, pads):
    """ONNX ConvTranspose k=3, s=2, auto_pad: the resolved (begin, end) pads of C24/C25."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    x = np.random.default_rng(2).random(16).astype(np.float32)
    weight = h.make_tensor("W", onnx.TensorProto.FLOAT, [1, 1, 3], [1.0] * 3)
    node = h.make_node(
        "ConvTranspose", ["X", "W"], ["Y"], kernel_shape=[3], strides=[2], auto_pad=auto_pad
    )
    graph = h.make_graph(
        [node],
        "ct",
        [h.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [1, 1, 16])],
        [h.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)],
        [weight],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    theirs = _ort_session(model).run(None, {"X": x[None, None]})[0][0, 0]
    mine = oracle.conv_transpose(x.astype(float), (WindowAxis(3, 2, 1, *pads),))
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


@given(axis=conv_transpose_axis(), n=st.integers(1, 7), seed=st.integers(0, 2**16))
@examples(150)
def test_oracle_conv_transpose_equals_onnxruntime_asymmetric_pads(axis, n, seed):
    """ONNX ConvTranspose with pads (begin, end) independent and output_padding."""
    onnx = pytest.importorskip("onnx")
    window = _window_axes([axis], end_pad=True)
    assume(oracle.conv_transpose_length(n, window[0]) > 0)
    assume(axis["op"] < axis["s"])  # onnxruntime rejects output_padding >= stride
    h = onnx.helper
    x = np.random.default_rng(seed).random(n).astype(np.float32)
    weight = h.make_tensor("W", onnx.TensorProto.FLOAT, [1, 1, axis["k"]], [1.0] * axis["k"])
    node = h.make_node(
        "ConvTranspose",
        ["X", "W"],
        ["Y"],
        kernel_shape=[axis["k"]],
        strides=[axis["s"]],
        dilations=[axis["d"]],
        pads=[axis["p"], axis["pe"]],
        output_padding=[axis["op"]],
    )
    graph = h.make_graph(
        [node],
        "ct",
        [h.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [1, 1, n])],
        [h.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, None)],
        [weight],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    theirs = _ort_session(model).run(None, {"X": x[None, None]})[0][0, 0]
    np.testing.assert_allclose(oracle.conv_transpose(x.astype(float), window), theirs, atol=1e-5)


@pytest.mark.torch
def test_oracle_pixel_shuffle_path_equals_torch(torch):
    """Output (h, w) of pixel_shuffle reads (h // r, w // r) of channel (h % r)*r + w % r."""
    for r in (2, 3):
        x = np.random.default_rng(r).random((5, 7))
        channels = np.stack([x * (c + 1) for c in range(r * r)])
        out = torch.nn.functional.pixel_shuffle(torch.from_numpy(channels)[None], r)[0, 0].numpy()
        h, w = np.meshgrid(np.arange(5 * r), np.arange(7 * r), indexing="ij")
        np.testing.assert_allclose(out, x[h // r, w // r] * ((h % r) * r + w % r + 1))
        node = parse_layer(f"PixelShuffle(r={r}, rank=2)")
        np.testing.assert_allclose(oracle.apply_node(x, node), x[h // r, w // r])


@pytest.mark.torch
@pytest.mark.parametrize(
    "k,s,p", [(2, 2, 0), (3, 2, 1), (3, 2, 0), (2, 1, 0), (4, 3, 1), (3, 3, 1)]
)
def test_oracle_max_unpool_counts_every_window_slot_once(torch, k, s, p):
    """Put the window max on each slot of each window in turn; count where max_unpool writes it."""
    F = torch.nn.functional
    n_in = 6
    length = (n_in - 1) * s - 2 * p + k  # torch's max_unpool1d output length
    count = np.zeros(length)
    for i in range(n_in):
        for j in range(k):
            target = i * s + j - p
            if not 0 <= target < length:
                continue
            signal = torch.zeros(1, 1, length, dtype=torch.float64)
            signal[0, 0, target] = 1.0
            pooled, indices = F.max_pool1d(signal, k, s, p, return_indices=True)
            assert int(indices[0, 0, i]) == target  # window i can select slot j
            unpooled = F.max_unpool1d(pooled, indices, k, s, p, output_size=[length])
            count += (unpooled[0, 0].numpy() != 0) * (np.arange(length) == target)
    node = Node(
        "u", "MaxUnpool1d", Kind.MAX_UNPOOL, ("x",), ("y",), window=(WindowAxis(k, s, 1, p, p),)
    )
    np.testing.assert_array_equal(oracle.apply_node(np.ones(n_in), node), count)


def _torch_chain(torch, spec: str, n: int) -> np.ndarray:
    """Run a 1-D chain spec in torch with ones weights on ones (one channel path)."""
    F = torch.nn.functional
    x = torch.ones(1, 1, n, dtype=torch.float64)
    for node in parse_chain(spec):
        if node.kind == Kind.POINTWISE:
            continue
        w = node.window[0] if node.window else None
        if node.kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):  # unpool: all window slots
            ones = torch.ones(1, 1, w.kernel, dtype=torch.float64)
            full = F.conv_transpose1d(
                x, ones, stride=w.stride, dilation=w.dilation, output_padding=w.output_padding
            )
            x = full[..., w.pads_begin : full.shape[-1] - w.pads_end]  # pads crop the full result
        elif node.kind == Kind.CONV:
            taps = node.fixed_kernel if node.fixed_kernel is not None else np.ones(w.kernel)
            x = F.conv1d(
                F.pad(x, (w.pads_begin, w.pads_end)),
                torch.from_numpy(taps)[None, None],
                stride=w.stride,
                dilation=w.dilation,
            )
        elif node.kind == Kind.AVG_POOL:  # count_include_pad: explicit zero pads are the same
            x = F.avg_pool1d(F.pad(x, (w.pads_begin, w.pads_end)), w.kernel, w.stride)
        elif node.kind == Kind.MAX_POOL:
            padded = F.pad(x, (w.pads_begin, w.pads_end), value=-math.inf)
            x = F.max_pool1d(padded, w.kernel, w.stride, 0, w.dilation)
        elif node.kind == Kind.RESIZE:
            spec_ = node.resize
            mode = {
                "linear": "linear",
                "nearest": "nearest" if spec_.nearest_mode == "floor" else "nearest-exact",
            }[spec_.mode]
            kwargs = {"align_corners": False} if mode == "linear" else {}
            x = F.interpolate(x, scale_factor=float(spec_.scales[0]), mode=mode, **kwargs)
        elif node.kind == Kind.DEPTH_TO_SPACE:
            r = node.block[0]
            x = F.pixel_shuffle(x[..., None].repeat(1, r * r, 1, 1), r)[..., 0]
        elif node.kind == Kind.SHIFT:
            sh = node.shift[0]
            x = F.pad(x, (-sh.offset, 0)) if sh.offset < 0 else x
            x = x[..., max(sh.offset, 0) :: sh.step]
        else:
            raise NotImplementedError(node.kind)
    return x[0, 0].numpy()


@pytest.mark.torch
@examples(150)
@given(chains(rank=1, max_layers=4), st.integers(12, 24))
def test_oracle_chain_equals_torch_1d(torch, spec, n):
    """Whole chains (borders included) in torch, one channel path, ones weights."""
    try:
        mine = oracle.simulate_axis(parse_chain(spec), 0, n)
        theirs = _torch_chain(torch, spec, n)
    except (ValueError, RuntimeError):  # an output became empty on this short input
        assume(False)
    np.testing.assert_allclose(mine, theirs, atol=1e-9, err_msg=spec)

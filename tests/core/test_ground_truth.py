"""The ground-truth table (theory notes §4, rows C01-C47) and the worked examples of §2.4.

Every row is asserted against the brute-force ORACLE first (tests/support/oracle.py: patterns, output
size, max/min per axis and N-d, CV N-d, and a direct N-D run against the outer product of the
listed axis patterns), then against ``deconvlint.core.geometry.chain_patterns``.

Pattern convention, as in the table: entry q is the coverage at output index o with
``o mod period == q``, in the framework's output coordinates after cropping.  Patterns are
compared as periodic functions (both tiled to a common period), never up to rotation: no row
needed a rotation.  Backward rows (C43-C47) and the resize rows' fan-out (C37-C41) are indexed by
*input* index, and are checked with the oracle's gradient fan-out in input coordinates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deconvlint.core import geometry
from deconvlint.core.chainspec import parse_chain
from deconvlint.core.ir import WindowAxis
from tests.support import oracle
from tests.support.strategies import conv_transpose_axis

INF = math.inf
TABLE = Path("/work/shared/reference/ground_truth_table.md")  # the shared copy, when present


@dataclass(frozen=True)
class Row:
    id: str
    spec: str  # the row's layer or chain in the chain language
    patterns: tuple[tuple[float, ...], ...]  # per axis, index = output index mod period
    ratio_axis: tuple[float, ...]
    ratio_nd: float
    cv_nd: float
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]


def row(id, spec, pattern, ratio, ratio_nd, cv, n_in, n_out, rank=2, patterns=None, ratios=None):
    """A row whose axes share one pattern (``patterns``/``ratios`` for per-axis rows)."""
    return Row(
        id,
        spec,
        tuple(map(tuple, patterns or [pattern] * rank)),
        tuple(ratios or [ratio] * rank),
        ratio_nd,
        cv,
        n_in if isinstance(n_in, tuple) else (n_in,) * rank,
        n_out if isinstance(n_out, tuple) else (n_out,) * rank,
    )


CT = "ConvTranspose2d"
CT312 = f"{CT}(k=3, s=2, p=1, op=1)"
FORWARD_ROWS = [
    row("C01", CT312, [1, 2], 2, 4, 0.4843, 16, 32),
    row("C02", f"{CT}(k=3, s=2, p=0)", [2, 1], 2, 4, 0.4843, 16, 33),
    row("C03", f"{CT}(k=3, s=2, p=1, op=0)", [1, 2], 2, 4, 0.4843, 16, 31),
    row("C04", f"{CT}(k=4, s=2, p=1)", [2, 2], 1, 1, 0.0, 16, 32),
    row("C05", f"{CT}(k=2, s=2, p=0)", [1, 1], 1, 1, 0.0, 16, 32),
    row("C06", f"{CT}(k=5, s=2, p=2, op=1)", [3, 2], 1.5, 2.25, 0.2857, 16, 32),
    row("C07", f"{CT}(k=6, s=4, p=1)", [2, 1, 1, 2], 2, 4, 0.4843, 16, 64),
    row("C08", f"{CT}(k=5, s=3, p=1)", [2, 1, 2], 2, 4, 0.4079, 16, 48),
    row("C09", f"{CT}(k=3, s=3, p=0)", [1, 1, 1], 1, 1, 0.0, 16, 48),
    row("C10", f"{CT}(k=1, s=2, op=1)", [1, 0], INF, INF, 1.7321, 16, 32),
    row("C11", f"{CT}(k=3, s=4, op=1)", [1, 1, 1, 0], INF, INF, 0.8819, 16, 64),
    row("C12", f"{CT}(k=2, s=2, d=2)", [2, 0], INF, INF, 1.7321, 16, 33),
    row("C13", f"{CT}(k=4, s=2, p=3, op=1, d=2)", [0, 4], INF, INF, 1.7321, 16, 32),
    row("C14", f"{CT}(k=4, s=2, p=4, d=3)", [2, 2], 1, 1, 0.0, 16, 32),
    row("C15", f"{CT}(k=3, s=3, p=1, d=2)", [1, 1, 1], 1, 1, 0.0, 16, 48),
    row("C16", f"{CT}(k=3, s=2, p=3, op=1, d=3)", [1, 2], 2, 4, 0.4843, 16, 32),
    row(
        "C17",
        f"{CT}(k=(3, 4), s=2, p=1, op=(1, 0))",
        None,
        None,
        2,
        0.3333,
        16,
        32,
        patterns=[[1, 2], [2, 2]],
        ratios=[2, 1],
    ),
    row(
        "C18",
        f"{CT}(k=(4, 3), s=(2, 1), p=1)",
        None,
        None,
        1,
        0.0,
        16,
        (32, 16),
        patterns=[[2, 2], [3]],
        ratios=[1, 1],
    ),
    row("C19", f"{CT}(k=3, s=1, p=1)", [3], 1, 1, 0.0, 16, 16),
    row(
        "C20",
        "ConvTranspose1d(k=25, s=4, p=11, op=1)",
        [6, 7, 6, 6],
        7 / 6,
        7 / 6,
        0.0693,
        40,
        160,
        rank=1,
    ),
    row("C21", "ConvTranspose1d(k=16, s=8, p=4)", [2] * 8, 1, 1, 0.0, 40, 320, rank=1),
    row("C22", "ConvTranspose1d(k=8, s=4, p=2)", [2] * 4, 1, 1, 0.0, 40, 160, rank=1),
    row("C23", "ConvTranspose3d(k=3, s=2, p=1, op=1)", [1, 2], 2, 8, 0.6097, 12, 24, rank=3),
    # ONNX rows: auto_pad resolved to explicit (begin, end) pads, as the front end stores them
    row("C24", f"{CT}(k=3, s=2, p=0, pe=1)", [2, 1], 2, 4, 0.4843, 16, 32),  # SAME_UPPER
    row("C25", f"{CT}(k=3, s=2, p=1, pe=0)", [1, 2], 2, 4, 0.4843, 16, 32),  # SAME_LOWER
    row("C26", f"{CT}(k=4, s=2, p=1, pe=1)", [2, 2], 1, 1, 0.0, 16, 32),
    row("C27", f"{CT312} -> {CT312}", [1, 3, 2, 3], 3, 9, 0.5386, 16, 64),
    row("C28", f"{CT}(k=3, s=2) -> {CT}(k=3, s=2)", [3, 2, 3, 1], 3, 9, 0.5386, 16, 67),
    row("C29", f"{CT312} -> {CT}(k=4, s=2, p=1)", [3, 3, 3, 3], 1, 1, 0.0, 16, 64),
    row("C30", f"{CT}(k=4, s=2, p=1) -> {CT312}", [2, 4, 2, 4], 2, 4, 0.4843, 16, 64),
    row("C31", f"{CT}(k=4, s=2, p=1) -> {CT}(k=4, s=2, p=1)", [4, 4, 4, 4], 1, 1, 0.0, 16, 64),
    row("C32", f"{CT312} -> {CT312} -> {CT312}", [1, 4, 3, 5, 2, 5, 3, 4], 5, 25, 0.5725, 12, 96),
    row("C33", f"{CT312} -> Conv2d(k=3, s=1, p=1)", [5, 4], 1.25, 1.5625, 0.1576, 16, 32),
    row("C34", f"{CT312} -> Conv2d(k=2, s=1, p=0)", [3, 3], 1, 1, 0.0, 16, 31),
    row("C35", f"{CT312} -> {CT}(k=2, s=2)", [1, 1, 2, 2], 2, 4, 0.4843, 16, 64),
    row("C36", "Upsample(scale=2, mode=nearest) -> Conv2d(k=3, p=1)", [3, 3], 1, 1, 0.0, 16, 32),
    # C42 lists "9*C" per output phase: one channel path (C = 1) is 3 per axis, 9 in 2-D
    row("C42", "Conv2d(k=3, p=1) -> PixelShuffle(r=2)", [3, 3], 1, 1, 0.0, 16, 32),
]


def ratio(pattern) -> float:
    pattern = np.asarray(pattern, float)
    return INF if pattern.min() == 0 else float(pattern.max() / pattern.min())


def outer(patterns) -> np.ndarray:
    block = np.asarray(patterns[0], float)
    for pattern in patterns[1:]:
        block = np.multiply.outer(block, np.asarray(pattern, float))
    return block


def cv_nd(patterns) -> float:
    """Population std / mean of the N-D outer product over one period."""
    block = outer(patterns)
    return float(block.std() / block.mean())


def same_periodic(a, b) -> bool:
    span = math.lcm(len(a), len(b))
    a = np.tile(np.asarray(a, float), span // len(a))
    b = np.tile(np.asarray(b, float), span // len(b))
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


def _ids(rows):
    return [r.id for r in rows]


# ------------------------------------------------------------------------------------------------
# Forward rows: oracle first, then geometry


@pytest.mark.parametrize("case", FORWARD_ROWS, ids=_ids(FORWARD_ROWS))
def test_row_against_oracle(case: Row):
    nodes = parse_chain(case.spec)
    found = oracle.oracle_patterns(nodes)
    for axis, (mine, listed) in enumerate(zip(found, case.patterns, strict=True)):
        assert same_periodic(mine, listed), f"{case.id} axis {axis}: oracle {mine}, table {listed}"
        assert ratio(mine) == pytest.approx(case.ratio_axis[axis])
    assert math.prod(ratio(p) for p in found) == pytest.approx(case.ratio_nd)
    assert ratio(outer(found)) == pytest.approx(case.ratio_nd)
    assert abs(cv_nd(found) - case.cv_nd) < 5e-5, (case.id, cv_nd(found))
    assert oracle.simulate(nodes, case.shape_in).shape == case.shape_out
    # the listed patterns themselves against a direct N-D run (no outer product on this side)
    ok, detail = oracle.interior_matches_nd(nodes, [np.array(p, float) for p in case.patterns])
    assert ok, f"{case.id}: {detail}"


@pytest.mark.parametrize("case", FORWARD_ROWS, ids=_ids(FORWARD_ROWS))
def test_row_against_geometry(case: Row):
    patterns = geometry.chain_patterns(parse_chain(case.spec))
    assert len(patterns) == len(case.patterns)
    for axis, (claimed, listed) in enumerate(zip(patterns, case.patterns, strict=True)):
        assert same_periodic(claimed, listed), (
            f"{case.id} axis {axis}: geometry {claimed.tolist()}, table {list(listed)}"
        )
    assert abs(cv_nd(patterns) - case.cv_nd) < 5e-5


# ------------------------------------------------------------------------------------------------
# Backward rows C43-C47: gradient fan-out of a strided conv, indexed by input index mod s

BACKWARD_ROWS = [  # id, conv, (k, s, d, p), pattern, ratio, ratio N-d, CV N-d, input, output
    ("C43", "Conv2d(k=3, s=2, p=1)", (3, 2, 1, 1), [1, 2], 2, 4, 0.4843, 16, 8),
    ("C44", "Conv2d(k=1, s=2)", (1, 2, 1, 0), [1, 0], INF, INF, 1.7321, 16, 8),
    ("C45", "Conv2d(k=7, s=2, p=3)", (7, 2, 1, 3), [3, 4], 4 / 3, 16 / 9, 0.2031, 32, 16),
    ("C46", "Conv2d(k=4, s=2, p=1)", (4, 2, 1, 1), [2, 2], 1, 1, 0.0, 16, 8),
    ("C47", "Conv2d(k=3, s=2, p=2, d=2)", (3, 2, 2, 2), [3, 0], INF, INF, 1.7321, 16, 8),
]


@pytest.mark.parametrize(
    "id,spec,ksdp,pattern,r,r_nd,cv,n_in,n_out", BACKWARD_ROWS, ids=[r[0] for r in BACKWARD_ROWS]
)
def test_backward_row(id, spec, ksdp, pattern, r, r_nd, cv, n_in, n_out):
    k, s, d, p = ksdp
    nodes = parse_chain(spec)
    assert oracle.simulate(nodes, (n_in, n_in)).shape == (n_out, n_out)
    n = 64
    fanout = oracle.backward_fanout(nodes, 0, n)
    margin = d * (k - 1) + s  # inputs nearer the ends than this may miss a window
    i = np.arange(margin, n - margin)
    np.testing.assert_array_equal(fanout[i], np.array(pattern)[i % s], err_msg=id)
    assert ratio(pattern) == r and ratio(pattern) ** 2 == pytest.approx(r_nd)
    assert abs(cv_nd([pattern, pattern]) - cv) < 5e-5
    # theory §2.7: the gradient fan-out is the phase pattern of the same (k, s, d, p)
    assert geometry.phase_pattern(k, s, d, p).tolist() == pattern
    ct = geometry.chain_patterns(parse_chain(f"ConvTranspose1d(k={k}, s={s}, d={d}, p={p})"))
    assert same_periodic(ct[0], pattern)


# ------------------------------------------------------------------------------------------------
# Resize rows C37-C41: constant -> constant forward; the listed numbers are the gradient fan-out

RESIZE_ROWS = [  # id, spec, input length, output length, fan-out sample, where it starts, ...
    ("C37", "Upsample(scale=3/2, mode=nearest)", 16, 24, [2, 1] * 4, 0, 2, 4, 0.4843),
    ("C38", "Upsample(scale=3/2, mode=nearest-exact)", 16, 24, [1, 2] * 4, 0, 2, 4, 0.4843),
    ("C39", "Upsample(scale=2, mode=linear)", 16, 32, [2] * 8, 0, 1, 1, 0.0),
    ("C40", "Upsample(scale=2, mode=linear, align_corners=1)", 16, 32, [2.065] * 8, 1, 1, 1, 0.0),
    (
        "C41",
        "Upsample(scale=3/2, mode=linear, align_corners=1)",
        40,
        60,
        [1.661, 1.373, 1.644, 1.39, 1.627, 1.407, 1.61, 1.424],
        2,
        1.21,
        1.464,
        0.0820,
    ),
]


@pytest.mark.parametrize(
    "id,spec,n_in,n_out,sample,start,r,r_nd,cv", RESIZE_ROWS, ids=[r[0] for r in RESIZE_ROWS]
)
def test_resize_row(id, spec, n_in, n_out, sample, start, r, r_nd, cv):
    nodes = parse_chain(spec)
    assert oracle.simulate(nodes, (n_in, n_in)).shape == (n_out, n_out)
    # forward: every resize maps a constant to a constant (oracle and geometry)
    assert all(np.allclose(p, 1.0) for p in oracle.oracle_patterns(nodes))
    assert all(np.allclose(p, 1.0) for p in geometry.chain_patterns(nodes))
    # backward: the table's fan-out per input, sampled from input index `start`
    fanout = oracle.backward_fanout(nodes, 0, n_in)
    np.testing.assert_allclose(fanout[start : start + len(sample)], sample, atol=5e-4, err_msg=id)
    # "interior": all but `start` samples at each end (C40: 4n/(2n-1) = 2.0645 there)
    interior = fanout[start : n_in - start]
    assert ratio(interior) == pytest.approx(r, abs=5e-3)
    assert ratio(interior) ** 2 == pytest.approx(r_nd, abs=5e-3)
    assert abs(cv_nd([interior, interior]) - cv) < 5e-5


# ------------------------------------------------------------------------------------------------
# Cases stated in the issue, and the worked chains of §2.4 (1-D pattern per axis)

WORKED = [
    ("ConvTranspose1d(k=2, s=2, d=2)", [2, 0]),
    (f"{CT312} -> {CT}(k=4, s=2, p=1)", [3, 3, 3, 3]),
    (f"{CT}(k=3, s=2) -> {CT}(k=4, s=2, p=1)", [3, 3, 3, 3]),
    (f"{CT}(k=4, s=2, p=1) -> {CT312}", [2, 4, 2, 4]),
    (f"{CT312} -> {CT312}", [1, 3, 2, 3]),
    (f"{CT}(k=3, s=2) -> {CT}(k=3, s=2)", [3, 2, 3, 1]),
    (f"{CT312} -> {CT}(k=6, s=2, p=2)", [5, 5, 4, 4]),
    (f"{CT}(k=5, s=2, p=2, op=1) -> {CT}(k=4, s=2, p=1)", [5, 5, 5, 5]),
    (f"{CT312} -> Conv2d(k=4, p=1)", [6, 6]),
    (f"{CT312} -> {CT312} -> Conv2d(k=4, p=2)", [9, 9, 9, 9]),
    (f"{CT312} -> {CT312} -> Conv2d(k=2)", [4, 5, 5, 4]),
    (f"{CT}(k=3, s=3) -> {CT312}", [1, 2, 1, 2, 1, 2]),
    (f"{CT}(k=5, s=3, p=1) -> {CT}(k=6, s=3, p=2, op=1)", [4, 3, 3, 3, 3, 3, 3, 4, 4]),
    # A [1,3,3,1]/8 blur after ConvT(k=3, s=2) (pattern c = [2, 1]):
    #   y[o] = (c[o] + 3c[o+1] + 3c[o+2] + c[o+3])/8 = (4c[o] + 4c[o+1])/8 = (2 + 1)/2 = 1.5
    # for every o: [1,3,3,1] = [1,1]*[1,2,1] carries the zero-order hold of s=2, which takes out
    # period 2.  So do [1,2,1] = [1,1]*[1,1] and [1,4,6,4,1] = [1,1]^4 (even/odd tap sums 8 = 8);
    # [1,2] does not (tap sums 1 and 2): (c[o] + 2c[o+1])/3 gives [4/3, 5/3].
    (f"{CT}(k=3, s=2) -> Blur2d(taps=(1, 3, 3, 1))", [1.5, 1.5]),
    (f"{CT}(k=3, s=2) -> Blur2d(taps=(1, 2, 1))", [1.5, 1.5]),
    (f"{CT}(k=3, s=2) -> Blur2d(taps=(1, 4, 6, 4, 1))", [1.5, 1.5]),
    (f"{CT}(k=3, s=2) -> Blur2d(taps=(1, 2))", [4 / 3, 5 / 3]),
]


@pytest.mark.parametrize("spec,pattern", WORKED, ids=[w[0] for w in WORKED])
def test_worked_chain(spec, pattern):
    nodes = parse_chain(spec)
    for found in oracle.oracle_patterns(nodes):
        assert same_periodic(found, pattern), f"oracle {found.tolist()}"
    for claimed in geometry.chain_patterns(nodes):
        assert same_periodic(claimed, pattern), f"geometry {claimed.tolist()}"


@pytest.mark.parametrize("rank,expected", [(1, 2), (2, 4), (3, 8)])
def test_k3_s2_max_over_min_doubles_per_axis(rank, expected):
    nodes = parse_chain(f"ConvTranspose{rank}d(k=3, s=2)")
    assert ratio(outer(oracle.oracle_patterns(nodes))) == expected
    assert ratio(outer(geometry.chain_patterns(nodes))) == expected
    ok, detail = oracle.interior_matches_nd(nodes, geometry.chain_patterns(nodes))
    assert ok, detail


# ------------------------------------------------------------------------------------------------
# The transcription above against the shared table, when it is there


def _table_rows() -> dict[str, list[str]]:
    rows = {}
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if re.fullmatch(r"C\d\d", cells[0]):
            rows[cells[0]] = cells
    return rows


def _lists(text: str) -> list[list[float]]:
    return [[float(v) for v in group.split(",")] for group in re.findall(r"\[([\d.,\s]+)\]", text)]


@pytest.mark.skipif(not TABLE.exists(), reason="shared reference table not mounted")
def test_transcription_matches_the_shared_table():
    table = _table_rows()
    assert sorted(table) == [f"C{i:02d}" for i in range(1, 48)]
    for case in FORWARD_ROWS:
        cells = table[case.id]
        if case.id == "C42":
            continue  # the pattern cell is prose ("9*C for all 4 phases")
        listed = _lists(cells[3])
        if "(all" in cells[3]:
            listed = listed * int(re.search(r"all (\d) axes", cells[3]).group(1))
        assert listed == [list(p) for p in case.patterns], case.id
        assert float(cells[6]) == case.cv_nd, case.id
    for id, _, _, pattern, *_rest, cv, _n_in, _n_out in BACKWARD_ROWS:
        assert _lists(table[id][3])[0] == pattern and float(table[id][6]) == cv, id
    for id, _, _, _, sample, _start, _r, _r_nd, cv in RESIZE_ROWS:
        assert _lists(table[id][3])[-1] == sample and float(table[id][6]) == cv, id


# ------------------------------------------------------------------------------------------------
# Other numeric claims of the theory notes (§2.2 borders, §2.5 bilinear)

BORDERS = [  # §2.2, input length 6: the whole output, borders included
    ("ConvTranspose1d(k=4, s=2, p=1)", [1] + [2] * 10 + [1]),
    ("ConvTranspose1d(k=3, s=2, p=1, op=1)", [1, 2] * 5 + [1, 1]),
    ("ConvTranspose1d(k=16, s=8, p=4)", [1] * 4 + [2] * 40 + [1] * 4),
    ("ConvTranspose1d(k=2, s=2, p=0, op=1)", [1] * 12 + [0]),
]


@pytest.mark.parametrize("spec,coverage", BORDERS, ids=[b[0] for b in BORDERS])
def test_border_examples(spec, coverage):
    assert oracle.simulate(parse_chain(spec), (6,)).tolist() == coverage


def test_bilinear_x2_is_conv_transpose_with_the_bilinear_kernel_inside():
    """§2.5: linear x2 (half_pixel) == ConvT(k=4, s=2, p=1) with [.25,.75,.75,.25] but for the
    first and last sample (edge clamping)."""
    x = np.random.default_rng(0).random(20)
    linear = oracle.resize(x, parse_chain("Upsample(scale=2, mode=linear, rank=1)")[0])
    transposed = oracle.conv_transpose(
        x, (WindowAxis(4, 2, 1, 1, 1),), np.array([0.25, 0.75, 0.75, 0.25])
    )
    np.testing.assert_allclose(linear[1:-1], transposed[1:-1], atol=1e-12)
    assert not np.allclose(linear[[0, -1]], transposed[[0, -1]])


@settings(max_examples=400, deadline=None)
@given(axis=conv_transpose_axis(), n=st.integers(1, 12))
def test_theory_interior_range(axis, n):
    """§2.2: a single ConvT equals P[o mod s] on o in [(k-1)d - p, (n-1)s - p], any end pad/op;
    §2.2: with gcd(d, s) = 1, max/min of P is ceil(k/s)/floor(k/s) (holes when k < s)."""
    k, s, d, p = axis["k"], axis["s"], axis["d"], axis["p"]
    window = WindowAxis(k, s, d, p, axis["pe"], axis["op"])
    assume(oracle.conv_transpose_length(n, window) > 0)
    coverage = oracle.conv_transpose(np.ones(n), (window,))
    pattern = np.array([sum(1 for j in range(k) if (j * d - p) % s == q) for q in range(s)])
    o = np.arange((k - 1) * d - p, min((n - 1) * s - p, coverage.size - 1) + 1)
    np.testing.assert_array_equal(coverage[o], pattern[o % s])
    if math.gcd(d, s) == 1:
        assert ratio(pattern) == (INF if k < s else math.ceil(k / s) / (k // s))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 9), min_size=1, max_size=6), min_size=1, max_size=3))
def test_theory_cv_composes_across_axes(patterns):
    """§2.3: CV_nd^2 = prod(1 + CV_a^2) - 1, and CBI = CV^2 / (1 + CV^2)."""
    axes = [np.array(p, float) for p in patterns]
    cv_axes = [a.std() / a.mean() for a in axes]
    assert cv_nd(axes) ** 2 == pytest.approx(math.prod(1 + c * c for c in cv_axes) - 1, abs=1e-12)
    block = outer(axes)
    cbi = ((block - block.mean()) ** 2).sum() / (block**2).sum()
    assert cbi == pytest.approx(cv_nd(axes) ** 2 / (1 + cv_nd(axes) ** 2), abs=1e-12)


@pytest.mark.parametrize(
    "spec,fanout",
    [
        ("Upsample(scale=3/2, mode=linear)", [1.5, 1.5]),
        ("Upsample(scale=5/2, mode=nearest)", [3, 2]),
        ("Upsample(scale=5/2, mode=nearest-exact)", [2, 3]),
    ],
)
def test_theory_resize_fanout(spec, fanout):
    """§2.5: x1.5 linear (half_pixel) fans out 1.5 evenly; x2.5 nearest [3,2], nearest-exact [2,3]."""
    got = oracle.backward_fanout(parse_chain(spec), 0, 20)
    np.testing.assert_allclose(got[2:18], np.tile(fanout, 8))

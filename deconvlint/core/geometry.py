"""Coverage geometry: phase patterns, their propagation along a path, and their metrics.

Pure numpy.  A *pattern* is the interior coverage of one spatial axis over one period: a 1-D
float array ``c`` of length ``T`` such that the coverage at every interior output index ``o`` is
``c[o % T]``.  Coverage is defined by the all-ones model: learnable kernels are ones, biases are
dropped, activations and normalisations are the identity, the input is ones; fixed ops (pooling,
interpolation, fixed depthwise filters) keep their real weights.  Every learnable kernel of ones
is separable, so N-D coverage is the outer product of the per-axis patterns and each axis can be
propagated on its own.  The work is on one period per axis, so the cost does not depend on the
spatial size of the input.

>>> phase_pattern(kernel=3, stride=2, pads_begin=1)
array([1., 2.])
>>> from deconvlint.core.chainspec import parse_chain
>>> chain_patterns(parse_chain("ConvTranspose1d(k=3, s=2, p=1, op=1) -> ConvTranspose1d(k=3, s=2, p=1, op=1)"))
[array([1., 3., 2., 3.])]
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, Node, ResizeSpec

UNIFORM = np.ones(1)

# Relative tolerance for "uniform" on float patterns (interpolation weights, blur taps).
_RTOL = 1e-9


class UnknownGeometry(Exception):
    """A step whose effect on the pattern is not known statically (e.g. an unresolved scale)."""


# --------------------------------------------------------------------------------------------
# one transposed conv / conv


def phase_pattern(kernel: int, stride: int, dilation: int = 1, pads_begin: int = 0) -> np.ndarray:
    """Taps per output phase of a transposed conv: tap ``j`` lands on ``(j*d - p) mod s``.

    >>> phase_pattern(kernel=2, stride=2, dilation=2)   # k % s == 0, yet every other row empty
    array([2., 0.])
    """
    taps = np.arange(kernel) * dilation - pads_begin
    return np.bincount(taps % stride, minlength=stride).astype(float)


def conv_transpose_step(
    c: np.ndarray, taps: np.ndarray, stride: int, dilation: int = 1, pads_begin: int = 0
) -> np.ndarray:
    """Pattern after a transposed conv with kernel ``taps``; the period grows to ``T*s``.

    Output ``o`` gets ``sum_j taps[j] * c[(o + p - j*d)/s]`` over the taps with ``s | o+p-j*d``.
    """
    if len(c) == 1:  # a uniform input (most of them): taps summed per phase, in tap order
        phases = (np.arange(len(taps)) * dilation - pads_begin) % stride
        return np.bincount(phases, weights=np.asarray(taps, dtype=float) * c[0], minlength=stride)
    period = len(c) * stride
    out = np.zeros(period)
    o = np.arange(period)
    for j, w in enumerate(taps):
        source = o + pads_begin - j * dilation
        hit = source % stride == 0
        out[hit] += w * c[(source[hit] // stride) % len(c)]
    return out


def conv_step(
    c: np.ndarray,
    taps: np.ndarray,
    stride: int = 1,
    dilation: int = 1,
    pads_begin: int = 0,
    reduce: str = "sum",
) -> np.ndarray:
    """Pattern after a conv (or pool): ``out[o] = sum_j taps[j] * c[o*s + j*d - p]``.

    A stride decimates: the period becomes ``T / gcd(T, s)``.  ``reduce="max"`` is max pooling.
    """
    if len(c) == 1:  # a uniform pattern (most of them): the same product, without the index
        row = np.full((1, len(taps)), c[0])
        return row.max(axis=1) if reduce == "max" else row @ np.asarray(taps, dtype=float)
    period = len(c) // math.gcd(len(c), stride)
    index = (
        np.arange(period)[:, None] * stride + np.arange(len(taps))[None, :] * dilation - pads_begin
    ) % len(c)
    if reduce == "max":
        return c[index].max(axis=1)
    return c[index] @ np.asarray(taps, dtype=float)


def shift_step(c: np.ndarray, offset: int, step: int = 1) -> np.ndarray:
    """Pad/Slice: output ``o`` reads input ``offset + o*step``."""
    period = len(c) // math.gcd(len(c), step)
    return c[(offset + np.arange(period) * step) % len(c)]


# --------------------------------------------------------------------------------------------
# resizes (ONNX Resize-19 semantics)


def _coordinate(o: int, scale: Fraction, spec: ResizeSpec, axis: int) -> Fraction:
    """Input coordinate of output index ``o`` (the spec's coordinate_transformation_mode)."""
    mode = spec.coordinate_transformation_mode
    if mode in ("half_pixel", "pytorch_half_pixel"):
        return (o + Fraction(1, 2)) / scale - Fraction(1, 2)
    if mode == "asymmetric":
        return o / scale
    if mode == "tf_half_pixel_for_nn":
        return (o + Fraction(1, 2)) / scale
    if mode == "half_pixel_symmetric":
        n_in = _length(spec.input_lengths, axis)
        n_out = _length(spec.output_lengths, axis)
        if n_in is None or n_out is None:
            raise UnknownGeometry(
                "half_pixel_symmetric depends on the input length, not known here"
            )
        # adjustment = out_int / (scale * in); offset = in/2 * (1 - adjustment)
        offset = Fraction(n_in, 2) * (1 - Fraction(n_out) / (scale * n_in))
        return offset + (o + Fraction(1, 2)) / scale - Fraction(1, 2)
    raise UnknownGeometry(f"coordinate_transformation_mode {mode!r} is not periodic")


def _length(lengths: tuple[int | None, ...], axis: int) -> int | None:
    return lengths[axis] if axis < len(lengths) else None


def _round_nearest(x: Fraction, nearest_mode: str) -> int:
    floor = math.floor(x)
    frac = x - floor
    if nearest_mode == "floor":
        return floor
    if nearest_mode == "ceil":
        return math.ceil(x)
    if frac == Fraction(1, 2):
        return floor if nearest_mode == "round_prefer_floor" else floor + 1
    return floor + (1 if frac > Fraction(1, 2) else 0)


def _cubic_weights(t: Fraction, a: float) -> list[tuple[int, float]]:
    """Keys' cubic convolution weights for taps -1..2 at fractional offset ``t``."""

    def w(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2:
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return 0.0

    tf = float(t)
    return [(-1, w(1 + tf)), (0, w(tf)), (1, w(1 - tf)), (2, w(2 - tf))]


def resize_taps(o: int, spec: ResizeSpec, axis: int) -> list[tuple[int, float]]:
    """(input index, weight) pairs that make output ``o`` in the interior."""
    scale = spec.scales[axis]
    assert scale is not None
    x = _coordinate(o, scale, spec, axis)
    if spec.mode == "nearest":
        return [(_round_nearest(x, spec.nearest_mode), 1.0)]
    x0 = math.floor(x)
    t = x - x0
    if spec.mode == "linear":
        return [(x0, float(1 - t)), (x0 + 1, float(t))]
    if spec.mode == "cubic":
        return [(x0 + dx, w) for dx, w in _cubic_weights(t, spec.cubic_coeff_a)]
    raise UnknownGeometry(f"resize mode {spec.mode!r}")


def resize_step(c: np.ndarray, spec: ResizeSpec, axis: int) -> np.ndarray:
    """Pattern after a resize along ``axis``.

    With scale ``a/b`` (output/input) the coordinate map satisfies ``x(o + a) = x(o) + b``, so the
    output period is ``a * T / gcd(T, b)``.  Interpolation weights sum to one, so a uniform
    pattern stays uniform whatever the mode (this also covers align_corners, whose map is not
    periodic).
    """
    scale = spec.scales[axis]
    if scale is None:
        raise UnknownGeometry("the resize scale could not be resolved statically")
    if scale == 1:
        return c
    if is_uniform(c):
        return c[:1].copy()
    if spec.antialias and scale < 1 and spec.mode != "nearest":
        raise UnknownGeometry("antialiased downscaling of a non-uniform pattern")
    a, b = scale.numerator, scale.denominator
    period = a * (len(c) // math.gcd(len(c), b))
    out = np.zeros(period)
    for o in range(period):
        out[o] = sum(w * c[i % len(c)] for i, w in resize_taps(o, spec, axis))
    return out


def nearest_fanout(spec: ResizeSpec, axis: int) -> np.ndarray:
    """How many outputs copy each input, over one input period (index 0 = input index 0).

    >>> from deconvlint.core.ir import ResizeSpec
    >>> spec = ResizeSpec(mode="nearest", scales=(Fraction(3, 2),),
    ...                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    >>> nearest_fanout(spec, 0)
    array([2., 1.])
    """
    scale = spec.scales[axis]
    if scale is None:
        raise UnknownGeometry("the resize scale could not be resolved statically")
    a, b = scale.numerator, scale.denominator
    # Outputs o in [a, 2a) read inputs in about [b, 2b) + rounding: count them modulo b.
    counts = np.zeros(b)
    for o in range(a, 2 * a):
        counts[_round_nearest(_coordinate(o, scale, spec, axis), spec.nearest_mode) % b] += 1
    return counts


# --------------------------------------------------------------------------------------------
# one node, one axis


def separable_taps(kernel: np.ndarray) -> list[np.ndarray] | None:
    """Per-axis taps whose outer product is ``kernel``, or None if it is not separable."""
    kernel = np.asarray(kernel, dtype=float)
    total = kernel.sum()
    if total == 0:
        return None
    factors = []
    for axis in range(kernel.ndim):
        other = tuple(a for a in range(kernel.ndim) if a != axis)
        factors.append(kernel.sum(axis=other) if other else kernel)
    factors = [f / total for f in factors[:-1]] + [factors[-1]]
    rebuilt = factors[0]
    for f in factors[1:]:
        rebuilt = np.multiply.outer(rebuilt, f)
    if np.allclose(rebuilt, kernel, rtol=1e-9, atol=1e-12 * abs(total)):
        return factors
    return None


def node_taps(node: Node, axis: int) -> np.ndarray:
    """The taps of a window op along ``axis`` under the all-ones model."""
    win = node.window[axis]
    if node.fixed_kernel is not None:
        factors = separable_taps(node.fixed_kernel)
        if factors is not None:
            return factors[axis]
    if node.kind is Kind.AVG_POOL:
        return np.full(win.kernel, 1.0 / win.kernel)
    return np.ones(win.kernel)


def propagate(c: np.ndarray, node: Node, axis: int) -> np.ndarray:
    """The pattern after ``node`` along ``axis``, given the pattern ``c`` arriving there."""
    kind = node.kind
    if kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        win = node.window[axis]
        return conv_transpose_step(
            c, node_taps(node, axis), win.stride, win.dilation, win.pads_begin
        )
    if kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
        win = node.window[axis]
        reduce = "max" if kind is Kind.MAX_POOL else "sum"
        return conv_step(c, node_taps(node, axis), win.stride, win.dilation, win.pads_begin, reduce)
    if kind is Kind.RESIZE:
        assert node.resize is not None
        return resize_step(c, node.resize, axis)
    if kind is Kind.DEPTH_TO_SPACE:
        return np.repeat(c, node.block[axis])  # output o reads input floor(o/r)
    if kind is Kind.SPACE_TO_DEPTH:
        # One channel path (phase 0): output o reads input o*r.
        return shift_step(c, 0, node.block[axis])
    if kind is Kind.SHIFT:
        return shift_step(c, node.shift[axis].offset, node.shift[axis].step)
    if kind in (Kind.POINTWISE, Kind.JOIN):
        return c
    raise UnknownGeometry(f"{node.op_type} has no known spatial geometry")


def propagate_all(patterns: Sequence[np.ndarray], node: Node) -> list[np.ndarray]:
    """Propagate every axis through ``node``; axes the node lacks stay as they are."""
    rank = max(node.spatial_rank, len(patterns))
    current = list(patterns) + [UNIFORM] * (rank - len(patterns))
    if node.spatial_rank == 0:
        return current
    if node.spatial_rank != rank:
        raise UnknownGeometry(
            f"{node.op_type} acts on {node.spatial_rank} spatial axes, the path has {rank}"
        )
    if node.fixed_kernel is not None and separable_taps(node.fixed_kernel) is None:
        # A non-separable filter has no per-axis form; it keeps a uniform pattern uniform.
        if not all(is_uniform(c) for c in current):
            raise UnknownGeometry(f"{node.op_type} is a non-separable fixed filter")
        flat = [c[:1].copy() for c in current]
        flat[0] = flat[0] * float(np.sum(node.fixed_kernel))
        return flat
    return [propagate(c, node, a) for a, c in enumerate(current)]


def output_periods(lengths: Sequence[int], node: Node) -> list[int]:
    """The period of each axis after ``node`` given the periods arriving there, without
    computing the pattern (an upper bound: the pattern may turn out shorter).  The coverage pass
    asks it before each step, so that a period past its cap is never built.

    >>> from deconvlint.core.chainspec import parse_layer
    >>> output_periods([4096], parse_layer("ConvTranspose1d(k=3, s=2)"))
    [8192]
    """
    rank = max(node.spatial_rank, len(lengths))
    current = list(lengths) + [1] * (rank - len(lengths))
    if node.spatial_rank != rank:
        return current  # nothing to do, or a rank mismatch that propagate_all reports
    return [_output_period(t, node, axis) for axis, t in enumerate(current)]


def _output_period(t: int, node: Node, axis: int) -> int:
    kind = node.kind
    if kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        return t * node.window[axis].stride
    if kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
        return t // math.gcd(t, node.window[axis].stride)
    if kind is Kind.RESIZE and node.resize is not None:
        scale = node.resize.scales[axis] if axis < len(node.resize.scales) else None
        if scale is None or scale == 1 or t == 1:
            return t
        return scale.numerator * (t // math.gcd(t, scale.denominator))
    if kind is Kind.DEPTH_TO_SPACE:
        return t * node.block[axis]
    if kind is Kind.SPACE_TO_DEPTH:
        return t // math.gcd(t, node.block[axis])
    if kind is Kind.SHIFT:
        return t // math.gcd(t, node.shift[axis].step)
    return t


def chain_patterns(nodes: Sequence[Node]) -> list[np.ndarray]:
    """Per-axis interior patterns after a chain of nodes, starting from a uniform input.

    >>> from deconvlint.core.chainspec import parse_chain
    >>> chain_patterns(parse_chain("ConvTranspose2d(k=4, s=2, p=1) -> ConvTranspose2d(k=3, s=2, p=1, op=1)"))
    [array([2., 4., 2., 4.]), array([2., 4., 2., 4.])]
    """
    patterns: list[np.ndarray] = []
    for node in nodes:
        patterns = propagate_all(patterns, node)
    return patterns


def layer_patterns(node: Node) -> list[np.ndarray]:
    """A transposed conv's (or unpool's, or strided conv's backward) own per-axis phase pattern."""
    return [phase_pattern(w.kernel, w.stride, w.dilation, w.pads_begin) for w in node.window]


# --------------------------------------------------------------------------------------------
# metrics


def is_uniform(c: np.ndarray) -> bool:
    if len(c) == 1:
        return math.isfinite(c[0])  # as below: the spread of [nan] or [inf] is nan
    return bool(np.ptp(c) <= _RTOL * max(1.0, float(np.max(np.abs(c)))))


def minimal_period(c: np.ndarray) -> np.ndarray:
    """The shortest prefix of ``c`` whose repetition is ``c``: [2,4,2,4] -> [2,4].

    The periods of ``c`` that divide its length are the multiples of the shortest one, so it is
    reached by dividing the length by one prime factor at a time while the quotient is still a
    period: O(T log T), not O(T * divisors).

    >>> minimal_period(np.array([1., 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]))
    array([1., 2., 3.])
    """
    period = len(c)
    for prime in _prime_factors(period):
        while period % prime == 0 and _has_period(c, period // prime):
            period //= prime
    return c[:period].copy()


def _has_period(c: np.ndarray, t: int) -> bool:
    """``c[i + t] == c[i]`` (to a relative tolerance) for every ``i``."""
    ahead, behind = c[t:], c[:-t]
    return bool(np.all(np.abs(ahead - behind) <= _RTOL * np.abs(behind)))


def _prime_factors(n: int) -> list[int]:
    factors, q = [], 2
    while q * q <= n:
        if n % q == 0:
            factors.append(q)
            while n % q == 0:
                n //= q
        q += 1
    return factors + ([n] if n > 1 else [])


def coefficient_of_variation(c: np.ndarray) -> float:
    """Population std / mean over one period (0 for a uniform pattern)."""
    mean = float(np.mean(c))
    if is_uniform(c):
        return 0.0
    return float(np.std(c)) / mean if mean != 0 else math.inf


#: A finding shows at most this many entries of each axis pattern (text, HTML, JSON); a longer
#: period is summarised by its length, minimum and maximum (``pattern_summary``).
MAX_SHOWN = 32


class ShownPattern(list):
    """The first :data:`MAX_SHOWN` entries of a longer axis pattern; ``length``: all of them."""

    length: int = 0


def plain_number(x: float) -> Any:
    """A metric as findings carry it: a whole number as an int (so JSON writes ``2``, not
    ``2.0``), any other float rounded to 6 decimals, ``None`` for a NaN or an infinity.

    >>> plain_number(2.0), plain_number(1 / 3), plain_number(float("inf"))
    (2, 0.333333, None)
    """
    if not math.isfinite(x):
        return None
    r = round(float(x), 6)
    return int(r) if r == int(r) else r


def _scaled(x: float, exp: int) -> float | None:
    """``x * 2**exp``, or None when it is not a finite float."""
    try:
        value = math.ldexp(x, exp)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _coverage(x: float, exp: int) -> Any:
    value = _scaled(x, exp)
    return None if value is None else plain_number(value)


def _shown(c: np.ndarray) -> list:
    values = [plain_number(x) for x in c[:MAX_SHOWN]]
    if len(c) <= MAX_SHOWN:
        return values
    row = ShownPattern(values)
    row.length = len(c)
    return row


def _minimal_periods(patterns: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [minimal_period(np.asarray(c, dtype=float)) for c in patterns]


def _periods_cv(patterns: list[np.ndarray]) -> float | None:
    """The N-D CV of minimal per-axis periods, rounded as in the metrics (None: not finite)."""
    with np.errstate(all="ignore"):
        cvs = [coefficient_of_variation(c) for c in patterns]
    # N-D CV of an outer product: CV^2 = prod(1 + CV_a^2) - 1
    if not all(math.isfinite(v) for v in cvs):
        return None
    cv = math.sqrt(max(0.0, math.prod(1 + v * v for v in cvs) - 1))
    return round(cv, 4) if math.isfinite(cv) else None


def pattern_cv(patterns: Sequence[np.ndarray]) -> float | None:
    """The ``cv`` of :func:`pattern_metrics` alone (the rules rank stacks and paths by it),
    without building the rest of the metrics.

    >>> pattern_cv([phase_pattern(3, 2, 1, 1)] * 2)
    0.4843
    """
    key = tuple((c.dtype.str, c.shape, c.tobytes()) for c in map(np.asarray, patterns))
    return _cv_of(key)


@functools.lru_cache(maxsize=4096)
def _cv_of(key: tuple) -> float | None:
    """:func:`pattern_cv` by content: the paths of a U-Net carry the same few patterns."""
    patterns = [np.frombuffer(data, dtype=dtype).reshape(shape) for dtype, shape, data in key]
    return _periods_cv(_minimal_periods(patterns))


def pattern_metrics(patterns: Sequence[np.ndarray], exp: int = 0) -> dict[str, Any]:
    """The metrics of an N-D pattern given per axis, times ``2**exp`` (the JSON contract's
    ``metrics``).  At most :data:`MAX_SHOWN` entries per axis are listed; a longer axis adds
    ``pattern_summary``.  A coverage that is not a finite float is ``None``, with a ``note``.

    >>> m = pattern_metrics([phase_pattern(3, 2, 1, 1)] * 2)
    >>> m["pattern"], m["max_coverage"], m["min_coverage"], m["ratio"], m["cv"]
    ([[1, 2], [1, 2]], 4, 1, 4.0, 0.4843)
    """
    patterns = _minimal_periods(patterns)
    with np.errstate(all="ignore"):  # a hostile fixed kernel can reach inf: None below
        # The extremes of an outer product are products of per-axis extremes (each factor is
        # linear in its axis), so the N-D period is never built.
        corners = [(float(c.max()), float(c.min())) for c in patterns]
        products = [math.prod(choice) for choice in itertools.product(*corners)]
        high, low = max(products, default=1.0), min(products, default=1.0)
    ratio = high / low if low > 0 and math.isfinite(high) else None
    metrics = {
        "pattern": [_shown(c) for c in patterns],
        "period": [len(c) for c in patterns],
        "max_coverage": _coverage(high, exp),
        "min_coverage": _coverage(low, exp),
        "ratio": None if ratio is None or not math.isfinite(ratio) else round(ratio, 4),
        "cv": _periods_cv(patterns),
    }
    if any(len(c) > MAX_SHOWN for c in patterns):
        metrics["pattern_summary"] = [
            {
                "length": len(c),
                "min": plain_number(float(c.min())),
                "max": plain_number(float(c.max())),
            }
            for c in patterns
        ]
    if exp:
        metrics["pattern_scale"] = f"2^{exp}"
    if metrics["max_coverage"] is None or metrics["min_coverage"] is None:
        metrics["note"] = "coverage too large to represent; the pattern is relative (see ratio, cv)"
    return metrics


def patterns_uniform(patterns: Sequence[np.ndarray]) -> bool:
    return all(is_uniform(c) for c in patterns)


def has_holes(patterns: Sequence[np.ndarray]) -> bool:
    return any(float(np.min(c)) <= 0 for c in patterns)

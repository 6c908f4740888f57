"""Brute-force coverage oracle: the referee for :mod:`deconvlint.core.geometry`.

Written from the definitions only (not from the geometry code).  The all-ones model: every
learnable kernel is ones, biases are dropped, activations are the identity, the input is ones, and
fixed ops keep their real weights (average pools divide by the window size, max pools take the
window max, resizes use their ONNX Resize-19 interpolation weights, a ``fixed_kernel`` uses its
taps).  The oracle simulates the chain on a long signal, numpy loops over kernel taps, nothing
clever, and reads the interior off the result.

Interior: a position is *clean* when everything it reads is clean in the layer before (the input
is clean everywhere inside its bounds); clean values equal those of the same chain run on an
endless input, so they are periodic.  Read ranges are over-approximated, which can only make the
interior smaller, never wrong.

>>> from deconvlint.core.chainspec import parse_chain
>>> [p.tolist() for p in oracle_patterns(parse_chain("ConvTranspose1d(k=3, s=2, p=1, op=1)"))]
[[1.0, 2.0]]
>>> interior_matches(parse_chain("ConvTranspose2d(k=4, s=2, p=1)"), [np.array([2.0])] * 2)
(True, '')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from deconvlint.core.ir import Kind, Node, WindowAxis

#: Largest array (elements) the oracle agrees to build; chains beyond this raise TooLarge.
MAX_ELEMENTS = 4_000_000


class TooLarge(Exception):
    """The simulation would need an input too long for a brute-force run."""


class NotPeriodic(Exception):
    """The simulated interior is not periodic with the oracle's period (length-dependent op)."""


# ------------------------------------------------------------------------------------------------
# Nodes, axes and ranks


def chain_rank(nodes: Sequence[Node]) -> int:
    """Largest spatial rank in the chain (pointwise ops have rank 0)."""
    return max((node.spatial_rank for node in nodes), default=0)


def _fixed_taps(kernel: np.ndarray, axis: int) -> np.ndarray:
    """1-D taps of a separable N-D fixed kernel; the kernel's total sum goes on axis 0."""
    total = float(kernel.sum())
    marginals = [
        kernel.sum(axis=tuple(b for b in range(kernel.ndim) if b != a)) for a in range(kernel.ndim)
    ]
    outer = marginals[0]
    for m in marginals[1:]:
        outer = np.multiply.outer(outer, m)
    # separable K == outer(marginals) / sum(K)^(R-1)
    if not np.allclose(outer / total ** (kernel.ndim - 1), kernel):
        raise ValueError("fixed kernel is not separable: use the N-D simulation")
    taps = marginals[axis] / total
    return taps * total if axis == 0 else taps


def axis_node(node: Node, axis: int, taps: bool = True) -> Node:
    """The node restricted to one spatial axis (a rank-1 node, or the node itself if pointwise).

    ``taps=False`` drops a fixed kernel (index maps only), so non-separable kernels pass.
    """
    rank = node.spatial_rank
    if rank == 0:
        return node
    changes: dict = {}
    if node.window:
        changes["window"] = (node.window[axis],)
    if node.resize is not None:
        spec = node.resize
        changes["resize"] = dataclasses.replace(
            spec,
            scales=(spec.scales[axis],),
            input_lengths=spec.input_lengths[axis : axis + 1],
            output_lengths=spec.output_lengths[axis : axis + 1],
        )
    if node.block:
        changes["block"] = (node.block[axis],)
    if node.shift:
        changes["shift"] = (node.shift[axis],)
    if node.fixed_kernel is not None:
        kernel = np.asarray(node.fixed_kernel, float)
        changes["fixed_kernel"] = _fixed_taps(kernel, axis) if taps else None
    return dataclasses.replace(node, **changes)


def _check_ranks(nodes: Sequence[Node]) -> int:
    rank = chain_rank(nodes)
    for node in nodes:
        if node.spatial_rank not in (0, rank):
            raise ValueError(f"{node.name}: rank {node.spatial_rank} in a rank-{rank} chain")
    return rank


# ------------------------------------------------------------------------------------------------
# Resize: ONNX Resize-19 coordinate transforms, exact in rationals


def _resize_coordinate(spec, n: int, length_out: int) -> tuple[Fraction, Fraction]:
    """``x_original = alpha*x_resized + beta`` for one axis, as exact fractions.

    ``scale`` is the given scale (as onnxruntime and the ONNX reference use it when ``scales`` is
    an input); lengths enter only where the spec names them.
    """
    scale = Fraction(spec.scales[0])
    mode = spec.coordinate_transformation_mode
    half = Fraction(1, 2)
    if mode == "half_pixel":  # (x + 0.5)/scale - 0.5
        return 1 / scale, half / scale - half
    if mode == "pytorch_half_pixel":  # length_resized > 1 ? (x + 0.5)/scale - 0.5 : 0
        return (1 / scale, half / scale - half) if length_out > 1 else (Fraction(0), Fraction(0))
    if mode == "asymmetric":  # x/scale
        return 1 / scale, Fraction(0)
    if mode == "tf_half_pixel_for_nn":  # (x + 0.5)/scale   (Resize-11/13)
        return 1 / scale, half / scale
    if mode == "align_corners":  # x*(length_original - 1)/(length_resized - 1)
        if length_out == 1:
            return Fraction(0), Fraction(0)
        return Fraction(n - 1, length_out - 1), Fraction(0)
    if mode == "half_pixel_symmetric":
        # adjustment = output_width_int/output_width; offset = input_width/2*(1 - adjustment)
        adjustment = Fraction(length_out) / (scale * n)
        offset = Fraction(n, 2) * (1 - adjustment)
        return 1 / scale, offset + half / scale - half
    raise NotImplementedError(f"coordinate_transformation_mode {mode!r}")


def _cubic_weight(u: np.ndarray, a: float) -> np.ndarray:
    """Keys cubic convolution kernel W(u) with coefficient ``a`` (ONNX ``cubic_coeff_a``)."""
    u = np.abs(u)
    near = ((a + 2) * u - (a + 3)) * u * u + 1  # |u| <= 1
    far = ((a * u - 5 * a) * u + 8 * a) * u - 4 * a  # 1 < |u| < 2
    return np.where(u <= 1, near, np.where(u < 2, far, 0.0))


def resize_taps(spec, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolation of one axis: ``y[o] = sum_m weights[o, m] * x[clip(index[o, m])]``.

    Returns ``(index, weights, unclamped_index)``; indices outside ``[0, n)`` are clamped (edge
    values, ONNX ``exclude_outside=0``).
    """
    if spec.scales[0] is None:
        raise NotImplementedError("resize scale not statically known")
    if spec.antialias and Fraction(spec.scales[0]) < 1:
        raise NotImplementedError("antialiased downscale")
    length_out = math.floor(n * Fraction(spec.scales[0]))
    alpha, beta = _resize_coordinate(spec, n, length_out)
    den = math.lcm(alpha.denominator, beta.denominator)
    o = np.arange(length_out, dtype=np.int64)
    num = o * int(alpha * den) + int(beta * den)  # x_original = num/den exactly
    floor, rem = num // den, num % den
    frac = rem / den
    if spec.mode == "nearest":
        rule = spec.nearest_mode
        if rule == "round_prefer_floor":  # round half down
            idx = floor + (2 * rem > den)
        elif rule == "round_prefer_ceil":  # round half up
            idx = floor + (2 * rem >= den)
        elif rule == "floor":
            idx = floor
        elif rule == "ceil":
            idx = floor + (rem > 0)
        else:
            raise NotImplementedError(f"nearest_mode {rule!r}")
        raw, weights = idx[:, None], np.ones((length_out, 1))
    elif spec.mode == "linear":
        raw = floor[:, None] + np.arange(2)
        weights = np.stack([1 - frac, frac], axis=1)
    elif spec.mode == "cubic":
        raw = floor[:, None] + np.arange(-1, 3)
        weights = _cubic_weight(frac[:, None] - np.arange(-1, 3), spec.cubic_coeff_a)
    else:
        raise NotImplementedError(f"resize mode {spec.mode!r}")
    return np.clip(raw, 0, n - 1), weights, raw


# ------------------------------------------------------------------------------------------------
# The ops, on arrays whose dimensions are the spatial axes


def _read_span(y: np.ndarray, starts: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
    """``out[o] = y[start + o]`` per axis, zero where ``start + o`` falls outside ``y``."""
    pads = [
        (max(0, -st), max(0, st + ln - n))
        for st, ln, n in zip(starts, lengths, y.shape, strict=True)
    ]
    padded = np.pad(y, pads)
    index = tuple(
        slice(st + pb, st + pb + ln) for st, ln, (pb, _) in zip(starts, lengths, pads, strict=True)
    )
    return padded[index]


def conv_transpose_length(n: int, w: WindowAxis) -> int:
    """``(n-1)*s + d*(k-1) + 1 - pads_begin - pads_end + output_padding``."""
    return (n - 1) * w.stride + w.effective_kernel - w.pads_begin - w.pads_end + w.output_padding


def conv_length(n: int, w: WindowAxis) -> int:
    """``floor((n + pads_begin + pads_end - d*(k-1) - 1)/s) + 1``."""
    return (n + w.pads_begin + w.pads_end - w.dilation * (w.kernel - 1) - 1) // w.stride + 1


def conv_transpose(x: np.ndarray, windows, kernel: np.ndarray | None = None) -> np.ndarray:
    """Scatter: input ``i``, tap ``j`` writes output ``i*s + j*d - pads_begin``."""
    full = [(n - 1) * w.stride + w.effective_kernel for n, w in zip(x.shape, windows, strict=True)]
    y = np.zeros(full)
    for taps in np.ndindex(*[w.kernel for w in windows]):
        weight = 1.0 if kernel is None else kernel[taps]
        target = tuple(
            slice(j * w.dilation, j * w.dilation + (n - 1) * w.stride + 1, w.stride)
            for j, n, w in zip(taps, x.shape, windows, strict=True)
        )
        y[target] += weight * x
    lengths = [conv_transpose_length(n, w) for n, w in zip(x.shape, windows, strict=True)]
    return _read_span(y, [w.pads_begin for w in windows], lengths)


def conv(x: np.ndarray, windows, kernel=None, reduce: str = "sum") -> np.ndarray:
    """Gather: output ``o`` reads input ``o*s + j*d - pads_begin`` (cross-correlation)."""
    lengths = [conv_length(n, w) for n, w in zip(x.shape, windows, strict=True)]
    if min(lengths) <= 0:
        raise ValueError("empty output")
    fill = -np.inf if reduce == "max" else 0.0
    padded = np.pad(x, [(w.pads_begin, w.pads_end) for w in windows], constant_values=fill)
    y = np.full(lengths, fill)
    for taps in np.ndindex(*[w.kernel for w in windows]):
        source = padded[
            tuple(
                slice(j * w.dilation, j * w.dilation + (n - 1) * w.stride + 1, w.stride)
                for j, n, w in zip(taps, lengths, windows, strict=True)
            )
        ]
        weight = 1.0 if kernel is None else kernel[taps]
        y = np.maximum(y, source) if reduce == "max" else y + weight * source
    return y


def resize(x: np.ndarray, node: Node) -> np.ndarray:
    """ONNX Resize, one axis after the other (N-linear / N-cubic are separable by definition)."""
    for axis in range(x.ndim):
        index, weights, _ = resize_taps(axis_node(node, axis).resize, x.shape[axis])
        shape = [1] * x.ndim
        shape[axis] = -1
        x = sum(
            weights[:, m].reshape(shape) * np.take(x, index[:, m], axis=axis)
            for m in range(weights.shape[1])
        )
    return x


def shift_length(n: int, offset: int, step: int) -> int:
    """Number of outputs ``o >= 0`` whose source ``offset + o*step`` is below ``n``."""
    return max(0, -(-(n - offset) // step))


def shift(x: np.ndarray, node: Node) -> np.ndarray:
    """Pad/Slice: output ``o`` reads input ``offset + o*step`` (zero outside the input)."""
    for axis, sh in enumerate(node.shift):
        n = x.shape[axis]
        source = sh.offset + np.arange(shift_length(n, sh.offset, sh.step)) * sh.step
        inside = (source >= 0) & (source < n)
        taken = np.take(x, np.clip(source, 0, n - 1), axis=axis)
        shape = [1] * x.ndim
        shape[axis] = -1
        x = taken * inside.reshape(shape)
    return x


def depth_to_space(x: np.ndarray, node: Node) -> np.ndarray:
    """One channel path of PixelShuffle/DepthToSpace: output ``o`` reads input ``floor(o/r)``."""
    for axis, r in enumerate(node.block):
        x = np.take(x, np.arange(x.shape[axis] * r) // r, axis=axis)
    return x


def apply_node(x: np.ndarray, node: Node) -> np.ndarray:
    """The all-ones model of one op on an array of the node's spatial rank."""
    kind = node.kind
    if kind == Kind.POINTWISE:
        return x
    if x.ndim != node.spatial_rank:
        raise ValueError(f"{node.name}: rank {node.spatial_rank} op on a {x.ndim}-D array")
    # the output, and a transposed conv's uncropped buffer, must stay brute-forceable
    size = math.prod(_output_shape(node, x.shape))
    if kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        windows = zip(x.shape, node.window, strict=True)
        size = max(size, math.prod((n - 1) * w.stride + w.effective_kernel for n, w in windows))
    if size > MAX_ELEMENTS:
        raise TooLarge(f"{node.name}: input {x.shape}")
    if kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        # MaxUnpool: every window that could write a position counts once
        kernel = node.fixed_kernel if kind == Kind.CONV_TRANSPOSE else None
        return conv_transpose(x, node.window, kernel)
    if kind == Kind.CONV:
        return conv(x, node.window, node.fixed_kernel)
    if kind == Kind.AVG_POOL:
        return conv(x, node.window) / math.prod(w.kernel for w in node.window)
    if kind == Kind.MAX_POOL:
        return conv(x, node.window, reduce="max")
    if kind == Kind.RESIZE:
        return resize(x, node)
    if kind == Kind.DEPTH_TO_SPACE:
        return depth_to_space(x, node)
    if kind == Kind.SHIFT:
        return shift(x, node)
    raise NotImplementedError(f"{node.name}: no all-ones model for {kind.value}")


def _output_shape(node: Node, shape: Sequence[int]) -> list[int]:
    """Output shape of a node (per axis, from its index map), without running it."""
    if node.spatial_rank == 0:
        return list(shape)
    return [read_range(axis_node(node, a, taps=False), n)[0] for a, n in enumerate(shape)]


def simulate(nodes: Sequence[Node], shape: Sequence[int]) -> np.ndarray:
    """Run the all-ones model of the chain, directly in N-D, on an all-ones input of ``shape``."""
    rank = _check_ranks(nodes)
    if len(shape) != rank:
        raise ValueError(f"input shape {tuple(shape)} for a rank-{rank} chain")
    x = np.ones(tuple(shape))
    for node in nodes:
        x = apply_node(x, node)
    return x


def simulate_axis(nodes: Sequence[Node], axis: int, n: int) -> np.ndarray:
    """The 1-D all-ones model of one spatial axis, on an all-ones input of length ``n``."""
    _check_ranks(nodes)
    x = np.ones(n)
    for node in nodes:
        x = apply_node(x, axis_node(node, axis))
    return x


# ------------------------------------------------------------------------------------------------
# Interior: lengths and read ranges, one axis


def read_range(node: Node, n: int) -> tuple[int, np.ndarray, np.ndarray]:
    """``(length_out, lo, hi)``: output ``o`` of a rank-1 node reads at most inputs ``lo..hi``.

    Unclamped (may leave ``[0, n)``), over-approximated where that is simpler.
    """
    kind = node.kind
    if kind == Kind.POINTWISE:
        o = np.arange(n)
        return n, o, o
    if kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        (w,) = node.window
        length = conv_transpose_length(n, w)
        o = np.arange(max(length, 0))
        # i*s + j*d - pb = o  with  0 <= j*d <= d*(k-1)
        return (
            length,
            (o + w.pads_begin - w.dilation * (w.kernel - 1)) // w.stride,
            (o + w.pads_begin) // w.stride,
        )
    if kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
        (w,) = node.window
        length = conv_length(n, w)
        o = np.arange(max(length, 0))
        lo = o * w.stride - w.pads_begin
        return length, lo, lo + w.dilation * (w.kernel - 1)
    if kind == Kind.RESIZE:
        index, _, raw = resize_taps(node.resize, n)
        return len(index), raw.min(axis=1), raw.max(axis=1)
    if kind == Kind.DEPTH_TO_SPACE:
        (r,) = node.block
        o = np.arange(n * r)
        return n * r, o // r, o // r
    if kind == Kind.SHIFT:
        (sh,) = node.shift
        length = shift_length(n, sh.offset, sh.step)
        source = sh.offset + np.arange(length) * sh.step
        return length, source, source
    raise NotImplementedError(f"{node.name}: no read range for {kind.value}")


def clean_range(nodes: Sequence[Node], axis: int, n: int) -> tuple[int, int, int]:
    """``(length_out, first, last)`` of the clean (interior) outputs on one axis; empty if first>last."""
    length, first, last = n, 0, n - 1
    for node in nodes:
        length, lo, hi = read_range(axis_node(node, axis, taps=False), length)
        if length > MAX_ELEMENTS:
            raise TooLarge(f"axis {axis}: length {length} after {node.name}")
        if length <= 0:
            raise ValueError(f"{node.name}: empty output for input length {n}")
        clean = np.flatnonzero((lo >= first) & (hi <= last))
        if clean.size == 0:
            return length, 0, -1
        if clean[-1] - clean[0] + 1 != clean.size:
            raise AssertionError(f"{node.name}: clean outputs are not an interval")
        first, last = int(clean[0]), int(clean[-1])
    return length, first, last


def oracle_period(nodes: Sequence[Node], axis: int) -> int:
    """A period (not always minimal) of the interior of one axis, from the index maps alone."""
    period = 1
    for node in nodes:
        node = axis_node(node, axis, taps=False)
        kind = node.kind
        if kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
            period *= node.window[0].stride
        elif kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
            period //= math.gcd(period, node.window[0].stride)
        elif kind == Kind.SHIFT:
            period //= math.gcd(period, node.shift[0].step)
        elif kind == Kind.DEPTH_TO_SPACE:
            period *= node.block[0]
        elif kind == Kind.RESIZE:
            # x_original moves by T*b when o moves by T*a (scale a/b): a whole input period
            period *= Fraction(node.resize.scales[0]).numerator
    return period


def input_length_for(nodes: Sequence[Node], axis: int, interior: int) -> int:
    """Smallest power-of-two input length whose clean output has at least ``interior`` samples."""
    n = 8
    while True:
        try:
            _, first, last = clean_range(nodes, axis, n)
        except ValueError:  # output empty for a short input
            first, last = 0, -1
        if last - first + 1 >= interior:
            return n
        n *= 2


# ------------------------------------------------------------------------------------------------
# The referee


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
    return np.isclose(a, b, rtol=1e-9, atol=1e-9 * scale)


def _interior_1d(nodes: Sequence[Node], axis: int, interior: int) -> tuple[np.ndarray, int]:
    """Simulated values at clean outputs of one axis and the index of the first one."""
    n = input_length_for(nodes, axis, interior)
    _, first, last = clean_range(nodes, axis, n)
    return simulate_axis(nodes, axis, n)[first : last + 1], first


def oracle_patterns(nodes: Sequence[Node]) -> list[np.ndarray]:
    """The oracle's own interior pattern per axis, over ``oracle_period`` samples.

    Raises :class:`NotPeriodic` if the simulated interior does not repeat with that period.
    """
    patterns = []
    for axis in range(_check_ranks(nodes)):
        period = oracle_period(nodes, axis)
        values, first = _interior_1d(nodes, axis, 3 * period)
        o = first + np.arange(values.size)
        pattern = np.empty(period)
        for q in range(period):
            at_q = values[o % period == q]
            if not _close(at_q, np.full_like(at_q, at_q[0])).all():
                raise NotPeriodic(f"axis {axis}: phase {q} takes values {np.unique(at_q)[:6]}")
            pattern[q] = at_q[0]
        patterns.append(pattern)
    return patterns


def interior_matches(nodes: Sequence[Node], patterns: Sequence[np.ndarray]) -> tuple[bool, str]:
    """Does ``y[o] == patterns[a][o mod len(patterns[a])]`` hold on the interior of every axis?

    Simulated per axis (1-D) on an input long enough to show every pair of (oracle phase,
    claimed phase) at least twice.  ``detail`` says where and how it fails.
    """
    rank = _check_ranks(nodes)  # 0 for a chain of pointwise ops: no spatial axis, no pattern
    if len(patterns) != rank:
        return False, f"expected {rank} axis patterns, got {len(patterns)}"
    for axis, claimed in enumerate(patterns):
        claimed = np.asarray(claimed, dtype=float)
        if claimed.ndim != 1 or claimed.size == 0:
            return False, f"axis {axis}: pattern {claimed!r} is not a non-empty 1-D array"
        period = oracle_period(nodes, axis)
        span = math.lcm(period, claimed.size)
        values, first = _interior_1d(nodes, axis, 2 * span)
        o = first + np.arange(values.size)
        found = claimed[o % claimed.size]
        bad = np.flatnonzero(~_close(values, found))
        if bad.size:
            at = int(o[bad[0]])
            truth = values[(o >= first) & (o < first + span)]
            truth = np.roll(truth, first % span)  # index 0 = output index 0 mod span
            return False, (
                f"axis {axis}: at output {at} (phase {at % claimed.size} of {claimed.size}) the "
                f"oracle has {values[bad[0]]:g}, the pattern says {found[bad[0]]:g}; oracle over "
                f"{span} samples from index 0 mod {span}: {_fmt(truth)}, claimed {_fmt(claimed)}"
            )
    return True, ""


def interior_matches_nd(nodes: Sequence[Node], patterns: Sequence[np.ndarray]) -> tuple[bool, str]:
    """Direct N-D simulation; its interior block must equal the outer product of ``patterns``.

    Raises :class:`TooLarge` when the N-D input would be too big for a brute-force run.
    """
    rank = _check_ranks(nodes)
    if len(patterns) != rank:
        return False, f"expected {rank} axis patterns, got {len(patterns)}"
    claimed = [np.asarray(p, dtype=float) for p in patterns]
    if rank == 0:
        return True, ""
    shape, spans = [], []
    for axis, pattern in enumerate(claimed):
        spans.append(math.lcm(oracle_period(nodes, axis), pattern.size))
        shape.append(input_length_for(nodes, axis, spans[-1] + 1))
    if math.prod(shape) > MAX_ELEMENTS:
        raise TooLarge(f"N-D input {shape}")
    y = simulate(nodes, shape)
    block, grids = y, []
    for axis, n in enumerate(shape):
        _, first, last = clean_range(nodes, axis, n)
        block = np.take(block, np.arange(first, last + 1), axis=axis)
        grids.append(np.arange(first, last + 1) % claimed[axis].size)
    expected = claimed[0][grids[0]]
    for pattern, grid in zip(claimed[1:], grids[1:], strict=True):
        expected = np.multiply.outer(expected, pattern[grid])
    bad = np.argwhere(~_close(block, expected))
    if bad.size:
        where = tuple(int(b) for b in bad[0])
        return False, (
            f"N-D interior at clean offset {where}: simulated {block[where]:g}, outer product of "
            f"the patterns {expected[where]:g}"
        )
    return True, ""


def backward_fanout(nodes: Sequence[Node], axis: int, n: int) -> np.ndarray:
    """Gradient fan-out per input sample of one axis: ``sum_o dy[o]/dx[i]`` with ones upstream.

    Built column by column from unit inputs (the chain must be linear: no max pooling).
    """
    if any(node.kind == Kind.MAX_POOL for node in nodes):
        raise ValueError("max pooling is not linear")
    columns = []
    for i in range(n):
        x = np.zeros(n)
        x[i] = 1.0
        for node in nodes:
            x = apply_node(x, axis_node(node, axis))
        columns.append(x.sum())
    return np.array(columns)


def describe(nodes: Sequence[Node]) -> str:
    """A compact one-line form of a chain for failure messages."""
    parts = []
    for node in nodes:
        if node.window:
            args = "; ".join(
                f"k={w.kernel} s={w.stride} d={w.dilation} p=({w.pads_begin},{w.pads_end}) "
                f"op={w.output_padding}"
                for w in node.window
            )
        elif node.resize is not None:
            r = node.resize
            args = (
                f"{r.mode}, {r.coordinate_transformation_mode}, {r.nearest_mode}, "
                f"a={r.cubic_coeff_a}, scales={[str(v) for v in r.scales]}"
            )
        elif node.block:
            args = f"r={node.block}"
        elif node.shift:
            args = ", ".join(f"offset={sh.offset} step={sh.step}" for sh in node.shift)
        else:
            args = ""
        taps = "" if node.fixed_kernel is None else " fixed"
        parts.append(f"{node.op_type}({args}){taps}")
    return " -> ".join(parts)


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in np.asarray(values).ravel()) + "]"

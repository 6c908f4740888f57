"""The artifact probe (``--probe``): run the model on smooth inputs and measure, in the output of
every upsampler and every graph output, the energy at the frequencies its strides predict.

Pure numpy; the runners that execute a model live in :mod:`deconvlint.probe.onnx` (onnxruntime)
and :mod:`deconvlint.probe.torch`.

Inputs (:func:`probe_inputs`): a constant and a few random low-frequency fields (at most one
cycle per image extent on each axis), so that a network without periodic artifacts answers
with a smooth output.  A value whose upsampling period is ``T`` on an axis (the product of the
strides, block sizes and integer scales on the way, :func:`predicted_periods`) can only carry a
periodic artifact at ``k/T`` cycles per sample, ``k = 1 .. T-1``: its harmonics.

The measure (:func:`measure`): crop the interior (a border of an eighth of the length, at
least one period), apply a Hann window on every spatial axis and take the power spectrum summed
over channels.  The checkerboard is what the network paints on a flat region: the periodic part
of its answer to the *constant* input, i.e. the lines exactly at the harmonics ``k*L/T`` (the
bin and the Hann window's main lobe, one bin either side).  It is compared with the smooth
signal, the energy near DC averaged over all the inputs: ``10*log10`` of their ratio, in dB.

Why not the harmonic neighbourhoods of the random fields too: a nearest resize repeats each
sample (a staircase), which puts the images of a smooth input's spectrum at ``k/T +- f`` for
every frequency ``f`` of the input, right beside the harmonics, but with a zero exactly at
``k/T`` (the hold's transfer ``sin(pi T f)/sin(pi f)``).  The staircase follows the picture's
slope and vanishes on a flat region; a checkerboard does not.  Counting the neighbourhoods of
the random fields measured the staircase: the resize-convolution decoder in ``examples/``
(zero-mean weights, instance norms that remove DC) measured -16 dB and failed; counting the
constant input's lines it measures -75 dB (float32 round-off), while the CycleGAN decoder
keeps its +12 dB.

>>> x = np.ones((1, 32))                          # a flat 1-D signal, one channel
>>> checker = x * np.where(np.arange(32) % 2, 1.2, 0.8)
>>> measure([x], (2,)).db < -60, round(measure([checker], (2,)).db)
(True, -14)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from deconvlint.core.ir import UPSAMPLING_KINDS, Graph, Kind
from deconvlint.errors import DeconvlintError

#: Random smooth fields besides the constant input.
RANDOM_FIELDS = 3
#: A ratio below this is reported as this many dB (an exact zero has no logarithm).
FLOOR_DB = -200.0


class ProbeError(DeconvlintError):
    """The probe could not run: no runtime, dynamic shapes, an input it cannot make."""


@dataclass
class Measurement:
    """What the probe found in one tensor."""

    node: str  # the IR node whose output was measured
    value: str  # the tensor
    periods: tuple[int, ...]  # predicted period per spatial axis
    db: float  # harmonic energy against smooth energy, dB
    peak: tuple[Fraction, ...] = ()  # the strongest harmonic, cycles per sample per axis
    peak_db: float = FLOOR_DB
    # one period of the constant input's response, on its worst channel, over its mean
    response: np.ndarray | None = None
    tile: np.ndarray | None = None  # a few periods of that channel's interior, for --plot
    output: bool = False  # a graph output

    def to_metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "measured_db": round(self.db, 2),
            "period": list(self.periods),
            "peak_frequency": [str(f) for f in self.peak],
            "peak_db": round(self.peak_db, 2),
            "value": self.value,
        }
        if self.response is not None:
            metrics["measured_response"] = np.round(self.response, 4).tolist()
        return metrics


def predicted_periods(graph: Graph) -> dict[str, tuple[int, ...]]:
    """The upsampling period per spatial axis of every value: strides, blocks and integer
    scales multiply it, strided convs and space-to-depth divide it (``T / gcd(T, s)``).

    >>> from deconvlint.core.chainspec import parse_chain
    >>> nodes = parse_chain("ConvTranspose2d(k=3, s=2) -> ReLU() -> Upsample(scale=3)")
    >>> predicted_periods(Graph("g", nodes, ("v0",), ("v3",)))["v3"]
    (6, 6)
    """
    periods: dict[str, tuple[int, ...]] = {name: () for name in graph.inputs}
    for node in graph.nodes:
        incoming = [periods.get(v, ()) for v in node.inputs]
        rank = node.spatial_rank or max((len(p) for p in incoming), default=0)
        current = [1] * rank
        for p in incoming:
            if len(p) == rank:
                current = [math.lcm(a, b) for a, b in zip(current, p, strict=True)]
        if node.kind is Kind.BARRIER:
            current = [1] * rank
        elif node.kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
            current = [t * w.stride for t, w in zip(current, node.window, strict=True)]
        elif node.kind is Kind.DEPTH_TO_SPACE:
            current = [t * b for t, b in zip(current, node.block, strict=True)]
        elif node.kind is Kind.RESIZE and node.resize is not None:
            current = [
                t * (s.numerator if s is not None else 1)
                for t, s in zip(current, node.resize.scales, strict=True)
            ]
        elif node.kind in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
            current = [
                t // math.gcd(t, w.stride) for t, w in zip(current, node.window, strict=True)
            ]
        elif node.kind is Kind.SPACE_TO_DEPTH:
            current = [t // math.gcd(t, b) for t, b in zip(current, node.block, strict=True)]
        for out in node.outputs:
            periods[out] = tuple(current)
    return periods


def probe_targets(graph: Graph) -> list[tuple[str, str, tuple[int, ...], bool]]:
    """``(node, value, periods, is_output)`` for every upsampler output and graph output whose
    period is above 1 on some axis."""
    periods = predicted_periods(graph)
    producers = graph.producers()
    targets: dict[str, tuple[str, str, tuple[int, ...], bool]] = {}
    for node in graph.nodes:
        if node.kind in UPSAMPLING_KINDS and node.outputs:
            value = node.outputs[0]
            targets[value] = (node.name, value, periods.get(value, ()), False)
    for value in graph.outputs:
        node = producers.get(value)
        if node is not None:
            targets[value] = (node.name, value, periods.get(value, ()), True)
    return [t for t in targets.values() if any(p > 1 for p in t[2])]


def smooth_field(shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """``1 + 0.5 * sum of cosines`` of at most one cycle per extent, a new field per channel.

    ``shape`` is ``(N, C, *spatial)``.
    """
    n, c, *spatial = shape
    grids = np.meshgrid(*[np.arange(s) / max(s, 1) for s in spatial], indexing="ij")
    out = np.empty(shape)
    for i in range(n):
        for j in range(c):
            field_ = np.zeros(spatial)
            for _ in range(3):
                freq = rng.choice([0.0, 0.5, 1.0], size=len(spatial))
                phase = rng.uniform(0, 2 * np.pi)
                field_ += rng.uniform(0.2, 1.0) * np.cos(
                    2 * np.pi * sum(f * g for f, g in zip(freq, grids, strict=True)) + phase
                )
            out[i, j] = 1.0 + 0.5 * field_ / 3.0
    return out


def probe_inputs(shapes: Sequence[Sequence[int]], seed: int = 0) -> list[list[np.ndarray]]:
    """The probe's input sets: a constant, then :data:`RANDOM_FIELDS` smooth fields.  An input
    with no spatial axis (a latent vector) gets a constant, then seeded normal values."""
    rng = np.random.default_rng(seed)
    sets: list[list[np.ndarray]] = [[np.ones(tuple(s)) for s in shapes]]
    for _ in range(RANDOM_FIELDS):
        sets.append(
            [
                smooth_field(s, rng) if len(s) > 2 and max(s[2:]) > 1 else rng.normal(size=s)
                for s in shapes
            ]
        )
    return sets


def _near(length: int, center: float, width: int) -> np.ndarray:
    bins = np.arange(length)
    distance = np.abs((bins - center + length / 2) % length - length / 2)
    return distance <= width


def _interior(array: np.ndarray, periods: tuple[int, ...]) -> np.ndarray | None:
    """Channels first; crop a border on every spatial axis and a length multiple of the period."""
    index: list[slice] = [slice(None)]
    for axis, period in enumerate(periods):
        length = array.shape[axis + 1]
        border = max(period, length // 8)
        usable = (length - 2 * border) // period * period
        if usable < 4 * period or usable < 8:
            return None
        index.append(slice(border, border + usable))
    return array[tuple(index)]


def measure(arrays: Sequence[np.ndarray], periods: tuple[int, ...]) -> Measurement:
    """The constant input's harmonic lines against the smooth energy of all ``arrays`` (each
    ``(C, *spatial)``, the first the constant input's); raises ``ValueError`` when the tensor is
    too small to measure."""
    rank = len(periods)
    smooth = 0.0
    lines: dict[tuple[int, ...], float] = {}
    for index, array in enumerate(arrays):
        power = _power(array, periods)
        lengths = power.shape
        dc = _outer(
            [_near(n, 0, max(2, n // (8 * t))) for n, t in zip(lengths, periods, strict=True)]
        )
        smooth += float(power[dc].sum())
        if index > 0:
            continue
        # one bin either side: a line on an exact bin, spread by the Hann window's main lobe
        near = [
            [_near(n, k * n / t, 1) for k in range(t)]
            for n, t in zip(lengths, periods, strict=True)
        ]
        for k in np.ndindex(*periods):
            if any(k):
                mask = _outer([near[a][k[a]] for a in range(rank)]) & ~dc
                lines[k] = float(power[mask].sum())
    smooth /= max(len(arrays), 1)
    # the masks of different harmonics are disjoint: n/T >= 4 bins apart (see _interior)
    peak = max(lines, key=lines.__getitem__) if lines else ()
    return Measurement(
        node="",
        value="",
        periods=periods,
        db=_db(sum(lines.values()), smooth),
        peak=tuple(Fraction(k, t) for k, t in zip(peak, periods, strict=True)),
        peak_db=_db(lines.get(peak, 0.0), smooth) if peak else FLOOR_DB,
        response=_folded(arrays[0], periods),
        tile=_tile(arrays[0], periods),
    )


def _power(array: np.ndarray, periods: tuple[int, ...]) -> np.ndarray:
    """The power spectrum of the Hann-windowed interior, summed over channels (full spectrum:
    the masks stay symmetric, no bins counted twice)."""
    rank = len(periods)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != rank + 1:
        raise ValueError(f"expected {rank} spatial axes, got shape {array.shape}")
    crop = _interior(array, periods)
    if crop is None:
        raise ValueError(f"too small to measure period {periods}: shape {array.shape}")
    windowed = crop
    for axis in range(rank):
        window = np.hanning(crop.shape[axis + 1] + 2)[1:-1]  # no zero ends
        shape = [1] * (rank + 1)
        shape[axis + 1] = -1
        windowed = windowed * window.reshape(shape)
    spectrum = np.fft.fftn(windowed, axes=range(1, rank + 1))
    return (spectrum.real**2 + spectrum.imag**2).sum(axis=0)


def _outer(masks: list[np.ndarray]) -> np.ndarray:
    out = masks[0]
    for m in masks[1:]:
        out = np.logical_and.outer(out, m)
    return out


def _db(energy: float, reference: float) -> float:
    if reference <= 0.0:
        return 0.0 if energy > 0.0 else FLOOR_DB
    if energy <= reference * 10 ** (FLOOR_DB / 10):
        return FLOOR_DB
    return 10.0 * math.log10(energy / reference)


def _worst_channel(crop: np.ndarray) -> int:
    spread = crop.reshape(crop.shape[0], -1).std(axis=1)
    return int(np.argmax(spread))


def _folded(array: np.ndarray, periods: tuple[int, ...]) -> np.ndarray | None:
    """One period of the interior of the worst channel, averaged over periods, over its mean."""
    crop = _interior(np.asarray(array, dtype=np.float64), periods)
    if crop is None:
        return None
    channel = crop[_worst_channel(crop)]
    shape: list[int] = []
    for n, t in zip(channel.shape, periods, strict=True):
        shape += [n // t, t]
    folded = channel.reshape(shape).mean(axis=tuple(range(0, 2 * len(periods), 2)))
    mean = float(np.abs(folded).mean())
    return folded / mean if mean > 0 else folded


def _tile(array: np.ndarray, periods: tuple[int, ...], count: int = 3) -> np.ndarray | None:
    crop = _interior(np.asarray(array, dtype=np.float64), periods)
    if crop is None:
        return None
    channel = crop[_worst_channel(crop)]
    return channel[tuple(slice(0, count * t) for t in periods)].copy()


@dataclass
class ProbeRun:
    """The runner's answer: captured tensors per value, one array per probe input set."""

    captured: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the forward passes


def measurements(graph: Graph, run: ProbeRun) -> dict[str, Measurement]:
    """Measure every probe target that was captured; keyed by node name."""
    found: dict[str, Measurement] = {}
    for node, value, periods, is_output in probe_targets(graph):
        arrays = run.captured.get(value)
        if not arrays:
            continue
        batch = [a[0] if a.ndim == len(periods) + 2 else a for a in arrays]
        try:
            m = measure(batch, periods)
        except ValueError:
            continue
        m.node, m.value, m.output = node, value, is_output
        old = found.get(node)
        if old is None or m.db > old.db:
            found[node] = m
    return found

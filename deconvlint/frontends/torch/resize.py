"""``F.interpolate`` / ``nn.Upsample`` onto :class:`~deconvlint.core.ir.ResizeSpec` with ONNX's names.

* ``nearest``: ``src = floor(o / scale)`` -> ``asymmetric`` + ``floor``;
* ``nearest-exact``: ``src = floor((o + 0.5) / scale)`` -> ``half_pixel`` + ``round_prefer_ceil``
  (``round_prefer_ceil(x + 0.5 - 0.5)`` is exactly that floor);
* ``linear``/``bilinear``/``trilinear``/``bicubic``: ``align_corners=False`` ->
  ``pytorch_half_pixel``, ``True`` -> ``align_corners`` (with the lengths); cubic ``a = -0.75``;
* ``area`` is adaptive average pooling: an AVG_POOL when every axis shrinks by an integer
  factor, else a barrier.

The scale is output/input as an exact fraction.  With ``scale_factor`` and without
``recompute_scale_factor`` torch maps coordinates with the *given* factor, not with out/in, so
that factor is kept; with ``size`` (or recompute) it is out/in, which needs the input length.

>>> x = TensorArg("x", (1, 4, 8, 8))
>>> spec = interpolate_spec(x, None, 1.5, "nearest-exact", None, None, False, None)
>>> spec.fields["resize"].scales, spec.fields["resize"].coordinate_transformation_mode
((Fraction(3, 2), Fraction(3, 2)), 'half_pixel')
>>> spec.fields["resize"].output_lengths
(12, 12)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, ResizeSpec
from deconvlint.core.sizes import scale_fraction
from deconvlint.frontends.torch.spec import (
    UNKNOWN,
    Spec,
    TensorArg,
    known,
    per_axis,
    spatial_lengths,
    spatial_rank,
    window_axes,
)

# torch mode -> (ONNX mode, coordinate transform when align_corners is False, nearest mode)
_MODES = {
    "nearest": ("nearest", "asymmetric", "floor"),
    "nearest-exact": ("nearest", "half_pixel", "round_prefer_ceil"),
    "linear": ("linear", "pytorch_half_pixel", "round_prefer_floor"),
    "bilinear": ("linear", "pytorch_half_pixel", "round_prefer_floor"),
    "trilinear": ("linear", "pytorch_half_pixel", "round_prefer_floor"),
    "bicubic": ("cubic", "pytorch_half_pixel", "round_prefer_floor"),
}
_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
NEEDS_INPUTS = "pass example inputs to resolve it"


def _rank(x: TensorArg, out_shape: Any, size: Any, scale_factor: Any, mode: str) -> int | None:
    rank = spatial_rank(x)
    if rank is None and out_shape is not None and len(out_shape) >= 3:
        rank = len(out_shape) - 2
    for given in (size, scale_factor):
        if rank is None and isinstance(given, (list, tuple)) and len(given) > 1:
            rank = len(given)
    return rank if rank is not None else _MODE_RANK.get(mode)


def _scales(
    rank: int,
    lengths: tuple[int | None, ...],
    size: Any,
    scale_factor: Any,
    recompute: Any,
    notes: list[str],
) -> tuple[list[Fraction | None], list[int | None]]:
    """Per-axis scale and output length."""
    scales: list[Fraction | None] = [None] * rank
    outputs: list[int | None] = [None] * rank
    if size is not None:
        sizes = per_axis(size, rank)
        for a in range(rank):
            out = sizes[a] if sizes is not None else None
            outputs[a] = int(out) if isinstance(out, int) else None
            if isinstance(out, int) and lengths[a]:
                scales[a] = Fraction(out, lengths[a])  # scale = out / in
        if None in scales:
            notes.append(f"the scale of size={size!r} depends on the input size; {NEEDS_INPUTS}")
        return scales, outputs
    factors = per_axis(scale_factor, rank)
    if factors is None:
        notes.append(f"scale_factor {scale_factor!r} is not known statically")
        return scales, outputs
    for a, factor in enumerate(factors):
        n = lengths[a]
        outputs[a] = math.floor(n * float(factor)) if n is not None else None  # floor(in * scale)
        if recompute:
            # torch recomputes the scale as out/in from the rounded output length
            if n and outputs[a]:
                scales[a] = Fraction(outputs[a], n)
            continue
        scales[a] = scale_fraction(float(factor), np.float64)  # a Python float
        if scales[a] is None:
            notes.append(f"axis {a}: scale_factor {factor!r} is not a simple fraction")
    if recompute and None in scales:
        notes.append(f"recompute_scale_factor needs the input size; {NEEDS_INPUTS}")
    return scales, outputs


def _area(x: TensorArg, rank: int, lengths: Any, outputs: list[int | None]) -> Spec:
    """``mode="area"`` is adaptive average pooling: a pool when every factor is an integer."""
    inputs = (x.value,) if x.is_data else ()
    if None in lengths or None in outputs:
        return Spec(
            Kind.BARRIER, inputs, notes=[f"area resize: the lengths are unknown; {NEEDS_INPUTS}"]
        )
    if any(o <= 0 or n % o for n, o in zip(lengths, outputs, strict=True)):
        note = f"area resize {tuple(lengths)} -> {tuple(outputs)} is not an integer downscale"
        return Spec(Kind.BARRIER, inputs, notes=[note])
    factors = [n // o for n, o in zip(lengths, outputs, strict=True)]
    if all(f == 1 for f in factors):
        return Spec(Kind.POINTWISE, inputs)
    return Spec(Kind.AVG_POOL, inputs, fields={"window": window_axes(factors, factors, rank=rank)})


def interpolate_spec(
    x: TensorArg,
    size: Any,
    scale_factor: Any,
    mode: Any,
    align_corners: Any,
    recompute_scale_factor: Any,
    antialias: Any,
    out_shape: Any,
) -> Spec:
    """The IR of ``F.interpolate(x, size, scale_factor, mode, align_corners, recompute, antialias)``."""
    inputs = (x.value,) if x.is_data else ()
    if not isinstance(mode, str) or (mode not in _MODES and mode != "area"):
        return Spec(Kind.BARRIER, inputs, notes=[f"interpolate mode {mode!r} is not modelled"])
    rank = _rank(x, out_shape, size, scale_factor, mode)
    if rank is None or rank < 1:
        return Spec(Kind.BARRIER, inputs, notes=["the input rank is unknown; not modelled"])
    notes: list[str] = []
    lengths = spatial_lengths(x.shape, rank)
    if size is UNKNOWN or (size is not None and not known(size)):
        size = UNKNOWN
    scales, outputs = _scales(rank, lengths, size, scale_factor, recompute_scale_factor, notes)
    seen = spatial_lengths(out_shape, rank)
    outputs = [s if s is not None else o for s, o in zip(seen, outputs, strict=True)]
    if mode == "area":
        return _area(x, rank, lengths, outputs)
    onnx_mode, coord, nearest = _MODES[mode]
    if align_corners and onnx_mode != "nearest":
        coord = "align_corners"
    spec = ResizeSpec(
        mode=onnx_mode,
        scales=tuple(scales),
        coordinate_transformation_mode=coord,
        nearest_mode=nearest,
        cubic_coeff_a=-0.75,
        antialias=bool(antialias) if known(antialias) else False,
        input_lengths=lengths,
        output_lengths=tuple(outputs),
    )
    extra = {"torch_mode": mode}
    return Spec(Kind.RESIZE, inputs, fields={"resize": spec}, notes=notes, extra=extra)

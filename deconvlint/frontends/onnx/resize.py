"""Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9) to a RESIZE node over the spatial axes.

Defaults, each checked against onnxruntime 1.32 on tiny models (``tests/frontends/
test_onnx_resize.py::test_ort_defaults``), input length 7, scales 1.5, 2.5, 7/3, 1.7, 0.6, 0.45:

* Resize-11/13/18/19: ``half_pixel`` + ``round_prefer_floor`` (the spec defaults).
* Resize-10: ``asymmetric``; nearest takes ``floor`` when upsampling but ``ceil`` when
  downsampling (ORT's "simple" nearest mode of opsets < 11); linear is plain ``asymmetric``.
* Upsample-7/9: ``asymmetric`` + ``floor``; ORT rejects scales < 1 and the mode ``bilinear``
  (the name Upsample-1 used), which we read as ``linear``.
* ``keep_aspect_ratio_policy`` (18+): one common scale ``min``/``max`` of ``sizes/in`` over the
  resized axes, ``out = round_half_up(scale*in)``, and ORT maps coordinates with that common
  scale, not with ``out/in``.

A float32 scale is read as the small fraction it stands for
(:func:`deconvlint.core.sizes.scale_fraction`), ``0.33333334`` as ``1/3``:

>>> from onnx import helper, TensorProto
>>> from deconvlint.frontends.onnx.reader import graph_from_model
>>> s = helper.make_tensor("s", TensorProto.FLOAT, [4], [1, 1, 1 / 3, 2.5])
>>> node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")
>>> graph = helper.make_graph(
...     [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 8])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[s])
>>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
>>> resize = graph_from_model(model).nodes[0].resize
>>> resize.scales, resize.output_lengths
((Fraction(1, 3), Fraction(5, 2)), (3, 20))
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, Node, ResizeSpec
from deconvlint.core.sizes import scale_fraction
from deconvlint.frontends.onnx.context import OpContext
from deconvlint.frontends.onnx.fold import Folded

MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
POLICIES = ("stretch", "not_larger", "not_smaller")


def _dim(dims: tuple[Any, ...] | None, axis: int) -> Any:
    return dims[axis] if dims is not None and axis < len(dims) else None


class _Scales:
    """Per-axis scale (``Fraction`` or ``None``) and output length over the whole input rank."""

    def __init__(self, rank: int, x_dims: tuple[Any, ...] | None) -> None:
        self.scales: list[Fraction | None] = [Fraction(1)] * rank
        self.outputs: list[int | None] = [
            d if isinstance(d, int) else None for d in (x_dims or (None,) * rank)
        ]


def _from_scales(
    ctx: OpContext, folded: Folded, axes: list[int], x_dims: Any, result: _Scales
) -> None:
    values = folded.dims()
    if len(values) != len(axes):
        raise ctx.fail(f"scales has {len(values)} values for {len(axes)} resized axes")
    known = [v for v in values if not isinstance(v, str)]
    if any(not math.isfinite(v) or v <= 0 for v in known):
        raise ctx.fail(f"scales must be positive, got {values}")
    for axis, value in zip(axes, values, strict=True):
        if isinstance(value, str):
            result.scales[axis] = result.outputs[axis] = None
            continue
        fraction = scale_fraction(float(value), np.float32)  # Resize scales are float32
        if fraction is None:
            ctx.note(f"axis {axis}: scale {value!r} is not a simple fraction")
        result.scales[axis] = fraction
        n = _dim(x_dims, axis)
        # out = floor(in * scale)
        result.outputs[axis] = math.floor(n * float(value)) if isinstance(n, int) else None


def _from_sizes(
    ctx: OpContext, folded: Folded, axes: list[int], x_dims: Any, result: _Scales
) -> None:
    sizes = folded.dims()
    if len(sizes) != len(axes):
        raise ctx.fail(f"sizes has {len(sizes)} values for {len(axes)} resized axes")
    if any(isinstance(s, (int, float)) and s <= 0 for s in sizes):
        raise ctx.fail(f"sizes must be positive, got {sizes}")
    for axis, size in zip(axes, sizes, strict=True):
        n = _dim(x_dims, axis)
        if isinstance(size, str) and size == n and size:  # the same symbolic dim
            result.scales[axis] = Fraction(1)
        elif isinstance(size, (int, float)) and isinstance(n, int) and n > 0:
            result.scales[axis] = Fraction(int(size), n)  # scale = out / in
        else:
            result.scales[axis] = None
        result.outputs[axis] = int(size) if isinstance(size, (int, float)) else None
    policy = (
        ctx.choice("keep_aspect_ratio_policy", "stretch", POLICIES)
        if ctx.opset >= 18
        else "stretch"
    )
    if policy == "stretch":
        return
    listed = [result.scales[a] for a in axes]
    if any(s is None for s in listed):
        for axis in axes:
            result.scales[axis] = result.outputs[axis] = None
        return
    # one scale for all resized axes: min (not_larger) or max (not_smaller) of sizes/in
    common = min(listed) if policy == "not_larger" else max(listed)  # type: ignore[type-var]
    for axis in axes:
        n = _dim(x_dims, axis)
        result.scales[axis] = common
        result.outputs[axis] = math.floor(common * n + Fraction(1, 2))  # round half up


def _rank(ctx: OpContext, x_dims: Any, axes: list[int] | None, *candidates: Any) -> int | None:
    if x_dims is not None:
        return len(x_dims)
    out_dims = ctx.output_shape(0)
    if out_dims is not None:
        return len(out_dims)
    if axes is None:
        for folded in candidates:
            if folded is not None and folded.value.size:
                return int(folded.value.size)
    return None


def _resize_node(
    ctx: OpContext,
    mode: str,
    coord: str,
    nearest: str,
    scales: _Scales | None,
    rank: int | None,
    x_dims: Any,
    **fields: Any,
) -> Node:
    if rank is None or rank < 3:
        ctx.note("the input rank is unknown or has no spatial axes; not modelled")
        return ctx.node(Kind.BARRIER, inputs=_x(ctx))
    if scales is None:
        ctx.note("scales could not be resolved statically (batch and channel scales assumed 1)")
        scales = _Scales(rank, x_dims)
        scales.scales[2:] = [None] * (rank - 2)
        scales.outputs[2:] = [None] * (rank - 2)
    for axis in (0, 1):
        if scales.scales[axis] is not None and scales.scales[axis] != 1:
            ctx.note(
                f"resizes the {('batch', 'channel')[axis]} axis by "
                f"{scales.scales[axis]}; not modelled"
            )
            return ctx.node(Kind.BARRIER, inputs=_x(ctx))
        if scales.scales[axis] is None:
            ctx.note(f"the {('batch', 'channel')[axis]} scale is unknown; assumed 1")
    spatial = scales.scales[2:]
    if any(s is None for s in spatial):
        ctx.note("a spatial scale could not be resolved statically")
    inferred = ctx.output_shape(0)
    outputs = [
        _dim(inferred, a) if isinstance(_dim(inferred, a), int) else scales.outputs[a]
        for a in range(2, rank)
    ]
    inputs = (
        [d if isinstance(d, int) else None for d in x_dims[2:]] if x_dims else [None] * (rank - 2)
    )
    spec = ResizeSpec(
        mode=mode,
        scales=tuple(spatial),
        coordinate_transformation_mode=coord,
        nearest_mode=nearest,
        input_lengths=tuple(inputs),
        output_lengths=tuple(outputs),
        **fields,
    )
    return ctx.node(Kind.RESIZE, inputs=_x(ctx), resize=spec)


def _x(ctx: OpContext) -> tuple[str, ...]:
    return (ctx.input(0),) if ctx.is_data(0) else ()


def _legacy_nearest(ctx: OpContext, scales: _Scales | None) -> str:
    # ORT opsets < 11: truncate when upsampling, ceil when downsampling, per axis
    spatial = [] if scales is None else [s for s in scales.scales[2:] if s is not None and s != 1]
    if spatial and all(s < 1 for s in spatial):
        return "ceil"
    if any(s < 1 for s in spatial):
        ctx.note("onnxruntime rounds the downsampled axes up (ceil), the others down (floor)")
    return "floor"


def _resolve(
    ctx: OpContext,
    scales_index: int,
    sizes_index: int | None,
    rank: int,
    axes: list[int],
    x_dims: Any,
) -> _Scales | None:
    """Scales of every axis from the ``scales`` input, else from ``sizes``; None if not static."""
    result = _Scales(rank, x_dims)
    if ctx.input(scales_index):
        scales = ctx.folded(scales_index)
        if scales is None and ctx.shape(scales_index) != (0,):
            return None
        if scales is not None and scales.value.size:
            _from_scales(ctx, scales, axes, x_dims, result)
            return result
    if sizes_index is None or not ctx.input(sizes_index):
        raise ctx.fail("neither scales nor sizes is given")
    sizes = ctx.folded(sizes_index)
    if sizes is None:
        return None
    _from_sizes(ctx, sizes, axes, x_dims, result)
    return result


def convert_resize(ctx: OpContext) -> Node:
    """Resize: ``out = floor(in * scale)`` (scales) or ``sizes``; scale = out/in exactly."""
    mode = ctx.choice("mode", "nearest", MODES)
    x_dims = ctx.symbolic_shape(0)
    legacy = ctx.opset < 11
    scales_index, sizes_index = (1, None) if legacy else (2, 3)
    axes = ctx.attr_ints("axes") if ctx.opset >= 18 else None
    rank = _rank(
        ctx,
        x_dims,
        axes,
        ctx.folded(scales_index),
        None if sizes_index is None else ctx.folded(sizes_index),
    )
    if rank is not None and axes is not None:
        if any(not -rank <= a < rank for a in axes) or len(set(a % rank for a in axes)) != len(
            axes
        ):
            raise ctx.fail(f"axes must be distinct axes of a rank-{rank} input, got {axes}")
        axes = [a % rank for a in axes]
    scales = None
    if rank is not None:
        scales = _resolve(
            ctx,
            scales_index,
            sizes_index,
            rank,
            axes if axes is not None else list(range(rank)),
            x_dims,
        )
    if legacy:
        return _resize_node(
            ctx, mode, "asymmetric", _legacy_nearest(ctx, scales), scales, rank, x_dims
        )
    coord = ctx.choice("coordinate_transformation_mode", "half_pixel", COORDINATE_MODES)
    if coord == "tf_crop_and_resize":
        ctx.note("tf_crop_and_resize crops to a region of interest; not modelled")
        return ctx.node(Kind.BARRIER, inputs=_x(ctx))
    nearest = ctx.choice("nearest_mode", "round_prefer_floor", NEAREST_MODES)
    extra = {key: ctx.attr_int(key, 0) for key in ("exclude_outside",) if ctx.has(key)}
    node = _resize_node(
        ctx,
        mode,
        coord,
        nearest,
        scales,
        rank,
        x_dims,
        cubic_coeff_a=ctx.attr_float("cubic_coeff_a", -0.75),
        antialias=bool(ctx.attr_int("antialias", 0)) if ctx.opset >= 18 else False,
    )
    node.extra.update(extra)
    return node


def convert_upsample(ctx: OpContext) -> Node:
    """Upsample-7 (``scales`` attribute) and -9 (``scales`` input): ``out = floor(in*scale)``."""
    raw_mode = ctx.choice("mode", "nearest", ("nearest", "linear", "bilinear", "cubic"))
    mode = "linear" if raw_mode == "bilinear" else raw_mode
    x_dims = ctx.symbolic_shape(0)
    if ctx.opset < 9:
        values = ctx.attr_floats("scales")
        if values is None:
            raise ctx.fail("scales is required")
        folded: Folded | None = Folded.known(np.array(values, dtype=np.float32))
    else:
        folded = ctx.folded(1)
    if folded is not None and any(not isinstance(v, str) and v < 1 for v in folded.dims()):
        raise ctx.fail(f"Upsample scales must be >= 1, got {folded.dims()}")
    rank = _rank(ctx, x_dims, None, folded)
    scales = None
    if rank is not None and folded is not None:
        scales = _Scales(rank, x_dims)
        _from_scales(ctx, folded, list(range(rank)), x_dims, scales)
    return _resize_node(ctx, mode, "asymmetric", "floor", scales, rank, x_dims)

"""The op table: every default-domain ONNX op type to the converter that makes its IR node.

Spatial ops live in ``onnx_window`` and ``onnx_resize``; this module holds the simple families
(pointwise, join, index shifts, depth/space) and the table itself.  An op missing from the table
is a BARRIER: its spatial effect is unknown, so coverage paths restart after it.

>>> sorted(op for op, fn in CONVERTERS.items() if fn is convert_depth_space)
['DepthToSpace', 'SpaceToDepth']
"""

from __future__ import annotations

from collections.abc import Callable

from deconvlint.core.ir import Kind, Node, ShiftAxis
from deconvlint.frontends.onnx.context import MAX_LENGTH, MAX_WINDOW, OpContext
from deconvlint.frontends.onnx.resize import convert_resize, convert_upsample
from deconvlint.frontends.onnx.window import (
    convert_conv,
    convert_conv_transpose,
    convert_max_unpool,
    convert_pool,
)

# Ops that act on each element (or normalise per channel) and keep the spatial pattern.  Only
# input 0 is followed; the other inputs are parameters.  The spec list, plus a few more unary
# elementwise ops (Floor ... CastLike) that cannot move data across positions either.
_ACTIVATIONS = ("Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Elu")
_ACTIVATIONS += ("Selu", "Celu", "Gelu", "HardSigmoid", "HardSwish", "Mish", "ThresholdedRelu")
_MATH = ("Erf", "Sqrt", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Sin", "Cos", "Clip", "Shrink")
_MATH += ("Floor", "Ceil", "Round", "Sign", "Tan", "Atan")
_NORMS = ("BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN")
_NORMS += ("GroupNormalization", "MeanVarianceNormalization", "Dropout")
_CASTS = ("Identity", "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear")
UNARY_POINTWISE = frozenset(_ACTIVATIONS + _MATH + _NORMS + _CASTS)
# Elementwise with several operands: one data operand is pointwise, several are a JOIN.
JOINING = frozenset(["Add", "Sub", "Mul", "Div", "Sum", "Mean", "Max", "Min", "Where"])


def convert_barrier(ctx: OpContext) -> Node:
    return ctx.node(Kind.BARRIER)


def convert_unary(ctx: OpContext) -> Node:
    if any(ctx.is_data(i) for i in range(1, len(ctx.inputs))):
        ctx.note("a parameter input depends on the model's inputs; only the first is followed")
    return ctx.node(Kind.POINTWISE, inputs=(ctx.input(0),) if ctx.is_data(0) else ())


def convert_elementwise(ctx: OpContext) -> Node:
    # several data operands meet (JOIN); one data operand with constants is pointwise
    if len(ctx.data_inputs) >= 2:
        return ctx.node(Kind.JOIN)
    return ctx.node(Kind.POINTWISE)


def convert_pow(ctx: OpContext) -> Node:
    return ctx.node(Kind.POINTWISE if len(ctx.data_inputs) == 1 else Kind.BARRIER)


def _axis(ctx: OpContext, default: int) -> int | None:
    """The ``axis`` attribute made non-negative, or ``None`` if the rank is needed and unknown."""
    axis = ctx.attr_int("axis", default)
    if axis >= 0:
        return axis
    dims = ctx.shape(0)
    return None if dims is None else axis + len(dims)


def convert_softmax(ctx: OpContext) -> Node:
    # Softmax-13 normalises along ``axis`` (default -1); before 13, default 1 over the flattened
    # trailing axes, which still divides every position by one number per sample
    axis = _axis(ctx, -1 if ctx.opset >= 13 else 1)
    return ctx.node(Kind.POINTWISE if axis in (0, 1) else Kind.BARRIER)


def convert_split(ctx: OpContext) -> Node:
    # split along batch or channels: every output keeps the spatial pattern
    return ctx.node(Kind.POINTWISE if _axis(ctx, 0) in (0, 1) else Kind.BARRIER)


def convert_concat(ctx: OpContext) -> Node:
    if _axis(ctx, 0) not in (0, 1):
        return ctx.node(Kind.BARRIER)
    return ctx.node(Kind.JOIN if len(ctx.data_inputs) >= 2 else Kind.POINTWISE)


def _rank(ctx: OpContext) -> int | None:
    dims = ctx.shape(0)
    return None if dims is None else len(dims)


def convert_pad(ctx: OpContext) -> Node:
    """Pad: output o reads input ``o - pad_begin`` on each axis (any mode)."""
    if ctx.opset < 11:
        pads = ctx.attr_ints("pads")
        axes_value = None
    else:
        raw = ctx.const(1)
        pads = None if raw is None else [int(v) for v in raw.reshape(-1)]
        axes_value = ctx.const(3) if ctx.input(3) else None
        if ctx.input(3) and axes_value is None:
            pads = None
    if pads is None:
        ctx.note("pads are not static; not modelled")
        return ctx.node(Kind.BARRIER, inputs=(ctx.input(0),) if ctx.is_data(0) else ())
    rank = _rank(ctx)
    axes = None if axes_value is None else [int(v) for v in axes_value.reshape(-1)]
    if axes is None:
        if len(pads) % 2:
            raise ctx.fail(f"pads must have an even length, got {pads}")
        rank = len(pads) // 2 if rank is None else rank
        axes = list(range(len(pads) // 2))
    if len(pads) != 2 * len(axes):
        raise ctx.fail(f"pads must have {2 * len(axes)} values, got {pads}")
    if any(abs(p) > MAX_LENGTH for p in pads):
        raise ctx.fail(f"pads are implausibly large, got {pads}")
    if rank is None:
        ctx.note("the input rank is unknown; not modelled")
        return ctx.node(Kind.BARRIER, inputs=(ctx.input(0),) if ctx.is_data(0) else ())
    axes = [a % rank for a in axes]
    begin = dict(zip(axes, pads[: len(axes)], strict=True))
    end = dict(zip(axes, pads[len(axes) :], strict=True))
    spatial = range(2, rank)
    extra = {"mode": ctx.attr_string("mode", "constant")}
    inputs = (ctx.input(0),) if ctx.is_data(0) else ()
    if all(begin.get(a, 0) == 0 and end.get(a, 0) == 0 for a in spatial):
        return ctx.node(Kind.POINTWISE, inputs=inputs, extra=extra)
    shift = tuple(ShiftAxis(offset=-begin.get(a, 0)) for a in spatial)
    return ctx.node(Kind.SHIFT, inputs=inputs, shift=shift, extra=extra)


def _slice_args(ctx: OpContext) -> tuple[list[int], list[int] | None, list[int]] | None:
    if ctx.opset < 10:
        starts, axes = ctx.attr_ints("starts"), ctx.attr_ints("axes")
        return None if starts is None else (starts, axes, [1] * len(starts))
    values = []
    for index in (1, 3, 4):
        if not ctx.input(index):
            values.append(None)
            continue
        raw = ctx.const(index)
        if raw is None:
            return None
        values.append([int(v) for v in raw.reshape(-1)])
    starts, axes, steps = values
    if starts is None:
        return None
    return starts, axes, steps or [1] * len(starts)


def _slice_axis(ctx: OpContext, start: int, step: int, length: int | None) -> ShiftAxis | None:
    if length is not None:
        # negative starts count from the end; clamp to [0, n] (step > 0) or [0, n-1] (step < 0)
        start = start + length if start < 0 else start
        start = max(0, min(start, length if step > 0 else length - 1))
    elif start < 0 or start > MAX_LENGTH:
        return None
    if abs(step) > MAX_WINDOW:
        return None
    return ShiftAxis(offset=start, step=step)


def convert_slice(ctx: OpContext) -> Node:
    """Slice: output o reads input ``start + o*step`` on each sliced axis."""
    inputs = (ctx.input(0),) if ctx.is_data(0) else ()
    args = _slice_args(ctx)
    if args is None:
        ctx.note("starts, axes or steps are not static; not modelled")
        return ctx.node(Kind.BARRIER, inputs=inputs)
    starts, axes, steps = args
    axes = list(range(len(starts))) if axes is None else axes
    if not len(starts) == len(axes) == len(steps):
        raise ctx.fail(f"starts {starts}, axes {axes} and steps {steps} differ in length")
    if any(s == 0 for s in steps):
        raise ctx.fail(f"steps must be non-zero, got {steps}")
    dims = ctx.shape(0)
    rank = None if dims is None else len(dims)
    if rank is None and any(a < 0 or a >= 2 for a in axes):
        ctx.note("the input rank is unknown; not modelled")
        return ctx.node(Kind.BARRIER, inputs=inputs)
    if rank is not None:
        if any(not -rank <= a < rank for a in axes):
            raise ctx.fail(f"axes {axes} out of range for a rank-{rank} input")
        axes = [a % rank for a in axes]
    if all(a < 2 for a in axes):
        return ctx.node(Kind.POINTWISE, inputs=inputs)
    assert rank is not None and dims is not None
    sliced = {a: (s, st) for a, s, st in zip(axes, starts, steps, strict=True)}
    shift = []
    for axis in range(2, rank):
        start, step = sliced.get(axis, (0, 1))
        length = dims[axis] if isinstance(dims[axis], int) else None
        shift_axis = _slice_axis(ctx, start, step, length)
        if shift_axis is None:
            ctx.note(f"axis {axis}: start {start} cannot be placed without the input length")
            return ctx.node(Kind.BARRIER, inputs=inputs)
        shift.append(shift_axis)
    return ctx.node(Kind.SHIFT, inputs=inputs, shift=tuple(shift))


def convert_depth_space(ctx: OpContext) -> Node:
    """DepthToSpace / SpaceToDepth (4-D): ``(N, C*b*b, H, W) <-> (N, C, H*b, W*b)``."""
    block = ctx.attr_int("blocksize", 0) if ctx.has("blocksize") else None
    if block is None:
        raise ctx.fail("blocksize is required")
    ctx.check_ints("blocksize", [block], minimum=1, limit=MAX_WINDOW)
    rank = _rank(ctx)
    spatial = 2 if rank is None else rank - 2
    inputs = (ctx.input(0),) if ctx.is_data(0) else ()
    if ctx.op_type == "SpaceToDepth":
        return ctx.node(Kind.SPACE_TO_DEPTH, inputs=inputs, block=(block,) * spatial)
    mode = ctx.choice("mode", "DCR", ("DCR", "CRD"))
    return ctx.node(
        Kind.DEPTH_TO_SPACE, inputs=inputs, block=(block,) * spatial, depth_to_space_mode=mode
    )


CONVERTERS: dict[str, Callable[[OpContext], Node]] = {
    "ConvTranspose": convert_conv_transpose,
    "Conv": convert_conv,
    "AveragePool": convert_pool,
    "MaxPool": convert_pool,
    "LpPool": convert_pool,
    "MaxUnpool": convert_max_unpool,
    "Resize": convert_resize,
    "Upsample": convert_upsample,
    "DepthToSpace": convert_depth_space,
    "SpaceToDepth": convert_depth_space,
    "Pad": convert_pad,
    "Slice": convert_slice,
    "Softmax": convert_softmax,
    "LogSoftmax": convert_softmax,
    "Split": convert_split,
    "Concat": convert_concat,
    "Pow": convert_pow,
    **{op: convert_unary for op in UNARY_POINTWISE},
    **{op: convert_elementwise for op in JOINING},
}

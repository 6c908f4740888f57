"""Sliding-window ops (ConvTranspose, Conv, pools, MaxUnpool) to IR nodes with resolved pads.

Every auto_pad and ``output_shape`` form ends as explicit ``pads_begin``/``pads_end`` per axis,
with the split between begin and end checked against onnxruntime 1.32 (see the tests):

* ConvTranspose ``SAME_*`` targets ``out = in*s``, so ``total = op + (k-1)*d + 1 - s`` does not
  depend on ``in``; SAME_UPPER puts the odd pad at the end.  ORT keeps the natural length
  (pads 0) when ``total < 0``.
* ConvTranspose ``output_shape``: ``total = s*(in-1) + op + (k-1)*d + 1 - out``; the odd pad goes
  to the *begin* unless auto_pad is SAME_UPPER (also for NOTSET and VALID).  ORT appends zeros at
  the end when ``total < 0``: that is ``output_padding`` beyond the full result.
* Conv/pool ``SAME_*``: ``total = max(0, (ceil(in/s)-1)*s + (k-1)*d + 1 - in)``.  ORT 1.32
  leaves the dilation out of this for pools (the spec keeps it); we follow the spec and note it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, Node, WindowAxis
from deconvlint.core.sizes import conv_transpose_length, split_pads
from deconvlint.core.weights import depthwise_filter
from deconvlint.frontends.onnx.context import MAX_LENGTH, OpContext

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _static(dims: tuple[Any, ...] | None) -> list[int | None] | None:
    return None if dims is None else [d if isinstance(d, int) else None for d in dims]


def _spatial_lengths(ctx: OpContext, rank: int) -> list[int | None]:
    dims = _static(ctx.shape(0))
    if dims is None or len(dims) != rank + 2:
        return [None] * rank
    return dims[2:]


class UnknownKernel(Exception):
    """A conv whose kernel size cannot be known statically (a valid model, e.g. a hypernet)."""


def _kernel_shape(ctx: OpContext, weight_shape: list[int | None] | None) -> list[int]:
    """``kernel_shape``, checked against the weight ``W`` (spatial dims ``W.shape[2:]``)."""
    kernel = ctx.attr_ints("kernel_shape")
    if kernel is not None:
        ctx.check_ints("kernel_shape", kernel, minimum=1, limit=1 << 16)
        if not kernel:
            raise ctx.fail("kernel_shape is empty")
        if weight_shape is not None:
            if len(weight_shape) != len(kernel) + 2:
                raise ctx.fail(
                    f"kernel_shape {kernel} disagrees with the weight's rank {len(weight_shape)}"
                )
            if any(w is not None and w != k for w, k in zip(weight_shape[2:], kernel, strict=True)):
                raise ctx.fail(
                    f"kernel_shape {kernel} disagrees with the weight's shape {weight_shape}"
                )
        return kernel
    if weight_shape is not None and len(weight_shape) < 3:
        raise ctx.fail(f"the weight must have a spatial axis, got shape {weight_shape}")
    if weight_shape is None or None in weight_shape[2:]:
        raise UnknownKernel("no kernel_shape and the weight's shape is not static; not modelled")
    kernel = [int(w) for w in weight_shape[2:]]  # type: ignore[arg-type]
    ctx.check_ints("kernel size", kernel, minimum=1, limit=1 << 16)
    return kernel


def _explicit_pads(ctx: OpContext, rank: int) -> tuple[list[int], list[int]]:
    pads = ctx.attr_ints("pads", [0] * (2 * rank))
    assert pads is not None
    ctx.check_ints("pads", pads, minimum=0, rank=2 * rank, limit=MAX_LENGTH)
    return pads[:rank], pads[rank:]  # [x1_begin, x2_begin, ..., x1_end, x2_end, ...]


def _common(ctx: OpContext, weight_shape: list[int | None] | None) -> dict[str, Any]:
    kernel = _kernel_shape(ctx, weight_shape)
    rank = len(kernel)
    return {
        "rank": rank,
        "kernel": kernel,
        "strides": ctx.positive_ints("strides", [1] * rank, rank=rank),
        "dilations": ctx.positive_ints("dilations", [1] * rank, rank=rank),
        "auto_pad": ctx.choice("auto_pad", "NOTSET", AUTO_PADS),
        "pads": _explicit_pads(ctx, rank),
        "lengths": _spatial_lengths(ctx, rank),
    }


def _group(ctx: OpContext) -> int:
    group = ctx.attr_int("group", 1)
    ctx.check_ints("group", [group], minimum=1)
    return group


def _forward_pads(ctx: OpContext, g: dict[str, Any]) -> list[tuple[int, int]]:
    """Resolved pads of a Conv or pool, one (begin, end) per axis."""
    auto_pad, pads = g["auto_pad"], []
    for a in range(g["rank"]):
        k, s, d, n = g["kernel"][a], g["strides"][a], g["dilations"][a], g["lengths"][a]
        if auto_pad == "VALID":
            pads.append((0, 0))
        elif auto_pad == "NOTSET":
            pads.append((g["pads"][0][a], g["pads"][1][a]))
        else:
            if n is None and s > 1:
                ctx.note(
                    f"axis {a}: input length unknown; {auto_pad} pads assume it is a "
                    f"multiple of the stride {s}"
                )
                n = s
            # total = max(0, (ceil(in/s) - 1)*s + (k-1)*d + 1 - in)
            total = (
                max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
                if n
                else max(0, (k - 1) * d + 1 - s)
            )
            pads.append(split_pads(total, odd_at_end=auto_pad == "SAME_UPPER"))
    return pads


def _axes(
    g: dict[str, Any], pads: list[tuple[int, int]], output_padding: list[int] | None = None
) -> tuple[WindowAxis, ...]:
    op = output_padding or [0] * g["rank"]
    return tuple(
        WindowAxis(
            kernel=g["kernel"][a],
            stride=g["strides"][a],
            dilation=g["dilations"][a],
            pads_begin=pads[a][0],
            pads_end=pads[a][1],
            output_padding=op[a],
        )
        for a in range(g["rank"])
    )


def _unknown_kernel(convert: Callable[[OpContext], Node]) -> Callable[[OpContext], Node]:
    @functools.wraps(convert)
    def guarded(ctx: OpContext) -> Node:
        if not ctx.input(1):  # X and W are required by every opset of Conv and ConvTranspose
            raise ctx.fail("the required weight input W is missing")
        try:
            return convert(ctx)
        except UnknownKernel as exc:
            ctx.note(str(exc))
            return ctx.node(Kind.BARRIER, inputs=(ctx.input(0),) if ctx.is_data(0) else ())

    return guarded


@_unknown_kernel
def convert_conv_transpose(ctx: OpContext) -> Node:
    """ConvTranspose: ``out = s*(in-1) + op + (k-1)*d + 1 - pads_begin - pads_end``."""
    weight_shape = _static(ctx.shape(1))  # (C_in, C_out/group, k...)
    g = _common(ctx, weight_shape)
    rank, group = g["rank"], _group(ctx)
    output_padding = ctx.attr_ints("output_padding", [0] * rank)
    assert output_padding is not None
    ctx.check_ints("output_padding", output_padding, minimum=0, rank=rank)
    output_shape = ctx.attr_ints("output_shape")
    if output_shape:
        output_shape = output_shape[-rank:] if len(output_shape) == rank + 2 else output_shape
        ctx.check_ints("output_shape", output_shape, minimum=1, rank=rank)
    pads: list[tuple[int, int]] = []
    for a in range(rank):
        k, s, d, n = g["kernel"][a], g["strides"][a], g["dilations"][a], g["lengths"][a]
        if output_shape:
            if n is None:
                ctx.note(f"axis {a}: input length unknown; pads for output_shape assumed 0")
                pads.append((0, 0))
                continue
            # total = s*(in-1) + op + ((k-1)*d + 1) - output_shape
            total = conv_transpose_length(n, k, s, d, 0, output_padding[a]) - output_shape[a]
            if total < 0:  # ORT appends zeros at the end: output padding past the full result
                output_padding[a] -= total
                pads.append((0, 0))
            else:
                pads.append(split_pads(total, odd_at_end=g["auto_pad"] == "SAME_UPPER"))
        elif g["auto_pad"] in ("SAME_UPPER", "SAME_LOWER"):
            # out = in*s, so total = op + (k-1)*d + 1 - s for every input length
            total = output_padding[a] + (k - 1) * d + 1 - s
            odd_at_end = g["auto_pad"] == "SAME_UPPER"
            pads.append(split_pads(total, odd_at_end) if total > 0 else (0, 0))
        elif g["auto_pad"] == "VALID":
            pads.append((0, 0))
        else:
            pads.append((g["pads"][0][a], g["pads"][1][a]))
    c_in = weight_shape[0] if weight_shape else None
    c_out = weight_shape[1] * group if weight_shape and weight_shape[1] is not None else None
    return ctx.node(
        Kind.CONV_TRANSPOSE,
        inputs=_first_data(ctx),
        window=_axes(g, pads, output_padding),
        in_channels=c_in,
        out_channels=c_out,
        groups=group,
        has_bias=bool(ctx.input(2)),
        weights=ctx.weight_source(),
    )


def _first_data(ctx: OpContext) -> tuple[str, ...]:
    """Only X carries data for coverage; a data-dependent weight or bias is noted, not followed."""
    if any(ctx.is_data(i) for i in range(1, len(ctx.inputs))):
        ctx.note("weights or bias depend on the model's inputs; only X is followed")
    return (ctx.input(0),) if ctx.is_data(0) else ()


def _fixed_kernel(
    ctx: OpContext, group: int, weight_shape: list[int | None] | None
) -> np.ndarray | None:
    """Depthwise weight ``(C, 1, k...)`` with ``C == group >= 2``, equal on every channel."""
    if weight_shape is None or None in weight_shape or group < 2:
        return None
    if weight_shape[0] != group or weight_shape[1] != 1:
        return None
    weights = ctx.weights(1)
    if weights is None or list(weights.shape) != weight_shape:
        return None
    return depthwise_filter(weights, group)


@_unknown_kernel
def convert_conv(ctx: OpContext) -> Node:
    """Conv: ``out = floor((in + pads_begin + pads_end - (k-1)*d - 1) / s) + 1``."""
    weight_shape = _static(ctx.shape(1))  # (C_out, C_in/group, k...)
    g = _common(ctx, weight_shape)
    group = _group(ctx)
    pads = _forward_pads(ctx, g)
    c_out = weight_shape[0] if weight_shape else None
    c_in = weight_shape[1] * group if weight_shape and weight_shape[1] is not None else None
    return ctx.node(
        Kind.CONV,
        inputs=_first_data(ctx),
        window=_axes(g, pads),
        fixed_kernel=_fixed_kernel(ctx, group, weight_shape),
        in_channels=c_in,
        out_channels=c_out,
        groups=group,
        has_bias=bool(ctx.input(2)),
        weights=ctx.weight_source(),
    )


def convert_pool(ctx: OpContext) -> Node:
    """AveragePool/MaxPool/LpPool: a window of the conv geometry with a fixed or max kernel."""
    if not ctx.has("kernel_shape"):
        raise ctx.fail("kernel_shape is required")
    g = _common(ctx, None)
    pads = _forward_pads(ctx, g)
    if g["auto_pad"].startswith("SAME") and any(d > 1 for d in g["dilations"]):
        ctx.note(
            "SAME pads of a dilated pool follow the spec; onnxruntime 1.32 computes them "
            "without the dilation"
        )
    extra = {
        key: ctx.attr_int(key, 0) for key in ("ceil_mode", "count_include_pad") if ctx.has(key)
    }
    kind = Kind.MAX_POOL if ctx.op_type == "MaxPool" else Kind.AVG_POOL
    inputs = (ctx.input(0),) if ctx.is_data(0) else ()
    return ctx.node(kind, inputs=inputs, window=_axes(g, pads), extra=extra)


def convert_max_unpool(ctx: OpContext) -> Node:
    """MaxUnpool: ``out = (in-1)*s + k - pads_begin - pads_end``; only X is a data input."""
    if not ctx.has("kernel_shape"):
        raise ctx.fail("kernel_shape is required")
    g = _common(ctx, None)
    pads = [(g["pads"][0][a], g["pads"][1][a]) for a in range(g["rank"])]
    extra: dict[str, Any] = {}
    output_shape = ctx.const(2)
    if output_shape is not None:
        extra["output_shape"] = [int(v) for v in output_shape.reshape(-1)]
    inputs = (ctx.input(0),) if ctx.is_data(0) else ()
    return ctx.node(Kind.MAX_UNPOOL, inputs=inputs, window=_axes(g, pads), extra=extra)

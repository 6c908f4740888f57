"""Window ops of the torch front end: transposed convs, convs, pools, unpooling.

Geometry comes from the weight's shape and the call's arguments (PyTorch padding on both sides,
``padding="same"`` with the odd pad at the end, as torch pads); shapes, when the reader knows
them, give a transposed conv's output padding (``forward(x, output_size=...)``).

>>> x, weight = TensorArg("x", (1, 4, 8, 8)), TensorArg(None, (4, 4, 4, 4))
>>> conv_spec(x, weight, None, 1, "same", 1, 1).fields["window"][0]
WindowAxis(kernel=4, stride=1, dilation=1, pads_begin=1, pads_end=2, output_padding=0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, LayerWeights, WeightSource
from deconvlint.core.sizes import conv_transpose_length, same_pads
from deconvlint.core.weights import depthwise_filter
from deconvlint.frontends.torch.spec import (
    UNKNOWN,
    Spec,
    TensorArg,
    barrier,
    data_inputs,
    known,
    per_axis,
    window_axes,
)

_NEEDS = "pass example inputs"


def _get(bound: dict[str, Any], key: str, default: Any) -> Any:
    value = bound.get(key)
    return default if value is None else value


# --- convolutions ------------------------------------------------------------------------------


TRAINABLE_FILTER = (
    "the depthwise weight is trainable but equal on every channel: read as the fixed filter it "
    "holds now (make it a buffer or requires_grad=False if it is meant to stay)"
)


def fixed_kernel(weight: TensorArg, groups: Any) -> np.ndarray | None:
    """A depthwise ``(C, 1, k...)`` weight equal on every channel (a blur, a box), else None.

    Decided by the values alone, as the ONNX front end must (an ONNX initializer does not say
    whether it was trained), so that a model and its export agree: a trainable weight that is
    equal on every channel now (initialised to a blur) is read as that filter too, with a note.
    """
    if not isinstance(groups, int) or groups < 2 or weight.tensor is None:
        return None
    shape = tuple(weight.tensor.shape)
    if len(shape) < 3 or shape[0] != groups or shape[1] != 1:
        return None
    return depthwise_filter(weight.tensor.detach().to("cpu").double().numpy(), groups)


def weight_source(weight: Any, bias: Any) -> WeightSource | None:
    """Reads the layer's parameters when a weight-aware rule asks (see ``WeightSource``)."""
    if not isinstance(weight, TensorArg) or weight.tensor is None or weight.is_data:
        return None
    kernel = weight.tensor
    bias_tensor = bias.tensor if isinstance(bias, TensorArg) and not bias.is_data else None

    def read() -> LayerWeights:
        def array(t: Any) -> np.ndarray:
            return t.detach().to("cpu").double().numpy().copy()

        return LayerWeights(
            array(kernel), None if bias_tensor is None else array(bias_tensor).reshape(-1)
        )

    return read


def _weight_shape(weight: Any) -> tuple[int, ...] | None:
    shape = weight.shape if isinstance(weight, TensorArg) else None
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(int(d) for d in shape)  # type: ignore[arg-type]


def conv_transpose_spec(
    x: TensorArg,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
    out_shape: Any,
    *,
    fit_output: bool = False,
) -> Spec:
    """``L_out = (n-1)s - 2p + d(k-1) + op + 1``; ``fit_output``: take ``op`` from the shapes
    (a forward call with ``output_size=``)."""
    shape = _weight_shape(weight)  # (C_in, C_out/groups, k...)
    if shape is None or not known((stride, padding, dilation, groups)):
        return barrier(x, weight, note="the kernel geometry is not known statically")
    rank = len(shape) - 2
    groups = int(groups)
    notes: list[str] = []
    op = output_padding if known(output_padding) else 0
    n = x.shape[2:] if x.shape is not None and len(x.shape) == rank + 2 else None
    out = out_shape[2:] if out_shape is not None and len(out_shape) == rank + 2 else None
    geometry = window_axes(shape[2:], stride, padding, dilation, 0, rank=rank)
    if geometry is None:
        return barrier(x, weight, note="the kernel geometry does not fit the weight")
    if n is not None and out is not None and all(isinstance(v, int) for v in (*n, *out)):
        # op = L_out - ((n-1)s - 2p + d(k-1) + 1), from the shapes actually produced
        op = tuple(
            out[a] - conv_transpose_length(n[a], w.kernel, w.stride, w.dilation, 2 * w.pads_begin)
            for a, w in enumerate(geometry)
        )
    elif fit_output:
        notes.append(f"output_size= needs the input size; {_NEEDS}; output_padding taken as 0")
        op = 0
    window = window_axes(shape[2:], stride, padding, dilation, op, rank=rank)
    if window is None:
        return barrier(x, weight, note="the output padding is not known statically")
    return Spec(
        Kind.CONV_TRANSPOSE,
        data_inputs(x),
        fields={
            "window": window,
            "in_channels": shape[0],
            "out_channels": shape[1] * groups,
            "groups": groups,
            "has_bias": isinstance(bias, TensorArg),
            "weights": weight_source(weight, bias),
        },
        notes=notes,
    )


def conv_spec(
    x: TensorArg,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    *,
    extra: dict[str, Any] | None = None,
) -> Spec:
    """``L_out = floor((n + 2p - d(k-1) - 1)/s) + 1``; a fixed depthwise filter keeps its taps."""
    shape = _weight_shape(weight)  # (C_out, C_in/groups, k...)
    if shape is None or not known((stride, padding, dilation, groups)):
        return barrier(x, weight, note="the kernel geometry is not known statically")
    rank = len(shape) - 2
    groups = int(groups)
    pads_end = None
    if padding == "valid":
        padding = 0
    elif padding == "same":
        dilations = per_axis(dilation, rank)
        assert dilations is not None
        padding, pads_end = same_pads(shape[2:], dilations)
    window = window_axes(shape[2:], stride, padding, dilation, rank=rank, pads_end=pads_end)
    if window is None:
        return barrier(x, weight, note="the kernel geometry does not fit the weight")
    kernel = fixed_kernel(weight, groups) if isinstance(weight, TensorArg) else None
    return Spec(
        Kind.CONV,
        data_inputs(x),
        fields={
            "window": window,
            "fixed_kernel": kernel,
            "in_channels": shape[1] * groups,
            "out_channels": shape[0],
            "groups": groups,
            "has_bias": isinstance(bias, TensorArg),
            "weights": weight_source(weight, bias),
        },
        notes=_conv_notes(weight, kernel),
        extra=extra or {},
    )


def _conv_notes(weight: Any, kernel: np.ndarray | None) -> list[str]:
    if not isinstance(weight, TensorArg):
        return []
    if weight.is_data:
        return ["the weight depends on the model's inputs; only the input is followed"]
    if kernel is not None and not weight.fixed:
        return [TRAINABLE_FILTER]
    return []


# --- pools -------------------------------------------------------------------------------------


def pool_spec(kind: Kind, x: TensorArg, rank: int, bound: dict[str, Any]) -> Spec:
    stride = bound.get("stride")
    window = window_axes(
        bound.get("kernel_size", UNKNOWN),
        stride if stride not in (None, (), []) else bound.get("kernel_size", UNKNOWN),
        _get(bound, "padding", 0),
        _get(bound, "dilation", 1),
        rank=rank,
    )
    if window is None:
        return barrier(x, note="the pool geometry is not known statically")
    extra = {k: bound[k] for k in ("ceil_mode", "count_include_pad") if k in bound}
    indices = "indices" if bound.get("return_indices") is True else None
    return Spec(kind, data_inputs(x), {"window": window}, extra=extra, tuple_output=indices)


def adaptive_spec(kind: Kind, x: TensorArg, rank: int, output_size: Any, indices: bool) -> Spec:
    """Adaptive pooling is the plain pool ``k = s = in/out`` when out divides in."""
    sizes = per_axis(output_size, rank)
    lengths = x.shape[2:] if x.shape is not None and len(x.shape) == rank + 2 else None
    tuple_output = "indices" if indices else None
    if sizes is None or lengths is None:
        spec = barrier(x, note=f"adaptive pool: the input length is unknown; {_NEEDS}")
        spec.tuple_output = tuple_output
        return spec
    outs = [n if o is None else o for n, o in zip(lengths, sizes, strict=True)]
    if any(not isinstance(n, int) or o <= 0 or n % o for n, o in zip(lengths, outs, strict=True)):
        note = f"adaptive pool {tuple(lengths)} -> {tuple(outs)}: the windows differ in size"
        spec = barrier(x, note=note)
        spec.tuple_output = tuple_output
        return spec
    factors = [n // o for n, o in zip(lengths, outs, strict=True)]
    window = window_axes(factors, factors, rank=rank)
    return Spec(kind, data_inputs(x), {"window": window}, tuple_output=tuple_output)


def unpool_spec(x: TensorArg, indices: Any, rank: int, bound: dict[str, Any]) -> Spec:
    """MaxUnpool: ``out = (in-1)s - 2p + k``; the indices are not a data input."""
    kernel = bound.get("kernel_size")
    stride, padding = bound.get("stride"), _get(bound, "padding", 0)
    pool = indices.indices_of if isinstance(indices, TensorArg) else None
    if kernel is None and pool is not None and pool.fields.get("window"):
        pool_window = pool.fields["window"]  # aten.max_unpool2d forgets the geometry
        kernel = tuple(w.kernel for w in pool_window)
        stride = tuple(w.stride for w in pool_window)
        padding = tuple(w.pads_begin for w in pool_window)
    if kernel is None:
        return barrier(x, note="the unpool geometry is not known (no matching max pool)")
    window = window_axes(kernel, stride if stride else kernel, padding, rank=rank)
    if window is None:
        return barrier(x, note="the unpool geometry is not known statically")
    extra = {}
    if bound.get("output_size") is not None and known(bound.get("output_size")):
        extra["output_size"] = list(bound["output_size"])
    return Spec(Kind.MAX_UNPOOL, data_inputs(x), {"window": window}, extra=extra)

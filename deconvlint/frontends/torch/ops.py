"""The function table: a torch function call (``F.conv_transpose2d``, ``torch.cat``, ``x + y``,
``x[:, :, 1:]`` ...) to the :class:`Spec` of its IR node.  Shared by the fx, export and hooks
readers; aten ops are first rewritten into these calls (``torch_aten``).

Names are canonical (:func:`canonical_name`): ``operator.add``, ``Tensor.__add__``,
``Tensor.add_`` and ``aten.add.Tensor`` are all ``add``.  A call whose name is not in the table
is a BARRIER.

>>> x = TensorArg("x", (1, 4, 8, 8))
>>> w = TensorArg(None, (4, 2, 3, 3))
>>> spec = function_spec("conv_transpose2d", (x, w), {"stride": 2, "padding": 1}, (1, 2, 15, 15))
>>> spec.kind.value, spec.fields["window"][0].kernel, spec.fields["out_channels"]
('conv_transpose', 3, 2)
>>> function_spec("add", (x, TensorArg("y", (1, 4, 8, 8))), {}, None).kind.value
'join'
"""

from __future__ import annotations

from typing import Any

from deconvlint.core.ir import Kind, ShiftAxis
from deconvlint.frontends.torch.resize import interpolate_spec
from deconvlint.frontends.torch.spec import (
    Spec,
    TensorArg,
    barrier,
    data_inputs,
    known,
    normal_dim,
    spatial_rank,
)
from deconvlint.frontends.torch.window import (
    adaptive_spec,
    conv_spec,
    conv_transpose_spec,
    pool_spec,
    unpool_spec,
)

_NEEDS = "pass example inputs"

# --- names -----------------------------------------------------------------------------------

_ALIASES = {
    "truediv": "div",
    "true_divide": "div",
    "divide": "div",
    "floordiv": "floor_divide",
    "multiply": "mul",
    "subtract": "sub",
    "concat": "cat",
    "concatenate": "cat",
    "clip": "clamp",
    "upsample": "interpolate",
    "_pad": "pad",
    "constant_pad_nd": "pad",
}


def canonical_name(raw: str) -> str:
    """``__iadd__`` -> ``add``, ``relu_`` -> ``relu``, ``truediv`` -> ``div``.

    >>> [canonical_name(n) for n in ("__radd__", "relu_", "truediv", "__getitem__")]
    ['add', 'relu', 'div', 'getitem']
    """
    name = raw
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name[:1] in "ri" and name[1:] in ("add", "sub", "mul", "truediv", "floordiv", "pow"):
            name = name[1:]
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    name = name.removesuffix("_with_indices")
    return _ALIASES.get(name, name)


# --- argument binding --------------------------------------------------------------------------

_CONV_T = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
_CONV = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_INTERP = ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")
_AVG = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_MAX = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_UNPOOL = ("input", "indices", "kernel_size", "stride", "padding", "output_size")
PARAMS: dict[str, tuple[str, ...]] = {
    **{f"conv_transpose{d}d": _CONV_T for d in (1, 2, 3)},
    **{f"conv{d}d": _CONV for d in (1, 2, 3)},
    "interpolate": (*_INTERP, "antialias"),
    "upsample_nearest": ("input", "size", "scale_factor"),
    "upsample_bilinear": ("input", "size", "scale_factor"),
    "pixel_shuffle": ("input", "upscale_factor"),
    "pixel_unshuffle": ("input", "downscale_factor"),
    **{f"max_unpool{d}d": _UNPOOL for d in (1, 2, 3)},
    **{f"avg_pool{d}d": _AVG for d in (1, 2, 3)},
    **{f"max_pool{d}d": _MAX for d in (1, 2, 3)},
    **{f"max_pool{d}d_with_indices": _MAX for d in (1, 2, 3)},
    **{f"lp_pool{d}d": ("input", "norm_type", "kernel_size", "stride") for d in (1, 2, 3)},
    **{f"adaptive_avg_pool{d}d": ("input", "output_size") for d in (1, 2, 3)},
    **{f"adaptive_max_pool{d}d": ("input", "output_size", "return_indices") for d in (1, 2, 3)},
    "pad": ("input", "pad", "mode", "value"),
    "getitem": ("input", "index"),
    "slice": ("input", "dim", "start", "end", "step"),
    "narrow": ("input", "dim", "start", "length"),
    "cat": ("tensors", "dim"),
    "softmax": ("input", "dim"),
    "log_softmax": ("input", "dim"),
    "normalize": ("input", "p", "dim"),
    "split": ("input", "split_size_or_sections", "dim"),
    "chunk": ("input", "chunks", "dim"),
    "pow": ("input", "exponent"),
    "repeat_interleave": ("input", "repeats", "dim", "output_size"),
    "stack": ("tensors", "dim"),
    "complex": ("real", "imag"),
}
_DEFAULTS = {"stride": None, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}
_DEFAULTS |= {"mode": "nearest", "dim": 0, "start": None, "end": None, "step": 1}


def bind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments by parameter name (positional ones named after :data:`PARAMS`)."""
    params = PARAMS.get(name, ())
    bound = dict(zip(params, args, strict=False))
    bound.update(kwargs)
    if len(args) > len(params):
        bound["*"] = args[len(params) :]
    return bound


def _get(bound: dict[str, Any], key: str, default: Any = None) -> Any:
    value = bound.get(key, _DEFAULTS.get(key, default))
    return default if value is None and default is not None else value


# --- shifts: pad and slice ---------------------------------------------------------------------


def pad_spec(x: TensorArg, pads: Any, mode: Any = "constant", rank: int | None = None) -> Spec:
    """``F.pad``: pairs from the last axis backwards; output o reads input ``o - pad_begin``."""
    if not known(pads) or not isinstance(pads, (list, tuple)) or len(pads) % 2:
        return barrier(x, note="the pads are not known statically")
    full = x.rank if x.rank is not None else (rank + 2 if rank is not None else None)
    if full is None:
        full = len(pads) // 2 + 2  # assume only spatial axes are padded
    begin = {full - 1 - i: int(pads[2 * i]) for i in range(len(pads) // 2)}
    end = {full - 1 - i: int(pads[2 * i + 1]) for i in range(len(pads) // 2)}
    extra = {"mode": mode if isinstance(mode, str) else "constant"}
    spatial = range(2, full)
    if all(begin.get(a, 0) == 0 and end.get(a, 0) == 0 for a in spatial):
        return Spec(Kind.POINTWISE, data_inputs(x), extra=extra)
    shift = tuple(ShiftAxis(offset=-begin.get(a, 0)) for a in spatial)
    return Spec(Kind.SHIFT, data_inputs(x), {"shift": shift}, extra=extra)


def _slice_axis(start: Any, step: Any, length: Any) -> ShiftAxis | None:
    start = 0 if start is None else start
    step = 1 if step is None else step
    if not isinstance(start, int) or not isinstance(step, int) or step <= 0:
        return None
    if start < 0:
        if not isinstance(length, int):
            return None
        start = max(0, start + length)
    if isinstance(length, int):
        start = min(start, length)
    return ShiftAxis(offset=start, step=step)


def slices_spec(x: TensorArg, cuts: dict[int, tuple[Any, Any]]) -> Spec:
    """Slices ``{axis: (start, step)}``: output o reads input ``start + o*step``."""
    if all(axis < 2 for axis in cuts):
        return Spec(Kind.POINTWISE, data_inputs(x))
    if x.shape is None:
        return barrier(x, note=f"the input rank is unknown; {_NEEDS}")
    shift = []
    for axis in range(2, len(x.shape)):
        start, step = cuts.get(axis, (0, 1))
        shift_axis = _slice_axis(start, step, x.shape[axis])
        if shift_axis is None:
            return barrier(x, note=f"axis {axis}: the slice start/step is not static")
        shift.append(shift_axis)
    if all(s == ShiftAxis() for s in shift):
        return Spec(Kind.POINTWISE, data_inputs(x))
    return Spec(Kind.SHIFT, data_inputs(x), {"shift": tuple(shift)})


def getitem_spec(x: TensorArg, index: Any) -> Spec:
    """``x[...]`` with slices (and ``...``) only; ints, None and tensors change the axes."""
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, TensorArg) or not isinstance(i, (slice, type(Ellipsis))) for i in index):
        return barrier(x, index)
    if Ellipsis in index:
        if x.rank is None:
            return barrier(x, note=f"the input rank is unknown; {_NEEDS}")
        at = index.index(Ellipsis)
        fill = (slice(None),) * (x.rank - len(index) + 1)
        index = index[:at] + fill + index[at + 1 :]
    cuts = {}
    for axis, part in enumerate(index):
        if part != slice(None):
            if not known((part.start, part.step)):
                return barrier(x, note="the slice is not known statically")
            cuts[axis] = (part.start, part.step)
    return slices_spec(x, cuts)


# --- joins and the rest -------------------------------------------------------------------------

_ACTIVATIONS = ("relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu")
_ACTIVATIONS += ("silu", "mish", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid")
_ACTIVATIONS += ("softplus", "softsign", "logsigmoid", "tanhshrink", "threshold", "softshrink")
_ACTIVATIONS += ("hardshrink",)
_NORMS = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "batch_norm")
_NORMS += ("feature_alpha_dropout", "instance_norm", "group_norm", "layer_norm", "rms_norm")
_NORMS += ("local_response_norm", "_native_batch_norm_legit_no_training")
_MATH = ("abs", "neg", "exp", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "square", "clamp")
_MATH += ("clamp_min", "clamp_max", "sin", "cos", "erf", "floor", "ceil", "round", "sign")
_MATH += ("reciprocal", "nan_to_num", "masked_fill")
_CASTS = ("contiguous", "clone", "to", "_to_copy", "type", "float", "double", "half", "bfloat16")
_CASTS += ("type_as", "detach", "alias", "requires_grad", "lift_fresh_copy", "identity")
_CASTS += ("dequantize",)
# Complex views and tensor attributes that keep every element where it is: ``.data``, ``.real``
# of a complex tensor, and view_as_complex/view_as_real, which only fold or unfold a trailing
# axis of two after the spatial axes.
_COMPLEX = ("data", "real", "imag", "conj", "resolve_conj", "resolve_neg", "conj_physical")
_COMPLEX += ("view_as_complex", "view_as_real", "angle")
POINTWISE = frozenset(_ACTIVATIONS + _NORMS + _MATH + _CASTS + _COMPLEX)
JOINING = frozenset(("add", "sub", "rsub", "mul", "div", "floor_divide", "maximum", "minimum"))
JOINING |= {"where", "fmax", "fmin", "complex", "polar"}
# Shape-only reshapes: when the shape does not change they are the identity.
RESHAPES = frozenset(("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze"))
RESHAPES |= {"expand", "expand_as", "view_as"}
# Results that are never tensors (or are metadata): no node at all.
NON_TENSOR = frozenset(("size", "sym_size", "dim", "numel", "shape", "dtype", "device", "stride"))
NON_TENSOR |= {"is_contiguous", "item", "tolist", "len"}


def _dim_spec(x: TensorArg, dim: Any, *, default: int | None = None) -> Spec:
    """An op along ``dim``: batch or channel axis keeps the spatial pattern."""
    axis = normal_dim(default if dim is None else dim, x.rank)
    if axis in (0, 1):
        return Spec(Kind.POINTWISE, data_inputs(x))
    return barrier(x)


def function_spec(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out_shape: Any
) -> Spec | None:
    """The Spec of call ``name(*args, **kwargs)``; ``None`` when no argument carries data."""
    inputs = data_inputs(args, kwargs)
    if not inputs or name in NON_TENSOR:
        return None
    b = bind(name, args, kwargs)
    x = b.get("input")
    if not isinstance(x, TensorArg):
        x = TensorArg()
    if name.startswith("conv_transpose"):
        return conv_transpose_spec(
            x, b.get("weight"), b.get("bias"), _get(b, "stride", 1), _get(b, "padding"),
            _get(b, "output_padding"), _get(b, "groups"), _get(b, "dilation"), out_shape,
        )  # fmt: skip
    if name in ("conv1d", "conv2d", "conv3d"):
        return conv_spec(
            x, b.get("weight"), b.get("bias"), _get(b, "stride", 1), _get(b, "padding"),
            _get(b, "dilation"), _get(b, "groups"),
        )  # fmt: skip
    rank = spatial_rank(x, int(name[-2]) if name[-2:-1].isdigit() and name.endswith("d") else None)
    if name in ("interpolate", "upsample_nearest", "upsample_bilinear"):
        mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(name)
        return interpolate_spec(
            x, b.get("size"), b.get("scale_factor"), mode or _get(b, "mode"),
            True if name == "upsample_bilinear" else b.get("align_corners"),
            b.get("recompute_scale_factor"), b.get("antialias", False), out_shape,
        )  # fmt: skip
    if name in ("pixel_shuffle", "pixel_unshuffle"):
        factor = b.get("upscale_factor", b.get("downscale_factor"))
        if not isinstance(factor, int):
            return barrier(x, note="the shuffle factor is not known statically")
        kind = Kind.DEPTH_TO_SPACE if name == "pixel_shuffle" else Kind.SPACE_TO_DEPTH
        return Spec(kind, inputs[:1], {"block": (factor, factor), "depth_to_space_mode": "CRD"})
    if rank is not None and name.startswith(("avg_pool", "lp_pool")):
        return pool_spec(Kind.AVG_POOL, x, rank, b)
    if rank is not None and name.startswith("max_pool"):
        spec = pool_spec(Kind.MAX_POOL, x, rank, b)
        if name.endswith("with_indices"):
            spec.tuple_output = "indices"
        return spec
    if rank is not None and name.startswith("adaptive_"):
        kind = Kind.AVG_POOL if "avg" in name else Kind.MAX_POOL
        return adaptive_spec(kind, x, rank, b.get("output_size"), b.get("return_indices") is True)
    if rank is not None and name.startswith("max_unpool"):
        return unpool_spec(x, b.get("indices"), rank, b)
    if name == "pad":
        return pad_spec(x, b.get("pad"), _get(b, "mode"))
    if name == "getitem":
        return getitem_spec(x, b.get("index"))
    if name == "slice":
        axis = normal_dim(_get(b, "dim"), x.rank)
        if axis is None:
            return barrier(x, note="the sliced axis is not known")
        return slices_spec(x, {axis: (b.get("start"), _get(b, "step"))})
    if name == "narrow":
        axis = normal_dim(b.get("dim"), x.rank)
        if axis is None:
            return barrier(x, note="the narrowed axis is not known")
        return slices_spec(x, {axis: (b.get("start"), 1)})
    if name in ("cat", "stack"):
        return _cat_spec(name, b, inputs)
    if name == "repeat_interleave":
        return _repeat_interleave_spec(x, b.get("repeats"), b.get("dim"), out_shape)
    if name in ("repeat", "tile") and args and isinstance(args[0], TensorArg):
        sizes = args[1:] if name == "repeat" else tuple(args[1:]) or (b.get("dims"),)
        return _tile_spec(args[0], sizes, inputs)
    if name in ("softmax", "log_softmax", "normalize"):
        return _dim_spec(x, b.get("dim"), default=1 if name == "normalize" else None)
    if name in ("split", "chunk"):
        spec = _dim_spec(x, _get(b, "dim"))
        spec.tuple_output = "each"
        return spec
    if name == "pow":
        return Spec(Kind.POINTWISE if len(inputs) == 1 else Kind.BARRIER, inputs)
    if name in POINTWISE:
        return Spec(Kind.POINTWISE, inputs[:1] if x.is_data else inputs)
    if name in JOINING:
        return Spec(Kind.JOIN if len(inputs) >= 2 else Kind.POINTWISE, inputs)
    same_shape = x.shape is not None and out_shape is not None and x.shape == tuple(out_shape)
    if name in RESHAPES and same_shape:
        return Spec(Kind.POINTWISE, inputs)
    return barrier(args, kwargs)


def _cat_spec(name: str, bound: dict[str, Any], inputs: tuple[str, ...]) -> Spec:
    """``cat`` on batch or channels; ``stack`` on a new last axis (after the spatial axes,
    which stay where they were: the real and imaginary parts of a complex tensor)."""
    tensors = bound.get("tensors")
    if not isinstance(tensors, (list, tuple)):
        return Spec(Kind.BARRIER, inputs)
    first = next((t for t in tensors if isinstance(t, TensorArg)), TensorArg())
    if name == "stack":
        rank = None if first.rank is None else first.rank + 1
        if normal_dim(_get(bound, "dim"), rank) != first.rank or first.rank is None:
            return Spec(Kind.BARRIER, inputs)
    elif normal_dim(_get(bound, "dim"), first.rank) not in (0, 1):
        return Spec(Kind.BARRIER, inputs)
    return Spec(Kind.JOIN if len(inputs) >= 2 else Kind.POINTWISE, inputs)


def _repeat_interleave_spec(x: TensorArg, repeats: Any, dim: Any, out_shape: Any) -> Spec:
    """``repeat_interleave(r, dim)`` on a spatial axis copies every sample r times: a nearest
    resize by r on that axis (``src = floor(o / r)``)."""
    axis = normal_dim(dim, x.rank)
    if axis in (0, 1):
        return Spec(Kind.POINTWISE, data_inputs(x))
    rank = spatial_rank(x)
    if axis is None or rank is None or not isinstance(repeats, int) or repeats < 1:
        return barrier(x, note="repeat_interleave: the axis or the repeats are not static")
    scales = tuple(repeats if a == axis - 2 else 1 for a in range(rank))
    spec = interpolate_spec(x, None, scales, "nearest", None, None, False, out_shape)
    spec.extra["torch_mode"] = "repeat_interleave"
    return spec


def _tile_spec(x: TensorArg, sizes: tuple[Any, ...], inputs: tuple[str, ...]) -> Spec:
    """``x.repeat(...)`` tiles: output o reads input ``o mod n``, the same phase of any pattern
    whose period divides the length n (as an upsampler's output length does)."""
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = tuple(sizes[0])
    if x.rank is None or not known(sizes):
        return barrier(x, note="repeat: the repeats are not static")
    if len(sizes) > x.rank:  # new leading axes move the spatial ones
        return barrier(x)
    # torch.tile pads missing leading repeats with ones; Tensor.repeat needs them all
    spatial = sizes[max(0, len(sizes) - x.rank + 2) :]
    spec = Spec(Kind.POINTWISE, inputs[:1])
    if any(r != 1 for r in spatial):
        spec.notes.append("tiled along a spatial axis: read as passing the pattern through")
    return spec

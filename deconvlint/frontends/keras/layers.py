"""The layer table of the Keras front end: one layer's config (a parsed dict) to its IR geometry.

Keras's own argument names and defaults, read from the config alone (nothing is imported or
run).  Shapes are Keras's, batch first: ``(None, *spatial, C)`` for ``channels_last``,
``(None, C, *spatial)`` for ``channels_first``; the IR stores the spatial axes in order.

Padding follows Keras's reference placement, TensorFlow's, which Keras's JAX backend reproduces
(``keras/src/backend/common/backend_utils.py``): a forward ``padding="same"`` pads
``max((ceil(n/s)-1)*s + d*(k-1) + 1 - n, 0)`` in all, the odd sample at the end; a transposed
conv pads the stride-dilated input by :func:`conv_transpose_pads` (JAX's ``(left, right)``),
which crops ``d*(k-1) - left`` from the full output's begin and ``d*(k-1) - right`` from its
end, a negative crop at the end being output padding.

>>> spec = conv_transpose({"filters": 64, "kernel_size": [5, 5], "strides": [2, 2],
...                        "padding": "same"}, [(None, 7, 7, 128)], rank=2)
>>> spec.kind.value, spec.out_shape
('conv_transpose', (None, 14, 14, 64))
>>> spec.fields["window"][0]
WindowAxis(kernel=5, stride=2, dilation=1, pads_begin=1, pads_end=2, output_padding=0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from deconvlint.core.ir import Kind, ResizeSpec, ShiftAxis, WindowAxis
from deconvlint.core.sizes import conv_transpose_length

Shape = tuple[Any, ...]


class LayerConfigError(ValueError):
    """A layer argument that is not what Keras accepts (the graph builder names the layer)."""


@dataclass
class LayerSpec:
    """What one layer call is to the IR: kind, the Node fields, the output shape, notes.

    ``crop`` is a SHIFT applied before the layer (``Resizing``'s crop or pad to the aspect ratio).
    """

    kind: Kind
    fields: dict[str, Any] = field(default_factory=dict)
    out_shape: Shape | None = None
    notes: list[str] = field(default_factory=list)
    crop: LayerSpec | None = None
    rank: int = 0  # spatial rank of a layer with geometry
    data_format: str | None = None


# --- reading arguments ----------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayerConfigError(f"{name} must be an integer, not {type(value).__name__}")
    return value


def ints(value: Any, rank: int, name: str, *, low: int = 1) -> tuple[int, ...]:
    """Keras's ``int or tuple of rank ints`` argument as a tuple.

    >>> ints(2, 2, "strides"), ints([1, 3], 2, "strides")
    ((2, 2), (1, 3))
    """
    values = [value] * rank if not isinstance(value, (list, tuple)) else list(value)
    if len(values) != rank:
        raise LayerConfigError(f"{name} must have {rank} values, has {len(values)}")
    out = tuple(_int(v, name) for v in values)
    if any(v < low for v in out):
        raise LayerConfigError(f"{name} must be at least {low}, is {list(out)}")
    return out


def _padding(cfg: Mapping[str, Any], allowed: Sequence[str]) -> str:
    padding = cfg.get("padding", "valid")
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise LayerConfigError(f"padding must be one of {', '.join(allowed)}")
    return padding.lower()


def data_format(cfg: Mapping[str, Any]) -> str:
    """``channels_last`` (Keras's default, also when the config says null) or ``channels_first``."""
    value = cfg.get("data_format")
    if value is None:
        return "channels_last"
    if value not in ("channels_last", "channels_first"):
        raise LayerConfigError("data_format must be channels_last or channels_first")
    return value


def spatial_lengths(shape: Shape | None, rank: int, fmt: str) -> list[Any] | None:
    """The spatial lengths of a Keras shape (``None`` for an unknown one), or None."""
    if shape is None or len(shape) != rank + 2:
        return None
    return list(shape[1:-1] if fmt == "channels_last" else shape[2:])


def channels(shape: Shape | None, fmt: str) -> int | None:
    if shape is None or len(shape) < 2:
        return None
    c = shape[-1] if fmt == "channels_last" else shape[1]
    return c if isinstance(c, int) and not isinstance(c, bool) else None


def _shape(batch: Any, lengths: Sequence[Any], c: Any, fmt: str) -> Shape:
    return (batch, *lengths, c) if fmt == "channels_last" else (batch, c, *lengths)


def _known(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)


def _map(lengths: list[Any] | None, fn: Callable[[int, int], int]) -> list[Any] | None:
    if lengths is None:
        return None
    return [fn(a, n) if _known(n) else None for a, n in enumerate(lengths)]


def _out(x: Shape | None, rank: int, fmt: str, lengths: list[Any] | None, c: Any) -> Shape | None:
    if x is None or lengths is None:
        return None
    return _shape(x[0], lengths, c, fmt)


# --- convolutions -----------------------------------------------------------------------------


def conv_transpose_pads(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """Keras's ``(left, right)`` pads of the stride-dilated input, TensorFlow's placement
    (``_convert_conv_transpose_padding_args_from_keras_to_jax``).

    >>> conv_transpose_pads(5, 2, 1, "same", None), conv_transpose_pads(3, 2, 1, "valid", None)
    ((3, 2), (2, 2))
    """
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        op = max(k, stride) - k if output_padding is None else output_padding
        return k - 1, k - 1 + op
    # output length n*s, or (n-1)*s + k%2 + output_padding
    total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k - 1)
    return left, total - left


def conv_transpose_axis(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> WindowAxis:
    """The IR axis of a Keras transposed conv: crop ``d(k-1) - left`` at the begin and
    ``d(k-1) - right`` at the end; a negative end crop is output padding.

    >>> conv_transpose_axis(4, 2, 1, "same", None)
    WindowAxis(kernel=4, stride=2, dilation=1, pads_begin=1, pads_end=1, output_padding=0)
    >>> conv_transpose_axis(1, 2, 1, "same", None)
    WindowAxis(kernel=1, stride=2, dilation=1, pads_begin=0, pads_end=0, output_padding=1)
    """
    left, right = conv_transpose_pads(kernel, stride, dilation, padding, output_padding)
    extent = (kernel - 1) * dilation
    begin, end = extent - left, extent - right
    return WindowAxis(kernel, stride, dilation, begin, max(end, 0), max(-end, 0))


def same_pads(n: int | None, kernel: int, stride: int, dilation: int) -> tuple[int, int, bool]:
    """TensorFlow's SAME pads ``(begin, end, assumed)``; with ``n`` unknown and a stride above
    one, the pads of an ``n`` that is a multiple of the stride (``assumed``).

    >>> same_pads(7, 3, 2, 1), same_pads(8, 3, 2, 1), same_pads(None, 4, 1, 1)
    ((1, 1, False), (0, 1, False), (1, 2, False))
    """
    k = (kernel - 1) * dilation + 1
    assumed = n is None and stride > 1
    if n is None:
        total = max(k - stride, 0) if stride > 1 else k - 1
    else:
        total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
    return total // 2, total - total // 2, assumed


def _window(
    lengths: list[Any] | None,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: str,
) -> tuple[tuple[WindowAxis, ...], list[str]]:
    axes, notes = [], []
    for a, (k, s, d) in enumerate(zip(kernel, strides, dilation, strict=True)):
        n = lengths[a] if lengths is not None and _known(lengths[a]) else None
        if padding == "same":
            begin, end, assumed = same_pads(n, k, s, d)
            if assumed:
                notes.append(
                    f"axis {a}: the input length is unknown; padding='same' is placed as for a "
                    f"length that is a multiple of the stride {s}"
                )
        elif padding == "causal":
            begin, end = d * (k - 1), 0
        else:
            begin = end = 0
        axes.append(WindowAxis(k, s, d, begin, end))
    return tuple(axes), notes


def _conv_length(n: int, w: WindowAxis) -> int:
    # floor((n + pads - d(k-1) - 1) / s) + 1
    return (n + w.pads_begin + w.pads_end - w.effective_kernel) // w.stride + 1


def conv_transpose(cfg: Mapping[str, Any], xs: list[Shape | None], rank: int) -> LayerSpec:
    fmt = data_format(cfg)
    kernel = ints(cfg.get("kernel_size"), rank, "kernel_size")
    strides = ints(cfg.get("strides", 1), rank, "strides")
    dilation = ints(cfg.get("dilation_rate", 1), rank, "dilation_rate")
    op = cfg.get("output_padding")
    ops = (None,) * rank if op is None else ints(op, rank, "output_padding", low=0)
    padding = _padding(cfg, ("valid", "same"))
    window = tuple(
        conv_transpose_axis(k, s, d, padding, o)
        for k, s, d, o in zip(kernel, strides, dilation, ops, strict=True)
    )
    x = xs[0] if xs else None
    lengths = _map(
        spatial_lengths(x, rank, fmt),
        lambda a, n: conv_transpose_length(
            n, window[a].kernel, window[a].stride, window[a].dilation,
            window[a].pads_begin + window[a].pads_end, window[a].output_padding,
        ),
    )  # fmt: skip
    filters = _int(cfg.get("filters"), "filters")
    groups = _int(cfg.get("groups", 1), "groups") if cfg.get("groups") is not None else 1
    fields = _conv_fields(cfg, window, channels(x, fmt), filters, groups)
    out = _out(x, rank, fmt, lengths, filters)
    return LayerSpec(Kind.CONV_TRANSPOSE, fields, out, rank=rank, data_format=fmt)


def _conv_fields(
    cfg: Mapping[str, Any],
    window: tuple[WindowAxis, ...],
    c_in: int | None,
    c_out: int | None,
    groups: int,
) -> dict[str, Any]:
    return {
        "window": window,
        "in_channels": c_in,
        "out_channels": c_out,
        "groups": groups,
        "has_bias": bool(cfg.get("use_bias", True)),
    }


def conv(cfg: Mapping[str, Any], xs: list[Shape | None], rank: int, variant: str) -> LayerSpec:
    """Conv, SeparableConv, DepthwiseConv: ``variant`` is ``""``, ``"separable"``, ``"depthwise"``."""
    fmt = data_format(cfg)
    kernel = ints(cfg.get("kernel_size"), rank, "kernel_size")
    strides = ints(cfg.get("strides", 1), rank, "strides")
    dilation = ints(cfg.get("dilation_rate", 1), rank, "dilation_rate")
    padding = _padding(cfg, ("valid", "same", "causal") if rank == 1 else ("valid", "same"))
    x = xs[0] if xs else None
    lengths = spatial_lengths(x, rank, fmt)
    window, notes = _window(lengths, kernel, strides, dilation, padding)
    c_in = channels(x, fmt)
    groups = 1
    if variant == "depthwise":
        multiplier = _int(cfg.get("depth_multiplier", 1), "depth_multiplier")
        c_out = None if c_in is None else c_in * multiplier
        groups = c_in or 1
    else:
        c_out = _int(cfg.get("filters"), "filters")
        if variant == "":
            groups = _int(cfg.get("groups", 1), "groups") if cfg.get("groups") is not None else 1
    out = _out(x, rank, fmt, _map(lengths, lambda a, n: _conv_length(n, window[a])), c_out)
    fields = _conv_fields(cfg, window, c_in, c_out, groups)
    return LayerSpec(Kind.CONV, fields, out, notes=notes, rank=rank, data_format=fmt)


def pool(cfg: Mapping[str, Any], xs: list[Shape | None], rank: int, kind: Kind) -> LayerSpec:
    """``strides`` default to ``pool_size``; Keras's average pool leaves the pads out of the
    mean (``count_include_pad=0``)."""
    fmt = data_format(cfg)
    size = ints(cfg.get("pool_size", 2), rank, "pool_size")
    strides = size if cfg.get("strides") is None else ints(cfg.get("strides"), rank, "strides")
    padding = _padding(cfg, ("valid", "same"))
    x = xs[0] if xs else None
    lengths = spatial_lengths(x, rank, fmt)
    window, notes = _window(lengths, size, strides, (1,) * rank, padding)
    out = _map(lengths, lambda a, n: _conv_length(n, window[a]))
    extra = {"count_include_pad": 0} if kind == Kind.AVG_POOL else {}
    return LayerSpec(
        kind,
        {"window": window, "extra": extra},
        _out(x, rank, fmt, out, channels(x, fmt)),
        notes=notes,
        rank=rank,
        data_format=fmt,
    )


# --- resizes and shifts -----------------------------------------------------------------------

# Keras's interpolation names to ONNX Resize modes; TensorFlow and JAX (Keras's reference) use
# half-pixel centres and Keys' cubic with a = -0.5 (Keras's torch backend: torch's -0.75).
_MODES = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic"}


def _resize_spec(
    mode: str,
    scales: Sequence[Fraction | None],
    coordinates: str,
    nearest_mode: str,
    lengths_in: Sequence[Any],
    lengths_out: Sequence[Any],
    antialias: bool = False,
) -> ResizeSpec:
    return ResizeSpec(
        mode=mode,
        scales=tuple(scales),
        coordinate_transformation_mode=coordinates,
        nearest_mode=nearest_mode,
        cubic_coeff_a=-0.5,
        antialias=antialias,
        input_lengths=tuple(n if _known(n) else None for n in lengths_in),
        output_lengths=tuple(n if _known(n) else None for n in lengths_out),
    )


def _interpolation(cfg: Mapping[str, Any], default: str) -> str:
    value = cfg.get("interpolation", default)
    if not isinstance(value, str):
        raise LayerConfigError("interpolation must be a string")
    return value.lower()


def upsampling(cfg: Mapping[str, Any], xs: list[Shape | None], rank: int) -> LayerSpec:
    """UpSampling1D/2D/3D: nearest repeats each sample ``size`` times (``ops.repeat``: ONNX's
    asymmetric + floor); UpSampling2D's other interpolations go through ``ops.image.resize``
    (half-pixel centres)."""
    fmt = "channels_last" if rank == 1 else data_format(cfg)
    size = ints(cfg.get("size", 2), rank, "size")
    interpolation = _interpolation(cfg, "nearest") if rank == 2 else "nearest"
    x = xs[0] if xs else None
    lengths = spatial_lengths(x, rank, fmt)
    out = _map(lengths, lambda a, n: n * size[a])
    out_shape = _out(x, rank, fmt, out, channels(x, fmt))
    if interpolation not in _MODES:
        return _opaque_resize(interpolation, out_shape, rank, fmt)
    nearest = interpolation == "nearest"
    spec = _resize_spec(
        _MODES[interpolation],
        [Fraction(s) for s in size],
        "asymmetric" if nearest else "half_pixel",
        "floor",
        lengths or [None] * rank,
        out or [None] * rank,
    )
    return LayerSpec(Kind.RESIZE, {"resize": spec}, out_shape, rank=rank, data_format=fmt)


def _opaque_resize(interpolation: str, out_shape: Shape | None, rank: int, fmt: str) -> LayerSpec:
    note = f"interpolation {interpolation!r} is not modelled; the pattern is not followed through"
    return LayerSpec(Kind.BARRIER, {}, out_shape, notes=[note], rank=rank, data_format=fmt)


def _aspect_shift(
    lengths: list[Any], target: tuple[int, int], crop: bool
) -> tuple[tuple[ShiftAxis, ...], list[int]]:
    """Keras's crop (or pad) to the target's aspect ratio: offsets and lengths per axis."""
    height, width = lengths
    th, tw = target
    if crop:
        h = max(min(height, int(float(width * th) / tw)), 1)
        w = max(min(width, int(float(height * tw) / th)), 1)
        return (
            ShiftAxis(int(float(height - h) / 2)),
            ShiftAxis(int(float(width - w) / 2)),
        ), [h, w]
    h, w = max(height, int(float(width * th) / tw)), max(width, int(float(height * tw) / th))
    return (ShiftAxis(-int(float(h - height) / 2)), ShiftAxis(-int(float(w - width) / 2))), [h, w]


def resizing(cfg: Mapping[str, Any], xs: list[Shape | None]) -> LayerSpec:
    """Resizing(height, width): ``ops.image.resize``, half-pixel centres; nearest reads
    ``floor((o + 0.5) / scale)`` (ONNX half_pixel + round_prefer_ceil)."""
    fmt = data_format(cfg)
    target = (_int(cfg.get("height"), "height"), _int(cfg.get("width"), "width"))
    if min(target) < 1:
        raise LayerConfigError("height and width must be positive")
    interpolation = _interpolation(cfg, "bilinear")
    x = xs[0] if xs else None
    lengths = spatial_lengths(x, 2, fmt)
    out_shape = _out(x, 2, fmt, list(target), channels(x, fmt))
    if interpolation not in _MODES:
        return _opaque_resize(interpolation, out_shape, 2, fmt)
    known = lengths is not None and all(_known(n) and n > 0 for n in lengths)
    aspect = bool(cfg.get("crop_to_aspect_ratio")) or bool(cfg.get("pad_to_aspect_ratio"))
    if aspect and not known:
        note = "crop_to_aspect_ratio/pad_to_aspect_ratio need the input size, which is unknown"
        return LayerSpec(Kind.BARRIER, {}, out_shape, notes=[note], rank=2, data_format=fmt)
    crop = None
    if aspect and known:
        shift, lengths = _aspect_shift(lengths, target, bool(cfg.get("crop_to_aspect_ratio")))
        crop_shape = _out(x, 2, fmt, lengths, channels(x, fmt))
        crop = LayerSpec(Kind.SHIFT, {"shift": shift}, crop_shape, rank=2, data_format=fmt)
    scales = [
        Fraction(t, n) if known and lengths is not None else None
        for t, n in zip(target, lengths or [None, None], strict=True)
    ]
    spec = _resize_spec(
        _MODES[interpolation],
        scales,
        "half_pixel",
        "round_prefer_ceil",
        lengths or [None, None],
        target,
        antialias=bool(cfg.get("antialias", False)),
    )
    notes = [] if known else ["the input size is unknown, so the resize scale is unknown"]
    return LayerSpec(
        Kind.RESIZE, {"resize": spec}, out_shape, notes=notes, crop=crop, rank=2, data_format=fmt
    )


def _pairs(value: Any, rank: int, name: str) -> tuple[tuple[int, int], ...]:
    """ZeroPadding/Cropping's ``int``, ``(a, b, ...)`` (symmetric per axis) or
    ``((begin, end), ...)``; ZeroPadding1D/Cropping1D's ``(begin, end)``."""
    if not isinstance(value, (list, tuple)):
        n = _int(value, name)
        return ((n, n),) * rank
    if rank == 1 and len(value) == 2 and not isinstance(value[0], (list, tuple)):
        begin, end = ints(value, 2, name, low=0)
        return ((begin, end),)
    if len(value) != rank:
        raise LayerConfigError(f"{name} must have {rank} entries")
    pairs = []
    for item in value:
        if isinstance(item, (list, tuple)):
            begin, end = ints(item, 2, name, low=0)
        else:
            begin = end = _int(item, name)
        if begin < 0 or end < 0:
            raise LayerConfigError(f"{name} must not be negative")
        pairs.append((begin, end))
    return tuple(pairs)


def shift(cfg: Mapping[str, Any], xs: list[Shape | None], rank: int, crop: bool) -> LayerSpec:
    """ZeroPadding (``offset = -begin``) and Cropping (``offset = begin``)."""
    fmt = "channels_last" if rank == 1 else data_format(cfg)
    name = "cropping" if crop else "padding"
    pairs = _pairs(cfg.get(name, 1), rank, name)
    sign = 1 if crop else -1
    axes = tuple(ShiftAxis(sign * begin) for begin, _ in pairs)
    x = xs[0] if xs else None
    lengths = _map(spatial_lengths(x, rank, fmt), lambda a, n: n - sign * sum(pairs[a]))
    if lengths is not None and any(_known(n) and n < 1 for n in lengths):
        raise LayerConfigError(f"the cropping leaves nothing of the input {x}")
    return LayerSpec(
        Kind.SHIFT,
        {"shift": axes},
        _out(x, rank, fmt, lengths, channels(x, fmt)),
        rank=rank,
        data_format=fmt,
    )

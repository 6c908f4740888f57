"""Keras, Flax and JAX calls in source mode: their signatures, and the IR node of each call.

A call is named by a key, ``"<library>.<Class>"`` (``"keras.Conv2DTranspose"``,
``"flax.linen.ConvTranspose"``, ``"flax.nnx.ConvTranspose"``, ``"jax.image.resize"``), found
from the dotted name it is written with through the file's imports, as torch's are
(:mod:`deconvlint.source.calls`): ``keras.layers.X``, ``tf.keras.layers.X`` and ``layers.X``
after ``from keras import layers`` / ``from tensorflow.keras import layers`` / ``from
tensorflow import keras``; ``nn.ConvTranspose`` after ``import flax.linen as nn``;
``nnx.ConvTranspose`` after ``from flax import nnx``; ``jax.image.resize``.

Each library's own argument names, positional orders and defaults (Keras's ``strides=1,
padding='valid'``; Flax's ``strides=None``, ``padding='SAME'``, an int ``kernel_size`` is 1-D)
and its own placement:

- Keras (the TensorFlow/JAX reference): the Keras front end's own reading of a layer
  (:func:`deconvlint.frontends.keras.layers.conv_transpose_axis`); the dilated input is padded by
  ``(left, right)`` before a stride-1 correlation, in the IR's crop form ``pads_begin = K-1-left``
  and ``pads_end = K-1-right`` (``K`` the dilated extent), a negative end being output padding;
- Flax (``jax.lax.conv_transpose``, ``_conv_transpose_padding``): the same, with JAX's own
  ``'SAME'``/``'VALID'`` pads, and explicit ``(lo, hi)`` pairs used as they are;
- ``jax.image.resize(x, shape, method='nearest')``: output ``o`` reads input ``floor((o+0.5) /
  scale)`` (ONNX ``half_pixel`` with ``round_prefer_ceil``).  Its scale is read from the
  ``shape`` entries written as a literal factor of something: ``h * 1.5``, ``int(w * 1.5)``,
  ``round(...)``, ``h * 3 // 2``, ``h // 2``; every other entry is taken as unchanged (batch,
  channels).  A call with no such entry (every size a name) is skipped: its scale depends on
  the input.

>>> keras_transpose_axis(5, 2, 1, "same", None)
WindowAxis(kernel=5, stride=2, dilation=1, pads_begin=1, pads_end=2, output_padding=0)
>>> flax_transpose_axis(3, 2, 1, "SAME")
WindowAxis(kernel=3, stride=2, dilation=1, pads_begin=0, pads_end=1, output_padding=0)
"""

from __future__ import annotations

import ast
from fractions import Fraction
from typing import Any

from deconvlint.core.ir import Kind, Node, ResizeSpec, WindowAxis
from deconvlint.frontends.keras.layers import conv_transpose_axis

KERAS_MODULES = ("keras.layers", "tensorflow.keras.layers", "tf_keras.layers", "keras.api.layers")
KERAS = "keras"
LINEN = "flax.linen"
NNX = "flax.nnx"
JAX = "jax"

_KERAS_TAIL = ("activation", "use_bias", "kernel_initializer", "bias_initializer")
_KERAS_TAIL += ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
_KERAS_TAIL += ("kernel_constraint", "bias_constraint")
_KERAS_CT = ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format")
_KERAS_CT += ("dilation_rate", *_KERAS_TAIL)
# Conv3DTranspose takes data_format before output_padding
_KERAS_CT3 = ("filters", "kernel_size", "strides", "padding", "data_format", "output_padding")
_KERAS_CT3 += ("dilation_rate", *_KERAS_TAIL)
_FLAX_TAIL = ("mask", "dtype", "param_dtype", "precision", "kernel_init", "bias_init")
_FLAX_TAIL += ("transpose_kernel", "promote_dtype", "preferred_element_type")
_LINEN_CT = ("features", "kernel_size", "strides", "padding", "kernel_dilation", "use_bias")
_LINEN_CT += (*_FLAX_TAIL, "parent", "name")
_NNX_CT = ("in_features", "out_features", "kernel_size", "strides", "padding")
_NNX_CT += ("kernel_dilation", "use_bias", *_FLAX_TAIL, "rngs")

#: key -> the parameter names in positional order (nnx's after ``strides`` are keyword-only;
#: a call that passes them by position does not run, and is read as written)
SIGNATURES: dict[str, tuple[str, ...]] = {
    "keras.Conv1DTranspose": _KERAS_CT,
    "keras.Conv2DTranspose": _KERAS_CT,
    "keras.Conv3DTranspose": _KERAS_CT3,
    "keras.UpSampling1D": ("size",),
    "keras.UpSampling2D": ("size", "data_format", "interpolation"),
    "keras.UpSampling3D": ("size", "data_format"),
    "flax.linen.ConvTranspose": _LINEN_CT,
    "flax.nnx.ConvTranspose": _NNX_CT,
    "jax.image.resize": ("image", "shape", "method", "antialias", "precision"),
}
_KERAS_GEOMETRY = ("kernel_size", "strides", "padding", "output_padding", "data_format")
_KERAS_GEOMETRY += ("dilation_rate",)
#: key -> the parameters that must be literal for the call to be checked
GEOMETRY: dict[str, tuple[str, ...]] = {
    **{f"keras.Conv{r}DTranspose": _KERAS_GEOMETRY for r in (1, 2, 3)},
    **{f"keras.UpSampling{r}D": ("size", "data_format", "interpolation") for r in (1, 2, 3)},
    "flax.linen.ConvTranspose": ("kernel_size", "strides", "padding", "kernel_dilation"),
    "flax.nnx.ConvTranspose": ("kernel_size", "strides", "padding", "kernel_dilation"),
    "jax.image.resize": ("method",),
}
#: key -> (the input channels' parameter, the output channels' parameter, the bias's)
CHANNELS: dict[str, tuple[str | None, str | None, str | None]] = {
    **{f"keras.Conv{r}DTranspose": (None, "filters", "use_bias") for r in (1, 2, 3)},
    "flax.linen.ConvTranspose": (None, "features", "use_bias"),
    "flax.nnx.ConvTranspose": ("in_features", "out_features", "use_bias"),
}
# the defaults the libraries give a parameter that is not passed
DEFAULTS: dict[str, dict[str, Any]] = {
    KERAS: {"strides": 1, "padding": "valid", "output_padding": None, "dilation_rate": 1},
    LINEN: {"strides": None, "padding": "SAME", "kernel_dilation": None},
}
DEFAULTS[NNX] = DEFAULTS[LINEN]
UPSAMPLERS = frozenset(SIGNATURES)
#: the qualified names of a Keras ``Sequential`` (its list literal is a chain, as torch's is)
SEQUENTIALS = tuple(
    f"{m}.{c}"
    for m in ("keras", "tensorflow.keras", "tf_keras")
    for c in ("Sequential", "models.Sequential")
)
#: Keras layers that leave the coverage pattern as it is (in a chain)
KERAS_POINTWISE = frozenset(
    {"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "GaussianNoise"}
    | {"BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization"}
    | {f"SpatialDropout{r}D" for r in (1, 2, 3)}
)


def pointwise(qualified: str) -> bool:
    """Whether a qualified Keras layer name passes the pattern through (``keras.layers.ReLU``)."""
    module, _, name = qualified.rpartition(".")
    return module in KERAS_MODULES and name in KERAS_POINTWISE


def library_of(key: str) -> str:
    """``"keras"``, ``"flax.linen"``, ``"flax.nnx"`` or ``"jax"`` for a key; ``"torch"`` else."""
    for library in (KERAS, LINEN, NNX, JAX):
        if key.startswith(library + "."):
            return library
    return "torch"


def class_name(key: str) -> str:
    """The class or function as its library names it: ``Conv2DTranspose``, ``resize``."""
    return key.rsplit(".", 1)[-1]


def resolve(qualified: str) -> str | None:
    """The key of a fully qualified name, if it is a call read here."""
    module, _, name = qualified.rpartition(".")
    if module in KERAS_MODULES and f"keras.{name}" in SIGNATURES:
        return f"keras.{name}"
    if qualified in SIGNATURES:
        return qualified
    return None


# --------------------------------------------------------------------------------------------
# geometry


def _ints(value: Any, low: int) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    return bool(values) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values
    )


def _per_axis(value: Any, rank: int) -> tuple[Any, ...] | None:
    if isinstance(value, tuple):
        return value if len(value) == rank else None
    return (value,) * rank


def _crop_form(kernel: int, stride: int, dilation: int, left: int, right: int) -> WindowAxis | None:
    """The IR axis of a transposed conv written as padding ``(left, right)`` of the dilated input."""
    extent = dilation * (kernel - 1) + 1
    begin, end = extent - 1 - left, extent - 1 - right
    if begin < 0:
        return None  # zeros before the first tap: not a crop
    return WindowAxis(kernel, stride, dilation, begin, max(end, 0), max(-end, 0))


def keras_transpose_axis(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> WindowAxis | None:
    """One axis of a Keras ``ConvNDTranspose``, as the Keras front end reads it (``None``: Keras
    refuses it: an ``output_padding`` not below the stride, a padding not 'same'/'valid')."""
    if output_padding is not None and not 0 <= output_padding < stride:
        return None
    if padding not in ("same", "valid"):
        return None
    return conv_transpose_axis(kernel, stride, dilation, padding, output_padding)


def flax_transpose_axis(
    kernel: int, stride: int, dilation: int, padding: str | tuple[int, int]
) -> WindowAxis | None:
    """One axis of a Flax ``ConvTranspose`` (``jax.lax.conv_transpose``'s padding)."""
    extent = dilation * (kernel - 1) + 1
    if padding == "SAME":
        pad_len = extent + stride - 2
        left = extent - 1 if stride > extent - 1 else -(-pad_len // 2)
    elif padding == "VALID":
        pad_len = extent + stride - 2 + max(extent - stride, 0)
        left = extent - 1
    elif isinstance(padding, tuple):
        left, pad_len = padding[0], padding[0] + padding[1]
    else:
        return None
    return _crop_form(kernel, stride, dilation, left, pad_len - left)


def _keras_window(key: str, args: dict[str, Any]) -> tuple[WindowAxis, ...] | None:
    rank = int(class_name(key)[4])
    values = {**DEFAULTS[KERAS], **args}
    kernel = _per_axis(values.get("kernel_size"), rank)
    strides = _per_axis(values["strides"], rank)
    dilation = _per_axis(values["dilation_rate"], rank)
    output_padding = _per_axis(values["output_padding"], rank)
    padding = values["padding"]
    if None in (kernel, strides, dilation, output_padding) or not isinstance(padding, str):
        return None
    if not (_ints(kernel, 1) and _ints(strides, 1) and _ints(dilation, 1)):
        return None
    if max(strides) > 1 and max(dilation) > 1:  # type: ignore[type-var]
        return None  # Keras refuses strides > 1 with dilation_rate > 1
    if any(op is not None and not _ints(op, 0) for op in output_padding):  # type: ignore[union-attr]
        return None
    axes = [
        keras_transpose_axis(k, s, d, padding.lower(), op)
        for k, s, d, op in zip(kernel, strides, dilation, output_padding, strict=True)  # type: ignore[arg-type]
    ]
    return None if None in axes else tuple(axes)  # type: ignore[arg-type]


def flax_padding(padding: Any, rank: int) -> tuple[Any, ...] | None:
    """Flax's ``canonicalize_padding``: per axis ``'SAME'``, ``'VALID'`` or ``(lo, hi)``."""
    if padding in ("SAME", "VALID"):
        return (padding,) * rank
    if _ints(padding, 0) and not isinstance(padding, tuple):
        return ((padding, padding),) * rank
    if isinstance(padding, tuple) and len(padding) == rank:
        pairs = []
        for p in padding:
            if _ints(p, 0) and not isinstance(p, tuple):
                pairs.append((p, p))
            elif isinstance(p, tuple) and len(p) == 2 and _ints(p, 0):
                pairs.append(p)
            else:
                return None
        return tuple(pairs)
    return None  # 'CIRCULAR', lower case, negative pads: not modelled


def _flax_window(key: str, args: dict[str, Any]) -> tuple[WindowAxis, ...] | None:
    values = {**DEFAULTS[LINEN], **args}
    kernel = values.get("kernel_size")
    kernel = (kernel,) if _ints(kernel, 1) and not isinstance(kernel, tuple) else kernel
    if not (isinstance(kernel, tuple) and _ints(kernel, 1)):
        return None
    rank = len(kernel)
    strides = _per_axis(values["strides"] or 1, rank)
    dilation = _per_axis(values["kernel_dilation"] or 1, rank)
    padding = flax_padding(values["padding"], rank)
    if strides is None or dilation is None or padding is None:
        return None
    if not (_ints(strides, 1) and _ints(dilation, 1)):
        return None
    axes = [
        flax_transpose_axis(k, s, d, p)
        for k, s, d, p in zip(kernel, strides, dilation, padding, strict=True)
    ]
    return None if None in axes else tuple(axes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# jax.image.resize's shape


def _factor(expr: ast.expr) -> Fraction | None:
    """The literal scale an entry of ``shape`` applies to its input's length, else ``None``."""
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name | ast.Attribute)
        and (expr.func.id if isinstance(expr.func, ast.Name) else expr.func.attr)
        in ("int", "round", "floor", "ceil")
        and len(expr.args) == 1
        and not expr.keywords
    ):
        return _factor(expr.args[0])
    if not isinstance(expr, ast.BinOp):
        return None
    right = _number(expr.right)
    if isinstance(expr.op, ast.Mult):
        left = _number(expr.left)
        if right is not None and left is None:
            return _scaled(expr.left) * right
        if left is not None and right is None:
            return _scaled(expr.right) * left
    if isinstance(expr.op, ast.Div | ast.FloorDiv) and right is not None and right > 0:
        return _scaled(expr.left) / right
    return None


def _scaled(expr: ast.expr) -> Fraction:
    """The factor already applied inside ``expr`` (``h * 3`` in ``h * 3 // 2``), else 1."""
    inner = _factor(expr)
    return inner if inner is not None else Fraction(1)


def _number(expr: ast.expr) -> Fraction | None:
    if isinstance(expr, ast.Constant) and type(expr.value) in (int, float) and expr.value > 0:
        return Fraction(expr.value).limit_denominator(256)
    return None


def resize_scales(shape: ast.expr | None) -> tuple[Fraction, ...] | None:
    """The scales of the entries of a literal ``shape`` tuple that carry a factor (other than 1)."""
    if not isinstance(shape, ast.Tuple | ast.List):
        return None
    scales = [_factor(e) for e in shape.elts if not isinstance(e, ast.Starred)]
    found = tuple(s for s in scales if s is not None and s != 1)
    return found or None


# --------------------------------------------------------------------------------------------
# nodes


def library_node(
    key: str, args: dict[str, Any], common: dict[str, Any], extra: dict[str, Any]
) -> Node | None:
    """The IR node of a literal Keras/Flax/JAX call (``None``: not literal or not valid)."""
    library = library_of(key)
    extra = {"library": library, **extra}
    if key.endswith("Transpose"):
        window = _keras_window(key, args) if library == KERAS else _flax_window(key, args)
        if window is None:
            return None
        if library == KERAS:
            extra["data_format"] = args.get("data_format") or "channels_last"
        return Node(kind=Kind.CONV_TRANSPOSE, window=window, extra=extra, **common)
    if library == KERAS:  # UpSamplingND: repeats (nearest), or bilinear (2-D)
        rank = int(class_name(key)[-2])
        size = _per_axis(args.get("size", 2), rank)
        mode = args.get("interpolation", "nearest")
        if size is None or not _ints(size, 1) or mode not in ("nearest", "bilinear"):
            return None
        extra["data_format"] = args.get("data_format") or "channels_last"
        coordinates = "asymmetric" if mode == "nearest" else "half_pixel"
        spec = ResizeSpec(
            mode="nearest" if mode == "nearest" else "linear",
            scales=tuple(Fraction(s) for s in size),
            coordinate_transformation_mode=coordinates,
            nearest_mode="floor",
        )
        return Node(kind=Kind.RESIZE, resize=spec, extra=extra, **common)
    scales = args.get("scales")  # jax.image.resize
    method = args.get("method")
    if scales is None or not isinstance(method, str):
        return None
    methods = {"nearest": "nearest", "linear": "linear", "bilinear": "linear"}
    methods["trilinear"] = "linear"
    if method not in methods:
        return None
    spec = ResizeSpec(
        mode=methods[method],
        scales=scales,
        coordinate_transformation_mode="half_pixel",
        nearest_mode="round_prefer_ceil",
    )
    return Node(kind=Kind.RESIZE, resize=spec, extra=extra, **common)


def resize_method_source(key: str) -> str:
    """The parameter that names a resize's method: ``interpolation`` (Keras) or ``method``."""
    return "interpolation" if library_of(key) == KERAS else "method"

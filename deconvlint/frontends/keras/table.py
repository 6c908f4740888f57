"""Which Keras layer is which IR kind: the dispatch of :mod:`deconvlint.frontends.keras.layers`.

A layer is looked up by its ``class_name``; a class that is not one of Keras's (a ``module``
outside ``keras``, a ``registered_name`` such as ``"Custom>Blur"``, or a name Keras does not
have) and a ``Lambda`` layer are opaque: a BARRIER with a note, never deserialised.

>>> layer_spec("LeakyReLU", {}, [(None, 8, 8, 3)]).kind.value
'pointwise'
>>> spec = layer_spec("UpSampling2D", {"size": [2, 2], "interpolation": "bilinear"},
...                   [(None, 8, 8, 3)])
>>> spec.kind.value, spec.fields["resize"].scales, spec.out_shape
('resize', (Fraction(2, 1), Fraction(2, 1)), (None, 16, 16, 3))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from deconvlint.core.ir import Kind
from deconvlint.frontends.keras.layers import (
    LayerConfigError,
    LayerSpec,
    Shape,
    conv,
    conv_transpose,
    data_format,
    pool,
    resizing,
    shift,
    upsampling,
)

Converter = Callable[[Mapping[str, Any], "list[Shape | None]"], LayerSpec]

# Per-element (or per-channel) layers: the pattern passes unchanged.  Normalisations whose
# statistics cover the spatial axes (GroupNormalization, LayerNormalization over them) scale
# every position alike, so they pass it too.
POINTWISE = frozenset(
    {
        "InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU",
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
        "RMSNormalization", "Normalization", "Rescaling", "Dropout", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "ActivityRegularization", "Identity", "Masking", "Softmax",
    }
)  # fmt: skip
# Several inputs meet; the paths stay separate.
JOIN = frozenset({"Add", "Multiply", "Average", "Subtract", "Maximum", "Minimum"})
# Keras layers whose spatial effect the IR does not follow (paths restart after them).
BARRIER = frozenset(
    {
        "Dense", "EinsumDense", "Flatten", "Reshape", "Permute", "RepeatVector", "Embedding",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAvgPool1D",
        "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D",
        "GlobalMaxPool3D", "Dot", "Attention", "AdditiveAttention", "MultiHeadAttention",
        "GroupQueryAttention", "LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D",
        "ConvLSTM3D", "Bidirectional", "TimeDistributed", "CenterCrop", "RandomCrop",
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
        "RandomBrightness", "StringLookup", "IntegerLookup", "TextVectorization", "Hashing",
        "CategoryEncoding", "Discretization", "HashedCrossing", "Wrapper", "TFSMLayer",
        "LocallyConnected1D", "LocallyConnected2D",
    }
)  # fmt: skip
# Layers that run code the config carries or names: never deserialised.
CODE = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})


def _conv_table() -> dict[str, Converter]:
    table: dict[str, Converter] = {}
    for rank in (1, 2, 3):
        d = f"{rank}D"

        def transpose(cfg, xs, rank=rank):
            return conv_transpose(cfg, xs, rank)

        def plain(cfg, xs, rank=rank):
            return conv(cfg, xs, rank, "")

        def separable(cfg, xs, rank=rank):
            return conv(cfg, xs, rank, "separable")

        def depthwise(cfg, xs, rank=rank):
            return conv(cfg, xs, rank, "depthwise")

        def max_pool(cfg, xs, rank=rank):
            return pool(cfg, xs, rank, Kind.MAX_POOL)

        def avg_pool(cfg, xs, rank=rank):
            return pool(cfg, xs, rank, Kind.AVG_POOL)

        def up(cfg, xs, rank=rank):
            return upsampling(cfg, xs, rank)

        def pad(cfg, xs, rank=rank):
            return shift(cfg, xs, rank, crop=False)

        def crop(cfg, xs, rank=rank):
            return shift(cfg, xs, rank, crop=True)

        table.update(
            {
                f"Conv{d}Transpose": transpose,
                f"Convolution{d}Transpose": transpose,
                f"Conv{d}": plain,
                f"Convolution{d}": plain,
                f"MaxPooling{d}": max_pool,
                f"MaxPool{d}": max_pool,
                f"AveragePooling{d}": avg_pool,
                f"AvgPool{d}": avg_pool,
                f"UpSampling{d}": up,
                f"ZeroPadding{d}": pad,
                f"Cropping{d}": crop,
            }
        )
        if rank < 3:
            table[f"SeparableConv{d}"] = separable
            table[f"SeparableConvolution{d}"] = separable
            table[f"DepthwiseConv{d}"] = depthwise
    table["Resizing"] = lambda cfg, xs: resizing(cfg, xs)
    return table


TABLE: dict[str, Converter] = _conv_table()
#: Every class name the table knows, for telling Keras's own layers from custom ones.
KNOWN = frozenset(TABLE) | POINTWISE | JOIN | BARRIER | CODE | {"Concatenate"}


def is_custom(layer: Mapping[str, Any]) -> bool:
    """A class that is not Keras's own: registered under a package, from a module outside
    Keras, or a name Keras does not have (a Keras 2 config names custom classes bare).

    >>> is_custom({"class_name": "Blur", "module": "mymodels.layers", "registered_name": "Blur"})
    True
    >>> is_custom({"class_name": "Conv2D", "module": "keras.layers", "registered_name": None})
    False
    """
    name = layer.get("class_name")
    return is_registered_elsewhere(layer) or not isinstance(name, str) or name not in KNOWN


def is_registered_elsewhere(layer: Mapping[str, Any]) -> bool:
    """Saved from a module outside Keras or under a registered name of its own (Keras 3's
    ``module`` and ``registered_name``).

    >>> is_registered_elsewhere({"class_name": "Functional", "module": "keras.src.models.functional"})
    False
    """
    module = layer.get("module")
    registered = layer.get("registered_name")
    if isinstance(module, str) and module.split(".")[0] not in ("keras", "tf_keras", "tensorflow"):
        return True
    return isinstance(registered, str) and registered != layer.get("class_name")


def _on_channels(axis: Any, x: Shape | None, fmt: str | None) -> bool:
    """Does ``axis`` (an int or a list) name only the channel axis of ``x``: the last one, or
    axis 1 in a channels_first model?  With the rank unknown, only ``-1`` does."""
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    if not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        return False
    if x is None:
        return set(axes) == {-1} and fmt != "channels_first"
    rank = len(x)
    channel = 1 if fmt == "channels_first" else rank - 1
    return {a % rank if -rank <= a < rank else -1 for a in axes} == {channel}


# Layers that act along their ``axis`` argument (default -1).
_AXIS_LAYERS = frozenset(
    {"Softmax", "BatchNormalization", "LayerNormalization", "UnitNormalization",
     "Normalization", "RMSNormalization"}
)  # fmt: skip


def _pointwise(name: str, cfg: Mapping[str, Any], x: Shape | None, fmt: str | None) -> LayerSpec:
    """Softmax and the per-channel normalisations pass the pattern only when their axis is the
    channel axis (a normalisation or softmax over a spatial axis weighs positions differently)."""
    if name in _AXIS_LAYERS and not _on_channels(cfg.get("axis", -1), x, fmt):
        note = f"acts along axis {cfg.get('axis', -1)}, not only the channels"
        return LayerSpec(Kind.BARRIER, {}, x, notes=[note])
    return LayerSpec(Kind.POINTWISE, {}, x)


def _concatenate(cfg: Mapping[str, Any], xs: list[Shape | None], fmt: str | None) -> LayerSpec:
    """Concatenate on the channel axis joins paths; on another axis it is a barrier."""
    axis = cfg.get("axis", -1)
    x = next((s for s in xs if s is not None), None)
    on_channels = _on_channels(axis, x, fmt) and isinstance(axis, int)
    if not on_channels:
        return LayerSpec(Kind.BARRIER, {}, None, notes=[f"concatenates on axis {axis}"])
    out = None
    if x is not None and all(s is not None and len(s) == len(x) for s in xs):
        a = axis % len(x)
        sizes = [s[a] for s in xs]  # type: ignore[index]
        total = sum(sizes) if all(isinstance(c, int) for c in sizes) else None
        out = tuple(total if i == a else d for i, d in enumerate(x))
    return LayerSpec(Kind.JOIN, {}, out)


def _barrier_shape(class_name: str, cfg: Mapping[str, Any], x: Shape | None) -> Shape | None:
    """Output shapes of the common barriers (Dense, Reshape, Flatten), for the layers after."""
    if x is None:
        return None
    if class_name == "Dense" and isinstance(cfg.get("units"), int):
        return (*x[:-1], cfg["units"])
    size = math.prod(x[1:]) if all(isinstance(d, int) for d in x[1:]) else None
    if class_name == "Flatten":
        return (x[0], size)
    target = cfg.get("target_shape")
    if class_name == "Reshape" and isinstance(target, list):
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in target):
            return None
        if target.count(-1) == 1 and size is not None:
            rest = math.prod(d for d in target if d != -1)
            target = [size // rest if d == -1 else d for d in target] if rest else target
        return (x[0], *target) if all(d >= 0 for d in target) else None
    return None


def layer_spec(
    class_name: str, cfg: Mapping[str, Any], xs: list[Shape | None], fmt: str | None = None
) -> LayerSpec:
    """The LayerSpec of one call of a Keras built-in layer on inputs of shapes ``xs``; ``fmt``
    is the data_format of the model around a layer that has none (Softmax's axis, ...).

    Raises :class:`LayerConfigError` for arguments Keras would reject.
    """
    x = xs[0] if xs else None
    converter = TABLE.get(class_name)
    if converter is not None:
        spec = converter(cfg, xs)
    elif class_name in POINTWISE:
        spec = _pointwise(class_name, cfg, x, fmt)
    elif class_name in JOIN:
        spec = LayerSpec(Kind.JOIN, {}, x if all(s == x for s in xs) else None)
    elif class_name == "Concatenate":
        spec = _concatenate(cfg, xs, fmt)
    else:
        spec = LayerSpec(Kind.BARRIER, {}, _barrier_shape(class_name, cfg, x))
    if spec.data_format is None and "data_format" in cfg:
        spec.data_format = data_format(cfg)
    return spec


__all__ = [
    "KNOWN",
    "LayerConfigError",
    "LayerSpec",
    "is_custom",
    "is_registered_elsewhere",
    "layer_spec",
]

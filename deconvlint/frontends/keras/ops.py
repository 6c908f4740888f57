"""``keras.ops`` calls in a functional model: Keras 3 saves each as an operation of its own
(``{"module": "keras.src.ops.nn", "class_name": "DepthToSpace", "config": {"block_size": 2,
...}}``), read here by class name like the layers; nothing is imported.

``ops.depth_to_space`` is TensorFlow's (DCR channel order), ``ops.image.resize`` the function
``Resizing`` calls; elementwise ops pass the pattern (several tensors meet as a join); any other
op is a barrier with a note.

>>> spec = op_spec("DepthToSpace", {"block_size": 2, "data_format": "channels_last"},
...                [(None, 8, 8, 12)])
>>> spec.kind.value, spec.fields, spec.out_shape
('depth_to_space', {'block': (2, 2), 'depth_to_space_mode': 'DCR'}, (None, 16, 16, 3))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deconvlint.core.ir import Kind
from deconvlint.frontends.keras.layers import (
    LayerConfigError,
    LayerSpec,
    Shape,
    channels,
    data_format,
    resizing,
    spatial_lengths,
)
from deconvlint.frontends.keras.table import KNOWN

# Elementwise ops of keras.ops (numpy, nn and math modules): one tensor passes its pattern,
# several tensors meet as a join.
ELEMENTWISE = frozenset(
    {
        "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum", "Power",
        "Negative", "Abs", "Absolute", "Square", "Sqrt", "Exp", "Log", "Log1p", "Expm1", "Sin",
        "Cos", "Tanh", "Clip", "Cast", "Sign", "Round", "Floor", "Ceil", "Relu", "Relu6",
        "Sigmoid", "HardSigmoid", "Silu", "HardSilu", "Gelu", "Elu", "Selu", "Celu", "Glu",
        "LeakyRelu", "Softplus", "Softsign", "Mish", "LogSigmoid", "Where", "Identity",
    }
)  # fmt: skip


#: The ops :func:`op_spec` models, by the class name Keras saves them under.
MODELLED = ELEMENTWISE | {"DepthToSpace", "SpaceToDepth", "Resize"}


def is_keras_op(layer: Mapping[str, Any]) -> bool:
    """Saved from ``keras.ops``: Keras 3 names the module the operation's class lives in; its
    legacy ``.h5`` serialization drops the module, so there a bare class name that
    :func:`op_spec` models and no Keras layer has (``DepthToSpace``, ``Resize``, ``Relu``; not
    ``Add``, a layer too) is taken for the op.

    >>> is_keras_op({"module": "keras.src.ops.image", "class_name": "Resize"})
    True
    >>> is_keras_op({"class_name": "Resize"}), is_keras_op({"class_name": "Add"})
    (True, False)
    """
    module = layer.get("module")
    if isinstance(module, str):
        return module.startswith(("keras.src.ops.", "keras.ops."))
    name = layer.get("class_name")
    return (
        module is None
        and layer.get("registered_name") is None
        and isinstance(name, str)
        and name in MODELLED
        and name not in KNOWN
    )


def _block(cfg: Mapping[str, Any]) -> int:
    block = cfg.get("block_size")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise LayerConfigError("block_size must be a positive integer")
    return block


def _shuffle(kind: Kind, cfg: Mapping[str, Any], x: Shape | None) -> LayerSpec:
    """DepthToSpace / SpaceToDepth over the two spatial axes, TensorFlow's DCR order."""
    fmt = data_format(cfg)
    block = _block(cfg)
    lengths = spatial_lengths(x, 2, fmt)
    c = channels(x, fmt)
    out = None
    if x is not None and lengths is not None:
        up = kind is Kind.DEPTH_TO_SPACE
        sizes = [
            None if not isinstance(n, int) else (n * block if up else n // block) for n in lengths
        ]
        depth = None if c is None else (c // block**2 if up else c * block**2)
        out = (x[0], *sizes, depth) if fmt == "channels_last" else (x[0], depth, *sizes)
    fields = {"block": (block, block), "depth_to_space_mode": "DCR"}
    return LayerSpec(kind, fields, out, rank=2, data_format=fmt)


def op_spec(
    class_name: str, cfg: Mapping[str, Any], xs: list[Shape | None], fmt: str | None = None
) -> LayerSpec:
    """The LayerSpec of one ``keras.ops`` call on tensors of shapes ``xs``."""
    x = xs[0] if xs else None
    if class_name == "DepthToSpace":
        return _shuffle(Kind.DEPTH_TO_SPACE, cfg, x)
    if class_name == "SpaceToDepth":
        return _shuffle(Kind.SPACE_TO_DEPTH, cfg, x)
    if class_name == "Resize":
        size = cfg.get("size")
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise LayerConfigError("size must be (height, width)")
        return resizing({**cfg, "height": size[0], "width": size[1]}, xs)
    if class_name in ELEMENTWISE:
        if len(xs) > 1:
            same = all(s == x for s in xs)
            return LayerSpec(Kind.JOIN, {}, x if same else None, data_format=fmt)
        return LayerSpec(Kind.POINTWISE, {}, x, data_format=fmt)
    note = f"keras.ops {class_name} is not modelled; a pattern is not followed through it"
    return LayerSpec(Kind.BARRIER, {}, None, notes=[note])


__all__ = ["ELEMENTWISE", "MODELLED", "is_keras_op", "op_spec"]

"""What ``--fix`` changes in a Keras, Flax or JAX call, and the source form of its rewrites.

The kernel rewrite is solved by the library's own rewrite module (:mod:`deconvlint.rewrites.keras`,
:mod:`deconvlint.rewrites.flax`) under that library's size rules; here it becomes parameter
changes of the call as written: the stride stays, a dilation is reset, and a parameter that
would only restate the library's default is not added.  A fractional nearest
``jax.image.resize`` gets ``method="linear"`` (same output shape: a safe fix).

>>> from deconvlint.source.calls import find_calls
>>> from deconvlint.source.layers import layer_node
>>> (call,), _ = find_calls("from keras import layers\\nlayers.Conv2DTranspose(64, 5, strides=2, padding='same')")
>>> kernel_changes(call, layer_node(call))
{'kernel_size': 4}
"""

from __future__ import annotations

from typing import Any

from deconvlint.core.ir import Node
from deconvlint.rewrites import flax as flax_rewrites
from deconvlint.rewrites import keras as keras_rewrites
from deconvlint.source import libraries
from deconvlint.source.calls import LayerCall


def _as_written(value: Any, written: Any) -> Any:
    """A per-axis value as a tuple where the call wrote a tuple, else as solved."""
    if isinstance(written, tuple) and not isinstance(value, tuple):
        return (value,) * len(written)
    return value


def _same(written: Any, value: Any) -> bool:
    """Whether a written argument already has the solved value (``2`` is ``(2, 2)``; Keras
    reads ``'SAME'`` as ``'same'``)."""
    if isinstance(written, str) and isinstance(value, str):
        return written.lower() == value.lower()
    if isinstance(value, tuple) and not isinstance(written, tuple):
        written = (written,) * len(value)
    if isinstance(written, tuple) and not isinstance(value, tuple):
        value = (value,) * len(written)
    return written == value


def kernel_changes(call: LayerCall, node: Node) -> dict[str, Any] | None:
    """The parameter changes of a Keras/Flax transposed conv's kernel rewrite (``None``: the
    library has no spelling that keeps the size)."""
    library = libraries.library_of(call.cls)
    if library == libraries.KERAS:
        params = keras_rewrites.solve_conv_transpose(node)
        dilation = "dilation_rate"
    else:
        params = flax_rewrites.solve_conv_transpose(node)
        dilation = "kernel_dilation"
    if params is None:
        return None
    defaults = libraries.DEFAULTS[library]
    changes: dict[str, Any] = {}
    for name, value in params.items():
        if name == "strides":
            continue
        written = call.args.get(name, defaults.get(name, object()))
        if _same(written, value):
            continue  # the call (or the library's default) already says it
        changes[name] = _as_written(value, call.args.get(name))
    if "output_padding" in call.sources and "output_padding" not in params:
        changes["output_padding"] = None  # Keras's default: no output padding asked for
    if dilation in call.sources:
        changes[dilation] = 1  # the solved kernel has no dilation
    return changes


def resize_conv_code(node: Node) -> str | None:
    """The resize-convolution written with the call's own prefix and channel expressions."""
    if node.extra.get("library") == libraries.KERAS:
        found = keras_rewrites.resize_conv_code(node)
        return None if found is None else found[1]
    return flax_rewrites.resize_conv_code(node)[1]


def resize_changes(call: LayerCall) -> dict[str, Any]:
    """A nearest resize made linear: ``method="linear"`` (JAX)."""
    return {libraries.resize_method_source(call.cls): "linear"}

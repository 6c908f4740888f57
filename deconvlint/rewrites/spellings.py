"""The suggestions of a layer in its own library's spelling.

A node read from Keras (a ``.keras``/``.h5`` file or a Keras call in source mode) carries
``node.extra["library"] = "keras"``; source mode marks Flax and JAX calls ``"flax.linen"``,
``"flax.nnx"`` or ``"jax"``.  Torch and ONNX nodes carry no library and get PyTorch code
(:mod:`deconvlint.rewrites.suggestions`), as before.  A library without a spelling for a
rewrite gets none rather than another library's code.

>>> from deconvlint.core.ir import Kind, Node, WindowAxis
>>> node = Node("up", "Conv2DTranspose", Kind.CONV_TRANSPOSE, ("x",), ("y",),
...             window=(WindowAxis(3, 2, 1, 0, 1, 0),) * 2, out_channels=8, has_bias=True,
...             extra={"library": "keras"})
>>> [s.code.splitlines()[0] for s in layer_rewrites(node)]
["layers.Conv2DTranspose(8, 4, strides=2, padding='same')", 'keras.Sequential([']
"""

from __future__ import annotations

from collections.abc import Sequence

from deconvlint.core.ir import Kind, Node
from deconvlint.report import Suggestion
from deconvlint.rewrites import flax, keras, suggestions

FLAX = ("flax.linen", "flax.nnx")


def library(node: Node) -> str | None:
    """The library whose spelling the node's suggestions use (``None``: PyTorch)."""
    return node.extra.get("library")


def layer_rewrites(node: Node) -> list[Suggestion]:
    """A transposed convolution's kernel rewrite and resize-convolution."""
    if node.kind is not Kind.CONV_TRANSPOSE:
        return []
    lib = library(node)
    if lib == "keras":
        return keras.conv_transpose_rewrites(node)
    if lib in FLAX:
        return flax.conv_transpose_rewrites(node)
    return suggestions.conv_transpose_rewrites(node) if lib is None else []


def stack_rewrites(layers: Sequence[Node]) -> list[Suggestion]:
    """Every layer of a stack rewritten (in the last layer's library)."""
    lib = library(layers[-1])
    if lib == "keras":
        return keras.stack_rewrites(layers)
    if lib in FLAX:
        return flax.stack_rewrites(layers)
    return suggestions.stack_rewrites(layers) if lib is None else []


def resize_rewrites(node: Node) -> list[Suggestion]:
    """A fractional nearest resize made linear."""
    lib = library(node)
    if lib == "keras":
        return keras.resize_rewrites(node)
    if lib == "jax":
        return flax.resize_rewrites(node)
    return suggestions.resize_rewrites(node) if lib is None else []


def strided_rewrites(node: Node) -> list[Suggestion]:
    """A strided convolution or pooling with an even gradient fan-out."""
    lib = library(node)
    if lib == "keras":
        return keras.strided_rewrites(node)
    return suggestions.strided_rewrites(node) if lib is None else []


def icnr_code(node: Node, r: int, rank: int, mode: str) -> str | None:
    """ICNR initialisation in the sub-pixel conv's library (``None``: PyTorch's, the caller's)."""
    return keras.icnr_code(node, r, rank, mode) if library(node) == "keras" else None

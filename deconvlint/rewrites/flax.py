"""Rewrites in Flax's spelling (``flax.linen`` and ``flax.nnx``) and for ``jax.image.resize``.

Flax's ``ConvTranspose`` calls ``jax.lax.conv_transpose``, whose padding is that of the
dilated input (``jax/_src/lax/convolution.py``, ``_conv_transpose_padding``; kernel ``k``,
stride ``s``): ``'SAME'`` gives ``L = n*s`` for every kernel, ``'VALID'`` gives ``(n-1)*s +
max(k, s)``, and explicit pairs ``((lo, hi), ...)`` give ``(n-1)*s + lo + hi - k + 2``.  With the
excess ``E`` of :mod:`deconvlint.rewrites.suggestions` (``L = s*n + E + 1 - s``): ``'SAME'`` is
``E = s-1``, ``'VALID'`` (``k >= s``) is ``E = k-1``, and pairs are ``lo + hi = E + k - 1``, so
every length has a spelling.  The pairs keep the layer's placement as nearly as the new kernel
allows (the centre of each input's footprint stays where it was).

>>> from deconvlint.core.ir import Kind, Node, WindowAxis
>>> up = Node("3:6", "ConvTranspose", Kind.CONV_TRANSPOSE, ("x",), ("y",),
...           window=(WindowAxis(3, 2, 1, 0, 1, 0),) * 2, out_channels=64, has_bias=True,
...           extra={"library": "flax.linen"})
>>> print(conv_transpose_rewrites(up)[0].code)
nn.ConvTranspose(features=64, kernel_size=(4, 4), strides=(2, 2), padding='SAME')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deconvlint.core.ir import Node, WindowAxis
from deconvlint.printable import printable
from deconvlint.report import Suggestion
from deconvlint.rewrites.keras import tie_order
from deconvlint.rewrites.suggestions import (
    axes_value,
    excess,
    solve_resize_conv,
    stack_suggestion,
)

Padding = str | tuple[tuple[int, int], ...]


def _kernel(win: WindowAxis) -> int:
    """The multiple of the stride nearest to the dilated extent (ties: :func:`tie_order`) whose
    padding ``lo + hi = E + k - 1`` is not negative."""
    s, e, extent = win.stride, excess(win), win.effective_kernel
    top = max(extent, 1 - e) + 2 * s
    options = [m for m in range(s, top + 1, s) if e + m - 1 >= 0]
    return min(options, key=tie_order(s, extent))


def _pair(win: WindowAxis, kernel: int) -> tuple[int, int]:
    """``(lo, hi)`` with ``lo + hi = E + k - 1`` that keeps the footprint's centre: the
    original's ``lo`` (``d*(k-1) - pads_begin``) moved by half the change of the extent."""
    total = excess(win) + kernel - 1
    lo = win.effective_kernel - 1 - win.pads_begin + (kernel - win.effective_kernel) // 2
    lo = min(max(lo, 0), total)
    return lo, total - lo


def solve_conv_transpose(node: Node) -> dict[str, Any]:
    """Flax parameters (``kernel_size``, ``strides``, ``padding``) with the same length.

    >>> solve_conv_transpose(Node("up", "ConvTranspose", None, ("x",), ("y",),
    ...                           window=(WindowAxis(3, 2),)))
    {'kernel_size': (4,), 'strides': (2,), 'padding': ((2, 3),)}
    """
    kernels = [_kernel(w) for w in node.window]
    padding: Padding
    if all(excess(w) == w.stride - 1 for w in node.window):
        padding = "SAME"
    elif all(excess(w) == k - 1 for w, k in zip(node.window, kernels, strict=True)):
        padding = "VALID"
    else:
        padding = tuple(_pair(w, k) for w, k in zip(node.window, kernels, strict=True))
    return {
        "kernel_size": tuple(kernels),
        "strides": tuple(w.stride for w in node.window),
        "padding": padding,
    }


def _nnx(node: Node) -> bool:
    return node.extra.get("library") == "flax.nnx"


def _features(node: Node) -> tuple[str, str]:
    """(in, out) features as code: the source's own expressions (source mode), the counts, or
    names."""
    cin = str(node.in_channels) if node.in_channels else "in_features"
    cout = str(node.out_channels) if node.out_channels else "features"
    return node.extra.get("in_source") or cin, node.extra.get("features_source") or cout


def _prefix(node: Node) -> str:
    default = "nnx." if _nnx(node) else "nn."
    return str(node.extra.get("prefix") or default)


def layer_code(node: Node, cls: str, params: dict[str, Any]) -> str:
    """``nn.cls(features=..., ...)`` (linen) or ``nnx.cls(in, out, ..., rngs=rngs)`` (nnx)."""
    cin, cout = _features(node)
    args = [f"{k}={v!r}" for k, v in params.items()]
    if not node.has_bias:
        args.append("use_bias=False")
    if _nnx(node):
        return f"{_prefix(node)}{cls}({cin}, {cout}, {', '.join(args)}, rngs=rngs)"
    return f"{_prefix(node)}{cls}(features={cout}, {', '.join(args)})"


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def resize_conv_code(node: Node) -> tuple[dict[str, Any], str]:
    """``jax.image.resize`` (nearest, by the stride) then a stride-1 ``Conv`` of the same length,
    on a channels-last ``x``."""
    rank = node.spatial_rank
    solved = [solve_resize_conv(w) for w in node.window]
    kernel = tuple(k for k, _ in solved)
    padding: Padding = "SAME"
    if not all(excess(w) == w.stride - 1 for w in node.window):
        padding = tuple((p, p) for _, p in solved)
        padding = "VALID" if not any(p for p, _ in padding) else padding
    axes = ", ".join(f"x.shape[{i - rank - 1}] * {w.stride}" for i, w in enumerate(node.window))
    resize = f"jax.image.resize(x, (*x.shape[:-{rank + 1}], {axes}, x.shape[-1]), method='nearest')"
    params = {"kernel_size": kernel, "padding": padding}
    conv = layer_code(node, "Conv", params)
    lines = [f"conv = {conv}  # in __init__", f"x = {resize}", "x = conv(x)"]
    code = "\n".join(lines if _nnx(node) else [f"x = {resize}", f"x = {conv}(x)"])
    return {"scale": tuple(w.stride for w in node.window), "method": "nearest", **params}, code


def conv_transpose_rewrites(node: Node) -> list[Suggestion]:
    """A kernel that is a multiple of the stride, and resize + Conv (Distill), in Flax."""
    params = solve_conv_transpose(node)
    resize_params, code = resize_conv_code(node)
    scale = repr(axes_value(list(resize_params["scale"])))
    return [
        Suggestion(
            title=f"ConvTranspose({_describe(params)}): kernel a multiple of the stride, "
            "same output size",
            params=params,
            code=layer_code(node, "ConvTranspose", params),
        ),
        Suggestion(
            title=f"jax.image.resize(nearest, x{scale}) + Conv(kernel_size="
            f"{resize_params['kernel_size']!r}, padding="
            f"{resize_params['padding']!r}): resize-convolution, same output size",
            params=resize_params,
            code=code,
        ),
    ]


def stack_rewrites(layers: Sequence[Node]) -> list[Suggestion]:
    """Every layer of the stack with its Flax kernel rewrite."""
    lines, params = [], {}
    for layer in layers:
        solved = solve_conv_transpose(layer)
        params[layer.name] = solved
        lines += [f"# {printable(layer.name)}", layer_code(layer, "ConvTranspose", solved)]
    return [stack_suggestion(params, lines)]


def resize_rewrites(node: Node) -> list[Suggestion]:
    """``jax.image.resize`` by a fractional scale: ``method='linear'`` (same output shape)."""
    return [
        Suggestion(
            title="linear interpolation at the same size (same output size, no uneven duplication)",
            params={"method": "linear"},
            code="jax.image.resize(x, shape, method='linear')",
        )
    ]

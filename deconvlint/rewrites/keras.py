"""Rewrites in Keras 3's spelling, solved under Keras's own size rules.

Keras cannot write a transposed convolution's padding as numbers: it has ``padding='same'`` or
``'valid'``, an ``output_padding`` that must be smaller than the stride (``None``: a default),
and ``dilation_rate``.  Its output length per axis (``keras/src/backend/common/backend_utils.py``,
``_get_output_shape_given_tf_padding``; kernel ``k``, stride ``s``, no dilation) is

- ``'valid'``: ``(n-1)*s + max(k, s)`` with ``output_padding=None``, else ``(n-1)*s + k + op``;
- ``'same'``: ``n*s`` with ``output_padding=None``, else ``(n-1)*s + k%2 + op``.

With the excess ``E`` of :mod:`deconvlint.rewrites.suggestions` (``L = s*n + E + 1 - s``) these
are ``E = k-1`` / ``k-1+op`` (valid) and ``E = s-1`` / ``k%2+op-1`` (same).  A rewrite keeps
``s`` and ``E`` on every axis with one ``padding`` for all axes and a kernel that is a multiple
of the stride; where no such spelling exists (a layer read from another framework whose pads
crop more than Keras can), the suggestion says so instead of giving code that changes the size.

>>> from deconvlint.core.ir import Kind, Node, WindowAxis
>>> dcgan = Node("conv2d_transpose", "Conv2DTranspose", Kind.CONV_TRANSPOSE, ("x",), ("y",),
...              window=(WindowAxis(5, 2, 1, 1, 2, 0),) * 2, out_channels=64, has_bias=True,
...              extra={"library": "keras"})
>>> print(conv_transpose_rewrites(dcgan)[0].code)
layers.Conv2DTranspose(64, 4, strides=2, padding='same')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deconvlint.core.ir import Kind, Node, WindowAxis
from deconvlint.printable import printable
from deconvlint.report import Suggestion
from deconvlint.rewrites.suggestions import (
    axes_value,
    excess,
    solve_resize_conv,
    solve_strided_conv,
    stack_suggestion,
)

#: (padding, output_padding given) in the order they are tried: the plain spellings first
MODES = (("same", False), ("valid", False), ("same", True), ("valid", True))


def _nearest_multiples(stride: int, extent: int, low: int = 1) -> list[int]:
    """Multiples of ``stride`` (at least ``low``), nearest to ``extent`` first."""
    top = max(extent, low) + 2 * stride
    return sorted(
        (m for m in range(stride, top + 1, stride) if m >= low), key=tie_order(stride, extent)
    )


def tie_order(stride: int, extent: int):
    """Sort key of candidate kernels: nearest to the extent; ties: nearer to ``2*stride`` (two
    taps per output on the axis, the usual ``k=4, s=2``), then the smaller."""
    return lambda m: (abs(m - extent), abs(m - 2 * stride), m)


def solve_axis(win: WindowAxis, padding: str, with_op: bool) -> tuple[int, int | None] | None:
    """(kernel, output_padding or ``None``) keeping this axis's length under ``padding``."""
    s, e = win.stride, excess(win)
    extent = win.effective_kernel
    if not with_op:
        if padding == "same":  # L = n*s for any kernel
            return (_nearest_multiples(s, extent)[0], None) if e == s - 1 else None
        k = e + 1  # valid: L = (n-1)*s + max(k, s)
        return (k, None) if k >= s and k % s == 0 else None
    for k in _nearest_multiples(s, extent):
        op = e + 1 - (k % 2 if padding == "same" else k)
        if 0 <= op < s:
            return k, op
    return None


def solve_conv_transpose(node: Node) -> dict[str, Any] | None:
    """Keras parameters (``kernel_size``, ``strides``, ``padding``, maybe ``output_padding``)
    that keep every axis's length with a kernel that is a multiple of the stride, or ``None``.

    >>> solve_conv_transpose(Node("up", "Conv2DTranspose", Kind.CONV_TRANSPOSE, ("x",), ("y",),
    ...                           window=(WindowAxis(3, 2),) * 2))
    {'kernel_size': 2, 'strides': 2, 'padding': 'valid', 'output_padding': 1}
    """
    for padding, with_op in MODES:
        solved = [solve_axis(w, padding, with_op) for w in node.window]
        if all(a is not None for a in solved):
            params: dict[str, Any] = {
                "kernel_size": axes_value([a[0] for a in solved]),  # type: ignore[index]
                "strides": axes_value([w.stride for w in node.window]),
                "padding": padding,
            }
            if with_op:
                params["output_padding"] = axes_value([a[1] for a in solved])  # type: ignore[index]
            return params
    return None


# --------------------------------------------------------------------------------------------
# code


def _filters(node: Node) -> str:
    """The filters as code: the source's own expression (source mode), the count, or a name."""
    written = node.extra.get("filters_source")
    if written:
        return str(written)
    return str(node.out_channels) if node.out_channels else "filters"


def _prefix(node: Node) -> str:
    """What stands before a class name: the call's own (source mode), else ``layers.``."""
    return str(node.extra.get("prefix") or "layers.")


def _tail(node: Node, *, bias: bool = True) -> str:
    """The arguments a rewritten layer keeps from the original: no bias, channels_first."""
    parts = []
    if bias and node.kind in (Kind.CONV, Kind.CONV_TRANSPOSE) and not node.has_bias:
        parts.append("use_bias=False")
    if node.extra.get("data_format") == "channels_first":
        parts.append("data_format='channels_first'")
    return "".join(f", {p}" for p in parts)


def _call(node: Node, cls: str, head: str, params: dict[str, Any], tail: str = "") -> str:
    """``layers.cls(head, key=value, ...)``: ``kernel_size``/``size`` positional after ``head``."""
    args = [head] if head else []
    for key, value in params.items():
        positional = key in ("kernel_size",) or (key == "size" and not head)
        args.append(repr(value) if positional else f"{key}={value!r}")
    return f"{_prefix(node)}{cls}({', '.join(args)}{tail})"


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _upsampling(node: Node, scale: Any) -> str | None:
    """``layers.UpSamplingND(size)``; ``None`` where Keras has none (1-D channels_first)."""
    rank = node.spatial_rank
    first = node.extra.get("data_format") == "channels_first"
    if (rank == 1 and first) or not 1 <= rank <= 3:
        return None
    return f"{_prefix(node)}UpSampling{rank}D({scale!r}{_tail(node, bias=False)})"


def resize_conv_code(node: Node) -> tuple[dict[str, Any], str] | None:
    """Nearest ``UpSamplingND`` then a stride-1 ``ConvND`` of the same output length:
    ``padding='same'`` where that is the length (E = s-1 on every axis), else ``'valid'``
    after a ``ZeroPaddingND`` of the solved pads."""
    rank = node.spatial_rank
    scale = axes_value([w.stride for w in node.window])
    up = _upsampling(node, scale)
    if up is None:
        return None
    solved = [solve_resize_conv(w) for w in node.window]
    kernel = axes_value([k for k, _ in solved])
    same = all(excess(w) == w.stride - 1 for w in node.window)
    pads = [0 if same else p for _, p in solved]
    conv = f"{_prefix(node)}Conv{rank}D({_filters(node)}, {kernel!r}"
    conv += f", padding='{'same' if same else 'valid'}'{_tail(node)})"
    lines = [up]
    if any(pads):
        pad = axes_value(pads) if rank > 1 else pads[0]
        lines.append(f"{_prefix(node)}ZeroPadding{rank}D({pad!r}{_tail(node, bias=False)})")
    lines.append(conv)
    params = {"size": scale, "kernel_size": kernel, "padding": "same" if same else "valid"}
    if any(pads):
        params["zero_padding"] = axes_value(pads)
    code = "keras.Sequential([\n" + "".join(f"    {line},\n" for line in lines) + "])"
    return params, code


def conv_transpose_code(node: Node, params: dict[str, Any]) -> str:
    cls = f"Conv{node.spatial_rank}DTranspose"
    return _call(node, cls, _filters(node), params, _tail(node))


def _no_spelling(node: Node) -> str:
    return (
        f"no Conv{node.spatial_rank}DTranspose with a kernel that is a multiple of the stride "
        "keeps this output size under Keras's padding ('same' or 'valid', output_padding < "
        "strides)"
    )


def conv_transpose_rewrites(node: Node) -> list[Suggestion]:
    """A kernel that is a multiple of the stride, and UpSampling + Conv (Distill), in Keras."""
    rank = node.spatial_rank
    out = []
    params = solve_conv_transpose(node)
    if params is not None:
        out.append(
            Suggestion(
                title=f"Conv{rank}DTranspose({_describe(params)}): kernel a multiple of the "
                "stride, same output size",
                params=params,
                code=conv_transpose_code(node, params),
            )
        )
    resize_conv = resize_conv_code(node)
    if resize_conv is not None:
        conv_params, code = resize_conv
        title = (
            f"UpSampling{rank}D({conv_params['size']!r}) + Conv{rank}D("
            f"{conv_params['kernel_size']!r}, padding='{conv_params['padding']}'): "
            "resize-convolution, same output size"
        )
        if params is None:
            title += f" ({_no_spelling(node)})"
        out.append(Suggestion(title=title, params=conv_params, code=code))
    return out


def stack_rewrites(layers: Sequence[Node]) -> list[Suggestion]:
    """Every layer of the stack with its Keras kernel rewrite (or the resize-convolution)."""
    lines, params = [], {}
    for layer in layers:
        solved = solve_conv_transpose(layer)
        lines.append(f"# {printable(layer.name)}")
        if solved is not None:
            params[layer.name] = solved
            lines.append(conv_transpose_code(layer, solved))
        elif (resize_conv := resize_conv_code(layer)) is not None:
            params[layer.name] = resize_conv[0]
            lines += [f"# {_no_spelling(layer)}: resize, then convolve", resize_conv[1]]
        else:
            lines.append(f"# {_no_spelling(layer)}")
    return [stack_suggestion(params, lines)]


def resize_rewrites(node: Node) -> list[Suggestion]:
    """A fractional nearest resize made bilinear (``Resizing``; ``UpSampling2D`` for its own
    class), same output size."""
    spec = node.resize
    assert spec is not None
    tail = _tail(node, bias=False)
    if node.op_type == "UpSampling2D":
        size = axes_value(
            [int(s) if s is not None and s.denominator == 1 else s for s in spec.scales]
        )
        code = f"layers.UpSampling2D({size!r}, interpolation='bilinear'{tail})"
    else:
        lengths = list(spec.output_lengths)
        known = len(lengths) == 2 and all(isinstance(v, int) for v in lengths)
        height, width = (str(v) for v in lengths) if known else ("height", "width")
        code = f"layers.Resizing({height}, {width}, interpolation='bilinear'{tail})"
    return [
        Suggestion(
            title="bilinear interpolation at the same size (same output size, no uneven "
            "duplication)",
            params={"interpolation": "bilinear"},
            code=code,
        )
    ]


def strided_rewrites(node: Node) -> list[Suggestion]:
    """A strided ``ConvND``/pooling with a kernel that is a multiple of the stride: with
    ``padding='same'`` when the layer had it (the length is ``ceil(n/s)`` for every kernel), else
    ``'valid'`` after a ``ZeroPaddingND`` of the solved pads."""
    rank = node.spatial_rank
    solved = [solve_strided_conv(w) for w in node.window]
    kernel = axes_value([k for k, _, _ in solved])
    strides = axes_value([w.stride for w in node.window])
    same = node.extra.get("padding") == "same"
    pads = [(0, 0) if same else (pb, pe) for _, pb, pe in solved]
    if node.kind is Kind.CONV:
        cls, head = f"Conv{rank}D", _filters(node)
    else:
        cls, head = (
            ("MaxPooling" if node.kind is Kind.MAX_POOL else "AveragePooling") + f"{rank}D",
            "",
        )
    params = {"kernel_size" if head else "pool_size": kernel, "strides": strides}
    params["padding"] = "same" if same else "valid"
    args = ([head, repr(kernel)] if head else [f"pool_size={kernel!r}"]) + [
        f"strides={strides!r}",
        f"padding='{params['padding']}'",
    ]
    layer = f"layers.{cls}({', '.join(args)}{_tail(node)})"
    code = layer
    if any(p != (0, 0) for p in pads):
        zero = pads[0] if rank == 1 else tuple(pads)
        params["zero_padding"] = zero
        pad = f"layers.ZeroPadding{rank}D({zero!r}{_tail(node, bias=False)})"
        code = f"keras.Sequential([\n    {pad},\n    {layer},\n])"
    return [
        Suggestion(
            title=f"{cls} with kernel {kernel} (a multiple of stride {strides}): even gradient "
            "fan-out, same output size",
            params=params,
            code=code,
        )
    ]


def icnr_code(node: Node, r: int, rank: int = 2, mode: str = "DCR") -> str:
    """ICNR (Aitken et al. 2017) as a Keras initializer for the sub-pixel conv ``node``: every
    sub-kernel of an output channel starts identical.  Keras kernels are ``(*window, in, out)``;
    TensorFlow's depth_to_space (DCR) reads channel ``phase*C + c``, a CRD shuffle ``c*R + phase``.
    """
    copies = (
        f"keras.ops.tile(base, (1,) * (len(shape) - 1) + (self.r**{rank},))"
        if mode == "DCR"
        else f"keras.ops.repeat(base, self.r**{rank}, axis=-1)"
    )
    filters = _filters(node)
    return (
        "import keras\n\n\n"
        "class ICNR(keras.initializers.Initializer):\n"
        '    """Every sub-kernel of an output channel starts identical: no checkerboard at init."""\n\n'
        f"    def __init__(self, r={r}, init=None):\n"
        "        self.r, self.init = r, init or keras.initializers.GlorotUniform()\n\n"
        "    def __call__(self, shape, dtype=None):\n"
        "        *window, cin, cout = shape\n"
        f"        base = self.init((*window, cin, cout // self.r**{rank}), dtype=dtype)\n"
        f"        return {copies}\n\n\n"
        f"# {printable(node.name)}: the sub-pixel conv, with a zero bias (Keras's default)\n"
        f"{_prefix(node)}Conv{rank}D({filters}, ..., kernel_initializer=ICNR(r={r}), "
        "bias_initializer='zeros')"
    )

"""Rewrites that keep the output length for every input length, as ready-to-paste PyTorch.

The size algebra, per axis (input length ``n``):

- transposed conv: ``L = (n-1)*s + d*(k-1) + 1 - pb - pe + op``, so ``L = s*n + E + 1 - s`` with
  the *excess* ``E = d*(k-1) - pb - pe + op``; any layer with the same ``s`` and ``E`` keeps ``L``;
- nearest ``Upsample(x s)`` then ``Conv(k_c, p_c)``: ``L = s*n + 2*p_c - k_c + 1``, so
  ``k_c = 2*p_c + s - E``;
- strided conv: ``L = floor((n + pb + pe - d*(k-1) - 1)/s) + 1``: any conv with the same ``s`` and
  the same ``pb + pe - d*(k-1)`` keeps it.

>>> from deconvlint.core.ir import WindowAxis
>>> solve_conv_transpose(WindowAxis(kernel=3, stride=2, pads_begin=1, pads_end=1, output_padding=1))
(4, 1, 0)
>>> solve_resize_conv(WindowAxis(kernel=3, stride=2, pads_begin=1, pads_end=1, output_padding=1))
(3, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deconvlint.core.ir import Kind, Node, WindowAxis
from deconvlint.printable import printable
from deconvlint.report import Suggestion


def excess(win: WindowAxis) -> int:
    """``E = d*(k-1) - pb - pe + op``: a transposed conv's length is ``s*n + E + 1 - s``."""
    return win.dilation * (win.kernel - 1) - win.pads_begin - win.pads_end + win.output_padding


def solve_conv_transpose(win: WindowAxis) -> tuple[int, int, int]:
    """(kernel, padding, output_padding) with kernel a multiple of the stride and the same length.

    The kernel is the multiple of the stride nearest to the dilated extent ``d*(k-1)+1`` (ties:
    the larger); PyTorch needs ``0 <= op < s`` and one symmetric ``padding``.
    """
    s, e = win.stride, excess(win)
    extent = win.effective_kernel
    multiples = range(s, s * (extent // s + 2 + (max(e, 0) // s)) + 1, s)
    for kernel in sorted(multiples, key=lambda m: (abs(m - extent), -m)):
        for op in range(s):
            twice_pad = kernel - 1 + op - e  # from 2p' - op' = k' - 1 - E
            if twice_pad >= 0 and twice_pad % 2 == 0:
                return kernel, twice_pad // 2, op
    raise AssertionError(f"no transposed-conv rewrite for {win}")  # unreachable: see tests


def solve_resize_conv(win: WindowAxis) -> tuple[int, int]:
    """(conv kernel, conv padding) after nearest x stride, nearest to the original kernel."""
    s, e = win.stride, excess(win)
    options = []
    for pad in range(0, win.kernel + s + abs(e) + 2):
        kernel = 2 * pad + s - e
        if kernel >= 1:
            options.append((abs(kernel - win.kernel), kernel, pad))
    _, kernel, pad = min(options)
    return kernel, pad


def solve_strided_conv(win: WindowAxis) -> tuple[int, int, int]:
    """(kernel, pad_begin, pad_end) with kernel a multiple of the stride and the same length."""
    s = win.stride
    budget = win.pads_begin + win.pads_end - win.dilation * (win.kernel - 1)  # pb+pe-(k'-1)
    extent = win.effective_kernel
    for kernel in sorted(
        range(s, s * (extent // s + 2) + 1, s), key=lambda m: (abs(m - extent), -m)
    ):
        total = budget + kernel - 1
        if total >= 0:
            return kernel, total // 2, total - total // 2
    raise AssertionError(f"no strided rewrite for {win}")


# --------------------------------------------------------------------------------------------
# code


def axes_value(values: Sequence[Any]) -> Any:
    """A layer argument from its per-axis values: one value when all axes agree, else a tuple.

    >>> axes_value([2, 2]), axes_value([2, 1])
    (2, (2, 1))
    """
    return values[0] if len(set(values)) == 1 else tuple(values)


def torch_class(base: str, rank: int) -> str:
    """The ``torch.nn`` class of a layer ``base`` at spatial ``rank`` (marked when torch has none).

    >>> torch_class("ConvTranspose", 2), torch_class("Conv", 4)
    ('nn.ConvTranspose2d', 'nn.Conv4d  # no such class')
    """
    return f"nn.{base}{rank}d" if 1 <= rank <= 3 else f"nn.{base}{rank}d  # no such class"


def _channels(node: Node) -> tuple[str, str]:
    cin = str(node.in_channels) if node.in_channels else "in_channels"
    cout = str(node.out_channels) if node.out_channels else "out_channels"
    return cin, cout


def _kwargs(params: dict[str, Any], node: Node) -> str:
    parts = [f"{k}={v!r}" for k, v in params.items()]
    if node.groups > 1:
        parts.append(f"groups={node.groups}")
    # a layer read from a model (its channels known) that has no bias: the rewrite has none
    weighted = node.kind in (Kind.CONV, Kind.CONV_TRANSPOSE) and node.in_channels is not None
    if weighted and not node.has_bias:
        parts.append("bias=False")
    return ", ".join(parts)


def conv_transpose_code(node: Node, params: dict[str, Any]) -> str:
    cin, cout = _channels(node)
    return (
        f"{torch_class('ConvTranspose', node.spatial_rank)}({cin}, {cout}, {_kwargs(params, node)})"
    )


def _describe(params: dict[str, Any]) -> str:
    short = {"kernel_size": "k", "stride": "s", "padding": "p", "output_padding": "op"}
    return ", ".join(f"{short.get(k, k)}={v}" for k, v in params.items())


def conv_transpose_params(node: Node) -> dict[str, Any]:
    solved = [solve_conv_transpose(w) for w in node.window]
    params: dict[str, Any] = {
        "kernel_size": axes_value([k for k, _, _ in solved]),
        "stride": axes_value([w.stride for w in node.window]),
        "padding": axes_value([p for _, p, _ in solved]),
    }
    if any(op for _, _, op in solved):
        params["output_padding"] = axes_value([op for _, _, op in solved])
    return params


def conv_transpose_rewrites(node: Node) -> list[Suggestion]:
    """A kernel that is a multiple of the stride, and nearest Upsample + Conv (Distill)."""
    rank = node.spatial_rank
    params = conv_transpose_params(node)
    out = [
        Suggestion(
            title=f"ConvTranspose{rank}d({_describe(params)}): kernel a multiple of the stride, "
            "same output size",
            params=params,
            code=conv_transpose_code(node, params),
        )
    ]
    solved = [solve_resize_conv(w) for w in node.window]
    scale = axes_value([w.stride for w in node.window])
    conv = {
        "kernel_size": axes_value([k for k, _ in solved]),
        "padding": axes_value([p for _, p in solved]),
    }
    cin, cout = _channels(node)
    scale_text = scale if isinstance(scale, int) else tuple(float(v) for v in scale)
    code = (
        "nn.Sequential(\n"
        f'    nn.Upsample(scale_factor={scale_text!r}, mode="nearest"),\n'
        f"    {torch_class('Conv', rank)}({cin}, {cout}, {_kwargs(conv, node)}),\n"
        ")"
    )
    out.append(
        Suggestion(
            title=f"Upsample(x{scale}, nearest) + Conv{rank}d({_describe(conv)}): resize-convolution, "
            "same output size",
            params={"scale_factor": scale, "mode": "nearest", **conv},
            code=code,
        )
    )
    return out


def stack_rewrites(layers: Sequence[Node]) -> list[Suggestion]:
    """Rewrite every layer of a stack with its kernel rewrite: each becomes uniform, so does the
    stack (a uniform pattern stays uniform through every op the analysis knows)."""
    lines, params = [], {}
    for layer in layers:
        p = conv_transpose_params(layer)
        params[layer.name] = p
        # the name escaped: a line break in it would end the comment and start code
        lines += [f"# {printable(layer.name)}", conv_transpose_code(layer, p)]
    return [stack_suggestion(params, lines)]


def stack_suggestion(params: dict[str, Any], lines: Sequence[str]) -> Suggestion:
    """The stack's one suggestion: each layer's rewrite (``params`` by layer name) as code."""
    return Suggestion(
        title="Rewrite every layer of the stack with a kernel that is a multiple of its stride",
        params=params,
        code="\n".join(lines),
    )


def strided_rewrites(node: Node) -> list[Suggestion]:
    """Backward fan-out made even: a kernel that is a multiple of the stride, same output size."""
    rank = node.spatial_rank
    solved = [solve_strided_conv(w) for w in node.window]
    kernel = axes_value([k for k, _, _ in solved])
    stride = axes_value([w.stride for w in node.window])
    symmetric = all(pb == pe for _, pb, pe in solved)
    if node.kind is Kind.CONV:
        cin, cout = _channels(node)
        head, base = f"{cin}, {cout}, ", "Conv"
    else:
        head, base = "", "MaxPool" if node.kind is Kind.MAX_POOL else "AvgPool"
    params: dict[str, Any] = {"kernel_size": kernel, "stride": stride}
    if symmetric:
        params["padding"] = axes_value([pb for _, pb, _ in solved])
        code = f"{torch_class(base, rank)}({head}{_kwargs(params, node)})"
    else:
        # F.pad order: last axis first, (begin, end) per axis
        pads = tuple(v for _, pb, pe in reversed(solved) for v in (pb, pe))
        params["pads"] = pads
        fill = ', value=float("-inf")' if node.kind is Kind.MAX_POOL else ""
        pad_cls = "nn.ConstantPad" if node.kind is Kind.MAX_POOL else "nn.ZeroPad"
        pad_code = (
            f"{pad_cls}{rank}d({pads!r}{fill})" if rank in (1, 2, 3) else f"F.pad(x, {pads!r})"
        )
        if pad_cls == "nn.ZeroPad" and rank == 1:
            pad_code = f"nn.ConstantPad1d({pads!r}, 0.0)"
        conv_params = {k: v for k, v in params.items() if k != "pads"}
        code = (
            "nn.Sequential(\n"
            f"    {pad_code},\n"
            f"    {torch_class(base, rank)}({head}{_kwargs(conv_params, node)}),\n"
            ")"
        )
    return [
        Suggestion(
            title=f"{base}{rank}d with kernel {kernel} (a multiple of stride {stride}): even "
            "gradient fan-out, same output size",
            params=params,
            code=code,
        )
    ]


def resize_rewrites(node: Node) -> list[Suggestion]:
    """Fractional nearest resize: interpolate instead (same output size, even footprint)."""
    spec = node.resize
    assert spec is not None
    rank = spec.spatial_rank
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(rank, "linear")
    scale_values = [float(s) if s is not None else None for s in spec.scales]
    scale = axes_value(scale_values)
    out = [
        Suggestion(
            title=f"{mode} interpolation at the same scale (same output size, no uneven duplication)",
            params={"scale_factor": scale, "mode": mode, "align_corners": False},
            code=f'nn.Upsample(scale_factor={scale!r}, mode="{mode}", align_corners=False)',
        )
    ]
    if all(s is not None and s < 1 for s in spec.scales):
        out.append(
            Suggestion(
                title="area (average) downscaling at the same scale",
                params={"scale_factor": scale, "mode": "area"},
                code=f'nn.Upsample(scale_factor={scale!r}, mode="area")',
            )
        )
    return out

"""The replacement layers of :func:`deconvlint.fix`: one builder per strategy, from the IR node
of a flagged transposed convolution and its torch module to a new module and its code.

Each builder keeps the output length for every input length, by the size algebra of
:mod:`deconvlint.rewrites.suggestions` (``L = s*n + E + 1 - s`` with the excess ``E``), and says why
when it cannot: a :class:`Plan` has either a module or a reason.

- ``kernel``: the same class, kernel a multiple of the stride (``solve_conv_transpose``);
- ``resize-conv``: nearest ``Upsample(x s)`` then ``Conv`` (``solve_resize_conv``);
- ``subpixel``: ``Conv`` to ``C*s^2`` channels then ``PixelShuffle(s)``, ICNR-initialised:
  ``L = s*(n + 2p - k + 1)``, so ``s*(2p - k + 1) = E + 1 - s`` (see :func:`solve_subpixel`).

>>> from deconvlint.core.ir import WindowAxis
>>> solve_subpixel(WindowAxis(kernel=3, stride=2, pads_begin=1, pads_end=1, output_padding=1))
(3, 1)
>>> solve_subpixel(WindowAxis(kernel=3, stride=2)) is None  # L = 2n + 1 is odd
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from deconvlint.core.ir import Node, WindowAxis
from deconvlint.rewrites.suggestions import (
    axes_value,
    conv_transpose_params,
    excess,
    solve_resize_conv,
    torch_class,
)

STRATEGIES = ("kernel", "resize-conv", "subpixel")

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@dataclass
class Plan:
    """What a strategy makes of one layer: a module and its code, or the reason it cannot."""

    module: nn.Module | None = None
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def solve_subpixel(win: WindowAxis) -> tuple[int, int] | None:
    """(conv kernel, conv padding) before ``PixelShuffle(s)`` with the same length, or ``None``.

    ``s*(n + 2p - k + 1) = s*n + E + 1 - s`` needs ``E + 1`` to be a multiple of ``s``; the
    kernel is the one nearest to ``ceil(extent / s)``, the original's reach at low resolution
    (ties: the larger).
    """
    s, e = win.stride, excess(win)
    if (e + 1 - s) % s:
        return None
    m = (e + 1 - s) // s  # = 2p - k + 1
    target = -(-win.effective_kernel // s)
    options = [
        (abs(2 * p + 1 - m - target), -(2 * p + 1 - m), p)
        for p in range(0, target + abs(m) + 2)
        if 2 * p + 1 - m >= 1
    ]
    _, neg_kernel, pad = min(options)
    return -neg_kernel, pad


def original_class(module: nn.Module) -> type[nn.Module]:
    """The class the user wrote: a parametrized module's class is a generated subclass."""
    cls = type(module)
    return cls.__bases__[0] if parametrize.is_parametrized(module) else cls


def describe(module: nn.Module) -> str:
    """``nn.ConvTranspose2d(16, 8, kernel_size=(3, 3), stride=(2, 2), ...)``, as torch prints it."""
    return f"nn.{original_class(module).__name__}({module.extra_repr()})"


def plan(node: Node, module: nn.Module, strategy: str) -> Plan:
    """The replacement of ``module`` (the layer ``node`` was read from) by ``strategy``."""
    rank = node.spatial_rank
    if original_class(module) is not _CONV_TRANSPOSE.get(rank):
        return Plan(
            reason=f"it is a {original_class(module).__name__}, not an nn.ConvTranspose"
            f"{rank}d; replacing it would drop its own code"
        )
    reason = _unmovable_state(module)
    if reason:
        return Plan(reason=reason)
    builder = {"kernel": _kernel, "resize-conv": _resize_conv, "subpixel": _subpixel}[strategy]
    return builder(node, module)


def _unmovable_state(module: nn.Module) -> str | None:
    """Hooks and parametrizations a new module could not take over."""
    from torch.nn.utils.weight_norm import WeightNorm

    hooks = [h for h in module._forward_pre_hooks.values() if not isinstance(h, WeightNorm)]
    if hooks or module._forward_hooks:
        return "it has forward hooks that a new module would lose"
    if parametrize.is_parametrized(module):
        for name, chain in module.parametrizations.items():
            kinds = {type(p).__name__ for p in chain}
            if name != "weight" or not kinds <= {"_WeightNorm", "_SpectralNorm"}:
                return f"its parametrization of '{name}' ({', '.join(sorted(kinds))}) cannot be "
                "carried over to a new weight shape"
    return None


def _carry_norms(old: nn.Module, new: nn.Module, same_layout: bool) -> None:
    """Re-apply the weight and spectral norms of ``old`` to ``new`` (a weight of a new shape).

    A conv's weight is (out, in, k...) where a transposed conv's is (in, out, k...): the norm's
    ``dim`` is kept only when the layout is the same, else the conv's default (0) is used.
    """
    from torch.nn.utils.weight_norm import WeightNorm

    for hook in old._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm):  # the deprecated hook-based weight_norm
            torch.nn.utils.weight_norm(new, hook.name, hook.dim if same_layout else 0)
    if not parametrize.is_parametrized(old):
        return
    for p in old.parametrizations.weight:
        dim = p.dim if same_layout else 0
        if type(p).__name__ == "_WeightNorm":
            parametrizations.weight_norm(new, "weight", dim=dim)
        else:
            parametrizations.spectral_norm(
                new, "weight", n_power_iterations=p.n_power_iterations, eps=p.eps, dim=dim
            )


def _factory(module: nn.Module) -> dict[str, Any]:
    weight = module.weight
    return {"device": weight.device, "dtype": weight.dtype}


def _finish(old: nn.Module, new: nn.Module, bias: torch.Tensor | None, same_layout: bool) -> None:
    with torch.no_grad():
        if bias is not None:
            new.bias.copy_(bias)
    if old.bias is not None:
        new.bias.requires_grad_(old.bias.requires_grad)
    _carry_norms(old, new, same_layout)
    new.train(old.training)


def _bias_param(module: nn.Module) -> dict[str, Any]:
    return {} if module.bias is not None else {"bias": False}


def _args(node: Node, params: dict[str, Any]) -> str:
    parts = [str(node.in_channels), str(node.out_channels)]
    parts += [f"{k}={v!r}" for k, v in params.items()]
    return ", ".join(parts)


def _kernel(node: Node, module: nn.Module) -> Plan:
    params = conv_transpose_params(node)
    if node.groups > 1:
        params["groups"] = node.groups
    params.update(_bias_param(module))
    cls = _CONV_TRANSPOSE[node.spatial_rank]
    new = cls(node.in_channels, node.out_channels, **params, **_factory(module))
    _finish(module, new, module.bias, same_layout=True)
    return Plan(
        new, f"{torch_class('ConvTranspose', node.spatial_rank)}({_args(node, params)})", params
    )


def _resize_conv(node: Node, module: nn.Module) -> Plan:
    rank = node.spatial_rank
    solved = [solve_resize_conv(w) for w in node.window]
    scale = axes_value([w.stride for w in node.window])
    scale = scale if isinstance(scale, int) else tuple(float(s) for s in scale)
    conv: dict[str, Any] = {
        "kernel_size": axes_value([k for k, _ in solved]),
        "padding": axes_value([p for _, p in solved]),
    }
    if node.groups > 1:
        conv["groups"] = node.groups
    conv.update(_bias_param(module))
    new_conv = _CONV[rank](node.in_channels, node.out_channels, **conv, **_factory(module))
    _finish(module, new_conv, module.bias, same_layout=False)
    new = nn.Sequential(nn.Upsample(scale_factor=scale, mode="nearest"), new_conv)
    new.train(module.training)
    code = _sequential(
        f'nn.Upsample(scale_factor={scale!r}, mode="nearest")',
        f"{torch_class('Conv', rank)}({_args(node, conv)})",
    )
    return Plan(new, code, {"scale_factor": scale, "mode": "nearest", **conv})


def _subpixel(node: Node, module: nn.Module) -> Plan:
    rank, strides = node.spatial_rank, {w.stride for w in node.window}
    if rank != 2:
        return Plan(
            reason=f"subpixel needs nn.PixelShuffle, which is 2-D only (this layer is "
            f"{rank}-D); use strategy 'kernel' or 'resize-conv'"
        )
    if len(strides) != 1:
        return Plan(
            reason=f"subpixel needs the same stride on every axis (PixelShuffle has one "
            f"factor), not {tuple(w.stride for w in node.window)}"
        )
    solved = [solve_subpixel(w) for w in node.window]
    (s,) = strides
    if any(v is None for v in solved):
        lengths = [f"{s}*n{excess(w) + 1 - s:+d}" for w in node.window]
        shown = lengths[0] if len(set(lengths)) == 1 else " x ".join(lengths)
        return Plan(
            reason=f"its output length {shown} is not a multiple of the stride {s}, "
            "which PixelShuffle always produces; use strategy 'kernel' or 'resize-conv'"
        )
    phases = s**rank
    conv: dict[str, Any] = {
        "kernel_size": axes_value([k for k, _ in solved]),  # type: ignore[misc]
        "padding": axes_value([p for _, p in solved]),  # type: ignore[misc]
    }
    if node.groups > 1:
        conv["groups"] = node.groups
    conv.update(_bias_param(module))
    cin, cout = node.in_channels, node.out_channels
    new_conv = _CONV[rank](cin, cout * phases, **conv, **_factory(module))
    icnr(new_conv, phases)
    bias = None if module.bias is None else module.bias.detach().repeat_interleave(phases)
    _finish(module, new_conv, bias, same_layout=False)
    new = nn.Sequential(new_conv, nn.PixelShuffle(s))
    new.train(module.training)
    code = _sequential(
        f"{torch_class('Conv', rank)}({cin}, {cout * phases}, "
        + ", ".join(f"{k}={v!r}" for k, v in conv.items())
        + ")",
        f"nn.PixelShuffle({s})",
        comment="weight: ICNR (the same sub-kernel for every phase)",
    )
    return Plan(new, code, {"upscale_factor": s, **conv})


def icnr(conv: nn.Module, phases: int) -> None:
    """ICNR (Aitken et al. 2017): every group of ``phases`` output channels that PixelShuffle
    spreads over one output channel's sub-pixel phases gets the same sub-kernel, so a constant
    input gives a constant output at initialisation.  PixelShuffle reads channel ``c*s^2 + i*s
    + j`` into channel ``c`` at phase ``(i, j)``: repeat each sub-kernel ``s^2`` times in a row.
    """
    out_channels = conv.weight.shape[0] // phases
    sub = torch.empty(out_channels, *conv.weight.shape[1:], **_factory(conv))
    nn.init.kaiming_uniform_(sub, a=5**0.5)  # torch's default init of a conv weight
    with torch.no_grad():
        conv.weight.copy_(sub.repeat_interleave(phases, dim=0))


def _sequential(*lines: str, comment: str | None = None) -> str:
    body = "".join(f"    {line},\n" for line in lines)
    head = f"nn.Sequential(  # {comment}\n" if comment else "nn.Sequential(\n"
    return f"{head}{body})"

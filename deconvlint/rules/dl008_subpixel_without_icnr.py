"""DL008 subpixel-without-icnr: a sub-pixel convolution whose sub-kernels (or biases) differ
across the positions of a pixel-shuffle block.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from deconvlint.core import weights as wg
from deconvlint.core.geometry import plain_number
from deconvlint.report import Finding, Suggestion
from deconvlint.rewrites import spellings
from deconvlint.rules.base import Context, fmt_number
from deconvlint.rules.weighted import grid_text, nested, weight_compensation, weighted_layers

RULE_ID = "DL008"


def _python_name(node_name: str) -> str | None:
    """``decoder.0.conv`` -> ``model.decoder[0].conv``: a module's qualified name as Python;
    ``None`` for other names (an exporter's ``/decoder/0/Conv``)."""
    parts = []
    for part in node_name.split("."):
        if part.isdigit():
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(f".{part}")
        else:
            return None
    return "model" + "".join(parts) if parts else None


def check(ctx: Context) -> Iterator[Finding]:
    for layer in weighted_layers(ctx, subpixel_only=True):
        shuffle = layer.upsampler
        kernels, biases = wg.subpixel_subkernels(
            layer.weights.kernel, layer.weights.bias, shuffle.block, shuffle.depth_to_space_mode
        )
        kernel_spread = max(wg.spread(k) for k in kernels)
        bias_spread = 0.0 if biases is None else max(wg.spread(b) for b in biases)
        if kernel_spread <= 1e-6 and bias_spread <= 1e-6:
            continue
        severity, tail, by = weight_compensation(ctx, layer)
        summary = wg.index_summary(layer.response)
        differ = [
            what
            for what, s in (("sub-kernels", kernel_spread), ("biases", bias_spread))
            if s > 1e-6
        ]
        cells = int(np.prod(shuffle.block))
        metrics = {
            "kernel_spread": plain_number(round(kernel_spread, 6)),
            "bias_spread": plain_number(round(bias_spread, 6)),
            "checkerboard_index": plain_number(round(summary["max_index"], 6)),
            "response": nested(summary["response"]),
            "period": list(layer.periods),
            "shuffle": shuffle.name,
            "mode": shuffle.depth_to_space_mode,
            "compensated_by": by,
        }
        message = (
            f"sub-pixel conv without ICNR: the {cells} {' and '.join(differ)} that "
            f"'{shuffle.name}' ({shuffle.depth_to_space_mode}) lays out on each "
            f"{' x '.join(str(b) for b in shuffle.block)} block differ (largest relative "
            f"difference {fmt_number(round(max(kernel_spread, bias_spread), 4))}); a constant input "
            f"gives {grid_text(summary['response'])} on channel {summary['worst_channel']}, "
            f"checkerboard index {fmt_number(round(summary['max_index'], 4))}{tail}"
        )
        r = shuffle.block[0] if len(set(shuffle.block)) == 1 else max(shuffle.block)
        where = _python_name(layer.node.name)
        rank, mode = len(shuffle.block), shuffle.depth_to_space_mode
        code = spellings.icnr_code(layer.node, r, rank, mode) or (
            (f"# conv = {where}\n" if where else f"# conv: the layer '{layer.node.name}'\n")
            + wg.icnr_code("conv", r, rank, mode)
        )
        suggestion = Suggestion(
            title="ICNR initialisation: identical sub-kernels per output channel, zero bias",
            params={"r": r, "mode": shuffle.depth_to_space_mode},
            code=code,
        )
        yield ctx.finding(layer.node, message, metrics, [suggestion], severity)

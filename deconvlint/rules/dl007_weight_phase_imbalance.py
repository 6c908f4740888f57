"""DL007 weight-phase-imbalance: what the trained weights of an upsampler answer to a constant
input, per output phase.

>>> from deconvlint.core.chainspec import parse_chain
>>> from deconvlint.rules.registry import run_rules
>>> from deconvlint.core.ir import Graph
>>> from deconvlint.config.settings import Settings
>>> nodes = parse_chain("ConvTranspose1d(k=4, s=2, p=1, taps=(1, 2, 3, 4))")
>>> [(f.rule, f.metrics["response"]) for f in run_rules(
...     Graph("g", nodes, ("v0",), ("v1",)), Settings(select=("DL007",)))]
[('DL007', [6, 4])]
"""

from __future__ import annotations

from collections.abc import Iterator

from deconvlint.core import weights as wg
from deconvlint.core.geometry import plain_number
from deconvlint.report import Finding
from deconvlint.rules.base import Context, fmt_number
from deconvlint.rules.weighted import (
    grid_text,
    layer_kind_text,
    nested,
    weight_compensation,
    weighted_layers,
)

RULE_ID = "DL007"


def check(ctx: Context) -> Iterator[Finding]:
    max_index = float(ctx.option("max-index"))
    for layer in weighted_layers(ctx):
        summary = wg.index_summary(layer.response)
        if summary["max_index"] <= max_index:
            continue
        severity, tail, by = weight_compensation(ctx, layer)
        response = summary["response"]
        metrics = {
            "checkerboard_index": plain_number(round(summary["max_index"], 6)),
            "mean_index": plain_number(round(summary["mean_index"], 6)),
            "worst_channel": summary["worst_channel"],
            "channels": int(layer.response.shape[0]),
            "response": nested(response),
            "period": list(layer.periods),
            "compensated_by": by,
        }
        if layer.upsampler is not layer.node:
            metrics["shuffle"] = layer.upsampler.name
        shown = " x ".join(str(p) for p in layer.periods)
        message = (
            f"weight phase imbalance: the trained {layer_kind_text(layer)} answers a constant input with "
            f"{grid_text(response)} per output phase (period {shown}) on output channel "
            f"{summary['worst_channel']}: checkerboard index {fmt_number(round(summary['max_index'], 4))}"
            f" > max-index {fmt_number(max_index)} (mean over {layer.response.shape[0]} channels "
            f"{fmt_number(round(summary['mean_index'], 4))}){tail}"
        )
        yield ctx.finding(layer.node, message, metrics, severity=severity)

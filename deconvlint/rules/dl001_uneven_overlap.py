"""DL001 uneven-overlap: a transposed convolution whose taps fall unevenly on the stride phases."""

from __future__ import annotations

from collections.abc import Iterator

from deconvlint.core import geometry as geo
from deconvlint.report import Finding
from deconvlint.rules.base import (
    Context,
    compensation_note,
    layer_rewrites,
    pattern_text,
    spread_text,
    upsamplers,
    why_uneven,
)

RULE_ID = "DL001"


def check(ctx: Context) -> Iterator[Finding]:
    for node, patterns in upsamplers(ctx):
        if geo.patterns_uniform(patterns) or geo.has_holes(patterns):
            continue
        metrics = geo.pattern_metrics(patterns)
        severity, tail = compensation_note(ctx, node)
        message = (
            f"uneven overlap: taps per output phase {pattern_text(metrics['pattern'])}, "
            f"{spread_text(metrics, node.spatial_rank)} ({why_uneven(node)}){tail}"
        )
        yield ctx.finding(node, message, metrics, layer_rewrites(node), severity)

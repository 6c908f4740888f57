"""DL002 coverage-holes: output positions of an upsampler that no kernel tap reaches."""

from __future__ import annotations

import math
from collections.abc import Iterator

from deconvlint.core import geometry as geo
from deconvlint.report import Finding
from deconvlint.rules.base import (
    Context,
    compensation_note,
    layer_rewrites,
    pattern_text,
    upsamplers,
    why_uneven,
)

RULE_ID = "DL002"


def check(ctx: Context) -> Iterator[Finding]:
    for node, patterns in upsamplers(ctx):
        if not geo.has_holes(patterns):
            continue
        metrics = geo.pattern_metrics(patterns)
        cells = math.prod(metrics["period"])
        covered = math.prod(sum(1 for v in p if v > 0) for p in metrics["pattern"])
        severity, tail = compensation_note(ctx, node)
        message = (
            f"coverage holes: taps per output phase {pattern_text(metrics['pattern'])}; "
            f"{cells - covered} of {cells} output positions per period get no tap "
            f"({why_uneven(node)}){tail}"
        )
        yield ctx.finding(node, message, metrics, layer_rewrites(node), severity)

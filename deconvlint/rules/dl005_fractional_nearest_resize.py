"""DL005 fractional-nearest-resize: a nearest resize by a non-integer scale copies input pixels
unevenly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from deconvlint.core import geometry as geo
from deconvlint.core.analysis import PERIOD_CAP
from deconvlint.core.ir import Kind, Node
from deconvlint.report import Finding
from deconvlint.rewrites import spellings
from deconvlint.rules.base import Context, pattern_text, spread_text

RULE_ID = "DL005"


def _fractional_resize_past_the_cap(ctx: Context, node: Node, spec: Any) -> Finding:
    """DL005 for a scale a/b with a or b past the period cap: the fan-out of one input is the
    number of outputs in an interval of length a/b, so floor(a/b) or ceil(a/b); only their
    pattern over the b phases is not computed."""
    counts = [(s.numerator // s.denominator, -(-s.numerator // s.denominator)) for s in spec.scales]
    low, high = math.prod(c[0] for c in counts), math.prod(c[1] for c in counts)
    scales = " x ".join(str(s) for s in spec.scales)
    reason = f"a scale of {scales} has a period beyond the cap of {PERIOD_CAP}"
    metrics = {
        "pattern": [],
        "period": [s.denominator for s in spec.scales],
        "max_coverage": high,
        "min_coverage": low,
        "ratio": None if low == 0 else round(high / low, 4),
        "cv": None,
        "truncated": True,
        "truncated_reason": reason,
    }
    message = (
        f"fractional nearest resize: scale {scales} copies each input pixel {low} or {high} "
        f"times: uneven pixel footprint (truncated: {reason}, the pattern is not listed)"
    )
    return ctx.finding(node, message, metrics, spellings.resize_rewrites(node))


def check(ctx: Context) -> Iterator[Finding]:
    for node in ctx.graph.nodes:
        spec = node.resize
        if node.kind is not Kind.RESIZE or spec is None or spec.mode != "nearest":
            continue
        if any(s is None for s in spec.scales) or all(s.denominator == 1 for s in spec.scales):
            continue
        if any(max(s.numerator, s.denominator) > PERIOD_CAP for s in spec.scales):
            yield _fractional_resize_past_the_cap(ctx, node, spec)
            continue
        fanouts = [geo.nearest_fanout(spec, a) for a in range(spec.spatial_rank)]
        if geo.patterns_uniform(fanouts):
            continue
        metrics = geo.pattern_metrics(fanouts)
        scales = [str(s) for s in spec.scales]
        scale = scales[0] if len(set(scales)) == 1 else " x ".join(scales)
        message = (
            f"fractional nearest resize: scale {scale} copies input pixels "
            f"{pattern_text(metrics['pattern'], ' times')}, "
            f"{spread_text(metrics, spec.spatial_rank)}: uneven pixel footprint"
        )
        yield ctx.finding(node, message, metrics, spellings.resize_rewrites(node))

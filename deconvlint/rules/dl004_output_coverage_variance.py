"""DL004 output-coverage-variance: the coverage pattern that reaches a graph output."""

from __future__ import annotations

import math
from collections.abc import Iterator

from deconvlint.core.ir import Kind
from deconvlint.report import Finding
from deconvlint.rewrites import spellings
from deconvlint.rules.base import (
    Context,
    cv_or_inf,
    fmt_number,
    pattern_text,
    spread_text,
    truncation_text,
)

RULE_ID = "DL004"


def check(ctx: Context) -> Iterator[Finding]:
    max_cv = float(ctx.option("max-cv"))
    producers = ctx.graph.producers()
    for output in ctx.graph.outputs:
        node = producers.get(output)
        states = [s for s in ctx.coverage.states.get(output, []) if s.patterns]
        if node is None or not states:
            continue
        worst = max(states, key=lambda s: cv_or_inf(s.patterns))
        metrics = worst.metrics()
        cv = math.inf if metrics["cv"] is None else metrics["cv"]
        if cv <= max_cv + 1e-12:
            continue
        culprits = list(worst.pending)
        metrics["output"] = output
        metrics["nodes"] = culprits
        rank = len(worst.patterns)
        cause = ", ".join(f"'{c}'" for c in culprits) or "the path"
        message = (
            f"output coverage variance: the interior coverage arriving at output "
            f"'{output}' is {pattern_text(metrics['pattern'])}, "
            f"{spread_text(metrics, rank)}, cv {fmt_number(metrics['cv']) if metrics['cv'] is not None else 'inf'}"
            f" > max-cv {fmt_number(max_cv)}; uneven layers on the path: {cause}"
            f"{truncation_text(worst.truncated, None, len(culprits))}"
        )
        layers = [
            ctx.nodes[c]
            for c in culprits
            if c in ctx.nodes and ctx.nodes[c].kind is Kind.CONV_TRANSPOSE
        ]
        yield ctx.finding(
            node, message, metrics, spellings.stack_rewrites(layers) if layers else []
        )

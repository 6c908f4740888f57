"""DL003 stacked-uneven-overlap: uneven upsamplers in sequence on one path, and what their
patterns compose to.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

from deconvlint.core import geometry as geo
from deconvlint.core.analysis import Stack
from deconvlint.report import Finding
from deconvlint.rewrites import spellings
from deconvlint.rules.base import (
    Context,
    fmt_number,
    pattern_text,
    ratio_or_inf,
    spread_text,
    truncation_text,
)

RULE_ID = "DL003"


def maximal_stacks(ctx: Context) -> dict[tuple[str, ...], Stack]:
    """One stack per last layer: the longest that ends there, with the worst pattern the
    coverage pass kept for it.  A shorter stack ending on the same layer (the 2-stack a U-Net's
    skip connection brings there) or running inside a kept one is part of the same mistake."""
    longest: dict[str, Stack] = {}
    for stack in ctx.coverage.stacks:
        best = longest.get(stack.nodes[-1])
        if best is None or _stack_rank(stack) > _stack_rank(best):
            longest[stack.nodes[-1]] = stack
    kept = [s.nodes for s in longest.values()]
    found = {
        s.nodes: s for s in longest.values() if not any(_runs_within(s.nodes, o) for o in kept)
    }
    # past the pass's bound, a stack whose paths were merged says so: that is not repeated
    # by the longest stack, so it stays (only in graphs with more paths than the pass keeps)
    for stack in ctx.coverage.stacks:
        if stack.truncated and "merged into one" in stack.truncated:
            found.setdefault(stack.nodes, stack)
    return found


def _stack_rank(stack: Stack) -> tuple[int, float]:
    return len(stack.nodes), stack.cv if stack.patterns else -1.0


def _runs_within(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    """Whether ``part`` is a shorter run of consecutive layers of ``whole``."""
    n = len(part)
    return n < len(whole) and any(whole[i : i + n] == part for i in range(len(whole) - n + 1))


@functools.lru_cache(maxsize=1024)
def _layer_ratio(window: tuple) -> float:
    """The ratio of one layer's own pattern (layers of a model share a few geometries)."""
    return ratio_or_inf(
        [geo.phase_pattern(w.kernel, w.stride, w.dilation, w.pads_begin) for w in window]
    )


def _through(stack: Stack) -> str:
    """Where the stack's pattern was composed to: its last layer, or the last one composed."""
    composed = len(stack.nodes) if stack.composed is None else stack.composed
    return f"from the input through '{stack.nodes[composed - 1]}'"


def check(ctx: Context) -> Iterator[Finding]:
    for names, stack in maximal_stacks(ctx).items():
        layers = [ctx.nodes[n] for n in names]
        patterns = stack.patterns
        metrics = stack.metrics()
        worst_single = max(_layer_ratio(tuple(n.window)) for n in layers)
        composed = ratio_or_inf(patterns)
        if stack.truncated is not None:
            effect, severity = "is not composed to its end", None
        elif geo.patterns_uniform(patterns):
            effect, severity = "cancels", "info"
        elif composed > worst_single:
            effect, severity = "compounds", None
        elif composed < worst_single:
            effect, severity = "partly cancels", None
        else:
            effect, severity = "keeps", None
        metrics["nodes"] = list(names)
        metrics["effect"] = effect
        chain = " -> ".join(f"'{n}'" for n in names)
        rank = max(n.spatial_rank for n in layers)
        worst_text = fmt_number(worst_single) if math.isfinite(worst_single) else "holes"
        if stack.composed == 0:  # even the first layer's period is past the cap
            coverage = ""
        else:
            coverage = (
                f": coverage {_through(stack)} is {pattern_text(metrics['pattern'])}, "
                f"{spread_text(metrics, rank)}"
            )
        message = (
            f"stacked uneven overlap: {len(names)} uneven layers ({chain}); the stack "
            f"{effect}{coverage} (worst single layer: {worst_text})"
            f"{truncation_text(stack.truncated, stack.composed, len(names))}"
        )
        yield ctx.finding(layers[-1], message, metrics, spellings.stack_rewrites(layers), severity)

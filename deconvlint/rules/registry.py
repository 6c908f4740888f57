"""The rules: one small function per rule id, from the IR and the geometry to findings.

A rule is registered with :func:`rule` under the id of its catalogue entry (``rules/DLxxx.yaml``),
which holds its name, default severity, options and documentation.

>>> from deconvlint.core.chainspec import parse_chain
>>> from deconvlint.core.ir import Graph
>>> graph = Graph("g", parse_chain("ConvTranspose2d(k=2, s=2, d=2)"), ("v0",), ("v1",))
>>> [(f.rule, f.severity, f.metrics["pattern"]) for f in run_rules(graph, Settings())][:1]
[('DL002', 'error', [[2, 0], [2, 0]])]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from deconvlint.config.settings import Settings
from deconvlint.core import geometry as geo
from deconvlint.core.analysis import (
    PERIOD_CAP,
    CoveragePass,
    CoverageResult,
    Stack,
    is_compensated,
    is_uneven_upsampler,
)
from deconvlint.core.ir import Graph, Kind, Node
from deconvlint.report import Finding, Suggestion
from deconvlint.rewrites import suggestions
from deconvlint.rules.catalogue import RuleDoc, load_catalogue
from deconvlint.rules.interplay import fold_explained_outputs

RuleFunction = Callable[["Context"], Iterator[Finding]]
RULES: dict[str, RuleFunction] = {}


def rule(rule_id: str) -> Callable[[RuleFunction], RuleFunction]:
    def register(fn: RuleFunction) -> RuleFunction:
        RULES[rule_id] = fn
        return fn

    return register


@dataclass
class Context:
    """What a rule sees: the graph, the coverage pass (computed once), its doc and options."""

    graph: Graph
    settings: Settings
    doc: RuleDoc
    _coverage: dict[str, CoverageResult]

    @property
    def coverage(self) -> CoverageResult:
        if "result" not in self._coverage:
            self._coverage["result"] = CoveragePass(self.graph).run()
        return self._coverage["result"]

    @functools.cached_property
    def nodes(self) -> dict[str, Node]:
        return {n.name: n for n in self.graph.nodes}

    def option(self, name: str) -> Any:
        return self.settings.option(self.doc.id, name, self.doc.option_default(name))

    def finding(
        self,
        node: Node,
        message: str,
        metrics: dict[str, Any],
        suggestions: list[Suggestion] | None = None,
        severity: str | None = None,
    ) -> Finding:
        owners = getattr(node.source, "owners", ())
        if owners and suggestions:  # a layer a library builds: what works through the library
            from deconvlint.rewrites.library import library_suggestions

            suggestions = library_suggestions(owners, node) or suggestions
        return Finding(
            rule=self.doc.id,
            name=self.doc.name,
            severity=severity or self.doc.severity,
            node=node.name,
            op=node.op_type,
            message=message,
            metrics=metrics,
            suggestions=suggestions or [],
            source=None if node.source is None else str(node.source),
            library_source=node.library_source or getattr(node.source, "library", None),
        )


# --------------------------------------------------------------------------------------------
# wording


def _fmt(x: float) -> str:
    return str(int(x)) if float(x) == int(x) else f"{x:.4g}"


def pattern_text(patterns: list[list[Any]], unit: str = "") -> str:
    """``[1, 2] on every axis`` when the axes agree, else ``[1, 2] x [2, 2]``; a long axis
    shows its first entries and its length."""
    shown = ["[" + ", ".join(_fmt(v) for v in p) + _more(p) + "]" for p in patterns]
    if len(shown) > 1 and len(set(shown)) == 1:
        return f"{shown[0]}{unit} on every axis"
    return " x ".join(shown) + unit


def _more(row: list[Any]) -> str:
    if isinstance(row, geo.ShownPattern):
        return f", ... ({row.length} in all)"
    return ""


def spread_text(metrics: dict[str, Any], rank: int) -> str:
    hi, lo = metrics["max_coverage"], metrics["min_coverage"]
    where = f" in {rank}-D" if rank > 1 else ""
    if hi is None or lo is None:  # beyond a float: only the relative numbers mean anything
        ratio = "n/a" if metrics["ratio"] is None else _fmt(metrics["ratio"])
        return f"max/min coverage ratio {ratio}{where} (coverage too large to represent)"
    if metrics["ratio"] is None:
        return f"max/min coverage {_fmt(hi)}/{_fmt(lo)}{where}"
    return f"max/min coverage {_fmt(hi)}/{_fmt(lo)} = {_fmt(metrics['ratio'])}{where}"


def _compensation_note(ctx: Context, node: Node) -> tuple[str | None, str]:
    """(severity override, message tail) for a layer made uniform again downstream."""
    by = is_compensated(ctx.coverage, node.name)
    if not by:
        return None, ""
    names = ", ".join(f"'{b}'" for b in by)
    return "info", f"; compensated downstream by {names} (uniform again there)"


# --------------------------------------------------------------------------------------------
# the rules


def _upsamplers(ctx: Context) -> Iterator[tuple[Node, list[np.ndarray]]]:
    for node in ctx.graph.nodes:
        if node.kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
            yield node, geo.layer_patterns(node)


def _why_uneven(node: Node) -> str:
    parts = []
    for w in node.window:
        if w.stride == 1:
            continue
        g = math.gcd(w.dilation, w.stride)
        if g > 1:
            parts.append(f"dilation {w.dilation} shares a factor {g} with stride {w.stride}")
        elif w.kernel < w.stride:
            parts.append(f"kernel {w.kernel} < stride {w.stride}")
        elif w.kernel % w.stride:
            parts.append(f"kernel {w.kernel} is not a multiple of stride {w.stride}")
    return "; ".join(dict.fromkeys(parts))


@rule("DL001")
def uneven_overlap(ctx: Context) -> Iterator[Finding]:
    for node, patterns in _upsamplers(ctx):
        if geo.patterns_uniform(patterns) or geo.has_holes(patterns):
            continue
        metrics = geo.pattern_metrics(patterns)
        severity, tail = _compensation_note(ctx, node)
        message = (
            f"uneven overlap: taps per output phase {pattern_text(metrics['pattern'])}, "
            f"{spread_text(metrics, node.spatial_rank)} ({_why_uneven(node)}){tail}"
        )
        yield ctx.finding(node, message, metrics, _rewrites(node), severity)


@rule("DL002")
def coverage_holes(ctx: Context) -> Iterator[Finding]:
    for node, patterns in _upsamplers(ctx):
        if not geo.has_holes(patterns):
            continue
        metrics = geo.pattern_metrics(patterns)
        cells = math.prod(metrics["period"])
        covered = math.prod(sum(1 for v in p if v > 0) for p in metrics["pattern"])
        severity, tail = _compensation_note(ctx, node)
        message = (
            f"coverage holes: taps per output phase {pattern_text(metrics['pattern'])}; "
            f"{cells - covered} of {cells} output positions per period get no tap "
            f"({_why_uneven(node)}){tail}"
        )
        yield ctx.finding(node, message, metrics, _rewrites(node), severity)


def _rewrites(node: Node) -> list[Suggestion]:
    return suggestions.conv_transpose_rewrites(node) if node.kind is Kind.CONV_TRANSPOSE else []


def _maximal_stacks(ctx: Context) -> dict[tuple[str, ...], Stack]:
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


def _cv(patterns: tuple[np.ndarray, ...]) -> float:
    cv = geo.pattern_cv(patterns)
    return math.inf if cv is None else cv


def _ratio(patterns) -> float:
    ratio = geo.pattern_metrics(patterns)["ratio"]
    return math.inf if ratio is None else ratio


@functools.lru_cache(maxsize=1024)
def _layer_ratio(window: tuple) -> float:
    """The ratio of one layer's own pattern (layers of a model share a few geometries)."""
    return _ratio([geo.phase_pattern(w.kernel, w.stride, w.dilation, w.pads_begin) for w in window])


def _through(stack: Stack) -> str:
    """Where the stack's pattern was composed to: its last layer, or the last one composed."""
    composed = len(stack.nodes) if stack.composed is None else stack.composed
    return f"from the input through '{stack.nodes[composed - 1]}'"


def _truncation_text(truncated: str | None, composed: int | None, layers: int) -> str:
    """The message's tail for a pattern that was not composed to its end (else ``""``)."""
    if truncated is None:
        return ""
    done = f"{composed} of {layers} uneven layers composed; " if composed is not None else ""
    return f"; truncated: {done}{truncated}, the rest not composed"


@rule("DL003")
def stacked_uneven_overlap(ctx: Context) -> Iterator[Finding]:
    for names, stack in _maximal_stacks(ctx).items():
        layers = [ctx.nodes[n] for n in names]
        patterns = stack.patterns
        metrics = stack.metrics()
        worst_single = max(_layer_ratio(tuple(n.window)) for n in layers)
        composed = _ratio(patterns)
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
        worst_text = _fmt(worst_single) if math.isfinite(worst_single) else "holes"
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
            f"{_truncation_text(stack.truncated, stack.composed, len(names))}"
        )
        yield ctx.finding(
            layers[-1], message, metrics, suggestions.stack_rewrites(layers), severity
        )


@rule("DL004")
def output_coverage_variance(ctx: Context) -> Iterator[Finding]:
    max_cv = float(ctx.option("max-cv"))
    producers = ctx.graph.producers()
    for output in ctx.graph.outputs:
        node = producers.get(output)
        states = [s for s in ctx.coverage.states.get(output, []) if s.patterns]
        if node is None or not states:
            continue
        worst = max(states, key=lambda s: _cv(s.patterns))
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
            f"{spread_text(metrics, rank)}, cv {_fmt(metrics['cv']) if metrics['cv'] is not None else 'inf'}"
            f" > max-cv {_fmt(max_cv)}; uneven layers on the path: {cause}"
            f"{_truncation_text(worst.truncated, None, len(culprits))}"
        )
        layers = [
            ctx.nodes[c]
            for c in culprits
            if c in ctx.nodes and ctx.nodes[c].kind is Kind.CONV_TRANSPOSE
        ]
        yield ctx.finding(
            node, message, metrics, suggestions.stack_rewrites(layers) if layers else []
        )


@rule("DL005")
def fractional_nearest_resize(ctx: Context) -> Iterator[Finding]:
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
        yield ctx.finding(node, message, metrics, suggestions.resize_rewrites(node))


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
    return ctx.finding(node, message, metrics, suggestions.resize_rewrites(node))


@rule("DL006")
def strided_conv_gradient(ctx: Context) -> Iterator[Finding]:
    for node in ctx.graph.nodes:
        if node.kind not in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
            continue
        if all(w.stride == 1 for w in node.window):
            continue
        # backward fan-out per input phase: tap j reaches input phase (j*d - p) mod s
        fanouts = [_weighted_phase_sums(node, a) for a in range(node.spatial_rank)]
        if geo.patterns_uniform(fanouts):
            continue
        metrics = geo.pattern_metrics(fanouts)
        message = (
            f"strided {node.op_type}: backward fan-out per input phase "
            f"{pattern_text(metrics['pattern'])}, "
            f"{spread_text(metrics, node.spatial_rank)} ({_why_uneven(node)}): "
            "checkerboard gradients"
        )
        yield ctx.finding(node, message, metrics, suggestions.strided_rewrites(node))


def _weighted_phase_sums(node: Node, axis: int) -> np.ndarray:
    win = node.window[axis]
    taps = geo.node_taps(node, axis)
    phases = (np.arange(win.kernel) * win.dilation - win.pads_begin) % win.stride
    return np.bincount(phases, weights=taps, minlength=win.stride)


# --------------------------------------------------------------------------------------------


def run_rules(graph: Graph, settings: Settings) -> list[Finding]:
    """Every enabled rule on ``graph``, minus per-node ignores, in node order then rule id."""
    catalogue = load_catalogue()
    missing = set(RULES) - set(catalogue)
    if missing:
        raise RuntimeError(f"rules without a catalogue entry: {sorted(missing)}")
    shared: dict[str, CoverageResult] = {}
    raw: list[Finding] = []
    for rule_id, fn in sorted(RULES.items()):
        doc = catalogue[rule_id]
        if settings.is_enabled(rule_id, doc.default):
            raw += fn(Context(graph, settings, doc, shared))
    # a cause is reported once: before per-node ignores, so that ignoring DL001 on a layer
    # does not bring its consequence back as DL004
    findings = [
        f for f in fold_explained_outputs(raw) if not settings.is_ignored_for_node(f.rule, f.node)
    ]
    if graph.measurements:
        from deconvlint.rules.weight_rules import annotate_measurements

        annotate_measurements(graph.measurements, findings)
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    findings.sort(key=lambda f: (order.get(f.node, len(order)), f.rule))
    return findings


__all__ = ["RULES", "Context", "is_uneven_upsampler", "rule", "run_rules"]

# the weight-aware rules register themselves here (they import Context and rule from above)
from deconvlint.rules import weight_rules as checks_weights  # noqa: E402, F401

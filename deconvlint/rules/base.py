"""What every rule shares: the :class:`Context` a rule reads, and the wording of findings.

A rule is a module of this package with ``RULE_ID`` (its catalogue entry, ``rules/DLxxx.yaml``,
holds its name, severity, options, documentation and metadata) and ``check(ctx)``, a generator
of :class:`~deconvlint.report.Finding`; :mod:`deconvlint.rules.registry` lists the modules.

>>> pattern_text([[1, 2], [1, 2]])
'[1, 2] on every axis'
>>> spread_text({"max_coverage": 4, "min_coverage": 1, "ratio": 4.0}, 2)
'max/min coverage 4/1 = 4 in 2-D'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deconvlint.config.settings import Settings
from deconvlint.core import geometry as geo
from deconvlint.core.analysis import CoveragePass, CoverageResult, is_compensated
from deconvlint.core.ir import Graph, Kind, Node
from deconvlint.report import Finding, Suggestion
from deconvlint.rewrites import spellings
from deconvlint.rules.catalogue import RuleDoc

RuleFunction = Callable[["Context"], Iterator[Finding]]


@dataclass
class RunCache:
    """What the rules of one run compute once and share: the coverage pass and the layers
    whose weights were read (all of them, or the sub-pixel ones only)."""

    coverage: CoverageResult | None = None
    # subpixel_only -> the rules.weighted.WeightedLayer list (typed loosely: that module builds
    # on this one)
    weighted: dict[bool, list[Any]] = field(default_factory=dict)


@dataclass
class Context:
    """What a rule sees: the graph, the settings, its catalogue entry, the run's cache, and what
    ``--probe`` measured, by node name (:class:`deconvlint.probe.measure.Measurement`; ``None``:
    not probed)."""

    graph: Graph
    settings: Settings
    doc: RuleDoc
    cache: RunCache = field(default_factory=RunCache)
    measurements: Mapping[str, Any] | None = None

    @property
    def coverage(self) -> CoverageResult:
        if self.cache.coverage is None:
            self.cache.coverage = CoveragePass(self.graph).run()
        return self.cache.coverage

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


def fmt_number(x: float) -> str:
    """A number as messages show it: ``4`` for 4.0, else 4 significant digits."""
    return str(int(x)) if float(x) == int(x) else f"{x:.4g}"


def pattern_text(patterns: list[list[Any]], unit: str = "") -> str:
    """``[1, 2] on every axis`` when the axes agree, else ``[1, 2] x [2, 2]``; a long axis
    shows its first entries and its length."""
    shown = ["[" + ", ".join(fmt_number(v) for v in p) + more_text(p) + "]" for p in patterns]
    if len(shown) > 1 and len(set(shown)) == 1:
        return f"{shown[0]}{unit} on every axis"
    return " x ".join(shown) + unit


def more_text(row: list[Any]) -> str:
    if isinstance(row, geo.ShownPattern):
        return f", ... ({row.length} in all)"
    return ""


def spread_text(metrics: dict[str, Any], rank: int) -> str:
    hi, lo = metrics["max_coverage"], metrics["min_coverage"]
    where = f" in {rank}-D" if rank > 1 else ""
    if hi is None or lo is None:  # beyond a float: only the relative numbers mean anything
        ratio = "n/a" if metrics["ratio"] is None else fmt_number(metrics["ratio"])
        return f"max/min coverage ratio {ratio}{where} (coverage too large to represent)"
    if metrics["ratio"] is None:
        return f"max/min coverage {fmt_number(hi)}/{fmt_number(lo)}{where}"
    return f"max/min coverage {fmt_number(hi)}/{fmt_number(lo)} = {fmt_number(metrics['ratio'])}{where}"


def truncation_text(truncated: str | None, composed: int | None, layers: int) -> str:
    """The message's tail for a pattern that was not composed to its end (else ``""``)."""
    if truncated is None:
        return ""
    done = f"{composed} of {layers} uneven layers composed; " if composed is not None else ""
    return f"; truncated: {done}{truncated}, the rest not composed"


# --------------------------------------------------------------------------------------------
# what the coverage rules share


def upsamplers(ctx: Context) -> Iterator[tuple[Node, list[np.ndarray]]]:
    for node in ctx.graph.nodes:
        if node.kind in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
            yield node, geo.layer_patterns(node)


def why_uneven(node: Node) -> str:
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


def compensation_note(ctx: Context, node: Node) -> tuple[str | None, str]:
    """(severity override, message tail) for a layer made uniform again downstream."""
    by = is_compensated(ctx.coverage, node.name)
    if not by:
        return None, ""
    names = ", ".join(f"'{b}'" for b in by)
    return "info", f"; compensated downstream by {names} (uniform again there)"


def layer_rewrites(node: Node) -> list[Suggestion]:
    return spellings.layer_rewrites(node)


def cv_or_inf(patterns: tuple[np.ndarray, ...]) -> float:
    cv = geo.pattern_cv(patterns)
    return math.inf if cv is None else cv


def ratio_or_inf(patterns) -> float:
    ratio = geo.pattern_metrics(patterns)["ratio"]
    return math.inf if ratio is None else ratio

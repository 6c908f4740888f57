"""The rules that run, in one explicit list, and :func:`run_rules`, which runs them on a graph.

Adding a rule: its module here (``dlNNN_name.py`` with ``RULE_ID`` and ``check``), its entry in
:data:`RULE_MODULES`, its catalogue entry (``rules/DLNNN.yaml``: documentation, options and the
metadata the rest of deconvlint reads) and its tests.

>>> from deconvlint.core.chainspec import parse_chain
>>> from deconvlint.core.ir import Graph
>>> graph = Graph("g", parse_chain("ConvTranspose2d(k=2, s=2, d=2)"), ("v0",), ("v1",))
>>> [(f.rule, f.severity, f.metrics["pattern"]) for f in run_rules(graph, Settings())][:1]
[('DL002', 'error', [[2, 0], [2, 0]])]
"""

from __future__ import annotations

from deconvlint.config.settings import Settings
from deconvlint.core.ir import Graph
from deconvlint.report import Finding
from deconvlint.rules import (
    dl001_uneven_overlap,
    dl002_coverage_holes,
    dl003_stacked_uneven_overlap,
    dl004_output_coverage_variance,
    dl005_fractional_nearest_resize,
    dl006_strided_conv_gradient,
    dl007_weight_phase_imbalance,
    dl008_subpixel_without_icnr,
    dl009_measured_periodic_artifact,
)
from deconvlint.rules.base import Context, RuleFunction, RunCache
from deconvlint.rules.catalogue import load_catalogue
from deconvlint.rules.interplay import annotate_measurements, fold_explained_outputs

#: Every rule module, in rule-id order.
RULE_MODULES = (
    dl001_uneven_overlap,
    dl002_coverage_holes,
    dl003_stacked_uneven_overlap,
    dl004_output_coverage_variance,
    dl005_fractional_nearest_resize,
    dl006_strided_conv_gradient,
    dl007_weight_phase_imbalance,
    dl008_subpixel_without_icnr,
    dl009_measured_periodic_artifact,
)
#: Rule id -> the function that finds its findings.
RULES: dict[str, RuleFunction] = {m.RULE_ID: m.check for m in RULE_MODULES}


def run_rules(graph: Graph, settings: Settings) -> list[Finding]:
    """Every enabled rule on ``graph``, minus per-node ignores, in node order then rule id."""
    catalogue = load_catalogue()
    missing = set(RULES) - set(catalogue)
    if missing:
        raise RuntimeError(f"rules without a catalogue entry: {sorted(missing)}")
    cache = RunCache()
    raw: list[Finding] = []
    for rule_id, fn in sorted(RULES.items()):
        doc = catalogue[rule_id]
        if settings.is_enabled(rule_id, doc.default):
            raw += fn(Context(graph, settings, doc, cache))
    # a cause is reported once: before per-node ignores, so that ignoring DL001 on a layer
    # does not bring its consequence back as DL004
    findings = [
        f for f in fold_explained_outputs(raw) if not settings.is_ignored_for_node(f.rule, f.node)
    ]
    if graph.measurements:
        annotate_measurements(graph.measurements, findings)
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    findings.sort(key=lambda f: (order.get(f.node, len(order)), f.rule))
    return findings

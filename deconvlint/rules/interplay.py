"""One finding per mistake: fold a DL004 finding into the finding that already explains it;
and what the probe measured, added to the findings it confirms.

DL004 looks at what reaches a graph output; DL001/DL002 (one uneven layer) and DL003 (a
stack) look at the layers.  When every uneven layer on the output's path already has one of
those findings, the output's pattern is their consequence, not a second mistake: the DL004
finding is dropped and the explaining finding carries the output's metrics under
``metrics["outputs"]``.  DL004 stays where nothing else explains the pattern (its rule alone
selected, or an output made uneven by something the layer rules do not flag).

>>> from deconvlint.report import Finding
>>> up = Finding("DL001", "uneven-overlap", "warning", "up", "ConvTranspose", "uneven")
>>> out = Finding("DL004", "output-coverage-variance", "warning", "tanh", "Tanh", "variance",
...               metrics={"output": "y", "nodes": ["up"], "pattern": [[3, 4]], "period": [2],
...                        "max_coverage": 4, "min_coverage": 3, "ratio": 1.333, "cv": 0.1429})
>>> [f.rule for f in fold_explained_outputs([up, out])], up.metrics["outputs"][0]["output"]
(['DL001'], 'y')
"""

from __future__ import annotations

from typing import Any

from deconvlint.report import Finding
from deconvlint.rules.catalogue import rules_where

# what a folded DL004 does not hand over: its "nodes" are the explainer's own, "output" is
# the entry's name
_NOT_HANDED_OVER = ("nodes", "output")


def _explainer(culprits: list[str], findings: list[Finding]) -> Finding | None:
    """The finding that explains an output whose pattern comes from ``culprits``, if every
    culprit is named by a layer or stack finding: the stack holding them all, else the
    finding on the last culprit."""
    # the rules that judge coverage (the catalogue's metadata): on one layer, and on a stack
    layer_rules = rules_where(scope="layer", pattern="coverage")
    stack_rules = rules_where(scope="stack", pattern="coverage")
    layers = {f.node: f for f in findings if f.rule in layer_rules}
    stacks = [f for f in findings if f.rule in stack_rules]
    in_stacks = {n for f in stacks for n in f.metrics.get("nodes", ())}
    if not culprits or not all(c in layers or c in in_stacks for c in culprits):
        return None
    for stack in stacks:
        if set(culprits) <= set(stack.metrics.get("nodes", ())):
            return stack
    last = culprits[-1]
    if last in layers:
        return layers[last]
    return next(f for f in stacks if last in f.metrics.get("nodes", ()))


def fold_explained_outputs(findings: list[Finding]) -> list[Finding]:
    """``findings`` without the DL004 findings another finding explains; those carry the
    output's metrics instead (``metrics["outputs"]``: one entry per output)."""
    output_rules = rules_where(scope="output", pattern="coverage")
    kept: list[Finding] = []
    for finding in findings:
        explainer = None
        if finding.rule in output_rules:
            explainer = _explainer(list(finding.metrics.get("nodes") or ()), findings)
        if explainer is None:
            kept.append(finding)
            continue
        entry = {"output": finding.metrics.get("output"), "node": finding.node}
        entry.update(
            {k: v for k, v in finding.metrics.items() if k not in _NOT_HANDED_OVER}
        )  # the pattern, its metrics, and any truncation of it
        explainer.metrics.setdefault("outputs", []).append(entry)
    return kept


def annotate_measurements(measurements: dict[str, Any], findings: list[Finding]) -> None:
    """Add what the probe measured at a finding's node (or its shuffle) to its metrics, except
    on the probe's own findings."""
    measured_rules = rules_where(pattern="measured")
    for f in findings:
        if f.rule in measured_rules:
            continue
        m = measurements.get(f.node) or measurements.get(f.metrics.get("shuffle", ""))
        if m is not None:
            f.metrics["measured_db"] = round(m.db, 2)

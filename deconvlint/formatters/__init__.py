"""Output formats.  Each module renders a :class:`~deconvlint.results.Results` to a string.

A formatter module provides ``format_report(report, style)``, ``format_statistics(report,
style)`` and ``format_rules(catalogue)``; the CLI picks one by name with :func:`get_formatter`
and writes what it returns.  Errors always go to stderr as ``path: error: cause`` lines
(:func:`format_error_lines`), whatever the format.

>>> from deconvlint.report import FileResult, Report
>>> format_error_lines(Report([FileResult("m.onnx", error="truncated protobuf")]))
['m.onnx: error: truncated protobuf']
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from deconvlint.errors import one_line
from deconvlint.printable import printable
from deconvlint.results import SEVERITIES, Results

FORMATS = ("text", "json", "sarif", "github", "html")


@dataclass(frozen=True)
class Style:
    """How to render: colours (a TTY without NO_COLOR) and whether to add the summary line."""

    color: bool = False
    summary: bool = True


DEFAULT_STYLE = Style()


def get_formatter(name: str) -> ModuleType:
    """The formatter module for ``name`` (imported on demand)."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r} (known: {', '.join(FORMATS)})")
    return importlib.import_module(f"deconvlint.formatters.{name}")


def format_error_lines(report: Results) -> list[str]:
    """One ``path: error: cause`` line per input that could not be analysed (escaped: see
    :mod:`deconvlint.printable`)."""
    return [f"{printable(r.path)}: error: {printable(one_line(r.error))}" for r in report.errors]


@dataclass(frozen=True)
class RuleCount:
    """How often one rule fired, in total and per severity (most severe first)."""

    rule: str
    name: str
    count: int
    by_severity: dict[str, int]


def statistics(report: Results) -> list[RuleCount]:
    """One :class:`RuleCount` per rule that fired, most frequent first, then by rule id."""
    found: dict[str, list] = {}
    for f in report.findings:
        found.setdefault(f.rule, []).append(f)
    rows = []
    for rule, findings in found.items():
        by_severity = {
            s: n for s in reversed(SEVERITIES) if (n := sum(f.severity == s for f in findings))
        }
        rows.append(RuleCount(rule, findings[0].name, len(findings), by_severity))
    return sorted(rows, key=lambda row: (-row.count, row.rule))

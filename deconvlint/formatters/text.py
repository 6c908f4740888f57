"""Human-readable output in the style of ruff: one header line per finding, then its evidence.

>>> from deconvlint.report import FileResult, Finding, Report, Suggestion
>>> f = Finding(rule="DL001", name="uneven-overlap", severity="warning", node="decoder.up1",
...             op="ConvTranspose", message="kernel 3 is not a multiple of stride 2",
...             metrics={"pattern": [[1, 2], [1, 2]], "period": 2, "max_coverage": 4.0,
...                      "min_coverage": 1.0, "ratio": 4.0, "cv": 0.4843},
...             suggestions=[Suggestion("ConvTranspose2d(k=4, s=2, p=1)", {},
...                                     "nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)")])
>>> print(format_report(Report([FileResult("m.onnx", [f])])), end="")
m.onnx:decoder.up1: DL001 [warning] kernel 3 is not a multiple of stride 2
  pattern: H [1, 2] x W [1, 2], period 2
  coverage: max 4, min 1, ratio 4, cv 0.4843
  one period (H x W):
    1 2
    2 4
  suggestion: ConvTranspose2d(k=4, s=2, p=1)
      nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
<BLANKLINE>
Found 1 finding (1 warning) in 1 file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from deconvlint.errors import one_line
from deconvlint.formatters import DEFAULT_STYLE, Style, statistics
from deconvlint.printable import printable
from deconvlint.results import Finding, Results

PICTURE_MAX = 8  # draw one period when each of the two axes repeats within this many samples
_AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
# metrics keys shown on their own lines; any other key is listed as "key: value" after them
SHOWN_METRICS = (
    "pattern",
    "period",
    "max_coverage",
    "min_coverage",
    "ratio",
    "cv",
    "nodes",
    "output",
    "outputs",
)

_COLORS = {"error": "31", "warning": "33", "info": "36", "bold": "1", "dim": "2"}


def _paint(text: str, what: str, color: bool) -> str:
    return f"\033[{_COLORS[what]}m{text}\033[0m" if color else text


def fmt_number(value: Any) -> str:
    """A number as people write it: ints when integral, else four significant digits (as the
    rule messages do), never in exponent notation.

    >>> fmt_number(4.0), fmt_number(0.48432), fmt_number(1.5), fmt_number(Fraction(3, 2))
    ('4', '0.4843', '1.5', '3/2')
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else str(value)
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number.is_integer():
        return str(int(number))
    if abs(number) >= 1000:
        return f"{number:.1f}".rstrip("0").rstrip(".")
    if abs(number) < 1e-4:
        return "0"
    return f"{number:.4g}"


def fmt_value(value: Any) -> str:
    """Numbers via :func:`fmt_number`, lists as ``[a, b]``, ``None`` as ``n/a``."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {fmt_value(v)}" for k, v in value.items())
    if isinstance(value, Sequence) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        if not isinstance(items, (list, tuple)):
            return fmt_number(items)
        return "[" + ", ".join(fmt_value(v) for v in items) + "]"
    return fmt_number(value)


def axis_patterns(pattern: Any) -> list[list[Any]] | None:
    """The per-axis patterns as lists, or None when ``pattern`` is not a list of lists.

    >>> axis_patterns([1, 2]), axis_patterns(((1, 2), (2, 1))), axis_patterns("n/a")
    ([[1, 2]], [[1, 2], [2, 1]], None)
    """
    if hasattr(pattern, "tolist"):
        pattern = pattern.tolist()
    if not isinstance(pattern, (list, tuple)) or not pattern:
        return None
    if all(isinstance(p, (list, tuple)) for p in pattern):
        return [list(p) for p in pattern]
    return [list(pattern)]  # a single axis given flat


def pattern_line(axes: list[list[Any]], period: Any) -> str:
    """``H [1, 2] x W [1, 2], period 2x2``; an axis listed in part (its period is longer than
    the entries a finding lists) ends in ``...``.

    >>> pattern_line([[1, 2], [1, 2]], [2, 2])
    'pattern: H [1, 2] x W [1, 2], period 2x2'
    """
    names = _AXIS_NAMES.get(len(axes), tuple(f"axis{i}" for i in range(len(axes))))
    periods = [
        p for p in (period if isinstance(period, (list, tuple)) else [period]) if p is not None
    ]
    per_axis = periods if len(periods) == len(axes) else [None] * len(axes)
    longer = [isinstance(n, int) and n > len(p) for p, n in zip(axes, per_axis, strict=True)]
    text = " x ".join(
        f"{names[i]} {fmt_value(p)[:-1] + ', ...]' if longer[i] else fmt_value(p)}"
        for i, p in enumerate(axes)
    )
    if periods:  # one per axis: "period 2x2"
        text += ", period " + "x".join(fmt_value(p) for p in periods)
    return f"pattern: {text}"


def _picture(axes: list[list[Any]]) -> list[str]:
    """One period of a 2-D pattern as a right-aligned grid: the outer product of the two axes."""
    if len(axes) != 2 or not all(0 < len(a) <= PICTURE_MAX for a in axes):
        return []
    try:
        rows = [[fmt_number(float(a) * float(b)) for b in axes[1]] for a in axes[0]]
    except (TypeError, ValueError):
        return []
    width = max(len(cell) for row in rows for cell in row)
    return ["one period (H x W):"] + ["  " + " ".join(c.rjust(width) for c in r) for r in rows]


def coverage_line(metrics: Mapping[str, Any]) -> str | None:
    """The coverage metrics a finding carries on one line, or None when it carries none.

    >>> coverage_line({"max_coverage": 2, "min_coverage": 0, "ratio": None})
    'coverage: max 2, min 0 (holes)'
    """
    parts = []
    if "max_coverage" in metrics:
        parts.append(f"max {fmt_value(metrics['max_coverage'])}")
    if "min_coverage" in metrics:
        holes = " (holes)" if metrics["min_coverage"] == 0 else ""
        parts.append(f"min {fmt_value(metrics['min_coverage'])}{holes}")
    if metrics.get("ratio") is not None:
        parts.append(f"ratio {fmt_value(metrics['ratio'])}")
    if "cv" in metrics:
        parts.append(f"cv {fmt_value(metrics['cv'])}")
    return "coverage: " + ", ".join(parts) if parts else None


def _output_line(entry: Mapping[str, Any]) -> str:
    """What reaches a graph output because of this finding (a DL004 it explains)."""
    axes = axis_patterns(entry.get("pattern"))
    shown = pattern_line(axes, entry.get("period"))[len("pattern: ") :] if axes else "n/a"
    coverage = (coverage_line(entry) or "")[len("coverage: ") :]
    return f"at output '{fmt_value(entry.get('output'))}': {shown}; {coverage}"


def finding_details(finding: Finding) -> list[str]:
    """The evidence under a finding's header: pattern, metrics, picture and suggestions."""
    metrics = finding.metrics or {}
    lines: list[str] = []
    if metrics.get("nodes"):
        nodes = metrics["nodes"]
        chain = " -> ".join(map(str, nodes)) if isinstance(nodes, (list, tuple)) else str(nodes)
        lines.append(f"chain: {chain}")
    if metrics.get("output") is not None:
        lines.append(f"output: {fmt_value(metrics['output'])}")
    axes = axis_patterns(metrics.get("pattern"))
    if axes is not None:
        lines.append(pattern_line(axes, metrics.get("period")))
    elif metrics.get("period") is not None:
        lines.append(f"period: {fmt_value(metrics['period'])}")
    coverage = coverage_line(metrics)
    if coverage:
        lines.append(coverage)
    lines += [
        f"{key}: {fmt_value(value)}" for key, value in metrics.items() if key not in SHOWN_METRICS
    ]
    if axes is not None:
        lines += _picture(axes)
    lines += [_output_line(entry) for entry in metrics.get("outputs") or ()]
    if finding.source:
        lines.append(f"defined at: {finding.source}")
    if finding.library_source:
        lines.append(f"built in the library at: {finding.library_source}")
    for suggestion in finding.suggestions:
        lines.append(f"suggestion: {suggestion.title}")
        # split at "\n" only: any other line break a name carries is escaped, not a new line
        lines += ["    " + code for code in suggestion.code.rstrip("\n").split("\n")]
    lines = [printable(line) for line in lines]
    return ["  " + line if line.strip() else "" for line in lines]


def format_finding(path: str, finding: Finding, color: bool = False) -> str:
    """``path:node: DL001 [warning] message`` and the indented evidence below it; names are
    escaped (:func:`~deconvlint.printable.printable`) before any colour is added."""
    where = _paint(printable(f"{path}:{finding.node}:"), "bold", color)
    severity = _paint(f"[{printable(finding.severity)}]", finding.severity, color)
    rule = _paint(printable(finding.rule), "bold", color)
    header = f"{where} {rule} {severity} {printable(finding.message)}"
    return "\n".join([header, *finding_details(finding)])


def format_note(path: str, note: str) -> str:
    """``path: note: text`` on one line (the torch reader's notes: see ``FileResult.notes``).

    >>> format_note("<Decoder>", "read by fx: hooks could not read the model: ...")
    '<Decoder>: note: read by fx: hooks could not read the model: ...'
    """
    return f"{printable(path)}: note: {printable(one_line(note))}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 finding``, ``2 findings``, ``2 fixes`` (``many``); ``info`` has no plural.

    >>> plural(1, "finding"), plural(2, "finding"), plural(2, "info"), plural(0, "fix", "fixes")
    ('1 finding', '2 findings', '2 info', '0 fixes')
    """
    if count == 1 or word == "info":
        return f"{count} {word}"
    return f"{count} {many or word + 's'}"


def format_summary(report: Results) -> str:
    """``Found 3 findings (2 warnings, 1 info) in 2 files.`` or ``All checks passed (2 files).``

    >>> from deconvlint.results import FileResult
    >>> format_summary(Results([FileResult("a.onnx"), FileResult("b.onnx", error="truncated")]))
    'No findings in 1 file; 1 file could not be analysed.'
    """
    summary = report.summary()
    analysed = summary["files"] - summary["errors"]
    broken = f"{plural(summary['errors'], 'file')} could not be analysed"
    if summary["findings"]:
        counts = ", ".join(plural(n, s) for s, n in summary["by_severity"].items())
        text = (
            f"Found {plural(summary['findings'], 'finding')} ({counts}) "
            f"in {plural(analysed, 'file')}"
        )
        return text + (f"; {broken}." if summary["errors"] else ".")
    if not summary["errors"]:
        return f"All checks passed ({plural(analysed, 'file')})."
    if analysed:
        return f"No findings in {plural(analysed, 'file')}; {broken}."
    # the inputs may be module targets, not files: the error lines above say what each was
    return f"No input could be analysed ({plural(summary['errors'], 'error')})."


def format_report(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """Every finding, a blank line between them, then the summary line."""
    blocks = [format_finding(r.path, f, style.color) for r in report.results for f in r.findings]
    notes = [format_note(r.path, note) for r in report.results for note in r.notes]
    if notes:
        blocks.append("\n".join(notes))
    text = "\n\n".join(blocks)
    if style.summary:
        text = f"{text}\n\n{format_summary(report)}" if text else format_summary(report)
    return text + "\n" if text else ""


def _severity_label(by_severity: Mapping[str, int]) -> str:
    if len(by_severity) == 1:
        return f"[{next(iter(by_severity))}]"
    return "[" + ", ".join(plural(n, s) for s, n in by_severity.items()) + "]"


def format_statistics(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """One line per rule, as ruff's ``--statistics``: count, rule id, severity, name.

    >>> from deconvlint.results import FileResult
    >>> f = Finding("DL001", "uneven-overlap", "warning", "up1", "ConvTranspose", "uneven")
    >>> g = Finding("DL001", "uneven-overlap", "info", "up2", "ConvTranspose", "compensated")
    >>> format_statistics(Results([FileResult("m.onnx", [f, f, g])]), Style(summary=False))
    '3\\tDL001\\t[2 warnings, 1 info]\\tuneven-overlap\\n'
    """
    rows = statistics(report)
    width = max((len(str(row.count)) for row in rows), default=1)
    lines = [
        f"{row.count:>{width}}\t{printable(row.rule)}\t{_severity_label(row.by_severity)}\t"
        f"{printable(row.name)}"
        for row in rows
    ]
    if style.summary:
        lines.append(format_summary(report))
    return "\n".join(lines) + "\n" if lines else ""


def format_rules(catalogue: Mapping[str, Any]) -> str:
    """The ``--list-rules`` table: id, name, default severity, default on/off, summary."""
    rows = [("ID", "NAME", "SEVERITY", "DEFAULT", "SUMMARY")]
    rows += [
        (
            doc.id,
            doc.name,
            doc.severity,
            doc.runs,
            one_line(doc.summary),
        )
        for doc in catalogue.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "".join(
        "  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4] + "\n" for row in rows
    )

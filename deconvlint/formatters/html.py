"""A self-contained HTML report (``--report FILE.html``, or ``--format html``) for CI artifacts.

One file, nothing fetched: inline CSS, inline SVG, a few lines of inline script for the copy
buttons, system fonts.  It holds a summary (files, findings by rule and severity), then per
finding its node, the path of ops that produced it, the message, the metrics, a heatmap of the
interior coverage over a few periods (as in the Distill figures: darker means more kernel taps
land there) and the suggested rewrites as code with a copy button.

>>> from deconvlint.report import FileResult, Finding, Report
>>> f = Finding("DL001", "uneven-overlap", "warning", "up1", "ConvTranspose", "1:2 <uneven>",
...             metrics={"pattern": [[1, 2], [1, 2]]})
>>> page = format_report(Report([FileResult("m.onnx", [f])]))
>>> "1:2 &lt;uneven&gt;" in page, page.count("<svg") >= 1, "http://" in page.replace(SVG_NS, "")
(True, True, False)
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from deconvlint.errors import one_line
from deconvlint.formatters import DEFAULT_STYLE, Style, statistics
from deconvlint.formatters import text as text_format
from deconvlint.printable import printable
from deconvlint.results import SEVERITIES, Finding, Results
from deconvlint.version import __version__

SVG_NS = "http://www.w3.org/2000/svg"
HEATMAP_CELLS = 12  # show at least this many samples per axis (whole periods), when they fit
HEATMAP_MAX_CELLS = 32  # and never more
CELL = 14  # pixels per sample

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:72em;padding:0 1em;color:#1d1d1f}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f5f5f7}td.n{text-align:right}
.sev{display:inline-block;border-radius:3px;padding:0 .45em;color:#fff;font-weight:600}
.error{background:#c62828}.warning{background:#b26a00}.info{background:#1565c0}
.finding{border:1px solid #ddd;border-radius:6px;padding:.4em 1em 1em;margin:1em 0}
.finding h3{margin:.4em 0;font-size:1.1em}.muted{color:#666}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f5f5f7;padding:.6em;border-radius:4px;overflow-x:auto;margin:.3em 0}
.suggestion{position:relative}.copy{float:right;font-size:12px;cursor:pointer}
.row{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}
figure{margin:.4em 0}figcaption{font-size:12px;color:#666;max-width:24em}
.broken{color:#c62828}
"""

_SCRIPT = """
document.querySelectorAll("button.copy").forEach(function (button) {
  button.addEventListener("click", function () {
    var code = button.parentElement.querySelector("code").textContent;
    function done() { button.textContent = "copied"; }
    if (navigator.clipboard) { navigator.clipboard.writeText(code).then(done); return; }
    var area = document.createElement("textarea");
    area.value = code; document.body.appendChild(area); area.select();
    document.execCommand("copy"); area.remove(); done();
  });
});
"""


def escape(text: str) -> str:
    """``text`` for HTML: made printable (:mod:`deconvlint.printable`: no control character,
    bidi control or lone surrogate reaches the page), then HTML-escaped."""
    return html.escape(printable(text))


def _grid(pattern: Any) -> tuple[list[list[float]], str] | None:
    """One period of the coverage as rows x columns (outer product of the axis patterns), and
    what the picture shows; ``None`` when the pattern is not a numeric list per axis.  Each axis
    is clipped to the cells drawn before the product, so the cost does not depend on the
    period."""
    axes = text_format.axis_patterns(pattern)
    if not axes or not all(axes):
        return None
    try:
        values = [[float(v) for v in axis[:HEATMAP_MAX_CELLS]] for axis in axes]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for axis in values for v in axis):
        return None
    if len(values) == 1:
        return [values[0]], "L (one axis)"
    *leading, rows, cols = values
    scale = math.prod(axis[0] for axis in leading)  # a 3-D pattern: the plane at D phase 0
    caption = "H x W" + (" at D phase 0" if leading else "")
    return [[scale * r * c for c in cols] for r in rows], caption


def _tiles(length: int) -> int:
    """Whole periods to draw on an axis of period ``length``."""
    return max(2, math.ceil(HEATMAP_CELLS / length))  # clipped to HEATMAP_MAX_CELLS later


def _colour(fraction: float) -> str:
    # white -> deep purple, as the Distill figures shade overlap
    low, high = (255, 255, 255), (74, 20, 140)
    rgb = (round(a + (b - a) * fraction) for a, b in zip(low, high, strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def heatmap(pattern: Any, period: Any = None) -> str:
    """An inline SVG of the interior coverage over a few periods, or ``""`` when there is no
    numeric per-axis pattern.  Holes (zero coverage) are outlined in red.  At most
    HEATMAP_MAX_CELLS cells per axis are drawn, whatever the period; a period longer than that
    (or than the entries listed, as ``period`` tells) is drawn in part, without an outline.

    >>> heatmap([[1, 2] * 2000] * 2).count("<rect") <= HEATMAP_MAX_CELLS**2
    True
    """
    found = _grid(pattern)
    if found is None:
        return ""
    grid, caption = found
    listed = text_format.axis_patterns(pattern) or []
    lengths = [len(a) for a in listed]
    if isinstance(period, (list, tuple)) and len(period) == len(lengths):
        lengths = [p if isinstance(p, int) else n for p, n in zip(period, lengths, strict=True)]
    whole = all(n <= HEATMAP_MAX_CELLS for n in lengths)
    height = min(HEATMAP_MAX_CELLS, len(grid) * _tiles(len(grid)))
    width = min(HEATMAP_MAX_CELLS, len(grid[0]) * _tiles(len(grid[0])))
    rows = [[grid[i % len(grid)][j % len(grid[0])] for j in range(width)] for i in range(height)]
    low, top = min(min(row) for row in rows), max(max(row) for row in rows)
    span = top - low
    cells = []
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            hole = ' stroke="#c62828" stroke-width="1.5"' if value == 0 else ""
            shade = 0.1 + 0.9 * (value - low) / span if span else 0.5
            cells.append(
                f'<rect x="{j * CELL}" y="{i * CELL}" width="{CELL}" height="{CELL}" '
                f'fill="{_colour(shade)}"{hole}><title>{text_format.fmt_number(value)}'
                "</title></rect>"
            )
    h, w = len(rows) * CELL, len(rows[0]) * CELL
    one = (
        f'<rect x="0" y="0" width="{len(grid[0]) * CELL}" height="{len(grid) * CELL}" '
        'fill="none" stroke="#ff8f00" stroke-width="2"/>'
        if whole
        else ""
    )
    shown = "one period outlined" if whole else "the first cells of a longer period"
    values = sorted({v for row in grid for v in row})
    legend = ", ".join(text_format.fmt_number(v) for v in values[:8]) + (
        ", ..." if len(values) > 8 else ""
    )
    return (
        f'<figure><svg xmlns="{SVG_NS}" class="heatmap" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="coverage heatmap">'
        + "".join(cells)
        + one
        + f"</svg><figcaption>interior coverage, {escape(caption)}; {shown}; "
        f"lightest = least, darkest = most coverage; values {escape(legend)}</figcaption></figure>"
    )


def _heatmap(metrics: Mapping[str, Any]) -> str:
    return heatmap(metrics.get("pattern"), metrics.get("period"))


def _severity(severity: str) -> str:
    return f'<span class="sev {escape(severity)}">{escape(severity)}</span>'


def _chain(finding: Finding) -> str:
    nodes = (finding.metrics or {}).get("nodes")
    if isinstance(nodes, (list, tuple)) and nodes:
        return " &rarr; ".join(f"<code>{escape(str(n))}</code>" for n in nodes)
    return f"<code>{escape(finding.node)}</code>"


def _details(finding: Finding) -> str:
    rows = [("node", f"<code>{escape(finding.node)}</code> ({escape(finding.op)})")]
    rows.append(("path of ops", _chain(finding)))
    metrics = finding.metrics or {}
    if metrics.get("output") is not None:
        rows.append(("output", f"<code>{escape(str(metrics['output']))}</code>"))
    axes = text_format.axis_patterns(metrics.get("pattern"))
    if axes is not None:
        line = text_format.pattern_line(axes, metrics.get("period")).removeprefix("pattern: ")
        rows.append(("pattern", escape(line)))
    coverage = text_format.coverage_line(metrics)
    if coverage:
        rows.append(("coverage", escape(coverage.removeprefix("coverage: "))))
    shown = set(text_format.SHOWN_METRICS)
    rows += [
        (escape(str(k)), escape(text_format.fmt_value(v)))
        for k, v in metrics.items()
        if k not in shown
    ]
    if finding.source:
        rows.append(("defined at", f"<code>{escape(finding.source)}</code>"))
    if finding.library_source:
        rows.append(("built in the library at", f"<code>{escape(finding.library_source)}</code>"))
    return (
        "<table>"
        + "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)
        + "</table>"
    )


def _code(code: str) -> str:
    # line by line: the code's own line breaks stay, any other control character is escaped
    return "\n".join(escape(line) for line in code.rstrip().split("\n"))


def _suggestions(finding: Finding) -> str:
    parts = []
    for s in finding.suggestions:
        parts.append(
            f'<div class="suggestion"><p><b>Suggestion:</b> {escape(s.title)}</p>'
            '<pre><button class="copy" type="button">copy</button>'
            f"<code>{_code(s.code)}</code></pre></div>"
        )
    return "".join(parts)


def _finding(path: str, finding: Finding, index: int) -> str:
    return (
        f'<section class="finding" id="f{index}"><h3>{escape(finding.rule)} '
        f"{escape(finding.name)} {_severity(finding.severity)}</h3>"
        f'<p class="muted"><code>{escape(path)}</code> : <code>{escape(finding.node)}</code></p>'
        f"<p>{escape(finding.message)}</p>"
        f'<div class="row"><div>{_details(finding)}</div>'
        f"<div>{_heatmap(finding.metrics or {})}</div></div>"
        f"{_suggestions(finding)}</section>"
    )


def _files_table(report: Results) -> str:
    rows = []
    for r in report.results:
        if r.error is not None:
            status = f'<span class="broken">could not be analysed: {escape(r.error)}</span>'
        else:
            counts = {s: sum(f.severity == s for f in r.findings) for s in reversed(SEVERITIES)}
            status = ", ".join(text_format.plural(n, s) for s, n in counts.items() if n) or "clean"
        rows.append(
            f"<tr><td><code>{escape(r.path)}</code></td>"
            f'<td class="n">{len(r.findings)}</td><td>{status}</td></tr>'
        )
    return (
        "<table><tr><th>file</th><th>findings</th><th>status</th></tr>" + "".join(rows) + "</table>"
    )


def _notes(report: Results) -> str:
    """What the readers want the user to know (the torch reader used, layers it could not
    place), one item each; ``""`` when there is none (every ONNX file)."""
    items = [
        f"<li><code>{escape(r.path)}</code>: {escape(printable(one_line(note)))}</li>"
        for r in report.results
        for note in r.notes
    ]
    return f"<h2>Notes</h2><ul>{''.join(items)}</ul>" if items else ""


def _rules_table(report: Results) -> str:
    rows = statistics(report)
    if not rows:
        return ""
    order = list(reversed(SEVERITIES))
    head = "".join(f"<th>{s}</th>" for s in order)
    body = "".join(
        f"<tr><td>{escape(row.rule)}</td><td>{escape(row.name)}</td>"
        + "".join(f'<td class="n">{row.by_severity.get(s, 0) or ""}</td>' for s in order)
        + f'<td class="n">{row.count}</td></tr>'
        for row in rows
    )
    return f"<table><tr><th>rule</th><th>name</th>{head}<th>total</th></tr>{body}</table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"{body}<script>{_SCRIPT}</script></body></html>\n"
    )


def format_report(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """The whole report as one HTML page."""
    blocks = []
    index = 0
    for r in report.results:
        for f in r.findings:
            blocks.append(_finding(r.path, f, index))
            index += 1
    body = (
        f'<h1>deconvlint report</h1><p class="muted">deconvlint {escape(__version__)}</p>'
        f'<p id="summary"><b>{escape(text_format.format_summary(report))}</b></p>'
        f"<h2>Files</h2>{_files_table(report)}"
        + (f"<h2>Findings by rule</h2>{_rules_table(report)}" if report.findings else "")
        + (f"<h2>Findings</h2>{''.join(blocks)}" if blocks else "")
        + _notes(report)
    )
    return _page("deconvlint report", body)


def format_statistics(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """The same page: its summary tables are the statistics."""
    return format_report(report, style)


def format_rules(catalogue: Mapping[str, Any]) -> str:
    """``--list-rules`` as an HTML table."""
    rows = "".join(
        f"<tr><td>{escape(d.id)}</td><td>{escape(d.name)}</td><td>{_severity(d.severity)}</td>"
        f"<td>{escape(d.runs)}</td><td>{escape(one_line(d.summary))}</td></tr>"
        for d in catalogue.values()
    )
    return _page(
        "deconvlint rules",
        "<h1>deconvlint rules</h1><table><tr><th>id</th><th>name</th><th>severity</th>"
        f"<th>default</th><th>summary</th></tr>{rows}</table>",
    )

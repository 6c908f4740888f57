"""GitHub Actions workflow commands (``--format github``): one annotation per finding.

``::warning file=m.onnx,title=DL001 uneven-overlap::decoder.up1: uneven overlap ...``, with
``error``, ``warning`` or ``notice`` after the finding's severity, and ``line=`` when the finding
knows the ``.py`` line of the layer (torch models: the file is then that ``.py`` file; ``.py``
files checked as source: ``line=``, ``col=``, ``endLine=``, ``endColumn=`` of the call).  Values are
escaped as the workflow-command spec requires (``%``, CR and LF in the message; also ``:`` and
``,`` in properties), so a message never ends an annotation early; names are made printable
first (:func:`~deconvlint.printable.printable`), so a line break or a control character in a
node or file name shows as its escape.  An input that could not be analysed is an ``::error``
annotation too.

>>> from deconvlint.report import FileResult, Finding, Report
>>> f = Finding("DL001", "uneven-overlap", "warning", "up1", "ConvTranspose", "100% uneven")
>>> print(format_report(Report([FileResult("m.onnx", [f])]), Style(summary=False)), end="")
::warning file=m.onnx,title=DL001 uneven-overlap::up1: 100%25 uneven
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deconvlint.errors import one_line
from deconvlint.formatters import DEFAULT_STYLE, Style
from deconvlint.formatters import text as text_format
from deconvlint.printable import printable
from deconvlint.results import Finding, Results

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(value: str) -> str:
    """A command's message: ``%``, CR and LF percent-encoded (``%`` first).

    >>> escape_data("a%b\\r\\nc")
    'a%25b%0D%0Ac'
    """
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A property value: as :func:`escape_data`, and ``:`` and ``,`` too.

    >>> escape_property("a:b,c")
    'a%3Ab%2Cc'
    """
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: Any) -> str:
    """``::name key=value,...::message`` with every part escaped; ``None`` values are left out.
    ``message`` keeps its line breaks (as ``%0A``); make names in it printable beforehand."""
    props = ",".join(
        f"{key}={escape_property(printable(str(value)))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def annotation(path: str, finding: Finding) -> str:
    """The workflow command for one finding."""
    where = finding.where()
    file = (where.path if where else "") or path
    message = printable(f"{finding.node}: {finding.message}")
    if finding.suggestions:
        titles = (printable(s.title) for s in finding.suggestions)
        message += "\n" + "\n".join(f"suggestion: {title}" for title in titles)
    return command(
        COMMANDS.get(finding.severity, "warning"),
        message,
        file=file,
        line=where.row if where else None,
        col=where.column if where else None,
        endLine=where.end_row if where else None,
        endColumn=where.end_column if where else None,
        title=f"{finding.rule} {finding.name}",
    )


def format_report(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """One annotation per finding, per input that could not be analysed and per note of a
    reader, then the summary."""
    lines = [annotation(r.path, f) for r in report.results for f in r.findings]
    lines += [
        command("error", printable(one_line(r.error)), file=r.path, title="deconvlint")
        for r in report.errors
    ]
    # the reader's notes (a torch model: its path names no file of the repository)
    lines += [
        command(
            "notice", f"{printable(r.path)}: {printable(one_line(note))}", title="deconvlint note"
        )
        for r in report.results
        for note in r.notes
    ]
    if style.summary:
        lines.append(text_format.format_summary(report))
    return "\n".join(lines) + "\n" if lines else ""


def format_statistics(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """The annotations, then the text statistics (a workflow log shows both)."""
    annotations = format_report(report, Style(color=False, summary=False))
    return annotations + text_format.format_statistics(report, Style(summary=style.summary))


def format_rules(catalogue: Mapping[str, Any]) -> str:
    """``--list-rules`` as text: rules are no annotations."""
    return text_format.format_rules(catalogue)

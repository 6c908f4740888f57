"""The report a run returns: its :class:`~deconvlint.results.Results`, printable as the CLI's text.

The data lives in :mod:`deconvlint.results`, below the formatters; :class:`Report` adds only
``__str__``, which uses the text formatter, so this module sits above the formatters and nothing
they import comes back here.

>>> f = Finding(rule="DL001", name="uneven-overlap", severity="warning", node="up1",
...             op="ConvTranspose", message="uneven overlap 1:2 per axis")
>>> r = Report(results=[FileResult(path="m.onnx", findings=[f])])
>>> r.to_dict()["summary"]
{'files': 1, 'findings': 1, 'errors': 0, 'by_severity': {'warning': 1}}
>>> print(r)
m.onnx:up1: DL001 [warning] uneven overlap 1:2 per axis
<BLANKLINE>
Found 1 finding (1 warning) in 1 file.
"""

from __future__ import annotations

from dataclasses import dataclass

from deconvlint.results import (
    SEVERITIES,
    FileResult,
    Finding,
    Location,
    Results,
    Suggestion,
    severity_rank,
)

__all__ = [
    "SEVERITIES",
    "FileResult",
    "Finding",
    "Location",
    "Report",
    "Suggestion",
    "severity_rank",
]


@dataclass
class Report(Results):
    """:class:`~deconvlint.results.Results` that print as the text the CLI prints."""

    def __str__(self) -> str:
        """The text the CLI prints (``format_report``), without its final newline, so that
        ``print(report)`` writes exactly that text."""
        from deconvlint.formatters.text import format_report  # imported on first print

        return format_report(self).removesuffix("\n")

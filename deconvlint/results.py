"""Findings, per-file results and the results of a run; ``Results.to_dict()`` is the JSON contract.

The formatters render :class:`Results`; :class:`deconvlint.report.Report` is the same data that
also prints as the command line's text (it sits above the formatters, so nothing here imports them).

>>> f = Finding(rule="DL001", name="uneven-overlap", severity="warning", node="up1",
...             op="ConvTranspose", message="uneven overlap 1:2 per axis")
>>> r = Results(results=[FileResult(path="m.onnx", findings=[f])])
>>> r.to_dict()["summary"]
{'files': 1, 'findings': 1, 'errors': 0, 'by_severity': {'warning': 1}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "error")  # in increasing order


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for error."""
    return SEVERITIES.index(severity)


@dataclass
class Suggestion:
    """A rewrite that keeps the output shape: a title, its parameters and ready-to-paste code."""

    title: str
    params: dict[str, Any]
    code: str

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "params": self.params, "code": self.code}


_SOURCE = re.compile(r"^(?P<file>.+?):(?P<row>\d+)(?::(?P<column>\d+))?$")


@dataclass(frozen=True)
class Location:
    """A place in a ``.py`` file: 1-based ``row`` and ``column`` (in characters), and where it
    ends (the column after its last character), as ruff's JSON gives them.

    >>> Location.parse("models/gen.py:42:9").to_dict()
    {'row': 42, 'column': 9}
    >>> Location.parse("C:/m/gen.py:7").path, Location.parse("gen.onnx") is None
    ('C:/m/gen.py', True)
    """

    path: str
    row: int
    column: int | None = None
    end_row: int | None = None
    end_column: int | None = None

    @classmethod
    def parse(cls, source: str | None) -> Location | None:
        """``path:row`` or ``path:row:column`` (a ``Node.source``); None for anything else."""
        match = _SOURCE.match(source or "")
        if match is None or int(match["row"]) < 1:
            return None
        column = int(match["column"]) if match["column"] else None
        return cls(match["file"], int(match["row"]), column or None)

    def to_dict(self) -> dict[str, int]:
        out = {"row": self.row}
        if self.column is not None:
            out["column"] = self.column
        return out

    def end_dict(self) -> dict[str, int] | None:
        if self.end_row is None:
            return None
        out = {"row": self.end_row}
        if self.end_column is not None:
            out["column"] = self.end_column
        return out


@dataclass
class Finding:
    rule: str
    name: str
    severity: str
    node: str
    op: str
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)
    # "file.py:line[:column]" where the layer was written, as the user's code shows it (for a
    # layer built inside a library, the user's call that built it); None for ONNX.
    source: str | None = None
    # The span of the call (source mode); else read from ``source``.
    location: Location | None = None
    # For a layer built inside an installed library: the library's line that built it.
    library_source: str | None = None

    def where(self) -> Location | None:
        """The finding's place in a ``.py`` file, when it has one."""
        return self.location or Location.parse(self.source)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "node": self.node,
            "op": self.op,
            "message": self.message,
            "metrics": self.metrics,
            "suggestions": [s.to_dict() for s in self.suggestions],
        }
        if self.source is not None:
            out["source"] = self.source
        where = self.where()
        if where is not None:
            out["filename"] = where.path
            out["location"] = where.to_dict()
            end = where.end_dict()
            if end is not None:
                out["end_location"] = end
        if self.library_source is not None:
            out["library_source"] = self.library_source
        return out


@dataclass
class FileResult:
    """The outcome for one input: findings, or a one-line error."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    # What the reader wants the user to know with the findings (``Graph.report_notes``): the
    # torch reader used when the first one's graph was not used, layers it could not place.
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "error": self.error,
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class Results:
    """The results of a run, one per input; what every formatter renders."""

    results: list[FileResult] = field(default_factory=list)
    # Which reader made the graph: "onnx", "fx", "export" or "hooks" (set by deconvlint.check).
    frontend: str | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def errors(self) -> list[FileResult]:
        return [r for r in self.results if r.error is not None]

    def summary(self) -> dict[str, Any]:
        by_severity: dict[str, int] = {}
        for f in self.findings:
            by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
        return {
            "files": len(self.results),
            "findings": len(self.findings),
            "errors": len(self.errors),
            "by_severity": {s: by_severity[s] for s in reversed(SEVERITIES) if s in by_severity},
        }

    def to_dict(self) -> dict[str, Any]:
        from deconvlint.version import __version__

        out: dict[str, Any] = {
            "deconvlint": __version__,
            "results": [r.to_dict() for r in self.results],
            "summary": self.summary(),
        }
        if self.frontend is not None:
            out["frontend"] = self.frontend
        return out

    def exit_code(self, fail_on: str = "warning") -> int:
        """2 if an input could not be analysed, 1 if a finding is at or above ``fail_on``, else 0."""
        if self.errors:
            return 2
        threshold = severity_rank(fail_on)
        if any(severity_rank(f.severity) >= threshold for f in self.findings):
            return 1
        return 0

"""SARIF 2.1.0 output, as GitHub code scanning reads it (``--format sarif``).

One run: ``tool.driver`` names deconvlint and lists every rule of the catalogue; each finding is
one result with its rule, level, message, the model file (or, for torch findings, the ``.py`` file
and line where the layer was written) as a location relative to the working folder, the node as a
logical location, a fingerprint that stays the same across runs, and the metrics in
``properties``.  An input that could not be analysed is a tool execution notification, and the
invocation is then unsuccessful.

>>> from deconvlint.report import FileResult, Finding, Report
>>> f = Finding("DL001", "uneven-overlap", "warning", "up1", "ConvTranspose", "uneven",
...             source="models/gen.py:42")
>>> result = sarif_log(Report([FileResult("pkg.models:Gen", [f])]))["runs"][0]["results"][0]
>>> result["ruleId"], result["level"], result["locations"][0]["physicalLocation"]["region"]
('DL001', 'warning', {'startLine': 42})

A ``.py`` file's finding (source mode) has the call's span: ``{'startLine': 20, 'startColumn':
13, 'endLine': 21, 'endColumn': 6}``.
>>> result["locations"][0]["physicalLocation"]["artifactLocation"]
{'uri': 'models/gen.py', 'uriBaseId': '%SRCROOT%'}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deconvlint.errors import one_line
from deconvlint.formatters import DEFAULT_STYLE, Style
from deconvlint.formatters.json import plain
from deconvlint.printable import printable
from deconvlint.results import Finding, Location, Results
from deconvlint.version import __version__

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://distill.pub/2016/deconv-checkerboard/"
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}  # SARIF has no "info"
FINGERPRINT_KEY = "deconvlint/v1"
_URL = re.compile(r"https?://\S+")


def _information_uri() -> str:
    """The project's home page from the installed metadata, else the paper the rules follow."""
    from importlib import metadata

    try:
        meta = metadata.metadata("deconvlint")
    except metadata.PackageNotFoundError:
        return INFORMATION_URI
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "source", "repository") and url.strip():
            return url.strip()
    return meta.get("Home-page") or INFORMATION_URI


def artifact_uri(path: str) -> tuple[str, bool]:
    """``path`` as a URI reference relative to the working folder when it lies below it (and
    whether it does), else as an absolute ``file://`` URI.  The path's bytes are
    percent-encoded, so a file name that is not valid UTF-8 keeps its bytes.

    >>> artifact_uri("models/a b.onnx"), artifact_uri("bad\\udcff.onnx")
    (('models/a%20b.onnx', True), ('bad%FF.onnx', True))
    """
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        return "file://" + quote(os.fsencode(absolute.as_posix())), False
    return quote(os.fsencode(relative.as_posix())), True


def _physical(path: str, where: Location | None = None) -> dict[str, Any]:
    uri, relative = artifact_uri(path)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = SRCROOT
    location: dict[str, Any] = {"artifactLocation": artifact}
    if where is not None:
        region = {"startLine": where.row}
        if where.column is not None:
            region["startColumn"] = where.column
        if where.end_row is not None:
            region["endLine"] = where.end_row
            if where.end_column is not None:
                region["endColumn"] = where.end_column
        location["region"] = region
    return location


def _location(path: str, finding: Finding) -> dict[str, Any]:
    """Where the finding is: the ``.py`` line (and span) when known, else the model file (a
    module target such as ``pkg.models:G`` is no file: then only the logical location is
    given)."""
    location: dict[str, Any] = {}
    where = finding.where()
    if where is not None:
        location["physicalLocation"] = _physical(where.path or path, where)
    elif os.path.isfile(path):
        # GitHub places an alert only with a start line; a model file's finding is the file's
        location["physicalLocation"] = _physical(path, Location(path, 1))
    location["logicalLocations"] = [
        {"name": finding.node, "fullyQualifiedName": f"{path}:{finding.node}", "kind": "member"}
    ]
    return location


def _related(finding: Finding) -> list[dict[str, Any]]:
    """The library's line that built the layer, when the main location is the user's call."""
    where = Location.parse(finding.library_source)
    if where is None:
        return []
    return [
        {
            "id": 1,
            "physicalLocation": _physical(where.path, where),
            "message": {"text": "the library code that builds the layer"},
        }
    ]


def fingerprint(path: str, finding: Finding) -> str:
    """A hash of what identifies a finding across runs: file, rule, node, chain and output (not
    the message or the metrics, which may be reworded or refined)."""
    metrics = finding.metrics or {}
    nodes = metrics.get("nodes") or ()
    parts = [
        artifact_uri(path)[0],
        finding.rule,
        finding.node,
        "->".join(map(str, nodes if isinstance(nodes, (list, tuple)) else [nodes])),
        str(metrics.get("output") or ""),
    ]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _message(finding: Finding) -> str:
    # the text people read: names made printable (the logical location keeps them exact)
    text = printable(f"{finding.node}: {finding.message}")
    if finding.suggestions:
        titles = (printable(s.title) for s in finding.suggestions)
        text += "\nSuggestions:\n" + "\n".join(f"- {title}" for title in titles)
    return text


def _result(path: str, finding: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": LEVELS.get(finding.severity, "warning"),
        "message": {"text": _message(finding)},
        "locations": [_location(path, finding)],
        **({"relatedLocations": related} if (related := _related(finding)) else {}),
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(path, finding)},
        "properties": plain(
            {
                "severity": finding.severity,
                "op": finding.op,
                "model": path,
                "metrics": finding.metrics,
                "suggestions": [s.to_dict() for s in finding.suggestions],
            }
        ),
    }
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    return result


def _rule(doc: Any) -> dict[str, Any]:
    urls = [m.group(0).rstrip(").,") for r in doc.references for m in _URL.finditer(r)]
    rule: dict[str, Any] = {
        "id": doc.id,
        "name": doc.name,
        "shortDescription": {"text": one_line(doc.summary)},
        "fullDescription": {"text": doc.sections.get("what_it_does", doc.summary).strip()},
        "help": {"text": doc.explain(), "markdown": doc.explain()},
        "defaultConfiguration": {
            "level": LEVELS.get(doc.severity, "warning"),
            "enabled": doc.default,
        },
        "properties": {"tags": ["checkerboard-artifacts", "neural-networks"]},
    }
    if urls:
        rule["helpUri"] = urls[0]
    return rule


def sarif_log(report: Results, catalogue: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (a dict ready for ``json.dumps``)."""
    if catalogue is None:
        from deconvlint.rules.catalogue import load_catalogue

        catalogue = load_catalogue()
    rule_index = {rule_id: i for i, rule_id in enumerate(catalogue)}
    results = [_result(r.path, f, rule_index) for r in report.results for f in r.findings]
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{printable(r.path)}: {printable(one_line(r.error))}"},
            **(
                {"locations": [{"physicalLocation": _physical(r.path)}]}
                if os.path.isfile(r.path)
                else {}
            ),
        }
        for r in report.errors
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not notifications}
    # what the reader wants the user to know (the torch reader used, layers it could not
    # place): notes, which leave the run successful
    notifications += [
        {"level": "note", "message": {"text": f"{printable(r.path)}: {printable(one_line(note))}"}}
        for r in report.results
        for note in r.notes
    ]
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "deconvlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": _information_uri(),
                        "rules": [_rule(doc) for doc in catalogue.values()],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
                "invocations": [invocation],
                "results": results,
                "columnKind": "utf16CodeUnits",
            }
        ],
    }


def _dumps(log: dict[str, Any]) -> str:
    # plain(): strict JSON, and no lone surrogate from a file name that is not UTF-8
    return json.dumps(plain(log), indent=2, allow_nan=False) + "\n"


def format_report(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """The report as a SARIF log (the summary is implied by the results)."""
    return _dumps(sarif_log(report))


def format_statistics(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """SARIF has no statistics view: the full log, which carries the counts."""
    return format_report(report, style)


def format_rules(catalogue: Mapping[str, Any]) -> str:
    """``--list-rules`` as a SARIF log with the rules and no results."""
    return _dumps(sarif_log(Results(), catalogue))

"""JSON output: ``json.dumps(report.to_dict(), indent=2)`` and a newline; the contract is
:meth:`deconvlint.results.Results.to_dict`.

Values are made plain JSON on the way out (numpy scalars and arrays, fractions, tuples), and a
non-finite float becomes ``null``, so the output is always strict JSON that any parser reads.

>>> from deconvlint.report import FileResult, Report
>>> import json as std_json
>>> std_json.loads(format_report(Report([FileResult("m.onnx")])))["summary"]["files"]
1
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from deconvlint.errors import one_line
from deconvlint.formatters import DEFAULT_STYLE, Style, statistics
from deconvlint.printable import without_surrogates
from deconvlint.results import Results


def plain(value: Any) -> Any:
    """``value`` with only JSON types inside; NaN and infinities become ``None``, and a lone
    surrogate in a string (a file name that is not valid UTF-8) its escape, ``\\udcff``.

    >>> plain({"ratio": float("inf"), "pattern": ((1, 2),), "scale": Fraction(3, 2)})
    {'ratio': None, 'pattern': [[1, 2]], 'scale': 1.5}
    """
    if isinstance(value, Mapping):
        return {without_surrogates(str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return plain(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return without_surrogates(str(value))


def _dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=2, allow_nan=False) + "\n"


def format_report(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """The report as JSON (the summary is part of it, whatever ``style`` says)."""
    return _dumps(report.to_dict())


def format_statistics(report: Results, style: Style = DEFAULT_STYLE) -> str:
    """``--statistics`` as a JSON list of ``{rule, name, count, by_severity}``, most frequent
    first."""
    return _dumps(
        [
            {"rule": r.rule, "name": r.name, "count": r.count, "by_severity": r.by_severity}
            for r in statistics(report)
        ]
    )


def format_rules(catalogue: Mapping[str, Any]) -> str:
    """``--list-rules`` as a JSON list of ``{id, name, severity, default, runs, summary, options}``."""
    return _dumps(
        [
            {
                "id": doc.id,
                "name": doc.name,
                "severity": doc.severity,
                "default": doc.default,
                "runs": doc.runs,
                "summary": one_line(doc.summary),
                "options": [
                    {"name": o.name, "type": o.type, "default": o.default} for o in doc.options
                ],
            }
            for doc in catalogue.values()
        ]
    )

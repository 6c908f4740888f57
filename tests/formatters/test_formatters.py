"""Text and JSON output of hand-made reports (golden tests of real output are in test_cli.py)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from deconvlint.formatters import Style, format_error_lines, get_formatter, text
from deconvlint.formatters import json as json_format
from deconvlint.report import FileResult, Finding, Report, Suggestion
from deconvlint.rules.catalogue import load_catalogue


def finding(
    rule: str = "DL001", severity: str = "warning", node: str = "decoder.up1", **metrics: object
) -> Finding:
    base = {
        "pattern": [[1, 2], [1, 2]],
        "period": [2, 2],
        "max_coverage": 4.0,
        "min_coverage": 1.0,
        "ratio": 4.0,
        "cv": 0.48432,
    }
    return Finding(
        rule=rule,
        name="uneven-overlap",
        severity=severity,
        node=node,
        op="ConvTranspose",
        message="uneven overlap",
        metrics={**base, **metrics},
        suggestions=[
            Suggestion(
                "ConvTranspose2d(k=4, s=2, p=1)", {"k": 4}, "nn.ConvTranspose2d(c, c, 4, 2, 1)\n"
            )
        ],
    )


def test_a_finding_reads_like_ruff() -> None:
    block = text.format_finding("m.onnx", finding())
    assert block == "\n".join(
        [
            "m.onnx:decoder.up1: DL001 [warning] uneven overlap",
            "  pattern: H [1, 2] x W [1, 2], period 2x2",
            "  coverage: max 4, min 1, ratio 4, cv 0.4843",
            "  one period (H x W):",
            "    1 2",
            "    2 4",
            "  suggestion: ConvTranspose2d(k=4, s=2, p=1)",
            "      nn.ConvTranspose2d(c, c, 4, 2, 1)",
        ]
    )


def test_picture_is_right_aligned_outer_product() -> None:
    lines = text.finding_details(finding(pattern=[[1, 3, 2, 3], [1, 3, 2, 3]], period=[4, 4]))
    start = lines.index("  one period (H x W):")
    assert lines[start + 1 : start + 5] == [
        "    1 3 2 3",
        "    3 9 6 9",
        "    2 6 4 6",
        "    3 9 6 9",
    ]
    wide = text.finding_details(finding(pattern=[[6, 7, 6, 6], [1, 2]], period=[4, 2]))
    assert "     6 12" in wide and "     7 14" in wide


@pytest.mark.parametrize(
    "pattern",
    [[[1, 2]], [[1, 2]] * 3, [list(range(1, 10)), [1, 2]], None, "garbage"],
)
def test_no_picture_unless_2d_and_small(pattern: object) -> None:
    lines = text.finding_details(finding(pattern=pattern))
    assert not any("one period" in line for line in lines)


def test_holes_show_no_ratio() -> None:
    lines = text.finding_details(
        finding(
            rule="DL002",
            severity="error",
            pattern=[[1, 0]],
            period=[2],
            min_coverage=0.0,
            max_coverage=1.0,
            ratio=None,
            cv=1.0,
        )
    )
    assert "  pattern: L [1, 0], period 2" in lines
    assert "  coverage: max 1, min 0 (holes), cv 1" in lines


def test_stack_and_output_metrics() -> None:
    stack = text.finding_details(finding(rule="DL003", nodes=["up1", "up2"], effect="compounds"))
    assert stack[0] == "  chain: up1 -> up2"
    assert "  effect: compounds" in stack
    out = text.finding_details(finding(rule="DL004", output="image", nodes=["up1"]))
    assert out[:2] == ["  chain: up1", "  output: image"]


def test_numbers() -> None:
    assert [
        text.fmt_number(x)
        for x in (
            2,
            2.0,
            0.1576,
            1.25,
            1e-4,
            np.float32(3.0),
            np.int64(7),
            Fraction(7, 6),
            Fraction(4, 2),
            math.inf,
            math.nan,
            True,
            1e-6,
            12345.678,
        )
    ] == [
        "2",
        "2",
        "0.1576",
        "1.25",
        "0.0001",
        "3",
        "7",
        "7/6",
        "2",
        "inf",
        "n/a",
        "true",
        "0",
        "12345.7",
    ]
    assert text.fmt_value(np.array([1.0, 2.0])) == "[1, 2]"
    assert text.fmt_value(None) == "n/a"


def test_source_line_for_torch_findings() -> None:
    f = finding()
    f.source = "model.py:42"
    assert "  defined at: model.py:42" in text.finding_details(f)


def test_summaries() -> None:
    ok, bad = FileResult("a.onnx"), FileResult("b.onnx", error="truncated")
    warn = FileResult("c.onnx", [finding(), finding(severity="info"), finding(severity="info")])
    err = FileResult("d.onnx", [finding(severity="error")])
    assert text.format_summary(Report([ok])) == "All checks passed (1 file)."
    assert text.format_summary(Report([ok, ok])) == "All checks passed (2 files)."
    assert text.format_summary(Report([ok, warn])) == (
        "Found 3 findings (1 warning, 2 info) in 2 files."
    )
    assert text.format_summary(Report([err])) == "Found 1 finding (1 error) in 1 file."
    assert text.format_summary(Report([warn, bad, bad])) == (
        "Found 3 findings (1 warning, 2 info) in 1 file; 2 files could not be analysed."
    )
    assert text.format_summary(Report([bad])) == "No input could be analysed (1 error)."


def test_report_layout_and_quiet() -> None:
    report = Report([FileResult("a.onnx", [finding(), finding(node="up2")]), FileResult("b.onnx")])
    out = text.format_report(report)
    blocks = out.split("\n\n")
    assert len(blocks) == 3 and blocks[-1] == "Found 2 findings (2 warnings) in 2 files.\n"
    quiet = text.format_report(report, Style(summary=False))
    assert "Found" not in quiet and quiet.endswith("\n")
    assert text.format_report(Report([FileResult("b.onnx")]), Style(summary=False)) == ""


def test_colour() -> None:
    block = text.format_finding("m.onnx", finding(severity="error"), color=True)
    assert "\033[31m[error]\033[0m" in block and "\033[1mDL001\033[0m" in block
    assert "\033[" not in text.format_finding("m.onnx", finding(), color=False)


def test_statistics_count_per_rule() -> None:
    findings = [finding(), finding(severity="info"), finding(), finding(rule="DL004")]
    report = Report([FileResult("a.onnx", findings), FileResult("b.onnx", [finding()])])
    assert text.format_statistics(report, Style(summary=False)) == (
        "4\tDL001\t[3 warnings, 1 info]\tuneven-overlap\n1\tDL004\t[warning]\tuneven-overlap\n"
    )
    assert text.format_statistics(Report([FileResult("a.onnx")]), Style(summary=False)) == ""
    assert text.format_statistics(Report([FileResult("a.onnx")])) == (
        "All checks passed (1 file).\n"
    )
    rows = json.loads(json_format.format_statistics(report))
    assert rows == [
        {
            "rule": "DL001",
            "name": "uneven-overlap",
            "count": 4,
            "by_severity": {"warning": 3, "info": 1},
        },
        {"rule": "DL004", "name": "uneven-overlap", "count": 1, "by_severity": {"warning": 1}},
    ]


def test_error_lines_are_one_line_each() -> None:
    report = Report([FileResult("x.onnx", error="bad\n  protobuf"), FileResult("y.onnx")])
    assert format_error_lines(report) == ["x.onnx: error: bad protobuf"]


def test_json_is_the_contract() -> None:
    report = Report([FileResult("a.onnx", [finding()]), FileResult("b.onnx", error="truncated")])
    out = json_format.format_report(report)
    assert out == json.dumps(report.to_dict(), indent=2) + "\n"


def test_json_is_strict_even_for_odd_values() -> None:
    odd = finding(
        ratio=math.inf,
        cv=np.float64("nan"),
        pattern=np.array([[1, 2], [1, 2]]),
        scale=Fraction(3, 2),
        period=(np.int64(2), 2),
    )
    out = json_format.format_report(Report([FileResult("a.onnx", [odd])]))
    metrics = json.loads(out)["results"][0]["findings"][0]["metrics"]
    assert metrics["ratio"] is None and metrics["cv"] is None
    assert metrics["pattern"] == [[1, 2], [1, 2]] and metrics["period"] == [2, 2]
    assert metrics["scale"] == 1.5
    assert "NaN" not in out and "Infinity" not in out


def test_rule_tables() -> None:
    catalogue = load_catalogue()
    table = text.format_rules(catalogue).splitlines()
    assert table[0].split() == ["ID", "NAME", "SEVERITY", "DEFAULT", "SUMMARY"]
    assert [row.split()[0] for row in table[1:]] == list(catalogue)
    rules = json.loads(json_format.format_rules(catalogue))
    assert {r["id"] for r in rules} == set(catalogue)
    dl004 = next(r for r in rules if r["id"] == "DL004")
    assert dl004["options"][0]["name"] == "max-cv"


def test_get_formatter() -> None:
    assert get_formatter("text") is text
    assert get_formatter("json") is json_format
    assert get_formatter("sarif").__name__ == "deconvlint.formatters.sarif"
    with pytest.raises(ValueError):
        get_formatter("xml")

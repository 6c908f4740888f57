"""``--format github``: workflow commands, escaped as the spec requires.

The spec (GitHub Actions "workflow commands", as ``@actions/core`` implements it): a command is
``::name key=value,key=value::message``; in the message ``%``, CR and LF are written ``%25``,
``%0D``, ``%0A``; in a property value also ``:`` as ``%3A`` and ``,`` as ``%2C``.  The runner
decodes them back, so the test decodes what deconvlint wrote and compares it with the input.
"""

from __future__ import annotations

import os
import re

import pytest

from deconvlint.formatters import Style, github
from deconvlint.report import FileResult, Finding, Report, Suggestion
from tests.support.cli import REPO, run_cli

COMMAND = re.compile(r"^::(?P<name>\w+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def parse(line: str) -> tuple[str, dict[str, str], str]:
    """What the runner reads from one command line."""
    match = COMMAND.match(line)
    assert match, f"not a workflow command: {line!r}"
    props = {}
    for item in filter(None, (match["props"] or "").split(",")):
        key, _, value = item.partition("=")
        props[key] = unescape_property(value)
    return match["name"], props, unescape_data(match["message"])


NASTY = "50% of taps: a,b\r\nnext line :: still the message %0A literal"


@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        ("100%", "100%25", "100%25"),
        ("a\nb", "a%0Ab", "a%0Ab"),
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("x:y,z", "x:y,z", "x%3Ay%2Cz"),
        ("%0A", "%250A", "%250A"),  # an already-escaped-looking text stays literal
    ],
)
def test_escaping_follows_the_spec(raw: str, data: str, prop: str) -> None:
    assert github.escape_data(raw) == data
    assert github.escape_property(raw) == prop


def test_every_part_round_trips_through_the_runner() -> None:
    finding = Finding(
        rule="DL002",
        name="coverage-holes",
        severity="error",
        node="dec,oder:up%1",
        op="ConvTranspose",
        message=NASTY,
        suggestions=[Suggestion("use k=4, s=2", {}, "")],
    )
    line = github.annotation("models/a,b:c.onnx", finding)
    assert "\n" not in line and "\r" not in line
    name, props, message = parse(line)
    assert name == "error"
    assert props == {"file": "models/a,b:c.onnx", "title": "DL002 coverage-holes"}
    # the runner gets back every character, the message's CR LF as the escape text people read
    # (only deconvlint's own line breaks, before each suggestion, stay line breaks)
    escaped = NASTY.replace("\r\n", "\\r\\n")
    assert message == f"dec,oder:up%1: {escaped}\nsuggestion: use k=4, s=2"


@pytest.mark.parametrize(
    ("severity", "command"), [("error", "error"), ("warning", "warning"), ("info", "notice")]
)
def test_severity_picks_the_command(severity: str, command: str) -> None:
    finding = Finding("DL001", "uneven-overlap", severity, "up", "ConvTranspose", "m")
    assert parse(github.annotation("m.onnx", finding))[0] == command


def test_torch_finding_has_the_python_file_and_line() -> None:
    finding = Finding(
        "DL001", "uneven-overlap", "warning", "decoder.up1", "ConvTranspose2d", "m",
        source="pkg/models.py:42",
    )  # fmt: skip
    name, props, message = parse(github.annotation("pkg.models:Generator", finding))
    assert name == "warning"
    assert props == {"file": "pkg/models.py", "line": "42", "title": "DL001 uneven-overlap"}
    assert message == "decoder.up1: m"


def test_errors_are_annotations_and_summary_is_last() -> None:
    report = Report(
        [
            FileResult("a.onnx", [Finding("DL001", "uneven-overlap", "warning", "up", "CT", "m")]),
            FileResult("b.onnx", error="truncated: 10 bytes\nmore"),
        ]
    )
    lines = github.format_report(report, Style()).splitlines()
    assert parse(lines[1]) == (
        "error",
        {"file": "b.onnx", "title": "deconvlint"},
        "truncated: 10 bytes more",
    )
    assert lines[-1] == "Found 1 finding (1 warning) in 1 file; 1 file could not be analysed."
    assert len(github.format_report(report, Style(summary=False)).splitlines()) == 2


def test_cli_on_the_examples() -> None:
    proc = run_cli(
        "examples", "--format", "github", cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO))
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    commands = [parse(line) for line in lines[:-1]]
    assert [(c[0], c[1]["title"]) for c in commands] == [
        ("warning", "DL001 uneven-overlap"),
        ("warning", "DL001 uneven-overlap"),
        ("warning", "DL003 stacked-uneven-overlap"),
        ("warning", "DL001 uneven-overlap"),  # examples/dcgan_generator.keras
        ("warning", "DL001 uneven-overlap"),
        ("warning", "DL003 stacked-uneven-overlap"),
        ("notice", "DL001 uneven-overlap"),
    ]
    assert commands[0][1]["file"] == "examples/cyclegan_decoder.onnx"
    assert commands[0][2].startswith("decoder.up1: uneven overlap: taps per output phase [1, 2]")
    assert lines[-1] == "Found 7 findings (6 warnings, 1 info) in 6 files."

"""``--format sarif``: the structure GitHub code scanning reads, checked by hand and by the
official validator (``Sarif.Multitool validate``, from npm; skipped when it is absent)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from deconvlint.formatters import sarif
from deconvlint.report import FileResult, Finding, Report, Suggestion
from deconvlint.rules.catalogue import load_catalogue
from tests.support.cli import REPO, run_cli
from tests.support.external_tools import needs_sarif_multitool, validate_sarif


def deconvlint(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.fixture(scope="module")
def examples_log() -> dict:
    proc = deconvlint("examples", "--format", "sarif")
    assert proc.returncode == 1, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def examples_json() -> dict:
    return json.loads(deconvlint("examples", "--format", "json").stdout)


def test_driver_lists_every_rule_from_the_catalogue(examples_log: dict) -> None:
    assert examples_log["version"] == "2.1.0"
    driver = examples_log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "deconvlint"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")
    catalogue = load_catalogue()
    assert [r["id"] for r in driver["rules"]] == list(catalogue)
    for rule in driver["rules"]:
        doc = catalogue[rule["id"]]
        assert rule["name"] == doc.name
        assert rule["shortDescription"]["text"] == " ".join(doc.summary.split())
        assert rule["fullDescription"]["text"] == doc.sections["what_it_does"].strip()
        assert rule["help"]["text"] == doc.explain()
        assert "## Why is this bad?" in rule["help"]["markdown"]
        level = {"error": "error", "warning": "warning", "info": "note"}[doc.severity]
        assert rule["defaultConfiguration"]["level"] == level
        assert rule["helpUri"].startswith("https://")


def test_one_result_per_finding_with_location_node_and_metrics(
    examples_log: dict, examples_json: dict
) -> None:
    results = examples_log["runs"][0]["results"]
    findings = [(r["path"], f) for r in examples_json["results"] for f in r["findings"]]
    assert len(results) == len(findings) == 7  # the ONNX examples 4, the Keras one 3
    rules = examples_log["runs"][0]["tool"]["driver"]["rules"]
    for result, (path, finding) in zip(results, findings, strict=True):
        assert result["ruleId"] == finding["rule"]
        assert rules[result["ruleIndex"]]["id"] == finding["rule"]
        assert result["level"] == {"warning": "warning", "info": "note"}[finding["severity"]]
        assert result["message"]["text"].startswith(f"{finding['node']}: {finding['message']}")
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"] == {"uri": path, "uriBaseId": "%SRCROOT%"}
        assert physical["region"] == {"startLine": 1}
        assert location["logicalLocations"][0]["name"] == finding["node"]
        assert result["properties"]["metrics"] == finding["metrics"]
        assert result["properties"]["suggestions"] == finding["suggestions"]
    assert examples_log["runs"][0]["invocations"] == [{"executionSuccessful": True}]


def test_fingerprints_are_stable_and_distinct(examples_log: dict) -> None:
    again = json.loads(deconvlint("examples", "--format", "sarif").stdout)
    prints = [r["partialFingerprints"] for r in examples_log["runs"][0]["results"]]
    assert prints == [r["partialFingerprints"] for r in again["runs"][0]["results"]]
    values = [p[sarif.FINGERPRINT_KEY] for p in prints]
    assert len(set(values)) == len(values)


def test_the_same_model_from_another_folder_keeps_its_fingerprints(tmp_path: Path) -> None:
    """Paths are relative to the working folder, so a CI checkout anywhere gives the same."""
    (tmp_path / "examples").mkdir()
    model = REPO / "examples" / "cyclegan_decoder.onnx"
    (tmp_path / "examples" / model.name).write_bytes(model.read_bytes())
    here = json.loads(deconvlint("examples/cyclegan_decoder.onnx", "--format", "sarif").stdout)
    there = json.loads(
        deconvlint("examples/cyclegan_decoder.onnx", "--format", "sarif", cwd=tmp_path).stdout
    )
    assert [r["partialFingerprints"] for r in here["runs"][0]["results"]] == [
        r["partialFingerprints"] for r in there["runs"][0]["results"]
    ]


def _torch_style_report() -> Report:
    finding = Finding(
        rule="DL001",
        name="uneven-overlap",
        severity="info",
        node="decoder.up1",
        op="ConvTranspose2d",
        message='uneven, 100% "quoted" <tag>',
        metrics={"pattern": [[1, 2], [1, 2]], "ratio": float("inf")},
        suggestions=[Suggestion("k=4", {"k": 4}, "nn.ConvTranspose2d(4, 4, 4, 2, 1)")],
        source="pkg/models.py:12",
    )
    return Report([FileResult("pkg.models:Generator", [finding])])


def test_torch_finding_points_at_the_python_line() -> None:
    log = sarif.sarif_log(_torch_style_report())
    (result,) = log["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical == {
        "artifactLocation": {"uri": "pkg/models.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 12},
    }
    assert result["level"] == "note"
    assert result["properties"]["metrics"]["ratio"] is None  # never a non-finite number
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "pkg.models:Generator:decoder.up1"
    )


def test_a_model_outside_the_working_folder_is_an_absolute_file_uri(tmp_path: Path) -> None:
    model = REPO / "examples" / "cyclegan_decoder.onnx"
    copy = tmp_path / "a model.onnx"
    copy.write_bytes(model.read_bytes())
    log = json.loads(deconvlint(str(copy), "--format", "sarif").stdout)
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert artifact["artifactLocation"] == {"uri": copy.as_uri()}
    assert "%20" in artifact["artifactLocation"]["uri"]


def test_unreadable_input_is_a_tool_notification(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    proc = deconvlint("broken.onnx", "--format", "sarif", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("broken.onnx: error: ")
    (invocation,) = json.loads(proc.stdout)["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"].startswith("broken.onnx: ")
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.onnx"


def test_list_rules_as_sarif_has_rules_and_no_results() -> None:
    log = json.loads(deconvlint("--list-rules", "--format", "sarif").stdout)
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == len(load_catalogue())
    assert log["runs"][0]["results"] == []


# --- the official validator -----------------------------------------------------------------


def test_the_validator_catches_a_broken_log(tmp_path: Path) -> None:
    """The validator is a real referee here: it reports errors on a log that breaks the spec."""
    tool = needs_sarif_multitool()
    log = sarif.sarif_log(_torch_style_report())
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    path = tmp_path / "bad.sarif"
    path.write_text(json.dumps(log))
    assert validate_sarif(tool, path)


@pytest.mark.slow
def test_examples_pass_the_official_validator(tmp_path: Path) -> None:
    tool = needs_sarif_multitool()
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    for name in ("cyclegan_decoder.onnx", "stylegan_blur.onnx", "clean_decoder.onnx"):
        (tmp_path / name).write_bytes((REPO / "examples" / name).read_bytes())
    written = tmp_path / "examples.sarif"
    proc = deconvlint(".", "--format", "sarif", "--output", str(written), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr  # the broken file
    assert json.loads(written.read_text())["runs"][0]["results"]
    assert validate_sarif(tool, written) == []
    torch_style = tmp_path / "torch.sarif"
    torch_style.write_text(sarif.format_report(_torch_style_report()))
    assert validate_sarif(tool, torch_style) == []


@pytest.mark.slow
@pytest.mark.torch
def test_torch_target_points_at_its_source_and_validates(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.cli.test_parallel import MODELS_PY

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models.py").write_text(MODELS_PY)
    args = ("pkg.models:Generator", "--input-shape", "1,4,8,8", "--format", "sarif")
    proc = deconvlint(*args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    first = log["runs"][0]["results"][0]
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pkg/models.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 7},
    }
    assert first["locations"][0]["logicalLocations"][0]["name"] == "up"
    tool = needs_sarif_multitool()
    path = tmp_path / "torch.sarif"
    path.write_text(proc.stdout)
    assert validate_sarif(tool, path) == []

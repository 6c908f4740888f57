"""The command line, run as a subprocess the way users run it.

Two kinds of test live here:

- most tests swap the ONNX front end for a stand-in that reads a chain spec from the "model"
  file (``chain: ConvTranspose2d(k=3, s=2) -> ...``), so that the CLI, the configuration, the
  real rules and the real catalogue are exercised with inputs that are easy to write;
- the end-to-end tests run the real ``python -m deconvlint`` on real ONNX
  files (``examples/*.onnx`` and broken ones), including the golden-file tests of the text
  output.  Regenerate the golden files with ``DECONVLINT_UPDATE_GOLDEN=1 python -m pytest
  tests/cli/test_cli.py``.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import REPO, cli_env, run_cli

EXAMPLES = REPO / "examples"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# Stands in for deconvlint.frontends.onnx.reader: a "model" is a text file holding a chain spec.
FAKE_FRONTEND = r"""
import sys, types
from deconvlint.errors import LoadError

def load_graph(path):
    from deconvlint.core.chainspec import parse_chain
    from deconvlint.core.ir import Graph
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"cannot read the file: {exc}")
    if "CRASH" in text:
        raise ZeroDivisionError("the stand-in front end crashed on purpose")
    if not text.startswith("chain:"):
        raise LoadError("not an ONNX model (stand-in front end: expected 'chain: ...')")
    nodes = parse_chain(text[len("chain:"):].strip())
    return Graph(name="fake", nodes=nodes, inputs=(nodes[0].inputs[0],),
                 outputs=(nodes[-1].outputs[0],))

fake = types.ModuleType("deconvlint.frontends.onnx.reader")
fake.load_graph = load_graph
fake.prestart_inference = lambda: None  # the stand-in infers no shapes
sys.modules["deconvlint.frontends.onnx.reader"] = fake
from deconvlint.cli.main import main
code = main(sys.argv[1:])
if "DECONVLINT_TEST_MODULES" in __import__("os").environ:
    print("MODULES:" + ",".join(sorted(m for m in sys.modules if "." not in m)), file=sys.stderr)
raise SystemExit(code)
"""

UNEVEN = "chain: ConvTranspose2d(k=3, s=2, p=1, op=1, name='decoder.up1')"
STACK = (
    "chain: ConvTranspose2d(k=3, s=2, p=1, op=1, name='decoder.up1') -> ReLU() "
    "-> ConvTranspose2d(k=3, s=2, p=1, op=1, name='decoder.up2')"
)
COMPENSATED = "chain: ConvTranspose2d(k=3, s=2, p=0, name='up') -> Blur2d(taps=(1, 3, 3, 1), p=1)"
HOLES = "chain: ConvTranspose2d(k=1, s=2, op=1, name='up')"
CLEAN = "chain: ConvTranspose2d(k=4, s=2, p=1, name='up')"


def run_fake(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``deconvlint ARGS`` with the stand-in front end."""
    return subprocess.run(
        [sys.executable, "-c", FAKE_FRONTEND, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(**env),
        timeout=120,
    )


def run_real(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m deconvlint ARGS``, exactly as users run it."""
    return run_cli(*args, cwd=cwd or REPO, env=cli_env(**env), timeout=120)


def model(folder: Path, name: str, chain: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chain + "\n", encoding="utf-8")
    return path


def headers(stdout: str) -> list[str]:
    """The finding header lines ``path:node: DLxxx [severity] ...`` (no indentation)."""
    return [line for line in stdout.splitlines() if " DL0" in line and not line.startswith(" ")]


def rules_found(stdout: str) -> list[str]:
    return [line.split(": ", 1)[1].split()[0] for line in headers(stdout)]


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """A temporary folder whose parents carry no deconvlint configuration of their own."""
    return tmp_path


# --- basics ----------------------------------------------------------------------------------


def test_version() -> None:
    proc = run_real("--version")
    assert proc.returncode == 0
    assert proc.stdout == "deconvlint 0.1.0\n"


def test_console_script_if_installed(tmp: Path) -> None:
    script = Path(sys.executable).with_name("deconvlint")
    if not script.exists():
        pytest.skip("deconvlint is not installed in this environment (pip install -e .)")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=tmp)
    assert (proc.returncode, proc.stdout) == (0, "deconvlint 0.1.0\n")


def test_flagged_model_exits_1_with_ruff_style_output(tmp: Path) -> None:
    model(tmp, "m.onnx", UNEVEN)
    proc = run_fake("m.onnx", cwd=tmp)
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("m.onnx:decoder.up1: DL001 [warning] uneven overlap"), first
    assert "  pattern: H [1, 2] x W [1, 2], period 2x2" in proc.stdout
    assert "  coverage: max 4, min 1, ratio 4, cv 0.4843" in proc.stdout
    assert "    1 2\n    2 4\n" in proc.stdout
    assert "  suggestion: " in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("Found ")
    assert proc.stderr == ""


def test_clean_model_exits_0(tmp: Path) -> None:
    model(tmp, "a.onnx", CLEAN)
    model(tmp, "b.onnx", CLEAN)
    proc = run_fake("a.onnx", "b.onnx", cwd=tmp)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "All checks passed (2 files).\n", "")


def test_summary_counts_severities(tmp: Path) -> None:
    model(tmp, "a.onnx", STACK)
    model(tmp, "b.onnx", COMPENSATED)
    proc = run_fake("a.onnx", "b.onnx", cwd=tmp)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "Found 4 findings (3 warnings, 1 info) in 2 files."


def test_no_paths_checks_the_current_folder(tmp: Path) -> None:
    model(tmp, "sub/m.onnx", UNEVEN)
    proc = run_fake(cwd=tmp)
    assert proc.returncode == 1
    assert headers(proc.stdout)[0].startswith(os.path.join("sub", "m.onnx") + ":decoder.up1:")


# --- inputs that cannot be checked -----------------------------------------------------------


def test_missing_path_exits_2(tmp: Path) -> None:
    proc = run_fake("nowhere.onnx", cwd=tmp)
    assert_one_line_error(proc, "nowhere.onnx: error: no such file")


def test_missing_path_fails_even_when_another_is_clean(tmp: Path) -> None:
    model(tmp, "ok.onnx", CLEAN)
    proc = run_fake("ok.onnx", "gone/", cwd=tmp)
    assert_one_line_error(proc, "gone", "no such file")
    assert "could not be analysed" in proc.stdout


def test_folder_without_models_exits_2(tmp: Path) -> None:
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("no models here\n")
    proc = run_fake("empty", cwd=tmp)
    assert_one_line_error(proc, "empty: error: no ONNX models")
    assert "All checks passed" not in proc.stdout


def test_no_paths_in_a_folder_without_models_exits_2(tmp: Path) -> None:
    proc = run_fake(cwd=tmp)
    assert_one_line_error(proc, "no ONNX models")


def test_folder_is_searched_recursively_sorted_skipping_hidden(tmp: Path) -> None:
    model(tmp, "models/b.onnx", UNEVEN)
    model(tmp, "models/a/z.onnx", UNEVEN)
    model(tmp, "models/a.onnx", UNEVEN)
    model(tmp, "models/.cache/hidden.onnx", "not even a chain")
    model(tmp, "models/venv/pyvenv.cfg", "home = /usr")
    model(tmp, "models/venv/lib/test_model.onnx", "not even a chain")
    (tmp / "models" / "readme.txt").write_text("ignored\n")
    proc = run_fake("models", cwd=tmp)
    assert proc.returncode == 1, proc.stderr
    paths = [line.split(":")[0] for line in headers(proc.stdout)]
    # sorted as paths, component by component (as sorted(pathlib.Path) does)
    expected = [os.path.join("models", *p) for p in (["a", "z.onnx"], ["a.onnx"], ["b.onnx"])]
    assert list(dict.fromkeys(paths)) == expected


def test_same_file_twice_is_checked_once(tmp: Path) -> None:
    model(tmp, "m.onnx", UNEVEN)
    once = run_fake("m.onnx", cwd=tmp)
    proc = run_fake("m.onnx", ".", "./m.onnx", cwd=tmp)
    assert proc.stdout == once.stdout


def test_unreadable_model_is_one_line_error(tmp: Path) -> None:
    model(tmp, "notes.onnx", "just some text")
    proc = run_fake("notes.onnx", cwd=tmp)
    assert_one_line_error(proc, "notes.onnx: error: not an ONNX model")


def test_front_end_crash_is_one_line_without_debug(tmp: Path) -> None:
    model(tmp, "m.onnx", "chain: CRASH")
    proc = run_fake("m.onnx", cwd=tmp)
    line = assert_one_line_error(proc, "m.onnx: error: internal error: ZeroDivisionError")
    assert "--debug" in line


def test_debug_shows_the_traceback(tmp: Path) -> None:
    model(tmp, "crash.onnx", "chain: CRASH")
    model(tmp, "text.onnx", "plain text")
    proc = run_fake("--debug", "crash.onnx", "text.onnx", cwd=tmp)
    assert proc.returncode == 2
    assert proc.stderr.count("Traceback (most recent call last)") == 2, proc.stderr
    assert "ZeroDivisionError" in proc.stderr and "LoadError" in proc.stderr
    assert "crash.onnx: error: internal error" in proc.stderr


def test_bad_option_is_one_line(tmp: Path) -> None:
    assert_one_line_error(run_fake("--no-such-flag", cwd=tmp), "deconvlint: error:", "--no-such")
    assert_one_line_error(run_fake("--fail-on", "loud", cwd=tmp), "--fail-on")
    assert_one_line_error(run_fake("--format", "xml", cwd=tmp), "--format")


def test_nothing_is_written_next_to_the_models(tmp: Path) -> None:
    model(tmp, "models/m.onnx", STACK)
    model(tmp, "models/bad.onnx", "garbage")
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    for args in (["models"], ["--format", "json", "models"], ["--statistics", "models"]):
        run_fake(*args, cwd=tmp)
    assert sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before


# --- rule selection and the fail level -------------------------------------------------------


def test_select_ignore_extend_select(tmp: Path) -> None:
    model(tmp, "m.onnx", STACK)
    assert sorted(set(rules_found(run_fake("m.onnx", cwd=tmp).stdout))) == ["DL001", "DL003"]
    # DL004 where nothing else explains the output: here, when only it is selected
    assert rules_found(run_fake("--select", "DL004", "m.onnx", cwd=tmp).stdout) == ["DL004"]
    assert set(rules_found(run_fake("--select", "DL001", "m.onnx", cwd=tmp).stdout)) == {"DL001"}
    proc = run_fake("--select", "DL003", "--extend-select", "DL001", "m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL001", "DL003"}
    proc = run_fake("--ignore", "DL001,DL004", "m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL003"}
    proc = run_fake("--ignore", "DL00", "m.onnx", cwd=tmp)  # a prefix, as in ruff
    assert (proc.returncode, proc.stdout) == (0, "All checks passed (1 file).\n")
    proc = run_fake("--select", "dl001, DL003", "m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL001", "DL003"}


def test_unknown_rule_on_the_command_line(tmp: Path) -> None:
    model(tmp, "m.onnx", UNEVEN)
    assert_one_line_error(run_fake("--select", "DL999", "m.onnx", cwd=tmp), "--select", "DL999")
    assert_one_line_error(run_fake("--ignore", "DL7", "m.onnx", cwd=tmp), "--ignore", "DL7")
    assert_one_line_error(
        run_fake("--extend-select", "XYZ", "m.onnx", cwd=tmp), "--extend-select", "XYZ"
    )


def test_fail_on(tmp: Path) -> None:
    model(tmp, "info.onnx", COMPENSATED)
    model(tmp, "warn.onnx", UNEVEN)
    model(tmp, "holes.onnx", HOLES)
    proc = run_fake("info.onnx", cwd=tmp)
    assert proc.returncode == 0, proc.stdout
    assert "[info]" in proc.stdout and "(1 info)" in proc.stdout
    assert run_fake("--fail-on", "info", "info.onnx", cwd=tmp).returncode == 1
    assert run_fake("--fail-on", "error", "warn.onnx", cwd=tmp).returncode == 0
    assert run_fake("--fail-on", "warning", "warn.onnx", cwd=tmp).returncode == 1
    assert run_fake("--fail-on", "error", "holes.onnx", cwd=tmp).returncode == 1


def test_error_in_one_input_wins_over_findings(tmp: Path) -> None:
    model(tmp, "warn.onnx", UNEVEN)
    model(tmp, "bad.onnx", "garbage")
    proc = run_fake("warn.onnx", "bad.onnx", cwd=tmp)
    assert proc.returncode == 2
    assert proc.stdout.splitlines()[-1] == (
        "Found 1 finding (1 warning) in 1 file; 1 file could not be analysed."
    )


# --- output options --------------------------------------------------------------------------


def test_statistics(tmp: Path) -> None:
    model(tmp, "a.onnx", STACK)
    model(tmp, "b.onnx", UNEVEN)
    proc = run_fake("--statistics", "a.onnx", "b.onnx", cwd=tmp)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert [line.split("\t") for line in lines[:3]] == [
        ["3", "DL001", "[warning]", "uneven-overlap"],
        ["1", "DL003", "[warning]", "stacked-uneven-overlap"],
        ["Found 4 findings (4 warnings) in 2 files."],
    ]
    assert lines[-1] == "Found 4 findings (4 warnings) in 2 files."
    assert not headers(proc.stdout)
    stats = json.loads(
        run_fake("--statistics", "--format", "json", "a.onnx", "b.onnx", cwd=tmp).stdout
    )
    assert stats[0] == {
        "rule": "DL001",
        "name": "uneven-overlap",
        "count": 3,
        "by_severity": {"warning": 3},
    }


def test_quiet(tmp: Path) -> None:
    model(tmp, "warn.onnx", UNEVEN)
    model(tmp, "clean.onnx", CLEAN)
    model(tmp, "bad.onnx", "garbage")
    proc = run_fake("-q", "warn.onnx", "clean.onnx", cwd=tmp)
    assert proc.returncode == 1
    assert proc.stdout.startswith("warn.onnx:decoder.up1: DL001")
    assert "Found" not in proc.stdout
    assert run_fake("--quiet", "clean.onnx", cwd=tmp).stdout == ""
    proc = run_fake("--quiet", "bad.onnx", cwd=tmp)
    assert proc.stdout == ""
    assert_one_line_error(proc, "bad.onnx: error:")


def test_json_matches_the_contract(tmp: Path) -> None:
    model(tmp, "a.onnx", STACK)
    model(tmp, "holes.onnx", HOLES)
    model(tmp, "bad.onnx", "garbage")
    proc = run_fake("--format", "json", "a.onnx", "holes.onnx", "bad.onnx", cwd=tmp)
    assert proc.returncode == 2
    assert proc.stdout.endswith("}\n")
    for word in ("NaN", "Infinity"):
        assert word not in proc.stdout
    data = json.loads(proc.stdout)
    assert set(data) == {"deconvlint", "results", "summary"}
    assert data["deconvlint"] == "0.1.0"
    assert [r["path"] for r in data["results"]] == ["a.onnx", "holes.onnx", "bad.onnx"]
    assert data["results"][2]["error"].startswith("not an ONNX model")
    assert data["summary"] == {
        "files": 3,
        "findings": len(data["results"][0]["findings"]) + len(data["results"][1]["findings"]),
        "errors": 1,
        "by_severity": data["summary"]["by_severity"],
    }
    finding = data["results"][0]["findings"][0]
    assert set(finding) >= {
        "rule",
        "name",
        "severity",
        "node",
        "op",
        "message",
        "metrics",
        "suggestions",
    }
    holes = next(f for f in data["results"][1]["findings"] if f["rule"] == "DL002")
    assert holes["metrics"]["ratio"] is None and holes["severity"] == "error"
    # the contract is json.dumps(report.to_dict(), indent=2): two-space indentation
    assert proc.stdout.startswith('{\n  "deconvlint": "0.1.0",\n')
    assert "bad.onnx: error:" in proc.stderr


# --- the catalogue ---------------------------------------------------------------------------


def test_explain() -> None:
    from deconvlint.rules.catalogue import load_catalogue

    proc = run_real("--explain", "DL001")
    assert proc.returncode == 0
    assert proc.stdout == load_catalogue()["DL001"].explain()
    assert proc.stdout.startswith("# uneven-overlap (DL001)")
    assert "## Why is this bad?" in proc.stdout
    assert run_real("--explain", "dl004").stdout == load_catalogue()["DL004"].explain()


def test_explain_unknown_rule() -> None:
    assert_one_line_error(run_real("--explain", "DL999"), "unknown rule", "DL999")


def test_list_rules() -> None:
    proc = run_real("--list-rules")
    assert proc.returncode == 0
    table = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    expected = {
        "DL001": ("uneven-overlap", "warning"),
        "DL002": ("coverage-holes", "error"),
        "DL003": ("stacked-uneven-overlap", "warning"),
        "DL004": ("output-coverage-variance", "warning"),
        "DL005": ("fractional-nearest-resize", "warning"),
        "DL006": ("strided-conv-gradient", "info"),
        "DL007": ("weight-phase-imbalance", "warning"),
        "DL008": ("subpixel-without-icnr", "info"),
        "DL009": ("measured-periodic-artifact", "warning"),
    }
    assert set(table) == set(expected)
    for rule_id, (name, severity) in expected.items():
        assert table[rule_id][1:3] == [name, severity]
        runs = {"DL006": "off", "DL007": "off", "DL009": "--probe"}.get(rule_id, "on")
        assert table[rule_id][3] == runs
    rules = json.loads(run_real("--list-rules", "--format", "json").stdout)
    assert [r["id"] for r in rules] == sorted(expected)


# --- configuration ---------------------------------------------------------------------------


def test_config_discovered_from_a_parent_folder(tmp: Path) -> None:
    (tmp / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.deconvlint]\nignore = ["DL004"]\n'
    )
    work = tmp / "a" / "b"
    model(work, "m.onnx", STACK)
    # a pyproject.toml without [tool.deconvlint] on the way up does not stop the search
    (tmp / "a" / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    proc = run_fake("m.onnx", cwd=work)
    assert set(rules_found(proc.stdout)) == {"DL001", "DL003"}


def test_yaml_config(tmp: Path) -> None:
    (tmp / ".deconvlint.yaml").write_text("select: [DL001]\nfail-on: error\n")
    model(tmp, "m.onnx", STACK)
    proc = run_fake("m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL001"}
    assert proc.returncode == 0  # warnings only, and fail-on: error


def test_yaml_wins_over_pyproject_in_the_same_folder(tmp: Path) -> None:
    (tmp / ".deconvlint.yaml").write_text("ignore: [DL001]\n")
    (tmp / "pyproject.toml").write_text('[tool.deconvlint]\nignore = ["DL003"]\n')
    model(tmp, "m.onnx", STACK)
    proc = run_fake("m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL003"}  # which explains the output (no DL004)
    assert "pyproject.toml: warning:" in proc.stderr and ".deconvlint.yaml" in proc.stderr
    assert run_fake("-q", "m.onnx", cwd=tmp).stderr == ""


def test_per_node_ignores_and_rule_options(tmp: Path) -> None:
    (tmp / "pyproject.toml").write_text(
        '[tool.deconvlint]\nextend-select = ["DL006"]\n\n'
        '[tool.deconvlint.per-node-ignores]\n"decoder.up1" = ["DL001"]\n"*.up2" = ["DL00"]\n\n'
        "[tool.deconvlint.DL004]\nmax-cv = 0.6\n"
    )
    model(tmp, "m.onnx", STACK)
    proc = run_fake("m.onnx", cwd=tmp)
    # decoder.up1: DL001 ignored; decoder.up2: everything ignored (DL003 and DL004 sit there)
    assert rules_found(proc.stdout) == []
    # DL004 alone (the layer rules would explain the output and fold it)
    only = '[tool.deconvlint]\nselect = ["DL004"]\n\n'
    (tmp / "pyproject.toml").write_text(only + "[tool.deconvlint.DL004]\nmax-cv = 0.5\n")
    assert "DL004" in rules_found(run_fake("m.onnx", cwd=tmp).stdout)  # cv 0.5386 > 0.5
    (tmp / "pyproject.toml").write_text(only + "[tool.deconvlint.DL004]\nmax-cv = 0.6\n")
    assert "DL004" not in rules_found(run_fake("m.onnx", cwd=tmp).stdout)


def test_flags_win_over_config(tmp: Path) -> None:
    (tmp / ".deconvlint.yaml").write_text("ignore: [DL001]\nfail-on: error\n")
    model(tmp, "m.onnx", UNEVEN)
    proc = run_fake("m.onnx", cwd=tmp)
    assert proc.returncode == 0 and "DL001" not in rules_found(proc.stdout)
    proc = run_fake("--select", "DL001", "m.onnx", cwd=tmp)
    assert rules_found(proc.stdout) == ["DL001"] and proc.returncode == 0
    proc = run_fake("--extend-select", "DL001", "--fail-on", "warning", "m.onnx", cwd=tmp)
    assert "DL001" in rules_found(proc.stdout) and proc.returncode == 1


def test_explicit_config_file_overrides_the_search(tmp: Path) -> None:
    (tmp / ".deconvlint.yaml").write_text("select: [DL001]\n")
    (tmp / "ci").mkdir()
    (tmp / "ci" / "strict.toml").write_text('[tool.deconvlint]\nselect = ["DL003"]\n')
    (tmp / "ci" / "plain.toml").write_text('select = ["DL004"]\n')
    model(tmp, "m.onnx", STACK)
    proc = run_fake("--config", "ci/strict.toml", "m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL003"}
    proc = run_fake("--config", "ci/plain.toml", "m.onnx", cwd=tmp)
    assert set(rules_found(proc.stdout)) == {"DL004"}
    assert_one_line_error(
        run_fake("--config", "ci/missing.yaml", "m.onnx", cwd=tmp),
        "ci/missing.yaml",
        "no such configuration file",
    )


@pytest.mark.parametrize(
    ("filename", "text", "needles"),
    [
        (
            "pyproject.toml",
            '[tool.deconvlint]\nselect = ["DL001"]\ncolour = true\n',
            ["pyproject.toml:3:", "tool.deconvlint.colour", "unknown key"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint]\n\nselect = ["DL001", "DL999"]\n',
            ["pyproject.toml:3:", "tool.deconvlint.select", "DL999"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint]\nignore = ["DL9"]\n',
            ["pyproject.toml:2:", "tool.deconvlint.ignore", "'DL9'"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint]\nselect = "DL001"\n',
            ["pyproject.toml:2:", "tool.deconvlint.select", "expected a list"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint]\nfail-on = "fatal"\n',
            ["pyproject.toml:2:", "tool.deconvlint.fail-on", "fatal"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint.per-node-ignores]\n"up*" = ["DL042"]\n',
            ["pyproject.toml:2:", 'per-node-ignores."up*"', "DL042"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint.DL004]\nmax-cv = "high"\n',
            ["pyproject.toml:2:", "tool.deconvlint.DL004.max-cv", "expected float"],
        ),
        (
            "pyproject.toml",
            "[tool.deconvlint.DL004]\nmin-cv = 0.1\n",
            ["pyproject.toml:2:", "tool.deconvlint.DL004.min-cv", "unknown option"],
        ),
        (
            "pyproject.toml",
            "[tool.deconvlint.DL077]\nmax-cv = 0.1\n",
            ["pyproject.toml:1:", "tool.deconvlint.DL077", "unknown rule"],
        ),
        (
            "pyproject.toml",
            '[tool.deconvlint]\nselect = ["DL001"\nignore = []\n',
            ["pyproject.toml:3:", "invalid TOML"],
        ),
        (
            ".deconvlint.yaml",
            "select: [DL001]\nDL004:\n  max-cv: yes\n",
            [".deconvlint.yaml:3:", "DL004.max-cv", "expected float"],
        ),
        (".deconvlint.yaml", "select: [DL001\nignore: []\n", [".deconvlint.yaml:", "invalid YAML"]),
        (
            ".deconvlint.yaml",
            "per-node-ignores:\n  decoder.*: DL001\n",
            [".deconvlint.yaml:2:", 'per-node-ignores."decoder.*"', "expected a list"],
        ),
        (".deconvlint.yaml", "- DL001\n", [".deconvlint.yaml:", "expected a table"]),
    ],
)
def test_config_errors_name_file_key_and_line(
    tmp: Path, filename: str, text: str, needles: list[str]
) -> None:
    (tmp / filename).write_text(text)
    model(tmp, "m.onnx", UNEVEN)
    line = assert_one_line_error(run_fake("m.onnx", cwd=tmp), *needles)
    assert line.startswith(filename)


def test_config_error_with_debug_shows_traceback(tmp: Path) -> None:
    (tmp / ".deconvlint.yaml").write_text("nonsense: 1\n")
    model(tmp, "m.onnx", UNEVEN)
    proc = run_fake("--debug", "m.onnx", cwd=tmp)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


# --- start-up cost and colour ----------------------------------------------------------------


def test_checking_never_imports_torch(tmp: Path) -> None:
    model(tmp, "m.onnx", STACK)
    proc = run_fake("m.onnx", cwd=tmp, DECONVLINT_TEST_MODULES="1")
    modules = proc.stderr.split("MODULES:", 1)[1].strip().split(",")
    assert "torch" not in modules and "deconvlint" in modules


def test_version_and_explain_import_nothing_heavy() -> None:
    code = (
        "import sys; from deconvlint.cli.main import main; main(['--version']);"
        "main(['--explain', 'DL001']); heavy = {'numpy', 'onnx', 'torch'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr


def _run_in_terminal(args: list[str], cwd: Path, **env: str) -> str:
    """Run the stand-in CLI with stdout on a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_FRONTEND, *args],
        cwd=cwd,
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=cli_env(**env),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_without_no_color(tmp: Path) -> None:
    model(tmp, "m.onnx", UNEVEN)
    assert "\033[" not in run_fake("m.onnx", cwd=tmp).stdout  # a pipe
    assert "\033[33m[warning]" in _run_in_terminal(["m.onnx"], tmp)
    assert "\033[" not in _run_in_terminal(["m.onnx"], tmp, NO_COLOR="1")


# --- end to end on real ONNX files -----------------------------------------------------------


def test_examples_are_deterministic_and_small(tmp: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "make_examples.py"), str(tmp)],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in tmp.glob("*.onnx"))
    assert names == ["clean_decoder.onnx", "cyclegan_decoder.onnx", "stylegan_blur.onnx"]
    for name in names:
        fresh = (tmp / name).read_bytes()
        assert len(fresh) < 64_000, (name, len(fresh))
        assert fresh == (EXAMPLES / name).read_bytes(), (
            f"examples/{name} is stale: run python examples/make_examples.py"
        )


def _broken_models(folder: Path) -> dict[str, Path]:
    from onnx import TensorProto, helper

    good = (EXAMPLES / "cyclegan_decoder.onnx").read_bytes()
    (folder / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (folder / "notes.onnx").write_text("this is not a model\n")
    (folder / "README.txt").write_text("hello\n")
    (folder / "empty.onnx").write_bytes(b"")
    # nonsense attributes: a transposed conv with stride 0 and a negative kernel
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"], name="up", kernel_shape=[-3, 3], strides=[0, 2]
    )
    graph = helper.make_graph(
        [node],
        "nonsense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, [2, 2, 3, 3], [0.0] * 36)],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (folder / "nonsense.onnx").write_bytes(model_proto.SerializeToString())
    return {p.name: p for p in folder.iterdir()}


@pytest.mark.parametrize(
    "name", ["truncated.onnx", "notes.onnx", "README.txt", "empty.onnx", "nonsense.onnx"]
)
def test_bad_onnx_input_is_one_line(tmp: Path, name: str) -> None:
    path = _broken_models(tmp)[name]
    for extra in ([], ["--format", "json"], ["--quiet"]):
        proc = run_real(*extra, str(path))
        line = assert_one_line_error(proc, f"{path}: error: ")
        assert "internal error" not in line, f"the front end should name the cause: {line}"
    debug = run_real("--debug", str(path))
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_examples_end_to_end() -> None:
    proc = run_real("examples/cyclegan_decoder.onnx")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = {(h.split(":")[1], h.split(": ", 1)[1].split()[0]) for h in headers(proc.stdout)}
    assert {("decoder.up1", "DL001"), ("decoder.up2", "DL001")} <= found
    assert "[warning]" in proc.stdout
    clean = run_real("examples/clean_decoder.onnx")
    assert (clean.returncode, clean.stdout) == (0, "All checks passed (1 file).\n")
    blur = run_real("examples/stylegan_blur.onnx")
    assert blur.returncode == 0, blur.stdout
    assert "synthesis.up" in blur.stdout and "[info]" in blur.stdout
    assert run_real("--fail-on", "info", "examples/stylegan_blur.onnx").returncode == 1


def test_examples_folder_json() -> None:
    proc = run_real("--format", "json", "examples")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert [r["path"] for r in data["results"]] == [
        "examples/clean_decoder.onnx",
        "examples/cyclegan_decoder.onnx",
        "examples/dcgan_generator.keras",
        "examples/make_examples.py",  # Python source is checked too (it builds no layer)
        "examples/make_keras_example.py",
        "examples/stylegan_blur.onnx",
    ]
    assert all(r["error"] is None for r in data["results"])
    assert "NaN" not in proc.stdout and "Infinity" not in proc.stdout


def test_checking_onnx_imports_neither_torch_nor_onnx() -> None:
    code = (
        "import sys; from deconvlint.cli.main import main; "
        "code = main(['examples/cyclegan_decoder.onnx', '-q']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; "
        "assert 'onnx' not in sys.modules, 'onnx was imported'; raise SystemExit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=REPO
    )
    assert proc.returncode == 1 and "Error" not in proc.stderr, proc.stderr
    timed = run_cli(
        "-q",
        "examples/cyclegan_decoder.onnx",
        python_options=("-X", "importtime"),
        env=cli_env(),
        cwd=REPO,
        timeout=None,
    )
    imported = [
        line.rsplit("|", 1)[1].strip()
        for line in timed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "deconvlint.cli.main" in imported and "google.protobuf" in imported
    assert "onnx" not in imported and "ml_dtypes" not in imported  # onnx's classes only
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")]


GOLDEN_FORMATS = {
    "text": "txt",
    "json": "json",
    "sarif": "sarif",
    "github": "github",
    "html": "html",
}
GOLDEN_ROOT = "file:///checkout/"


@pytest.mark.parametrize("output_format", sorted(GOLDEN_FORMATS))
@pytest.mark.parametrize("name", ["cyclegan_decoder", "clean_decoder", "stylegan_blur"])
def test_golden_output(name: str, output_format: str) -> None:
    """Every format's output for the shipped examples is byte-identical to its golden file."""
    proc = run_real("--format", output_format, f"examples/{name}.onnx")
    assert proc.returncode in (0, 1), proc.stderr
    # SARIF's %SRCROOT% is the working folder (the checkout): the one line that depends on
    # where the repository is, stored as GOLDEN_ROOT
    output = proc.stdout.replace(json.dumps(REPO.as_uri() + "/"), json.dumps(GOLDEN_ROOT))
    golden = GOLDEN / f"{name}.{GOLDEN_FORMATS[output_format]}"
    if os.environ.get("DECONVLINT_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(output.encode("utf-8"))
    assert golden.exists(), f"{golden} is missing: run DECONVLINT_UPDATE_GOLDEN=1 pytest"
    assert output == golden.read_bytes().decode("utf-8"), (
        f"{output_format} output of examples/{name}.onnx changed; if that is intended, "
        "regenerate with DECONVLINT_UPDATE_GOLDEN=1 python -m pytest tests/cli/test_cli.py"
    )


def test_readme_sample_output_is_real() -> None:
    """The README's sample output is the golden output of the same command."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = "$ deconvlint examples/cyclegan_decoder.onnx\n"
    assert command in readme
    sample = readme.split(command, 1)[1].split("```", 1)[0]
    assert sample == (GOLDEN / "cyclegan_decoder.txt").read_text(), (
        "README.md's sample output is stale: paste tests/golden/cyclegan_decoder.txt into it"
    )

"""Hostile configuration files: one line naming the file (and the line), exit 2, never a hang.

Also: the JSON and SARIF reports are byte-identical from run to run and with any ``-j``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import REPO, run_cli

CLEAN = REPO / "examples" / "clean_decoder.onnx"


def laughs(key: str) -> str:
    """ "Billion laughs": ten lines that expand to 9**10 items through aliases."""
    text = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
    for i in range(9):
        prev, name = chr(97 + i), chr(98 + i)
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text + f"{key}: *j\n"


CASES = [
    (".deconvlint.yaml", laughs("select"), ".deconvlint.yaml:2: error: invalid YAML: aliases"),
    (".deconvlint.yaml", "select: " + "[" * 5000 + "]" * 5000, ":1: error: invalid YAML: nested"),
    ("pyproject.toml", "[tool.deconvlint]\nselect = " + "[" * 5000 + "]" * 5000, "nested too"),
    (".deconvlint.yaml", "DL004: {max-cv: 1" + "0" * 5000 + "}\n", ":1: error: invalid YAML"),
    (
        "pyproject.toml",
        "[tool.deconvlint.DL004]\nmax-cv = 1" + "0" * 5000,
        ":2: error: invalid TOML",
    ),
    (".deconvlint.yaml", "DL004: {max-cv: .nan}\n", ":1: error: DL004.max-cv: expected a finite"),
    (".deconvlint.yaml", "DL004: {max-cv: -1}\n", ":1: error: DL004.max-cv: expected a finite"),
    (
        "pyproject.toml",
        "[tool.deconvlint.DL004]\nmax-cv = inf\n",
        ":2: error: tool.deconvlint.DL004",
    ),
    (".deconvlint.yaml", "select:\n\t- DL001\n", ":2: error: invalid YAML"),
    (".deconvlint.yaml", "select: [DL001]\nselect: [DL002]\n", ":2: error: invalid YAML: key 'sel"),
    (".deconvlint.yaml", "select: [1, 2]\n", ":1: error: select: expected a list of rule ids"),
    (".deconvlint.yaml", "select:\n", ":1: error: select: expected a list of rule ids"),
    (".deconvlint.yaml", "fail-on: [warning]\n", ":1: error: fail-on: expected one of"),
    (
        ".deconvlint.yaml",
        "models: [{target: a.b:c, input-shape: [1, -3]}]\n",
        ":1: error: models[0]",
    ),
    (".deconvlint.yaml", b"\xff\xfe\x00select: [DL001]", "error: cannot read configuration"),
]


@pytest.mark.parametrize(("filename", "text", "needle"), CASES)
def test_hostile_config_is_one_line(tmp_path: Path, filename: str, text, needle: str) -> None:
    config = tmp_path / filename
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text)
    proc = run_cli(str(CLEAN), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(filename) and needle in line, line
    assert "internal error" not in line


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_output_is_byte_identical_from_run_to_run_and_with_any_jobs(
    tmp_path: Path, fmt: str
) -> None:
    """Same inputs, same bytes, whatever the hash seed and the job count: the examples and an
    unreadable file, torch-free each time."""
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x08\x3a\xff")
    args = ["--format", fmt, str(REPO / "examples"), str(tmp_path / "broken.onnx")]
    outputs = set()
    for seed, jobs in (("0", "1"), ("1", "2"), ("random", "1"), ("random", "2")):
        proc = run_cli(
            *args, "-j", jobs, text=False, timeout=120, env={"PYTHONHASHSEED": seed, "PATH": ""}
        )
        assert proc.returncode == 2, proc.stderr
        outputs.add(proc.stdout)
    assert len(outputs) == 1

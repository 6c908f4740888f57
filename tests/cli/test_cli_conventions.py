"""ruff's spellings and the small conventions of the command line: aliases, colour, names in
--explain, error lines that name their input, plurals, the progress bar's width."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

import deconvlint
from deconvlint import __version__
from deconvlint.cli.parallel import Progress
from deconvlint.errors import LoadError
from tests.support.cli import REPO, cli_env, run_cli

CYCLEGAN = "examples/cyclegan_decoder.onnx"


def run(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, env=cli_env(repo_on_path=False, **env))


def test_ruff_spellings_are_aliases(tmp_path: Path) -> None:
    assert run("-V").stdout == f"deconvlint {__version__}\n"
    assert (
        run("--output-format", "json", CYCLEGAN).stdout == run("--format", "json", CYCLEGAN).stdout
    )
    for flag in ("-o", "--output-file", "--output"):
        target = tmp_path / f"{flag.strip('-')}.json"
        proc = run("--output-format", "json", flag, str(target), CYCLEGAN)
        assert proc.returncode == 1 and target.read_text().startswith("{"), proc.stderr
    assert run("--explain", "uneven-overlap").stdout == run("--explain", "DL001").stdout
    proc = run("--explain", "no-such-rule")
    assert proc.returncode == 2 and "unknown rule 'no-such-rule'" in proc.stderr


def test_color_flag_and_force_color() -> None:
    ansi = "\033["
    assert ansi not in run(CYCLEGAN).stdout  # a pipe: no colour
    assert ansi in run(CYCLEGAN, FORCE_COLOR="1").stdout
    assert ansi not in run(CYCLEGAN, FORCE_COLOR="1", NO_COLOR="1").stdout
    assert ansi in run("--color", "always", CYCLEGAN, NO_COLOR="1").stdout
    assert ansi not in run("--color", "never", CYCLEGAN, FORCE_COLOR="1").stdout


def test_api_load_error_names_the_path() -> None:
    with pytest.raises(LoadError) as raised:
        deconvlint.check("no/such/model.onnx")
    assert str(raised.value) == "no/such/model.onnx: file not found"


def test_a_missing_module_target_is_not_called_a_file(tmp_path: Path) -> None:
    proc = run("nosuch.module:Thing", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("nosuch.module:Thing: error: cannot import nosuch.module")
    assert proc.stdout == "No input could be analysed (1 error).\n"


def test_wrong_input_shape_states_the_torch_error_once() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3))
    with pytest.raises(deconvlint.errors.TraceError) as raised:
        deconvlint.check(model, torch.randn(1, 4, 8, 8))
    text = str(raised.value)
    assert text.count("expected input[1, 4, 8, 8]") == 1, text
    assert text.startswith("could not read the model: hooks, fx, export: the model does not run")


def test_a_top_level_function_has_one_colon() -> None:
    torch = pytest.importorskip("torch")

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

        def forward(self, x):
            return torch.tanh(self.up(x))

    report = deconvlint.check(Decoder(), torch.randn(1, 4, 8, 8), select="DL004")
    assert [f.node for f in report.findings] == ["tanh"]
    assert str(report).startswith("<Decoder>:tanh: DL004 [warning]")


def test_progress_bar_on_a_terminal_that_reports_zero_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def fileno(self) -> int:
            return 2

    monkeypatch.setattr(os, "get_terminal_size", lambda *a: os.terminal_size((0, 0)))
    monkeypatch.delenv("COLUMNS", raising=False)
    stream = Terminal()
    progress = Progress(3, stream=stream)
    progress.advance("models/" + "x" * 200 + ".onnx")
    line = stream.getvalue().removeprefix("\r\033[K")
    assert 0 < len(line) <= 79, repr(line)
    monkeypatch.setenv("COLUMNS", "40")
    stream = Terminal()
    Progress(3, stream=stream).advance("m.onnx" * 20)
    assert len(stream.getvalue().removeprefix("\r\033[K")) == 39


def test_a_closed_standard_output_is_one_error_line_unless_the_report_goes_to_a_file(
    tmp_path: Path,
) -> None:
    """``deconvlint ... >&-`` (no stdout at all, so ``sys.stdout`` is None) was an internal
    error about ``isatty``; the findings have nowhere to go, so it says so, exit 2."""

    def closed(*args: str) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=REPO, env=cli_env(), preexec_fn=lambda: os.close(1))

    proc = closed("examples/cyclegan_decoder.onnx")
    assert (proc.returncode, proc.stderr) == (
        2,
        "deconvlint: error: standard output is closed; write the report with -o FILE\n",
    )
    report = tmp_path / "report.json"
    proc = closed("--format", "json", "-o", str(report), "examples/cyclegan_decoder.onnx")
    assert (proc.returncode, proc.stderr) == (1, "")
    assert '"DL001"' in report.read_text(encoding="utf-8")

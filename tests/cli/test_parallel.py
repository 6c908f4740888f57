"""Many models at once: ``-j N`` keeps the input order and the output, a broken file or a dying
worker never stops the others, torch targets run in the main process, a progress bar only on a
terminal; ``--output``, ``--report`` and ``--exit-zero``."""

from __future__ import annotations

import functools
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from deconvlint.cli.parallel import Progress, check_in_order, wants_progress
from deconvlint.frontends.target import ModelSpec
from deconvlint.report import FileResult
from tests.support.cli import REPO, run_cli
from tests.support.onnx_factory import write_many_models


def deconvlint(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 generated models, with a truncated one and a text file in the middle."""
    root = tmp_path_factory.mktemp("many")
    paths = write_many_models(root, 12)
    (root / "model_005b.onnx").write_bytes(paths[5].read_bytes()[:40])
    (root / "model_007b.onnx").write_text("not a model\n")
    return root


# --- check_in_order, in this process -------------------------------------------------------


def echo(spec: ModelSpec, die_on: str = "") -> FileResult:
    """A stand-in check: the worker's pid as the error; os._exit kills the worker on request."""
    if die_on and spec.target.endswith(die_on):
        os._exit(9)
    return FileResult(spec.target, error=f"pid {os.getpid()}")


def test_order_is_the_input_order_and_workers_do_the_work() -> None:
    specs = [ModelSpec(f"m{i}.onnx") for i in range(20)]
    done = check_in_order(specs, echo, jobs=2)
    assert [r.path for r in done] == [s.target for s in specs]
    assert {r.error for r in done} != {f"pid {os.getpid()}"}  # not all in this process


def test_in_process_specs_and_ready_results_keep_their_place() -> None:
    inputs = [
        ModelSpec("a.onnx"),
        FileResult("missing.onnx", error="no such file or folder"),
        ModelSpec("pkg.models:G"),
        ModelSpec("b.onnx"),
    ]
    done = check_in_order(inputs, echo, jobs=2, in_process=lambda s: ":" in s.target)
    assert [r.path for r in done] == ["a.onnx", "missing.onnx", "pkg.models:G", "b.onnx"]
    assert done[1].error == "no such file or folder"
    assert done[2].error == f"pid {os.getpid()}"


def test_a_dying_worker_costs_only_its_own_file() -> None:
    specs = [ModelSpec(f"m{i}.onnx") for i in range(20)]  # batches of two files
    run = functools.partial(echo, die_on="m13.onnx")
    done = check_in_order(specs, run, jobs=2)
    assert [r.path for r in done] == [s.target for s in specs]
    assert "the process checking this file died" in done[13].error
    assert all(r.error.startswith("pid ") for i, r in enumerate(done) if i != 13)


def test_one_job_runs_everything_here() -> None:
    done = check_in_order([ModelSpec("a.onnx"), ModelSpec("b.onnx")], echo, jobs=1)
    assert {r.error for r in done} == {f"pid {os.getpid()}"}


class _Terminal:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_bar() -> None:
    stream = _Terminal()
    bar = Progress(4, stream)  # type: ignore[arg-type]
    for name in "abcd":
        bar.advance(f"{name}.onnx")
    bar.close()
    assert "[" + "#" * 15 + "." * 15 + "] 2/4 b.onnx" in stream.text
    assert stream.text.endswith("\r\033[K")  # the line is cleared at the end
    assert wants_progress(6, stream) and not wants_progress(5, stream)  # type: ignore[arg-type]
    quiet = _Terminal()
    Progress(9, quiet, enabled=False).advance("x")  # type: ignore[arg-type]
    assert quiet.text == ""


# --- the command line -----------------------------------------------------------------------


def test_jobs_do_not_change_the_output(folder: Path) -> None:
    serial = deconvlint(str(folder), "--format", "json", "-j", "1")
    parallel = deconvlint(str(folder), "--format", "json", "-j", "2")
    assert serial.returncode == parallel.returncode == 2  # the two broken files
    assert serial.stdout == parallel.stdout
    assert serial.stderr == parallel.stderr
    results = json.loads(parallel.stdout)["results"]
    names = [Path(r["path"]).name for r in results]
    assert names == sorted(p.name for p in folder.glob("*.onnx"))
    broken = [Path(r["path"]).name for r in results if r["error"]]
    assert broken == ["model_005b.onnx", "model_007b.onnx"]
    assert sum(len(r["findings"]) for r in results) > 12  # the others were all checked
    assert len(parallel.stderr.splitlines()) == 2  # one line per broken file


def test_no_progress_bar_on_a_pipe(folder: Path) -> None:
    proc = deconvlint(str(folder), "-q", "-j", "2", "--exit-zero")
    assert "[#" not in proc.stderr and "\r" not in proc.stderr


def test_progress_bar_on_a_terminal(folder: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deconvlint", str(folder), "--statistics", "-j", "2"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert f"] 14/14 {folder}" in shown
    assert "\r\033[K" in shown


def test_output_file_and_summary_on_the_terminal(tmp_path: Path) -> None:
    out = tmp_path / "deconvlint.sarif"
    proc = deconvlint("examples", "--format", "sarif", "--output", str(out))
    assert proc.returncode == 1
    # the ONNX examples, the Keras one (two DL001, one DL003) and the two scripts
    assert proc.stdout == "Found 7 findings (6 warnings, 1 info) in 6 files.\n"
    assert len(json.loads(out.read_text())["runs"][0]["results"]) == 7
    quiet = deconvlint("examples", "--format", "json", "--output", str(out), "-q")
    assert quiet.stdout == ""
    assert json.loads(out.read_text())["summary"]["findings"] == 7


def test_output_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    proc = deconvlint("examples", "--output", str(tmp_path / "missing" / "out.txt"))
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert (
        line
        == f"{tmp_path / 'missing' / 'out.txt'}: error: --output: cannot write the file: No such file or directory"
    )


def test_exit_zero(tmp_path: Path) -> None:
    assert deconvlint("examples", "--exit-zero", "-q").returncode == 0
    (tmp_path / "bad.onnx").write_bytes(b"x")
    assert deconvlint("examples", str(tmp_path / "bad.onnx"), "--exit-zero").returncode == 2


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_jobs_is_one_line(value: str) -> None:
    proc = deconvlint("examples", "-j", value)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "argument -j/--jobs: expected a positive number of processes" in line


MODELS_PY = """\
from torch import nn


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, 2, 1, 1)

    def forward(self, x):
        print("the model prints")
        return self.up(x)
"""


@pytest.mark.torch
@pytest.mark.slow
def test_torch_targets_among_files_keep_their_place(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models.py").write_text(MODELS_PY)
    models = tmp_path / "models"
    write_many_models(models, 4)
    first, *rest = sorted(str(p.relative_to(tmp_path)) for p in models.glob("*.onnx"))
    args = [first, "pkg.models:Generator", *rest, "--input-shape", "1,4,8,8", "--format", "json"]
    serial = deconvlint(*args, "-j", "1", cwd=tmp_path)
    parallel = deconvlint(*args, "-j", "2", cwd=tmp_path)
    assert serial.stdout == parallel.stdout, parallel.stderr
    paths = [r["path"] for r in json.loads(parallel.stdout)["results"]]
    assert paths == [first, "pkg.models:Generator", *rest]
    torch_result = json.loads(parallel.stdout)["results"][1]
    assert torch_result["findings"][0]["source"] == "pkg/models.py:7"
    assert "the model prints" in parallel.stderr

"""The command line on torch models, run as a subprocess the way users run it.

A tiny package (``pkg/models.py``: a ``Generator`` class with an uneven
``ConvTranspose2d(k=3, s=2, p=1, op=1)``, a factory, an instance) is written to a temporary
folder, and every run starts there with ``python -P -m deconvlint``: ``-P`` keeps Python from
putting the current folder on ``sys.path``, as a console script does not either, so the tests see
deconvlint put it there itself.

Tests that trace a module wait on the torch front end (``deconvlint/frontends/torch/load.py``) and
skip until it exists; the TorchScript route, the refusals and the errors do not need it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import REPO, cli_env, run_cli

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed (pip install torch==2.13.0)",
)
pytestmark = [pytest.mark.torch, needs_torch]

MODELS_PY = '''\
"""A tiny generator package for deconvlint's tests."""

from collections import OrderedDict

from torch import nn


class Generator(nn.Module):
    def __init__(self, channels: int = 4, kernel_size: int = 3) -> None:
        super().__init__()
        output_padding = 1 if kernel_size == 3 else 0
        up1 = nn.ConvTranspose2d(channels, channels, kernel_size, 2, 1, output_padding)
        self.decoder = nn.Sequential(OrderedDict(up1=up1, act=nn.ReLU()))

    def forward(self, x):
        return self.decoder(x)


def make_generator(kernel_size: int = 3) -> nn.Module:
    return Generator(kernel_size=kernel_size)


generator = Generator()


def broken_factory() -> nn.Module:
    raise ValueError("no weights for this variant")


def not_a_model() -> int:
    return 42
'''
UP1_LINE = (
    MODELS_PY.splitlines().index(
        "        up1 = nn.ConvTranspose2d(channels, channels, kernel_size, 2, 1, output_padding)"
    )
    + 1
)
SHAPE = ("--input-shape", "1,4,8,8")

# Written from the project folder, so that pickles name the class pkg.models.Generator.
SAVE_FILES = """
import torch
from pkg.models import Generator
model = Generator().eval()
example = (torch.randn(1, 4, 8, 8),)
torch.export.save(torch.export.export(model, example), "gen.pt2")
torch.jit.script(model).save("gen_script.pt")
torch.save(model, "gen_full.pt")
torch.save(model.state_dict(), "gen_weights.pt")
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``deconvlint ARGS`` in ``cwd``, without Python's own current-folder entry on sys.path."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return run_cli(*args, cwd=cwd, env=cli_env(), timeout=180, python_options=safe_path)


def write_package(folder: Path) -> Path:
    (folder / "pkg").mkdir(parents=True, exist_ok=True)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "models.py").write_text(MODELS_PY)
    return folder


def headers(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " DL0" in line and not line.startswith(" ")]


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip().splitlines()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package, and the files torch writes of its Generator (made once, only read)."""
    folder = write_package(tmp_path_factory.mktemp("project"))
    made = subprocess.run(
        [sys.executable, "-c", SAVE_FILES], cwd=folder, capture_output=True, text=True, timeout=180
    )
    assert made.returncode == 0, made.stderr
    return folder


# --- module targets ------------------------------------------------------------------------


def test_class_factory_and_instance(project: Path) -> None:
    targets = ("pkg.models:Generator", "pkg.models:make_generator", "pkg.models:generator")
    proc = run(*targets, *SHAPE, cwd=project)
    assert proc.returncode == 1, proc.stderr
    found = headers(proc.stdout)
    for target in targets:
        expected = f"{target}:decoder.up1: DL001 [warning] uneven overlap"
        assert any(line.startswith(expected) for line in found), (expected, found)
    assert f"defined at: {os.path.join('pkg', 'models.py')}:{UP1_LINE}" in proc.stdout or (
        f"models.py:{UP1_LINE}" in proc.stdout
    ), proc.stdout


def test_json_path_is_the_target_and_findings_carry_their_source(project: Path) -> None:
    proc = run("pkg.models:Generator", *SHAPE, "--format", "json", cwd=project)
    assert proc.returncode == 1, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["path"] == "pkg.models:Generator" and result["error"] is None
    up1 = [f for f in result["findings"] if f["node"] == "decoder.up1" and f["rule"] == "DL001"]
    assert up1 and up1[0]["source"].endswith(f"models.py:{UP1_LINE}"), up1


def test_target_errors_are_one_line_each(project: Path) -> None:
    proc = run(
        "nopkg.models:Generator",
        "pkg.models:Missing",
        "pkg.models:broken_factory",
        "pkg.models:not_a_model",
        "pkg/models.py:Generator",
        *SHAPE,
        cwd=project,
    )
    assert error_lines(proc) == [
        "nopkg.models:Generator: error: cannot import nopkg.models: ModuleNotFoundError: "
        "No module named 'nopkg'",
        "pkg.models:Missing: error: module pkg.models has no attribute 'Missing'",
        "pkg.models:broken_factory: error: broken_factory() raised ValueError: "
        "no weights for this variant",
        "pkg.models:not_a_model: error: not_a_model() returned int, not a torch.nn.Module",
        "pkg/models.py:Generator: error: no such file or folder, nor a "
        "package.module:attribute target",
    ]


def test_debug_shows_the_traceback_of_the_factory(project: Path) -> None:
    proc = run("--debug", "pkg.models:broken_factory", cwd=project)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "ValueError: no weights for this variant" in proc.stderr


def test_trace_failure_is_one_line(project: Path) -> None:
    proc = run("pkg.models:Generator", "--input-shape", "1,3,8,8", cwd=project)
    (line,) = error_lines(proc)
    assert line.startswith("pkg.models:Generator: error: "), line


def test_bad_input_shape_flag_is_one_line(project: Path) -> None:
    proc = run("pkg.models:Generator", "--input-shape", "1x4x8x8", cwd=project)
    (line,) = error_lines(proc)
    assert "--input-shape" in line and "1,3,64,64" in line


# --- models listed in the configuration ------------------------------------------------------

PYPROJECT = """\
[project]
name = "pkg"

[tool.deconvlint]
ignore = ["DL004"]

[[tool.deconvlint.models]]
target = "pkg.models:Generator"
input-shape = [1, 4, 8, 8]

[[tool.deconvlint.models]]
target = "pkg.models:Generator"
kwargs = { kernel_size = 4 }
input-shape = [1, 4, 8, 8]
"""


def test_configured_models_and_nothing_else_when_no_path_is_given(tmp_path: Path) -> None:
    write_package(tmp_path)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "broken.onnx").write_text("not a model: checking it would fail the run\n")
    proc = run("--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    uneven, clean = json.loads(proc.stdout)["results"]
    assert uneven["path"] == clean["path"] == "pkg.models:Generator"
    assert [(f["node"], f["rule"]) for f in uneven["findings"]] == [("decoder.up1", "DL001")]
    assert clean["findings"] == [] and clean["error"] is None


def test_models_flag_from_a_subfolder_with_yaml(tmp_path: Path) -> None:
    write_package(tmp_path)
    (tmp_path / ".deconvlint.yaml").write_text(
        "ignore: [DL004]\nmodels:\n  - target: pkg.models:make_generator\n"
        "    kwargs: {kernel_size: 3}\n    input-shape: [1, 4, 8, 8]\n"
    )
    (tmp_path / "sub").mkdir()
    proc = run("--models", cwd=tmp_path / "sub")
    assert proc.returncode == 1, proc.stderr
    assert [line.split(" [")[0] for line in headers(proc.stdout)] == [
        "pkg.models:make_generator:decoder.up1: DL001"
    ]


def test_models_table_errors_and_models_flag_without_models(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.deconvlint.models]]\ntarget = "pkg.models:Generator"\ninput-shape = [1, 4, 0]\n'
    )
    (line,) = error_lines(run(cwd=tmp_path))
    assert line.startswith(
        "pyproject.toml:3: error: tool.deconvlint.models[0].input-shape: expected a list of "
        "positive integers"
    ), line
    (tmp_path / "pyproject.toml").write_text('[tool.deconvlint]\nignore = ["DL006"]\n')
    (line,) = error_lines(run("--models", cwd=tmp_path))
    assert line.startswith(
        "deconvlint: error: --models: the configuration (pyproject.toml) lists no models"
    ), line


# --- torch files -----------------------------------------------------------------------------


def test_exported_program(project: Path) -> None:
    proc = run("gen.pt2", cwd=project)
    assert proc.returncode == 1, proc.stderr
    assert headers(proc.stdout)[0].startswith("gen.pt2:decoder.up1: DL001 [warning]")


def test_torchscript_archive(project: Path) -> None:
    # TorchScript is code that runs as it loads: only with the flag
    (refused,) = error_lines(run("gen_script.pt", *SHAPE, cwd=project))
    assert refused.startswith("gen_script.pt: error: a TorchScript archive, not loaded"), refused
    assert "--trust-pickle" in refused
    proc = run("--trust-pickle", "gen_script.pt", *SHAPE, cwd=project)
    assert proc.returncode == 1, proc.stderr
    assert headers(proc.stdout)[0].startswith("gen_script.pt:decoder.up1: DL001 [warning]")
    (line,) = error_lines(run("--trust-pickle", "gen_script.pt", cwd=project))
    assert line.startswith("gen_script.pt: error: a TorchScript model needs example inputs")
    assert "--input-shape" in line


def test_pickles_are_refused_and_a_state_dict_is_not_a_model(project: Path) -> None:
    full, weights = error_lines(run("gen_full.pt", "gen_weights.pt", cwd=project))
    assert full.startswith("gen_full.pt: error: a pickled Python object"), full
    assert "unpickling runs arbitrary code" in full and "--trust-pickle" in full
    assert weights.startswith(
        "gen_weights.pt: error: holds only tensors and plain data (a state_dict"
    ), weights
    assert "not a model" in weights


def test_trust_pickle_loads_a_whole_model_but_never_a_state_dict(project: Path) -> None:
    proc = run("--trust-pickle", "gen_full.pt", "gen_weights.pt", *SHAPE, cwd=project)
    assert proc.returncode == 2
    assert headers(proc.stdout)[0].startswith("gen_full.pt:decoder.up1: DL001 [warning]")
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("gen_weights.pt: error: holds only tensors"), line


def test_onnx_and_refused_pickles_never_import_torch(project: Path, tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "cyclegan_decoder.onnx", tmp_path / "decoder.onnx")
    for name in ("gen_full.pt", "gen_weights.pt", "gen_script.pt"):
        shutil.copy(project / name, tmp_path)
    code = (
        "import sys; from deconvlint.cli.main import main\n"
        "assert main(['decoder.onnx', '--input-shape', '1,3,8,8', '-q']) == 1\n"
        "assert main(['gen_full.pt', 'gen_weights.pt', 'gen_script.pt', '-q']) == 2\n"
        "assert main(['--models', 'decoder.onnx', '-q']) == 2  # no models listed\n"
        "heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=cli_env()
    )
    assert proc.returncode == 0, proc.stderr


# --- the pre-commit hook for configured models -------------------------------------------------


def _pre_commit() -> str | None:
    return shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
        "pre-commit"
    )


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
@pytest.mark.skipif(
    _pre_commit() is None,
    reason="pre-commit is not installed (pip install pre-commit); .ci/run installs it",
)
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_models_hook_with_pre_commit_try_repo(tmp_path: Path) -> None:
    # The hook is `language: system`: it runs the deconvlint of the user's environment, where
    # the models import.  Here that environment is this Python with the repo on its path.
    hook_repo = tmp_path / "hook-repo"
    hook_repo.mkdir()
    shutil.copy(REPO / ".pre-commit-hooks.yaml", hook_repo)
    _git("init", "-q", cwd=hook_repo)
    _git("add", "-A", cwd=hook_repo)
    _git("commit", "-q", "-m", "hooks", cwd=hook_repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "deconvlint"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m deconvlint "$@"\n')
    script.chmod(0o755)
    env = cli_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-cache")

    for kernel_size, expected in ((3, 1), (4, 0)):
        project = write_package(tmp_path / f"project-k{kernel_size}")
        (project / "pyproject.toml").write_text(
            '[[tool.deconvlint.models]]\ntarget = "pkg.models:make_generator"\n'
            f"kwargs = {{ kernel_size = {kernel_size} }}\ninput-shape = [1, 4, 8, 8]\n"
        )
        (project / "notes.txt").write_text("not Python; the hook ignores it\n")
        _git("init", "-q", cwd=project)
        _git("add", "-A", cwd=project)
        proc = subprocess.run(
            [_pre_commit(), "try-repo", str(hook_repo), "deconvlint-models", "--all-files"],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == expected, output
        if expected:
            assert "pkg.models:make_generator:decoder.up1: DL001" in output, output

"""The README's pre-commit block, pasted as it stands into a fresh repository, runs both hooks
with real pre-commit: with no configuration (the models hook passes quietly), and with a
configured torch model, clean and uneven."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deconvlint import __version__
from tests.source.test_source_cli import _git, _pre_commit, _snapshot
from tests.support.cli import REPO, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## pre-commit\n", 1)[1].split("\n## ", 1)[0]
BLOCK = re.search(r"```yaml\n(.*?)```", SECTION, flags=re.S).group(1)
URL = "<this repository's URL>"

MODEL = """\
import torch.nn as nn


def make(kernel_size=4):
    return nn.Sequential(
        nn.ConvTranspose2d(4, 4, kernel_size, stride=2, padding=1, output_padding=kernel_size % 2)
    )
"""


def test_the_block_names_a_tag_of_this_version_and_both_hooks() -> None:
    assert URL in BLOCK
    assert re.search(r"^\s+rev: (\S+)$", BLOCK, flags=re.M).group(1) == f"v{__version__}"
    assert re.findall(r"- id: (\S+)", BLOCK) == ["deconvlint", "deconvlint-models"]


def test_models_hook_command_passes_quietly_without_models(tmp_path: Path) -> None:
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    entry = re.search(r"entry: (deconvlint --models.*)", hooks).group(1).split()
    proc = run_cli(*entry[1:], cwd=tmp_path, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    (tmp_path / "a.py").write_text("x = 1\n")  # nothing else is checked either
    proc = run_cli(*entry[1:], cwd=tmp_path, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    # without the flag, an explicit --models that finds none is still an error
    proc = run_cli("--models", cwd=tmp_path, text=False, timeout=None)
    assert proc.returncode == 2


@pytest.mark.slow
@pytest.mark.skipif(
    _pre_commit() is None,
    reason="pre-commit is not installed (pip install pre-commit); .ci/run installs it",
)
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_readme_block_works_as_pasted(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    hook_repo = tmp_path / "deconvlint"
    _snapshot(hook_repo)
    _git("tag", f"v{__version__}", cwd=hook_repo)  # what a release does
    project = tmp_path / "project"
    project.mkdir()
    (project / ".pre-commit-config.yaml").write_text(BLOCK.replace(URL, str(hook_repo)))
    (project / "net.py").write_text(MODEL)
    _git("init", "-q", cwd=project)
    _git("add", "-A", cwd=project)
    # the system hook runs the deconvlint of the environment pre-commit runs in (this one)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-cache")

    def pre_commit() -> subprocess.CompletedProcess:
        return subprocess.run(
            [_pre_commit(), "run", "--all-files"],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    proc = pre_commit()  # no configuration: both hooks pass
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"^deconvlint\.+Passed$", output, flags=re.M), output
    assert re.search(r"^deconvlint \(configured torch models\)\.+Passed$", output, flags=re.M)

    for kernel_size, expected in ((4, 0), (3, 1)):
        (project / "pyproject.toml").write_text(
            '[[tool.deconvlint.models]]\ntarget = "net:make"\n'
            f"kwargs = {{ kernel_size = {kernel_size} }}\ninput-shape = [1, 4, 8, 8]\n"
        )
        _git("add", "-A", cwd=project)
        proc = pre_commit()
        output = proc.stdout + proc.stderr
        assert proc.returncode == expected, output
        if expected:
            assert "net:make:0: DL001 [warning]" in output, output

"""What users install: the wheel (with the rule catalogue inside) and the pre-commit hook.

Both tests are ``slow``: they build the project and install it into fresh environments from PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support.cli import REPO

RULE_FILES = sorted(p.name for p in (REPO / "rules").glob("DL*.yaml"))


def _clean_env() -> dict[str, str]:
    """The environment without anything that would let the repo's own code leak in."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(cmd: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=1800,
        **kwargs,
    )


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_ships_the_catalogue_and_runs_outside_the_repo(tmp_path: Path) -> None:
    from deconvlint.rules.catalogue import load_catalogue

    dist = tmp_path / "dist"
    _ok(
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, REPO],
            cwd=tmp_path,
        )
    )
    (wheel,) = dist.glob("deconvlint-0.1.0-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("deconvlint/_catalogue/DL"))
        == RULE_FILES
    )
    assert "deconvlint/cli/main.py" in names and "deconvlint/rules/catalogue.json" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/"))]

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    _ok(
        _run(
            [bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check", wheel],
            cwd=tmp_path,
        )
    )

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    explain = _ok(_run([bin_dir / "deconvlint", "--explain", "DL001"], cwd=outside))
    assert explain.stdout == load_catalogue()["DL001"].explain()
    where = _ok(
        _run(
            [
                bin_dir / "python",
                "-c",
                "import deconvlint.rules.catalogue as c; print(c.catalogue_dir())",
            ],
            cwd=outside,
        )
    )
    assert "_catalogue" in where.stdout and str(REPO) not in where.stdout
    listed = _ok(_run([bin_dir / "deconvlint", "--list-rules"], cwd=outside))
    assert len(listed.stdout.splitlines()) == len(RULE_FILES) + 1
    assert (
        _ok(_run([bin_dir / "python", "-m", "deconvlint", "--version"], cwd=outside)).stdout
        == "deconvlint 0.1.0\n"
    )

    shutil.copy(REPO / "examples" / "cyclegan_decoder.onnx", outside)
    shutil.copy(REPO / "examples" / "clean_decoder.onnx", outside)
    flagged = _run([bin_dir / "deconvlint", "cyclegan_decoder.onnx"], cwd=outside)
    assert flagged.returncode == 1, flagged.stdout + flagged.stderr
    assert "DL001" in flagged.stdout
    _ok(_run([bin_dir / "deconvlint", "clean_decoder.onnx"], cwd=outside))
    assert sorted(p.name for p in outside.iterdir()) == [
        "clean_decoder.onnx",
        "cyclegan_decoder.onnx",
    ]


def _git(*args: str, cwd: Path) -> None:
    _ok(
        _run(
            [
                "git",
                "-c",
                "user.name=deconvlint tests",
                "-c",
                "user.email=tests@example.invalid",
                "-c",
                "commit.gpgsign=false",
                *args,
            ],
            cwd=cwd,
        )
    )


def _snapshot_of_the_repo(target: Path) -> Path:
    """The working tree as it is (committed or not) as a one-commit git repo, for try-repo."""
    files = _ok(
        _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO)
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git("init", "-q", cwd=target)
    _git("add", "-A", cwd=target)
    _git("commit", "-q", "-m", "snapshot", cwd=target)
    return target


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("pre-commit") is None
    and shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None,
    reason="pre-commit is not installed (pip install pre-commit); .ci/run installs it",
)
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_pre_commit_hook(tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
        "pre-commit"
    )
    hook_repo = _snapshot_of_the_repo(tmp_path / "hook-repo")
    for example, expected in (("cyclegan_decoder.onnx", 1), ("clean_decoder.onnx", 0)):
        project = tmp_path / f"project-{expected}"
        project.mkdir()
        shutil.copy(REPO / "examples" / example, project / "model.onnx")
        (project / "notes.txt").write_text("not a model; the hook must not see it\n")
        _git("init", "-q", cwd=project)
        _git("add", "-A", cwd=project)
        proc = _run([pre_commit, "try-repo", hook_repo, "deconvlint", "--all-files"], cwd=project)
        output = proc.stdout + proc.stderr
        assert proc.returncode == expected, output
        if expected:
            assert "model.onnx:decoder.up1: DL001" in output
        assert "notes.txt" not in output

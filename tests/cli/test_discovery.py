"""Which files a folder stands for: .gitignore and .git/info/exclude (asked of git), the
``exclude`` / ``extend-exclude`` globs of the configuration and the flags; files named on the
command line are always checked."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deconvlint.cli.discovery import DEFAULT_EXCLUDE, Exclusion, collect_targets, models_below
from tests.support.cli import REPO, cli_env, run_cli

CLEAN = REPO / "examples" / "clean_decoder.onnx"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _tree(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CLEAN, root / name)
    return root


def _found(folder: Path, exclusion: Exclusion | None = None) -> list[str]:
    return [Path(p).relative_to(folder).as_posix() for p in models_below(str(folder), exclusion)]


def _git_repo(root: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True)
    (root / ".gitignore").write_text("ignored/\n*.tmp.onnx\n")
    (root / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("local/\n")
    return _tree(root, "a.onnx", "ignored/b.onnx", "local/c.onnx", "d.tmp.onnx", "tests/e.onnx")


@needs_git
def test_git_ignored_files_are_left_out(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "repo")
    assert _found(repo) == ["a.onnx", "tests/e.onnx"]  # untracked but not ignored: kept
    subprocess.run(["git", "add", "a.onnx"], cwd=repo, check=True, capture_output=True)
    assert _found(repo) == ["a.onnx", "tests/e.onnx"]  # tracked: kept
    assert _found(repo / "tests") == ["e.onnx"]  # a sub-folder of the work tree
    everything = Exclusion(respect_gitignore=False)
    assert _found(repo, everything) == [
        "a.onnx", "d.tmp.onnx", "ignored/b.onnx", "local/c.onnx", "tests/e.onnx"
    ]  # fmt: skip


def test_outside_a_git_work_tree_nothing_is_asked_of_git(tmp_path: Path) -> None:
    folder = _tree(tmp_path, "a.onnx", "ignored/b.onnx")
    (folder / ".gitignore").write_text("ignored/\n")  # no repository: git's rules do not apply
    assert _found(folder) == ["a.onnx", "ignored/b.onnx"]


def test_exclude_globs_by_name_and_by_path(tmp_path: Path) -> None:
    folder = _tree(
        tmp_path, "a.onnx", "tests/b.onnx", "models/old/c.onnx", "models/new/d.onnx", "x_old.onnx"
    )
    root = str(tmp_path)
    defaults = tuple((p, "") for p in DEFAULT_EXCLUDE)
    by_name = Exclusion((*defaults, ("tests", root), ("*_old.onnx", root)))
    assert _found(folder, by_name) == ["a.onnx", "models/new/d.onnx", "models/old/c.onnx"]
    by_path = Exclusion((*defaults, ("models/old/", root)))
    assert "models/old/c.onnx" not in _found(folder, by_path)
    assert "models/new/d.onnx" in _found(folder, by_path)
    assert _found(folder, Exclusion((*defaults, ("models/*", root)))) == [
        "a.onnx", "tests/b.onnx", "x_old.onnx"
    ]  # fmt: skip


def test_exclude_replaces_the_defaults_and_named_files_are_always_checked(tmp_path: Path) -> None:
    folder = _tree(tmp_path, "a.onnx", ".hidden/b.onnx")
    assert _found(folder) == ["a.onnx"]
    assert _found(folder, Exclusion((("nothing", str(tmp_path)),))) == [".hidden/b.onnx", "a.onnx"]
    named = str(folder / ".hidden" / "b.onnx")
    assert [t.display for t in collect_targets([named], Exclusion((("*", "."),)))] == [named]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli("--statistics", *args, cwd=cwd, env=cli_env(repo_on_path=False))


@needs_git
def test_configuration_keys_and_flags(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "repo")
    assert _run(cwd=repo).stdout.splitlines()[-1] == "All checks passed (2 files)."
    (repo / "pyproject.toml").write_text('[tool.deconvlint]\nextend-exclude = ["tests"]\n')
    assert _run(cwd=repo).stdout.splitlines()[-1] == "All checks passed (1 file)."
    # the configuration's globs are relative to its folder, wherever deconvlint runs
    (repo / "sub").mkdir()
    (repo / "pyproject.toml").write_text('[tool.deconvlint]\nextend-exclude = ["tests/*"]\n')
    assert _run(str(repo), cwd=repo / "sub").stdout.splitlines()[-1] == (
        "All checks passed (1 file)."
    )
    (repo / "pyproject.toml").write_text("[tool.deconvlint]\nrespect-gitignore = false\n")
    assert _run(cwd=repo).stdout.splitlines()[-1] == "All checks passed (5 files)."
    assert _run("--respect-gitignore", cwd=repo).stdout.splitlines()[-1] == (
        "All checks passed (2 files)."
    )
    (repo / "pyproject.toml").unlink()
    assert _run("--extend-exclude", "a.onnx,tests", cwd=repo).returncode == 2  # nothing left
    proc = _run("--no-respect-gitignore", "--extend-exclude", "*.tmp.onnx", cwd=repo)
    assert proc.stdout.splitlines()[-1] == "All checks passed (4 files)."
    bad = (repo / "pyproject.toml").write_text('[tool.deconvlint]\nexclude = "tests"\n')
    assert bad and "expected a list of globs" in _run(cwd=repo).stderr


@needs_git
def test_this_repository_leaves_its_tests_out() -> None:
    """`deconvlint` in this repository: its configuration leaves tests/ (deliberately bad
    models and sources) out, and git leaves out what it ignores."""
    proc = run_cli("--format", "json", cwd=REPO, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    paths = [r["path"] for r in json.loads(proc.stdout)["results"]]
    assert paths and not [p for p in paths if p.startswith(("tests/", "build/", ".venv/"))]
    assert "examples/cyclegan_decoder.onnx" in paths

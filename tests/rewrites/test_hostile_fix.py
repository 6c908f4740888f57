"""``--fix`` writes user files: only the fixed calls change, byte for byte; the file is
replaced atomically with its mode kept; a symbolic link out of the given folder is not
followed."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from deconvlint.config.settings import Settings
from deconvlint.source import check_file
from tests.support.cli import REPO, run_cli

CALL = b"nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)"
FIXED_CALL = b"nn.ConvTranspose2d(8, 4, 4, stride=2, padding=2, output_padding=1)"


def _source(newlines: list[bytes], head: bytes = b"", comment: bytes = b"# plain", end=True):
    """A file whose fourth line holds an uneven transposed convolution, with the line endings
    ``newlines`` (cycled), ``head`` before it all and ``comment`` on the third line."""
    lines = [
        b"import torch.nn as nn",
        b"",
        comment,
        b"up = " + CALL + b"  # the call",
        b"x = [1,\t2]  \f",
    ]
    ends = [newlines[i % len(newlines)] for i in range(len(lines))]
    if not end:
        ends[-1] = b""
    return head + b"".join(line + e for line, e in zip(lines, ends, strict=True))


VARIANTS = {
    "lf": _source([b"\n"]),
    "crlf": _source([b"\r\n"]),
    "cr": _source([b"\r"]),
    "mixed": _source([b"\n", b"\r\n", b"\r"]),
    "no final newline": _source([b"\n"], end=False),
    "cr, no final newline": _source([b"\r"], end=False),
    "bom": _source([b"\r\n"], head=b"\xef\xbb\xbf", comment="# décodeur, 上采样".encode()),
    "latin-1": _source([b"\n"], head=b"# coding: latin-1\n", comment=b"# d\xe9codeur \xff"),
    "utf-7": _source(
        [b"\r"], head=b"# -*- coding: utf-7 -*-\r", comment=b"# a ~ tilde, a \\ backslash, 1+-1"
    ),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_only_the_fixed_call_changes(tmp_path: Path, name: str) -> None:
    original = VARIANTS[name]
    path = tmp_path / "model.py"
    path.write_bytes(original)
    outcome = check_file(path, Settings(), fix=True, unsafe_fixes=True)
    assert outcome.result.error is None and outcome.fixed == 1
    assert path.read_bytes() == original.replace(CALL, FIXED_CALL)


def test_the_diff_shows_what_the_fix_writes(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_bytes(VARIANTS["cr, no final newline"])
    diff = check_file(path, Settings(), diff=True, unsafe_fixes=True).diff
    assert f"-up = {CALL.decode()}" in diff and f"+up = {FIXED_CALL.decode()}" in diff


def test_an_encoding_that_cannot_keep_the_other_bytes_is_not_written(tmp_path: Path) -> None:
    """UTF-7 with a non-ASCII character before the call on its line: the call's bytes cannot
    be told apart from the character's, so the file is left alone, with its findings."""
    original = b"# coding: utf-7\nimport torch.nn as nn\n+AOk- = " + CALL + b"\n"
    path = tmp_path / "model.py"
    path.write_bytes(original)
    outcome = check_file(path, Settings(), fix=True, unsafe_fixes=True)
    assert outcome.result.error == (
        "--fix: not written: its encoding (utf-7) would change bytes outside the fix"
    )
    assert path.read_bytes() == original and outcome.result.findings


def _run(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return run_cli(
        *args, cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1"), **kwargs
    )


def test_fix_does_not_follow_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    outside, repository = tmp_path / "outside", tmp_path / "repository"
    outside.mkdir()
    repository.mkdir()
    (outside / "victim.py").write_bytes(VARIANTS["lf"])
    (repository / "link.py").symlink_to(outside / "victim.py")
    (repository / "inside.py").write_bytes(VARIANTS["lf"])
    (repository / "alias.py").symlink_to("inside.py")
    proc = _run("--fix", "--unsafe-fixes", "repository", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert (outside / "victim.py").read_bytes() == VARIANTS["lf"]
    [error] = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert error.startswith("repository/link.py: error: --fix: not written: a symbolic link")
    assert "repository/link.py:4:6: DL001" in proc.stdout  # its findings are still shown
    # a link inside the folder is followed, and stays a link
    assert (repository / "inside.py").read_bytes() == VARIANTS["lf"].replace(CALL, FIXED_CALL)
    assert (repository / "alias.py").is_symlink()


def test_fix_keeps_the_file_s_mode_and_never_leaves_it_truncated(tmp_path: Path) -> None:
    """A write that fails half way (here: the file size limit, as a full disk would) leaves
    the file as it was, and no temporary file behind."""
    original = VARIANTS["lf"] + b"# padding\n" * 2000
    path = tmp_path / "model.py"
    path.write_bytes(original)
    path.chmod(0o750)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = _run("--fix", "--unsafe-fixes", "model.py", cwd=tmp_path, preexec_fn=limit_file_size)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]
    assert proc.returncode == 2 and "--fix: not written" in proc.stderr, proc.stderr
    proc = _run("--fix", "--unsafe-fixes", "model.py", cwd=tmp_path)
    assert path.read_bytes() == original.replace(CALL, FIXED_CALL)
    assert path.stat().st_mode & 0o777 == 0o750


def test_the_diff_header_escapes_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "a\x1b[2J\u202e.py").write_bytes(VARIANTS["lf"])
    proc = _run("--diff", "--unsafe-fixes", ".", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "--- a\\x1b[2J\\u202e.py" in proc.stdout
    assert "\x1b" not in proc.stdout + proc.stderr and "\u202e" not in proc.stdout + proc.stderr

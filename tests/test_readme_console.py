"""Every ```console block of the README is a real run: its ``$ deconvlint ...`` line is run
(from the repository, or, for ``src/...``, from a folder holding the source it names)
and its stdout must be the block's text.  ``...`` stands for any text within a line, and a line
of its own ``...`` for any number of lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.source.test_source_cli import CYCLEGAN
from tests.source.test_source_flax import README_FLAX
from tests.source.test_source_keras import README_DCGAN
from tests.support.cli import REPO, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")
#: the Python files the README's source-mode examples check, by the path they name
README_SOURCES = {
    "src/gen.py": CYCLEGAN,
    "src/dcgan.py": README_DCGAN,
    "src/up_flax.py": README_FLAX,
}
BLOCKS = re.findall(r"```console\n(.*?)```", README, flags=re.S)


def _pattern(expected: str) -> re.Pattern[str]:
    parts = []
    for line in expected.splitlines(keepends=True):
        if line.strip() == "...":
            parts.append(r"(?:.*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.split("...")))
    return re.compile("".join(parts))


def test_the_readme_has_console_blocks() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0] for b in BLOCKS])
def test_console_block_is_the_real_output(block: str, tmp_path: Path) -> None:
    command, expected = block.split("\n", 1)
    assert command.startswith("$ deconvlint "), command
    args = shlex.split(command[2:])[1:]
    cwd = REPO
    named = [a for a in args if a in README_SOURCES]
    if "src/" in args:  # the Python-source example: the CycleGAN generator's decoder
        named.append("src/gen.py")
    if named:
        (tmp_path / "src").mkdir()
        for name in named:
            (tmp_path / name).write_text(README_SOURCES[name], encoding="utf-8")
        cwd = tmp_path
    if "--probe" in args:
        pytest.importorskip("onnxruntime")
    proc = run_cli(
        *args, cwd=cwd, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert _pattern(expected).fullmatch(proc.stdout), (
        f"README.md's output of {command!r} is stale; the real output is:\n{proc.stdout}"
    )

"""A repository's own ``numpy.py``, ``yaml.py`` or ``onnx.py`` is never imported by deconvlint
itself, whether it runs as ``python -m deconvlint`` (which puts the working folder first on
``sys.path``) or as the ``deconvlint`` script; a ``package.module:attribute`` target's import
still finds the folder's package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import REPO

# deconvlint's dependencies, and standard modules it imports late (after a target's import)
SHADOWED = ("numpy", "yaml", "onnx", "typing", "json", "html", "difflib", "hashlib")
SHADOW = """import pathlib
pathlib.Path(__file__).with_name("MARKER-" + __name__).write_text("imported")
raise ImportError("the folder's own " + __name__ + ".py was imported")
"""
MODELS = """import torch.nn as nn


class Generator(nn.Sequential):
    def __init__(self):
        super().__init__(nn.ConvTranspose2d(4, 4, kernel_size=3, stride=2))
"""


@pytest.fixture()
def repository(tmp_path: Path) -> Path:
    """A folder with a model, a configuration, a package of models and modules named as
    deconvlint's dependencies, each leaving a marker file when imported."""
    for name in SHADOWED:
        (tmp_path / f"{name}.py").write_text(SHADOW)
    (tmp_path / ".deconvlint.yaml").write_text("fail-on: warning\n")
    shutil.copy(REPO / "examples" / "cyclegan_decoder.onnx", tmp_path / "m.onnx")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models.py").write_text(MODELS)
    return tmp_path


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=600,
    )


COMMANDS = {
    "python -m": [sys.executable, "-m", "deconvlint"],
    "script": [str(Path(sys.executable).with_name("deconvlint"))],
}


@pytest.mark.parametrize("how", COMMANDS)
def test_a_folder_s_own_modules_are_not_imported_by_deconvlint(repository: Path, how: str) -> None:
    if not Path(COMMANDS[how][0]).exists():
        pytest.skip(f"no {COMMANDS[how][0]} in this environment")
    proc = _run([*COMMANDS[how], "m.onnx", "-q", "--format", "json"], repository)
    assert proc.returncode == 1, proc.stderr
    assert sorted(p.name for p in repository.glob("MARKER-*")) == []


@pytest.mark.slow
@pytest.mark.parametrize("how", COMMANDS)
def test_a_target_s_import_finds_the_folder_s_package_and_nothing_else(
    repository: Path, how: str
) -> None:
    if not Path(COMMANDS[how][0]).exists():
        pytest.skip(f"no {COMMANDS[how][0]} in this environment")
    pytest.importorskip("torch")
    command = [*COMMANDS[how], "pkg.models:Generator", "m.onnx", "--input-shape", "1,4,8,8"]
    proc = _run([*command, "-q", "-j", "1", "--report", "r.html"], repository)
    assert proc.returncode == 1, proc.stderr
    assert "pkg.models:Generator:0: DL001" in proc.stdout, proc.stdout
    assert "m.onnx:decoder.up1: DL001" in proc.stdout
    assert sorted(p.name for p in repository.glob("MARKER-*")) == []

"""The docstring examples' collection (conftest.py at the repository's root): without torch and
onnxruntime, what needs them is skipped with that reason and the rest still runs and passes.

The examples themselves run in every ``pytest`` run (``testpaths`` names the package); this test
hides the extras from a child pytest, as a machine without them would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import REPO, cli_env

# ``None`` in sys.modules: ``import torch`` raises ModuleNotFoundError and find_spec finds nothing.
HIDE_THE_EXTRAS = "import sys\nsys.modules['torch'] = None\nsys.modules['onnxruntime'] = None\n"


def _doctests(*paths: str, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *paths],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_env(PYTHONPATH=os.pathsep.join([str(site), str(REPO)])),
        timeout=300,
    )


def test_without_torch_its_examples_skip_with_the_reason_and_the_others_pass(
    tmp_path: Path,
) -> None:
    (tmp_path / "sitecustomize.py").write_text(HIDE_THE_EXTRAS)
    proc = _doctests(
        "deconvlint/rewrites/model.py",  # imports torch when it loads
        "deconvlint/__init__.py",  # its example imports torch
        "deconvlint/engine.py",  # one example of two imports torch
        "deconvlint/report.py",  # needs neither
        site=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deconvlint.rewrites.model imports torch, which is not installed" in proc.stdout
    assert "deconvlint/__init__.py: the example imports torch, which is not installed" in (
        proc.stdout
    )
    assert proc.stdout.strip().splitlines()[-1].startswith("2 passed, 3 skipped"), proc.stdout


def test_with_torch_hidden_a_broken_import_still_fails(tmp_path: Path) -> None:
    """Only a missing optional extra skips: a module whose own import fails is an error."""
    (tmp_path / "sitecustomize.py").write_text(HIDE_THE_EXTRAS + "sys.modules['numpy'] = None\n")
    proc = _doctests("deconvlint/core/geometry.py", site=tmp_path)
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stdout, proc.stdout

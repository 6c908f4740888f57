"""The command line as the tests run it: ``python -m deconvlint`` in a subprocess, as users do.

``run_cli`` is ``subprocess.run`` of ``sys.executable -m deconvlint ARGS`` capturing text output,
with the environment given (by default the test process's own, unchanged).  ``cli_env`` is the
environment most tests give it: the caller's, without the colour switches a developer's shell
may set, with this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The repository's root (the checkout the tests belong to).
REPO = Path(__file__).resolve().parents[2]

#: Variables that switch colour on or off whatever the terminal; a test of the plain output
#: leaves them out, one of colour sets the one it means.
COLOUR_VARIABLES = ("NO_COLOR", "FORCE_COLOR")


def cli_env(*, repo_on_path: bool = True, **extra: str) -> dict[str, str]:
    """This process's environment without ``NO_COLOR``/``FORCE_COLOR``, with :data:`REPO` first
    on ``PYTHONPATH`` (the deconvlint under test, whatever is installed) unless not
    ``repo_on_path``, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in COLOUR_VARIABLES}
    if repo_on_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 300,
    python_options: Sequence[str] = (),
    text: bool = True,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """``python [python_options] -m deconvlint ARGS`` in ``cwd`` (default: this process's
    folder) with ``env`` (default: this process's environment); stdout and stderr captured, as
    text unless ``text=False``.  ``kwargs`` go to :func:`subprocess.run` (``preexec_fn``...)."""
    return subprocess.run(
        [sys.executable, *python_options, "-m", "deconvlint", *args],
        capture_output=True,
        text=text,
        cwd=cwd,
        env=env,
        timeout=timeout,
        **kwargs,
    )

"""Finding the external programs some tests drive: the SARIF validator and a headless chromium.

Both are optional: a test that needs one skips with the reason and the install command when it
is absent.  ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SARIF_HINT = "npm install -g @microsoft/sarif-multitool-linux"
CHROMIUM_HINT = "apt-get install -y chromium"


def sarif_multitool() -> str | None:
    """The ``Sarif.Multitool`` executable of the npm package, when installed (globally, or
    where ``SARIF_MULTITOOL`` points)."""
    explicit = os.environ.get("SARIF_MULTITOOL")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("Sarif.Multitool")
    if found:
        return found
    if shutil.which("npm") is None:
        return None
    try:
        root = subprocess.run(
            ["npm", "root", "-g"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    binary = Path(root) / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def needs_sarif_multitool() -> str:
    tool = sarif_multitool()
    if tool is None:
        pytest.skip(f"the SARIF validator is not installed ({SARIF_HINT}; .ci/run does it)")
    return tool


def needs_chromium() -> str:
    browser = chromium()
    if browser is None:
        pytest.skip(f"no headless chromium to render the HTML report ({CHROMIUM_HINT})")
    return browser


def validate_sarif(tool: str, path: Path) -> list[str]:
    """The error lines of ``Sarif.Multitool validate`` on ``path`` (it exits 0 even with
    errors, so its output is read)."""
    proc = subprocess.run(
        [tool, "validate", str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert "Done. 1 files scanned." in proc.stdout, proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if ": error " in line]

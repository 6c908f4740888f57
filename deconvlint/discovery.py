"""Turn the command line's paths into the list of model files to check.

A file is checked whatever its name (a text file then fails to load, with a clear error).  A folder
stands for every ``*.onnx`` below it, sorted; hidden folders (``.git``, ``.venv``) and virtual
environments are not entered, since they hold other people's models (the onnx package alone ships
thousands of test models).  A path that does not exist, or a folder that holds no model, is an
error: CI must never pass because it checked nothing.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for name in ("b.onnx", "sub/a.onnx", ".venv/x.onnx", "notes.txt"):
...     (root / name).parent.mkdir(parents=True, exist_ok=True)
...     _ = (root / name).write_bytes(b"")
>>> [t.display for t in collect_targets([str(root)])] == [
...     str(root / "b.onnx"), str(root / "sub" / "a.onnx")]
True
>>> collect_targets([str(root / "missing.onnx")])[0].error
'no such file or folder'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MODEL_SUFFIX = ".onnx"
_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass(frozen=True)
class Target:
    """One input to check: a model file, or a command-line path that is already an error."""

    display: str  # the path as the user will see it in the output
    error: str | None = None


def _enter(folder: str, name: str) -> bool:
    # A virtual environment is recognised by its pyvenv.cfg, whatever it is called.
    if name.startswith(".") or name in _SKIPPED_FOLDERS:
        return False
    return not os.path.isfile(os.path.join(folder, name, "pyvenv.cfg"))


def models_below(folder: str) -> list[str]:
    """Every ``*.onnx`` file below ``folder``, sorted by path, as ``folder/relative/path``."""
    found: list[str] = []
    for current, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if _enter(current, d)]
        found += [os.path.join(current, f) for f in filenames if f.endswith(MODEL_SUFFIX)]
    return sorted(found, key=lambda p: os.path.relpath(p, folder).split(os.sep))


def _targets_for(path: str) -> Iterator[Target]:
    if os.path.isdir(path):
        models = models_below(path)
        if not models:
            yield Target(path, error=f"no ONNX models (*{MODEL_SUFFIX}) found in this folder")
        for model in models:
            yield Target(os.path.normpath(model))
    elif os.path.exists(path):
        yield Target(path)
    else:
        yield Target(path, error="no such file or folder")


def collect_targets(paths: Iterable[str]) -> list[Target]:
    """The targets for ``paths`` in command-line order; a file reached twice is checked once."""
    seen: set[str] = set()
    targets: list[Target] = []
    for path in paths:
        for target in _targets_for(path):
            key = os.path.realpath(target.display) if target.error is None else target.display
            if key not in seen:
                seen.add(key)
                targets.append(target)
    return targets

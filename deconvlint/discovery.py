"""Turn the command line's paths into the list of model files and module targets to check.

A ``*.py`` file is read as Python source (never imported); a ``*.onnx`` file is read as ONNX;
any other file named on the command line is checked whatever its name (its content says whether
it is ONNX, a torch export, a TorchScript archive or a pickle; a text file fails to load, with a
clear error).  A folder stands for every ``*.onnx`` and ``*.py`` below it, sorted (a model
file found in a folder is read as ONNX only, whatever its bytes); hidden folders (``.git``,
``.venv``) and virtual environments are not entered, since they hold other people's models (the
onnx package alone ships thousands of test models).  A name that is not an existing path but has the form
``package.module:attribute`` is a module target (an existing path of that spelling wins).  A path
that does not exist, or a folder that holds no model, is an error: CI must never pass because it
checked nothing (a folder with Python files and no model is fine: they are checked).

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
>>> collect_targets(["pkg.models:Generator"])[0].module
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from deconvlint.targets import is_module_target

MODEL_SUFFIX = ".onnx"
SOURCE_SUFFIX = ".py"
# A missing "x:y.onnx" is a missing file, not the attribute "y.onnx" of a module "x".
_FILE_SUFFIXES = (MODEL_SUFFIX, ".pt2", ".pt", ".pth", ".pkl", ".ts")
_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass(frozen=True)
class Target:
    """One input to check: a model file, or a command-line path that is already an error."""

    display: str  # the path (or module target) as the user will see it in the output
    error: str | None = None
    module: bool = False  # a ``package.module:attribute`` target, not a file
    in_folder: bool = False  # found in a folder: a model file there is read as ONNX only


def _enter(folder: str, name: str) -> bool:
    # A virtual environment is recognised by its pyvenv.cfg, whatever it is called.
    if name.startswith(".") or name in _SKIPPED_FOLDERS:
        return False
    return not os.path.isfile(os.path.join(folder, name, "pyvenv.cfg"))


def models_below(folder: str) -> list[str]:
    """Every ``*.onnx`` and ``*.py`` file below ``folder``, sorted by path, as
    ``folder/relative/path``."""
    found: list[str] = []
    for current, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if _enter(current, d)]
        found += [
            os.path.join(current, f) for f in filenames if f.endswith((MODEL_SUFFIX, SOURCE_SUFFIX))
        ]
    return sorted(found, key=lambda p: os.path.relpath(p, folder).split(os.sep))


def _targets_for(path: str) -> Iterator[Target]:
    if os.path.isdir(path):
        models = models_below(path)
        if not models:
            yield Target(
                path,
                error=(
                    f"no ONNX models (*{MODEL_SUFFIX}) nor Python files (*{SOURCE_SUFFIX}) "
                    "found in this folder"
                ),
            )
        for model in models:
            yield Target(os.path.normpath(model), in_folder=True)
    elif os.path.exists(path):
        yield Target(path)
    elif path.endswith(_FILE_SUFFIXES) or ":" not in path:
        yield Target(path, error="no such file or folder")
    elif is_module_target(path):
        yield Target(path, module=True)
    else:
        yield Target(path, error="no such file or folder, nor a package.module:attribute target")


def collect_targets(paths: Iterable[str]) -> list[Target]:
    """The targets for ``paths`` in command-line order; a file reached twice is checked once."""
    seen: set[str] = set()
    targets: list[Target] = []
    for path in paths:
        for target in _targets_for(path):
            is_file = target.error is None and not target.module
            key = os.path.realpath(target.display) if is_file else target.display
            if key not in seen:
                seen.add(key)
                targets.append(target)
    return targets

"""Turn the command line's paths into the list of model files and module targets to check.

A ``*.py`` file is read as Python source (never imported); a ``*.onnx`` file is read as ONNX,
a ``*.keras`` or ``*.h5`` file as Keras; any other file named on the command line is checked
whatever its name (its content says whether it is ONNX, Keras, a torch export, a TorchScript
archive or a pickle; a text file fails to load, with a clear error).  A folder stands for every
``*.onnx``, ``*.keras`` and ``*.py`` below it, sorted (a model file found in a folder is read as
its name says, ONNX or Keras, whatever its bytes; ``*.h5`` files are left out, since most HDF5
files in a repository are data, not models: name a legacy Keras ``.h5`` explicitly); hidden folders (``.git``,
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

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MODEL_SUFFIX = ".onnx"
#: The model files a folder stands for (with the ``*.py`` files).
FOLDER_MODEL_SUFFIXES = (MODEL_SUFFIX, ".keras")
SOURCE_SUFFIX = ".py"
# A missing "x:y.onnx" is a missing file, not the attribute "y.onnx" of a module "x".
_FILE_SUFFIXES = (*FOLDER_MODEL_SUFFIXES, ".h5", ".hdf5", ".pt2", ".pt", ".pth", ".pkl", ".ts")
#: what a folder leaves out unless ``exclude`` replaces it: hidden folders and files (".git",
#: ".venv"), caches and installed packages (virtual environments are always left out)
DEFAULT_EXCLUDE = (".*", "__pycache__", "node_modules", "site-packages")
_GIT_TIMEOUT = 30.0  # seconds for `git ls-files` on a folder


@dataclass(frozen=True)
class Exclusion:
    """Which files below a named folder are left out, as ruff's ``exclude``,
    ``extend-exclude`` and ``respect-gitignore`` decide it.

    ``patterns``: globs with the folder their paths are relative to.  A glob without ``/``
    matches the name of any file or folder below the named folder (``tests``, ``*_old.onnx``);
    one with ``/`` matches a path relative to that root folder, or a folder above the file
    (``tests/fixtures``, ``models/*/legacy``).  Files named on the command line are always
    checked.

    >>> ex = Exclusion((("tests", "/r"), ("models/old", "/r")))
    >>> [ex.excludes("/r/" + p, "/r") for p in ("tests/a.onnx", "models/old/b.onnx", "c.onnx")]
    [True, True, False]
    """

    patterns: tuple[tuple[str, str], ...] = tuple((p, "") for p in DEFAULT_EXCLUDE)
    respect_gitignore: bool = True

    def excludes(self, path: str, folder: str) -> bool:
        """Whether ``path``, found below the named ``folder``, is left out."""
        path = os.path.abspath(path)
        below = os.path.relpath(path, os.path.abspath(folder)).split(os.sep)
        parents = [path]
        head = os.path.dirname(path)
        while head and head != os.path.dirname(head):
            parents.append(head)
            head = os.path.dirname(head)
        for pattern, root in self.patterns:
            pattern = pattern.rstrip("/")
            if "/" not in pattern:
                if any(fnmatch.fnmatchcase(name, pattern) for name in below):
                    return True
                continue
            anchored = os.path.join(os.path.abspath(root or os.curdir), pattern)
            if any(fnmatch.fnmatchcase(p, anchored) for p in parents):
                return True
        return False


def git_listed(folder: str) -> set[str] | None:
    """The files below ``folder`` that git does not ignore (tracked, or untracked and not
    matched by .gitignore, .git/info/exclude or the global excludes file), relative to
    ``folder``; None outside a git work tree or without git.

    git's own reading of the ignore files, so the rules are exactly git's.  ``core.fsmonitor``
    is switched off: a repository's config could otherwise name a program that git runs.
    """
    import subprocess  # here: only a folder's search runs git, not every run's start-up

    command = [
        "git",
        "-c",
        "core.fsmonitor=false",
        "-C",
        folder,
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]
    try:
        proc = subprocess.run(
            command, capture_output=True, timeout=_GIT_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {os.path.normpath(name) for name in names if name}


@dataclass(frozen=True)
class Target:
    """One input to check: a model file, or a command-line path that is already an error."""

    display: str  # the path (or module target) as the user will see it in the output
    error: str | None = None
    module: bool = False  # a ``package.module:attribute`` target, not a file
    in_folder: bool = False  # found in a folder: a model file there is read as its name says
    root: str | None = None  # the folder given on the command line that holds this file


def _enter(folder: str, name: str, root: str, exclusion: Exclusion) -> bool:
    # A virtual environment is recognised by its pyvenv.cfg, whatever it is called.
    path = os.path.join(folder, name)
    if exclusion.excludes(path, root):
        return False
    return not os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def models_below(folder: str, exclusion: Exclusion | None = None) -> list[str]:
    """Every ``*.onnx``, ``*.keras`` and ``*.py`` file below ``folder`` that ``exclusion``
    keeps, sorted by path, as ``folder/relative/path``."""
    exclusion = exclusion or Exclusion()
    listed = git_listed(folder) if exclusion.respect_gitignore else None
    found: list[str] = []
    for current, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if _enter(current, d, folder, exclusion)]
        for name in filenames:
            path = os.path.join(current, name)
            if not name.endswith((*FOLDER_MODEL_SUFFIXES, SOURCE_SUFFIX)):
                continue
            if listed is not None and os.path.normpath(os.path.relpath(path, folder)) not in listed:
                continue
            if not exclusion.excludes(path, folder):
                found.append(path)
    return sorted(found, key=lambda p: os.path.relpath(p, folder).split(os.sep))


def _shown(path: str) -> str:
    """A found file's path as shown: ``./`` before a name that starts with ``:`` or a space, so
    that no output line starts with a GitHub workflow command (``::error ...``) a file's name
    spells (the runner reads one after leading spaces too)."""
    return os.path.join(os.curdir, path) if path[:1] in (":", " ") else path


def _targets_for(path: str, exclusion: Exclusion) -> Iterator[Target]:
    if os.path.isdir(path):
        models = models_below(path, exclusion)
        if not models:
            yield Target(
                path,
                error=(
                    "no ONNX models (*.onnx), Keras models (*.keras) nor Python files "
                    f"(*{SOURCE_SUFFIX}) found in this folder"
                ),
            )
        for model in models:
            yield Target(_shown(os.path.normpath(model)), in_folder=True, root=path)
    elif os.path.exists(path):
        yield Target(path)
    elif path.endswith(_FILE_SUFFIXES) or ":" not in path:
        yield Target(path, error="no such file or folder")
    else:
        from deconvlint.frontends.target import is_module_target  # a path that names no file

        if is_module_target(path):
            yield Target(path, module=True)
        else:
            yield Target(
                path, error="no such file or folder, nor a package.module:attribute target"
            )


def collect_targets(paths: Iterable[str], exclusion: Exclusion | None = None) -> list[Target]:
    """The targets for ``paths`` in command-line order; a file reached twice is checked once.
    ``exclusion`` applies to what folders stand for, never to a file named in ``paths``."""
    exclusion = exclusion or Exclusion()
    seen: set[str] = set()
    targets: list[Target] = []
    for path in paths:
        for target in _targets_for(path, exclusion):
            is_file = target.error is None and not target.module
            key = os.path.realpath(target.display) if is_file else target.display
            if key not in seen:
                seen.add(key)
                targets.append(target)
    return targets

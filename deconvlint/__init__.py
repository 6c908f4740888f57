"""deconvlint: find upsampling layers that paint checkerboard artifacts.

>>> import deconvlint
>>> import torch
>>> up = torch.nn.ConvTranspose2d(3, 3, 3, stride=2, padding=1, output_padding=1)
>>> report = deconvlint.check(torch.nn.Sequential(up), example_inputs=(torch.randn(1, 3, 64, 64),))
>>> print(report)  # doctest: +ELLIPSIS
<Sequential>:0: DL001 [warning] uneven overlap: taps per output phase [1, 2] on every axis, ...
...
Found 1 finding (1 warning) in 1 file.

The public names are loaded on first use, so ``import deconvlint`` imports neither torch nor
onnx (nor the rules): see :mod:`deconvlint.api`.
"""

import os as _os  # sys and os are loaded before any folder is searched: they are safe
import sys as _sys


def _forget_the_working_folder() -> None:
    """``python -m deconvlint`` put the working folder first on ``sys.path``: a repository's own
    ``numpy.py`` or ``yaml.py`` would then be imported by deconvlint itself.  Take it away
    before anything else is imported; only a ``package.module:attribute`` target's import sees
    that folder (:func:`deconvlint.frontends.torch.build.import_target`).  While ``-m`` looks for the
    module, ``sys.argv[0]`` is ``"-m"``."""
    started_by_m = _sys.argv[:1] == ["-m"] and not getattr(_sys.flags, "safe_path", False)
    if started_by_m and _sys.path[:1] in ([""], [_os.getcwd()]):
        del _sys.path[0]


_forget_the_working_folder()

import importlib  # noqa: E402

from deconvlint.version import __version__  # noqa: E402

TYPE_CHECKING = False  # typing's own flag, without importing typing in every run's start-up
if TYPE_CHECKING:
    from typing import Any

    from deconvlint.api import DeconvLintWarning, assert_clean, check
    from deconvlint.report import Finding, Report
    from deconvlint.rewrites.model import fix

# public name -> the module that defines it
_LAZY = {
    "check": "deconvlint.api",
    "assert_clean": "deconvlint.api",
    "fix": "deconvlint.rewrites.model",
    "DeconvLintWarning": "deconvlint.api",
    "Report": "deconvlint.report",
    "Finding": "deconvlint.report",
}

__all__ = ["DeconvLintWarning", "Finding", "Report", "__version__", "assert_clean", "check", "fix"]


def __getattr__(name: str) -> "Any":  # quoted: no __future__ import before the folder goes
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deconvlint' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

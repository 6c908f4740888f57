"""deconvlint: find upsampling layers that paint checkerboard artifacts.

>>> import deconvlint
>>> report = deconvlint.check(model, example_inputs=(torch.randn(1, 3, 64, 64),))  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP

The public names are loaded on first use, so ``import deconvlint`` imports neither torch nor
onnx (nor the rules): see :mod:`deconvlint.api`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from deconvlint.api import DeconvLintWarning, assert_clean, check
    from deconvlint.model_fix import fix
    from deconvlint.report import Finding, Report

# public name -> the module that defines it
_LAZY = {
    "check": "deconvlint.api",
    "assert_clean": "deconvlint.api",
    "fix": "deconvlint.model_fix",
    "DeconvLintWarning": "deconvlint.api",
    "Report": "deconvlint.report",
    "Finding": "deconvlint.report",
}

__all__ = ["DeconvLintWarning", "Finding", "Report", "__version__", "assert_clean", "check", "fix"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deconvlint' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

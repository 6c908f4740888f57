"""Model targets: what ``--models``, a configuration's ``models`` and the command line name.

A *module target* names a Python object the way entry points do (``package.module:attribute``);
a *model file* is read as :func:`deconvlint.frontends.load.load` dispatches it.  This module
only describes targets (it imports no front end); :mod:`deconvlint.frontends.torch.build`
imports, builds and reads the torch ones.

>>> is_module_target("pkg.models:Generator"), is_module_target("models/gen.onnx")
(True, False)
>>> parse_input_shape("1, 3, 64, 64")
(1, 3, 64, 64)
>>> shapes_from_config([[1, 3, 8, 8], [1, 10]])
((1, 3, 8, 8), (1, 10))
>>> as_input_tuple([1, 2]), as_input_tuple(None)
((1, 2), None)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_IDENTIFIERS = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
MODULE_TARGET = re.compile(rf"{_IDENTIFIERS}:{_IDENTIFIERS}")
SHAPE_HINT = "pass --input-shape N,C,H,W (once per input), or input-shape in the configuration"


def is_module_target(text: str) -> bool:
    """Whether ``text`` has the form ``package.module:attribute`` (attribute may be dotted)."""
    return MODULE_TARGET.fullmatch(text) is not None


@dataclass(frozen=True)
class ModelSpec:
    """One thing to check: a module target or a file, and how to build and feed it."""

    target: str  # "pkg.models:Generator" or a file path; shown as the path of its findings
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # passed to a class or a factory
    input_shapes: tuple[tuple[int, ...], ...] = ()  # one shape per example input
    import_dir: str | None = None  # also importable from here (the folder of the config file)
    weights: str | None = None  # --weights: a state_dict file loaded into the built module
    onnx_only: bool = False  # found in a folder: read as ONNX whatever its bytes


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1,3,64,64"`` -> ``(1, 3, 64, 64)``; ValueError unless every size is a positive int."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"expected positive integers separated by commas like 1,3,64,64: {text!r}")
    return tuple(int(p) for p in parts)


def shapes_from_config(value: Any) -> tuple[tuple[int, ...], ...]:
    """A config ``input-shape``: one shape ``[1, 3, 64, 64]`` or several ``[[...], [...]]``."""

    def sizes(items: Any) -> bool:
        return (
            isinstance(items, list)
            and bool(items)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in items)
        )

    if sizes(value):
        return (tuple(value),)
    if isinstance(value, list) and value and all(sizes(v) for v in value):
        return tuple(tuple(v) for v in value)
    raise ValueError(
        "expected a list of positive integers like [1, 3, 256, 256], or a list of such lists "
        f"for several inputs, got {value!r}"
    )


def as_input_tuple(example_inputs: Any) -> tuple[Any, ...] | None:
    """Example inputs as the torch front end takes them: ``None``, or a tuple (a list becomes
    one; a single tensor, a tuple of one)."""
    if example_inputs is None or isinstance(example_inputs, tuple):
        return example_inputs
    if isinstance(example_inputs, list):
        return tuple(example_inputs)
    return (example_inputs,)

"""Every ONNX file a test loads in-process is read twice, by the skimming reader and by
``onnx.load`` of the whole file, and the two must give the same graph or the same error."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deconvlint.errors import LoadError
from deconvlint.frontends.onnx import reader as onnx_frontend


def canonical(value: Any, read_weights: bool = True) -> Any:
    """A comparable form of a Graph: dataclasses as dicts, arrays as (dtype, shape, values),
    lazy weight sources as what they read."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: canonical(getattr(value, f.name), read_weights)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, np.ndarray):
        # through canonical again, so a NaN weight (a fuzzed byte can make one) equals itself
        return ("array", str(value.dtype), value.shape, canonical(value.tolist()))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: canonical(v, read_weights) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v, read_weights) for v in value]
    if isinstance(value, (float, np.floating)) and value != value:
        return "nan"
    if callable(value):  # a lazy weight source: the weights it reads must be the same too
        if not read_weights:
            return "weight source"
        try:
            return ("read", canonical(value(), read_weights))
        except Exception as exc:
            return ("error", type(exc).__name__, str(exc))
    return value


def outcome(read: Any, file: Path, skim: bool) -> Any:
    try:
        return read(file, skim=skim)
    except LoadError as exc:
        return exc


@pytest.fixture(autouse=True)
def skim_equals_full_load(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    original = onnx_frontend.read_file
    # a test that records which files are read must not see the comparison's weight reads
    read_weights = request.node.get_closest_marker("records_reads") is None

    def both(file: Path, *, skim: bool) -> Any:
        skimmed, full = outcome(original, file, True), outcome(original, file, False)
        if isinstance(skimmed, LoadError) or isinstance(full, LoadError):
            assert str(skimmed) == str(full), f"{file}: skim {skimmed!r} != full load {full!r}"
        else:
            same = canonical(skimmed, read_weights) == canonical(full, read_weights)
            assert same, f"{file}: skim and full load differ"
        if isinstance(skimmed, LoadError):
            raise skimmed
        return skimmed

    monkeypatch.setattr(onnx_frontend, "read_file", both)

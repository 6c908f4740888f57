"""A Keras model file in, its configuration and a reader of its variables out (and, through
the graph builder, a :class:`~deconvlint.core.ir.Graph`).

- a ``.keras`` archive: ``config.json`` is read from the zip (no h5py needed); the variables
  come from its ``model.weights.h5`` through h5py, when a rule asks;
- a legacy ``.h5`` (Keras 2, or Keras 3's ``model.save("x.h5")``): the ``model_config``
  attribute and the ``model_weights`` group, both through h5py.

>>> read_keras_file("/no/such/model.keras")
Traceback (most recent call last):
...
deconvlint.errors.LoadError: file not found
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deconvlint.errors import LoadError, one_line
from deconvlint.files import is_regular, open_regular
from deconvlint.frontends.keras import h5, worker
from deconvlint.frontends.keras.archive import WeightsMember, read_archive
from deconvlint.frontends.keras.layouts import KERAS3, LEGACY, LayerPath
from deconvlint.frontends.keras.model_json import MAX_CONFIG_BYTES, parse_model_json
from deconvlint.frontends.keras.variables import LayerVariableReader
from deconvlint.frontends.sniff import KERAS_WEIGHTS_MEMBER, FileFormat, file_format, hdf5_offset

if TYPE_CHECKING:
    import numpy as np

    from deconvlint.core.ir import Graph


class NoVariables:
    """The variables of a file that has none to read: every call is ``None``, and ``why`` is
    told once in :attr:`notes` (as :class:`LayerVariableReader` tells its failures)."""

    def __init__(self, why: str) -> None:
        self.why = why
        self.notes: list[str] = []

    def __call__(self, path: LayerPath) -> list[np.ndarray] | None:
        if self.why not in self.notes:
            self.notes.append(self.why)
        return None


@dataclass
class KerasFile:
    """A Keras model file as read: its configuration (the parsed top-level JSON) and the
    ``LayerVariables`` callable of its weights."""

    path: str
    config: dict[str, Any]
    variables: LayerVariableReader | NoVariables


def read_keras_file(path: str | os.PathLike, kind: FileFormat | None = None) -> KerasFile:
    """Read ``path`` as a ``.keras`` archive (``kind`` :attr:`FileFormat.KERAS`) or an HDF5
    file (:attr:`FileFormat.HDF5`); ``None``: as :func:`file_format` recognises it.

    Errors are a :class:`LoadError` with a one-line cause.
    """
    shown = os.fspath(path)
    if not os.path.lexists(shown) or not os.path.exists(shown):
        raise LoadError("file not found")
    if os.path.isdir(shown):
        raise LoadError("is a directory, not a Keras model file")
    if not is_regular(shown):
        _refuse_irregular(shown)
    kind = kind or file_format(shown)
    if kind is FileFormat.HDF5:
        return _read_h5(shown)
    config, weights = read_archive(shown)
    if isinstance(weights, WeightsMember):
        source = {"path": weights.archive, "offset": weights.offset, "size": weights.size}
        reader = LayerVariableReader(source, KERAS3, config, KERAS_WEIGHTS_MEMBER)
        return KerasFile(shown, config, reader)
    return KerasFile(shown, config, NoVariables(weights or "weights not read"))


def _refuse_irregular(path: str) -> None:
    try:
        open_regular(path).close()  # raises NotRegularFile, naming what it is
    except OSError as exc:
        raise LoadError(f"cannot read the file: {one_line(exc.strerror or exc)}") from None


def _read_h5(path: str) -> KerasFile:
    try:
        with open_regular(path) as file:
            found = hdf5_offset(file)
    except OSError as exc:
        raise LoadError(f"cannot read the file: {one_line(exc.strerror or exc)}") from None
    if found is None:
        raise LoadError(
            "not an HDF5 file (no HDF5 signature), so not a legacy Keras .h5 model; "
            + h5.KERAS_HINT
        )
    try:
        raw = worker.request(
            {"op": "model_config", "source": {"path": path}, "limit": MAX_CONFIG_BYTES}
        ).decode("utf-8", "surrogateescape")
    except h5.H5pyMissing:
        raise LoadError(
            "an HDF5 file (a legacy Keras .h5 model?): reading it needs h5py, which is not "
            f"installed ({h5.H5PY_HINT})"
        ) from None
    except h5.UnreadableHDF5 as exc:
        raise LoadError(f"cannot read the HDF5 file: {exc}") from None
    config = parse_model_json(raw, "the model_config attribute")
    reader = LayerVariableReader({"path": path}, LEGACY, config, os.path.basename(path))
    return KerasFile(path, config, reader)


def load_graph(path: str | os.PathLike, kind: FileFormat | None = None) -> Graph:
    """The graph of the Keras model in ``path`` (see :func:`read_keras_file`); what its
    variables' reader could not read is told in ``Graph.report_notes``."""
    from deconvlint.frontends.keras.graph import graph_from_config

    model = read_keras_file(path, kind)
    name = os.path.splitext(os.path.basename(model.path))[0]
    graph = graph_from_config(model.config, name=name, variables=model.variables)
    graph.report_notes.extend(model.variables.notes)
    model.variables.notes = graph.report_notes  # what a rule's later read cannot, told there
    return graph

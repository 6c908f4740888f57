"""Where a Keras file keeps a layer's variables, and their reading (run in the HDF5 worker,
:mod:`deconvlint.frontends.keras.worker`).

- **Keras 3** (``model.weights.h5`` in a ``.keras`` archive): each layer's variables are the
  datasets ``0``, ``1`` ... of a ``vars`` group, at ``layers/<key>/vars``, a nested model's
  layers below it at ``layers/<key>/layers/<key>/vars``.  The key is not the layer's name but
  its class in snake case, numbered in the model's layer order (``conv2d_transpose``,
  ``conv2d_transpose_1``; a Sequential model leaves its ``InputLayer`` out): see
  :func:`deconvlint.frontends.keras.variables.saved_keys`.  Keras 3.15 also tags each ``vars``
  group with the layer's ``name``, which wins when present.
- **legacy** (``model_weights`` in a ``.h5``): one group per top-level layer, named after it,
  whose ``weight_names`` attribute lists its variables in order (a nested model's group lists
  those of all its layers, each name ending ``<layer>/<variable>``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deconvlint.frontends.keras import h5
from deconvlint.frontends.keras.h5 import UnreadableHDF5

LayerPath = tuple[str, ...]
KERAS3 = "keras3"
LEGACY = "legacy"


def read_layer(
    file: Any,
    layout: str,
    key: str | None,
    path: LayerPath,
    named: dict[LayerPath, str] | None = None,
) -> list[np.ndarray] | None:
    """The variables of the layer at ``path`` in the open HDF5 ``file`` (``None``: not there);
    ``key`` is the Keras 3 group the configuration predicts for it (for files without name
    tags), ``named`` the groups the file's tags give (:func:`named_groups`; read here when not
    given), which win.
    """
    if layout == LEGACY:
        return _read_legacy(file, path)
    where = (named_groups(file) if named is None else named).get(path, key)
    own = h5.child_path(file, f"{where}/vars", "group") if where else None
    return _numbered(own) if own is not None else None


def named_groups(root: Any) -> dict[LayerPath, str]:
    """Layer path -> group, from the ``name`` tags of the ``vars`` groups (Keras 3.15)."""
    found: dict[LayerPath, str] = {}
    budget = [h5.MAX_LINKS]
    pending: list[tuple[Any, LayerPath, str, int]] = [(root, (), "", 0)]
    while pending:
        group, chain, prefix, depth = pending.pop()
        layers = h5.child(group, "layers", "group") if depth < h5.MAX_DEPTH else None
        for key in h5.link_names(layers, budget) if layers is not None else ():
            layer = h5.child(layers, key, "group")
            if layer is None:
                continue
            own = h5.child(layer, "vars", "group")
            name = h5.string_attribute(own, "name") if own is not None else None
            path = f"{prefix}layers/{key}"
            if name is not None:
                found[(*chain, name)] = path
            pending.append(
                (layer, (*chain, name if name is not None else key), path + "/", depth + 1)
            )
    return found


def _numbered(group: Any) -> list[np.ndarray]:
    """The datasets ``0``, ``1`` ... of a ``vars`` group, in that order."""
    names = [n for n in h5.link_names(group, [h5.MAX_LINKS]) if n.isdigit()]
    values = []
    for name in sorted(names, key=int):
        dataset = h5.child(group, name, "dataset")
        if dataset is None:
            raise UnreadableHDF5(f"variable {name} is not a dataset of the file (a link?)")
        values.append(h5.read_dataset(dataset, f"variable {name}"))
    return values


def _own_weight_names(names: list[str], path: LayerPath) -> list[str]:
    """The ``weight_names`` of a legacy top-level group that belong to the layer at ``path``."""
    if len(path) == 1:
        return names
    mine = []
    for name in names:
        parts = name.split("/")
        if len(parts) >= 2 and parts[-2] == path[-1]:
            outer = iter(parts[:-2])
            if all(p in outer for p in path[1:-1]):  # the models between, in order
                mine.append(name)
    return mine


def _read_legacy(file: Any, path: LayerPath) -> list[np.ndarray] | None:
    weights = h5.child(file, "model_weights", "group")
    top = h5.child(weights, path[0], "group") if weights is not None and path else None
    names = h5.string_list_attribute(top, "weight_names") if top is not None else None
    if names is None:
        return None
    values = []
    for name in _own_weight_names(names, path):
        dataset = h5.child_path(top, name, "dataset")
        if dataset is None:
            raise UnreadableHDF5(f"{name!r} is not a dataset of the file (a link?)")
        values.append(h5.read_dataset(dataset, repr(name)))
    return values

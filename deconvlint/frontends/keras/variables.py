"""A layer's variables from a Keras file's HDF5, read when a rule asks (the ``LayerVariables``
callable the graph builder takes).

A layer is named by its path of layer names from the top model down (nested models included):
``("generator", "conv2d_transpose")``.  Two layouts:

- **Keras 3** (``model.weights.h5`` in a ``.keras`` archive): each layer's variables are the
  datasets ``0``, ``1`` ... of a ``vars`` group, at ``layers/<key>/vars``, a nested model's
  layers below it at ``layers/<key>/layers/<key>/vars``.  The key is not the layer's name but
  its class in snake case, numbered in the model's layer order (``conv2d_transpose``,
  ``conv2d_transpose_1``; a Sequential model leaves its ``InputLayer`` out); Keras 3.15 also
  tags each ``vars`` group with the layer's ``name``, which is used when present.
- **legacy** (``model_weights`` in a ``.h5``): one group per top-level layer, named after it,
  whose ``weight_names`` attribute lists its variables in order (a nested model's group lists
  those of all its layers, each name ending ``<layer>/<variable>``).

Failures are notes (:attr:`LayerVariableReader.notes`), one per cause, never errors: a
structural check needs no weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np

from deconvlint.errors import LoadError
from deconvlint.frontends.keras import h5
from deconvlint.frontends.keras.h5 import UnreadableHDF5

LayerPath = tuple[str, ...]
KERAS3 = "keras3"
LEGACY = "legacy"
_SKIPPED = "the checks that need weights (weight-aware rules, fixed filters) skip"


def snake_case(name: str) -> str:
    """A class name as Keras 3 keys its layers in the weights file (``keras.src.utils.naming``).

    >>> snake_case("Conv2DTranspose"), snake_case("UpSampling2D"), snake_case("InputLayer")
    ('conv2d_transpose', 'up_sampling2d', 'input_layer')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _layers(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    inner = model.get("config")
    layers = inner.get("layers") if isinstance(inner, Mapping) else None
    return (
        [layer for layer in layers if isinstance(layer, Mapping)]
        if isinstance(layers, list)
        else []
    )


def _layer_name(layer: Mapping[str, Any]) -> str | None:
    inner = layer.get("config")
    name = inner.get("name") if isinstance(inner, Mapping) else None
    name = name if isinstance(name, str) else layer.get("name")
    return name if isinstance(name, str) else None


def saved_keys(config: Mapping[str, Any]) -> dict[LayerPath, str]:
    """Where Keras 3 saves each layer's variables, from the configuration alone: layer path ->
    the group holding ``vars`` (for files without the ``name`` tags).

    >>> saved_keys({"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "InputLayer", "config": {"name": "x"}},
    ...     {"class_name": "Conv2DTranspose", "config": {"name": "up1"}},
    ...     {"class_name": "Conv2DTranspose", "config": {"name": "up2"}}]}})
    {('up1',): 'layers/conv2d_transpose', ('up2',): 'layers/conv2d_transpose_1'}
    """
    found: dict[LayerPath, str] = {}
    pending: list[tuple[Mapping[str, Any], LayerPath, str]] = [(config, (), "")]
    while pending:
        model, chain, prefix = pending.pop()
        layers = _layers(model)
        if model.get("class_name") == "Sequential" and layers:
            layers = layers[1:] if layers[0].get("class_name") == "InputLayer" else layers
        used: dict[str, int] = {}
        for layer in layers:
            kind, name = layer.get("class_name"), _layer_name(layer)
            if not isinstance(kind, str) or name is None:
                continue
            key = snake_case(kind)
            used[key] = used.get(key, -1) + 1
            group = f"{prefix}layers/{key}" + (f"_{used[key]}" if used[key] else "")
            found[(*chain, name)] = group
            if _layers(layer):
                pending.append((layer, (*chain, name), group + "/"))
    return found


def _named_groups(root: Any) -> dict[LayerPath, str]:
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


class LayerVariableReader:
    """The ``LayerVariables`` callable of one Keras file: ``reader(("up1",))`` is the list of
    that layer's variables (kernel, bias, ...) in Keras's layout, or ``None``.

    ``open_file`` opens the HDF5 bytes afresh for each call (nothing stays open between
    rules); ``layout`` is :data:`KERAS3` or :data:`LEGACY`; ``config`` the model's
    configuration.  What could not be read is told once per cause in :attr:`notes`, a list
    the caller may replace (the graph's ``report_notes``).
    """

    def __init__(
        self, open_file: Callable[[], IO[bytes]], layout: str, config: Mapping[str, Any], what: str
    ) -> None:
        self.open_file, self.layout, self.config, self.what = open_file, layout, config, what
        self.notes: list[str] = []
        self._groups: dict[LayerPath, str] | None = None
        self._told: set[str] = set()

    def __call__(self, path: LayerPath) -> list[np.ndarray] | None:
        shown = "/".join(path)
        try:
            with h5.opened(self.open_file()) as file:
                found = self._read(file, tuple(path))
        except LoadError as exc:  # h5py is not installed
            self._note(f"weights not read: {exc}; {_SKIPPED} every layer")
            return None
        except UnreadableHDF5 as exc:
            self._note(f"layer {shown!r}: weights not read: {exc}")
            return None
        except OSError as exc:
            self._note(f"weights not read: {self.what}: {h5.cause(exc)}; {_SKIPPED} every layer")
            return None
        if found is None:
            self._note(f"layer {shown!r}: no variables of it in {self.what}")
        return found

    def _note(self, text: str) -> None:
        if text not in self._told:
            self._told.add(text)
            self.notes.append(text)

    def _read(self, file: Any, path: LayerPath) -> list[np.ndarray] | None:
        if self.layout == LEGACY:
            return self._read_legacy(file, path)
        if self._groups is None:
            self._groups = {**saved_keys(self.config), **_named_groups(file)}
        where = self._groups.get(path)
        own = h5.child_path(file, f"{where}/vars", "group") if where else None
        return _numbered(own) if own is not None else None

    def _read_legacy(self, file: Any, path: LayerPath) -> list[np.ndarray] | None:
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

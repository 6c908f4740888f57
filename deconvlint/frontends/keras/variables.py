"""A layer's variables from a Keras file, read when a rule asks (the ``LayerVariables``
callable the graph builder takes).

A layer is named by its path of layer names from the top model down (nested models included):
``("generator", "conv2d_transpose")``.  Where each layout keeps it is
:mod:`~deconvlint.frontends.keras.layouts`; every read runs in the HDF5 worker
(:mod:`~deconvlint.frontends.keras.worker`), never in this process.

Failures are notes (:attr:`LayerVariableReader.notes`), one per cause, never errors: a
structural check needs no weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from deconvlint.errors import LoadError
from deconvlint.frontends.keras import worker
from deconvlint.frontends.keras.h5 import H5pyMissing, UnreadableHDF5
from deconvlint.frontends.keras.layouts import KERAS3, LayerPath

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


class LayerVariableReader:
    """The ``LayerVariables`` callable of one Keras file: ``reader(("up1",))`` is the list of
    that layer's variables (kernel, bias, ...) in Keras's layout, or ``None``.

    ``source`` says what the worker opens (``{"path": ...}`` for an HDF5 file, with ``offset``
    and ``size`` for an archive's member); ``layout`` is
    :data:`~deconvlint.frontends.keras.layouts.KERAS3` or ``LEGACY``; ``config`` the model's
    configuration; ``what`` names the file in notes.  What could not be read is told once per
    cause in :attr:`notes`, a list the caller may replace (the graph's ``report_notes``).
    """

    def __init__(
        self, source: dict[str, Any], layout: str, config: Mapping[str, Any], what: str
    ) -> None:
        self.source, self.layout, self.what = source, layout, what
        # where Keras 3 saves each layer, for files without name tags (legacy files name groups)
        self.keys = saved_keys(config) if layout == KERAS3 else {}
        self.notes: list[str] = []
        self._told: set[str] = set()

    def __call__(self, path: LayerPath) -> list[np.ndarray] | None:
        shown = "/".join(path)
        command = {"op": "variables", "source": self.source, "layout": self.layout}
        try:
            reply = worker.request({**command, "key": self.keys.get(path), "layer": list(path)})
        except H5pyMissing as exc:
            self._note(f"weights not read: {exc}; {_SKIPPED} every layer")
            return None
        except (UnreadableHDF5, LoadError) as exc:
            self._note(f"layer {shown!r}: weights not read: {exc}")
            return None
        found = worker.arrays(reply)
        if found is None:
            self._note(f"layer {shown!r}: no variables of it in {self.what}")
        return found

    def _note(self, text: str) -> None:
        if text not in self._told:
            self._told.add(text)
            self.notes.append(text)

"""Real Keras files for the reader's tests (written by Keras 3 on its torch backend), and the
tools that make hostile ones out of them.

:func:`keras_files` builds each model once per test session and saves it as ``<name>.keras``
(Keras 3's archive) and ``<name>.h5`` (its legacy format), with the weights each layer holds
in ``<name>.npz`` (``layer path joined by "/"`` -> ``get_weights()``), so that a test compares
what deconvlint reads with what Keras wrote.

Importing this module sets ``KERAS_BACKEND=torch`` (process-wide, before Keras is imported);
Keras itself is imported only when a file is built.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

#: What each built model has: the layer paths whose weights the tests read.
MODELS = ("sequential", "nested", "bfloat16", "lambda", "shared")


def _sequential(keras: Any) -> Any:
    """The DCGAN tutorial's upsampling (k5 s2 'same', no bias), with a batch norm between."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((7, 7, 8)),
            layers.Conv2DTranspose(6, 5, strides=2, padding="same", use_bias=False, name="up1"),
            layers.BatchNormalization(name="norm"),
            layers.LeakyReLU(name="act"),
            layers.Conv2DTranspose(1, 5, strides=2, padding="same", name="up2"),
        ],
        name="generator",
    )


def _nested(keras: Any) -> Any:
    """A Sequential inside a Functional model inside a Functional model."""
    layers = keras.layers
    inner = keras.Sequential(
        [keras.Input((8, 8, 4)), layers.Conv2DTranspose(4, 3, strides=2, name="ct")], name="inner"
    )
    x = keras.Input((8, 8, 4), name="mid_in")
    middle = keras.Model(x, layers.Conv2D(3, 3, name="mid_conv")(inner(x)), name="middle")
    y = keras.Input((8, 8, 4), name="image")
    out = layers.Conv2DTranspose(2, 4, strides=2, padding="same", name="head")(middle(y))
    return keras.Model(y, out, name="outer")


def _bfloat16(keras: Any) -> Any:
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            layers.Conv2DTranspose(2, 3, strides=2, dtype="bfloat16", name="bf"),
        ],
        name="half",
    )


def _lambda(keras: Any) -> Any:
    """A Lambda layer whose function writes a file when it runs with ``DECONVLINT_MARKER`` set:
    its marshalled bytecode is in the configuration, and checking must never run it."""
    layers = keras.layers
    x = keras.Input((8, 8, 2), name="x")
    up = layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="up_a")(x)
    marked = layers.Lambda(
        lambda t: (
            __import__("pathlib").Path(__import__("os").environ["DECONVLINT_MARKER"]).touch()
            if "DECONVLINT_MARKER" in __import__("os").environ
            else None,
            t * 1.0,
        )[1],
        name="scale",
    )(up)
    out = layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="up_b")(marked)
    return keras.Model(x, out, name="with_lambda")


def _shared(keras: Any) -> Any:
    """A nested model called twice and a layer called twice: their variables are saved once."""
    layers = keras.layers
    block = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2DTranspose(2, 4, strides=2, padding="same", name="ct"),
        ],
        name="block",
    )
    smooth = layers.Conv2D(2, 3, padding="same", name="smooth")
    a, b = keras.Input((8, 8, 2), name="a"), keras.Input((8, 8, 2), name="b")
    out = layers.Add(name="sum")([smooth(block(a)), smooth(block(b))])
    return keras.Model([a, b], out, name="twice")


_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "sequential": _sequential,
    "nested": _nested,
    "bfloat16": _bfloat16,
    "lambda": _lambda,
    "shared": _shared,
}


def layer_weights(model: Any, chain: tuple[str, ...] = ()) -> Iterator[tuple[str, list]]:
    """``("outer/inner/ct", [kernel, bias])`` for every layer with variables, nested included."""
    for layer in model.layers:
        path = (*chain, layer.name)
        if hasattr(layer, "layers"):
            yield from layer_weights(layer, path)
        elif layer.weights:
            yield "/".join(path), [np.asarray(w) for w in layer.get_weights()]


def keras_files(root: Path) -> dict[str, Path]:
    """Build (once: the files stay in ``root``) each model of :data:`MODELS`; name -> the
    ``.keras`` path (the ``.h5`` and ``.npz`` beside it)."""
    found = {name: root / f"{name}.keras" for name in MODELS}
    if all(path.exists() and path.with_suffix(".npz").exists() for path in found.values()):
        return found
    import keras

    root.mkdir(parents=True, exist_ok=True)
    for name, builder in _BUILDERS.items():
        keras.utils.set_random_seed(0)
        model = builder(keras)
        model.save(found[name])
        model.save(found[name].with_suffix(".h5"))
        weights = {f"{path}#{i}": w for path, ws in layer_weights(model) for i, w in enumerate(ws)}
        np.savez(
            found[name].with_suffix(".npz"),
            **{k: np.asarray(v, np.float32) for k, v in weights.items()},
        )
    return found


def saved_weights(keras_path: Path) -> dict[tuple[str, ...], list[np.ndarray]]:
    """What Keras says each layer's variables are, by layer path (see :func:`keras_files`)."""
    by_layer: dict[tuple[str, ...], list[np.ndarray]] = {}
    with np.load(keras_path.with_suffix(".npz")) as saved:
        for key in sorted(saved.files, key=lambda k: (k.split("#")[0], int(k.split("#")[1]))):
            path, _ = key.split("#")
            by_layer.setdefault(tuple(path.split("/")), []).append(saved[key])
    return by_layer


def rewrite_archive(source: Path, target: Path, members: dict[str, bytes | str | None]) -> Path:
    """A copy of the ``.keras`` archive ``source`` with ``members`` replaced or added (name ->
    bytes), or left out (name -> ``None``)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename not in members:
                new.writestr(info, old.read(info))
        for name, value in members.items():
            if value is not None:
                new.writestr(name, value)
    return target


def weights_member(path: Path) -> bytes:
    """The ``model.weights.h5`` bytes of a ``.keras`` archive."""
    with zipfile.ZipFile(path) as archive:
        return archive.read("model.weights.h5")


def edited_h5(data: bytes, edit: Callable[[Any], None]) -> bytes:
    """HDF5 bytes after ``edit(h5py.File)`` has changed them (in memory)."""
    import h5py

    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as h5:
        edit(h5)
    return buffer.getvalue()


def config_of(path: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a ``.keras`` archive, as Keras wrote it."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))

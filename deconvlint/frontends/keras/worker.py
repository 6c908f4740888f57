"""Every h5py read in a forked worker process, bounded in time and memory.

HDF5's C library loops forever on some corrupt files (a flipped byte in a legacy ``.h5``
spins in the read of ``model_config``) and may crash on others; h5py holds the GIL while it
runs, so nothing in the checker's own process could stop it.  The reads therefore run in one
long-lived worker (the same machinery as ONNX shape inference,
:class:`~deconvlint.frontends.onnx.infer.InferenceWorker`): at most :data:`TIMEOUT` seconds a
request and 4 GiB of address space beyond what it inherited; a worker that overruns is killed
and the file gets a one-line error (or, for weights, a note).  h5py is imported in the worker
only, never in the checker's process.

A request is JSON (what to open, what to read); a reply is one tag byte and its data: ``K``
and the result (the configuration's text, or the variables as ``.npy`` records, never a
pickle), ``M`` h5py is missing, ``U`` the file cannot be read, ``L`` the file is not a model.
"""

from __future__ import annotations

import atexit
import io
import json
import os
from typing import Any

import numpy as np

from deconvlint.errors import LoadError
from deconvlint.files import open_regular
from deconvlint.frontends.keras import h5
from deconvlint.frontends.keras.h5 import H5pyMissing, UnreadableHDF5
from deconvlint.frontends.keras.layouts import KERAS3, LayerPath, named_groups, read_layer
from deconvlint.frontends.onnx.infer import InferenceWorker

#: Seconds one read may take (a 256 MiB dataset reads in well under one).
TIMEOUT = 60.0

WORKER = InferenceWorker(
    crashed="h5py crashed on this file", failed="the process reading HDF5 failed"
)
atexit.register(WORKER.stop)


def request(command: dict[str, Any]) -> bytes:
    """``command`` run in the worker; its result, or :class:`H5pyMissing`,
    :class:`UnreadableHDF5` or :class:`LoadError` with a one-line cause."""
    try:
        reply = WORKER.run(json.dumps(command).encode(), serve, TIMEOUT)
    except RuntimeError as exc:  # the worker crashed, overran or could not start
        raise UnreadableHDF5(f"reading it with h5py: {exc}") from None
    tag, body = reply[:1], reply[1:]
    text = body.decode("utf-8", "surrogateescape")
    if tag == b"M":
        raise H5pyMissing(text)
    if tag == b"U":
        raise UnreadableHDF5(text)
    if tag == b"L":
        raise LoadError(text)
    return body


def serve(payload: bytes) -> bytes:
    """The worker's side of :func:`request`."""
    command = json.loads(payload)
    try:
        h5.import_h5py()
        with h5.opened(_open(command["source"])) as file:
            if command["op"] == "model_config":
                return b"K" + _model_config(file, command["limit"]).encode(
                    "utf-8", "surrogateescape"
                )
            named = _named(file, command["source"]) if command["layout"] == KERAS3 else None
            found = read_layer(
                file, command["layout"], command["key"], tuple(command["layer"]), named
            )
    except H5pyMissing as exc:
        return b"M" + str(exc).encode()
    except LoadError as exc:
        return b"L" + str(exc).encode("utf-8", "surrogateescape")
    except UnreadableHDF5 as exc:
        return b"U" + str(exc).encode("utf-8", "surrogateescape")
    except OSError as exc:
        return b"U" + h5.cause(exc).encode("utf-8", "surrogateescape")
    if found is None:
        return b"K"
    out = io.BytesIO()
    for array in found:
        np.lib.format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)
    return b"K" + out.getvalue()


#: The worker's memory of each weights file's layer groups (a walk of every link), by the
#: file's identity and version: a model's layers are asked for one by one.
_NAMED: dict[tuple[Any, ...], dict[LayerPath, str]] = {}


def _named(file: Any, source: dict[str, Any]) -> dict[LayerPath, str]:
    info = os.stat(source["path"])
    stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, json.dumps(source))
    if stamp not in _NAMED:
        if len(_NAMED) >= 8:
            _NAMED.clear()
        _NAMED[stamp] = named_groups(file)
    return _NAMED[stamp]


def arrays(data: bytes) -> list[np.ndarray] | None:
    """The variables of a ``K`` reply (``None``: the layer is not in the file)."""
    if not data:
        return None
    stream, found = io.BytesIO(data), []
    while stream.tell() < len(data):
        found.append(np.lib.format.read_array(stream, allow_pickle=False))
    return found


def _open(source: dict[str, Any]) -> Any:
    if "offset" in source:  # a member of a .keras archive
        from deconvlint.frontends.keras.archive import WeightsMember

        return WeightsMember(source["path"], source["offset"], source["size"]).open()
    return open_regular(source["path"])


def _model_config(file: Any, limit: int) -> str:
    raw = h5.string_attribute(file, "model_config", limit)
    if raw is None:
        raise LoadError(_not_a_model(file))
    return raw


def _not_a_model(file: Any) -> str:
    """What an HDF5 file without ``model_config`` is, and what to pass instead."""
    if h5.child(file, "layers", "group") is not None or h5.child(file, "vars", "group"):
        return (
            "a Keras weights file (model.save_weights('x.weights.h5')), not a model: it has no "
            f"model_config; {h5.KERAS_HINT}"
        )
    if h5.has_attribute(file, "layer_names"):
        return (
            "a legacy Keras weights file (model.save_weights to .h5), not a model: it has no "
            f"model_config; {h5.KERAS_HINT}, or the .h5 that model.save writes"
        )
    return (
        "an HDF5 file without a model_config attribute, so not a Keras model (data?); "
        f"{h5.KERAS_HINT}, or the .h5 that model.save writes"
    )

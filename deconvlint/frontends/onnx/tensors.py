"""Tensors of an ONNX model: where they live, whether their external data is safe to read, reading.

External data is refused when its location is absolute, has a ``..`` component, or reaches
outside the model's folder through a symlink.  The symlink walk only ``lstat``s and ``readlink``s
paths *inside* the folder: a target outside is refused before anything there is touched.

>>> from onnx import helper, TensorProto
>>> t = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
>>> read_tensor(t, None).tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from deconvlint.errors import LoadError
from deconvlint.files import open_regular
from deconvlint.frontends.onnx.proto import np_dtype, to_array
from deconvlint.frontends.onnx.proto import proto as _proto

_MAX_SYMLINK_HOPS = 40


def is_external(tensor: Any) -> bool:
    TensorProto = _proto().TensorProto

    return tensor.data_location == TensorProto.EXTERNAL


def element_count(tensor: Any) -> int | None:
    """Number of elements from ``dims``; ``None`` for nonsense dims (negative)."""
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        return None
    return math.prod(dims)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        yield from _attribute_tensors(attr)


def _attribute_tensors(attr: Any) -> Iterator[Any]:
    if attr.HasField("t"):
        yield attr.t
    yield from attr.tensors
    if attr.HasField("sparse_tensor"):
        yield attr.sparse_tensor.values
        yield attr.sparse_tensor.indices
    for sub in attr.sparse_tensors:
        yield sub.values
        yield sub.indices
    if attr.HasField("g"):
        yield from _graph_tensors(attr.g)
    for g in attr.graphs:
        yield from _graph_tensors(g)


def model_tensors(model: Any) -> Iterator[Any]:
    """Every tensor stored in the model: initializers (sparse ones too), node attributes,
    subgraphs, function bodies and the default values of function attributes, and the graphs
    of ``training_info``.  The top-level initializers come first."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)
        for attr in function.attribute_proto:  # defaults of the function's attributes
            yield from _attribute_tensors(attr)
    for training in model.training_info:
        for graph in (training.initialization, training.algorithm):
            yield from _graph_tensors(graph)


#: What a protobuf can hold at most (2 GiB); a tensor stored inside the file cannot be larger.
MAX_INLINE_BYTES = 1 << 31


_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data",
                 "uint64_data")  # fmt: skip


def _elements_held(tensor: Any, file_size: int | None = None) -> int:
    """An upper bound on the elements the tensor's data can hold (0: it holds no data): every
    element takes at least half a byte of the serialized message (int4).  Neither ``HasField``
    nor ``ByteSize`` copies the data.  ``file_size`` is the serialized size of the whole tensor
    when ``tensor`` is only its header (the skimming reader left the data in the file): it holds
    data when the whole is larger than the header."""
    if file_size is not None:
        return 2 * file_size if file_size > tensor.ByteSize() else 0
    has_data = tensor.HasField("raw_data") or any(len(getattr(tensor, f)) for f in _TYPED_FIELDS)
    return 2 * tensor.ByteSize() if has_data else 0


def check_tensor_sizes(
    model: Any, deferred_size: Callable[[str], int | None] | None = None
) -> None:
    """Raise :class:`LoadError` for a tensor in the file whose ``dims`` claim more elements than
    its data holds, or more than a protobuf can hold.  onnx's shape inference trusts ``dims``
    and would loop over (or allocate) all of them: ``dims=[2**40]`` on a two-element index
    tensor kept it busy for minutes.

    >>> from onnx import helper, TensorProto
    >>> t = helper.make_tensor("idx", TensorProto.INT64, [2], [2, 3])
    >>> t.dims[0] = 2**40
    >>> check_tensor_sizes(helper.make_model(helper.make_graph([], "g", [], [], [t])))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deconvlint.errors.LoadError: tensor 'idx': dims [1099511627776] claim ... holds at most ...
    """
    # model_tensors yields the top-level initializers first: only those can be headers
    headers = len(model.graph.initializer) if deferred_size is not None else 0
    for index, tensor in enumerate(model_tensors(model)):
        if is_external(tensor):
            continue
        count = element_count(tensor)
        if count is None:
            raise LoadError(f"tensor {tensor.name!r}: negative dims {list(tensor.dims)}")
        size = deferred_size(tensor.name) if index < headers else None  # type: ignore[misc]
        held = _elements_held(tensor, size)
        if count > held and (held > 0 or count > 4 * MAX_INLINE_BYTES):
            raise LoadError(
                f"tensor {tensor.name!r}: dims {list(tensor.dims)} claim {count} elements, "
                f"but its data holds at most {held}"
            )


def external_info(tensor: Any) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def _refuse(tensor: Any, location: str, why: str) -> LoadError:
    return LoadError(
        f"tensor {tensor.name!r} has external data at {location!r}, {why}; refusing to read it"
    )


def check_external_locations(model: Any, base_dir: Path | None) -> None:
    """Raise :class:`LoadError` for any external-data location, anywhere in the model (see
    :func:`model_tensors`), that could leave the folder; nothing outside it is opened
    or even ``stat``-ed."""
    real_base = os.path.realpath(base_dir) if base_dir is not None else None
    for tensor in model_tensors(model):
        if is_external(tensor):
            check_location(tensor, real_base)


def check_location(tensor: Any, real_base: str | None) -> str:
    """The external-data location of ``tensor``, after checking that it stays inside the folder
    ``real_base`` (a real path; ``None``: only its spelling is checked)."""
    location = external_info(tensor).get("location", "")
    if not location:
        raise LoadError(f"tensor {tensor.name!r} is marked external but names no location")
    if "\x00" in location:
        raise _refuse(tensor, location, "which contains a NUL byte")
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if (
        location.startswith(("/", "\\"))
        or os.path.isabs(location)
        or (len(location) > 1 and location[1] == ":")
    ):
        raise _refuse(tensor, location, "an absolute path")
    if ".." in parts:
        raise _refuse(tensor, location, "which climbs out of the model's folder ('..')")
    if real_base is not None and not _stays_inside(real_base, parts):
        raise _refuse(tensor, location, "which a symlink leads outside the model's folder")
    return location


def _stays_inside(real_base: str, parts: tuple[str, ...]) -> bool:
    """Follow ``parts`` from ``real_base`` symlink by symlink without touching anything outside."""
    current, pending, hops = real_base, list(parts), 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":  # only reachable through a symlink target
            if current == real_base:
                return False
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:  # missing: nothing to follow; reading it later fails with a note
            current = candidate
            continue
        if not stat.S_ISLNK(mode):
            current = candidate
            continue
        hops += 1
        if hops > _MAX_SYMLINK_HOPS:
            return False
        target = os.readlink(candidate)
        if os.path.isabs(target):
            target = os.path.normpath(target)
            try:
                if os.path.commonpath([target, real_base]) != real_base:
                    return False
            except ValueError:  # another drive
                return False
            current, target = real_base, os.path.relpath(target, real_base)
        pending = list(PurePosixPath(target.replace("\\", "/")).parts) + pending
    return True


def read_tensor(tensor: Any, base_dir: Path | None, max_elements: int | None = None) -> np.ndarray:
    """The tensor as a numpy array, reading external data from inside ``base_dir`` only (the
    location is checked again here, and only a regular file is opened).

    Raises ``ValueError`` with a short reason when it cannot be read.
    """
    TensorProto = _proto().TensorProto

    count = element_count(tensor)
    if count is None:
        raise ValueError(f"tensor {tensor.name!r} has negative dims {list(tensor.dims)}")
    if max_elements is not None and count > max_elements:
        raise ValueError(f"tensor {tensor.name!r} is too large ({count} elements)")
    if not is_external(tensor):
        return to_array(tensor)
    inline = TensorProto()
    inline.CopyFrom(tensor)
    inline_external(inline, base_dir)
    return to_array(inline)


def inline_external(tensor: Any, base_dir: Path | None) -> None:
    """Replace ``tensor``'s external-data reference by the bytes it names, read from inside
    ``base_dir`` only (the location is checked here, and only a regular file is opened).

    Raises ``ValueError`` with a short reason when they cannot be read.
    """
    TensorProto = _proto().TensorProto

    if base_dir is None:
        raise ValueError(
            f"tensor {tensor.name!r} is stored externally and the model's folder is unknown"
        )
    try:
        check_location(tensor, os.path.realpath(base_dir))
    except LoadError as exc:
        raise ValueError(str(exc)) from None
    count = element_count(tensor)
    if count is None:
        raise ValueError(f"tensor {tensor.name!r} has negative dims {list(tensor.dims)}")
    info = external_info(tensor)
    itemsize = np_dtype(tensor.data_type).itemsize
    nbytes = count * itemsize
    offset = int(info.get("offset", 0) or 0)
    length = int(info.get("length", nbytes) or nbytes)
    if offset < 0 or length != nbytes:
        raise ValueError(
            f"tensor {tensor.name!r}: external data offset/length do not match its shape"
        )
    try:
        with open_regular(Path(base_dir) / info["location"]) as handle:
            handle.seek(offset)
            raw = handle.read(length)
    except OSError as exc:
        raise ValueError(
            f"tensor {tensor.name!r}: cannot read external data "
            f"{info['location']!r} ({exc.strerror or exc})"
        ) from None
    if len(raw) != length:
        raise ValueError(
            f"tensor {tensor.name!r}: external data file {info['location']!r} is "
            f"shorter than the tensor"
        )
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT
    tensor.raw_data = raw

"""Read an ONNX file without reading its weights: memory-map it, frame the protobuf fields of the
model and its graph by hand, and hand every part the checker needs to onnx's own parser.

Only the *framing* is walked here (tag, length) at two levels: ``ModelProto`` and the
``GraphProto`` of its ``graph`` field.  Nodes, value infos, functions, opsets and every other
field are sliced out verbatim and parsed by ``ModelProto.ParseFromString``, so their decoding is
exactly onnx's.  An initializer with more than ``MAX_ELEMENTS`` elements (or external data) keeps
only its header fields (name, dims, type, location...): its data is never copied and is decoded
from the mapped file only when asked (:meth:`SkimmedModel.tensor`).  Smaller initializers (shape
constants the folder evaluates) are kept whole.  The skimmed model is therefore what the full
path would see after :func:`deconvlint.frontends.onnx_prepare.working_copy` stubs the weights.

Framing errors (a truncated varint, a length past the end, such as one claiming 2**60 bytes,
field number 0, wire type 6 or 7) raise :class:`SkimError`: the full parser rejects those files
too.  Protobuf groups (wire types 3 and 4), which ONNX never writes, raise :class:`NeedsFullParse`
and the caller falls back to ``onnx.load``.

>>> import tempfile, os
>>> from onnx import helper, TensorProto
>>> w = helper.make_tensor("w", TensorProto.FLOAT, [8, 8, 8, 16], [0.5] * 8192)
>>> g = helper.make_graph([], "g", [], [], initializer=[w])
>>> path = os.path.join(tempfile.mkdtemp(), "m.onnx")
>>> with open(path, "wb") as f:
...     _ = f.write(helper.make_model(g).SerializeToString())
>>> skim = SkimmedModel.open(path)
>>> stub = skim.model.graph.initializer[0]
>>> print(list(stub.dims), len(stub.float_data), skim.tensor("w").sum())
[8, 8, 8, 16] 0 4096.0
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from deconvlint.files import open_regular
from deconvlint.frontends.onnx_fold import MAX_ELEMENTS
from deconvlint.frontends.onnx_tensors import element_count, is_external, read_tensor

__all__ = ["NeedsFullParse", "SkimError", "SkimmedModel", "skim_bytes"]

_MODEL_GRAPH = 7  # ModelProto.graph
_GRAPH_INITIALIZER = 5  # GraphProto.initializer
# TensorProto data fields: float_data, int32_data, string_data, int64_data, raw_data,
# double_data, uint64_data
_TENSOR_DATA = frozenset({4, 5, 6, 7, 9, 10, 11})
_PACKED_WIDTH = {4: 4, 10: 8}  # packed float_data / double_data: whole items only
_PACKED_VARINT = frozenset({5, 7, 11})


class SkimError(ValueError):
    """The file's protobuf framing is broken (the full parser rejects it too)."""


class NeedsFullParse(Exception):
    """A legal but unusual encoding (groups) this reader leaves to the full parser."""


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; at most 10 bytes, never past ``end``."""
    value = shift = 0
    for i in range(pos, min(pos + 10, end)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise SkimError("truncated or overlong varint")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf: Any, start: int, end: int):  # -> Iterator[tuple[int, int, int, int, int]]
    """``(field, wire_type, field_start, value_start, value_end)`` for each field in a span."""
    pos = start
    while pos < end:
        key, value_start = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise SkimError("field number 0")
        if wire == 0:
            _, value_end = _varint(buf, value_start, end)
        elif wire == 1:
            value_end = value_start + 8
        elif wire == 5:
            value_end = value_start + 4
        elif wire == 2:
            length, value_start = _varint(buf, value_start, end)
            value_end = value_start + length  # checked against end below: 2**60 is refused
        elif wire in (3, 4):
            raise NeedsFullParse("protobuf group")
        else:
            raise SkimError(f"wire type {wire}")
        if value_end > end:
            raise SkimError("a field runs past the end of its message")
        yield field, wire, pos, value_start, value_end
        pos = value_end


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


class _Pieces:
    """Output bytes as spans of the input (adjacent spans merged) and literal bytes."""

    def __init__(self, buf: Any) -> None:
        self.buf, self.parts, self.span = buf, [], None  # type: ignore[var-annotated]

    def keep(self, start: int, end: int) -> None:
        if self.span is not None and self.span[1] == start:
            self.span = (self.span[0], end)
            return
        self._flush()
        self.span = (start, end)

    def add(self, literal: bytes) -> None:
        self._flush()
        self.parts.append(literal)

    def _flush(self) -> None:
        if self.span is not None:
            self.parts.append(bytes(self.buf[self.span[0] : self.span[1]]))
            self.span = None

    def join(self) -> bytes:
        self._flush()
        return b"".join(self.parts)


def _tensor_header(buf: Any, start: int, end: int) -> bytes:
    """The tensor's fields without its data; the data fields get the full parser's cheap checks."""
    pieces = _Pieces(buf)
    for field, wire, f_start, v_start, v_end in _fields(buf, start, end):
        if field not in _TENSOR_DATA:
            pieces.keep(f_start, v_end)
            continue
        if wire == 2 and field in _PACKED_WIDTH and (v_end - v_start) % _PACKED_WIDTH[field]:
            raise SkimError("packed tensor data of a partial item")
        if wire == 2 and field in _PACKED_VARINT and v_end > v_start and buf[v_end - 1] >= 0x80:
            raise SkimError("packed tensor data ends inside a varint")
    return pieces.join()


def _skim_graph(buf: Any, start: int, end: int, deferred: dict[str, tuple[int, int]]) -> bytes:
    from onnx import TensorProto

    pieces = _Pieces(buf)
    for field, wire, f_start, v_start, v_end in _fields(buf, start, end):
        if field != _GRAPH_INITIALIZER or wire != 2:
            pieces.keep(f_start, v_end)
            continue
        header = _tensor_header(buf, v_start, v_end)
        try:
            stub = TensorProto.FromString(header)
        except Exception as exc:  # DecodeError: the full parse fails on this tensor too
            raise SkimError(f"initializer: {exc}") from None
        count = element_count(stub)
        if count is not None and count <= MAX_ELEMENTS and not is_external(stub):
            pieces.keep(f_start, v_end)  # small: the constant folder reads it
            deferred.pop(stub.name, None)
            continue
        pieces.add(_length_delimited(_GRAPH_INITIALIZER, header))
        deferred[stub.name] = (v_start, v_end)  # a later one of the same name wins, as in a dict
    return pieces.join()


def skim_bytes(buf: Any) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """The serialized model with large initializers reduced to headers, and where each of those
    initializers lies in ``buf`` (by name).  Raises :class:`SkimError` or :class:`NeedsFullParse`.
    """
    pieces = _Pieces(buf)
    deferred: dict[str, tuple[int, int]] = {}
    for field, wire, f_start, v_start, v_end in _fields(buf, 0, len(buf)):
        if field == _MODEL_GRAPH and wire == 2:
            pieces.add(_length_delimited(field, _skim_graph(buf, v_start, v_end, deferred)))
        else:
            pieces.keep(f_start, v_end)
    return pieces.join(), deferred


class SkimmedModel:
    """An ONNX file read for checking: :attr:`model` is a ``ModelProto`` whose large top-level
    initializers carry no data; :meth:`tensor` reads one of them from the file when asked.

    The file is mapped only while it is skimmed; a later :meth:`tensor` reads the tensor's bytes
    with one positioned read, after checking the file has not changed (size, mtime) since.
    Nothing stays open, so a graph whose weight readers outlive the load holds no descriptor.
    """

    def __init__(
        self, model: Any, path: Path, deferred: dict[str, tuple[int, int]], stamp: tuple[int, int]
    ) -> None:
        self.model, self.path, self._deferred, self._stamp = model, path, deferred, stamp

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @classmethod
    def open(cls, path: str | os.PathLike) -> SkimmedModel:
        """Map and skim ``path``; raises OSError, :class:`SkimError`, :class:`NeedsFullParse`
        or protobuf's DecodeError."""
        from onnx import ModelProto

        file = Path(os.fspath(path))
        with open_regular(file) as handle:
            info = os.fstat(handle.fileno())
            if not info.st_size:
                skimmed, deferred = skim_bytes(b"")
            else:
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                    skimmed, deferred = skim_bytes(buf)
        model = ModelProto()
        model.ParseFromString(skimmed)
        return cls(model, file, deferred, (info.st_size, info.st_mtime_ns))

    def is_deferred(self, name: str) -> bool:
        """Whether top-level initializer ``name`` had its data left in the file."""
        return name in self._deferred

    def deferred_size(self, name: str) -> int | None:
        """The serialized size in the file of top-level initializer ``name`` if its data was left
        there, else ``None`` (so that size checks see the whole tensor, not its header)."""
        span = self._deferred.get(name)
        return None if span is None else span[1] - span[0]

    def deferred_tensor(self, name: str) -> Any:
        """The whole ``TensorProto`` of ``name`` if its data was left in the file, else ``None``."""
        return self.tensor_proto(name) if name in self._deferred else None

    def tensor_proto(self, name: str) -> Any:
        """The whole ``TensorProto`` of top-level initializer ``name`` (``KeyError`` when there
        is none); a deferred one is read from the file and parsed now (``ValueError`` when the
        file changed or the bytes do not parse)."""
        from onnx import TensorProto

        if name not in self._deferred:
            for tensor in reversed(self.model.graph.initializer):
                if tensor.name == name:
                    return tensor
            raise KeyError(name)
        start, end = self._deferred[name]
        try:
            with open_regular(self.path) as handle:
                info = os.fstat(handle.fileno())
                if (info.st_size, info.st_mtime_ns) != self._stamp:
                    raise ValueError("the model file changed since it was read")
                raw = os.pread(handle.fileno(), end - start, start)
        except OSError as exc:
            raise ValueError(f"cannot read the model file again ({exc.strerror or exc})") from None
        if len(raw) != end - start:
            raise ValueError("the model file changed since it was read")
        try:
            return TensorProto.FromString(raw)
        except Exception as exc:  # DecodeError
            raise ValueError(f"tensor {name!r} does not parse ({exc})") from None

    def tensor(self, name: str, max_elements: int | None = None) -> np.ndarray:
        """Initializer ``name`` as an array; external data is read from inside the model's folder
        only (locations are checked by the front end before any rule runs).

        Raises ``KeyError`` for an unknown name, ``ValueError`` when it cannot be read.
        """
        return read_tensor(self.tensor_proto(name), self.base_dir, max_elements)

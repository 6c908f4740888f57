"""Read an ONNX file without reading its weights: frame the protobuf fields of the model and its
graph by hand, with positioned reads, and hand every part the checker needs to onnx's own parser.

Only the *framing* is walked here (tag, length) at two levels: ``ModelProto`` and the
``GraphProto`` of its ``graph`` field.  Nodes, value infos, functions, opsets and every other
field are sliced out verbatim and parsed by ``ModelProto.ParseFromString``, so their decoding is
exactly onnx's; only a field longer than ``SKIP_ABOVE`` is looked into, and left out when the
checker does not need it (a doc string, an unknown field: a sparse file can claim gigabytes).
An initializer with more than ``MAX_ELEMENTS`` elements (or external data) keeps only its header
fields (name, dims, type, location...): its data is never copied and is decoded from the file
only when asked (:meth:`SkimmedModel.tensor`).  Smaller initializers (shape constants the folder
evaluates) are kept whole.  The skimmed model is therefore what the full path would see after
:func:`deconvlint.frontends.onnx.prepare.working_copy` stubs the weights.

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

import os
from pathlib import Path
from typing import Any

import numpy as np

from deconvlint.files import open_regular
from deconvlint.frontends.onnx.fold import MAX_ELEMENTS
from deconvlint.frontends.onnx.proto import proto as _proto
from deconvlint.frontends.onnx.tensors import element_count, is_external, read_tensor

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


class FileBytes:
    """A file indexed like ``bytes`` through positioned reads: the framing's small reads are
    served from one window of ``WINDOW`` bytes, a slice is read when asked.  Nothing is mapped,
    so a file's size costs no address space and no page is touched that is not read.

    A read that comes back short (the file shrank) raises :class:`SkimError`."""

    WINDOW = 1 << 16

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size, self.data, self.base = fd, size, b"", 0

    def __len__(self) -> int:
        return self.size

    def window(self, pos: int) -> tuple[bytes, int]:
        """Bytes starting at or before ``pos`` and holding at least 10 bytes from it (fewer
        at the end of the file), and the offset of their first byte."""
        if not self.base <= pos <= self.base + len(self.data) - min(10, self.size - pos):
            self.data, self.base = os.pread(self.fd, self.WINDOW, pos), pos
            if len(self.data) < min(10, self.size - pos):
                raise SkimError("the file changed while it was read")
        return self.data, self.base

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, int):
            data, base = self.window(key)
            return data[key - base]
        start, stop = key.start, key.stop
        if self.base <= start and stop <= self.base + len(self.data):
            return self.data[start - self.base : stop - self.base]
        data = os.pread(self.fd, stop - start, start)
        if len(data) != stop - start:
            raise SkimError("the file changed while it was read")
        return data


def _window(buf: Any, pos: int) -> tuple[Any, int]:
    return buf.window(pos) if isinstance(buf, FileBytes) else (buf, 0)


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; at most 10 bytes, never past ``end``."""
    value = shift = 0
    data, base = _window(buf, pos)
    for i in range(pos, min(pos + 10, end)):
        byte = data[i - base]
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


#: A field longer than this that the checker does not need (a doc string, an unknown field, a
#: training graph) is skipped by its length, never copied: a 12 KB sparse file can claim a
#: 4 GiB doc string.  A needed message this long is framed in turn, so that what it holds is
#: skipped the same way; shorter spans are kept verbatim (cheap, and exactly onnx's parse).
SKIP_ABOVE = 1 << 20

#: Protobuf's own nesting limit; a hostile file nests long messages to exhaust the stack.
_MAX_DEPTH = 100

# Per message: the fields the checker reads, each mapped to the message it holds (framed when
# long) or to None (kept whole).  Every other field is dropped when longer than SKIP_ABOVE.
_NEEDED: dict[str, dict[int, str | None]] = {
    # ir_version, graph, opset_import, metadata_props, functions
    "model": {1: None, 7: "graph", 8: None, 14: None, 25: "function"},
    # node, name, initializer, input, output, value_info, sparse_initializer, metadata_props
    "graph": {1: "node", 2: None, 5: "tensor", 11: "value", 12: "value", 13: "value",
              15: None, 16: None},
    # input, output, name, op_type, attribute, domain, overload, metadata_props
    "node": {1: None, 2: None, 3: None, 4: None, 5: "attribute", 7: None, 8: None, 9: None},
    # everything but doc_string (13); t, tensors, g, graphs framed
    "attribute": {1: None, 2: None, 3: None, 4: None, 5: "tensor", 6: "graph", 7: None,
                  8: None, 9: None, 10: "tensor", 11: "graph", 14: None, 15: None, 20: None,
                  21: None, 22: None, 23: None},
    # name, type, metadata_props
    "value": {1: None, 2: None, 4: None},
    # everything but doc_string (12)
    "tensor": {1: None, 2: None, 3: None, 4: None, 5: None, 6: None, 7: None, 8: None,
               9: None, 10: None, 11: None, 13: None, 14: None, 16: None},
    # everything but doc_string (8); node, attribute_proto, value_info framed
    "function": {1: None, 4: None, 5: None, 6: None, 7: "node", 9: None, 10: None,
                 11: "attribute", 12: "value", 13: None, 14: None},
}  # fmt: skip


def _skim_field(
    pieces: _Pieces, buf: Any, kind: str, depth: int, field: int, wire: int, span: tuple[int, ...]
) -> None:
    """Add one field of a ``kind`` message to ``pieces``; a long unneeded one is left out."""
    f_start, v_start, v_end = span
    needed = _NEEDED[kind]
    if v_end - v_start <= SKIP_ABOVE or (field in needed and (wire != 2 or not needed[field])):
        pieces.keep(f_start, v_end)
    elif field in needed:
        if depth >= _MAX_DEPTH:
            raise SkimError("messages nested too deeply")
        inner = _Pieces(buf)
        for sub in _fields(buf, v_start, v_end):
            _skim_field(inner, buf, needed[field], depth + 1, sub[0], sub[1], sub[2:])  # type: ignore[arg-type]
        pieces.add(_length_delimited(field, inner.join()))
    # else: skipped by its length, never touched nor copied


def _tensor_header(buf: Any, start: int, end: int) -> tuple[bytes, list[tuple[int, int]]]:
    """The tensor's fields without its data (the data fields get the full parser's cheap
    checks), and the spans of the tensor that hold what a whole read needs: all but the long
    unneeded fields."""
    pieces = _Pieces(buf)
    spans: list[tuple[int, int]] = []
    needed = _NEEDED["tensor"]
    for field, wire, f_start, v_start, v_end in _fields(buf, start, end):
        if field not in needed and v_end - v_start > SKIP_ABOVE:
            continue
        if spans and spans[-1][1] == f_start:
            spans[-1] = (spans[-1][0], v_end)
        else:
            spans.append((f_start, v_end))
        if field not in _TENSOR_DATA:
            pieces.keep(f_start, v_end)
            continue
        if wire == 2 and field in _PACKED_WIDTH and (v_end - v_start) % _PACKED_WIDTH[field]:
            raise SkimError("packed tensor data of a partial item")
        if wire == 2 and field in _PACKED_VARINT and v_end > v_start and buf[v_end - 1] >= 0x80:
            raise SkimError("packed tensor data ends inside a varint")
    return pieces.join(), spans


#: Where a deferred initializer lies in the file: its whole span, and the parts of it to read.
Deferred = tuple[tuple[int, int], list[tuple[int, int]]]


def _skim_graph(buf: Any, start: int, end: int, deferred: dict[str, Deferred]) -> bytes:
    TensorProto = _proto().TensorProto

    pieces = _Pieces(buf)
    for field, wire, f_start, v_start, v_end in _fields(buf, start, end):
        if field != _GRAPH_INITIALIZER or wire != 2:
            _skim_field(pieces, buf, "graph", 1, field, wire, (f_start, v_start, v_end))
            continue
        header, spans = _tensor_header(buf, v_start, v_end)
        try:
            stub = TensorProto.FromString(header)
        except Exception as exc:  # DecodeError: the full parse fails on this tensor too
            raise SkimError(f"initializer: {exc}") from None
        count = element_count(stub)
        if count is not None and count <= MAX_ELEMENTS and not is_external(stub):
            # small: the constant folder reads it
            if spans == [(v_start, v_end)]:
                pieces.keep(f_start, v_end)
            else:
                whole = b"".join(bytes(buf[a:b]) for a, b in spans)
                pieces.add(_length_delimited(_GRAPH_INITIALIZER, whole))
            deferred.pop(stub.name, None)
            continue
        pieces.add(_length_delimited(_GRAPH_INITIALIZER, header))
        deferred[stub.name] = ((v_start, v_end), spans)  # a later one of the same name wins
    return pieces.join()


def skim_bytes(buf: Any) -> tuple[bytes, dict[str, Deferred]]:
    """The serialized model with large initializers reduced to headers and long unneeded fields
    left out, and where each of those initializers lies in ``buf`` (by name).  Raises
    :class:`SkimError` or :class:`NeedsFullParse`.
    """
    pieces = _Pieces(buf)
    deferred: dict[str, Deferred] = {}
    for field, wire, f_start, v_start, v_end in _fields(buf, 0, len(buf)):
        if field == _MODEL_GRAPH and wire == 2:
            pieces.add(_length_delimited(field, _skim_graph(buf, v_start, v_end, deferred)))
        else:
            _skim_field(pieces, buf, "model", 0, field, wire, (f_start, v_start, v_end))
    return pieces.join(), deferred


class SkimmedModel:
    """An ONNX file read for checking: :attr:`model` is a ``ModelProto`` whose large top-level
    initializers carry no data; :meth:`tensor` reads one of them from the file when asked.

    The file is open only while it is skimmed; a later :meth:`tensor` reads the tensor's bytes
    with positioned reads, after checking the file has not changed (size, mtime) since.
    Nothing stays open, so a graph whose weight readers outlive the load holds no descriptor.
    """

    def __init__(
        self, model: Any, path: Path, deferred: dict[str, Deferred], stamp: tuple[int, int]
    ) -> None:
        self.model, self.path, self._deferred, self._stamp = model, path, deferred, stamp

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @classmethod
    def open(cls, path: str | os.PathLike) -> SkimmedModel:
        """Map and skim ``path``; raises OSError, :class:`SkimError`, :class:`NeedsFullParse`
        or protobuf's DecodeError."""
        ModelProto = _proto().ModelProto

        file = Path(os.fspath(path))
        with open_regular(file) as handle:
            info = os.fstat(handle.fileno())
            skimmed, deferred = skim_bytes(FileBytes(handle.fileno(), info.st_size))
        model = ModelProto()
        model.ParseFromString(skimmed)
        return cls(model, file, deferred, (info.st_size, info.st_mtime_ns))

    def is_deferred(self, name: str) -> bool:
        """Whether top-level initializer ``name`` had its data left in the file."""
        return name in self._deferred

    def deferred_size(self, name: str) -> int | None:
        """The serialized size in the file of top-level initializer ``name`` if its data was left
        there, else ``None`` (so that size checks see the whole tensor, not its header)."""
        entry = self._deferred.get(name)
        return None if entry is None else entry[0][1] - entry[0][0]

    def deferred_tensor(self, name: str) -> Any:
        """The whole ``TensorProto`` of ``name`` if its data was left in the file, else ``None``."""
        return self.tensor_proto(name) if name in self._deferred else None

    def tensor_proto(self, name: str) -> Any:
        """The whole ``TensorProto`` of top-level initializer ``name`` (``KeyError`` when there
        is none); a deferred one is read from the file and parsed now (``ValueError`` when the
        file changed or the bytes do not parse)."""
        TensorProto = _proto().TensorProto

        if name not in self._deferred:
            for tensor in reversed(self.model.graph.initializer):
                if tensor.name == name:
                    return tensor
            raise KeyError(name)
        spans = self._deferred[name][1]
        try:
            with open_regular(self.path) as handle:
                info = os.fstat(handle.fileno())
                if (info.st_size, info.st_mtime_ns) != self._stamp:
                    raise ValueError("the model file changed since it was read")
                parts = [os.pread(handle.fileno(), end - start, start) for start, end in spans]
        except OSError as exc:
            raise ValueError(f"cannot read the model file again ({exc.strerror or exc})") from None
        if sum(map(len, parts)) != sum(end - start for start, end in spans):
            raise ValueError("the model file changed since it was read")
        raw = b"".join(parts)
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

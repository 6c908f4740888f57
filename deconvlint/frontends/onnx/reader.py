"""The ONNX front end: a ``.onnx`` file or ``ModelProto`` in, a :class:`deconvlint.core.ir.Graph` out.

Reading never loads external weights, except the kernel of a depthwise Conv (to tell a fixed
filter such as a blur), and then only from inside the model's folder.  Every failure is a
:class:`LoadError` with a one-line cause that does not repeat the path.

>>> from onnx import helper, TensorProto
>>> w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 3, 3], [1.0] * 144)
>>> node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up1", strides=[2, 2],
...                         pads=[1, 1, 1, 1], output_padding=[1, 1])
>>> graph = helper.make_graph(
...     [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
>>> g = graph_from_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]))
>>> g.nodes[0].kind.value, g.nodes[0].window[0]
('conv_transpose', WindowAxis(kernel=3, stride=2, dilation=1, pads_begin=1, pads_end=1, output_padding=1))
>>> g.shapes["y"]
(1, 4, 16, 16)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deconvlint.core.ir import Graph
from deconvlint.errors import LoadError, one_line
from deconvlint.files import is_regular, open_regular

__all__ = ["graph_from_model", "load_graph", "read_file"]


def load_graph(path: str | os.PathLike) -> Graph:
    """Read an ONNX file (its external data stays unread) into a :class:`Graph`.

    The file is skimmed with positioned reads (:mod:`deconvlint.frontends.onnx.skim`): large
    initializers are decoded only when a converter asks for their values.

    >>> load_graph("/no/such/model.onnx")
    Traceback (most recent call last):
    ...
    deconvlint.errors.LoadError: file not found
    """
    try:
        file = Path(os.fspath(path))
    except TypeError:
        raise LoadError(f"not a path: {type(path).__name__}") from None
    return read_file(file, skim=True)


def read_file(file: Path, *, skim: bool) -> Graph:
    """:func:`load_graph` by the skimming reader, or (``skim=False``) by ``onnx.load`` of the
    whole file; both give the same graph or the same error (the test-suite checks each load)."""
    skimmed = None
    try:
        if not file.exists():
            raise LoadError("file not found")
        if file.is_dir():
            raise LoadError("is a directory, not an ONNX file")
        if not is_regular(file):  # a FIFO would block the open forever
            open_regular(file).close()  # raises NotRegularFile, naming what it is
        skimmed = _open_skimmed(file) if skim else None
        model = skimmed.model if skimmed is not None else _load_full(file)
    except LoadError:
        raise
    except ImportError:
        raise LoadError("the onnx package is not installed") from None
    except OSError as exc:
        raise LoadError(f"cannot read the file: {one_line(exc.strerror or exc)}") from None
    except Exception:  # DecodeError and friends from protobuf, SkimError
        raise LoadError(
            "not an ONNX model (the file does not parse as one; truncated or another format?)"
        ) from None
    if skimmed is None:
        return graph_from_model(model, base_dir=file.parent, name=file.stem)
    return graph_from_model(
        model,
        base_dir=file.parent,
        name=file.stem,
        full_tensor=skimmed.deferred_tensor,
        deferred_size=skimmed.deferred_size,
    )


def _load_full(file: Path) -> Any:
    import onnx
    from onnx import serialization

    fmt = serialization.registry.get_format_from_file_extension(file.suffix)
    with open_regular(file) as handle:
        return onnx.load_model_from_string(handle.read(), format=fmt)


#: Suffixes onnx reads as binary protobuf (``.onnx``, ``.pb``) or does not know (none).
_PROTOBUF_SUFFIXES = ("", ".onnx", ".pb")


def _open_skimmed(file: Path) -> Any:
    """The skimmed model, or ``None`` when only ``onnx.load`` reads this file (a text format
    chosen by the file's extension, or protobuf groups)."""
    from deconvlint.frontends.onnx.skim import NeedsFullParse, SkimmedModel

    if file.suffix not in _PROTOBUF_SUFFIXES:  # onnx's registry knows the others
        from onnx import serialization

        fmt = serialization.registry.get_format_from_file_extension(file.suffix)
        if fmt not in (None, "protobuf"):
            return None
    try:
        return SkimmedModel.open(file)
    except NeedsFullParse:
        return None


def graph_from_model(
    model: Any,
    *,
    base_dir: Path | None = None,
    name: str = "model",
    full_tensor: Callable[[str], Any] | None = None,
    deferred_size: Callable[[str], int | None] | None = None,
) -> Graph:
    """Translate a ``ModelProto`` into a :class:`Graph` (see the module docstring).

    ``base_dir`` is the folder external data is read from (``None``: never read).
    ``full_tensor(name)``, for a skimmed model, returns the whole ``TensorProto`` of a top-level
    initializer whose data was left in the file (``None`` when the model's own copy is whole);
    ``deferred_size(name)`` its serialized size in the file, for the size checks.
    """
    try:
        return _convert(
            model, None if base_dir is None else Path(base_dir), name, full_tensor, deferred_size
        )
    except LoadError as exc:
        raise LoadError(one_line(str(exc))) from None
    except RecursionError:
        raise LoadError("the model nests subgraphs or functions too deeply") from None
    except Exception as exc:  # anything a malformed model provokes stays a LoadError
        raise LoadError(one_line(f"cannot read the model: {type(exc).__name__}: {exc}")) from None


def _default_opset(model: Any) -> int | None:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return int(opset.version)
    return None


def _node_texts(nodes: Any) -> list[Any]:
    values: list[Any] = []
    for node in nodes:
        values += [node.name, node.op_type, node.domain, *node.input, *node.output]
        for attr in node.attribute:
            values += [attr.name, attr.ref_attr_name]
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                values += _graph_texts(sub)
    return values


def _graph_texts(graph: Any) -> list[Any]:
    values = [graph.name] + [
        v.name for f in ("input", "output", "value_info") for v in getattr(graph, f)
    ]
    return values + [t.name for t in graph.initializer] + _node_texts(graph.node)


def _check_text(model: Any) -> None:
    """Protobuf hands back ``bytes`` for a string field that is not UTF-8: refuse those."""
    values = _graph_texts(model.graph)
    for function in model.functions:
        values += [function.name, function.domain, *function.input, *function.output]
        values += _node_texts(function.node)
    if any(not isinstance(v, str) for v in values):
        raise LoadError("not an ONNX model: a name is not valid UTF-8 text")


def _check_envelope(model: Any) -> int | None:
    """The default-domain opset (``None``: the model imports none, and uses no default-domain
    op: the newest one is meant), after checking this is an ONNX model at all."""
    from deconvlint.frontends.onnx.proto import proto

    if not isinstance(model, proto().ModelProto):
        raise LoadError(f"not an ONNX model (got {type(model).__name__})")
    if model.ir_version <= 0 and not model.opset_import:
        raise LoadError("not an ONNX model (no IR version, no opset)")
    if not model.HasField("graph"):
        raise LoadError("not an ONNX model: it has no graph")
    _check_text(model)
    opset = _default_opset(model)
    if opset is None or opset <= 0:
        if any(n.domain in ("", "ai.onnx") for n in model.graph.node):
            raise LoadError("the model imports no ai.onnx opset")
        return None
    return opset


#: Seconds shape inference may take before it is given up.
INFERENCE_TIMEOUT = 120.0


_KNOWN = struct.Struct("<I")


def _infer(serialized: bytes) -> bytes:
    """``onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
    data_prop=True)`` on a serialized model, by onnx's C++ library (no ``import onnx``); the
    reply starts with the newest default-domain opset that library knows (``_KNOWN``)."""
    from deconvlint.frontends.onnx.proto import cpp

    library = cpp()
    known = library.defs.schema_version_map()[""][1]
    return _KNOWN.pack(known) + library.shape_inference.infer_shapes(serialized, False, False, True)


def _infer_in_child(serialized: bytes) -> bytes:
    """Shape inference in a forked worker (:mod:`deconvlint.frontends.onnx.infer`): onnx's C++
    aborts on some corrupt models, which must not take the checker down.  Returns what
    :func:`_infer` returns, or raises RuntimeError."""
    from deconvlint.frontends.onnx.infer import WORKER

    return WORKER.run(serialized, _infer, INFERENCE_TIMEOUT)


def prestart_inference() -> None:
    """Fork the shape-inference worker now and let it warm up (load onnx's C++ library and
    build its operator schemas) while this process goes on (where processes fork); the CLI
    calls it before loading its configuration."""
    if hasattr(os, "fork"):
        from deconvlint.frontends.onnx.infer import WORKER

        WORKER.prestart(_infer)


def _infer_shapes(work: Any, notes: list[str]) -> tuple[Any, int | None]:
    """The inferred working copy and the newest opset onnx knows (``None`` when inference
    failed: a note says so, and the copy is returned as it was)."""
    from deconvlint.frontends.onnx.proto import proto

    try:
        if hasattr(os, "fork"):
            reply = _infer_in_child(work.SerializeToString())
        else:  # in this process: the C++ library through onnx's own package
            import onnx  # noqa: F401

            reply = _infer(work.SerializeToString())
        (known,) = _KNOWN.unpack_from(reply)
        return proto().ModelProto.FromString(reply[_KNOWN.size :]), known
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        notes.append(one_line(f"shape inference failed: {first}"))
        return work, None


def _newest_opset(known: int | None) -> int:
    """The newest default-domain opset onnx knows: ``known`` as the worker said, else onnx's."""
    if known is not None:
        return known
    from onnx import defs

    return defs.onnx_opset_version()


def _convert(
    model: Any,
    base_dir: Path | None,
    name: str,
    full_tensor: Callable[[str], Any] | None,
    deferred_size: Callable[[str], int | None] | None = None,
) -> Graph:
    from deconvlint.frontends.onnx.prepare import working_copy
    from deconvlint.frontends.onnx.tensors import check_external_locations, check_tensor_sizes
    from deconvlint.frontends.onnx.walk import Scope, Walker

    opset = _check_envelope(model)
    check_external_locations(model, base_dir)
    check_tensor_sizes(model, deferred_size)
    work, notes = working_copy(model)
    work, known = _infer_shapes(work, notes)
    if opset is None:
        opset = _newest_opset(known)
    elif opset > _newest_opset(known):
        newest = _newest_opset(known)
        notes.insert(0, f"opset {opset} is newer than this onnx package knows ({newest})")
    originals = {t.name: t for t in model.graph.initializer}
    initializers = set(originals)
    walker = Walker(opset, base_dir, originals, full_tensor)
    graph = work.graph
    walker.walk(graph, Scope(None, ""), [v.name not in initializers for v in graph.input])
    inputs = tuple(v.name for v in graph.input if v.name not in initializers)
    return Graph(
        name=name,
        nodes=walker.finish(),
        inputs=inputs,
        outputs=tuple(o.name for o in graph.output),
        shapes=dict(walker.shapes),
        notes=notes,
    )

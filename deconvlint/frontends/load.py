"""The one loader: whatever a user names or holds, turned into a :class:`Graph`.

:func:`load` takes

- a :class:`~deconvlint.frontends.target.ModelSpec`, or a path or a string: an existing file, read
  as :func:`deconvlint.frontends.sniff.file_format` recognises it (ONNX, a Keras ``.keras`` or
  ``.h5`` file, a ``torch.export`` archive, TorchScript or a pickle, the last two only with
  ``trust_pickle``), or a ``package.module:attribute`` target, imported, built and traced;
- an ``onnx.ModelProto``, a ``torch.nn.Module`` (traced, fed ``example_inputs``) or a
  ``torch.export.ExportedProgram``.

Each front end is imported only when a target needs it: an ONNX or Keras file never imports
torch (nor a Keras file keras, tensorflow or jax), and an
object is recognised as a ``ModelProto`` or a module only when onnx or torch is imported already
(whoever holds one has imported it).

>>> load(42)  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
TypeError: deconvlint.check expects a torch.nn.Module, ... or the path of an ONNX file, not int
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deconvlint.errors import LoadError, one_line
from deconvlint.frontends.sniff import KERAS_FORMATS, TORCH_FORMATS, FileFormat, file_format
from deconvlint.frontends.target import ModelSpec, as_input_tuple, is_module_target

if TYPE_CHECKING:
    from deconvlint.core.ir import Graph


@dataclass(frozen=True)
class Loaded:
    """A model read into the IR, and what the probe needs to run it."""

    graph: Graph
    frontend: str  # the reader: "onnx", "keras", "fx", "export" or "hooks"
    path: str  # shown in front of its findings: the target as given, or "<ClassName>"
    module: Any = None  # the torch.nn.Module the graph was traced from (a target or an object)
    onnx: Any = None  # the ONNX file or ModelProto the graph was read from
    input_shapes: tuple[tuple[int, ...], ...] = ()  # the shapes a target's model is fed
    example_inputs: tuple[Any, ...] | None = None  # what an object given as a module is fed

    def probe_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The input shapes the probe feeds: the target's, else those of the example inputs."""
        return self.input_shapes or tuple(tuple(x.shape) for x in self.example_inputs or ())


def load(
    target: Any,
    example_inputs: Any = None,
    *,
    trust_pickle: bool = False,
    timeout: float | None = None,
) -> Loaded:
    """Read ``target`` (see the module's docstring) with the front end it needs.

    Errors are :class:`~deconvlint.errors.DeconvlintError` with a one-line cause that does not
    repeat the target; an object of an unsupported type is a ``TypeError``.
    ``example_inputs`` feed a ``torch.nn.Module``; ``timeout`` bounds its tracing (seconds).
    """
    if isinstance(target, (str, os.PathLike)):
        target = ModelSpec(os.fspath(target))
    if isinstance(target, ModelSpec):
        return _load_spec(target, trust_pickle, timeout)
    onnx = sys.modules.get("onnx")  # a ModelProto means onnx is imported already
    if onnx is not None and isinstance(target, onnx.ModelProto):
        from deconvlint.frontends.onnx.reader import graph_from_model

        name = target.graph.name or "model"
        return Loaded(graph_from_model(target, name=name), "onnx", f"<{name}>", onnx=target)
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(target, torch.export.ExportedProgram):
            graph = _torch_front_end().graph_from_exported(target)
            return Loaded(graph, "export", "<ExportedProgram>")
        if isinstance(target, torch.nn.Module):
            inputs = as_input_tuple(example_inputs)
            graph, reader = _torch_front_end().load_module(target, inputs, timeout=timeout)
            path = f"<{type(target).__name__}>"
            return Loaded(graph, reader, path, module=target, example_inputs=inputs)
    raise TypeError(
        "deconvlint.check expects a torch.nn.Module, a torch.export.ExportedProgram, an "
        f"onnx.ModelProto or the path of an ONNX file, not {type(target).__name__}"
    )


def is_file(spec: ModelSpec) -> bool:
    """Whether ``spec`` names a file rather than a module target: a file found in a folder, an
    existing path (which wins over a module target of the same spelling), or anything not
    spelt ``package.module:attribute``."""
    return spec.onnx_only or os.path.exists(spec.target) or not is_module_target(spec.target)


def runs_torch(spec: ModelSpec) -> bool:
    """Whether loading ``spec`` imports torch (a module target, or a torch file); a file that
    cannot even be recognised is left to its own load to report."""
    try:
        if is_file(spec):
            return file_format(spec.target, sniffed=not spec.onnx_only) in TORCH_FORMATS
        return True
    except Exception:  # MemoryError included: that file's own load says what is wrong
        return False


def _torch_front_end() -> Any:
    try:
        from deconvlint.frontends.torch import load as front_end
    except ImportError as exc:
        raise LoadError(f"the torch front end is not available: {one_line(exc)}") from exc
    return front_end


def _load_spec(spec: ModelSpec, trust_pickle: bool, timeout: float | None) -> Loaded:
    if not is_file(spec):
        from deconvlint.frontends.torch.build import load_module_target

        graph, reader, module = load_module_target(spec, timeout)
        return Loaded(graph, reader, spec.target, module, None, spec.input_shapes)
    if spec.weights:
        raise LoadError("--weights applies to package.module:attribute targets only")
    kind = file_format(spec.target, sniffed=not spec.onnx_only)
    if kind is FileFormat.ONNX:
        from deconvlint.frontends.onnx.reader import load_graph

        graph = load_graph(spec.target)
        return Loaded(graph, "onnx", spec.target, None, spec.target, spec.input_shapes)
    if kind in KERAS_FORMATS:
        from deconvlint.frontends.keras.reader import load_graph as load_keras

        return Loaded(load_keras(spec.target, kind), "keras", spec.target)
    graph, reader = _torch_file_graph(spec, kind, trust_pickle, timeout)
    return Loaded(graph, reader, spec.target, input_shapes=spec.input_shapes)


def _torch_file_graph(
    spec: ModelSpec, kind: FileFormat, trust_pickle: bool, timeout: float | None
) -> tuple[Graph, str]:
    from deconvlint.frontends.torch import build as torch_files

    path = spec.target
    if kind is FileFormat.OTHER_ZIP:
        raise LoadError(
            "a zip archive, but not one written by torch.export.save, torch.jit.save, torch.save "
            "or Keras's model.save"
        )
    if kind is FileFormat.PICKLED_WEIGHTS:
        raise LoadError(
            "holds only tensors and plain data (a state_dict or checkpoint), not a model: check "
            "the module that loads it, e.g. deconvlint package.module:Model --input-shape 1,3,64,64"
        )
    if kind is FileFormat.PICKLED_OBJECT and not trust_pickle:
        raise LoadError(
            "a pickled Python object (torch.save of a whole model?), not loaded because "
            f"unpickling runs arbitrary code; {torch_files.TRUST_HINT}"
        )
    if kind is FileFormat.TORCHSCRIPT and not trust_pickle:
        raise LoadError(
            "a TorchScript archive, not loaded because TorchScript is code that runs as it "
            f"loads (a class's __setstate__ can write files); {torch_files.TRUST_HINT}"
        )
    torch = torch_files.import_torch()
    if kind is FileFormat.EXPORTED_PROGRAM:
        from deconvlint.frontends.torch.load import graph_from_exported

        program = torch_files.exported_program(path, trust_pickle, torch)
        return graph_from_exported(program), "export"
    if kind is FileFormat.TORCHSCRIPT:
        try:
            scripted = torch.jit.load(path, map_location="cpu")
        except Exception as exc:
            cause = one_line(exc, empty="no message")
            raise LoadError(
                f"cannot load the TorchScript archive: {type(exc).__name__}: {cause}"
            ) from exc
        name = os.path.basename(path)
        return torch_files.scripted_graph(scripted, spec.input_shapes, name), "onnx"
    return torch_files.module_graph(torch_files.unpickled_module(path, torch), spec, timeout)

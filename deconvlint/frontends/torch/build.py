"""Torch targets: ``package.module:attribute`` names and torch model files, turned into a Graph.

A *module target* names a Python object the way entry points do.  Importing it runs its code,
which is why that happens only for a target named on the command line or listed in the
configuration.  The object may be a ``torch.nn.Module`` class (called with the configured
``kwargs``), a function returning a module (likewise), or a module instance.

Model files are recognised by :mod:`deconvlint.frontends.sniff` and dispatched by
:func:`deconvlint.frontends.load.load`; torch's files are read here:

- ``torch.export.save`` (``.pt2``): a zip with ``archive_format`` or ``models/``; checked to
  hold nothing that runs and read piece by piece (:mod:`deconvlint.frontends.torch.pt2`), or
  with ``torch.export.load`` under ``trust_pickle`` (``--trust-pickle``).
- ``torch.jit.save`` (TorchScript): a zip with ``code/`` and ``constants.pkl``; TorchScript is
  code that runs as it loads, so it is refused unless ``trust_pickle``; see below.
- ``torch.save(model)`` or any pickle: a zip with ``data.pkl``, or a pickle stream, whose opcodes
  name classes; refused unless ``trust_pickle``.
- ``torch.save(state_dict)``: the same, naming only tensor rebuilders; refused, it is no model.
- anything else: the ONNX front end, which says what is wrong with it.

A TorchScript model runs in TorchScript's interpreter, which Python hooks and
``TorchFunctionMode`` never see into, so it goes through torch's TorchScript ONNX exporter (its
native input) and then the ONNX front end, with node names taken from the module scopes the
exporter records (``/decoder/0/up/ConvTranspose`` becomes ``decoder.0.up``).

Nothing here imports torch until a torch target is loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from deconvlint.errors import LoadError, TraceError, one_line
from deconvlint.frontends.sniff import pickle_globals
from deconvlint.frontends.target import SHAPE_HINT, ModelSpec

if TYPE_CHECKING:
    from deconvlint.core.ir import Graph


def import_torch() -> Any:
    """``torch``, or a :class:`LoadError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise LoadError(
            "needs torch, which is not installed (pip install 'deconvlint[torch]')"
        ) from None
    return torch


@contextlib.contextmanager
def user_imports(import_dir: str | None = None) -> Iterator[None]:
    """The current folder (and ``import_dir``) first on ``sys.path`` while the user's code is
    imported, as ``python -m`` does, so that ``pkg.models`` is the user's package; taken away
    afterwards, so that nothing deconvlint or torch imports later comes from there.  numpy and
    torch are imported before, so that a ``numpy.py`` in that folder cannot stand in for them."""
    import numpy  # noqa: F401

    import_torch()
    present = set(map(os.path.abspath, sys.path))
    added = []
    for folder in (import_dir, os.getcwd()):
        if folder is not None and os.path.abspath(folder) not in present:
            added.append(os.path.abspath(folder))
            sys.path.insert(0, added[-1])
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def import_target(target: str, import_dir: str | None = None) -> Any:
    """The object ``package.module:attribute`` names (this runs the module's code)."""
    module_name, _, attribute = target.partition(":")
    try:
        with user_imports(import_dir):
            found = importlib.import_module(module_name)
    except LoadError:
        raise
    except (Exception, SystemExit) as exc:
        raise LoadError(
            f"cannot import {module_name}: {type(exc).__name__}: {one_line(exc, empty='no message')}"
        ) from exc
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise LoadError(f"module {module_name} has no attribute {attribute!r}") from None
    return found


def build_module(found: Any, spec: ModelSpec) -> Any:
    """The ``torch.nn.Module`` for a target's object: an instance as is, a class or factory
    called with ``spec.kwargs`` (weights seeded, so runs repeat exactly), in eval mode."""
    torch = import_torch()
    if isinstance(found, torch.nn.Module):
        if spec.kwargs:
            raise LoadError("is a module instance; kwargs apply only to a class or a factory")
        return found.eval()
    if isinstance(found, type) and not issubclass(found, torch.nn.Module):
        raise LoadError(f"{found.__name__} is a class but not a torch.nn.Module")
    if not callable(found):
        raise LoadError(
            f"is of type {type(found).__name__}, not a torch.nn.Module, a module class or a "
            "function returning a module"
        )
    call = spec.target.partition(":")[2] + ("(**kwargs)" if spec.kwargs else "()")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            made = found(**dict(spec.kwargs))
        except (Exception, SystemExit) as exc:
            raise LoadError(
                f"{call} raised {type(exc).__name__}: {one_line(exc, empty='no message')}"
            ) from exc
    if not isinstance(made, torch.nn.Module):
        raise LoadError(f"{call} returned {type(made).__name__}, not a torch.nn.Module")
    return made.eval()


def example_inputs(shapes: tuple[tuple[int, ...], ...]) -> tuple[Any, ...]:
    """``torch.randn`` of each shape from a generator seeded with 0."""
    torch = import_torch()
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=generator) for shape in shapes)


def _scope_names(model: Any) -> None:
    """Name ONNX nodes after the module scope the exporter recorded: ``/decoder/0/up/Conv``
    becomes ``decoder.0.up``, or ``decoder.0.up/Conv`` when that scope holds several ops."""
    from collections import Counter

    scopes = [node.name.strip("/").split("/") for node in model.graph.node]
    modules = [".".join(parts[:-1]) for parts in scopes]
    ops_in = Counter(modules)
    for node, parts, module in zip(model.graph.node, scopes, modules, strict=True):
        if module and ops_in[module] == 1:
            node.name = module
        elif module:
            node.name = f"{module}/{parts[-1]}"


def scripted_graph(scripted: Any, shapes: tuple[tuple[int, ...], ...], name: str) -> Graph:
    """A TorchScript module's graph, through torch's TorchScript ONNX exporter."""
    import warnings

    from deconvlint.frontends.onnx.reader import graph_from_model

    torch = import_torch()
    if not shapes:
        raise LoadError(f"a TorchScript model needs example inputs: {SHAPE_HINT}")
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notes
            torch.onnx.export(scripted, example_inputs(shapes), buffer, dynamo=False)
    except Exception as exc:
        raise TraceError(
            f"torch's TorchScript exporter could not translate it: {type(exc).__name__}: "
            f"{one_line(exc, empty='no message')}"
        ) from exc
    import onnx

    model = onnx.load_from_string(buffer.getvalue())
    _scope_names(model)
    return graph_from_model(model, base_dir=None, name=name)


def module_graph(module: Any, spec: ModelSpec, timeout: float | None = None) -> tuple[Graph, str]:
    """Trace ``module`` with the torch front end, fed ``spec.input_shapes`` when given; the
    graph and the reader used (a TorchScript module: ``"onnx"``, through torch's exporter)."""
    torch = import_torch()
    if isinstance(module, torch.jit.ScriptModule):
        return scripted_graph(module, spec.input_shapes, spec.target), "onnx"
    try:
        from deconvlint.frontends.torch.load import load_module
    except ImportError as exc:
        raise LoadError(
            f"the torch front end is not available: {one_line(exc, empty='no message')}"
        ) from exc
    inputs = example_inputs(spec.input_shapes) if spec.input_shapes else None
    try:
        return load_module(module, inputs, timeout=timeout)
    except TraceError as exc:
        if inputs is None and "input-shape" not in str(exc):
            raise TraceError(f"{one_line(exc, empty='no message')}; {SHAPE_HINT}") from exc
        raise


def unpickled_module(path: str, torch: Any) -> Any:
    """The ``torch.nn.Module`` a pickle holds (this runs code from the file: ``--trust-pickle``)."""
    try:  # pickles name their classes by module, as imports do
        with user_imports(), open(path, "rb") as file:
            zipped = file.read(2) == b"PK"
            file.seek(0)
            if zipped or pickle_globals(file).legacy:
                loaded = torch.load(path, map_location="cpu", weights_only=False)
            else:
                import pickle

                file.seek(0)
                loaded = pickle.load(file)
    except Exception as exc:
        raise LoadError(
            f"cannot unpickle it: {type(exc).__name__}: {one_line(exc, empty='no message')}"
        ) from exc
    if not isinstance(loaded, torch.nn.Module):
        raise LoadError(f"the pickle holds {type(loaded).__name__}, not a torch.nn.Module")
    return loaded.eval()


TRUST_HINT = "pass --trust-pickle if you trust this file"


def exported_program(path: str, trust_pickle: bool, torch: Any) -> Any:
    """``torch.export.load`` with ``trust_pickle``; otherwise the archive is checked to hold
    nothing that runs, then read piece by piece (:mod:`deconvlint.frontends.torch.pt2`)."""
    from deconvlint.frontends.torch.pt2 import UnsafeArchive, load_exported

    try:
        if trust_pickle:
            return torch.export.load(path)
        return load_exported(path)
    except UnsafeArchive as exc:
        raise LoadError(f"a torch.export archive that {exc}, not loaded; {TRUST_HINT}") from None
    except Exception as exc:
        raise LoadError(
            f"cannot load the exported program: {type(exc).__name__}: {one_line(exc, empty='no message')}"
        ) from exc


def load_module_target(spec: ModelSpec, timeout: float | None = None) -> tuple[Graph, str, Any]:
    """Import, build (with ``spec.kwargs`` and ``--weights``) and trace the module a
    ``package.module:attribute`` target names; its graph, the reader used, and the module."""
    with user_imports(spec.import_dir):  # the class's own code may import from there too
        found = import_target(spec.target, spec.import_dir)
        module = build_module(found, spec)
    _remember_root_call(module, found, spec.target)
    if spec.weights:
        load_weights(module, spec.weights)
    graph, reader = module_graph(module, spec, timeout)
    return graph, reader, module


def _remember_root_call(module: Any, found: Any, target: str) -> None:
    """Findings in a library's layers point at the target's call of the library class: in the
    factory's body, or in the module that holds the instance."""
    from deconvlint.frontends.torch.names import factory_root_call, remember_root_call

    owner = found if not isinstance(found, type) and found is not module else None
    if found is module:
        owner = sys.modules.get(target.partition(":")[0])
    if owner is not None:
        remember_root_call(module, factory_root_call(module, owner))


def _is_safetensors(path: str) -> bool:
    # 8 bytes of little-endian header length, then a JSON header
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1


def load_weights(module: Any, path: str) -> None:
    """Load a ``state_dict`` file into ``module``: safetensors, or ``torch.save`` of tensors
    read with ``weights_only=True`` (never unpickling code).  A checkpoint dict that keeps the
    weights under ``state_dict`` or ``model`` is read from there."""
    torch = import_torch()
    if not os.path.isfile(path):
        raise LoadError(f"--weights: {path}: file not found")
    try:
        if _is_safetensors(path):
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise LoadError(
                    f"--weights: {path} is a safetensors file and the safetensors package is "
                    "not installed"
                ) from None
            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(
            f"--weights: cannot read {path} as weights: {type(exc).__name__}: {one_line(exc, empty='no message')}"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise LoadError(f"--weights: {path} holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state)
    except Exception as exc:
        raise LoadError(
            f"--weights: {path} does not fit the model: {one_line(exc, empty='no message')[:300]}"
        ) from None

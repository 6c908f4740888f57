"""Torch targets: ``package.module:attribute`` names and torch model files, turned into a Graph.

A *module target* names a Python object the way entry points do.  Importing it runs its code,
which is why that happens only for a target named on the command line or listed in the
configuration.  The object may be a ``torch.nn.Module`` class (called with the configured
``kwargs``), a function returning a module (likewise), or a module instance.

A ``*.onnx`` file, and every file found in a folder, is ONNX whatever its bytes.  Any other file
is recognised by its content (bounded reads, never by unpickling it):

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

>>> is_module_target("pkg.models:Generator"), is_module_target("models/gen.onnx")
(True, False)
>>> parse_input_shape("1, 3, 64, 64")
(1, 3, 64, 64)
>>> shapes_from_config([[1, 3, 8, 8], [1, 10]])
((1, 3, 8, 8), (1, 10))
"""

from __future__ import annotations

import contextlib
import enum
import functools
import importlib
import io
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from deconvlint.errors import LoadError, TraceError, one_line
from deconvlint.files import open_regular

if TYPE_CHECKING:
    from deconvlint.core.ir import Graph

_IDENTIFIERS = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
MODULE_TARGET = re.compile(rf"{_IDENTIFIERS}:{_IDENTIFIERS}")
ONNX_SUFFIX = ".onnx"
SHAPE_HINT = "pass --input-shape N,C,H,W (once per input), or input-shape in the configuration"


def is_module_target(text: str) -> bool:
    """Whether ``text`` has the form ``package.module:attribute`` (attribute may be dotted)."""
    return MODULE_TARGET.fullmatch(text) is not None


@dataclass(frozen=True)
class ModelSpec:
    """One thing to check: a module target or a file, and how to build and feed it."""

    target: str  # "pkg.models:Generator" or a file path; shown as the path of its findings
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # passed to a class or a factory
    input_shapes: tuple[tuple[int, ...], ...] = ()  # one shape per example input
    import_dir: str | None = None  # also importable from here (the folder of the config file)
    weights: str | None = None  # --weights: a state_dict file loaded into the built module
    onnx_only: bool = False  # found in a folder: read as ONNX whatever its bytes


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"1,3,64,64"`` -> ``(1, 3, 64, 64)``; ValueError unless every size is a positive int."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"expected positive integers separated by commas like 1,3,64,64: {text!r}")
    return tuple(int(p) for p in parts)


def shapes_from_config(value: Any) -> tuple[tuple[int, ...], ...]:
    """A config ``input-shape``: one shape ``[1, 3, 64, 64]`` or several ``[[...], [...]]``."""

    def sizes(items: Any) -> bool:
        return (
            isinstance(items, list)
            and bool(items)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in items)
        )

    if sizes(value):
        return (tuple(value),)
    if isinstance(value, list) and value and all(sizes(v) for v in value):
        return tuple(tuple(v) for v in value)
    raise ValueError(
        "expected a list of positive integers like [1, 3, 256, 256], or a list of such lists "
        f"for several inputs, got {value!r}"
    )


# --- recognising a file ------------------------------------------------------------------------


class FileFormat(str, enum.Enum):
    ONNX = "onnx"  # or anything unrecognised: the ONNX front end says what is wrong
    EXPORTED_PROGRAM = "torch.export"
    TORCHSCRIPT = "torchscript"
    PICKLED_OBJECT = "pickle"
    PICKLED_WEIGHTS = "state_dict"
    OTHER_ZIP = "zip"


# Globals a pickle of tensors and plain containers names: a state_dict or a checkpoint of weights.
_WEIGHT_GLOBALS = re.compile(
    r"collections OrderedDict|torch\._utils _rebuild_\w+|torch \w*Storage|torch\.storage \w+"
    r"|torch\._tensor _rebuild_from_type_v2|torch\.nn\.parameter Parameter"
    r"|torch (Size|device|float\w*|bfloat16|half|double|u?int\d*|long|short|bool|complex\w*)"
    r"|_codecs encode|numpy(\._core|\.core)?(\.multiarray)? (_reconstruct|scalar|dtype|ndarray)"
)
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of torch.save's legacy (non-zip) format
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}
)


#: Bounds of the opcode walk: a real ``torch.save(model)`` of 900 layers is 0.2 M ops, 0.5 MB.
MAX_PICKLE_OPS = 1_000_000
MAX_PICKLE_BYTES = 32 << 20
#: Bounds of a zip's member list, read before any member.
MAX_ZIP_MEMBERS = 100_000


@dataclass
class _PickleGlobals:
    names: set[str] = field(default_factory=set)  # "module name" of every GLOBAL
    legacy: bool = False  # the first pickle is torch's legacy magic number
    complete: bool = True  # every opcode was read within the bounds


def _pickle_globals(stream: IO[bytes]) -> _PickleGlobals:
    """The globals of the pickles in ``stream``, read as opcodes (nothing runs): at most the
    first :data:`MAX_PICKLE_BYTES` bytes (a zip member inflates only that far) and at most
    :data:`MAX_PICKLE_OPS` opcodes of them."""
    import pickletools  # here, as zipfile below: a Python or ONNX file's check needs neither

    found = _PickleGlobals()
    head = stream.read(MAX_PICKLE_BYTES + 1)
    cut = len(head) > MAX_PICKLE_BYTES
    prefix = io.BytesIO(head[:MAX_PICKLE_BYTES] if cut else head)
    ops = 0
    for index in range(6):  # torch's legacy format: magic, protocol, sys info, object, keys
        if prefix.read(1) != b"\x80":
            break
        prefix.seek(-1, io.SEEK_CUR)
        recent: list[str | None] = []  # what the last ops pushed, for STACK_GLOBAL
        memo: dict[int, str | None] = {}
        try:
            for op, arg, _pos in pickletools.genops(prefix):
                ops += 1
                if ops > MAX_PICKLE_OPS:
                    found.complete = False
                    return found
                if op.name in ("GLOBAL", "INST"):
                    found.names.add(str(arg))
                    recent.append(None)
                elif op.name == "STACK_GLOBAL":
                    pair = recent[-2:]
                    found.names.add(" ".join(pair) if len(pair) == 2 and None not in pair else "?")
                    recent.append(None)
                elif op.name == "MEMOIZE":
                    memo[len(memo)] = recent[-1] if recent else None
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg)] = recent[-1] if recent else None
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    recent.append(memo.get(int(arg)))
                elif op.name in _STRING_OPS:
                    recent.append(str(arg))
                elif op.name == "LONG1" and index == 0 and arg == _TORCH_MAGIC:
                    found.legacy = True
                elif op.name != "PROTO":
                    recent.append(None)
        except ValueError:  # raw tensor data after the pickles, a truncated file, or the bound
            found.complete = not cut  # a cut stream fails where it was cut, or may hide more
            break
    return found


def _classify_pickle(stream: IO[bytes]) -> FileFormat:
    """Weights when every global the pickle names rebuilds a tensor or a plain container; a
    pickle too large to read whole within the bounds may hold anything."""
    found = _pickle_globals(stream)
    if found.complete and all(_WEIGHT_GLOBALS.fullmatch(name) for name in found.names):
        return FileFormat.PICKLED_WEIGHTS
    return FileFormat.PICKLED_OBJECT


def _sniff_zip(file: IO[bytes]) -> FileFormat:
    import zipfile

    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return FileFormat.ONNX
    with archive:
        names = archive.namelist()
        if len(names) > MAX_ZIP_MEMBERS:
            return FileFormat.OTHER_ZIP
        # torch writes every member below one top folder, named after the file
        members = {name.split("/", 1)[-1]: name for name in names}
        members.update({name: name for name in names})
        if "archive_format" in members or any(m.startswith("models/") for m in members):
            return FileFormat.EXPORTED_PROGRAM
        if "constants.pkl" in members and any(m.startswith("code/") for m in members):
            return FileFormat.TORCHSCRIPT
        if "data.pkl" in members:
            try:
                with archive.open(members["data.pkl"]) as member:  # inflated as it is read
                    return _classify_pickle(member)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
                return FileFormat.PICKLED_OBJECT  # unreadable: nothing proves it is weights
    return FileFormat.OTHER_ZIP


def sniff(path: str | os.PathLike) -> FileFormat:
    """What wrote the file at ``path``, from its first bytes, zip members and pickle opcodes;
    every read is bounded (a zip member is inflated only as far as its opcodes are walked), and
    the answer is remembered while the file stays the same (size, times, inode).

    >>> import tempfile, pickle, collections
    >>> with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
    ...     pickle.dump(collections.Counter("ab"), f)
    >>> sniff(f.name).value
    'pickle'
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return FileFormat.ONNX  # the ONNX front end reports missing and unreadable files
    stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    return _sniff_file(os.fspath(path), stamp)


@functools.lru_cache(maxsize=64)
def _sniff_file(path: str, stamp: tuple[int, ...]) -> FileFormat:
    del stamp  # part of the cache key only
    try:
        with open_regular(path) as file:
            head = file.read(2)
            file.seek(0)
            if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
                return _classify_pickle(file)
            if head == b"PK":
                return _sniff_zip(file)
    except OSError:
        pass  # the ONNX front end reports missing, unreadable and irregular files
    return FileFormat.ONNX


def file_format(path: str | os.PathLike, *, sniffed: bool = True) -> FileFormat:
    """How ``path`` is read: a ``*.onnx`` name, or a file found in a folder (``sniffed`` false),
    is ONNX whatever its bytes; any other file is recognised by
    :func:`sniff`.

    >>> file_format("models/decoder.onnx").value, file_format("x.pt2", sniffed=False).value
    ('onnx', 'onnx')
    """
    if not sniffed or os.fspath(path).lower().endswith(ONNX_SUFFIX):
        return FileFormat.ONNX
    return sniff(path)


# --- loading -----------------------------------------------------------------------------------


def _import_torch() -> Any:
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

    _import_torch()
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
    torch = _import_torch()
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
    torch = _import_torch()
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

    torch = _import_torch()
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


def module_graph(module: Any, spec: ModelSpec, timeout: float | None = None) -> Graph:
    """Trace ``module`` with the torch front end, fed ``spec.input_shapes`` when given."""
    torch = _import_torch()
    if isinstance(module, torch.jit.ScriptModule):
        return scripted_graph(module, spec.input_shapes, spec.target)
    try:
        from deconvlint.frontends.torch.load import load_module
    except ImportError as exc:
        raise LoadError(
            f"the torch front end is not available: {one_line(exc, empty='no message')}"
        ) from exc
    inputs = example_inputs(spec.input_shapes) if spec.input_shapes else None
    try:
        graph, _tracer = load_module(module, inputs, timeout=timeout)
    except TraceError as exc:
        if inputs is None and "input-shape" not in str(exc):
            raise TraceError(f"{one_line(exc, empty='no message')}; {SHAPE_HINT}") from exc
        raise
    return graph


def _unpickled_module(path: str, torch: Any) -> Any:
    try:  # pickles name their classes by module, as imports do
        with user_imports(), open(path, "rb") as file:
            zipped = file.read(2) == b"PK"
            file.seek(0)
            if zipped or _pickle_globals(file).legacy:
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


def _exported_program(path: str, trust_pickle: bool, torch: Any) -> Any:
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


def _file_graph(spec: ModelSpec, trust_pickle: bool, timeout: float | None) -> Graph:
    path = spec.target
    kind = file_format(path, sniffed=not spec.onnx_only)
    if kind is FileFormat.ONNX:
        from deconvlint.frontends.onnx.reader import load_graph

        return load_graph(path)
    if kind is FileFormat.OTHER_ZIP:
        raise LoadError(
            "a zip archive, but not one written by torch.export.save, torch.jit.save or torch.save"
        )
    if kind is FileFormat.PICKLED_WEIGHTS:
        raise LoadError(
            "holds only tensors and plain data (a state_dict or checkpoint), not a model: check "
            "the module that loads it, e.g. deconvlint package.module:Model --input-shape 1,3,64,64"
        )
    if kind is FileFormat.PICKLED_OBJECT and not trust_pickle:
        raise LoadError(
            "a pickled Python object (torch.save of a whole model?), not loaded because "
            f"unpickling runs arbitrary code; {TRUST_HINT}"
        )
    if kind is FileFormat.TORCHSCRIPT and not trust_pickle:
        raise LoadError(
            "a TorchScript archive, not loaded because TorchScript is code that runs as it "
            f"loads (a class's __setstate__ can write files); {TRUST_HINT}"
        )
    torch = _import_torch()
    if kind is FileFormat.EXPORTED_PROGRAM:
        from deconvlint.frontends.torch.load import graph_from_exported

        return graph_from_exported(_exported_program(path, trust_pickle, torch))
    if kind is FileFormat.TORCHSCRIPT:
        try:
            scripted = torch.jit.load(path, map_location="cpu")
        except Exception as exc:
            raise LoadError(
                f"cannot load the TorchScript archive: {type(exc).__name__}: {one_line(exc, empty='no message')}"
            ) from exc
        return scripted_graph(scripted, spec.input_shapes, os.path.basename(path))
    return module_graph(_unpickled_module(path, torch), spec, timeout)


def load_target(
    spec: ModelSpec, *, trust_pickle: bool = False, timeout: float | None = None
) -> tuple[Graph, Any]:
    """The :class:`Graph` of a module target or a model file (ONNX or torch), and the built
    ``torch.nn.Module`` for a module target (else ``None``), which the probe runs.  Errors are
    :class:`DeconvlintError` with a one-line cause that does not repeat the target.

    An existing path wins over a module target of the same spelling.
    """
    if os.path.exists(spec.target) or not is_module_target(spec.target):
        if spec.weights:
            raise LoadError("--weights applies to package.module:attribute targets only")
        return _file_graph(spec, trust_pickle, timeout), None
    with user_imports(spec.import_dir):  # the class's own code may import from there too
        found = import_target(spec.target, spec.import_dir)
        module = build_module(found, spec)
    _remember_root_call(module, found, spec.target)
    if spec.weights:
        load_weights(module, spec.weights)
    return module_graph(module, spec, timeout), module


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
    torch = _import_torch()
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

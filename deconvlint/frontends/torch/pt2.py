"""Reading a ``torch.export.save`` archive (``.pt2``) without running anything from it.

``torch.export.load`` is not safe on a file from a stranger: it unpickles with
``weights_only=False`` (a weight or a constant stored with ``use_pickle``, the legacy weight
files, a ``weights_only=True`` failure on the sample inputs falls back to it), unpickles
TorchScript and plain-pickle custom objects, loads AOTInductor's compiled code, and its
deserializer hands the graph's shape expressions to ``sympy.sympify`` (which ``eval``\\ s them),
imports the modules a tree spec names, and resolves a node's target to any attribute of
``torch``, which a reader that folds constants would call.

:func:`load_exported` therefore checks the archive first and reads it piece by piece with torch's
own parsers, so that nothing in it can run:

- members: the current archive format only; no AOTInductor, ExecuTorch or MTIA payloads, no
  legacy pickled weights or constants; at most :data:`MAX_MEMBERS` of them;
- weights and constants: raw tensor records only (no ``use_pickle``, no custom or opaque
  objects), whose records together are no larger than the file (a compressed record cannot
  inflate past it); the sample inputs, a pickle deconvlint does not need, are never read;
- the program (JSON, at most :data:`MAX_JSON_BYTES`): every shape expression is arithmetic on
  symbols, numbers and torch's shape functions (:data:`_SHAPE_FUNCTIONS`); every tree spec
  names only torch's built-in containers; every node's target (and operator argument) is an
  operator of ``torch.ops``, ``operator``, ``math`` or a ``torch.sym_*`` function; the guards'
  code is dropped;
- after deserializing, every call in every graph is an operator overload with no file argument,
  a higher-order operator, or one of those pure Python functions.

Anything else raises :class:`UnsafeArchive`; the caller refuses the file and names
``--trust-pickle``, under which ``torch.export.load`` reads it.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
import re
from collections.abc import Iterator
from typing import Any

from deconvlint.files import open_regular

MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 256 << 20
MAX_EXPRESSION_CHARS = 10_000


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MODEL = "model"  # torch.export.save writes one program, under this name
_SYMBOL = re.compile(r"[a-z]{1,4}\d+")  # s0, u3, zf1 ... as torch's ShapeEnv names them
_DECIMAL = re.compile(r"-?\d{1,40}(?:\.\d{0,40})?(?:[eE][-+]?\d{1,3})?")
#: The functions a shape expression (``sympy.srepr`` of a symbolic size) may call: sympy's
#: arithmetic, relations, logic and numbers, and torch's shape functions.
_SHAPE_FUNCTIONS = _words(
    "Add Mul Pow Symbol Integer Rational Float Mod Max Min Abs floor ceiling sign Eq Ne Lt Le "
    "Gt Ge Equality Unequality StrictLessThan LessThan StrictGreaterThan GreaterThan And Or "
    "Not Xor Piecewise ExprCondPair ITE Zero One NegativeOne Half Infinity NegativeInfinity "
    "NaN ComplexInfinity IntInfinity NegativeIntInfinity BooleanTrue BooleanFalse FloorDiv "
    "ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv PowByNatural "
    "FloatPow LShift RShift TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat Identity "
    "IntTrueDiv FloatTrueDiv IsNonOverlappingAndDenseIndicator OpaqueUnaryFn_sqrt"
)
_SHAPE_CONSTANTS = frozenset({"True", "False", "true", "false", "oo", "zoo", "nan", "int_oo"})
_ASSUMPTIONS = _words(
    "positive negative nonnegative nonpositive integer real finite infinite zero nonzero even "
    "odd commutative extended_real rational precision"
)
#: Functions that build large numbers from small ones: at most this many per expression, each
#: with a literal exponent (or shift) of at most 64.
_GROWING = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift"})
_MAX_GROWING = 2
_TREE_TYPES = frozenset(
    {
        "builtins.tuple",
        "builtins.list",
        "builtins.dict",
        "collections.namedtuple",
        "collections.OrderedDict",
        "collections.deque",
        "torch.fx.immutable_collections.immutable_list",
        "torch.fx.immutable_collections.immutable_dict",
        "torch.Size",
    }
)
_OPERATOR_NAMES = _words(
    "getitem add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor "
    "not_ invert lshift rshift truth"
)
_OPS_TARGET = re.compile(r"torch\.ops\.(?P<namespace>\w+)\.\w+(?:\.\w+)?")
_SYM_TARGET = re.compile(r"torch\.sym_\w+")
_FILE_ARGUMENTS = frozenset({"filename", "fname", "file"})  # aten::save, aten::from_file


class UnsafeArchive(Exception):
    """The archive holds something that would run (or would have to be unpickled) as it loads;
    ``str()`` completes "a torch.export archive that ..."."""


def _walk(value: Any) -> Iterator[tuple[str, Any, dict]]:
    """``(key, value, owner)`` for every entry of every dict in ``value``, iteratively."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                yield key, sub, item
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)


def _literal(node: ast.AST) -> Any:
    """The value of a number or string literal (a negative number too), else ``None``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand)
        return -inner if isinstance(inner, (int, float)) and not isinstance(inner, bool) else None
    return node.value if isinstance(node, ast.Constant) else None


def _safe_shape_node(node: ast.AST, growing: list[int]) -> bool:
    if isinstance(node, ast.Constant) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    ):
        value = _literal(node)
        if isinstance(value, str):
            return bool(_SYMBOL.fullmatch(value) or _DECIMAL.fullmatch(value))
        return isinstance(value, (bool, float)) or (isinstance(value, int) and abs(value) < 2**64)
    if isinstance(node, ast.Name):
        return node.id in _SHAPE_CONSTANTS or node.id in _SHAPE_FUNCTIONS
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    if node.func.id not in _SHAPE_FUNCTIONS:
        return False
    if node.func.id in _GROWING:
        growing[0] += 1
        exponent = node.args[1] if len(node.args) == 2 else None
        if isinstance(exponent, ast.Call) and len(exponent.args) == 1:
            exponent = exponent.args[0]  # Integer(64)
        value = _literal(exponent) if exponent is not None else None
        if growing[0] > _MAX_GROWING or (value is not None and not abs(value) <= 64):
            return False
    for keyword in node.keywords:
        value = _literal(keyword.value)
        if keyword.arg not in _ASSUMPTIONS or not isinstance(value, (bool, int)):
            return False
        if keyword.arg == "precision" and not 0 < value <= 1024:
            return False
    return all(_safe_shape_node(arg, growing) for arg in node.args)


def _check_expression(text: Any) -> None:
    """A shape expression is ``sympy.srepr`` of a size, which the deserializer gives
    ``sympy.sympify`` (an ``eval``): only calls of :data:`_SHAPE_FUNCTIONS` on literals pass."""
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        raise UnsafeArchive("has a shape expression that is not short text")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    if tree is None or not _safe_shape_node(tree.body, [0]):
        raise UnsafeArchive(
            "has a shape expression that is not plain size arithmetic (sympy would evaluate it "
            "as Python code)"
        )


def _check_tree_spec(text: Any) -> None:
    try:
        _protocol, schema = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise UnsafeArchive("has a tree spec that does not parse") from None
    for key, value, owner in _walk(schema):
        if key == "type" and value is not None and value not in _TREE_TYPES:
            raise UnsafeArchive(f"has a tree spec of type {value!r}, which would be imported")
        if key == "context" and isinstance(value, str) and "children_spec" in owner:
            try:
                context = json.loads(value)
            except (ValueError, RecursionError):
                continue  # a namedtuple's name: looked up, never imported
            if any(k == "__enum__" for k, _v, _o in _walk(context)):
                raise UnsafeArchive("has a tree spec naming an enum, which would be imported")


def _check_target(text: Any) -> None:
    if not isinstance(text, str):
        raise UnsafeArchive("has a node whose target is not text")
    head, _, name = text.partition(".")
    if head == "_operator" and name in _OPERATOR_NAMES:
        return
    if head == "math" and callable(getattr(math, name, None)):
        return
    ops = _OPS_TARGET.fullmatch(text)
    if _SYM_TARGET.fullmatch(text) or (
        ops and ops["namespace"] not in ("load_library", "import_module")
    ):
        return
    raise UnsafeArchive(f"has a node calling {text[:80]!r}, not an operator")


def check_program(program: Any) -> None:
    """Raise :class:`UnsafeArchive` unless the program's JSON (parsed) is safe to deserialize."""
    for key, value, _owner in _walk(program):
        if key == "expr_str":
            _check_expression(value)
        elif key in ("in_spec", "out_spec"):
            _check_tree_spec(value)
        elif key in ("target", "as_operator"):  # a node's target, an operator argument
            _check_target(value)


def _pure_operator(target: Any, torch: Any) -> bool:
    if isinstance(target, torch._ops.HigherOrderOperator):
        return True
    if isinstance(target, torch._ops.OpOverload):
        return not {argument.name for argument in target._schema.arguments} & _FILE_ARGUMENTS
    return (
        target in {getattr(operator, n) for n in _OPERATOR_NAMES}
        or getattr(target, "__module__", None) == "math"
        or (
            getattr(target, "__name__", "").startswith("sym_")
            and getattr(torch, target.__name__, None) is target
        )
    )


def _check_calls(graph_module: Any) -> None:
    """After deserializing: every call, and every operator passed as an argument (to
    ``auto_functionalized``, say), is a pure operator (no file argument)."""
    import torch
    from torch.utils import _pytree

    for module in graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in graph.nodes if graph is not None else ():
            if node.op in ("call_method", "call_module") or (
                node.op == "call_function" and not _pure_operator(node.target, torch)
            ):
                raise UnsafeArchive(f"has a node calling {node.target!r}, not a pure operator")
            for value in _pytree.tree_leaves((node.args, node.kwargs)):
                if isinstance(value, torch._ops.OperatorBase) and not _pure_operator(value, torch):
                    raise UnsafeArchive(f"passes {value!r} to a node, not a pure operator")


def _members(reader: Any) -> list[str]:
    from torch.export.pt2_archive import constants as c

    names = reader.get_file_names()
    if len(names) > MAX_MEMBERS:
        raise UnsafeArchive(f"has more than {MAX_MEMBERS} members")
    compiled = [d for d in (c.AOTINDUCTOR_DIR, c.EXECUTORCH_DIR, c.MTIA_DIR) if d]
    for name in names:
        if any(name.startswith(d) for d in compiled):
            raise UnsafeArchive("holds compiled code (AOTInductor, ExecuTorch or MTIA)")
    legacy = {f"{c.WEIGHTS_DIR}{_MODEL}.pt", f"{c.CONSTANTS_DIR}{_MODEL}.pt"}
    if legacy & set(names):
        raise UnsafeArchive("keeps its weights in a pickle (the legacy layout)")
    if c.MODELS_FILENAME_FORMAT.format(_MODEL) not in names:
        raise UnsafeArchive(f"holds no program {_MODEL!r} (an older or a foreign layout)")
    return names


def _read_json(reader: Any, name: str) -> Any:
    size = reader.archive_file.get_record_size(name)
    if size > MAX_JSON_BYTES:
        raise UnsafeArchive(f"has a {size}-byte {name}, more than deconvlint reads")
    try:
        return json.loads(reader.read_bytes(name).decode("utf-8"))
    except (ValueError, RecursionError):
        raise UnsafeArchive(f"has a {name} that is not JSON") from None


def _check_payloads(reader: Any, names: list[str], file_size: int) -> None:
    """No pickled or custom-object payload; raw records no larger together than the file, and
    no tensor claiming more elements than its record has bytes (torch would allocate a zero-byte
    record's claimed shape, or view a small record with a huge stride-0 shape)."""
    from torch.export.pt2_archive import constants as c
    from torch.export.pt2_archive._package import _load_payload_config

    sizes: dict[str, int] = {}
    for folder, config_name, what in (
        (c.WEIGHTS_DIR, c.WEIGHTS_CONFIG_FILENAME_FORMAT.format(_MODEL), "weight"),
        (c.CONSTANTS_DIR, c.CONSTANTS_CONFIG_FILENAME_FORMAT.format(_MODEL), "constant"),
    ):
        if config_name not in names:
            raise UnsafeArchive(f"has no {config_name}")
        _read_json(reader, config_name)  # bounded before torch reads it
        config = _load_payload_config(reader, config_name)
        for fqn, payload in config.config.items():
            if payload.use_pickle:
                raise UnsafeArchive(f"stores the {what} {fqn!r} as a pickle")
            if what == "constant" and not payload.path_name.startswith(
                c.TENSOR_CONSTANT_FILENAME_PREFIX
            ):
                raise UnsafeArchive(f"holds the object {fqn!r}, which loads by unpickling")
            record = os.path.join(folder, payload.path_name)
            if record not in names:
                raise UnsafeArchive(f"names a missing record {record!r}")
            sizes[record] = reader.archive_file.get_record_size(record)
            dims = [d.value if d.type == "as_int" else -1 for d in payload.tensor_meta.sizes]
            if any(d < 0 for d in dims) or math.prod(dims) > sizes[record]:
                raise UnsafeArchive(f"has a {what} {fqn!r} larger than the data it holds")
    if sum(sizes.values()) > file_size:
        raise UnsafeArchive("has records that inflate past the size of the file")


def load_exported(path: str | os.PathLike) -> Any:
    """The ``torch.export.ExportedProgram`` saved at ``path``, read without running anything from
    it (see the module docstring); :class:`UnsafeArchive` when that cannot be proven."""
    import torch  # noqa: F401
    from torch._export.serde.schema import ExportedProgram
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass
    from torch.export.pt2_archive import constants as c
    from torch.export.pt2_archive._package import (
        PT2ArchiveReader,
        _load_constants,
        _load_state_dict,
    )

    with open_regular(path) as handle:
        file_size = os.fstat(handle.fileno()).st_size
    reader = PT2ArchiveReader(os.fspath(path))
    if reader.read_string(c.ARCHIVE_VERSION_PATH) != c.ARCHIVE_VERSION_VALUE:
        raise UnsafeArchive("has an archive version this torch does not read")
    names = _members(reader)
    _check_payloads(reader, names, file_size)
    program = _read_json(reader, c.MODELS_FILENAME_FORMAT.format(_MODEL))
    check_program(program)
    try:
        serialized = _dict_to_dataclass(ExportedProgram, program)
    except RecursionError:
        raise UnsafeArchive("nests its program too deeply") from None
    serialized.guards_code = []  # Python source, run only by ExportedProgram.module()
    exported = ExportedProgramDeserializer().deserialize(
        serialized,
        _load_state_dict(reader, _MODEL),
        _load_constants(reader, _MODEL),
        None,  # the sample inputs: a pickle, and not needed
    )
    _check_calls(exported.graph_module)
    return exported

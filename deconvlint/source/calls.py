"""Find the calls that build upsampling layers in Python source, and read their literal geometry.

Nothing is imported or run: the file is parsed with :mod:`ast`.  A call is recognised by the
dotted name it is written with, resolved through the file's imports (``import torch.nn as nn``,
``from torch import nn``, ``from torch.nn import ConvTranspose2d``, ``import torch.nn.functional
as F``); the spellings ``nn.X`` and ``F.x`` are also accepted without an import, since snippets
often leave them out.  Arguments are bound to the torch signature, positional or keyword; the
channel counts may be any expression, the geometry must be literal (ints, tuples of ints,
strings, floats, ``True``/``False``/``None``).  A call with ``*args``/``**kwargs`` or a
non-literal geometry argument is *skipped* (counted, never reported).  Keras, Flax and JAX calls
(``keras.layers.Conv2DTranspose``, ``flax.linen.ConvTranspose``, ``jax.image.resize``, ...) are
found the same way and bound to their own signatures (:mod:`deconvlint.source.libraries`); their
``cls`` is a key such as ``"keras.Conv2DTranspose"``.

>>> calls, skipped = find_calls("import torch.nn as nn\\nup = nn.ConvTranspose2d(c, c // 2, 3, stride=2)\\n")
>>> [(c.cls, c.line, c.col, c.args["kernel_size"], c.args["stride"]) for c in calls], skipped
([('ConvTranspose2d', 2, 6, 3, 2)], 0)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from deconvlint.source import libraries

TORCH_NN = "torch.nn"
TORCH_F = "torch.nn.functional"

_CONV_T = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding")
_CONV_T += ("groups", "bias", "dilation", "padding_mode", "device", "dtype")
_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation")
_CONV += ("groups", "bias", "padding_mode", "device", "dtype")
_UPSAMPLE = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")
_INTERPOLATE = ("input", *_UPSAMPLE, "antialias")

#: torch signature (parameter names in positional order) of each class or function read here.
SIGNATURES: dict[str, tuple[str, ...]] = {
    **{f"ConvTranspose{r}d": _CONV_T for r in (1, 2, 3)},
    **{f"Conv{r}d": _CONV for r in (1, 2, 3)},
    "Upsample": _UPSAMPLE,
    "UpsamplingNearest2d": ("size", "scale_factor"),
    "UpsamplingBilinear2d": ("size", "scale_factor"),
    "interpolate": _INTERPOLATE,
    "upsample": _INTERPOLATE,
    "PixelShuffle": ("upscale_factor",),
    **libraries.SIGNATURES,  # Keras, Flax and JAX calls, by key ("keras.Conv2DTranspose")
}
#: the classes and functions whose calls are checked on their own (the rest only in chains)
UPSAMPLERS = frozenset(
    {f"ConvTranspose{r}d" for r in (1, 2, 3)}
    | {"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "interpolate", "upsample"}
    | libraries.UPSAMPLERS
)
# geometry parameters that must be literal for the call to be checked
GEOMETRY = {
    "ConvTranspose": ("kernel_size", "stride", "padding", "output_padding", "dilation", "groups"),
    "Conv": ("kernel_size", "stride", "padding", "dilation", "groups"),
    "resize": ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"),
    "PixelShuffle": ("upscale_factor",),
}
_MISSING = object()


@dataclass
class LayerCall:
    """One call of a known layer class or function, with its bound arguments."""

    cls: str  # "ConvTranspose2d", "Upsample", "interpolate", ...
    callee: str  # the callee as written: "nn.ConvTranspose2d"
    prefix: str  # what stands before the class name, with its dot: "nn.", "torch.nn.", ""
    line: int  # 1-based
    col: int  # 1-based, in characters
    end_line: int
    end_col: int  # 1-based, in characters: the column after the call's closing parenthesis
    node: ast.Call = field(repr=False)
    args: dict[str, Any] = field(default_factory=dict)  # literal values of geometry arguments
    sources: dict[str, str] = field(default_factory=dict)  # every bound argument, as written
    literal: bool = True  # every geometry argument is literal

    @property
    def position(self) -> str:
        return f"{self.line}:{self.col}"

    def int_arg(self, name: str) -> int | None:
        value = self.args.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dotted(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        head = _dotted(expr.value)
        return None if head is None else f"{head}.{expr.attr}"
    return None


class _Imports(ast.NodeVisitor):
    """Local name -> the dotted module path or object it stands for."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.names[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.names[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for alias in node.names:
                self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def _qualified(dotted: str, imports: dict[str, str]) -> str:
    head, _, rest = dotted.partition(".")
    # conventional spellings when the import is not in this file
    conventional = {"nn": TORCH_NN, "F": TORCH_F, "torch": "torch", "tf": "tensorflow"}
    base = imports[head] if head in imports else conventional.get(head, head)
    return f"{base}.{rest}" if rest else base


def resolve_callee(dotted: str, imports: dict[str, str]) -> str | None:
    """The class or function name if ``dotted`` names one of :data:`SIGNATURES` in torch; the
    key (``"keras.Conv2DTranspose"``) of a Keras, Flax or JAX call."""
    qualified = _qualified(dotted, imports)
    key = libraries.resolve(qualified)
    if key is not None:
        return key
    module, _, name = qualified.rpartition(".")
    if name not in SIGNATURES:
        return None
    if name in ("interpolate", "upsample"):
        return name if module == TORCH_F else None
    return (
        name
        if module in (TORCH_NN, f"{TORCH_NN}.modules") or module.startswith(f"{TORCH_NN}.modules.")
        else None
    )


def literal_value(expr: ast.expr) -> Any:
    """The value of a literal expression (lists read as tuples), else :data:`_MISSING`."""
    try:
        value = ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _MISSING
    return tuple(value) if isinstance(value, list) else value


def geometry_names(cls: str) -> tuple[str, ...]:
    if cls in libraries.GEOMETRY:
        return libraries.GEOMETRY[cls]
    if cls.startswith("ConvTranspose"):
        return GEOMETRY["ConvTranspose"]
    if cls.startswith("Conv"):
        return GEOMETRY["Conv"]
    if cls == "PixelShuffle":
        return GEOMETRY["PixelShuffle"]
    return GEOMETRY["resize"]


def _char_column(line_text: str, byte_offset: int) -> int:
    """1-based column in characters of an ``ast`` offset, which counts UTF-8 bytes."""
    return len(line_text.encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1


def bind_call(call: ast.Call, cls: str, callee: str, text_lines: list[str]) -> LayerCall:
    """Bind ``call``'s arguments to the signature of ``cls``; read the geometry as literals."""
    params = SIGNATURES[cls]
    line_text = text_lines[call.lineno - 1] if call.lineno <= len(text_lines) else ""
    col = _char_column(line_text, call.col_offset)
    end_line = call.end_lineno or call.lineno
    end_text = text_lines[end_line - 1] if end_line <= len(text_lines) else ""
    end_offset = call.end_col_offset if call.end_col_offset is not None else len(end_text)
    prefix = callee[: len(callee) - len(callee.rsplit(".", 1)[-1])]
    layer = LayerCall(
        cls=cls,
        callee=callee,
        prefix=prefix,
        line=call.lineno,
        col=col,
        end_line=end_line,
        end_col=_char_column(end_text, end_offset),
        node=call,
    )
    bound: dict[str, ast.expr] = {}
    starred = any(isinstance(a, ast.Starred) for a in call.args)
    starred |= any(kw.arg is None for kw in call.keywords)
    if starred or len(call.args) > len(params):
        layer.literal = False
        return layer
    for name, arg in zip(params, call.args, strict=False):
        bound[name] = arg
    for kw in call.keywords:
        bound[kw.arg] = kw.value  # type: ignore[index]  # kw.arg is not None here
    for name, expr in bound.items():
        layer.sources[name] = ast.unparse(expr)
    for name in geometry_names(cls):
        if name not in bound:
            continue
        value = literal_value(bound[name])
        if value is _MISSING:
            layer.literal = False
        else:
            layer.args[name] = value
    if cls in libraries.SIGNATURES:
        _bind_library(layer, bound)
        return layer
    if layer.args.get("size") is not None:
        layer.literal = False  # the scale of size= depends on the input size
    for name in ("in_channels", "out_channels"):
        if name in bound and isinstance(literal_value(bound[name]), int):
            layer.args[name] = literal_value(bound[name])
    return layer


def _bind_library(layer: LayerCall, bound: dict[str, ast.expr]) -> None:
    """Channels and bias of a Keras/Flax layer (when literal); a JAX resize's scales."""
    cin, cout, bias = libraries.CHANNELS.get(layer.cls, (None, None, None))
    for name, param in (("in_channels", cin), ("out_channels", cout), ("use_bias", bias)):
        value = _MISSING if param not in bound else literal_value(bound[param])  # type: ignore[index]
        if isinstance(value, int):  # a bool too, for use_bias
            layer.args[name] = value
    if layer.cls == "jax.image.resize":
        scales = libraries.resize_scales(bound.get("shape"))
        if scales is None:
            layer.literal = False
        else:
            layer.args["scales"] = scales


@dataclass
class SourceCalls:
    """Every known layer call of one file, and the ``nn.Sequential(...)`` literals."""

    calls: list[LayerCall]
    # elements in order: a known call, the qualified name of another call, or None
    sequentials: list[list[LayerCall | str | None]]
    imports: dict[str, str]


def scan(tree: ast.Module, text: str) -> SourceCalls:
    """All calls of the classes and functions in :data:`SIGNATURES`, in source order."""
    finder = _Imports()
    finder.visit(tree)
    imports = finder.names
    lines = text.splitlines()
    by_node: dict[int, LayerCall] = {}
    sequential_nodes: list[ast.Call] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if dotted is None:
            continue
        cls = resolve_callee(dotted, imports)
        if cls is not None:
            by_node[id(node)] = bind_call(node, cls, dotted, lines)
        elif _qualified(dotted, imports) in (f"{TORCH_NN}.Sequential", *libraries.SEQUENTIALS):
            sequential_nodes.append(node)
    calls = sorted(by_node.values(), key=lambda c: (c.line, c.col))
    sequentials = []
    for seq in sorted(sequential_nodes, key=lambda n: (n.lineno, n.col_offset)):
        elements = _chain_elements(seq)
        if elements is not None:
            sequentials.append([_element(a, by_node, imports) for a in elements])
    return SourceCalls(calls=calls, sequentials=sequentials, imports=imports)


def _chain_elements(seq: ast.Call) -> list[ast.expr] | None:
    """The layers of a literal chain: ``nn.Sequential(a, b)``'s arguments, or the list of
    ``keras.Sequential([a, b])`` (``layers=[...]``); ``None`` for anything else."""
    if not seq.args and len(seq.keywords) >= 1 and seq.keywords[0].arg == "layers":
        seq_list = seq.keywords[0].value  # keras.Sequential(layers=[...], name=...)
    elif len(seq.args) == 1 and isinstance(seq.args[0], ast.List | ast.Tuple):
        seq_list = seq.args[0]  # keras.Sequential([...], name=...)
    else:
        if seq.keywords or any(isinstance(a, ast.Starred) for a in seq.args):
            return None  # nn.Sequential(*layers) or an OrderedDict: not a literal chain
        return list(seq.args)
    if not isinstance(seq_list, ast.List | ast.Tuple):
        return None
    if any(isinstance(e, ast.Starred) for e in seq_list.elts):
        return None
    return list(seq_list.elts)


def _element(
    expr: ast.expr, by_node: dict[int, LayerCall], imports: dict[str, str]
) -> LayerCall | str | None:
    if id(expr) in by_node:
        return by_node[id(expr)]
    if isinstance(expr, ast.Call) and (dotted := _dotted(expr.func)) is not None:
        return _qualified(dotted, imports)
    return None


def find_calls(text: str) -> tuple[list[LayerCall], int]:
    """The upsampling calls with literal geometry, and how many were skipped as not literal."""
    found = scan(ast.parse(text), text)
    ups = [c for c in found.calls if c.cls in UPSAMPLERS]
    checked = [c for c in ups if c.literal]
    return checked, len(ups) - len(checked)

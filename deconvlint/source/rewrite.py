"""Rewrite layer calls in Python source with libcst, so that comments and formatting survive.

An edit names a call by its ``(line, col)`` (1-based, in characters, as findings show it) and
gives new values for some of its parameters: a parameter passed by keyword or by position is
replaced where it stands, a missing one is added as a keyword after the last argument (a
trailing comma and the call's line breaks are kept).

>>> editor = SourceEditor("up = nn.ConvTranspose2d(\\n    64, 32, 3, stride=2,  # x2\\n)\\n")
>>> print(editor.apply({(1, 6): {"kernel_size": 4, "padding": 1}}), end="")
up = nn.ConvTranspose2d(
    64, 32, 4, stride=2, padding=1,  # x2
)
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from deconvlint.source.calls import SIGNATURES, resolve_callee

Position = tuple[int, int]
Changes = Mapping[str, Any]


@dataclass(frozen=True)
class Replacement:
    """The text from ``start`` to ``end`` (``(line, column)``, 1-based lines and 0-based
    columns in characters, end excluded) becomes ``code``."""

    start: tuple[int, int]
    end: tuple[int, int]
    code: str


def value_code(value: Any, quote: str = '"') -> str:
    """Python source for a parameter value: ``4``, ``(4, 2)``, ``"bilinear"``, ``False``; a
    string in ``quote`` (the call's own quote character).

    >>> value_code("same", "'"), value_code(("a", 1))
    ("'same'", '("a", 1)')
    """
    if isinstance(value, str):
        return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote
    if isinstance(value, tuple):
        items = ", ".join(value_code(v, quote) for v in value)
        return "(" + items + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _quote(call: cst.Call) -> str:
    """The quote character of the call's first plain string argument (``"`` without one)."""
    for arg in call.args:
        if isinstance(arg.value, cst.SimpleString) and arg.value.quote in ("'", '"'):
            return arg.value.quote
    return '"'


def _dotted(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        head = _dotted(expr.value)
        return None if head is None else f"{head}.{expr.attr.value}"
    return None


def _separator(args: list[cst.Arg]) -> cst.Comma:
    """The comma between two arguments, as the call already writes it."""
    for arg in args[:-1]:
        if isinstance(arg.comma, cst.Comma):
            return arg.comma
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _append_commas(args: list[cst.Arg]) -> tuple[cst.Comma, cst.Comma | cst.MaybeSentinel]:
    """(the last argument's new comma, the appended argument's comma).

    One argument per line with a trailing comma: the last argument keeps its comment, the new
    one goes on its own line with the same indentation and also gets a trailing comma.
    Otherwise the new argument takes the last one's comma (none, or a trailing comma with the
    closing parenthesis's line break) and the last one gets the call's usual separator.
    """
    last = args[-1].comma
    separator = _separator(args)
    if (
        isinstance(last, cst.Comma)
        and isinstance(last.whitespace_after, cst.ParenthesizedWhitespace)
        and isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace)
    ):
        kept = separator.whitespace_after.with_changes(first_line=last.whitespace_after.first_line)
        closing = last.whitespace_after.with_changes(first_line=cst.TrailingWhitespace())
        return last.with_changes(whitespace_after=kept), cst.Comma(whitespace_after=closing)
    return separator, last


def edit_call(call: cst.Call, params: tuple[str, ...], changes: Changes) -> cst.Call:
    """``call`` with the parameters in ``changes`` replaced or added (``params``: the signature)."""
    args = list(call.args)
    quote = _quote(call)
    positional = [i for i, a in enumerate(args) if a.keyword is None and not a.star]
    for name, value in changes.items():
        expr = cst.parse_expression(value_code(value, quote))
        slot = next((i for i, a in enumerate(args) if a.keyword and a.keyword.value == name), None)
        if slot is None and params.index(name) < len(positional):
            slot = positional[params.index(name)]
        if slot is not None:
            args[slot] = args[slot].with_changes(value=expr)
            continue
        new = cst.Arg(
            keyword=cst.Name(name),
            value=expr,
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        if args:
            last_comma, separator = _append_commas(args)
            args[-1] = args[-1].with_changes(comma=last_comma)
            new = new.with_changes(comma=separator)
        args.append(new)
    return call.with_changes(args=args)


class _Editor(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: Mapping[Position, Changes], imports: dict[str, str]) -> None:
        super().__init__()
        self.edits = edits
        self.imports = imports
        self.applied: set[Position] = set()
        self.module_indent = "    "
        # where each edited call stood (without its parentheses), the indentation of the
        # block it stands in, and the call it became
        self.replaced: list[tuple[CodeRange, tuple[str, ...], cst.Call]] = []
        self._indents: list[str] = []

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._indents.append(self.module_indent if node.indent is None else node.indent)

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self._indents.pop()
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        start = self.get_metadata(PositionProvider, original_node).start
        key = (start.line, start.column + 1)
        changes = self.edits.get(key)
        dotted = _dotted(original_node.func)
        cls = None if dotted is None else resolve_callee(dotted, self.imports)
        if not changes or cls is None:
            return updated_node
        self.applied.add(key)
        edited = edit_call(updated_node, SIGNATURES[cls], changes)
        where = self.get_metadata(PositionProvider, original_node)
        self.replaced.append((where, tuple(self._indents), edited))
        return edited


class _Calls(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[Position, cst.Call] = {}

    def visit_Call(self, node: cst.Call) -> None:
        start = self.get_metadata(PositionProvider, node).start
        self.calls.setdefault((start.line, start.column + 1), node)


class SourceEditor:
    """One file's concrete syntax tree: the text of edited calls, and the edited file."""

    def __init__(self, text: str, imports: dict[str, str] | None = None) -> None:
        self.module = cst.parse_module(text)
        self.imports = imports or {}
        self._wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        visitor = _Calls()
        self._wrapper.visit(visitor)
        self.calls = visitor.calls

    def call_code(self, position: Position, changes: Changes) -> str | None:
        """The lines that hold the call at ``position`` once ``changes`` are made, as they
        would stand in the file (dedented)."""
        if position not in self.calls:
            return None
        text = self.apply({position: changes})
        line, col = position
        lines = text.splitlines()
        prefix = lines[line - 1][: col - 1].encode("utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and (node.lineno, node.col_offset) == (line, len(prefix)):
                end = node.end_lineno or line
                return textwrap.dedent("\n".join(lines[line - 1 : end]))
        return None

    def apply(self, edits: Mapping[Position, Changes]) -> str:
        """The file's text with every edit applied."""
        editor = _Editor(edits, self.imports)
        return self._wrapper.visit(editor).code

    def replacements(self, edits: Mapping[Position, Changes]) -> list[Replacement]:
        """Every edit as a replacement of the text the call stands on (an edited call inside
        another one is part of the outer call's replacement), in order: splicing them into
        the file's text (:func:`deconvlint.source.splice.splice_text`) changes nothing else,
        where :meth:`apply` gives libcst's rendering of the whole file."""
        editor = _Editor(edits, self.imports)
        editor.module_indent = self.module.default_indent
        self._wrapper.visit(editor)
        found: list[Replacement] = []
        spans = [
            ((w.start.line, w.start.column), (w.end.line, w.end.column), indents, call)
            for w, indents, call in editor.replaced
        ]
        for start, end, indents, call in sorted(spans, key=lambda span: span[:2]):
            if found and start < found[-1].end:
                continue  # inside the previous (outer) call, whose new code holds this edit
            # rendered as within its block, whose indentation its continuation lines add
            state = CodegenState(
                default_indent=self.module.default_indent,
                default_newline=self.module.default_newline,
                indent_tokens=list(indents),
            )
            call.with_changes(lpar=[], rpar=[])._codegen(state)
            found.append(Replacement(start, end, "".join(state.tokens)))
        return found

"""Source mode: check the upsampling layers a Python file builds, without importing it.

Each literal call becomes the IR node the torch front end would make of it
(:mod:`deconvlint.source.layers`) and goes through the same rules, so numbers and messages match
the ONNX and torch paths.  A call on its own gets the single-layer rules (DL001, DL002, DL005);
the calls that stand in one ``nn.Sequential(...)`` literal form a chain and also get the stacked
rule (DL003).  Findings are named ``line:col`` (the path is the file's); ``# noqa: DL001`` or
``# deconvlint: ignore[DL001]`` on the call's first or last line suppresses them, a bare ``#
noqa`` or ``# deconvlint: ignore`` all of them.  Each suggestion's code is the call rewritten
as it would stand in the file: the lines that hold it.  Keras, Flax and JAX calls get their own
library's rewrites (:mod:`deconvlint.source.spellings`).

>>> text = "import torch.nn as nn\\nup = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)\\n"
>>> outcome = check_text(text)
>>> [(f.node, f.rule) for f in outcome.findings], outcome.checked, outcome.skipped
([('2:6', 'DL001')], 1, 0)
>>> print(outcome.findings[0].suggestions[0].code)
up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=2, output_padding=1)
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field, replace
from typing import Any

from deconvlint.config.settings import Settings
from deconvlint.core.ir import Graph, Kind, Node
from deconvlint.report import Finding, Location, Suggestion, severity_rank
from deconvlint.rewrites import suggestions as rewrites
from deconvlint.rules.catalogue import load_catalogue, rules_where
from deconvlint.source import libraries, spellings
from deconvlint.source.calls import UPSAMPLERS, LayerCall, scan
from deconvlint.source.layers import class_rank, element_node, layer_node, resize_rank


def single_rules() -> frozenset[str]:
    """The rules a layer call gets on its own (catalogue metadata ``source: single``)."""
    return frozenset(rules_where(source="single"))


def chain_rules() -> frozenset[str]:
    """The rules a chain of calls gets: the single-layer ones and ``source: chain``."""
    return frozenset(rules_where(source=("single", "chain")))


_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.I)
_IGNORE = re.compile(r"#\s*deconvlint:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.I)
_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass
class Layer:
    """A checked call: its node, and whether its spatial rank is stated rather than assumed."""

    call: LayerCall
    node: Node
    rank_known: bool


@dataclass
class Outcome:
    """What source mode found in one text."""

    findings: list[Finding] = field(default_factory=list)
    checked: int = 0  # upsampling calls with literal geometry
    skipped: int = 0  # upsampling calls whose geometry is not literal
    # (line, col) -> parameter changes; safe fixes, and the unsafe kernel rewrites
    safe_edits: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    unsafe_edits: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # findings each edit fixes (by rule and node), for counting
    fixes: dict[tuple[int, int], list[Finding]] = field(default_factory=dict)


def suppressions(text: str) -> dict[int, frozenset[str] | None]:
    """Line -> the rule ids its ``noqa`` / ``deconvlint: ignore`` comment names (``None``: all)."""
    found: dict[int, frozenset[str] | None] = {}
    if not (_NOQA.search(text) or _IGNORE.search(text)):
        return found  # no comment can match: the tokenizer (its regexes) is not needed
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        for pattern in (_NOQA, _IGNORE):
            m = pattern.search(token.string)
            if not m:
                continue
            line = token.start[0]
            codes = m.group("codes")
            if codes is None or not codes.strip() or found.get(line, frozenset()) is None:
                found[line] = None
            else:
                names = {c.strip().upper() for c in codes.split(",") if c.strip()}
                found[line] = frozenset(found.get(line) or frozenset()) | names
    return found


def _suppressed(finding: Finding, call: LayerCall, noqa: dict[int, frozenset[str] | None]) -> bool:
    for line in {call.line, call.end_line}:
        if line in noqa:
            codes = noqa[line]
            if codes is None or finding.rule in codes:
                return True
    return False


def _unique_rank(classes: list[str]) -> int | None:
    ranks = {r for c in classes if (r := class_rank(c.rsplit(".", 1)[-1])) is not None}
    return ranks.pop() if len(ranks) == 1 else None


def _graphs(text: str) -> tuple[list[tuple[Graph, frozenset[str]]], dict[str, Layer], int, int]:
    """The graphs to check (with the rules each gets), the layers by node name, and the counts
    of checked and skipped upsampling calls."""
    found = scan(ast.parse(text), text)
    file_rank = _unique_rank([c.cls for c in found.calls])
    layers: dict[str, Layer] = {}
    graphs: list[tuple[Graph, frozenset[str]]] = []
    in_chain: set[str] = set()
    for elements in found.sequentials:
        names = [e.cls if isinstance(e, LayerCall) else e for e in elements if e is not None]
        chain_rank = _unique_rank(names)
        nodes = [element_node(e, i, chain_rank or file_rank) for i, e in enumerate(elements)]
        ups = [
            (e, n)
            for e, n in zip(elements, nodes, strict=True)
            if isinstance(e, LayerCall) and e.cls in UPSAMPLERS and n.kind is not Kind.BARRIER
        ]
        if not ups:
            continue
        for call, node in ups:
            known = class_rank(call.cls) or resize_rank(call) or chain_rank
            layers[node.name] = Layer(call, node, known is not None)
            in_chain.add(node.name)
        graph = Graph("sequential", nodes, (nodes[0].inputs[0],), (nodes[-1].outputs[0],))
        graphs.append((graph, chain_rules()))
    checked = skipped = 0
    for call in found.calls:
        if call.cls not in UPSAMPLERS:
            continue
        node = layer_node(call, 0, file_rank)
        if node is None:
            skipped += 1
            continue
        checked += 1
        if node.name in in_chain:
            continue
        known = class_rank(call.cls) or resize_rank(call)
        layers[node.name] = Layer(call, node, known is not None)
        graphs.append((Graph("call", [node], ("v0",), ("v1",)), single_rules()))
    return graphs, layers, checked, skipped


def check_text(text: str, settings: Settings | None = None, path: str = "") -> Outcome:
    """Check one file's text (``path``: the file's name, for the findings' locations); raises
    :class:`SyntaxError` (and ValueError for NUL bytes)."""
    from deconvlint.rules.registry import run_rules

    # a call's graph output is not the model's: no rule about outputs (DL004), nor its metrics
    # on another finding
    settings = settings or Settings()
    settings = replace(settings, ignore=(*settings.ignore, *rules_where(scope="output")))
    graphs, layers, checked, skipped = _graphs(text)
    outcome = Outcome(checked=checked, skipped=skipped)
    noqa = suppressions(text)
    for graph, allowed in graphs:
        for finding in run_rules(graph, settings):
            layer = layers.get(finding.node)
            if finding.rule in allowed and layer and not _suppressed(finding, layer.call, noqa):
                call = layer.call
                finding.location = Location(path, call.line, call.col, call.end_line, call.end_col)
                outcome.findings.append(finding)
    outcome.findings.sort(key=lambda f: (layers[f.node].call.line, layers[f.node].call.col, f.rule))
    if outcome.findings:
        _plan(outcome, layers, settings, text)
    return outcome


def _kernel_changes(layer: Layer) -> dict[str, Any] | None:
    if layer.call.cls in libraries.SIGNATURES:
        return spellings.kernel_changes(layer.call, layer.node)
    changes = dict(rewrites.conv_transpose_params(layer.node))
    changes.pop("stride")
    if "output_padding" not in changes and "output_padding" in layer.call.sources:
        changes["output_padding"] = 0
    if "dilation" in layer.call.sources:
        changes["dilation"] = 1  # the solved kernel assumes no dilation
    return changes


def _resize_changes(layer: Layer, mode: str) -> dict[str, Any]:
    changes: dict[str, Any] = {"mode": mode}
    if mode != "area":
        changes["align_corners"] = False
    elif "align_corners" in layer.call.sources:
        changes["align_corners"] = None  # area refuses align_corners
    return changes


def _plan(outcome: Outcome, layers: dict[str, Layer], settings: Settings, text: str) -> None:
    """Source-form suggestions for every finding, and the edits ``--fix`` may apply."""
    from deconvlint.source.rewrite import SourceEditor

    editor = SourceEditor(text, scan(ast.parse(text), text).imports)
    threshold = severity_rank(settings.fail_on)
    catalogue = load_catalogue()
    for finding in outcome.findings:
        layer = layers[finding.node]
        fixable = severity_rank(finding.severity) >= threshold
        doc = catalogue[finding.rule]  # its metadata says what to rewrite, and how safely
        edits = outcome.safe_edits if doc.fix == "safe" else outcome.unsafe_edits
        if doc.pattern == "coverage" and doc.scope == "layer":  # the layer's kernel
            changes = _kernel_changes(layer)
            code = [] if changes is None else [editor.call_code(_pos(layer), changes)]
            _recode(finding, [*code, _resize_conv_code(layer)])
            if fixable and changes is not None:
                _add(outcome, edits, layer, changes, finding)
        elif doc.pattern == "coverage" and doc.scope == "stack":  # each layer's kernel
            stack = [layers[n] for n in finding.metrics["nodes"] if n in layers]
            lines = []
            for member in stack:
                changes = _kernel_changes(member)
                if changes is None:  # the stack's suggestion says so for this layer
                    lines = []
                    break
                lines += [f"# line {member.call.line}", editor.call_code(_pos(member), changes)]
                if fixable:
                    _add(outcome, edits, member, changes, finding)
            _recode(finding, ["\n".join(str(line) for line in lines) if lines else None])
        elif doc.pattern == "footprint":  # the resize's mode
            codes = []
            if layer.call.cls in libraries.SIGNATURES:
                changes = spellings.resize_changes(layer.call)
                _recode(finding, [editor.call_code(_pos(layer), changes)])
                if fixable:
                    _add(outcome, edits, layer, changes, finding)
                continue
            for suggestion in finding.suggestions:
                mode = suggestion.params["mode"]
                changes = _resize_changes(layer, mode)
                if layer.call.cls in ("Upsample", "interpolate", "upsample"):
                    codes.append(editor.call_code(_pos(layer), changes))
                    if fixable and layer.rank_known and mode != "area":
                        _add(outcome, edits, layer, changes, finding)
                else:  # UpsamplingNearest2d has no mode: name the class that has one
                    scale = layer.call.sources.get("scale_factor")
                    extra = ", align_corners=False" if mode != "area" else ""
                    codes.append(
                        f"{layer.call.prefix or 'nn.'}Upsample(scale_factor={scale}, "
                        f'mode="{mode}"{extra})'
                    )
            _recode(finding, codes)


def _pos(layer: Layer) -> tuple[int, int]:
    return (layer.call.line, layer.call.col)


def _add(
    outcome: Outcome,
    edits: dict[tuple[int, int], dict[str, Any]],
    layer: Layer,
    changes: dict[str, Any],
    finding: Finding,
) -> None:
    edits[_pos(layer)] = changes
    outcome.fixes.setdefault(_pos(layer), []).append(finding)


def _recode(finding: Finding, codes: list[str | None]) -> None:
    """Put the source-form code in the finding's suggestions (same titles and parameters)."""
    finding.suggestions = [
        Suggestion(s.title, s.params, code if code is not None else s.code)
        for s, code in zip(finding.suggestions, codes, strict=False)
    ]


def _resize_conv_code(layer: Layer) -> str | None:
    """Nearest ``Upsample`` + ``Conv`` with the call's own channel expressions and prefix."""
    call, node = layer.call, layer.node
    if call.cls in libraries.SIGNATURES:
        return spellings.resize_conv_code(node)
    solved = [rewrites.solve_resize_conv(w) for w in node.window]
    scale = rewrites.axes_value([w.stride for w in node.window])
    kernel = rewrites.axes_value([k for k, _ in solved])
    padding = rewrites.axes_value([p for _, p in solved])
    prefix = call.prefix or "nn."
    cin = call.sources.get("in_channels", "in_channels")
    cout = call.sources.get("out_channels", "out_channels")
    extra = "".join(f", {k}={call.sources[k]}" for k in ("groups", "bias") if k in call.sources)
    rank = node.spatial_rank
    return (
        f"{prefix}Sequential(\n"
        f'    {prefix}Upsample(scale_factor={scale!r}, mode="nearest"),\n'
        f"    {prefix}Conv{rank}d({cin}, {cout}, kernel_size={kernel!r}, padding={padding!r}"
        f"{extra}),\n"
        ")"
    )

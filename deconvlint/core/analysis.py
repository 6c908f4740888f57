"""The coverage pass: propagate the interior pattern along every path of a graph.

One pass, one job (like ``torch.fx.passes.shape_prop``): :class:`CoveragePass` walks the nodes in
topological order and annotates every value with the set of :class:`PathState` that reach it.
Paths meet at joins (Add, Concat, Mul) and stay separate there; states that agree are merged, so
the count of states stays small even in residual networks.

>>> from deconvlint.core.chainspec import parse_chain
>>> from deconvlint.core.ir import Graph
>>> nodes = parse_chain("ConvTranspose1d(k=3, s=2, p=1, op=1) -> ConvTranspose1d(k=4, s=2, p=1)")
>>> result = CoveragePass(Graph("g", nodes, ("v0",), ("v2",))).run()
>>> [s.patterns for s in result.states["v2"]]
[(array([3.]),)]
>>> result.compensation["layer0"]
['layer1']
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from deconvlint.core.geometry import (
    UnknownGeometry,
    has_holes,
    layer_patterns,
    output_periods,
    pattern_cv,
    pattern_metrics,
    patterns_uniform,
    propagate_all,
)
from deconvlint.core.ir import Graph, Kind, Node

#: The longest period composed on one axis, and the most cells of one N-D period.  Real models
#: stay far below (a total upsampling of 1024 per axis is large); beyond, a path keeps the
#: pattern composed so far and marks itself truncated instead of growing without bound.
PERIOD_CAP = 4096
CELL_CAP = 2**20
#: At most this many distinct states per value; beyond it the rest are merged into one.
MAX_STATES = 64
# A pattern whose largest magnitude leaves [2**-RESCALE_BITS, 2**RESCALE_BITS] is scaled by a
# power of two (exact in binary floating point: ratios and CVs keep every bit); ``exp`` keeps
# the scale, so a chain of 110 stride-1 layers of kernel 1024 stays finite.
RESCALE_BITS = 64


def is_uneven_upsampler(node: Node) -> bool:
    """A transposed conv or unpool whose own phase pattern is non-uniform (DL001 or DL002)."""
    if node.kind not in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        return False
    return not patterns_uniform(layer_patterns(node))


@dataclass(frozen=True)
class PathState:
    """What one path carries to a value.

    ``patterns``: the composed per-axis interior pattern (``()`` while no spatial op was met),
    times ``2**exp``.  ``pending``: uneven upsamplers on this path not yet compensated (the
    pattern has not been uniform since).  ``compensated``: (layer, node that made the pattern
    uniform again).  ``stack``: the uneven upsamplers met since the pattern was last uniform, in
    order.  ``truncated``: why the pattern stopped being composed (the period cap at a node, or
    paths merged at a node), ``None`` while it is exact; from there on the pattern is the one
    composed before, and it never counts as uniform again.  ``composed``: how many layers of
    ``stack`` the pattern includes (all of them while it is exact).
    """

    patterns: tuple[np.ndarray, ...] = ()
    pending: tuple[str, ...] = ()
    compensated: tuple[tuple[str, str], ...] = ()
    stack: tuple[str, ...] = ()
    exp: int = 0
    truncated: str | None = None
    composed: int | None = None

    @functools.cached_property  # a state is immutable; most pass several nodes unchanged
    def key(self) -> tuple:
        # Paths whose patterns differ only in scale (3x3 convs multiply every count by 3) are
        # alike for every rule: merge them on the shape of the pattern.
        return (
            tuple(map(_shape_key, self.patterns)),
            self.pending,
            self.compensated,
            self.stack,
            self.truncated,
            self.composed,
        )

    @property
    def uniform(self) -> bool:
        return self.truncated is None and patterns_uniform(self.patterns)

    def metrics(self) -> dict[str, Any]:
        """:func:`pattern_metrics` of the pattern this path carries, with what was not composed."""
        return state_metrics(self.patterns, self.exp, self.truncated)


@dataclass
class Stack:
    """Two or more uneven upsamplers on one path with no uniform pattern between them."""

    nodes: tuple[str, ...]
    patterns: tuple[np.ndarray, ...]  # composed from the model input through the last node
    exp: int = 0
    truncated: str | None = None  # why the pattern stops before the last node (None: exact)
    composed: int | None = None  # how many of ``nodes`` the pattern includes (None: all)

    @functools.cached_property  # the pass and DL003 rank stacks by it, many times each
    def cv(self) -> float:
        """The CV of the pattern (inf when it is not a finite number), computed once."""
        cv = pattern_cv(self.patterns)
        return math.inf if cv is None else cv

    def metrics(self) -> dict[str, Any]:
        """The pattern's metrics; a truncated stack says which of its layers were composed."""
        metrics = state_metrics(self.patterns, self.exp, self.truncated)
        if self.truncated is not None:
            metrics["composed"] = list(self.nodes[: self.composed])
        if not self.patterns:  # nothing composed: no numbers to show
            metrics.update(max_coverage=None, min_coverage=None, ratio=None, cv=None)
        return metrics


def state_metrics(patterns, exp: int = 0, truncated: str | None = None) -> dict[str, Any]:
    """:func:`pattern_metrics` scaled by ``2**exp``, plus ``truncated`` and its reason."""
    metrics = pattern_metrics(patterns, exp)
    if truncated is not None:
        metrics["truncated"] = True
        metrics["truncated_reason"] = truncated
    return metrics


@dataclass
class CoverageResult:
    states: dict[str, list[PathState]]
    # layer -> nodes that made the pattern uniform again after it, on paths reaching an output;
    # a layer is compensated when every such path has one (missing key: not on any such path).
    compensation: dict[str, list[str]] = field(default_factory=dict)
    uncompensated: set[str] = field(default_factory=set)
    # node -> why its geometry is unknown (paths restart after it)
    unknown: dict[str, str] = field(default_factory=dict)
    # node -> how many states were merged into one there (more than MAX_STATES arrived)
    merged: dict[str, int] = field(default_factory=dict)
    # every stack met, by its layers: the worst one (highest CV); ``extended``: stacks that a
    # longer stack continues on some path (so not maximal)
    _stacks: dict[tuple[str, ...], Stack] = field(default_factory=dict)
    _extended: set[tuple[str, ...]] = field(default_factory=set)

    @property
    def stacks(self) -> list[Stack]:
        """The stacks no path continues with a further uneven layer, in the order met."""
        return [s for nodes, s in self._stacks.items() if nodes not in self._extended]

    def add_stack(self, stack: Stack) -> None:
        if len(stack.nodes) > 2:
            self._extended.add(stack.nodes[:-1])
        old = self._stacks.get(stack.nodes)
        if old is None or stack.cv > old.cv:  # a CV only when two paths meet
            self._stacks[stack.nodes] = stack


class CoveragePass:
    """Annotate every value of ``graph`` with the path states that reach it."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.result = CoverageResult(states={})
        self._uneven: dict[str, bool] = {}
        # (node, exp, pattern) -> the composed (pattern, exp), or the UnknownGeometry it raised
        self._composed: dict[tuple, Any] = {}

    def run(self) -> CoverageResult:
        states = self.result.states
        produced = {out for node in self.graph.nodes for out in node.outputs}
        for name in self.graph.inputs:
            states[name] = [PathState()]
        for node in self.graph.nodes:
            incoming: list[PathState] = []
            for value in node.inputs:
                if value not in states and value not in produced:
                    states[value] = [PathState()]  # an outer-scope value: a path starts here
                incoming += states.get(value, [])
            if not node.inputs:
                incoming = [PathState()]
            outgoing = self._merge(node, (self._step(node, s) for s in incoming))
            for out in node.outputs:
                states[out] = outgoing
        for out in self.graph.outputs:
            for state in states.get(out, []):
                self._finish(state)
        return self.result

    # ----------------------------------------------------------------------------------------

    def _step(self, node: Node, state: PathState) -> PathState:
        if node.kind is Kind.BARRIER:
            self._finish(state)
            return PathState()
        if node.spatial_rank == 0:  # no spatial axis (an activation, an Add): all passes as is
            return state
        if state.truncated is None:
            try:
                stepped = self._compose(node, state)
            except UnknownGeometry as exc:
                self.result.unknown.setdefault(node.name, str(exc))
                self._finish(state)
                return PathState()
        else:
            stepped = state
        return self._bookkeep(node, stepped)

    def _compose(self, node: Node, state: PathState) -> PathState:
        """The state with ``node`` composed into its pattern, or marked truncated at the cap."""
        periods = output_periods([len(c) for c in state.patterns], node)
        if max(periods, default=1) > PERIOD_CAP or math.prod(periods) > CELL_CAP:
            why = (
                f"the period after '{node.name}' would be {'x'.join(map(str, periods))}, "
                f"beyond the cap of {PERIOD_CAP} per axis and {CELL_CAP} cells"
            )
            return replace(state, truncated=why, composed=len(state.stack))
        # Many paths carry the same pattern through a node (those of a U-Net differ in their
        # layers, rarely in their pattern): each (node, pattern) is composed once.
        key = (id(node), state.exp, *((c.dtype.str, c.shape, c.tobytes()) for c in state.patterns))
        done = self._composed.get(key)
        if done is None:
            try:
                done = self._composed[key] = _composed(node, state.patterns, state.exp)
            except UnknownGeometry as exc:
                done = self._composed[key] = exc
        if isinstance(done, UnknownGeometry):
            raise UnknownGeometry(str(done))
        patterns, exp = done
        return replace(state, patterns=patterns, exp=exp)

    def _bookkeep(self, node: Node, state: PathState) -> PathState:
        """Pending layers, stacks and compensation after ``node`` (already composed)."""
        pending, compensated, stack = state.pending, state.compensated, state.stack
        uneven = self._uneven.get(node.name)
        if uneven is None:
            uneven = self._uneven[node.name] = is_uneven_upsampler(node)
        if uneven:
            pending += (node.name,)
            stack += (node.name,)
            if len(stack) >= 2:
                self.result.add_stack(
                    Stack(stack, state.patterns, state.exp, state.truncated, state.composed)
                )
        if state.uniform:  # a node with spatial axes (the others returned above)
            compensated += tuple((layer, node.name) for layer in pending)
            pending, stack = (), ()
        return replace(state, pending=pending, compensated=compensated, stack=stack)

    def _finish(self, state: PathState) -> None:
        """Record what a path that ends here (an output, a barrier) says about its layers.

        A layer still pending is not compensated on this path: either the pattern reaches an
        output non-uniform, or a barrier hides what comes after it.
        """
        self.result.uncompensated.update(state.pending)
        for layer, by in state.compensated:
            found = self.result.compensation.setdefault(layer, [])
            if by not in found:
                found.append(by)

    def _merge(self, node: Node, states: Iterable[PathState]) -> list[PathState]:
        """The distinct states (by key); past :data:`MAX_STATES`, the least uneven are folded
        into one conservative state: every layer pending on any of them stays pending, its
        pattern is the most uneven of them, and it is marked truncated (never uniform again)."""
        unique: dict[tuple, PathState] = {}
        for state in states:
            unique.setdefault(state.key, state)
        merged = list(unique.values())
        if len(merged) <= MAX_STATES:
            return merged
        merged.sort(key=lambda s: -_spread(s))
        kept, rest = merged[: MAX_STATES - 1], merged[MAX_STATES - 1 :]
        self.result.merged[node.name] = len(rest)
        worst = rest[0]
        why = (
            f"{len(merged)} distinct paths meet at '{node.name}', {len(rest)} of them merged "
            f"into one (at most {MAX_STATES} are kept apart)"
        )
        if worst.truncated is not None:  # the first cause, and the first merge (bounded text)
            merged_before = "merged into one" in worst.truncated
            why = worst.truncated if merged_before else f"{worst.truncated}; {why}"
        folded = replace(
            worst,
            pending=_union(s.pending for s in rest),
            compensated=_union(s.compensated for s in rest),
            truncated=why,
            composed=len(worst.stack) if worst.composed is None else worst.composed,
        )
        return [*kept, folded]


def _composed(
    node: Node, patterns: tuple[np.ndarray, ...], exp: int
) -> tuple[tuple[np.ndarray, ...], int]:
    """``patterns`` (times ``2**exp``) composed through ``node``, rescaled by a power of two
    when it leaves the float range; raises :class:`UnknownGeometry` when it is not finite."""
    with np.errstate(all="ignore"):
        composed = [_shortest(c) for c in propagate_all(patterns, node)]
    for axis, c in enumerate(composed):
        if not np.all(np.isfinite(c)):
            raise UnknownGeometry(f"the coverage after {node.op_type} is not a finite number")
        top = float(np.max(np.abs(c)))
        if top and not 2.0**-RESCALE_BITS <= top <= 2.0**RESCALE_BITS:
            shift = math.frexp(top)[1]
            composed[axis] = np.ldexp(c, -shift)
            exp += shift
    return tuple(composed), exp


def _union(parts: Iterable[tuple]) -> tuple:
    return tuple(dict.fromkeys(x for part in parts for x in part))


_SIGNS = {True: np.ones(1).tobytes(), False: (-np.ones(1)).tobytes()}


def _shape_key(c: np.ndarray) -> bytes:
    """The pattern scaled to a largest magnitude of 1, rounded, as bytes (b"" if all zero)."""
    if len(c) == 1 and math.isfinite(c[0]) and c[0] != 0:
        return _SIGNS[bool(c[0] > 0)]  # c / |c| is exactly +-1
    return np.round(c / np.abs(c).max(), 9).tobytes() if c.any() else b""


def _shortest(c: np.ndarray) -> np.ndarray:
    """A constant pattern as one period of length 1: the same coverage at every index, and
    the next steps (most of a model's convs come after a uniform upsampler) take the short
    path.  Exactly constant only: a pattern uniform within tolerance keeps its period."""
    return c[:1] if len(c) > 1 and c.min() == c.max() else c


def _spread(state: PathState) -> float:
    if not state.patterns or has_holes(state.patterns):
        return float("inf") if state.patterns else 0.0
    return float(np.prod([c.max() / c.min() for c in state.patterns]))


def is_compensated(result: CoverageResult, layer: str) -> list[str] | None:
    """The compensating nodes if every path from ``layer`` to an output is made uniform again."""
    if layer in result.uncompensated or layer not in result.compensation:
        return None
    return result.compensation[layer]


def periodic_compensation(graph: Graph, value: str, periods: tuple[int, ...]) -> list[str] | None:
    """The nodes that make any pattern of ``periods`` arriving at ``value`` uniform again, if
    every path from ``value`` to a graph output meets one; else ``None``.

    The weight-aware rules use it: a layer whose trained weights paint a pattern of period
    ``s`` (even when its all-ones coverage is uniform) is compensated by the same ops that
    compensate the structural rules (a ``[1, 3, 3, 1]`` blur, an ``AvgPool(2, stride=1)``).
    Propagation is linear and per axis, so it suffices that every one-hot phase pattern
    becomes uniform.

    >>> from deconvlint.core.chainspec import parse_chain
    >>> nodes = parse_chain("ReLU() -> Blur2d(taps=(1, 3, 3, 1))")
    >>> periodic_compensation(Graph("g", nodes, ("v0",), ("v2",)), "v0", (2, 2))
    ['layer1']
    >>> periodic_compensation(Graph("g", nodes[:1], ("v0",), ("v1",)), "v0", (2, 2)) is None
    True
    """
    if max(periods, default=1) > PERIOD_CAP or math.prod(periods) > CELL_CAP:
        return None  # not shown compensated: the search would not be bounded by the graph
    consumers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node)
    found: list[str] = []
    for phase in range(max(periods)):
        impulses = tuple(np.eye(p)[phase % p] for p in periods)
        if not _compensated_from(value, impulses, graph.outputs, consumers, found):
            return None
    return found


def _compensated_from(
    value: str,
    patterns: tuple[np.ndarray, ...],
    outputs: tuple[str, ...],
    consumers: dict[str, list[Node]],
    found: list[str],
) -> bool:
    """Whether every path from ``value`` meets a node that makes ``patterns`` uniform; those
    nodes are added to ``found`` in depth-first order.  A walk with an explicit stack (no
    recursion: a chain of 100,000 nodes is as deep as it is long)."""
    seen: set[tuple[str, bytes]] = set()
    todo: list[tuple[str, Any, tuple[np.ndarray, ...]]] = [("value", value, patterns)]
    while todo:
        what, item, patterns = todo.pop()
        if what == "value":
            key = (item, b"".join(p.tobytes() for p in patterns))
            if key in seen:  # a diamond already walked from here with this pattern
                continue
            seen.add(key)
            if item in outputs:
                return False
            todo += [("node", node, patterns) for node in reversed(consumers.get(item, []))]
            continue
        node = item
        if node.kind is Kind.BARRIER:
            return False
        periods = output_periods([len(c) for c in patterns], node)
        if max(periods, default=1) > PERIOD_CAP or math.prod(periods) > CELL_CAP:
            return False  # not followed past the cap: not shown compensated
        try:
            with np.errstate(all="ignore"):
                after = tuple(propagate_all(patterns, node))
        except UnknownGeometry:
            return False
        if node.spatial_rank and patterns_uniform(after):
            if node.name not in found:
                found.append(node.name)
            continue
        todo += [("value", out, after) for out in reversed(node.outputs)]
    return True

"""The coverage pass: propagate the interior pattern along every path of a graph.

One pass, one job (like ``torch.fx.passes.shape_prop``): :class:`CoveragePass` walks the nodes in
topological order and annotates every value with the set of :class:`PathState` that reach it.
Paths meet at joins (Add, Concat, Mul) and stay separate there; states that agree are merged, so
the count of states stays small even in residual networks.

>>> from deconvlint.chainspec import parse_chain
>>> from deconvlint.ir import Graph
>>> nodes = parse_chain("ConvTranspose1d(k=3, s=2, p=1, op=1) -> ConvTranspose1d(k=4, s=2, p=1)")
>>> result = CoveragePass(Graph("g", nodes, ("v0",), ("v2",))).run()
>>> [s.patterns for s in result.states["v2"]]
[(array([3., 3., 3., 3.]),)]
>>> result.compensation["layer0"]
['layer1']
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from deconvlint.geometry import (
    UnknownGeometry,
    has_holes,
    layer_patterns,
    patterns_uniform,
    propagate_all,
)
from deconvlint.ir import Graph, Kind, Node

#: At most this many distinct states per value; beyond it the least uneven are dropped.
MAX_STATES = 64


def is_uneven_upsampler(node: Node) -> bool:
    """A transposed conv or unpool whose own phase pattern is non-uniform (DL001 or DL002)."""
    if node.kind not in (Kind.CONV_TRANSPOSE, Kind.MAX_UNPOOL):
        return False
    return not patterns_uniform(layer_patterns(node))


@dataclass(frozen=True)
class PathState:
    """What one path carries to a value.

    ``patterns``: the composed per-axis interior pattern (``()`` while no spatial op was met).
    ``pending``: uneven upsamplers on this path not yet compensated (the pattern has not been
    uniform since).  ``compensated``: (layer, node that made the pattern uniform again).
    ``stack``: the uneven upsamplers met since the pattern was last uniform, in order.
    """

    patterns: tuple[np.ndarray, ...] = ()
    pending: tuple[str, ...] = ()
    compensated: tuple[tuple[str, str], ...] = ()
    stack: tuple[str, ...] = ()

    @functools.cached_property  # a state is immutable; most pass several nodes unchanged
    def key(self) -> tuple:
        # Paths whose patterns differ only in scale (3x3 convs multiply every count by 3) are
        # alike for every rule: merge them on the shape of the pattern.
        return (tuple(map(_shape_key, self.patterns)), self.pending, self.compensated, self.stack)

    @property
    def uniform(self) -> bool:
        return patterns_uniform(self.patterns)


@dataclass
class Stack:
    """Two or more uneven upsamplers on one path with no uniform pattern between them."""

    nodes: tuple[str, ...]
    patterns: tuple[np.ndarray, ...]  # composed from the model input through the last node


@dataclass
class CoverageResult:
    states: dict[str, list[PathState]]
    # layer -> nodes that made the pattern uniform again after it, on paths reaching an output;
    # a layer is compensated when every such path has one (missing key: not on any such path).
    compensation: dict[str, list[str]] = field(default_factory=dict)
    uncompensated: set[str] = field(default_factory=set)
    stacks: list[Stack] = field(default_factory=list)
    # node -> why its geometry is unknown (paths restart after it)
    unknown: dict[str, str] = field(default_factory=dict)


class CoveragePass:
    """Annotate every value of ``graph`` with the path states that reach it."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.result = CoverageResult(states={})

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
            outgoing = self._merge(self._step(node, s) for s in incoming)
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
        try:
            patterns = tuple(_shortest(c) for c in propagate_all(state.patterns, node))
        except UnknownGeometry as exc:
            self.result.unknown.setdefault(node.name, str(exc))
            self._finish(state)
            return PathState()
        pending, compensated, stack = state.pending, state.compensated, state.stack
        if is_uneven_upsampler(node):
            pending += (node.name,)
            stack += (node.name,)
            if len(stack) >= 2:
                self.result.stacks.append(Stack(nodes=stack, patterns=patterns))
        if patterns_uniform(patterns):  # a node with spatial axes (the others returned above)
            compensated += tuple((layer, node.name) for layer in pending)
            pending, stack = (), ()
        return PathState(patterns, pending, compensated, stack)

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

    @staticmethod
    def _merge(states) -> list[PathState]:
        unique: dict[tuple, PathState] = {}
        for state in states:
            unique.setdefault(state.key, state)
        merged = list(unique.values())
        if len(merged) > MAX_STATES:
            merged.sort(key=lambda s: -_spread(s))
            merged = merged[:MAX_STATES]
        return merged


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

    >>> from deconvlint.chainspec import parse_chain
    >>> nodes = parse_chain("ReLU() -> Blur2d(taps=(1, 3, 3, 1))")
    >>> periodic_compensation(Graph("g", nodes, ("v0",), ("v2",)), "v0", (2, 2))
    ['layer1']
    >>> periodic_compensation(Graph("g", nodes[:1], ("v0",), ("v1",)), "v0", (2, 2)) is None
    True
    """
    consumers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node)
    found: list[str] = []
    for phase in range(max(periods)):
        impulses = tuple(np.eye(p)[phase % p] for p in periods)
        if not _compensated_from(value, impulses, graph.outputs, consumers, found, set()):
            return None
    return found


def _compensated_from(
    value: str,
    patterns: tuple[np.ndarray, ...],
    outputs: tuple[str, ...],
    consumers: dict[str, list[Node]],
    found: list[str],
    seen: set[tuple[str, bytes]],
) -> bool:
    key = (value, b"".join(p.tobytes() for p in patterns))
    if key in seen:  # a diamond already walked from here with this pattern
        return True
    seen.add(key)
    if value in outputs:
        return False
    for node in consumers.get(value, []):
        if node.kind is Kind.BARRIER:
            return False
        try:
            after = tuple(propagate_all(patterns, node))
        except UnknownGeometry:
            return False
        if node.spatial_rank and patterns_uniform(after):
            if node.name not in found:
                found.append(node.name)
            continue
        for out in node.outputs:
            if not _compensated_from(out, after, outputs, consumers, found, seen):
                return False
    return True

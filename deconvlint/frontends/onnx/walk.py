"""Walk an ONNX graph (and its If/Loop/Scan subgraphs) into IR nodes.

A value is *data* when it depends on a graph input that is not an initializer.  Nodes that do
not touch data (weights, ``Shape`` arithmetic, constants) are evaluated by the constant folder
instead of becoming IR nodes.  Subgraph nodes are named ``"{parent}/{attribute}/{name}"`` and
their local values likewise; outer-scope references keep the outer value's name.  An ``If``
becomes a JOIN of its branch outputs; ``Loop`` and ``Scan`` outputs come from a BARRIER.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, Node
from deconvlint.errors import LoadError, one_line
from deconvlint.frontends.onnx.context import OpContext
from deconvlint.frontends.onnx.fold import MAX_ELEMENTS, Folded, can_fold, fold, reshape_target
from deconvlint.frontends.onnx.ops import CONVERTERS, convert_barrier
from deconvlint.frontends.onnx.prepare import defined_names, outer_refs
from deconvlint.frontends.onnx.shuffle import match_shuffle
from deconvlint.frontends.onnx.tensors import element_count, is_external, read_tensor

_DEFAULT_DOMAINS = ("", "ai.onnx")
#: Largest weight read to test whether a depthwise kernel is a fixed filter.
MAX_WEIGHT_ELEMENTS = 1 << 22


def _dims(value_info: Any) -> tuple[Any, ...] | None:
    """Static dims of a tensor value: int, the symbolic name, or None."""
    tensor_type = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return None
    # a negative dim_value is nonsense (onnx's inference overflows to -2**63 on huge scales)
    return tuple(
        (d.dim_value if d.dim_value >= 0 else None)
        if d.HasField("dim_value")
        else (d.dim_param or None)
        for d in tensor_type.shape.dim
    )


class Scope:
    """Local value names of one (sub)graph mapped to IR names, with the enclosing scope."""

    def __init__(self, parent: Scope | None, prefix: str) -> None:
        self.parent, self.prefix, self.local = parent, prefix, {}

    def define(self, name: str) -> str:
        self.local[name] = self.prefix + name
        return self.local[name]

    def resolve(self, name: str) -> str | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.local:
                return scope.local[name]
            scope = scope.parent
        return None


class Walker:
    """Collects IR nodes, data values, folded constants and shapes over all (sub)graphs."""

    def __init__(
        self,
        opset: int,
        base_dir: Path | None,
        originals: Mapping[str, Any],
        full_tensor: Callable[[str], Any] | None = None,
    ) -> None:
        """``originals``: the top-level initializers with their data, by name; or, for a skimmed
        model, ``full_tensor(name)`` returns one (``None``: the graph's own copy is whole)."""
        self.opset, self.base_dir, self.originals = opset, base_dir, originals
        self.full_tensor = full_tensor
        self._top_level: dict[str, Any] = {}  # IR name -> the top-level initializer it holds
        self.nodes: list[Node] = []
        self.removed: set[int] = set()
        self.data: set[str] = set()
        self.shapes: dict[str, tuple[Any, ...]] = {}
        self._folded: dict[str, Folded] = {}
        self._tensors: dict[str, Any] = {}
        self._names: set[str] = set()

    # -- the ValueLookup protocol of OpContext ------------------------------------------------
    def folded(self, value: str) -> Folded | None:
        return self._folded.get(value)

    def shape(self, value: str) -> tuple[Any, ...] | None:
        inferred = self.shapes.get(value)
        if inferred is not None and all(isinstance(d, int) for d in inferred):
            return inferred
        if value in self._tensors:
            return tuple(self._tensors[value].dims)
        if value in self._folded:  # exact where shape inference gave up (e.g. Expand(Where))
            return tuple(self._folded[value].value.shape)
        return inferred

    def weights(self, value: str, notes: list[str]) -> np.ndarray | None:
        tensor = self._tensors.get(value)
        if tensor is None:  # e.g. the weight passed through an Identity: folded if small
            folded = self._folded.get(value)
            return folded.value if folded is not None and folded.is_known else None
        try:
            count = element_count(tensor)
            small = count is not None and count <= MAX_WEIGHT_ELEMENTS  # else refused unread
            if small and self.full_tensor is not None and self._top_level.get(value) is tensor:
                whole = self.full_tensor(tensor.name)  # decoded now, from the file
                tensor = tensor if whole is None else whole
            return read_tensor(tensor, self.base_dir, MAX_WEIGHT_ELEMENTS)
        except Exception as exc:  # unreadable weights only cost the fixed-filter check
            notes.append(f"weights not read ({one_line(exc)}); fixed-filter check skipped")
            return None

    # -- graphs --------------------------------------------------------------------------------
    def walk(self, graph: Any, scope: Scope, input_data: list[bool]) -> list[str]:
        """Convert one graph; returns the IR names of its outputs."""
        for index, value in enumerate(graph.input):
            ir = scope.define(value.name)
            self.data.discard(ir)
            if index < len(input_data) and input_data[index]:
                self.data.add(ir)
        for tensor in list(graph.initializer) + [s.values for s in graph.sparse_initializer]:
            ir = scope.define(tensor.name)
            self.data.discard(ir)
            self._constant_tensor(
                ir, self.originals.get(tensor.name, tensor) if not scope.prefix else tensor
            )
            if not scope.prefix:
                self._top_level[ir] = self._tensors[ir]
        local = defined_names(graph)
        for info in list(graph.input) + list(graph.output) + list(graph.value_info):
            dims = _dims(info)
            if dims is not None and info.name in local:
                self.shapes[scope.prefix + info.name] = dims
        nodes = list(graph.node)
        implicit = [_implicit(node) for node in nodes]
        consumers: dict[str, int] = {}
        for node, refs in zip(nodes, implicit, strict=True):
            for name in list(node.input) + refs:
                consumers[name] = consumers.get(name, 0) + 1
        for out in graph.output:
            consumers[out.name] = consumers.get(out.name, 0) + 2
        emitted: dict[str, tuple[Any, int]] = {}
        for i in _topological(nodes, implicit):
            self._node(nodes[i], implicit[i], scope, consumers, emitted)
        return [scope.resolve(o.name) or o.name for o in graph.output]

    def _constant_tensor(self, ir: str, tensor: Any) -> None:
        self._tensors[ir] = tensor
        count = element_count(tensor)
        if count is not None and count <= MAX_ELEMENTS and not is_external(tensor):
            with contextlib.suppress(Exception):  # a malformed constant is simply not folded
                self._folded[ir] = Folded.known(read_tensor(tensor, None))

    def _unique(self, name: str) -> str:
        candidate, k = name, 0
        while candidate in self._names:
            k += 1
            candidate = f"{name}_{k}"
        self._names.add(candidate)
        return candidate

    def _node(
        self,
        node: Any,
        refs: list[str],
        scope: Scope,
        consumers: dict[str, int],
        emitted: dict[str, tuple[Any, int]],
    ) -> None:
        name = self._unique(scope.prefix + node.name)
        inputs = []
        for value in node.input:
            ir = scope.resolve(value) if value else ""
            if ir is None:
                raise LoadError(
                    f"node {name!r} ({node.op_type}): input {value!r} is not "
                    f"defined by any node, input or initializer"
                )
            inputs.append(ir)
        implicit = [ir for ir in (scope.resolve(v) for v in refs) if ir]
        outputs = [scope.define(o) if o else "" for o in node.output]
        for ir in outputs:
            self.data.discard(ir)
        default = node.domain in _DEFAULT_DOMAINS
        data = [bool(ir) and ir in self.data for ir in inputs]
        touches = any(data) or any(ir in self.data for ir in implicit)
        if not touches or (default and node.op_type in ("Shape", "Size")):
            if default:
                self._fold(node, inputs, outputs)
            return
        ctx = OpContext(
            node,
            name,
            self.opset,
            inputs,
            outputs,
            data,
            self,
            extra_data_inputs=[ir for ir in implicit if ir in self.data],
        )
        converted: Node | None
        if default and node.op_type in ("If", "Loop", "Scan"):
            converted = self._control_flow(ctx, node, scope)
        elif default and node.op_type == "Reshape":
            converted = self._shuffle(ctx, node, scope, consumers, emitted) or convert_barrier(ctx)
        elif default and node.op_type in CONVERTERS:
            converted = CONVERTERS[node.op_type](ctx)
        else:
            converted = convert_barrier(ctx)
        if converted is None:
            return
        for out in node.output:
            if out:
                emitted[out] = (node, len(self.nodes))
        self.nodes.append(converted)
        self.data.update(converted.outputs)

    def _fold(self, node: Any, inputs: list[str], outputs: list[str]) -> None:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and outputs and outputs[0]:
                    self._tensors[outputs[0]] = attr.t
        if not can_fold(node.op_type):
            return
        from deconvlint.frontends.onnx.proto import attribute_value

        try:
            attrs = {a.name: attribute_value(a) for a in node.attribute}
        except Exception:
            return
        if node.op_type in ("Shape", "Size") and inputs:
            attrs["__shape__"] = self.shape(inputs[0])
            attrs["__unknown_prefix__"] = f"?{inputs[0]}:"
        result = fold(
            node.op_type, [self._folded.get(i) if i else None for i in inputs], attrs, self.opset
        )
        for ir, value in zip(outputs, result or [], strict=False):
            if ir:
                self._folded[ir] = value

    # -- control flow ----------------------------------------------------------------------
    def _control_flow(self, ctx: OpContext, node: Any, scope: Scope) -> Node | None:
        graphs = {a.name: a.g for a in node.attribute if a.HasField("g")}
        wanted = ("then_branch", "else_branch") if node.op_type == "If" else ("body",)
        if any(w not in graphs for w in wanted):
            raise ctx.fail(f"needs the graph attribute(s) {', '.join(wanted)}")
        branch_outputs: list[str] = []
        for attr in wanted:
            sub = graphs[attr]
            prefix = f"{ctx.name}/{attr}/"
            if node.op_type == "Loop":  # (iteration_num, condition, loop-carried...)
                flags = [False, False] + [True] * max(len(sub.input) - 2, 0)
            else:
                flags = [True] * len(sub.input)
            outs = self.walk(sub, Scope(scope, prefix), flags)
            branch_outputs += outs[1:] if node.op_type == "Loop" else outs
        data_outputs = tuple(dict.fromkeys(o for o in branch_outputs if o in self.data))
        if node.op_type == "If":
            if not data_outputs:
                return None
            return ctx.node(Kind.JOIN, inputs=data_outputs)
        return ctx.node(Kind.BARRIER, inputs=tuple(dict.fromkeys(ctx.data_inputs + data_outputs)))

    # -- Reshape -> Transpose -> Reshape ---------------------------------------------------
    def _reshape_dims(self, node: Any, scope: Scope) -> list[Any] | None:
        x, out = scope.resolve(node.input[0]), scope.resolve(node.output[0])
        inferred = list(self.shapes.get(out or "", ()) or ()) or None
        target = (
            self._folded.get(scope.resolve(node.input[1]) or "") if len(node.input) > 1 else None
        )
        if target is None or target.value.ndim != 1:
            return inferred
        dims = target.dims()
        x_dims = self.shape(x or "")
        if (
            all(isinstance(d, int) for d in dims)
            and x_dims
            and all(isinstance(d, int) for d in x_dims)
        ):
            dims = reshape_target(x_dims, dims, 0)
        else:  # 0 copies the input dim; -1 stays unknown
            dims = [
                x_dims[i] if d == 0 and x_dims and i < len(x_dims) else (None if d == -1 else d)
                for i, d in enumerate(dims)
            ]
        if inferred is None or len(inferred) != len(dims):
            return dims
        return [a if isinstance(a, int) else b for a, b in zip(inferred, dims, strict=True)]

    def _shuffle(
        self,
        ctx: OpContext,
        reshape_out: Any,
        scope: Scope,
        consumers: dict[str, int],
        emitted: dict[str, tuple[Any, int]],
    ) -> Node | None:
        if len(reshape_out.input) < 2 or len(reshape_out.output) < 1:
            return None
        transpose, t_index = emitted.get(reshape_out.input[0], (None, -1))
        if (
            transpose is None
            or transpose.op_type != "Transpose"
            or transpose.domain not in _DEFAULT_DOMAINS
        ):
            return None
        if len(transpose.input) < 1 or len(transpose.output) < 1:
            return None
        reshape_in, r_index = emitted.get(transpose.input[0], (None, -1))
        if (
            reshape_in is None
            or reshape_in.op_type != "Reshape"
            or reshape_in.domain not in _DEFAULT_DOMAINS
            or len(reshape_in.input) < 2
        ):
            return None
        if consumers.get(transpose.output[0]) != 1 or consumers.get(reshape_in.output[0]) != 1:
            return None
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
        mid = self._reshape_dims(reshape_in, scope)
        if perm is None or mid is None:
            return None
        x = scope.resolve(reshape_in.input[0]) or ""
        match = match_shuffle(self.shape(x), mid, perm, self._reshape_dims(reshape_out, scope))
        if match is None or not self.nodes[r_index].inputs:
            return None
        self.removed.update((r_index, t_index))
        t_node = self.nodes[t_index]
        op_type = "DepthToSpace" if match.kind is Kind.DEPTH_TO_SPACE else "SpaceToDepth"
        return Node(
            name=t_node.name,
            op_type=op_type,
            kind=match.kind,
            inputs=(x,),
            outputs=tuple(o for o in ctx.outputs if o),
            block=match.block,
            depth_to_space_mode=match.mode,
            extra={"fused": (self.nodes[r_index].name, t_node.name, ctx.name)},
        )

    def finish(self) -> list[Node]:
        return [n for i, n in enumerate(self.nodes) if i not in self.removed]


def _implicit(node: Any) -> list[str]:
    """Outer values that the node's subgraphs read."""
    refs: list[str] = []
    for attr in node.attribute:
        if attr.HasField("g"):
            refs += outer_refs(attr.g)
        for sub in attr.graphs:
            refs += outer_refs(sub)
    return list(dict.fromkeys(refs))


def _topological(nodes: list[Any], implicit: list[list[str]]) -> list[int]:
    """Node indices in a stable topological order (the file's order when it already is one)."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    needs = [
        {producer[v] for v in list(n.input) + refs if v in producer}
        for n, refs in zip(nodes, implicit, strict=True)
    ]
    if all(all(p < i for p in deps) for i, deps in enumerate(needs)):
        return list(range(len(nodes)))
    waiting = [len(deps) for deps in needs]
    users: dict[int, list[int]] = {}
    for i, deps in enumerate(needs):
        for p in deps:
            users.setdefault(p, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for user in users.get(i, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(nodes):
        stuck = next(n for i, n in enumerate(nodes) if waiting[i] > 0)
        raise LoadError(f"the graph has a cycle through node {stuck.name!r} ({stuck.op_type})")
    return order

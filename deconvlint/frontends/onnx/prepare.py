"""Build the working copy of a model that the walker reads: named nodes, inlined local functions,
and large initializers replaced by data-less stubs (so shape inference never copies weights).

Nodes without a name get ``f"{op_type}_{i}"``, ``i`` counting the nodes of that op type in graph
order.  A node that torch's exporter (dynamo) tagged with the module it came from
(``pkg.torch.onnx.name_scopes`` metadata, else ``namespace``) is named after that module,
``model.1.submodule.conv`` as the torch front end names it, or ``model.1.submodule.conv/Add``
when the module made several nodes; the metadata is hostile input, read only when short and
when the path is a dotted Python name.  A node inlined from a model-local function is named
``"{call}/{inner}"``, its internal values ``"{call}/{value}"``.  The caller's ``ModelProto`` is never modified.

>>> from onnx import helper
>>> assign_names([helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["b"], ["c"],
...               name="Relu_0")])
['Relu_0_1', 'Relu_0']
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.fold import MAX_ELEMENTS
from deconvlint.frontends.onnx.proto import proto as _proto
from deconvlint.frontends.onnx.tensors import element_count, is_external

_MAX_FUNCTION_DEPTH = 32
_DEFAULT_DOMAINS = ("", "ai.onnx")


def assign_names(nodes: Any) -> list[str]:
    """Each node's name: the module path torch's exporter recorded, else its own name; empty
    names become ``{op_type}_{i}``, never an explicit name."""
    modules = [module_path(n) for n in nodes]
    per_module = Counter(m for m in modules if m)
    explicit = {n.name for n in nodes if n.name}
    counters: Counter[str] = Counter()
    names = []
    for node, module in zip(nodes, modules, strict=True):
        index = counters[node.op_type]
        counters[node.op_type] += 1
        if module:
            names.append(module if per_module[module] == 1 else f"{module}/{node.op_type}")
            continue
        name, k = node.name or f"{node.op_type}_{index}", 0
        while not node.name and name in explicit:  # an explicit name keeps its name
            k += 1
            name = f"{node.op_type}_{index}_{k}"
        names.append(name)
    return names


_MAX_SCOPE_TEXT = 4096
_QUOTED = re.compile(r"'((?:[^'\\]|\\.){0,512})'")
_MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+){0,63}")


def module_path(node: Any) -> str | None:
    """The qualified name of the module torch's exporter says made ``node``, or None.

    >>> from onnx import helper
    >>> n = helper.make_node("Conv", ["x", "w"], ["y"], name="node_conv2d")
    >>> helper.set_metadata_props(n, {"pkg.torch.onnx.name_scopes": "['', 'up', 'up.0', 'conv2d']"})
    >>> module_path(n)
    'up.0'
    """
    props = {p.key: p.value for p in getattr(node, "metadata_props", ())[:64]}
    scopes = props.get("pkg.torch.onnx.name_scopes", "")
    if scopes and len(scopes) <= _MAX_SCOPE_TEXT:
        items = _QUOTED.findall(scopes)
        candidate = items[-2] if len(items) >= 3 else None
    else:
        # ": pkg.M/model: Sequential/model.1: pkg.Sub/convolution: aten.convolution.default"
        namespace = props.get("namespace", "")
        parts = namespace.split("/") if 0 < len(namespace) <= _MAX_SCOPE_TEXT else []
        candidate = parts[-2].partition(":")[0].strip() if len(parts) >= 3 else None
    if candidate and len(candidate) <= 512 and _MODULE_PATH.fullmatch(candidate):
        return candidate
    return None


def defined_names(graph: Any) -> set[str]:
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    names |= {s.values.name for s in graph.sparse_initializer}
    return names | {o for n in graph.node for o in n.output if o}


def _subgraphs(node: Any) -> list[tuple[str, Any]]:
    found = [(a.name, a.g) for a in node.attribute if a.HasField("g")]
    return found + [(a.name, g) for a in node.attribute for g in a.graphs]


def outer_refs(graph: Any) -> list[str]:
    """Names a (sub)graph reads from enclosing scopes, in first-use order."""
    defined = defined_names(graph)
    used: list[str] = []
    for node in graph.node:
        used += [i for i in node.input if i]
        for _, sub in _subgraphs(node):
            used += outer_refs(sub)
    used += [o.name for o in graph.output]
    return [name for name in dict.fromkeys(used) if name not in defined]


def _rename_refs(graph: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``graph`` whose references to enclosing values follow ``mapping``."""
    GraphProto = _proto().GraphProto

    inner = {k: v for k, v in mapping.items() if k not in defined_names(graph)}
    copy = GraphProto()
    copy.CopyFrom(graph)
    for node in copy.node:
        node.input[:] = [inner.get(i, i) for i in node.input]
        for attr in node.attribute:
            if attr.HasField("g"):
                attr.g.CopyFrom(_rename_refs(attr.g, inner))
            for i, sub in enumerate(attr.graphs):
                attr.graphs[i].CopyFrom(_rename_refs(sub, inner))
    for output in copy.output:
        output.name = inner.get(output.name, output.name)
    return copy


def _default_opset(opset_import: Any) -> int | None:
    return next((int(o.version) for o in opset_import if o.domain in _DEFAULT_DOMAINS), None)


class Preparer:
    """Copies the graph with names assigned and local functions inlined."""

    def __init__(self, model: Any) -> None:
        self.functions = {
            (f.domain, f.name, getattr(f, "overload", "")): f for f in model.functions
        }
        self.opset = _default_opset(model.opset_import)
        self.notes: list[str] = []

    def nodes(self, nodes: Any, depth: int = 0) -> list[Any]:
        NodeProto = _proto().NodeProto

        result = []
        for node, name in zip(nodes, assign_names(nodes), strict=True):
            key = (node.domain, node.op_type, getattr(node, "overload", ""))
            if node.domain not in _DEFAULT_DOMAINS and key in self.functions:
                result += self._expand(node, name, self.functions[key], depth + 1)
                continue
            copy = NodeProto()
            copy.CopyFrom(node)
            copy.name = name
            for attr in copy.attribute:
                if attr.HasField("g"):
                    attr.g.CopyFrom(self.graph(attr.g, depth))
                for i, sub in enumerate(attr.graphs):
                    attr.graphs[i].CopyFrom(self.graph(sub, depth))
            result.append(copy)
        return result

    def graph(self, graph: Any, depth: int = 0) -> Any:
        GraphProto = _proto().GraphProto

        copy = GraphProto()
        copy.CopyFrom(graph)
        del copy.node[:]
        copy.node.extend(self.nodes(graph.node, depth))
        return copy

    def _expand(self, call: Any, call_name: str, function: Any, depth: int) -> list[Any]:
        NodeProto = _proto().NodeProto

        if depth > _MAX_FUNCTION_DEPTH:
            raise LoadError(
                f"model-local function {function.name!r} nests more than "
                f"{_MAX_FUNCTION_DEPTH} deep (recursive?)"
            )
        written_for = _default_opset(function.opset_import)
        note = (
            f"function {function.name!r} imports opset {written_for}; its nodes are read with "
            f"the model's opset {self.opset}"
        )
        if written_for not in (None, self.opset) and note not in self.notes:
            self.notes.append(note)
        mapping = {
            formal: (call.input[i] if i < len(call.input) else "")
            for i, formal in enumerate(function.input)
        }
        mapping.update(
            {
                formal: call.output[i]
                for i, formal in enumerate(function.output)
                if i < len(call.output)
            }
        )
        call_attrs = {a.name: a for a in call.attribute}
        defaults = {a.name: a for a in function.attribute_proto}
        body = []
        for node, name in zip(function.node, assign_names(function.node), strict=True):
            copy = NodeProto()
            copy.CopyFrom(node)
            copy.name = f"{call_name}/{name}"
            for i, value in enumerate(copy.output):
                if value and value not in mapping:
                    mapping[value] = f"{call_name}/{value}"
                copy.output[i] = mapping.get(value, value)
            copy.input[:] = [mapping.get(v, f"{call_name}/{v}") if v else "" for v in node.input]
            attrs = []
            for attr in copy.attribute:
                if attr.ref_attr_name:  # bound at the call site, else the function default
                    bound = call_attrs.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
                    if bound is None:
                        continue
                    resolved = type(attr)()
                    resolved.CopyFrom(bound)
                    resolved.name = attr.name
                    attrs.append(resolved)
                    continue
                if attr.HasField("g"):
                    attr.g.CopyFrom(_rename_refs(attr.g, mapping))
                for i, sub in enumerate(attr.graphs):
                    attr.graphs[i].CopyFrom(_rename_refs(sub, mapping))
                attrs.append(attr)
            del copy.attribute[:]
            copy.attribute.extend(attrs)
            body.append(copy)
        return self.nodes(body, depth)


def _stub(tensor: Any) -> Any:
    """The tensor's name, type and dims without its data."""
    TensorProto = _proto().TensorProto

    stub = TensorProto()
    stub.name, stub.data_type = tensor.name, tensor.data_type
    stub.dims.extend(tensor.dims)
    return stub


def working_copy(model: Any) -> tuple[Any, list[str]]:
    """The model the walker reads, and notes about what was approximated."""
    ModelProto = _proto().ModelProto

    preparer = Preparer(model)
    work = ModelProto()
    work.ir_version = model.ir_version
    work.opset_import.extend(model.opset_import)
    known_domains = {o.domain for o in model.opset_import}
    for function in model.functions:
        for opset in function.opset_import:
            if opset.domain not in known_domains:
                work.opset_import.append(opset)
                known_domains.add(opset.domain)
    graph = model.graph
    work.graph.name = graph.name
    for field in ("input", "output", "value_info", "sparse_initializer"):
        getattr(work.graph, field).extend(getattr(graph, field))
    for tensor in graph.initializer:
        count: int | None = element_count(tensor)
        small = count is not None and count <= MAX_ELEMENTS and not is_external(tensor)
        work.graph.initializer.append(tensor if small else _stub(tensor))
    work.graph.node.extend(preparer.nodes(graph.node))
    return work, preparer.notes

"""Structured mutations of real ONNX models, for the fuzz tests.

A mutation is one edit of the protobuf that a careless exporter, a corrupted download or a
hostile pull request could produce: an attribute set to 0, -1 or 2**40, an attribute of the
wrong type, an input renamed into a cycle or out of existence, dims of 2**40, an opset from the
future, an unknown domain, a weight whose dims disagree with its data, a node dropped or
duplicated.  :func:`mutated_models` is a hypothesis strategy of ``(description, ModelProto)``;
the description lists the edits, so a failure says what was done to which base model.

>>> from hypothesis import find
>>> _text, model = find(mutated_models(), lambda case: True)
>>> model.graph.node[0].op_type
'ConvTranspose'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper

from tests.support.onnx_factory import make_model, tensor, value_info

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Integers that break arithmetic: zero, signs, overflow edges, absurd sizes.
HOSTILE_INTS = (0, 1, -1, 2, 3, -2, 7, 2**31 - 1, -(2**31), 2**40, 2**62, 2**63 - 1, -(2**63))
HOSTILE_FLOATS = (0.0, -1.0, 0.5, 1.5, 2.0, 1e30, -1e30, 1e-30, float("nan"), float("inf"))
OP_TYPES = (
    "ConvTranspose", "Conv", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "MaxPool",
    "AveragePool", "MaxUnpool", "Pad", "Slice", "Reshape", "Transpose", "Concat", "Add", "If",
    "Loop", "Gather", "Shape", "Identity", "NoSuchOp",
)  # fmt: skip


def _shape_chain_model() -> onnx.ModelProto:
    """What exporters write for ``F.interpolate(scale_factor=2)``: Shape -> Gather -> Mul ->
    Concat -> Resize(sizes), then a ConvTranspose and a DepthToSpace."""
    inits = [
        tensor("idx", [2, 3], np.int64),
        tensor("two", [2], np.int64),
        tensor("head", [1, 4], np.int64),
        tensor("w", np.ones((4, 8, 3, 3))),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "idx"], ["hw"], name="gather"),
        helper.make_node("Mul", ["hw", "two"], ["hw2"], name="mul"),
        helper.make_node("Concat", ["head", "hw2"], ["sizes"], name="concat", axis=0),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["r"], name="resize", mode="nearest"),
        helper.make_node(
            "ConvTranspose", ["r", "w"], ["t"], name="up", strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("DepthToSpace", ["t"], ["y"], name="d2s", blocksize=2, mode="CRD"),
    ]
    return make_model(nodes, [value_info("x", [1, 4, 6, 6])], [value_info("y", None)], inits)


def _control_flow_model() -> onnx.ModelProto:
    """An If whose branches hold a ConvTranspose and a Pad -> Slice, reading outer values."""
    then_branch = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["a"], name="up", strides=[2, 2])],
        "then",
        [],
        [value_info("a", None)],
    )
    else_branch = helper.make_graph(
        [
            helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
            helper.make_node("Slice", ["p", "s", "e", "ax", "st"], ["a"], name="cut"),
        ],
        "else",
        [],
        [value_info("a", None)],
    )
    inits = [
        tensor("w", np.ones((2, 2, 3, 3))),
        tensor("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        *(tensor(n, v, np.int64) for n, v in (("s", [1]), ("e", [9]), ("ax", [3]), ("st", [2]))),
    ]
    node = helper.make_node(
        "If", ["c"], ["y"], name="branch", then_branch=then_branch, else_branch=else_branch
    )
    inputs = [value_info("x", [1, 2, 4, 4]), value_info("c", [], TensorProto.BOOL)]
    return make_model([node], inputs, [value_info("y", None)], inits)


def _function_model() -> onnx.ModelProto:
    """A model-local function wrapping a strided Conv and a MaxUnpool-free pool."""
    body = [
        helper.make_node("Conv", ["X", "W"], ["H"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["H"], ["Y"], kernel_shape=[3, 3], strides=[1, 1]),
    ]
    function = helper.make_function(
        "local", "Down", ["X", "W"], ["Y"], body, [helper.make_opsetid("", 19)]
    )
    node = helper.make_node("Down", ["x", "w"], ["y"], name="down", domain="local")
    model = make_model(
        [node],
        [value_info("x", [1, 2, 8, 8])],
        [value_info("y", None)],
        [tensor("w", np.ones((2, 2, 3, 3)))],
    )
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.functions.append(function)
    return model


def base_models() -> dict[str, onnx.ModelProto]:
    """The shipped examples and three hand-written models covering the front end's paths."""
    models = {p.stem: onnx.load(str(p)) for p in sorted(EXAMPLES.glob("*.onnx"))}
    models["shape_chain"] = _shape_chain_model()
    models["control_flow"] = _control_flow_model()
    models["function"] = _function_model()
    return models


_BASES = {name: model.SerializeToString() for name, model in base_models().items()}


def _graphs(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    """The main graph and every subgraph below it."""
    found = [model.graph]
    for graph in found:
        for node in graph.node:
            for attr in node.attribute:
                found += [attr.g] if attr.HasField("g") else []
                found += list(attr.graphs)
    return found


def _nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for g in _graphs(model) for n in g.node] + [
        n for f in model.functions for n in f.node
    ]


Mutation = Callable[[Any, onnx.ModelProto], str]


def _set_ints(draw: Any, model: onnx.ModelProto) -> str:
    attrs = [a for n in _nodes(model) for a in n.attribute if a.type in (2, 7)]
    if not attrs:
        return "no int attribute"
    attr = draw(st.sampled_from(attrs))
    value = draw(st.sampled_from(HOSTILE_INTS))
    if attr.type == AttributeProto.INT:
        attr.i = value
    elif attr.ints:
        attr.ints[draw(st.integers(0, len(attr.ints) - 1))] = value
    else:
        attr.ints.append(value)
    return f"{attr.name} <- {value}"


def _resize_ints(draw: Any, model: onnx.ModelProto) -> str:
    attrs = [a for n in _nodes(model) for a in n.attribute if a.type == AttributeProto.INTS]
    if not attrs:
        return "no ints attribute"
    attr = draw(st.sampled_from(attrs))
    length = draw(st.integers(0, 7))
    attr.ints[:] = [draw(st.sampled_from(HOSTILE_INTS[:7])) for _ in range(length)]
    return f"{attr.name} <- {list(attr.ints)}"


def _retype_attribute(draw: Any, model: onnx.ModelProto) -> str:
    nodes = [n for n in _nodes(model) if n.attribute]
    if not nodes:
        return "no attribute"
    node = draw(st.sampled_from(nodes))
    index = draw(st.integers(0, len(node.attribute) - 1))
    name = node.attribute[index].name
    replacement = draw(
        st.sampled_from(
            [
                helper.make_attribute(name, 2.5),
                helper.make_attribute(name, "SAME_UPPER"),
                helper.make_attribute(name, [1.5, 2.0]),
                helper.make_attribute(name, ["a", "b"]),
                helper.make_attribute(name, 3),
                helper.make_attribute(name, [2, 2]),
                helper.make_attribute(
                    name, helper.make_tensor("t", TensorProto.INT64, [2], [2, 2])
                ),
                helper.make_attribute(name, helper.make_graph([], "empty", [], [])),
                AttributeProto(name=name),  # no type at all
            ]
        )
    )
    node.attribute[index].CopyFrom(replacement)
    return f"{node.name}.{name} retyped to {AttributeProto.AttributeType.Name(replacement.type)}"


def _drop_attribute(draw: Any, model: onnx.ModelProto) -> str:
    nodes = [n for n in _nodes(model) if n.attribute]
    if not nodes:
        return "no attribute"
    node = draw(st.sampled_from(nodes))
    index = draw(st.integers(0, len(node.attribute) - 1))
    name = node.attribute[index].name
    if draw(st.booleans()):
        node.attribute.add().CopyFrom(node.attribute[index])
        return f"{node.name}.{name} duplicated"
    del node.attribute[index]
    return f"{node.name}.{name} dropped"


def _rewire(draw: Any, model: onnx.ModelProto) -> str:
    nodes = [n for n in _nodes(model) if n.input or n.output]
    if not nodes:
        return "no node"
    node = draw(st.sampled_from(nodes))
    values = [v for n in _nodes(model) for v in [*n.input, *n.output]] + ["", "ghost"]
    value = draw(st.sampled_from(values))
    field = node.input if node.input and draw(st.booleans()) else node.output
    if not field:
        field = node.input
    where = draw(st.sampled_from(["replace", "append", "delete"]))
    if where == "append" or not field:
        field.append(value)
    elif where == "delete":
        del field[draw(st.integers(0, len(field) - 1))]
    else:
        field[draw(st.integers(0, len(field) - 1))] = value
    return f"{node.name}: {where} {value!r}"


def _self_reference(draw: Any, model: onnx.ModelProto) -> str:
    nodes = [n for n in _nodes(model) if n.input and n.output]
    if not nodes:
        return "no node"
    node = draw(st.sampled_from(nodes))
    node.input[draw(st.integers(0, len(node.input) - 1))] = node.output[0]
    return f"{node.name} reads its own output"


def _retype_op(draw: Any, model: onnx.ModelProto) -> str:
    if not _nodes(model):
        return "no node"
    node = draw(st.sampled_from(_nodes(model)))
    if draw(st.booleans()):
        node.op_type = draw(st.sampled_from(OP_TYPES))
        return f"{node.name} became {node.op_type}"
    node.domain = draw(st.sampled_from(["com.unknown", "ai.onnx.ml", "local", "ai.onnx"]))
    return f"{node.name} moved to domain {node.domain!r}"


def _opset(draw: Any, model: onnx.ModelProto) -> str:
    version = draw(st.sampled_from([0, -1, 1, 6, 7, 9, 10, 11, 13, 18, 21, 99, 10**6, 2**62]))
    entries = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if entries and draw(st.booleans()):
        entries[0].version = version
    elif draw(st.booleans()):
        del model.opset_import[:]
    else:
        model.opset_import.append(helper.make_opsetid("", version))
    model.ir_version = draw(st.sampled_from([model.ir_version, 0, 3, 99]))
    return f"opset {version}"


def _dims(draw: Any, model: onnx.ModelProto) -> str:
    infos = [
        v
        for g in _graphs(model)
        for v in [*g.input, *g.output, *g.value_info]
        if v.type.HasField("tensor_type")
    ]
    if not infos:
        return "no typed value"
    info = draw(st.sampled_from(infos))
    shape = info.type.tensor_type.shape
    choice = draw(st.sampled_from(["set", "drop", "rank", "symbolic"]))
    if choice == "drop":
        info.type.tensor_type.ClearField("shape")
    elif choice == "rank":
        shape.dim.add().dim_value = draw(st.sampled_from(HOSTILE_INTS))
    elif choice == "symbolic" and shape.dim:
        shape.dim[draw(st.integers(0, len(shape.dim) - 1))].dim_param = "N"
    elif shape.dim:
        shape.dim[draw(st.integers(0, len(shape.dim) - 1))].dim_value = draw(
            st.sampled_from(HOSTILE_INTS)
        )
    return f"{info.name} shape {choice}"


def _tensor(draw: Any, model: onnx.ModelProto) -> str:
    tensors = [t for g in _graphs(model) for t in g.initializer] + [
        a.t for n in _nodes(model) for a in n.attribute if a.HasField("t")
    ]
    if not tensors:
        return "no tensor"
    t = draw(st.sampled_from(tensors))
    choice = draw(st.sampled_from(["dims", "truncate", "dtype", "values", "external", "empty"]))
    if choice == "dims" and t.dims:
        t.dims[draw(st.integers(0, len(t.dims) - 1))] = draw(st.sampled_from(HOSTILE_INTS))
    elif choice == "dims":
        t.dims.append(draw(st.sampled_from(HOSTILE_INTS)))
    elif choice == "truncate" and t.raw_data:
        t.raw_data = t.raw_data[: draw(st.integers(0, len(t.raw_data) - 1))]
    elif choice == "dtype":
        t.data_type = draw(st.sampled_from([0, 1, 7, 8, 9, 10, 16, 17, 21, 99]))
    elif choice == "values" and t.data_type in (TensorProto.INT64, TensorProto.FLOAT):
        try:  # an earlier edit may have made the tensor unreadable
            arr = onnx.numpy_helper.to_array(t).copy()
        except Exception:
            return f"tensor {t.name!r}: unreadable"
        hostile = HOSTILE_INTS if t.data_type == TensorProto.INT64 else HOSTILE_FLOATS
        if arr.size:
            arr.reshape(-1)[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from(hostile))
            t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
    elif choice == "external":
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key = "location"
        entry.value = draw(st.sampled_from(["../../etc/passwd", "/etc/passwd", "w.bin", ""]))
        t.ClearField("raw_data")
    else:
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.ClearField("int64_data")
    return f"tensor {t.name!r}: {choice}"


def _structure(draw: Any, model: onnx.ModelProto) -> str:
    graph = draw(st.sampled_from(_graphs(model)))
    choice = draw(st.sampled_from(["drop node", "dup node", "reverse", "drop input", "drop out"]))
    if choice == "drop node" and graph.node:
        del graph.node[draw(st.integers(0, len(graph.node) - 1))]
    elif choice == "dup node" and graph.node:
        graph.node.add().CopyFrom(graph.node[draw(st.integers(0, len(graph.node) - 1))])
    elif choice == "reverse":
        nodes = list(graph.node)[::-1]
        del graph.node[:]
        graph.node.extend(nodes)
    elif choice == "drop input" and graph.input:
        del graph.input[draw(st.integers(0, len(graph.input) - 1))]
    elif choice == "drop out" and graph.output:
        del graph.output[draw(st.integers(0, len(graph.output) - 1))]
    return choice


MUTATIONS: tuple[Mutation, ...] = (
    _set_ints,
    _resize_ints,
    _retype_attribute,
    _drop_attribute,
    _rewire,
    _self_reference,
    _retype_op,
    _opset,
    _dims,
    _tensor,
    _structure,
)


@st.composite
def mutated_models(draw: Any, max_mutations: int = 3) -> tuple[str, onnx.ModelProto]:
    """A base model with 1 to ``max_mutations`` structured edits, and what was done."""
    name = draw(st.sampled_from(sorted(_BASES)))
    model = onnx.ModelProto.FromString(_BASES[name])
    edits = [name]
    for _ in range(draw(st.integers(1, max_mutations))):
        mutation = draw(st.sampled_from(MUTATIONS))
        edits.append(f"{mutation.__name__.strip('_')}: {mutation(draw, model)}")
    return "; ".join(edits), model

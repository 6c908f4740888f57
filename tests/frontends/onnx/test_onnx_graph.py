"""Graph structure: data vs constants, names, subgraphs, functions, shuffles, shifts, op table."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from deconvlint.core.chainspec import parse_chain
from deconvlint.core.ir import Kind, ShiftAxis, WindowAxis
from deconvlint.frontends.onnx.reader import graph_from_model
from tests.support.onnx_factory import make_model, model_from_chain, run, tensor, value_info


def ones_weight(name: str, shape: tuple) -> TensorProto:
    return tensor(name, np.ones(shape))


def test_data_inputs_exclude_constants_and_shape_arithmetic() -> None:
    nodes = [
        helper.make_node("Constant", [], ["c"], value=tensor("c", [2.0])),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Cast", ["s"], ["fs"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["fs"], ["m"], keepdims=0),
        helper.make_node("Mul", ["x", "c"], ["a"], name="scale"),
        helper.make_node("Add", ["a", "m"], ["b"], name="shift"),
        helper.make_node("Add", ["b", "bias"], ["d"], name="bias_add"),
        helper.make_node("Add", ["d", "x2"], ["e"], name="sum"),
        helper.make_node("Concat", ["e", "x2"], ["f"], name="cat", axis=1),
        helper.make_node("Concat", ["f", "const4"], ["g"], name="cat_const", axis=-3),
        helper.make_node("Concat", ["g", "g"], ["h"], name="cat_w", axis=3),
    ]
    inits = [tensor("bias", np.zeros((1, 2, 1, 1))), tensor("const4", np.zeros((1, 4, 4, 4)))]
    model = make_model(
        nodes,
        [
            value_info("x", [1, 2, 4, 4]),
            value_info("x2", [1, 2, 4, 4]),
            value_info("bias", [1, 2, 1, 1]),
        ],
        [value_info("h", None)],
        inits,
    )
    graph = graph_from_model(model)
    assert graph.inputs == ("x", "x2") and graph.outputs == ("h",)
    summary = [(n.name, n.kind, n.inputs) for n in graph.nodes]
    assert summary == [
        ("scale", Kind.POINTWISE, ("x",)),
        ("shift", Kind.POINTWISE, ("a",)),
        ("bias_add", Kind.POINTWISE, ("b",)),
        ("sum", Kind.JOIN, ("d", "x2")),
        ("cat", Kind.JOIN, ("e", "x2")),
        ("cat_const", Kind.POINTWISE, ("f",)),
        ("cat_w", Kind.BARRIER, ("g",)),
    ]
    assert graph.shapes["x"] == (1, 2, 4, 4) and graph.shapes["h"] == (1, 8, 4, 8)


def test_unnamed_nodes_get_stable_generated_unique_names() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["b"]),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Relu", ["c"], ["d"], name="Relu_0"),
        helper.make_node("Tanh", ["d"], ["e"], name="act"),
        helper.make_node("Tanh", ["e"], ["f"], name="act"),
    ]
    model = make_model(nodes, [value_info("x", [1, 1, 4])], [value_info("f", None)])
    names = [n.name for n in graph_from_model(model).nodes]
    assert names == ["Relu_0_1", "Sigmoid_0", "Relu_1", "Relu_0", "act", "act_1"]
    assert [n.name for n in graph_from_model(model).nodes] == names


def test_nodes_out_of_order_are_sorted() -> None:
    nodes = [
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Relu", ["x"], ["a"], name="first"),
    ]
    model = make_model(nodes, [value_info("x", [1, 1, 4])], [value_info("b", None)])
    assert [n.name for n in graph_from_model(model).nodes] == ["first", "second"]


def _branch(name: str, stride: int) -> object:
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], [f"{name}_y"], name="up", strides=[stride, stride]
    )
    return helper.make_graph([node], name, [], [value_info(f"{name}_y", None)])


def test_if_becomes_a_join_of_converted_branches() -> None:
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Greater", ["m", "zero"], ["cond"]),
        helper.make_node(
            "If",
            ["cond"],
            ["y"],
            name="choose",
            then_branch=_branch("then", 2),
            else_branch=_branch("else", 3),
        ),
    ]
    model = make_model(
        nodes,
        [value_info("x", [1, 1, 4, 4])],
        [value_info("y", None)],
        [ones_weight("w", (1, 1, 3, 3)), tensor("zero", 0.0)],
    )
    graph = graph_from_model(model)
    by_name = {n.name: n for n in graph.nodes}
    then_up, else_up = by_name["choose/then_branch/up"], by_name["choose/else_branch/up"]
    assert then_up.kind is Kind.CONV_TRANSPOSE and then_up.inputs == ("x",)
    assert then_up.window[0].stride == 2 and else_up.window[0].stride == 3
    join = by_name["choose"]
    assert join.kind is Kind.JOIN and join.outputs == ("y",)
    assert join.inputs == ("choose/then_branch/then_y", "choose/else_branch/else_y")
    assert then_up.outputs == ("choose/then_branch/then_y",)
    names = [n.name for n in graph.nodes]
    assert names.index("choose") > names.index("choose/else_branch/up")


def test_loop_and_scan_outputs_come_from_a_barrier() -> None:
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node(
                "ConvTranspose", ["state", "w"], ["t"], name="up", strides=[1, 1], pads=[1, 1, 1, 1]
            ),
            helper.make_node("Add", ["t", "x"], ["state_out"], name="skip"),
        ],
        "body",
        [
            value_info("i", [], TensorProto.INT64),
            value_info("cond_in", [], TensorProto.BOOL),
            value_info("state", None),
        ],
        [value_info("cond_out", [], TensorProto.BOOL), value_info("state_out", None)],
    )
    scan_body = helper.make_graph(
        [helper.make_node("Relu", ["row"], ["row_out"], name="act")],
        "scan_body",
        [value_info("row", None)],
        [value_info("row_out", None)],
    )
    nodes = [
        helper.make_node("Loop", ["trip", "", "x"], ["y"], name="loop", body=body),
        helper.make_node("Scan", ["y"], ["z"], name="scan", body=scan_body, num_scan_inputs=1),
    ]
    model = make_model(
        nodes,
        [value_info("x", [1, 1, 4, 4])],
        [value_info("z", None)],
        [ones_weight("w", (1, 1, 3, 3)), tensor("trip", 3, np.int64)],
    )
    graph = graph_from_model(model)
    by_name = {n.name: n for n in graph.nodes}
    assert by_name["loop/body/up"].inputs == ("loop/body/state",)
    assert by_name["loop/body/skip"].kind is Kind.JOIN
    assert by_name["loop/body/skip"].inputs == ("loop/body/t", "x")
    loop = by_name["loop"]
    assert loop.kind is Kind.BARRIER and loop.outputs == ("y",)
    assert loop.inputs == ("x", "loop/body/state_out")
    assert by_name["scan/body/act"].kind is Kind.POINTWISE
    assert by_name["scan"].kind is Kind.BARRIER and by_name["scan"].inputs == (
        "y",
        "scan/body/row_out",
    )


def test_model_local_functions_are_inlined_with_call_prefixed_names() -> None:
    stride = helper.make_attribute_ref("stride", helper.AttributeProto.INTS)
    stride.name = "strides"
    conv_t = helper.make_node("ConvTranspose", ["x", "w"], ["t"], name="ct", pads=[1, 1, 1, 1])
    conv_t.attribute.append(stride)
    inner = helper.make_function(
        "local",
        "UpBlock",
        ["x", "w"],
        ["y"],
        [conv_t, helper.make_node("Relu", ["t"], ["y"])],
        opset_imports=[helper.make_opsetid("", 19)],
        attributes=["stride"],
    )
    outer = helper.make_function(
        "local",
        "TwoUp",
        ["x", "w"],
        ["y"],
        [
            helper.make_node(
                "UpBlock", ["x", "w"], ["h"], domain="local", name="first", stride=[2, 2]
            ),
            helper.make_node(
                "UpBlock", ["h", "w"], ["y"], domain="local", name="second", stride=[3, 3]
            ),
        ],
        opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("local", 1)],
    )
    node = helper.make_node("TwoUp", ["x", "w"], ["y"], domain="local", name="decoder")
    graph = helper.make_graph(
        [node],
        "g",
        [value_info("x", [1, 1, 4, 4])],
        [value_info("y", None)],
        [ones_weight("w", (1, 1, 4, 4))],
    )
    model = helper.make_model(
        graph,
        functions=[inner, outer],
        opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("local", 1)],
    )
    ir = graph_from_model(model)
    assert [(n.name, n.kind) for n in ir.nodes] == [
        ("decoder/first/ct", Kind.CONV_TRANSPOSE),
        ("decoder/first/Relu_0", Kind.POINTWISE),
        ("decoder/second/ct", Kind.CONV_TRANSPOSE),
        ("decoder/second/Relu_0", Kind.POINTWISE),
    ]
    assert ir.nodes[0].window == (WindowAxis(kernel=4, stride=2, pads_begin=1, pads_end=1),) * 2
    assert ir.nodes[2].window[0].stride == 3
    assert ir.nodes[0].inputs == ("x",) and ir.nodes[3].outputs == ("y",)
    assert ir.shapes["y"] == (1, 1, 23, 23)
    assert ir.notes == []
    model.functions[0].opset_import[0].version = 18
    assert graph_from_model(model).notes == [
        "function 'UpBlock' imports opset 18; its nodes are read with the model's opset 19"
    ]  # 4 -> 2*3 + 4 - 2 = 8 -> 3*7 + 4 - 2


@pytest.mark.parametrize(("attrs", "mode"), [({}, "DCR"), ({"mode": "CRD"}, "CRD")])
def test_depth_to_space_and_space_to_depth(attrs: dict, mode: str) -> None:
    nodes = [
        helper.make_node("DepthToSpace", ["x"], ["a"], name="d2s", blocksize=2, **attrs),
        helper.make_node("SpaceToDepth", ["a"], ["b"], name="s2d", blocksize=2),
    ]
    model = make_model(nodes, [value_info("x", [1, 8, 4, 4])], [value_info("b", None)])
    d2s, s2d = graph_from_model(model).nodes
    assert (d2s.kind, d2s.block, d2s.depth_to_space_mode) == (Kind.DEPTH_TO_SPACE, (2, 2), mode)
    assert (s2d.kind, s2d.block) == (Kind.SPACE_TO_DEPTH, (2, 2))


@pytest.mark.parametrize(
    ("spec", "kind", "block", "mode"),
    [
        ("PixelShuffle(r=(2, 3))", Kind.DEPTH_TO_SPACE, (2, 3), "CRD"),
        ("PixelShuffle(r=3, rank=1)", Kind.DEPTH_TO_SPACE, (3,), "CRD"),
        ("PixelShuffle(r=2, rank=3)", Kind.DEPTH_TO_SPACE, (2, 2, 2), "CRD"),
        ("PixelUnshuffle(r=(2, 4))", Kind.SPACE_TO_DEPTH, (2, 4), "CRD"),
        ("PixelUnshuffle(r=2, rank=1)", Kind.SPACE_TO_DEPTH, (2,), "CRD"),
    ],
)
def test_reshape_transpose_reshape_shuffles_are_recognised(
    spec: str, kind: Kind, block: tuple, mode: str
) -> None:
    model = model_from_chain(parse_chain(spec + " -> ReLU()"))
    assert [n.op_type for n in model.graph.node][:3] == ["Reshape", "Transpose", "Reshape"]
    graph = graph_from_model(model)
    node = graph.nodes[0]
    assert (node.name, node.kind, node.block, node.depth_to_space_mode) == (
        "layer0",
        kind,
        block,
        mode,
    )
    assert node.inputs == ("v0",) and node.outputs == ("v1",) and len(graph.nodes) == 2


@pytest.mark.parametrize(
    ("mode", "mid", "perm"),
    [
        ("CRD", [1, 2, 2, 2, 3, 5], [0, 1, 4, 2, 5, 3]),
        ("DCR", [1, 2, 2, 2, 3, 5], [0, 3, 4, 1, 5, 2]),
    ],
)
def test_shuffle_pattern_is_depth_to_space_in_onnxruntime(mode: str, mid: list, perm: list) -> None:
    """The pattern we read as DepthToSpace(mode) computes what onnxruntime's op does."""
    nodes = [
        helper.make_node("Reshape", ["x", "mid_shape"], ["mid"], name="r1"),
        helper.make_node("Transpose", ["mid"], ["moved"], name="shuffle", perm=perm),
        helper.make_node("Reshape", ["moved", "out_shape"], ["y"], name="r2"),
    ]
    inits = [tensor("mid_shape", mid, np.int64), tensor("out_shape", [1, 2, 6, 10], np.int64)]
    pattern = make_model(nodes, [value_info("x", [1, 8, 3, 5])], [value_info("y", None)], inits)
    native = make_model(
        [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode=mode)],
        [value_info("x", [1, 8, 3, 5])],
        [value_info("y", None)],
    )
    x = np.random.default_rng(0).standard_normal((1, 8, 3, 5)).astype(np.float32)
    np.testing.assert_array_equal(run(pattern, {"x": x})[0], run(native, {"x": x})[0])
    node = graph_from_model(pattern).nodes[0]
    assert (node.kind, node.block, node.depth_to_space_mode) == (Kind.DEPTH_TO_SPACE, (2, 2), mode)


def _shuffle_graph(mid_source: str, perm: list, x_shape: list) -> object:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["hw"], axis=0),
        helper.make_node("Concat", ["batch", "c_r_r", "hw"], ["mid_shape"], axis=0),
        helper.make_node("Reshape", ["x", mid_source], ["mid"], name="r1"),
        helper.make_node("Transpose", ["mid"], ["moved"], name="shuffle", perm=perm),
        helper.make_node("Reshape", ["moved", "out_shape"], ["y"], name="r2"),
    ]
    inits = [
        tensor("idx", [2, 3], np.int64),
        tensor("batch", [-1], np.int64),
        tensor("c_r_r", [2, 2, 2], np.int64),
        tensor("out_shape", [0, 2, 8, 10], np.int64),
        tensor("fixed_mid", [1, 2, 2, 2, 4, 5], np.int64),
    ]
    return make_model(nodes, [value_info("x", x_shape)], [value_info("y", None)], inits)


@pytest.mark.parametrize("x_shape", [[1, 8, 4, 5], ["N", 8, 4, 5]])
def test_shuffle_with_folded_reshape_targets(x_shape: list) -> None:
    graph = graph_from_model(_shuffle_graph("mid_shape", [0, 1, 4, 2, 5, 3], x_shape))
    assert [(n.name, n.kind, n.block) for n in graph.nodes] == [
        ("shuffle", Kind.DEPTH_TO_SPACE, (2, 2))
    ]
    assert graph.nodes[0].extra["fused"] == ("r1", "shuffle", "r2")


def test_other_transposes_stay_barriers() -> None:
    graph = graph_from_model(_shuffle_graph("fixed_mid", [0, 1, 2, 4, 3, 5], [1, 8, 4, 5]))
    assert [(n.name, n.kind) for n in graph.nodes] == [
        ("r1", Kind.BARRIER),
        ("shuffle", Kind.BARRIER),
        ("r2", Kind.BARRIER),
    ]


def test_shuffle_whose_middle_value_is_reused_is_not_fused() -> None:
    model = _shuffle_graph("fixed_mid", [0, 1, 4, 2, 5, 3], [1, 8, 4, 5])
    model.graph.output.append(value_info("moved", None))
    assert [n.kind for n in graph_from_model(model).nodes] == [Kind.BARRIER] * 3


@pytest.mark.parametrize(
    ("opset", "pads", "axes", "kind", "shift"),
    [
        (19, [0, 0, 1, 2, 0, 0, 1, 2], None, Kind.SHIFT, (ShiftAxis(-1), ShiftAxis(-2))),
        (11, [0, 0, -1, 0, 0, 0, 3, 0], None, Kind.SHIFT, (ShiftAxis(1), ShiftAxis(0))),
        (18, [2, 1], [-1], Kind.SHIFT, (ShiftAxis(0), ShiftAxis(-2))),
        (19, [0, 1, 0, 0, 0, 1, 0, 0], None, Kind.POINTWISE, ()),
        (2, [0, 0, 1, 1, 0, 0, 1, 1], None, Kind.SHIFT, (ShiftAxis(-1), ShiftAxis(-1))),
    ],
)
def test_pad(opset: int, pads: list, axes, kind: Kind, shift: tuple) -> None:
    inits = []
    if opset < 11:
        node = helper.make_node("Pad", ["x"], ["y"], name="pad", pads=pads, mode="reflect")
    else:
        inputs = ["x", "pads"] + (["", "axes"] if axes else [])
        node = helper.make_node("Pad", inputs, ["y"], name="pad", mode="reflect")
        inits = [tensor("pads", pads, np.int64)] + (
            [tensor("axes", axes, np.int64)] if axes else []
        )
    model = make_model(
        [node], [value_info("x", [1, 2, 6, 6])], [value_info("y", None)], inits, opset=opset
    )
    ir = graph_from_model(model).nodes[0]
    assert (ir.kind, ir.shift, ir.extra["mode"]) == (kind, shift, "reflect")


@pytest.mark.parametrize(
    ("x_shape", "starts", "axes", "steps", "kind", "shift"),
    [
        ([1, 2, 8, 8], [1, 2], [2, 3], [2, 1], Kind.SHIFT, (ShiftAxis(1, 2), ShiftAxis(2, 1))),
        ([1, 2, 8, 8], [-3], [-1], [1], Kind.SHIFT, (ShiftAxis(0), ShiftAxis(5))),
        ([1, 2, 8, 8], [-1], [2], [-1], Kind.SHIFT, (ShiftAxis(7, -1), ShiftAxis(0))),
        ([1, 2, 8, 8], [100], [3], [1], Kind.SHIFT, (ShiftAxis(0), ShiftAxis(8))),
        ([1, 2, "H", 8], [-2], [2], [1], Kind.BARRIER, ()),
        ([1, 4, 8, 8], [1], [1], [1], Kind.POINTWISE, ()),
    ],
)
def test_slice(
    x_shape: list, starts: list, axes: list, steps: list, kind: Kind, shift: tuple
) -> None:
    inits = [
        tensor("starts", starts, np.int64),
        tensor("ends", [2**62] * len(starts), np.int64),
        tensor("axes", axes, np.int64),
        tensor("steps", steps, np.int64),
    ]
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"], name="s")
    model = make_model([node], [value_info("x", x_shape)], [value_info("y", None)], inits)
    ir = graph_from_model(model).nodes[0]
    assert (ir.kind, ir.shift) == (kind, shift)


def test_slice_opset_9_attributes() -> None:
    node = helper.make_node("Slice", ["x"], ["y"], name="s", starts=[2], ends=[6], axes=[3])
    model = make_model([node], [value_info("x", [1, 1, 8, 8])], [value_info("y", None)], opset=9)
    assert graph_from_model(model).nodes[0].shift == (ShiftAxis(0), ShiftAxis(2))


POINTWISE_OPS = [
    "Relu",
    "Sigmoid",
    "Tanh",
    "Elu",
    "Gelu",
    "HardSwish",
    "Erf",
    "Sqrt",
    "Exp",
    "Abs",
    "Neg",
    "Identity",
    "Softsign",
    "Mish",
    "Reciprocal",
    "Sin",
    "Cos",
]


@pytest.mark.parametrize("op", POINTWISE_OPS)
def test_unary_pointwise_ops(op: str) -> None:
    model = make_model(
        [helper.make_node(op, ["x"], ["y"], name="op")],
        [value_info("x", [1, 1, 4, 4])],
        [value_info("y", None)],
    )
    assert graph_from_model(model).nodes[0].kind is Kind.POINTWISE


@pytest.mark.parametrize(
    ("node", "kind"),
    [
        (helper.make_node("Softmax", ["x"], ["y"], axis=1), Kind.POINTWISE),
        (helper.make_node("Softmax", ["x"], ["y"], axis=-3), Kind.POINTWISE),
        (helper.make_node("Softmax", ["x"], ["y"]), Kind.BARRIER),
        (helper.make_node("LogSoftmax", ["x"], ["y"], axis=2), Kind.BARRIER),
        (helper.make_node("Split", ["x"], ["y", "y2"], axis=1, num_outputs=2), Kind.POINTWISE),
        (helper.make_node("Split", ["x"], ["y", "y2"], axis=2, num_outputs=2), Kind.BARRIER),
        (helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2]), Kind.BARRIER),
        (helper.make_node("Flatten", ["x"], ["y"]), Kind.BARRIER),
        (helper.make_node("ReduceMean", ["x"], ["y"]), Kind.BARRIER),
        (helper.make_node("Pow", ["x", "x2"], ["y"]), Kind.BARRIER),
        (helper.make_node("Pow", ["x", "x"], ["y"]), Kind.POINTWISE),  # one data value, used twice
        (helper.make_node("Where", ["x", "x", "x2"], ["y"]), Kind.JOIN),
        (helper.make_node("Mean", ["x", "x2"], ["y"]), Kind.JOIN),
        (helper.make_node("Max", ["x", "ten"], ["y"]), Kind.POINTWISE),
        (helper.make_node("Custom", ["x"], ["y"], domain="com.example"), Kind.BARRIER),
    ],
)
def test_op_table(node, kind: Kind) -> None:
    node.name = "op"
    model = make_model(
        [node],
        [value_info("x", [1, 4, 4, 4]), value_info("x2", [1, 4, 4, 4])],
        [value_info(o, None) for o in node.output],
        [tensor("ten", 10.0)],
    )
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    ir = graph_from_model(model).nodes[0]
    assert ir.kind is kind and ir.outputs == tuple(node.output)


def test_empty_graph_gives_an_empty_ir_graph() -> None:
    model = make_model([], [value_info("x", [1])], [value_info("x", [1])])
    graph = graph_from_model(model, name="empty")
    assert (graph.name, graph.nodes, graph.inputs, graph.outputs) == ("empty", [], ("x",), ("x",))


def test_failed_shape_inference_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from deconvlint.frontends.onnx import reader as frontend

    def broken(work):
        raise RuntimeError("[ShapeInferenceError] boom\nsecond line")

    # the inference worker runs the function it is given, so patch that one
    monkeypatch.setattr(frontend, "_infer", broken)
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="act")],
        [value_info("x", [1, 1, 4])],
        [value_info("y", None)],
    )
    graph = graph_from_model(model)
    assert [n.name for n in graph.nodes] == ["act"]
    assert graph.notes == ["shape inference failed: [ShapeInferenceError] boom"]
    assert graph.shapes == {"x": (1, 1, 4)}  # only what the file declares

"""The constant folder: partial values, symbols, the size cap, and each folded op."""

from __future__ import annotations

import time

import numpy as np
import pytest
from onnx import TensorProto, helper

from deconvlint.core.ir import Kind
from deconvlint.frontends.onnx.fold import MAX_ELEMENTS, Folded, fold
from deconvlint.frontends.onnx.reader import graph_from_model
from tests.support.onnx_factory import make_model, tensor, value_info


def known(values, dtype=np.int64) -> Folded:
    return Folded.known(np.array(values, dtype=dtype))


def test_shape_keeps_symbols_and_anonymous_dims() -> None:
    (shape,) = fold(
        "Shape", [None], {"__shape__": ("N", None, 5, 7), "__unknown_prefix__": "?x:"}, 19
    )
    assert shape.dims() == ["N", "?x:1", 5, 7] and not shape.is_known
    (tail,) = fold("Shape", [None], {"__shape__": ("N", None, 5, 7), "start": -2}, 19)
    assert tail.dims() == [5, 7] and tail.is_known


def test_arithmetic_on_a_symbol_is_anonymous() -> None:
    shape = Folded.from_dims(("N", 4))
    (doubled,) = fold("Mul", [shape, known(2)], {}, 19)
    assert doubled.dims() == ["", 8]
    (moved,) = fold("Gather", [shape, known([0])], {"axis": 0}, 19)
    assert moved.dims() == ["N"]


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "opset", "expected"),
    [
        ("Div", [known([7, -7]), known([2, 2])], {}, 19, [3, -3]),  # integer Div truncates
        ("Div", [known([7.0], np.float32), known([2.0], np.float32)], {}, 19, [3.5]),
        ("Round", [known([0.5, 1.5, 2.5], np.float32)], {}, 19, [0.0, 2.0, 2.0]),  # half to even
        ("Floor", [known([1.7, -1.2], np.float32)], {}, 19, [1.0, -2.0]),
        ("Ceil", [known([1.2], np.float32)], {}, 19, [2.0]),
        ("Cast", [known([2.9, -2.9], np.float32)], {"to": TensorProto.INT64}, 19, [2, -2]),
        ("Slice", [known([1, 2, 3, 4, 5]), known([-3]), known([100])], {}, 19, [3, 4, 5]),
        ("Slice", [known([1, 2, 3, 4, 5])], {"starts": [1], "ends": [3]}, 9, [2, 3]),
        (
            "Slice",
            [known([1, 2, 3, 4, 5]), known([4]), known([-100]), known([0]), known([-2])],
            {},
            19,
            [5, 3, 1],
        ),
        ("Gather", [known([10, 20, 30]), known(-1)], {}, 19, [30]),
        ("Concat", [known([1]), known([2, 3])], {"axis": 0}, 19, [1, 2, 3]),
        ("Unsqueeze", [known(5), known([0])], {}, 19, [5]),
        ("Unsqueeze", [known(5)], {"axes": [0]}, 11, [5]),
        ("Squeeze", [known([[5]]), known([0, 1])], {}, 19, [5]),
        ("Reshape", [known([[1, 2], [3, 4]]), known([-1])], {}, 19, [1, 2, 3, 4]),
        ("Range", [known(1), known(7), known(2)], {}, 19, [1, 3, 5]),
        ("Expand", [known([3]), known([2])], {}, 19, [3, 3]),
        ("ConstantOfShape", [known([3])], {"value": tensor("v", [7], np.int64)}, 19, [7, 7, 7]),
        ("Min", [known([3, 9]), known([5])], {}, 19, [3, 5]),
        ("Max", [known([3, 9]), known([5]), known([4, 4])], {}, 19, [5, 9]),
        ("Identity", [known([1])], {}, 19, [1]),
        ("Transpose", [known([[1, 2, 3], [4, 5, 6]])], {"perm": [1, 0]}, 19, [1, 4, 2, 5, 3, 6]),
        ("Transpose", [known([[1, 2, 3], [4, 5, 6]])], {}, 19, [1, 4, 2, 5, 3, 6]),  # reversed
        (
            "Transpose",
            [known(np.arange(24).reshape(2, 3, 4))],
            {"perm": [2, 0, 1]},
            19,
            np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1).reshape(-1),
        ),
        ("Transpose", [known([7, 8])], {"perm": [0]}, 19, [7, 8]),
        ("Equal", [known([4, -1, 3]), known([-1])], {}, 19, [False, True, False]),
        (
            "Where",
            [known([True, False, True], bool), known([1]), known([4, 5, 6])],
            {},
            19,
            [1, 5, 1],
        ),
        ("Constant", [], {"value_ints": [4, 5]}, 19, [4, 5]),
    ],
)
def test_folded_ops(op, inputs, attrs, opset, expected) -> None:
    (result,) = fold(op, inputs, attrs, opset)
    np.testing.assert_array_equal(result.value.reshape(-1), expected)


def test_transpose_moves_symbols_with_their_elements() -> None:
    pairs = Folded.from_dims(("N", 3, 4, None), "?x:")
    (rows,) = fold("Reshape", [pairs, known([2, 2])], {}, 19)
    (columns,) = fold("Transpose", [rows], {"perm": [1, 0]}, 19)
    assert columns.value.shape == (2, 2)
    assert columns.dims() == ["N", 4, 3, "?x:3"]


def test_where_takes_symbols_from_the_chosen_side_and_hides_an_unknown_condition() -> None:
    shape = Folded.from_dims(("N", 3, None), "?x:")
    (picked,) = fold("Where", [known([True, False, True], bool), shape, known([7])], {}, 19)
    assert picked.dims() == ["N", 7, "?x:2"]
    (is_minus_one,) = fold("Equal", [shape, known([-1])], {}, 19)
    assert is_minus_one.dims() == ["", False, ""]
    (guarded,) = fold("Where", [is_minus_one, known([1]), shape], {}, 19)
    assert guarded.dims() == ["", 3, ""]


@pytest.mark.parametrize("perm", [[0, 0], [0, 2], [1], [0, 1, 2]])
def test_transpose_with_a_bad_perm_gives_none(perm) -> None:
    assert fold("Transpose", [known([[1, 2], [3, 4]])], {"perm": perm}, 19) is None


def test_nothing_large_is_materialised() -> None:
    big = known([MAX_ELEMENTS + 1])
    assert fold("ConstantOfShape", [big], {}, 19) is None
    assert fold("Expand", [known([1]), big], {}, 19) is None
    assert fold("Range", [known(0), known(10**9), known(1)], {}, 19) is None
    assert fold("Mul", [known(np.ones(4000)), known(np.ones((4000, 1)))], {}, 19) is None


def test_unfoldable_inputs_give_none() -> None:
    assert fold("Add", [known([1]), None], {}, 19) is None
    assert fold("Gather", [known([1, 2]), known([5])], {}, 19) is None  # out of range
    assert fold("NoSuchOp", [known([1])], {}, 19) is None


def test_cost_does_not_depend_on_the_declared_spatial_size() -> None:
    """A huge declared image folds nothing big and loads as fast as a small one."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["zeros"]),
        helper.make_node("Add", ["x", "zeros"], ["y"], name="add"),
        helper.make_node("Resize", ["y", "", "scales"], ["z"], name="up"),
    ]
    timings = []
    for side in (8, 1_000_000):
        model = make_model(
            nodes,
            [value_info("x", [1, 3, side, side])],
            [value_info("z", None)],
            [tensor("scales", [1, 1, 2, 2])],
        )
        start = time.perf_counter()
        graph = graph_from_model(model)
        timings.append(time.perf_counter() - start)
        assert [n.name for n in graph.nodes] == ["add", "up"]
        assert graph.nodes[1].resize.output_lengths == (2 * side, 2 * side)
    assert timings[1] < 1.0


# --- the pads chain of torch's TorchScript exporter --------------------------------------------


def _exported_pads_chain(torch_pads: list[int], rank: int) -> list:
    """The nodes ``torch.onnx.export(..., dynamo=False)`` writes for ``F.pad(x, torch_pads)``.

    torch lists pads last axis first as (begin, end) pairs; ONNX wants all begins, then all
    ends, first axis first: pad with zeros, pair up, reverse the rows, transpose, flatten.
    """

    def const(name: str, values: list[int]):
        return helper.make_node(
            "Constant", [], [name], value=tensor(name, values, np.int64), name=name
        )

    return [
        const("count", [2 * rank - len(torch_pads)]),
        const("given", torch_pads),
        helper.make_node("ConstantOfShape", ["count"], ["zeros"], value=tensor("z", [0], np.int64)),
        helper.make_node("Concat", ["given", "zeros"], ["flat"], axis=0),
        const("pairs_shape", [-1, 2]),
        helper.make_node("Reshape", ["flat", "pairs_shape"], ["pairs"], allowzero=0),
        const("axes", [0]),
        const("starts", [-1]),
        const("ends", [-(2**63 - 1)]),
        const("steps", [-1]),
        helper.make_node("Slice", ["pairs", "starts", "ends", "axes", "steps"], ["reversed"]),
        helper.make_node("Transpose", ["reversed"], ["columns"], perm=[1, 0]),
        const("flat_shape", [-1]),
        helper.make_node("Reshape", ["columns", "flat_shape"], ["pads64"], allowzero=0),
        helper.make_node("Cast", ["pads64"], ["pads"], to=TensorProto.INT64),
    ]


PAD_CASES = [([1, 2], 3), ([1, 2, 3, 0], 4), ([0, 1, 2, 0, 3, 1], 5), ([2, 2], 4)]


@pytest.mark.parametrize(("torch_pads", "rank"), PAD_CASES)
def test_exported_pads_chain_folds_like_onnxruntime(torch_pads, rank) -> None:
    ort = pytest.importorskip("onnxruntime")
    nodes = _exported_pads_chain(torch_pads, rank)
    model = make_model(nodes, [], [value_info("pads", None, TensorProto.INT64)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {})
    folded: dict[str, Folded] = {}
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        outputs = fold(node.op_type, [folded.get(i) for i in node.input], attrs, 19)
        assert outputs is not None, f"{node.op_type} did not fold"
        folded[node.output[0]] = outputs[0]
    assert folded["pads"].is_known
    np.testing.assert_array_equal(folded["pads"].value, expected)


@pytest.mark.parametrize(("torch_pads", "rank"), PAD_CASES)
def test_pad_fed_by_the_exported_chain_is_a_shift(torch_pads, rank) -> None:
    nodes = [
        *_exported_pads_chain(torch_pads, rank),
        helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="reflect"),
    ]
    shape = [1, 2, 6, 7, 8][:rank]
    graph = graph_from_model(make_model(nodes, [value_info("x", shape)], [value_info("y", None)]))
    (pad,) = graph.nodes
    assert pad.kind == Kind.SHIFT, pad.notes
    begins = torch_pads[::2][::-1]  # torch: last axis first
    begins = [0] * (rank - 2 - len(begins)) + begins
    assert [axis.offset for axis in pad.shift] == [-p for p in begins]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("module", "shape", "begins"),
    [
        ("ReflectionPad1d((2, 1))", (1, 2, 9), [2]),
        ("ReflectionPad2d((1, 2, 3, 0))", (1, 2, 9, 9), [3, 1]),
        ("ReplicationPad3d((1, 0, 2, 1, 0, 3))", (1, 2, 5, 6, 7), [0, 2, 1]),
        ("ZeroPad2d((0, 1, 1, 0))", (1, 2, 6, 6), [1, 0]),
        ("ConstantPad1d((3, 0), 0.5)", (1, 2, 9), [3]),
    ],
)
def test_torch_exported_pads_are_shifts(module: str, shape, begins) -> None:
    """Every Pad the TorchScript exporter writes for torch's pad modules is read exactly."""
    torch = pytest.importorskip("torch")
    import io
    import warnings

    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        pad = eval(module, {}, vars(torch.nn))
        torch.onnx.export(pad, (torch.randn(*shape),), buffer, dynamo=False)
    graph = graph_from_model(onnx.load_from_string(buffer.getvalue()))
    (node,) = graph.nodes
    assert node.kind == Kind.SHIFT, node.notes
    assert [axis.offset for axis in node.shift] == [-b for b in begins]


def test_depthwise_weight_expanded_by_the_exporter_is_a_fixed_filter() -> None:
    """A (1, 1, k, k) blur buffer expanded in forward: Expand(k, Where(Equal(shape, -1), ...))."""
    taps = np.outer([1, 2, 1], [1, 2, 1]) / 16

    def const(name: str, values) -> object:
        return helper.make_node("Constant", [], [name], value=tensor(name, values, np.int64))

    nodes = [
        const("rank", [4]),
        helper.make_node("ConstantOfShape", ["rank"], ["ones"], value=tensor("o", [1], np.int64)),
        const("minus_one", [-1]),
        helper.make_node("Mul", ["ones", "minus_one"], ["minus_ones"]),
        const("target", [4, 1, 3, 3]),
        helper.make_node("Equal", ["target", "minus_ones"], ["keep"]),
        helper.make_node("Where", ["keep", "ones", "target"], ["shape"]),
        helper.make_node("Expand", ["k", "shape"], ["w"]),
        helper.make_node("Conv", ["x", "w"], ["y"], name="blur", group=4, pads=[1, 1, 1, 1]),
    ]
    model = make_model(
        nodes,
        [value_info("x", [1, 4, 8, 8])],
        [value_info("y", None)],
        [tensor("k", taps[None, None])],
    )
    (blur,) = graph_from_model(model).nodes
    np.testing.assert_allclose(blur.fixed_kernel, taps)

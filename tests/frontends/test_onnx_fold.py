"""The constant folder: partial values, symbols, the size cap, and each folded op."""

from __future__ import annotations

import time

import numpy as np
import pytest
from onnx import TensorProto, helper

from deconvlint.frontends.onnx import graph_from_model
from deconvlint.frontends.onnx_fold import MAX_ELEMENTS, Folded, fold
from tests.onnx_factory import make_model, tensor, value_info


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
        ("Constant", [], {"value_ints": [4, 5]}, 19, [4, 5]),
    ],
)
def test_folded_ops(op, inputs, attrs, opset, expected) -> None:
    (result,) = fold(op, inputs, attrs, opset)
    np.testing.assert_array_equal(result.value.reshape(-1), expected)


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

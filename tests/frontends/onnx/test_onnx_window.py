"""ConvTranspose / Conv / pools / MaxUnpool: resolved geometry, checked against onnxruntime.

With all-ones weights and an all-ones input, a transposed conv outputs its coverage: at output
``o`` the number of taps ``j`` with ``(o + pads_begin - j*d)`` divisible by ``s`` and the source
index in range.  Each test rebuilds that from the loaded ``WindowAxis`` and compares it with
what onnxruntime computes, so a wrong pad split shows up as a shifted pattern.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from deconvlint.core.ir import Kind, WindowAxis
from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.reader import graph_from_model
from tests.support.onnx_factory import make_model, run, tensor, value_info


def transposed_coverage(n: int, a: WindowAxis) -> np.ndarray:
    length = a.stride * (n - 1) + a.output_padding + a.effective_kernel - a.pads_begin - a.pads_end
    coverage = np.zeros(length)
    for i in range(n):
        for j in range(a.kernel):
            o = i * a.stride + j * a.dilation - a.pads_begin
            if 0 <= o < length:
                coverage[o] += 1
    return coverage


def forward_coverage(n: int, a: WindowAxis) -> np.ndarray:
    length = (n + a.pads_begin + a.pads_end - a.effective_kernel) // a.stride + 1
    return np.array(
        [
            sum(0 <= o * a.stride + j * a.dilation - a.pads_begin < n for j in range(a.kernel))
            for o in range(length)
        ],
        dtype=float,
    )


def outer(vectors: list[np.ndarray]) -> np.ndarray:
    result = vectors[0]
    for v in vectors[1:]:
        result = np.multiply.outer(result, v)
    return result


def conv_model(
    op: str,
    lengths: tuple,
    kernel: tuple,
    attrs: dict,
    *,
    c_in: int = 1,
    c_out: int = 1,
    group: int = 1,
    kernel_attr: bool = True,
    weight=None,
) -> object:
    shape = (
        (c_in, c_out // group, *kernel)
        if op == "ConvTranspose"
        else (c_out, c_in // group, *kernel)
    )
    w = tensor("w", np.ones(shape) if weight is None else weight)
    if kernel_attr:
        attrs = {"kernel_shape": list(kernel), **attrs}
    node = helper.make_node(op, ["x", "w"], ["y"], name="layer", group=group, **attrs)
    return make_model([node], [value_info("x", [1, c_in, *lengths])], [value_info("y", None)], [w])


def ort_output(model, lengths: tuple, c_in: int = 1) -> np.ndarray:
    return run(model, {"x": np.ones((1, c_in, *lengths), np.float32)})[0][0, 0]


CONV_TRANSPOSE_CASES = {
    "explicit": ((6,), (3,), dict(strides=[2], pads=[1, 1], output_padding=[1])),
    "asymmetric": ((5,), (4,), dict(strides=[2], pads=[0, 2])),
    "asymmetric-begin": ((5,), (5,), dict(strides=[3], pads=[2, 1])),
    "same-upper": ((4,), (3,), dict(strides=[2], auto_pad="SAME_UPPER")),
    "same-lower": ((4,), (3,), dict(strides=[2], auto_pad="SAME_LOWER")),
    "same-upper-odd": ((5,), (5,), dict(strides=[3], output_padding=[1], auto_pad="SAME_UPPER")),
    "same-lower-dilated": ((5,), (3,), dict(strides=[2], dilations=[2], auto_pad="SAME_LOWER")),
    "same-negative-total": ((5,), (1,), dict(strides=[2], auto_pad="SAME_UPPER")),
    "valid": ((5,), (3,), dict(strides=[2], auto_pad="VALID")),
    "output-shape": ((5,), (3,), dict(strides=[2], output_shape=[8])),
    "output-shape-odd": ((5,), (4,), dict(strides=[2], output_shape=[9])),
    "output-shape-same-upper": (
        (5,),
        (4,),
        dict(strides=[2], output_shape=[9], auto_pad="SAME_UPPER"),
    ),
    "output-shape-valid": ((5,), (4,), dict(strides=[2], output_shape=[9], auto_pad="VALID")),
    "output-shape-larger": ((4,), (3,), dict(strides=[3], output_shape=[12])),
    "dilation": ((6,), (3,), dict(strides=[2], dilations=[3], pads=[2, 1])),
    "output-padding": ((4,), (2,), dict(strides=[3], output_padding=[2])),
    "2d-mixed": (
        (4, 5),
        (3, 4),
        dict(strides=[2, 3], pads=[1, 0, 0, 2], output_padding=[1, 0], dilations=[1, 2]),
    ),
    "2d-same-upper": ((5, 4), (3, 4), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "3d-output-shape": ((2, 3, 2), (3, 2, 3), dict(strides=[2, 2, 3], output_shape=[4, 6, 5])),
}


@pytest.mark.parametrize("case", sorted(CONV_TRANSPOSE_CASES))
def test_conv_transpose_pads_match_onnxruntime(case: str) -> None:
    lengths, kernel, attrs = CONV_TRANSPOSE_CASES[case]
    model = conv_model("ConvTranspose", lengths, kernel, attrs)
    node = graph_from_model(model).nodes[0]
    assert node.kind is Kind.CONV_TRANSPOSE and len(node.window) == len(lengths)
    expected = outer([transposed_coverage(n, a) for n, a in zip(lengths, node.window, strict=True)])
    np.testing.assert_array_equal(ort_output(model, lengths), expected, err_msg=str(node.window))


@pytest.mark.parametrize(("auto_pad", "pads"), [("SAME_UPPER", (0, 1)), ("SAME_LOWER", (1, 0))])
def test_conv_transpose_same_pads_theory_example(auto_pad: str, pads: tuple) -> None:
    # theory.md 2.1: k=3, s=2, n=4: SAME_UPPER -> pads (0, 1), SAME_LOWER -> (1, 0)
    model = conv_model("ConvTranspose", (4,), (3,), dict(strides=[2], auto_pad=auto_pad))
    axis = graph_from_model(model).nodes[0].window[0]
    assert (axis.pads_begin, axis.pads_end) == pads


def test_conv_transpose_output_shape_beyond_natural_becomes_output_padding() -> None:
    # natural length 3*(4-1) + 3 = 12; ORT appends zeros up to 14
    model = conv_model("ConvTranspose", (4,), (3,), dict(strides=[3], output_shape=[14]))
    assert graph_from_model(model).nodes[0].window[0] == WindowAxis(
        kernel=3, stride=3, output_padding=2
    )


def test_conv_transpose_missing_kernel_shape_group_and_channels() -> None:
    model = conv_model(
        "ConvTranspose",
        (5, 5),
        (3, 3),
        dict(strides=[2, 2], pads=[1] * 4),
        c_in=4,
        c_out=6,
        group=2,
        kernel_attr=False,
    )
    node = graph_from_model(model).nodes[0]
    assert node.window == (WindowAxis(kernel=3, stride=2, pads_begin=1, pads_end=1),) * 2
    assert (node.in_channels, node.out_channels, node.groups, node.has_bias) == (4, 6, 2, False)
    # with all-ones weights each output sums C_in/group = 2 input channels
    expected = outer([transposed_coverage(5, a) for a in node.window]) * 2
    np.testing.assert_array_equal(ort_output(model, (5, 5), c_in=4), expected)


def test_conv_transpose_output_shape_with_unknown_input_length_notes_and_assumes_zero() -> None:
    w = tensor("w", np.ones((1, 1, 3)))
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2], output_shape=[10]
    )
    model = make_model([node], [value_info("x", [1, 1, "T"])], [value_info("y", None)], [w])
    ir = graph_from_model(model).nodes[0]
    assert ir.window[0] == WindowAxis(kernel=3, stride=2)
    assert any("input length unknown" in note for note in ir.notes)


def test_conv_transpose_same_with_symbolic_length_needs_no_length() -> None:
    w = tensor("w", np.ones((1, 1, 3)))
    bias = tensor("b", np.zeros(1))
    node = helper.make_node(
        "ConvTranspose", ["x", "w", "b"], ["y"], name="up", strides=[2], auto_pad="SAME_UPPER"
    )
    model = make_model([node], [value_info("x", [1, 1, "T"])], [value_info("y", None)], [w, bias])
    ir = graph_from_model(model).nodes[0]
    assert (ir.window[0].pads_begin, ir.window[0].pads_end, ir.notes) == (0, 1, ())
    assert ir.has_bias and ir.inputs == ("x",)


CONV_CASES = {
    "same-upper-s2-odd": ((7,), (3,), dict(strides=[2], auto_pad="SAME_UPPER")),
    "same-lower-s2-odd": ((7,), (4,), dict(strides=[2], auto_pad="SAME_LOWER")),
    "same-upper-s3": ((8,), (4,), dict(strides=[3], auto_pad="SAME_UPPER")),
    "same-lower-s1": ((6,), (4,), dict(auto_pad="SAME_LOWER")),
    "explicit-dilated": ((9,), (3,), dict(dilations=[2], pads=[2, 1])),
    "valid": ((9,), (3,), dict(strides=[2], auto_pad="VALID")),
    "2d": ((7, 6), (3, 2), dict(strides=[2, 1], pads=[1, 0, 0, 1])),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_pads_match_onnxruntime(case: str) -> None:
    lengths, kernel, attrs = CONV_CASES[case]
    model = conv_model("Conv", lengths, kernel, attrs)
    node = graph_from_model(model).nodes[0]
    assert node.kind is Kind.CONV and node.fixed_kernel is None
    expected = outer([forward_coverage(n, a) for n, a in zip(lengths, node.window, strict=True)])
    np.testing.assert_array_equal(ort_output(model, lengths), expected, err_msg=str(node.window))


def test_conv_same_with_unknown_length_and_stride_notes_the_assumption() -> None:
    w = tensor("w", np.ones((1, 1, 3)))
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], name="down", strides=[2], auto_pad="SAME_UPPER"
    )
    model = make_model([node], [value_info("x", [1, 1, None])], [value_info("y", None)], [w])
    ir = graph_from_model(model).nodes[0]
    assert (ir.window[0].pads_begin, ir.window[0].pads_end) == (0, 1)  # total 3 - 2 = 1
    assert any("multiple of the stride" in note for note in ir.notes)


@pytest.mark.parametrize(
    ("op", "kind"),
    [("AveragePool", Kind.AVG_POOL), ("MaxPool", Kind.MAX_POOL), ("LpPool", Kind.AVG_POOL)],
)
def test_pools(op: str, kind: Kind) -> None:
    node = helper.make_node(
        op, ["x"], ["y"], name="pool", kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER"
    )
    model = make_model([node], [value_info("x", [1, 1, 7, 6])], [value_info("y", None)])
    ir = graph_from_model(model).nodes[0]
    assert ir.kind is kind
    assert ir.window == (
        WindowAxis(kernel=3, stride=2, pads_begin=1, pads_end=1),
        WindowAxis(kernel=2, stride=2),
    )


def test_average_pool_same_matches_onnxruntime() -> None:
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        name="pool",
        kernel_shape=[4],
        strides=[3],
        auto_pad="SAME_UPPER",
        count_include_pad=1,
    )
    model = make_model([node], [value_info("x", [1, 1, 10])], [value_info("y", None)])
    axis = graph_from_model(model).nodes[0].window[0]
    np.testing.assert_allclose(ort_output(model, (10,)) * 4, forward_coverage(10, axis))


def test_global_pool_is_a_barrier() -> None:
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")
    model = make_model([node], [value_info("x", [1, 1, 7, 6])], [value_info("y", None)])
    assert graph_from_model(model).nodes[0].kind is Kind.BARRIER


def test_max_unpool_follows_only_x() -> None:
    pool = helper.make_node(
        "MaxPool", ["x"], ["p", "idx"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
    )
    unpool = helper.make_node(
        "MaxUnpool", ["p", "idx"], ["y"], name="unpool", kernel_shape=[2, 2], strides=[2, 2]
    )
    model = make_model([pool, unpool], [value_info("x", [1, 1, 8, 8])], [value_info("y", None)])
    node = graph_from_model(model).nodes[1]
    assert node.kind is Kind.MAX_UNPOOL and node.inputs == ("p",)
    assert node.window == (WindowAxis(kernel=2, stride=2),) * 2


def _depthwise(weight: np.ndarray) -> object:
    c = weight.shape[0]
    return conv_model(
        "Conv",
        (8, 8),
        weight.shape[2:],
        dict(pads=[1] * 4),
        c_in=c,
        c_out=c,
        group=c,
        weight=weight,
    )


def test_fixed_filter_depthwise_conv_is_detected() -> None:
    taps = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    node = graph_from_model(_depthwise(np.broadcast_to(taps, (4, 1, 3, 3)))).nodes[0]
    assert node.fixed_kernel is not None and node.fixed_kernel.dtype == np.float64
    np.testing.assert_allclose(node.fixed_kernel, taps)
    assert (node.groups, node.in_channels, node.out_channels) == (4, 4, 4)


def test_depthwise_conv_with_differing_kernels_is_not_fixed() -> None:
    weight = np.ones((4, 1, 3, 3))
    weight[2, 0, 1, 1] = 5
    assert graph_from_model(_depthwise(weight)).nodes[0].fixed_kernel is None


def test_dense_or_single_channel_conv_is_not_fixed() -> None:
    dense = conv_model("Conv", (8, 8), (3, 3), {}, c_in=4, c_out=4)
    single = conv_model("Conv", (8, 8), (3, 3), {}, c_in=1, c_out=1)
    assert graph_from_model(dense).nodes[0].fixed_kernel is None
    assert graph_from_model(single).nodes[0].fixed_kernel is None


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (dict(strides=[0, 2]), "strides must be positive, got [0, 2]"),
        (dict(strides=[-1, 2]), "strides must be positive"),
        (dict(dilations=[0, 1]), "dilations must be positive"),
        (dict(pads=[1, -1, 0, 0]), "pads must be non-negative"),
        (dict(pads=[1, 1]), "pads must have 4 values"),
        (dict(output_padding=[-1, 0]), "output_padding must be non-negative"),
        (dict(strides=[2**40, 2]), "strides is implausibly large"),
        (dict(kernel_shape=[4, 4]), "kernel_shape [4, 4] disagrees with the weight's shape"),
        (dict(kernel_shape=[0, 3]), "kernel_shape must be positive"),
        (dict(group=0), "group must be positive"),
        (dict(auto_pad="SAME"), "auto_pad must be one of"),
        (dict(output_shape=[0, 4]), "output_shape must be positive"),
    ],
)
def test_nonsense_attributes_raise_load_error(attrs: dict, message: str) -> None:
    attrs = {"kernel_shape": [3, 3], **attrs}
    w = tensor("w", np.ones((1, 1, 3, 3)))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up1", **attrs)
    model = make_model([node], [value_info("x", [1, 1, 4, 4])], [value_info("y", None)], [w])
    with pytest.raises(LoadError) as info:
        graph_from_model(model)
    assert str(info.value).startswith("node 'up1' (ConvTranspose): ")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_conv_with_a_kernel_of_unknown_size_is_a_barrier() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="dynamic")
    model = make_model(
        [node],
        [value_info("x", [1, 2, 8, 8]), value_info("w", [2, 2, "k", "k"])],
        [value_info("y", None)],
    )
    ir = graph_from_model(model).nodes[0]
    assert ir.kind is Kind.BARRIER and ir.inputs == ("x",)
    assert any("not static" in note for note in ir.notes)

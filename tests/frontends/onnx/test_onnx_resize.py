"""Resize / Upsample: defaults per opset checked against onnxruntime, scales, sizes, axes,
keep_aspect_ratio_policy, and sizes computed by torch-style Shape arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from onnx import TensorProto, helper

from deconvlint.core.ir import Kind, ResizeSpec
from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.reader import graph_from_model
from tests.support.onnx_factory import make_model, run, tensor, value_info


def source_coordinate(spec: ResizeSpec, o: int, n_in: int, n_out: int) -> float:
    scale = float(spec.scales[-1])
    mode = spec.coordinate_transformation_mode
    if mode == "asymmetric":
        return o / scale
    if mode == "align_corners":
        return 0.0 if n_out == 1 else o * (n_in - 1) / (n_out - 1)
    if mode == "pytorch_half_pixel" and n_out == 1:
        return 0.0
    return (o + 0.5) / scale - 0.5  # half_pixel, pytorch_half_pixel


ROUNDING = {
    "floor": math.floor,
    "ceil": math.ceil,
    "round_prefer_floor": lambda v: math.ceil(v - 0.5),
    "round_prefer_ceil": lambda v: math.floor(v + 0.5),
}


def reference_resize(spec: ResizeSpec, n_in: int, n_out: int) -> np.ndarray:
    """Resize of ``arange(n_in)`` along one axis, as the spec describes it."""
    out = []
    for o in range(n_out):
        x = source_coordinate(spec, o, n_in, n_out)
        if spec.mode == "nearest":
            out.append(min(max(ROUNDING[spec.nearest_mode](x), 0), n_in - 1))
        else:  # linear on a ramp is the clamped coordinate itself
            out.append(min(max(x, 0.0), n_in - 1.0))
    return np.array(out, dtype=float)


def resize_model(opset: int, scale: float, mode: str, op: str = "Resize", **attrs) -> object:
    scales = tensor("scales", [1, 1, 1, scale])
    initializers = [scales]
    if op == "Upsample" and opset < 9:
        node = helper.make_node(
            "Upsample", ["x"], ["y"], name="up", mode=mode, scales=[1.0, 1.0, 1.0, scale], **attrs
        )
        initializers = []
    elif op == "Upsample" or opset < 11:
        node = helper.make_node(op, ["x", "scales"], ["y"], name="up", mode=mode, **attrs)
    else:
        initializers.append(tensor("roi", []))
        node = helper.make_node(
            "Resize", ["x", "roi", "scales"], ["y"], name="up", mode=mode, **attrs
        )
    return make_model(
        [node],
        [value_info("x", [1, 1, 1, 7])],
        [value_info("y", None)],
        initializers,
        opset=opset,
        ir_version=7 if opset < 13 else 8,
    )


DEFAULT_CASES = [("Resize", o, m) for o in (10, 11, 13, 18, 19) for m in ("nearest", "linear")]
DEFAULT_CASES += [("Upsample", o, m) for o in (7, 9) for m in ("nearest", "linear")]


@pytest.mark.parametrize(("op", "opset", "mode"), DEFAULT_CASES)
def test_ort_defaults(op: str, opset: int, mode: str) -> None:
    """The coordinate map and rounding we report reproduce onnxruntime's output."""
    scales = [1.5, 2.5, 7 / 3, 1.7] + ([0.6, 0.45] if op == "Resize" else [])
    for scale in scales:
        model = resize_model(opset, scale, mode, op)
        node = graph_from_model(model).nodes[0]
        assert node.kind is Kind.RESIZE and node.resize is not None
        spec = node.resize
        assert spec.mode == mode and spec.input_lengths == (1, 7)
        assert spec.output_lengths == (1, math.floor(7 * scale))
        y = run(model, {"x": np.arange(7, dtype=np.float32).reshape(1, 1, 1, 7)})[0].ravel()
        np.testing.assert_allclose(
            y, reference_resize(spec, 7, len(y)), atol=1e-5, err_msg=f"scale {scale}: {spec}"
        )
        if opset >= 11:
            assert (spec.coordinate_transformation_mode, spec.nearest_mode) == (
                "half_pixel",
                "round_prefer_floor",
            )
        else:  # opset 10 and Upsample: ORT floors when upsampling, ceils when downsampling
            assert spec.coordinate_transformation_mode == "asymmetric"
            assert spec.nearest_mode == ("ceil" if scale < 1 else "floor")


def test_upsample_bilinear_reads_as_linear() -> None:
    model = resize_model(9, 2.0, "bilinear", "Upsample")
    spec = graph_from_model(model).nodes[0].resize
    assert spec is not None and spec.mode == "linear" and spec.scales == (1, 2)


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_below_one_is_refused(opset: int) -> None:
    with pytest.raises(LoadError, match=r"node 'up' \(Upsample\): Upsample scales must be >= 1"):
        graph_from_model(resize_model(opset, 0.5, "nearest", "Upsample"))


def _resize(
    inputs: list[str], initializers: list, x_shape: list, opset: int = 19, **attrs
) -> object:
    node = helper.make_node("Resize", ["x", *inputs], ["y"], name="up", **attrs)
    return make_model(
        [node], [value_info("x", x_shape)], [value_info("y", None)], initializers, opset=opset
    )


@pytest.mark.parametrize("opset", [11, 13, 18, 19])
def test_resize_with_sizes_is_exact(opset: int) -> None:
    sizes = tensor("sizes", [1, 3, 15, 12], np.int64)
    # before opset 13, roi and scales are required inputs: empty tensors when sizes is used
    empty = [tensor("roi", []), tensor("no_scales", [])] if opset < 13 else []
    inputs = ["roi", "no_scales", "sizes"] if opset < 13 else ["", "", "sizes"]
    model = _resize(
        inputs,
        [sizes, *empty],
        [1, 3, 10, 4],
        opset,
        mode="linear",
        coordinate_transformation_mode="align_corners",
    )
    spec = graph_from_model(model).nodes[0].resize
    assert spec == ResizeSpec(
        mode="linear",
        scales=(Fraction(3, 2), Fraction(3)),
        coordinate_transformation_mode="align_corners",
        input_lengths=(10, 4),
        output_lengths=(15, 12),
    )
    assert run(model, {"x": np.ones((1, 3, 10, 4), np.float32)})[0].shape == (1, 3, 15, 12)


def test_resize_scales_with_axes() -> None:
    scales = tensor("scales", [3.0])
    model = _resize(
        ["", "scales"],
        [scales],
        [1, 2, 5, 6],
        axes=[-1],
        mode="nearest",
        coordinate_transformation_mode="pytorch_half_pixel",
        nearest_mode="round_prefer_ceil",
    )
    spec = graph_from_model(model).nodes[0].resize
    assert spec is not None and spec.scales == (1, 3) and spec.output_lengths == (5, 18)
    assert (spec.coordinate_transformation_mode, spec.nearest_mode) == (
        "pytorch_half_pixel",
        "round_prefer_ceil",
    )


@pytest.mark.parametrize(
    ("policy", "sizes", "scale", "out"),
    [
        ("not_larger", [3, 100], Fraction(3, 2), (3, 5)),
        ("not_smaller", [3, 1], Fraction(3, 2), (3, 5)),
        ("stretch", [3, 5], None, (3, 5)),
    ],
)
def test_keep_aspect_ratio_policy(policy: str, sizes: list, scale, out: tuple) -> None:
    sizes_t = tensor("sizes", sizes, np.int64)
    model = _resize(
        ["", "", "sizes"],
        [sizes_t],
        [1, 1, 2, 3],
        axes=[2, 3],
        mode="nearest",
        keep_aspect_ratio_policy=policy,
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    spec = graph_from_model(model).nodes[0].resize
    expected = (Fraction(3, 2), Fraction(5, 3)) if scale is None else (scale, scale)
    assert spec is not None and spec.scales == expected and spec.output_lengths == out
    # onnxruntime maps coordinates with the common scale: floor(o / 1.5) along W
    y = run(model, {"x": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)})[0]
    assert y.shape[2:] == out
    np.testing.assert_array_equal(y[0, 0, 0], reference_resize(spec, 3, out[1]))


@pytest.mark.parametrize("mode", ["cubic", "linear"])
def test_cubic_coefficient_antialias_and_half_pixel_symmetric(mode: str) -> None:
    scales = tensor("scales", [1, 1, 0.5, 0.5])
    model = _resize(
        ["", "scales"],
        [scales],
        [1, 1, 8, 8],
        mode=mode,
        antialias=1,
        cubic_coeff_a=-0.5,
        coordinate_transformation_mode="half_pixel_symmetric",
        exclude_outside=1,
    )
    node = graph_from_model(model).nodes[0]
    assert node.resize == ResizeSpec(
        mode=mode,
        scales=(Fraction(1, 2),) * 2,
        coordinate_transformation_mode="half_pixel_symmetric",
        cubic_coeff_a=-0.5,
        antialias=True,
        input_lengths=(8, 8),
        output_lengths=(4, 4),
    )
    assert node.extra["exclude_outside"] == 1


def test_resize_of_channels_is_a_barrier() -> None:
    scales = tensor("scales", [1, 2, 2, 2])
    node = graph_from_model(_resize(["", "scales"], [scales], [1, 2, 4, 4])).nodes[0]
    assert node.kind is Kind.BARRIER and any("channel" in n for n in node.notes)


def test_scale_that_is_not_a_simple_fraction_is_unknown() -> None:
    scales = tensor("scales", [1, 1, 1.2345, 2])
    node = graph_from_model(_resize(["", "scales"], [scales], [1, 1, 8, 8])).nodes[0]
    assert node.resize is not None and node.resize.scales == (None, 2)
    assert any("not a simple fraction" in n for n in node.notes)


def torch_interpolate_model(x_shape: list, factor: float = 2.0) -> object:
    """``F.interpolate(x, scale_factor=factor)`` as torch.onnx exported it (opset 11)."""
    c = [
        tensor("idx2", 2, np.int64),
        tensor("idx3", 3, np.int64),
        tensor("factor", factor),
        tensor("zero", [0], np.int64),
        tensor("two", [2], np.int64),
        tensor("axis0", [0], np.int64),
        tensor("roi", []),
    ]
    nodes = [helper.make_node("Shape", ["x"], ["shape"])]
    for axis in ("2", "3"):
        nodes += [
            helper.make_node("Gather", ["shape", f"idx{axis}"], [f"dim{axis}"], axis=0),
            helper.make_node("Cast", [f"dim{axis}"], [f"fdim{axis}"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"fdim{axis}", "factor"], [f"scaled{axis}"]),
            helper.make_node("Floor", [f"scaled{axis}"], [f"floor{axis}"]),
            helper.make_node("Cast", [f"floor{axis}"], [f"size{axis}"], to=TensorProto.INT64),
            helper.make_node("Unsqueeze", [f"size{axis}", "axis0"], [f"vec{axis}"]),
        ]
    nodes += [
        helper.make_node("Slice", ["shape", "zero", "two"], ["nc"]),
        helper.make_node("Concat", ["nc", "vec2", "vec3"], ["sizes"], axis=0),
        helper.make_node(
            "Resize",
            ["x", "roi", "", "sizes"],
            ["y"],
            name="interp",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
    ]
    return make_model(nodes, [value_info("x", x_shape)], [value_info("y", None)], c, opset=13)


@pytest.mark.parametrize("x_shape", [[1, 3, 5, 7], ["N", 3, 5, 7], [None, None, 5, 7]])
def test_torch_style_sizes_chain_is_resolved(x_shape: list) -> None:
    model = torch_interpolate_model(x_shape)
    graph = graph_from_model(model)
    assert [n.name for n in graph.nodes] == ["interp"]  # the arithmetic is not data
    node = graph.nodes[0]
    assert node.inputs == ("x",)
    assert node.resize is not None and node.resize.scales == (2, 2)
    assert node.resize.output_lengths == (10, 14)
    assert run(model, {"x": np.ones((1, 3, 5, 7), np.float32)})[0].shape == (1, 3, 10, 14)


def test_torch_style_sizes_chain_with_symbolic_spatial_dims_is_unknown() -> None:
    node = graph_from_model(torch_interpolate_model([1, 3, "H", "W"])).nodes[0]
    assert node.kind is Kind.RESIZE and node.resize is not None
    assert node.resize.scales == (None, None)
    assert node.resize.input_lengths == (None, None)
    assert any("could not be resolved" in n for n in node.notes)


def test_scales_computed_from_sizes_divided_by_shape() -> None:
    c = [tensor("target", [1, 1, 12, 21]), tensor("roi", [])]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Cast", ["shape"], ["fshape"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["target", "fshape"], ["scales"]),
        helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="up"),
    ]
    model = make_model(nodes, [value_info("x", [1, 1, 4, 7])], [value_info("y", None)], c)
    spec = graph_from_model(model).nodes[0].resize
    assert spec is not None and spec.scales == (3, 3) and spec.output_lengths == (12, 21)


@pytest.mark.parametrize(
    ("inputs", "initializers", "message"),
    [
        (["", "scales"], [tensor("scales", [1, 1, -2, 2])], "scales must be positive"),
        (["", "", "sizes"], [tensor("sizes", [1, 1, 0, 4], np.int64)], "sizes must be positive"),
        (["", "scales"], [tensor("scales", [1, 2, 2])], "scales has 3 values for 4 resized axes"),
        ([], [], "neither scales nor sizes is given"),
    ],
)
def test_nonsense_resize_raises(inputs: list, initializers: list, message: str) -> None:
    with pytest.raises(LoadError, match=r"^node 'up' \(Resize\): " + message):
        graph_from_model(_resize(inputs, initializers, [1, 1, 4, 4]))


def test_unknown_mode_raises() -> None:
    scales = tensor("scales", [1, 1, 2, 2])
    with pytest.raises(LoadError, match="mode must be one of nearest, linear, cubic"):
        graph_from_model(_resize(["", "scales"], [scales], [1, 1, 4, 4], mode="area"))

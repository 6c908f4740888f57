"""The Keras front end on configs: Keras 2 forms, names, layer arguments, errors, weights.

The Keras 2 fixtures (``fixtures/*.json``) are written by hand, as Keras 3 cannot write them,
following real ``to_json()`` / ``model_config`` output found in public repositories:

* ``keras2_functional.json`` (``"keras_version": "2.4.0"``): tf.keras 2.4's functional form as in
  a public model JSON of that version: ``inbound_nodes`` as ``[[[layer, node, tensor, {}]]]``, a
  nested Sequential whose config lists its InputLayer and that the outer graph reads as node
  ``1`` (``[["sequential", 1, 0, {}]]`` there), BatchNormalization's ``"axis": [3]``, and
  TFOpLambda calls written flat, ``[["tf.cast_4", 0, 0, {}]]``, with tensors in their kwargs
  (``{"y": ["tf.math.reduce_sum_1", 0, 0], "name": null}``).  Added here: a shared layer, a
  Concatenate of two of its calls, a nested Functional.
* ``keras3_nested_shared.json``: written by Keras 3.15.1 (torch backend) from
  ``tests/support/keras_models.nested_shared`` (a real Keras 3 config, for the hostile-value test).
* ``keras20_sequential.json`` (``"keras_version": "2.1.2"``): Keras 2.0-2.2 wrote a Sequential's
  ``config`` as the list of its layers, the first with ``batch_input_shape`` (as a public
  ``model_from_json`` string of Keras 2.0.8 does); the layers are the DCGAN tutorial's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deconvlint.core.ir import Kind, WindowAxis
from deconvlint.errors import LoadError
from deconvlint.frontends.keras.graph import graph_from_config
from deconvlint.frontends.keras.layers import conv_transpose_axis, conv_transpose_pads

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _seq(*layers, shape=(None, 8, 8, 4)) -> dict:
    items = [{"class_name": "InputLayer", "config": {"name": "x", "batch_shape": list(shape)}}]
    return {"class_name": "Sequential", "config": {"name": "m", "layers": items + list(layers)}}


def _layer(cls: str, name: str, **cfg) -> dict:
    return {"class_name": cls, "module": "keras.layers", "config": {"name": name, **cfg}}


# --- Keras 2 forms ------------------------------------------------------------------------------


def test_keras2_functional_fixture():
    graph = graph_from_config(_load("keras2_functional.json"), name="k2")
    nodes = {n.name: n for n in graph.nodes}
    assert list(nodes) == [
        "upsampler/conv2d_transpose", "upsampler/batch_normalization", "shared", "shared#2",
        "concatenate", "tf.math.multiply", "up_sampling2d", "refine/conv2d_transpose_1",
    ]  # fmt: skip
    assert nodes["shared"].inputs == ("upsampler/batch_normalization",)
    assert nodes["shared#2"].inputs == ("shared",)
    assert nodes["concatenate"].inputs == ("shared", "shared#2")
    assert nodes["concatenate"].kind is Kind.JOIN
    assert nodes["tf.math.multiply"].kind is Kind.BARRIER
    assert nodes["upsampler/batch_normalization"].kind is Kind.POINTWISE  # axis [3]
    assert graph.inputs == ("input_1",)
    assert graph.outputs == (
        "up_sampling2d", "upsampler/batch_normalization", "refine/conv2d_transpose_1",
    )  # fmt: skip
    up = nodes["upsampler/conv2d_transpose"]
    assert up.window == (WindowAxis(4, 2, 1, 1, 1, 0),) * 2
    assert (up.in_channels, up.out_channels, up.has_bias) == (16, 8, True)
    valid = nodes["refine/conv2d_transpose_1"]
    assert valid.window == (WindowAxis(3, 2, 1, 0, 0, 1),) * 2  # valid + output_padding 1
    assert graph.shapes["refine/conv2d_transpose_1"] == (None, 34, 34, 4)
    resize = nodes["up_sampling2d"].resize
    assert (resize.mode, resize.coordinate_transformation_mode) == ("linear", "half_pixel")
    assert "up_sampling2d" not in graph.shapes  # after a TFOpLambda: unknown
    note = "Lambda layer 'tf.math.multiply': its code is not run, so a pattern is not followed "
    assert graph.report_notes == [note + "through it"]


def test_keras2_tfoplambda_waits_for_the_tensors_in_its_kwargs():
    config = _load("keras2_functional.json")
    layers = config["config"]["layers"]
    op = next(item for item in layers if item["name"] == "tf.math.multiply")
    op["inbound_nodes"] = [["concatenate", 0, 0, {"y": ["shared", 1, 0], "name": None}]]
    layers.remove(op)
    layers.insert(1, op)  # listed before the layers it reads
    graph = graph_from_config(config, name="k2")
    node = next(n for n in graph.nodes if n.name == "tf.math.multiply")
    assert node.inputs == ("concatenate", "shared#2")


def test_keras20_sequential_written_as_a_list():
    graph = graph_from_config(_load("keras20_sequential.json"), name="dcgan")
    assert [n.name for n in graph.nodes][3:] == [
        "reshape_1", "conv2d_transpose_1", "up_sampling2d_1", "conv2d_1",
    ]  # fmt: skip
    assert graph.inputs == ("input",)
    assert graph.shapes["input"] == (None, 100)
    assert graph.shapes["reshape_1"] == (None, 7, 7, 256)
    assert graph.shapes["conv2d_1"] == (None, 28, 28, 1)
    ct = graph.nodes[4]
    assert ct.window == (WindowAxis(5, 2, 1, 1, 2, 0),) * 2
    assert (ct.in_channels, ct.out_channels, ct.has_bias) == (256, 64, False)
    resize = graph.nodes[5].resize
    assert (resize.mode, resize.coordinate_transformation_mode) == ("nearest", "asymmetric")


# --- layers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "padding", "output_padding"),
    [
        (k, s, d, p, op)
        for k in (1, 2, 3, 4, 5, 7)
        for s in (1, 2, 3)
        for d in (1, 2)
        for p in ("same", "valid")
        for op in (None, *range(s))
    ],
)
def test_conv_transpose_placement_is_kerass_reference(
    kernel, stride, dilation, padding, output_padding
):
    """Keras's own reference (the JAX conversion) and output length, for every small case."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras's default backend is TensorFlow
    pytest.importorskip("keras")
    from keras.src.backend.common import backend_utils

    ref = backend_utils._convert_conv_transpose_padding_args_from_keras_to_jax(
        kernel, stride, dilation, padding, output_padding
    )
    assert conv_transpose_pads(kernel, stride, dilation, padding, output_padding) == ref
    axis = conv_transpose_axis(kernel, stride, dilation, padding, output_padding)
    n = 9
    length = backend_utils.compute_conv_transpose_output_shape(
        (1, n, 1), (kernel, 1, 1), 1, stride, padding, output_padding, "channels_last", dilation
    )[1]
    ir = (n - 1) * stride + axis.effective_kernel - axis.pads_begin - axis.pads_end
    assert ir + axis.output_padding == length


def test_channels_first_reads_spatial_axes_in_order():
    layer = _layer("Conv2DTranspose", "up", filters=4, kernel_size=[4, 5], strides=[2, 3],
                   padding="same", data_format="channels_first")  # fmt: skip
    graph = graph_from_config(_seq(layer, shape=(None, 3, 10, 12)), name="cf")
    (node,) = graph.nodes
    assert [(w.kernel, w.stride) for w in node.window] == [(4, 2), (5, 3)]
    assert node.in_channels == 3
    assert node.extra["data_format"] == "channels_first"
    assert graph.shapes["up"] == (None, 4, 20, 36)


@pytest.mark.parametrize(
    ("layer", "kind", "shape"),
    [
        (_layer("Conv1D", "c", filters=2, kernel_size=3, padding="causal", dilation_rate=2),
         Kind.CONV, (None, 8, 2)),
        (_layer("MaxPooling1D", "p", pool_size=2, strides=None, padding="valid"), Kind.MAX_POOL,
         (None, 4, 4)),
        (_layer("GlobalAveragePooling1D", "g"), Kind.BARRIER, None),
        (_layer("Softmax", "s", axis=1), Kind.BARRIER, None),
        (_layer("Softmax", "s", axis=-1), Kind.POINTWISE, (None, 8, 4)),
        (_layer("Concatenate", "j", axis=1), Kind.BARRIER, None),
        (_layer("UpSampling2D", "u", size=2, interpolation="lanczos3"), Kind.BARRIER, None),
    ],
)  # fmt: skip
def test_layer_kinds(layer, kind, shape):
    rank = 1 if layer["class_name"].endswith("1D") or layer["class_name"] == "Softmax" else 2
    start = (None, 8, 4) if rank == 1 else (None, 8, 8, 4)
    if layer["class_name"] in ("Concatenate", "UpSampling2D"):
        start = (None, 8, 8, 4)
    graph = graph_from_config(_seq(layer, shape=start), name="m")
    (node,) = graph.nodes
    assert node.kind is kind
    assert graph.shapes.get(node.name) == shape or kind is Kind.BARRIER
    if layer["class_name"] == "Conv1D":
        assert node.window == (WindowAxis(3, 1, 2, 4, 0),)


def test_same_conv_with_an_unknown_length_says_what_it_assumed():
    layer = _layer("Conv2D", "c", filters=2, kernel_size=3, strides=2, padding="same")
    graph = graph_from_config(_seq(layer, shape=(None, None, 9, 4)), name="m")
    (node,) = graph.nodes
    assert node.window[0] == WindowAxis(3, 2, 1, 0, 1)  # as if the length were even
    assert node.window[1] == WindowAxis(3, 2, 1, 1, 1)  # 9: TensorFlow pads 1 and 1
    assert "axis 0: the input length is unknown" in node.notes[0]


def test_custom_and_registered_classes_are_opaque():
    custom = {"class_name": "Blur", "module": "mymodels.layers", "registered_name": "Custom>Blur",
              "config": {"name": "blur", "taps": [1, 2, 1]}}  # fmt: skip
    unknown = {"class_name": "Conv2DTransposeWS", "config": {"name": "ws", "filters": 4}}
    graph = graph_from_config(_seq(custom, unknown), name="m")
    assert [n.kind for n in graph.nodes] == [Kind.BARRIER, Kind.BARRIER]
    assert graph.report_notes == [
        "custom layer (Blur) 'blur': its code is not run, so a pattern is not followed through it",
        "custom layer (Conv2DTransposeWS) 'ws': its code is not run, so a pattern is not "
        "followed through it",
    ]


def test_keras_ops_are_read_by_name_not_as_custom_classes():
    op = {"module": "keras.src.ops.numpy", "class_name": "Transpose", "registered_name": "Transpose",
          "config": {"name": "t", "axes": [0, 2, 1, 3]}}  # fmt: skip
    relu = {"module": "keras.src.ops.nn", "class_name": "Relu", "registered_name": "Relu",
            "config": {"name": "relu"}}  # fmt: skip
    d2s = {"module": "keras.src.ops.nn", "class_name": "DepthToSpace",
           "registered_name": "DepthToSpace", "config": {"name": "d2s", "block_size": 0}}  # fmt: skip
    graph = graph_from_config(_seq(relu, op), name="m")
    assert [n.kind for n in graph.nodes] == [Kind.POINTWISE, Kind.BARRIER]
    assert graph.nodes[1].notes == (
        "keras.ops Transpose is not modelled; a pattern is not followed through it",
    )
    assert graph.report_notes == []
    with pytest.raises(LoadError, match="block_size must be a positive integer"):
        graph_from_config(_seq(d2s), name="m")


def test_a_custom_model_class_is_not_inlined():
    inner = _seq(_layer("Conv2DTranspose", "up", filters=4, kernel_size=4, strides=2))
    inner.update({"name": "gen", "module": "mypackage.models", "registered_name": "Custom>Gen"})
    inner["config"]["name"] = "gen"
    graph = graph_from_config(_seq(inner), name="m")
    (node,) = graph.nodes
    assert node.kind is Kind.BARRIER and node.name == "gen"


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"class_name": "Dense", "config": {}}, "the top level is not a Sequential"),
        ([], "the model config is not an object"),
        (_seq(_layer("Conv2DTranspose", "up", filters=4, kernel_size=[3], strides=2)),
         "layer 'up' (Conv2DTranspose): kernel_size must have 2 values, has 1"),
        (_seq(_layer("Conv2D", "c", filters=4, kernel_size=3, strides=0)),
         "layer 'c' (Conv2D): strides must be at least 1"),
        (_seq(_layer("Conv2D", "c", filters=4, kernel_size=3, padding="full")),
         "padding must be one of valid, same"),
        (_seq(_layer("Cropping2D", "c", cropping=5)), "the cropping leaves nothing"),
        (_seq(_layer("Conv2D", "c", filters=4, kernel_size=9)),
         "layer 'c' (Conv2D) makes an empty output (None, 0, 0, 4)"),
    ],
)  # fmt: skip
def test_bad_configs_raise_one_line_load_errors(config, message):
    with pytest.raises(LoadError) as error:
        graph_from_config(config, name="bad")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def _functional(layers, inputs, outputs):
    return {"class_name": "Functional", "config": {"name": "f", "layers": layers,
            "input_layers": inputs, "output_layers": outputs}}  # fmt: skip


def test_loops_and_missing_layers_are_load_errors():
    x = {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []}
    a = {**_layer("ReLU", "a"), "name": "a", "inbound_nodes": [[["b", 0, 0, {}]]]}
    b = {**_layer("ReLU", "b"), "name": "b", "inbound_nodes": [[["a", 0, 0, {}]]]}
    with pytest.raises(LoadError, match="wait for inputs no layer makes"):
        graph_from_config(_functional([x, a, b], [["x", 0, 0]], [["b", 0, 0]]), name="f")
    c = {**_layer("ReLU", "c"), "name": "c", "inbound_nodes": [[["nowhere", 0, 0, {}]]]}
    with pytest.raises(LoadError, match="reads layer 'nowhere'"):
        graph_from_config(_functional([x, c], [["x", 0, 0]], [["c", 0, 0]]), name="f")


def test_nesting_is_bounded():
    model = _seq(_layer("ReLU", "r"))
    for k in range(40):
        model = _seq(model)
        model["config"]["name"] = f"m{k}"
    with pytest.raises(LoadError, match="nested deeper than 32"):
        graph_from_config(model, name="deep")


# --- weights ---------------------------------------------------------------------------------------


def test_variables_are_read_only_when_asked():
    calls = []
    kernel = np.arange(4 * 4 * 3 * 2, dtype=np.float32).reshape(4, 4, 3, 2)  # (kh, kw, out, in)

    def variables(path):
        calls.append(path)
        return [kernel, np.array([1.0, 2.0, 3.0], dtype=np.float32)]

    layer = _layer("Conv2DTranspose", "up", filters=3, kernel_size=4, strides=2, padding="same")
    inner = _seq(layer, shape=(None, 8, 8, 2))
    inner.update({"name": "gen"})
    inner["config"]["name"] = "gen"
    graph = graph_from_config(_seq(inner, shape=(None, 8, 8, 2)), name="m", variables=variables)
    assert calls == []
    weights = graph.nodes[0].weights()
    assert calls == [("gen", "up")]
    assert weights.kernel.shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(weights.kernel[1, 2], kernel[:, :, 2, 1])
    np.testing.assert_array_equal(weights.bias, [1.0, 2.0, 3.0])


def test_a_depthwise_blur_is_a_fixed_filter():
    taps = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16

    def variables(path):
        return [np.repeat(taps[:, :, None, None], 4, axis=2)]  # (3, 3, C=4, m=1)

    def graph(trainable):
        layer = _layer("DepthwiseConv2D", "blur", kernel_size=3, padding="same", use_bias=False,
                       trainable=trainable)  # fmt: skip
        return graph_from_config(_seq(layer), name="m", variables=variables)

    fixed = graph(False).nodes[0]
    np.testing.assert_allclose(fixed.fixed_kernel, taps)
    assert fixed.notes == () and fixed.groups == 4
    trained = graph(True).nodes[0]
    assert trained.fixed_kernel is not None and "trainable" in trained.notes[0]


def test_an_unreadable_depthwise_kernel_leaves_the_geometry():
    def variables(path):
        raise LoadError("model.weights.h5: the dataset of 'blur' is truncated")

    layer = _layer("DepthwiseConv2D", "blur", kernel_size=3, padding="same")
    graph = graph_from_config(_seq(layer), name="m", variables=variables)
    assert graph.nodes[0].kind is Kind.CONV and graph.nodes[0].fixed_kernel is None
    assert graph.notes == [
        "a depthwise kernel could not be read: model.weights.h5: the dataset of 'blur' is truncated"
    ]


def test_reading_a_config_imports_no_framework():
    code = (
        "import json, sys\n"
        "from deconvlint.frontends.keras.graph import graph_from_config\n"
        f"graph_from_config(json.load(open({str(FIXTURES / 'keras2_functional.json')!r})), "
        "name='m')\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- hostile configs --------------------------------------------------------------------------------

HOSTILE = (None, -1, 0, 10**12, True, 2.5, "x", "", [], [None], {}, {"class_name": 1}, [[[[]]]])


def _leaves(value, path=()):
    """Every position of a JSON value (dict keys' values, list items), depth first."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _replaced(config, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(config))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


@pytest.mark.parametrize(
    "fixture", ["keras2_functional.json", "keras20_sequential.json", "keras3_nested_shared.json"]
)
def test_every_hostile_value_anywhere_is_a_load_error_or_a_graph(fixture):
    """Each position of a real-shaped config replaced by each hostile value: the reader returns
    a graph or raises LoadError (one line), never another exception."""
    config = _load(fixture)
    tried = 0
    for path in _leaves(config):
        for value in HOSTILE:
            tried += 1
            try:
                graph = graph_from_config(_replaced(config, path, value), name="h")
            except LoadError as error:
                assert "\n" not in str(error), (path, value)
                continue
            assert all(isinstance(n.name, str) for n in graph.nodes), (path, value)
    assert tried > 1000

"""The Keras front end against real Keras 3 models (tests/support/keras_models.py).

Each model is built with Keras on its torch backend, its config taken as ``config.json`` holds
it, and read by :func:`graph_from_config`; the all-ones test also saves it as a real ``.keras``
and a real legacy ``.h5`` and reads both files as the CLI does (the same graph).  Then, with
all-ones weights on a ones input:

* every layer's output shape in the IR is Keras's;
* the interior of every layer's output equals deconvlint's coverage pattern at that value, on
  every channel, on the torch backend and on the JAX backend (Keras's reference placement, run
  in a subprocess); where paths of different patterns meet (a U-Net's Concatenate), each
  channel group of the concatenation is compared with its own path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("torch")

from deconvlint.core.analysis import CoveragePass  # noqa: E402
from deconvlint.core.ir import Graph, Kind  # noqa: E402
from deconvlint.frontends.keras.graph import graph_from_config  # noqa: E402
from tests.support import keras_models as km  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MODELS = {
    "dcgan": (lambda: km.dcgan_generator(linear=True, side=12), "channels_last"),
    "unet": (lambda: km.unet(linear=True), "channels_last"),
    "channels_first": (km.channels_first, "channels_first"),
    "conv1d": (km.conv1d_model, "channels_last"),
    "conv3d": (km.conv3d_model, "channels_last"),
    "zoo": (km.layer_zoo, "channels_last"),
    "resize_modes": (km.resize_modes, "channels_last"),
    "keras_ops": (km.keras_ops, "channels_last"),
    "lambda": (km.lambda_model, "channels_last"),
}


def _graph(model):
    return graph_from_config(km.model_config(model), name=model.name)


def _summary(graph) -> tuple:
    nodes = [(n.name, n.kind, n.window, n.resize, n.shift, n.block, n.inputs) for n in graph.nodes]
    return nodes, graph.inputs, graph.outputs, graph.shapes


def _graph_from_files(model, folder) -> Graph:
    """The model saved as a real ``.keras`` and a real legacy ``.h5``, each read by deconvlint's
    reader as the CLI reads it; both give the graph of the model's config, and the ``.keras``
    one is returned (the all-ones runs are then compared with what a user's file gives)."""
    from deconvlint.frontends.load import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(folder / "m.keras")
        model.save(folder / "m.h5")
    from_keras = load(str(folder / "m.keras")).graph
    expected = _summary(_graph(model))
    assert _summary(from_keras) == expected
    if importlib.util.find_spec("h5py") is not None:  # a legacy .h5 needs the keras extra
        assert _summary(load(str(folder / "m.h5")).graph) == expected
    return from_keras


def _top_level(graph) -> list[str]:
    """Nodes that are top-level layers (or ops) called once (their tensor is ``layer.output``)."""
    return [n.name for n in graph.nodes if not any(c in n.name for c in "/#:")]


def _check_all(graph, model, outputs: list[np.ndarray], names: list[str], fmt: str) -> dict:
    """Shape and interior of every named layer; returns {name: samples compared}."""
    ranges = km.clean_ranges(graph, fmt)
    compared = {}
    for name, y in zip(names, outputs, strict=True):
        assert graph.shapes.get(name) == tuple(km.tensor_of(model, name).shape), name
        assert tuple(y.shape[1:]) == graph.shapes[name][1:], name
        if name not in ranges:
            continue
        count, detail = km.compare_interior(graph, name, y, fmt, ranges)
        if count == 0 and "not one pattern" in detail:
            continue  # checked by channel group where the paths meet (test_unet_...)
        assert count > 0, detail
        compared[name] = count
    return compared


needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="the JAX backend's run needs jax"
)


@pytest.mark.slow
@needs_jax
@pytest.mark.parametrize("key", sorted(MODELS))
def test_interior_equals_pattern_on_torch_and_jax(key, tmp_path):
    build, fmt = MODELS[key]
    model = build()
    graph = _graph_from_files(model, tmp_path)
    names = [n for n in _top_level(graph) if graph.nodes and n in graph.shapes]
    if key == "lambda":  # after the Lambda a path restarts: only the layers before it
        names = ["up_a"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_out = km.run_ones(model, [km.tensor_of(model, n) for n in names])
    jax_out = km.run_on_jax(model, names)
    for name, t, j in zip(names, torch_out, jax_out, strict=True):
        np.testing.assert_allclose(t, j, rtol=2e-5, atol=1e-5, err_msg=f"{key}: {name}")
    compared_torch = _check_all(graph, model, torch_out, names, fmt)
    compared_jax = _check_all(graph, model, jax_out, names, fmt)
    assert compared_torch == compared_jax
    upsamplers = [n.name for n in graph.nodes if n.kind in (Kind.CONV_TRANSPOSE, Kind.RESIZE)]
    assert set(upsamplers) & set(compared_torch), (key, compared_torch)


def test_dcgan_generator_reads_as_the_tutorial_writes_it():
    """The tutorial's model itself (tanh, LeakyReLU): the uneven k5 s2 'same' layers."""
    keras.backend.clear_session()  # Keras's automatic names count per session
    model = km.dcgan_generator()
    graph = _graph(model)
    ups = [n for n in graph.nodes if n.kind is Kind.CONV_TRANSPOSE]
    assert [(n.name, n.out_channels, n.has_bias) for n in ups] == [
        ("conv2d_transpose", 128, False),
        ("conv2d_transpose_1", 64, False),
        ("conv2d_transpose_2", 1, False),
    ]
    assert [n.in_channels for n in ups] == [256, 128, 64]
    assert all(
        n.extra == {"library": "keras", "class_name": "Conv2DTranspose",
                    "data_format": "channels_last", "padding": "same"} for n in ups
    )  # fmt: skip
    # kernel 5 over stride 2, TensorFlow's placement: phases get 2 and 3 taps, [2, 3]
    # (the 5x5 stride-1 layer before it multiplies every count by 5 per axis)
    states = CoveragePass(graph).run().states
    (state,) = states["conv2d_transpose_1"]
    assert [p.tolist() for p in state.patterns] == [[2.0 * 5, 3.0 * 5]] * 2
    (state,) = states["conv2d_transpose_2"]
    assert [p.tolist() for p in state.patterns] == [[25.0, 40.0, 25.0, 35.0]] * 2
    assert graph.shapes["conv2d_transpose_2"] == (None, 28, 28, 1)
    assert graph.nodes[-1].op_type == "Conv2DTranspose"


def test_torch_backend_matches_the_reference_placement_keras_15():
    """Keras 3.15's torch backend crops the full output to JAX's window
    (``compute_conv_transpose_output_crops_for_torch``), so the k5 s2 'same' layer that the old
    symmetric-padding conversion placed one sample off now lands where TensorFlow puts it.  The
    old conversion is still in Keras; its placement would be the other phase."""
    from keras.src.backend.common import backend_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old_pad, old_op = backend_utils._convert_conv_transpose_padding_args_from_keras_to_torch(
            5, 2, 1, "same", None
        )
    assert (old_pad, old_op) == (2, 1)  # torch padding 2: taps 0,2,4 on phase 0: [3, 2]
    model = keras.Sequential(
        [keras.Input((16, 1)), keras.layers.Conv1DTranspose(1, 5, strides=2, padding="same")]
    )
    (y,) = km.run_ones(model)
    interior = y[0, 6:26, 0]
    assert interior[::2].tolist() == [2.0] * 10  # even outputs: 2 taps (TensorFlow: [2, 3])
    assert interior[1::2].tolist() == [3.0] * 10
    (node,) = _graph(model).nodes
    assert (node.window[0].pads_begin, node.window[0].pads_end) == (1, 2)


def test_unet_concatenate_channel_groups():
    """Where a skip meets the upsampled path, each channel group is its own path."""
    model = km.unet(linear=True)
    graph = _graph(model)
    result = CoveragePass(graph).run()
    names = ["up2", "enc2", "skip2"]
    up2, enc2, skip2 = km.run_ones(model, [km.tensor_of(model, n) for n in names])
    np.testing.assert_array_equal(skip2[..., :16], up2)
    np.testing.assert_array_equal(skip2[..., 16:], enc2)
    patterns = {tuple(p.tolist()) for s in result.states["skip2"] for p in s.patterns}
    own = {tuple(p.tolist()) for n in ("up2", "enc2") for s in result.states[n] for p in s.patterns}
    assert patterns == own
    ranges = km.clean_ranges(graph, "channels_last")
    for name, y in (("up2", up2), ("enc2", enc2)):
        count, detail = km.compare_interior(graph, name, y, "channels_last", ranges)
        assert count > 0, detail
    assert [n.kind for n in graph.nodes if n.name.startswith("skip")] == [Kind.JOIN] * 2


@needs_jax
def test_nested_and_shared_layers():
    model = km.nested_shared()
    graph = _graph(model)
    assert [n.name for n in graph.nodes] == [
        "shared", "shared#2", "upsampler/up", "upsampler#2/up", "sum", "refine/nn", "refine/blur",
    ]  # fmt: skip
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["shared#2"].inputs == ("shared",)
    assert nodes["upsampler#2/up"].inputs == ("shared#2",)
    assert nodes["sum"].inputs == ("upsampler/up", "upsampler#2/up")
    assert graph.inputs == ("x",)
    assert graph.outputs == ("refine/blur", "upsampler/up")
    refine_out, up_out = km.run_ones(model)
    assert graph.shapes["refine/blur"] == (None, *refine_out.shape[1:])
    ranges = km.clean_ranges(graph, "channels_last")
    for value, y in (("refine/blur", refine_out), ("upsampler/up", up_out)):
        count, detail = km.compare_interior(graph, value, y, "channels_last", ranges)
        assert count > 0, detail
    jax_refine, jax_up = km.run_on_jax(model)
    np.testing.assert_allclose(jax_refine, refine_out, rtol=2e-5)
    np.testing.assert_allclose(jax_up, up_out, rtol=2e-5)


def test_lambda_layer_is_opaque_with_a_note():
    model = km.lambda_model()
    config = km.model_config(model)
    graph = graph_from_config(config, name="m")
    node = next(n for n in graph.nodes if n.name == "scale")
    assert node.kind is Kind.BARRIER and node.op_type == "Lambda"
    note = "Lambda layer 'scale': its code is not run, so a pattern is not followed through it"
    assert node.notes == (note,)
    assert graph.report_notes == [note]
    assert node.inputs == ("up_a",) and graph.nodes[-1].inputs == ("scale",)
    # the shape after the Lambda comes from the keras tensor the next call saved
    for layer in config["config"]["layers"]:
        layer.pop("build_config", None)
    graph = graph_from_config(config, name="m")
    assert graph.shapes["scale"] == (None, 16, 16, 2)
    assert graph.shapes["up_b"] == (None, 32, 32, 2)


def test_several_inputs_and_outputs():
    a = keras.Input((6, 6, 2), name="a")
    b = keras.Input((12, 12, 2), name="b")
    up = keras.layers.UpSampling2D(2, name="up")(a)
    s = keras.layers.Add(name="sum")([up, b])
    t = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same", name="t")(b)
    model = keras.Model({"b": b, "a": a}, [t, s], name="two")
    graph = _graph(model)
    assert set(graph.inputs) == {"a", "b"}
    assert graph.outputs == ("t", "sum")
    assert next(n for n in graph.nodes if n.name == "sum").inputs == ("up", "b")
    assert graph.shapes["t"] == (None, 24, 24, 2)


def _variables_of(model):
    """A LayerVariables over a live model (what k19a's reader gives from a saved file)."""

    def variables(path):
        layer = model
        for name in path:
            layer = layer.get_layer(name)
        return [keras.ops.convert_to_numpy(v.value) for v in layer.weights]

    return variables


def test_weights_convert_to_the_ir_layout():
    """Random trained-like weights: the IR's LayerWeights, run with torch's own conv ops in
    the IR's (ONNX/PyTorch) layout and the IR's pads, give Keras's outputs; and a transposed
    conv's per-phase response to a constant input is the interior Keras computes."""
    import torch
    import torch.nn.functional as F

    from deconvlint.core.weights import conv_transpose_response

    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((9, 9, 3)),
            keras.layers.Conv2DTranspose(4, (5, 3), strides=(2, 3), padding="same", name="ct"),
            keras.layers.Conv2D(6, 3, padding="valid", groups=2, name="conv"),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid", name="dw"),
            keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, name="sep"),
        ]
    )
    for v in model.weights:
        v.assign(rng.normal(size=tuple(v.shape)).astype("float32"))
    graph = graph_from_config(km.model_config(model), name="w", variables=_variables_of(model))
    x = rng.normal(size=(1, 9, 9, 3)).astype("float32")
    names = [n.name for n in graph.nodes]
    outs = km.keras_outputs(model, x, names)
    t = torch.from_numpy(np.moveaxis(x, -1, 1)).double()
    for node, want in zip(graph.nodes, outs, strict=True):
        w = node.weights()
        kernel, bias = torch.from_numpy(w.kernel), torch.from_numpy(w.bias)
        if node.kind is Kind.CONV_TRANSPOSE:
            full = F.conv_transpose2d(t, kernel, bias, stride=[a.stride for a in node.window])
            crops = [(a.pads_begin, a.pads_end - a.output_padding) for a in node.window]
            t = full[:, :, crops[0][0] : full.shape[2] - crops[0][1],
                     crops[1][0] : full.shape[3] - crops[1][1]]  # fmt: skip
        else:
            t = F.conv2d(t, kernel, bias, groups=node.groups)
        np.testing.assert_allclose(np.moveaxis(t.numpy(), 1, -1), want, rtol=1e-4, atol=1e-4)
    # a constant input: the interior of the transposed conv's output is its phase response
    ct = graph.nodes[0]
    w = ct.weights()
    response = conv_transpose_response(w.kernel, w.bias, ct.window)  # (C_out, 2, 3)
    (y,) = km.keras_outputs(model, np.ones((1, 9, 9, 3), "float32"), ["ct"])
    for o in range(4, 14):
        for p in range(6, 21):
            np.testing.assert_allclose(y[0, o, p], response[:, o % 2, p % 3], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "build", [km.nested_shared, km.unet, km.layer_zoo, km.lambda_model, km.keras_ops]
)
def test_keras3_legacy_h5_config_reads_like_the_keras_config(build, tmp_path):
    """Keras 3 writes a legacy ``.h5``'s ``model_config`` in its legacy serialization; it gives
    the same graph as ``config.json`` of a ``.keras`` (keras.ops calls included, whose module
    that serialization drops)."""
    h5py = pytest.importorskip("h5py")
    model = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        legacy = json.loads(f.attrs["model_config"])
    assert "module" not in legacy["config"]["layers"][-1]  # the legacy form, not config.json's

    def summary(graph):
        nodes = [(n.name, n.kind, n.window, n.resize, n.shift, n.inputs) for n in graph.nodes]
        return nodes, graph.inputs, graph.outputs, graph.shapes, graph.report_notes

    assert summary(graph_from_config(legacy, name="m")) == summary(_graph(model))


def test_keras_ops_in_a_functional_model():
    """Keras 3 saves ``keras.ops`` calls as operations; depth_to_space is TensorFlow's DCR."""
    from deconvlint.core.weights import subpixel_channel_order

    keras.backend.clear_session()  # the ops' automatic names count per session
    model = km.keras_ops()
    graph = _graph(model)
    kinds = {n.name: (n.op_type, n.kind) for n in graph.nodes}
    assert kinds == {
        "subpixel": ("Conv2D", Kind.CONV),
        "depth_to_space": ("DepthToSpace", Kind.DEPTH_TO_SPACE),
        "resize": ("Resize", Kind.RESIZE),
        "relu": ("Relu", Kind.POINTWISE),
        "up": ("Conv2DTranspose", Kind.CONV_TRANSPOSE),
        "add": ("Add", Kind.JOIN),
    }
    d2s = next(n for n in graph.nodes if n.name == "depth_to_space")
    assert (d2s.block, d2s.depth_to_space_mode) == ((2, 2), "DCR")
    assert graph.shapes["depth_to_space"] == (None, 16, 16, 3)
    assert graph.report_notes == []
    x = np.arange(12, dtype="float32").reshape(1, 1, 1, 12)
    y = keras.ops.convert_to_numpy(keras.ops.depth_to_space(x, 2))  # (1, 2, 2, 3)
    order = subpixel_channel_order(3, (2, 2), "DCR")  # [c, i, j] -> input channel
    np.testing.assert_array_equal(np.moveaxis(y[0], -1, 0), order)


def test_a_functional_model_called_twice():
    """Keras 3 counts a nested Functional's own first node in output_layers (``['inner', 2,
    0]`` is its second call) but not in a call's arguments (``['inner', 0, 0]``)."""
    i = keras.Input((8, 8, 2))
    o = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="ct")(i)
    inner = keras.Model(i, o, name="inner")
    x = keras.Input((8, 8, 2), name="x")
    y = keras.layers.Conv2D(2, 1, name="pre")(x)
    a, b = inner(x), inner(y)
    s = keras.layers.Add(name="s")([a, b])
    model = keras.Model(x, [b, s, a], name="twice")
    config = km.model_config(model)
    assert config["config"]["output_layers"][0] == ["inner", 2, 0]
    graph = graph_from_config(config, name="twice")
    assert [(n.name, n.inputs) for n in graph.nodes] == [
        ("pre", ("x",)),
        ("inner/ct", ("x",)),
        ("inner#2/ct", ("pre",)),
        ("s", ("inner/ct", "inner#2/ct")),
    ]
    assert graph.outputs == ("inner#2/ct", "s", "inner/ct")

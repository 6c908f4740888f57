"""Real Keras 3 models (built with Keras on its torch backend) and the all-ones runs that check
the Keras front end's geometry against them.

The builders follow the models the issue names: TensorFlow's DCGAN tutorial generator
(https://www.tensorflow.org/tutorials/generative/dcgan, ``make_generator_model``), a small
functional U-Net with ``Concatenate`` skips, a model with a ``Lambda`` layer, a channels_first
model, nested and shared layers, 1-D and 3-D models.  ``linear=True`` builds the variant without
nonlinearity (no tanh, ...), so that the all-ones run measures coverage.

The all-ones model (:func:`set_ones`): every conv kernel is ``1 / (input channels it sums)`` so
a channel sum of ones is one (depthwise kernels are ones), biases are zero, batch norms are the
identity (``moving_variance = 1 - epsilon``), dense kernels ``1 / fan_in``; the input is ones.
Then the output's interior equals deconvlint's coverage pattern of the path, on every channel.

Importing this module sets ``KERAS_BACKEND=torch`` (process-wide, before Keras is imported);
:func:`run_on_jax` runs a model's config on the JAX backend in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
from keras import layers

# --- builders ------------------------------------------------------------------------------------


def dcgan_generator(linear: bool = False, side: int = 7) -> keras.Model:
    """``make_generator_model`` of TensorFlow's DCGAN tutorial, as written there (the tutorial's
    ``input_shape=(100,)`` on Dense is Keras 2; Keras 3 takes an Input).  ``side``: the 7 of
    ``Reshape((7, 7, 256))``; a larger one leaves an interior to compare (7 -> 28 leaves none
    after three 5x5 layers)."""
    model = keras.Sequential(name="generator")
    model.add(keras.Input(shape=(100,)))
    model.add(layers.Dense(side * side * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((side, side, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(
        layers.Conv2DTranspose(
            1, (5, 5), strides=(2, 2), padding="same", use_bias=False,
            activation=None if linear else "tanh",
        )
    )  # fmt: skip
    return model


def unet(linear: bool = False) -> keras.Model:
    """A two-level functional U-Net: MaxPooling down, Conv2DTranspose up, Concatenate skips."""
    act = None if linear else "relu"
    inputs = keras.Input((32, 32, 1), name="image")
    c1 = layers.Conv2D(8, 3, padding="same", activation=act, name="enc1")(inputs)
    p1 = layers.MaxPooling2D(name="pool1")(c1)
    c2 = layers.Conv2D(16, 3, padding="same", activation=act, name="enc2")(p1)
    p2 = layers.MaxPooling2D(name="pool2")(c2)
    b = layers.Conv2D(32, 3, padding="same", activation=act, name="bottleneck")(p2)
    u2 = layers.Conv2DTranspose(16, 3, strides=2, padding="same", name="up2")(b)
    m2 = layers.Concatenate(name="skip2")([u2, c2])
    d2 = layers.Conv2D(16, 3, padding="same", activation=act, name="dec2")(m2)
    u1 = layers.Conv2DTranspose(8, 2, strides=2, padding="same", name="up1")(d2)
    m1 = layers.Concatenate(name="skip1")([u1, c1])
    d1 = layers.Conv2D(8, 3, padding="same", activation=act, name="dec1")(m1)
    out = layers.Conv2D(1, 1, activation=None if linear else "sigmoid", name="head")(d1)
    return keras.Model(inputs, out, name="unet")


def lambda_model() -> keras.Model:
    """Two upsamplers with a Lambda between them (its code is bytecode in the config)."""
    inputs = keras.Input((8, 8, 2), name="x")
    up = layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="up_a")(inputs)
    scaled = layers.Lambda(lambda t: t * 1.0, name="scale")(up)
    out = layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="up_b")(scaled)
    return keras.Model(inputs, out, name="with_lambda")


def channels_first() -> keras.Model:
    """channels_first with different strides per axis, so the spatial order shows."""
    fmt = "channels_first"
    return keras.Sequential(
        [
            keras.Input((3, 10, 12), name="chw"),
            layers.Conv2DTranspose(4, (4, 5), strides=(2, 3), padding="same", data_format=fmt,
                                   name="up"),
            layers.UpSampling2D((2, 1), data_format=fmt, interpolation="bilinear", name="resize"),
            layers.Conv2D(2, 3, padding="same", data_format=fmt, name="smooth"),
            layers.ZeroPadding2D(((1, 0), (2, 1)), data_format=fmt, name="pad"),
            layers.MaxPooling2D((2, 3), strides=(1, 2), padding="same", data_format=fmt,
                                name="pool"),
            layers.Cropping2D(((0, 2), (1, 1)), data_format=fmt, name="crop"),
            layers.Conv2DTranspose(2, 3, strides=2, padding="valid", data_format=fmt,
                                   name="up_valid"),
        ],
        name="cf",
    )  # fmt: skip


def nested_shared() -> keras.Model:
    """A Sequential and a Functional model used as layers, one of them twice, and a shared
    layer called twice."""
    inner_seq = keras.Sequential(
        [keras.Input((8, 8, 4)), layers.Conv2DTranspose(4, 3, strides=2, padding="same",
                                                        name="up")],
        name="upsampler",
    )  # fmt: skip
    x_in = keras.Input((16, 16, 4), name="x_in")
    y = layers.UpSampling2D(2, name="nn")(x_in)
    z = layers.Conv2D(4, 3, padding="same", name="blur")(y)
    inner_fn = keras.Model(x_in, z, name="refine")
    x = keras.Input((8, 8, 4), name="x")
    shared = layers.Conv2D(4, 3, padding="same", name="shared")
    a = shared(x)
    b = shared(a)
    ua = inner_seq(a)
    ub = inner_seq(b)
    s = layers.Add(name="sum")([ua, ub])
    r = inner_fn(s)
    return keras.Model(x, [r, ua], name="outer")


def conv1d_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((20, 3), name="seq"),
            layers.Conv1DTranspose(4, 5, strides=2, padding="same", name="up5"),
            layers.UpSampling1D(3, name="rep"),
            layers.Conv1D(4, 3, padding="causal", name="causal"),
            layers.Conv1DTranspose(2, 3, strides=2, padding="valid", output_padding=1,
                                   name="up_valid"),
            layers.ZeroPadding1D((1, 2), name="pad"),
            layers.Cropping1D((2, 1), name="crop"),
            layers.Conv1DTranspose(2, 4, strides=3, dilation_rate=1, padding="same", name="up4"),
            layers.Conv1D(2, 3, dilation_rate=2, padding="same", name="dilated"),
            layers.MaxPooling1D(3, strides=2, padding="same", name="pool"),
            layers.DepthwiseConv1D(3, strides=2, padding="same", name="dw"),
            layers.Conv1DTranspose(2, 3, strides=1, dilation_rate=2, padding="same",
                                   name="up_dilated"),
            layers.Conv1DTranspose(2, 3, strides=3, padding="same", output_padding=2,
                                   name="up_op"),
        ],
        name="one_d",
    )  # fmt: skip


def conv3d_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((5, 6, 4, 2), name="vol"),
            layers.Conv3DTranspose(2, 3, strides=2, padding="same", name="up3"),
            layers.UpSampling3D((1, 2, 2), name="rep3"),
            layers.Conv3D(2, (3, 3, 1), padding="same", name="smooth3"),
            layers.AveragePooling3D((1, 2, 1), name="avg3"),
        ],
        name="three_d",
    )  # fmt: skip


def resize_modes() -> keras.Model:
    """Keras's interpolations: bicubic (Keys' a = -0.5 on both backends), bilinear and nearest
    at fractional scales (half-pixel centres)."""
    return keras.Sequential(
        [
            keras.Input((12, 10, 1), name="x"),
            layers.UpSampling2D(2, interpolation="bicubic", name="cubic"),
            layers.Resizing(36, 25, interpolation="bilinear", name="linear"),
            layers.Resizing(54, 50, interpolation="nearest", name="nearest"),
            layers.Resizing(81, 75, interpolation="bicubic", name="cubic_fraction"),
        ],
        name="resize_modes",
    )


def keras_ops() -> keras.Model:
    """``keras.ops`` calls in a functional model (saved as operations): a sub-pixel conv with
    ``ops.depth_to_space``, ``ops.image.resize``, elementwise ops."""
    x = keras.Input((8, 8, 4), name="x")
    c = layers.Conv2D(12, 3, padding="same", name="subpixel")(x)
    d = keras.ops.depth_to_space(c, 2)
    r = keras.ops.image.resize(d, (24, 20), interpolation="bilinear")
    a = keras.ops.nn.relu(r)
    t = layers.Conv2DTranspose(2, 3, strides=2, padding="same", name="up")(a)
    out = keras.ops.add(t, t)
    return keras.Model(x, out, name="with_ops")


def layer_zoo() -> keras.Model:
    """Most 2-D layers of the table in one chain (for output shapes and geometry)."""
    return keras.Sequential(
        [
            keras.Input((15, 13, 4), name="img"),
            layers.ZeroPadding2D(((1, 2), (0, 3)), name="zpad"),
            layers.Conv2DTranspose(4, 3, strides=2, padding="valid", name="ct_valid"),
            layers.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=0,
                                   dilation_rate=1, name="ct_op"),
            layers.Conv2DTranspose(4, 2, strides=1, padding="same", dilation_rate=2,
                                   name="ct_dil"),
            layers.Cropping2D(((2, 1), (1, 0)), name="crop"),
            layers.DepthwiseConv2D(3, padding="same", name="dw"),
            layers.SeparableConv2D(4, 3, strides=2, padding="same", name="sep"),
            layers.MaxPooling2D(3, strides=1, padding="same", name="maxp"),
            layers.AveragePooling2D(2, strides=2, padding="valid", name="avgp"),
            layers.UpSampling2D((3, 2), name="up_nn"),
            layers.Resizing(40, 30, interpolation="nearest", name="resize"),
            layers.Conv2D(4, 3, strides=2, padding="same", name="conv_s2"),
            layers.Resizing(24, 24, interpolation="bilinear", crop_to_aspect_ratio=True,
                            name="resize_crop"),
        ],
        name="zoo",
    )  # fmt: skip


# --- configs, weights, runs --------------------------------------------------------------------


def model_config(model: keras.Model) -> dict[str, Any]:
    """The model's config as ``config.json`` of a ``.keras`` holds it (a JSON round trip)."""
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))


def _ones(shape: tuple[int, ...], scale: float) -> np.ndarray:
    return np.full(shape, scale, dtype="float32")


def set_ones(model: keras.Model) -> None:
    """The all-ones model (see the module docstring), in place, on every layer."""
    for layer in _all_layers(model):
        for variable in layer.weights:
            name = variable.path.rsplit("/", 1)[-1]
            shape = tuple(variable.shape)
            cls = type(layer).__name__
            if name in ("bias", "beta", "moving_mean"):
                value = _ones(shape, 0.0)
            elif name == "moving_variance":
                value = _ones(shape, 1.0 - layer.epsilon)
            elif name == "gamma" or cls.startswith("DepthwiseConv") or name == "depthwise_kernel":
                value = _ones(shape, 1.0)
            elif cls.startswith("Conv") and "Transpose" in cls:
                value = _ones(shape, 1.0 / shape[-1])  # (k..., out, in)
            else:  # conv (k..., in/g, out), pointwise, dense (in, out): sum over axis -2
                value = _ones(shape, 1.0 / shape[-2])
            variable.assign(value)


def _all_layers(model: keras.Model) -> list[Any]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found += _all_layers(layer)
    return found


def tensor_of(model: keras.Model, name: str) -> Any:
    """The output of the top-level layer or ``keras.ops`` operation named ``name``."""
    operations = getattr(model, "operations", None) or model.layers  # Sequential: layers
    return next(op for op in operations if op.name == name).output


def ones_input(model: keras.Model) -> list[np.ndarray]:
    return [np.ones((1, *t.shape[1:]), dtype="float32") for t in model.inputs]


def run_ones(model: keras.Model, outputs: list[Any] | None = None) -> list[np.ndarray]:
    """The all-ones run of ``model`` (or of the sub-model up to ``outputs``), as numpy."""
    set_ones(model)
    probe = model if outputs is None else keras.Model(model.inputs, outputs)
    result = probe(ones_input(model) if len(model.inputs) > 1 else ones_input(model)[0])
    result = result if isinstance(result, (list, tuple)) else [result]
    return [keras.ops.convert_to_numpy(r) for r in result]


_JAX_RUN = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
import keras
sys.path.insert(0, sys.argv[3])
from tests.support.keras_models import set_ones, ones_input, tensor_of
config = json.load(open(sys.argv[1]))
model = keras.saving.deserialize_keras_object(config, safe_mode=False)
names = json.loads(sys.argv[4])
set_ones(model)
outs = [tensor_of(model, n) for n in names] if names else model.outputs
probe = keras.Model(model.inputs, outs)
xs = ones_input(model)
result = probe(xs if len(xs) > 1 else xs[0])
result = result if isinstance(result, (list, tuple)) else [result]
np.savez(sys.argv[2], *[keras.ops.convert_to_numpy(r) for r in result])
"""


def run_on_jax(model: keras.Model, layer_names: list[str] | None = None) -> list[np.ndarray]:
    """The all-ones run of the same model config on Keras's JAX backend (a subprocess), of the
    outputs of ``layer_names`` (top-level layers) or of the model."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder, "config.json")
        config.write_text(json.dumps(model_config(model)))
        out = Path(folder, "out.npz")
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
        args = [str(config), str(out), str(root), json.dumps(layer_names or [])]
        subprocess.run(
            [sys.executable, "-c", _JAX_RUN, *args], check=True, env=env, capture_output=True,
            timeout=600,
        )  # fmt: skip
        with np.load(out) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]


# --- deconvlint's pattern against a run --------------------------------------------------------


def _spatial(shape: Any, data_format: str) -> list[int] | None:
    if shape is None or len(shape) < 3:
        return None
    lengths = shape[1:-1] if data_format == "channels_last" else shape[2:]
    return list(lengths) if all(isinstance(n, int) for n in lengths) else None


def clean_ranges(graph: Any, data_format: str) -> dict[str, list[tuple[int, int, int]]]:
    """Per value and spatial axis ``(length, first, last)`` of the outputs that no border
    reaches, by the oracle's read ranges (tests/support/oracle.py) along the whole DAG; a
    barrier's output counts as clean (a path restarts there)."""
    from deconvlint.core.ir import Kind
    from tests.support.oracle import axis_node, read_range

    ranges: dict[str, list[tuple[int, int, int]]] = {}
    for value in graph.inputs:
        lengths = _spatial(graph.shapes.get(value), data_format)
        if lengths is not None:
            ranges[value] = [(n, 0, n - 1) for n in lengths]
    for node in graph.nodes:
        out = node.outputs[0]
        lengths = _spatial(graph.shapes.get(out), data_format)
        if node.kind is Kind.BARRIER:
            if lengths is not None:
                ranges[out] = [(n, 0, n - 1) for n in lengths]
            continue
        ins = [ranges.get(v) for v in node.inputs]
        if not ins or any(r is None for r in ins):
            continue
        rank = len(ins[0])
        result = []
        for a in range(rank):
            n = ins[0][a][0]
            first = max(r[a][1] for r in ins)
            last = min(r[a][2] for r in ins)
            if node.spatial_rank == 0:
                result.append((n, first, last))
                continue
            if node.kind is Kind.SHIFT and lengths is not None:  # the IR keeps no end pads
                (shift,) = axis_node(node, a).shift
                length = lengths[a]
                lo = hi = shift.offset + np.arange(length) * shift.step
            else:
                length, lo, hi = read_range(axis_node(node, a, taps=False), n)
            clean = np.flatnonzero((lo >= first) & (hi <= last))
            result.append(
                (length, int(clean[0]), int(clean[-1])) if clean.size else (length, 0, -1)
            )
        if lengths is not None:
            assert [r[0] for r in result] == lengths, (node.name, result, lengths)
        ranges[out] = result
    return ranges


def expected_interior(state: Any, ranges: list[tuple[int, int, int]]) -> np.ndarray:
    """deconvlint's pattern laid over the clean block: ``prod_a pattern_a[o_a mod T_a]``."""
    patterns = list(state.patterns) or [np.ones(1)] * len(ranges)
    block = np.ones(())
    for pattern, (_, first, last) in zip(patterns, ranges, strict=True):
        o = np.arange(first, last + 1)
        block = np.multiply.outer(block, np.asarray(pattern)[o % len(pattern)])
    return block * 2.0**state.exp


def _after_a_join(graph: Any, value: str) -> bool:
    """Is ``value`` downstream of a join (an Add of two paths sums them: a scale)?"""
    from deconvlint.core.ir import Kind

    producers = graph.producers()
    todo, seen = [value], set()
    while todo:
        node = producers.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.kind is Kind.JOIN:
            return True
        todo += list(node.inputs)
    return False


def _shape_of(pattern: np.ndarray) -> tuple[float, ...]:
    p = np.asarray(pattern, dtype=float)
    return tuple(np.round(p / p.mean(), 9))


def compare_interior(
    graph: Any, value: str, y: np.ndarray, data_format: str, ranges: dict[str, Any]
) -> tuple[int, str]:
    """``(samples compared, failure detail or "")``: the run ``y`` (batch of 1) against the one
    pattern deconvlint's coverage pass carries to ``value``, on every channel."""
    from deconvlint.core.analysis import CoveragePass

    states = CoveragePass(graph).run().states[value]
    # paths that meet at an Add carry patterns that differ in scale only (their sum is the
    # run): after a join the run is compared up to scale; patterns of different shapes are
    # not compared
    shapes = {tuple(_shape_of(p) for p in s.patterns) for s in states}
    if len(shapes) != 1:
        return 0, f"{value}: {len(shapes)} differently shaped patterns meet, not one pattern"
    state = states[0]
    up_to_scale = len(states) > 1 or _after_a_join(graph, value)
    clean = ranges[value]
    periods = [len(p) for p in state.patterns] or [1] * len(clean)
    if any(last - first + 1 < 2 * t for (_, first, last), t in zip(clean, periods, strict=True)):
        return 0, f"{value}: the interior {clean} is shorter than two periods {periods}"
    y = y[0] if data_format == "channels_last" else np.moveaxis(y[0], 0, -1)
    block = y[tuple(slice(first, last + 1) for _, first, last in clean)]
    expected = expected_interior(state, clean)
    if up_to_scale:
        block = block / block.mean(axis=tuple(range(block.ndim - 1)))
        expected = expected / expected.mean()
    for c in range(block.shape[-1]):
        if not np.allclose(block[..., c], expected, rtol=2e-5, atol=1e-5):
            bad = np.argwhere(~np.isclose(block[..., c], expected, rtol=2e-5, atol=1e-5))[0]
            at = tuple(int(b) + clean[a][1] for a, b in enumerate(bad))
            return 0, (
                f"{value}, channel {c}, output {at}: the run has {block[(*bad, c)]:g}, "
                f"deconvlint's pattern {[p.tolist() for p in state.patterns]} "
                f"(x2^{state.exp}) says {expected[tuple(bad)]:g}"
            )
    return int(block.size), ""


def keras_outputs(model: keras.Model, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """The outputs of the named top-level layers of ``model`` on ``x``, as it is (no weights
    set)."""
    probe = keras.Model(model.inputs, [tensor_of(model, n) for n in names])
    result = probe(x)
    result = result if isinstance(result, (list, tuple)) else [result]
    return [keras.ops.convert_to_numpy(r) for r in result]

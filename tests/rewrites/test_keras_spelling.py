"""Keras suggestions: real Keras layers (torch backend) keep the output shape on every input
length, and the source-mode geometry of a Keras call matches Keras's reference placement (its
JAX backend, run in a subprocess with all-ones kernels).

Grid: ``Conv1DTranspose`` with kernel 1..7, stride 1..4, ``padding`` same/valid and
``output_padding`` None or 0..stride-1 (196 layers), each on input lengths 1, 2, 3, 4 and 7;
then 2-D (channels_last and channels_first, per-axis kernels and strides) and 3-D cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported, process-wide (PROTOCOL)
keras = pytest.importorskip("keras", reason="Keras 3 is needed to build the suggested layers")
layers = keras.layers

from deconvlint.core.ir import Kind, Node, WindowAxis  # noqa: E402
from deconvlint.core.sizes import conv_transpose_length  # noqa: E402
from deconvlint.rewrites import keras as keras_rewrites  # noqa: E402
from deconvlint.rewrites import spellings  # noqa: E402
from deconvlint.source.libraries import keras_transpose_axis  # noqa: E402
from tests.frontends.onnx.test_onnx_window import transposed_coverage  # noqa: E402

LENGTHS = (1, 2, 3, 4, 7)
GRID = [
    (k, s, padding, op)
    for k in range(1, 8)
    for s in range(1, 5)
    for padding in ("same", "valid")
    for op in (None, *range(s))
]


def _node(window, *, filters=3, bias=True, data_format="channels_last", op_type="") -> Node:
    rank = len(window)
    return Node(
        "up",
        op_type or f"Conv{rank}DTranspose",
        Kind.CONV_TRANSPOSE,
        ("x",),
        ("y",),
        window=tuple(window),
        out_channels=filters,
        has_bias=bias,
        extra={"library": "keras", "data_format": data_format},
    )


def _shape(layer, spatial: tuple[int, ...], first: bool = False) -> tuple[int, ...]:
    shape = (1, 2, *spatial) if first else (1, *spatial, 2)
    out = layer(np.zeros(shape, dtype="float32"))
    return tuple(out.shape[2:] if first else out.shape[1:-1])


def _ir_length(win: WindowAxis, n: int) -> int:
    pads = win.pads_begin + win.pads_end
    return conv_transpose_length(n, win.kernel, win.stride, win.dilation, pads, win.output_padding)


def test_the_grid_is_as_documented() -> None:
    assert len(GRID) == 196


@pytest.mark.parametrize(("k", "s", "padding", "op"), GRID)
def test_conv1d_transpose_rewrite_keeps_the_length(k: int, s: int, padding: str, op) -> None:
    win = keras_transpose_axis(k, s, 1, padding, op)
    assert win is not None
    original = layers.Conv1DTranspose(1, k, strides=s, padding=padding, output_padding=op)
    node = _node([win])
    params = keras_rewrites.solve_conv_transpose(node)
    assert params is not None, f"no Keras spelling for {win}"
    assert params["kernel_size"] % s == 0
    rewrite = layers.Conv1DTranspose(1, **params)
    suggestion = eval(spellings.layer_rewrites(node)[1].code, {"keras": keras, "layers": layers})
    for n in LENGTHS:
        expected = _shape(original, (n,))
        assert (_ir_length(win, n),) == expected, f"IR length of {win} at n={n}"
        if expected[0] < 1:
            continue  # an empty output (stride 1, n=1, a crop): no layer needs to match it
        assert _shape(rewrite, (n,)) == expected, f"{params} at n={n} for {k, s, padding, op}"
        assert _shape(suggestion, (n,)) == expected, f"resize-conv at n={n} for {k, s, padding, op}"


CASES_2D = [
    # kernel, strides, padding, output_padding, data_format
    ((5, 5), (2, 2), "same", None, "channels_last"),  # the DCGAN tutorial's layer
    ((3, 3), (2, 2), "valid", None, "channels_first"),
    ((5, 3), (2, 1), "same", None, "channels_last"),
    ((3, 5), (3, 2), "valid", (1, 0), "channels_first"),
    # E = 0 on H needs output_padding, E = 1 on W needs none (an even kernel would need
    # output_padding 2 = stride): no Conv2DTranspose spelling, only the resize-convolution
    ((4, 3), (2, 2), "same", (1, 1), "channels_last"),
    ((1, 3), (2, 2), "valid", None, "channels_last"),  # kernel < stride: holes
]


@pytest.mark.parametrize(("kernel", "strides", "padding", "op", "data_format"), CASES_2D)
def test_conv2d_transpose_rewrites_keep_the_shape(
    kernel, strides, padding, op, data_format
) -> None:
    window = [
        keras_transpose_axis(k, s, 1, padding, o)
        for k, s, o in zip(kernel, strides, op or (None, None), strict=True)
    ]
    first = data_format == "channels_first"
    node = _node(window, filters=8, bias=False, data_format=data_format)
    kwargs = {"strides": strides, "padding": padding, "output_padding": op}
    original = layers.Conv2DTranspose(8, kernel, data_format=data_format, **kwargs)
    namespace = {"keras": keras, "layers": layers}
    suggestions = spellings.layer_rewrites(node)
    assert len(suggestions) == (1 if kernel == (4, 3) else 2)
    if len(suggestions) == 1:
        assert "no Conv2DTranspose with a kernel that is a multiple" in suggestions[0].title
    for suggestion in suggestions:
        assert "use_bias=False" in suggestion.code
        assert ("data_format='channels_first'" in suggestion.code) == first
        layer = eval(suggestion.code, namespace)
        for spatial in ((1, 1), (3, 2), (5, 8)):
            assert _shape(layer, spatial, first) == _shape(original, spatial, first), (
                suggestion.code,
                spatial,
            )


def test_conv3d_transpose_rewrite_keeps_the_shape() -> None:
    window = [keras_transpose_axis(3, 2, 1, "same", None)] * 3
    node = _node(window, filters=4)
    original = layers.Conv3DTranspose(4, 3, strides=2, padding="same")
    for suggestion in spellings.layer_rewrites(node):
        layer = eval(suggestion.code, {"keras": keras, "layers": layers})
        assert _shape(layer, (2, 3, 1)) == _shape(original, (2, 3, 1))


def test_the_dcgan_layer_gets_the_issue_spelling() -> None:
    window = [keras_transpose_axis(5, 2, 1, "same", None)] * 2
    (kernel, resize_conv) = spellings.layer_rewrites(_node(window, filters=64, bias=False))
    assert kernel.code == "layers.Conv2DTranspose(64, 4, strides=2, padding='same', use_bias=False)"
    assert "layers.UpSampling2D(2)," in resize_conv.code
    assert "layers.Conv2D(64, 5, padding='same', use_bias=False)" in resize_conv.code


def test_a_crop_keras_cannot_write_is_said_not_spelled() -> None:
    # a layer whose pads crop more than Keras's 'same' can (E = -2): no kernel rewrite in Keras
    win = WindowAxis(kernel=3, stride=2, pads_begin=2, pads_end=2)
    node = _node([win])
    assert keras_rewrites.solve_conv_transpose(node) is None
    (only,) = spellings.layer_rewrites(node)
    assert "no Conv1DTranspose with a kernel that is a multiple of the stride" in only.title
    layer = eval(only.code, {"keras": keras, "layers": layers})
    for n in (3, 4, 7):
        assert _shape(layer, (n,)) == (_ir_length(win, n),)
    stack = spellings.stack_rewrites([node, node])[0].code
    assert "Conv1DTranspose(" not in stack and "UpSampling1D" in stack


@pytest.mark.parametrize(
    ("k", "s", "padding"), [(3, 2, "valid"), (3, 2, "same"), (5, 3, "valid"), (4, 3, "same")]
)
def test_strided_conv_rewrite_keeps_the_length(k: int, s: int, padding: str) -> None:
    original = layers.Conv1D(2, k, strides=s, padding=padding)
    pads = (0, 0) if padding == "valid" else ((k - 1) // 2, k - 1 - (k - 1) // 2)
    node = Node(
        "down", "Conv1D", Kind.CONV, ("x",), ("y",),
        window=(WindowAxis(k, s, 1, *pads),), out_channels=2, has_bias=True,
        extra={"library": "keras", "padding": padding},
    )  # fmt: skip
    (suggestion,) = spellings.strided_rewrites(node)
    layer = eval(suggestion.code, {"keras": keras, "layers": layers})
    assert suggestion.params.get("kernel_size", 0) % s == 0
    lengths = (4, 6, 8, 9, 12) if padding == "same" else (*LENGTHS, 8)
    for n in lengths:
        if n >= k:
            assert _shape(layer, (n,)) == _shape(original, (n,)), (suggestion.code, n)


def test_resizing_gets_bilinear() -> None:
    from fractions import Fraction

    from deconvlint.core.ir import ResizeSpec

    spec = ResizeSpec("nearest", (Fraction(3, 2),) * 2, output_lengths=(48, 48))
    node = Node("resize", "Resizing", Kind.RESIZE, ("x",), ("y",), resize=spec,
                extra={"library": "keras"})  # fmt: skip
    (suggestion,) = spellings.resize_rewrites(node)
    assert suggestion.code == "layers.Resizing(48, 48, interpolation='bilinear')"
    layer = eval(suggestion.code, {"layers": layers})
    assert _shape(layer, (32, 32)) == (48, 48)


PLACEMENT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np, keras
    out = []
    for k, s, d, padding, op in json.loads(sys.argv[1]):
        layer = keras.layers.Conv1DTranspose(1, k, strides=s, padding=padding, output_padding=op,
                                             dilation_rate=d, kernel_initializer="ones",
                                             use_bias=False)
        out.append(np.asarray(layer(np.ones((1, 6, 1), "float32")))[0, :, 0].round().tolist())
    print(json.dumps(out))
    """
)


def _coverage(win: WindowAxis, n: int) -> list[int]:
    """Brute force (the ONNX window tests'): taps j of inputs i land on i*s + j*d - pads_begin."""
    return transposed_coverage(n, win).astype(int).tolist()


@pytest.mark.slow
def test_source_geometry_matches_keras_reference_placement() -> None:
    pytest.importorskip("jax", reason="Keras's reference placement is its JAX backend")
    configs = [(k, s, 1, p, op) for k, s, p, op in GRID if k <= 6]
    configs += [(k, 1, 2, p, op) for k in (2, 3) for p in ("same", "valid") for op in (None, 0)]
    proc = subprocess.run(
        [sys.executable, "-c", PLACEMENT, json.dumps(configs)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    for (k, s, d, padding, op), row in zip(configs, measured, strict=True):
        win = keras_transpose_axis(k, s, d, padding, op)
        assert win is not None
        assert _coverage(win, 6) == row, (k, s, d, padding, op, win)


@pytest.mark.parametrize(
    "builder", ["dcgan_generator", "unet", "channels_first", "conv1d_model", "conv3d_model"]
)
def test_suggestions_on_real_models_keep_each_layers_shape(builder: str) -> None:
    """End to end: a real Keras model's config through the Keras front end and the rules; every
    suggested layer (or layer sequence), built with Keras, maps the flagged layer's input shape
    to its output shape, with the layer's own filters."""
    from deconvlint.config.settings import Settings
    from deconvlint.engine import check_graph
    from deconvlint.frontends.keras.graph import graph_from_config
    from tests.support import keras_models

    model = getattr(keras_models, builder)()
    graph = graph_from_config(keras_models.model_config(model), name=builder)
    findings = check_graph(graph, Settings(select=("DL001", "DL002", "DL003")))
    assert findings, f"{builder}: expected an uneven layer"
    namespace = {"keras": keras, "layers": layers}
    checked = 0
    for finding in findings:
        for suggestion in finding.suggestions:
            if finding.rule == "DL003":  # one line per layer, under a comment naming it
                pieces = suggestion.code.split("\n# ")
                pairs = [p.lstrip("# ").split("\n", 1) for p in pieces]
            else:
                pairs = [(finding.node, suggestion.code)]
            for name, code in pairs:
                original = model.get_layer(name)
                assert f"({original.filters}, " in code, code
                built = eval(code, namespace)
                shape = (1, *original.input.shape[1:])
                out = built(np.zeros(shape, "float32"))
                assert tuple(out.shape[1:]) == tuple(original.output.shape[1:]), (name, code)
                checked += 1
    assert checked >= 2


def test_icnr_for_a_keras_subpixel_conv_removes_the_finding() -> None:
    """DL008 on a Keras sub-pixel conv (``ops.depth_to_space``, DCR) gives a Keras initializer;
    the same model built with it checks clean."""
    from deconvlint.config.settings import Settings
    from deconvlint.engine import check_graph
    from deconvlint.frontends.keras.graph import graph_from_config
    from tests.support import keras_models

    def findings(model):
        def variables(path):
            return [keras.ops.convert_to_numpy(v) for v in model.get_layer(path[-1]).weights]

        config = keras_models.model_config(model)
        graph = graph_from_config(config, name="m", variables=variables)
        return check_graph(graph, Settings(select=("DL008",)))

    keras.utils.set_random_seed(0)
    (finding,) = findings(keras_models.keras_ops())
    (suggestion,) = finding.suggestions
    assert "class ICNR(keras.initializers.Initializer)" in suggestion.code
    assert "layers.Conv2D(12, ..., kernel_initializer=ICNR(r=2)" in suggestion.code
    namespace: dict = {}
    exec(suggestion.code.split("\n# ")[0], namespace)
    x = keras.Input((8, 8, 4), name="x")
    init = namespace["ICNR"](r=2)
    c = layers.Conv2D(12, 3, padding="same", name="subpixel", kernel_initializer=init)(x)
    out = keras.ops.depth_to_space(c, 2)
    assert findings(keras.Model(x, out)) == []


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_a_strided_conv_read_from_a_keras_model_keeps_its_padding(padding: str) -> None:
    """DL006 on a Conv2D read through the Keras front end: the rewrite keeps the layer's own
    ``padding`` (a 'same' conv stays 'same', whose length ceil(n/s) holds for every input
    length; ZeroPadding of the pads solved for one length would not) and, built with Keras, gives
    the original layer's output shape on several input sizes."""
    from deconvlint.config.settings import Settings
    from deconvlint.engine import check_graph
    from deconvlint.frontends.keras.graph import graph_from_config
    from tests.support import keras_models

    inputs = keras.Input((16, 16, 2))  # two channels, as _shape feeds
    outputs = layers.Conv2D(8, 3, strides=2, padding=padding, name="down")(inputs)
    model = keras.Model(inputs, outputs)
    graph = graph_from_config(keras_models.model_config(model), name="m")
    (finding,) = check_graph(graph, Settings(select=("DL006",)))
    (suggestion,) = finding.suggestions
    assert f"padding='{padding}'" in suggestion.code
    assert ("ZeroPadding" in suggestion.code) is (padding == "valid")
    built = eval(suggestion.code, {"keras": keras, "layers": layers})
    original = model.get_layer("down")
    for n in (7, 8, 15, 16, 17):
        assert _shape(built, (n, n)) == _shape(original, (n, n)), (suggestion.code, n)

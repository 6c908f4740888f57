"""Source mode on Keras calls: the spellings (imports, aliases, positional and keyword), Keras's
own defaults and positional orders, ``# noqa``, ``--fix`` (re-parsed, re-checked, and the fixed
layer built with real Keras keeps the shape), and one CLI run."""

from __future__ import annotations

import ast
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from deconvlint.config.settings import Settings
from deconvlint.source import check_file
from deconvlint.source.calls import find_calls
from deconvlint.source.check import check_text
from deconvlint.source.layers import layer_node
from deconvlint.source.libraries import keras_transpose_axis
from tests.support.cli import cli_env, run_cli

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported, process-wide (PROTOCOL)

#: the README's source-mode example (``src/dcgan.py``), checked by tests/test_readme_console.py
README_DCGAN = """\
import tensorflow as tf
from tensorflow.keras import layers

model = tf.keras.Sequential()
model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding='same', use_bias=False))
"""


def check(code: str):
    return check_text(textwrap.dedent(code), Settings())


@pytest.mark.parametrize(
    "code",
    [
        "import keras\nup = keras.layers.Conv2DTranspose(64, 5, strides=2, padding='same')",
        "import tensorflow as tf\nup = tf.keras.layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding='same')",
        "# tf without its import\nup = tf.keras.layers.Conv2DTranspose(64, 5, 2, 'same')",
        "from keras import layers\nup = layers.Conv2DTranspose(64, 5, 2, 'same')",
        "from tensorflow.keras import layers\nup = layers.Conv2DTranspose(64, 5, strides=2, padding='SAME')",
        "from tensorflow import keras\n"
        "up = keras.layers.Conv2DTranspose(filters=64, kernel_size=5, strides=2, padding='same')",
        "from keras.layers import Conv2DTranspose as CT\nup = CT(64, 5, strides=2, padding='same')",
        "from keras import layers as L\n"
        "up = L.Conv2DTranspose(kernel_size=(5, 5), filters=64, padding='same', strides=2)",
    ],
)
def test_conv_transpose_spellings_are_read(code: str) -> None:
    (call,), skipped = find_calls(code)
    assert skipped == 0 and call.cls == "keras.Conv2DTranspose"
    outcome = check_text(code)
    (finding,) = outcome.findings
    assert (finding.rule, finding.op, finding.node) == ("DL001", "Conv2DTranspose", "2:6")
    assert finding.message.startswith("uneven overlap: taps per output phase [2, 3] on every axis")
    assert "kernel_size=4" in finding.suggestions[0].title
    kernel = finding.suggestions[0].code
    assert re.search(r"(64, |kernel_size=)(4|\(4, 4\)),", kernel) and "5" not in kernel, kernel
    assert "UpSampling2D(2)," in finding.suggestions[1].code  # with the call's own prefix


def test_keras_defaults_and_other_libraries() -> None:
    outcome = check(
        """
        import mylib
        from keras import layers
        a = layers.Conv2DTranspose(8, 3, strides=2)           # padding='valid' by default
        b = layers.Conv2DTranspose(8, 4, strides=2, padding='same')
        c = layers.Conv2DTranspose(8, 3)                      # strides=1 by default
        d = layers.Conv2DTranspose(8, k, strides=2)           # kernel not literal: skipped
        e = mylib.layers.Conv2DTranspose(8, 3, strides=2)     # not Keras
        f = layers.Conv2DTranspose(8, 3, strides=2, dilation_rate=2)  # Keras refuses it
        g = layers.Conv2DTranspose(8, 3, strides=2, output_padding=2)  # Keras refuses it
        """
    )
    assert [(f.node, f.rule) for f in outcome.findings] == [("4:5", "DL001")]
    assert (outcome.checked, outcome.skipped) == (3, 3)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # Conv3DTranspose takes data_format before output_padding
        (
            "layers.Conv3DTranspose(8, 3, 2, 'same', 'channels_first', 1)",
            ("same", 1, "channels_first"),
        ),
        (
            "layers.Conv2DTranspose(8, 3, 2, 'same', 1, 'channels_first')",
            ("same", 1, "channels_first"),
        ),
        ("layers.Conv1DTranspose(8, 3, 2, 'valid', None)", ("valid", None, "channels_last")),
    ],
)
def test_positional_orders(code: str, expected) -> None:
    padding, op, data_format = expected
    (call,), _ = find_calls("from keras import layers\n" + code)
    node = layer_node(call)
    assert node is not None and node.extra["data_format"] == data_format
    assert node.extra["library"] == "keras" and node.out_channels == 8
    assert set(node.window) == {keras_transpose_axis(3, 2, 1, padding, op)}


def test_upsampling_calls_are_read_and_even() -> None:
    outcome = check(
        """
        from keras import layers
        a = layers.UpSampling2D(2)
        b = layers.UpSampling2D(size=(2, 3), interpolation='bilinear')
        c = layers.UpSampling1D(size=4)
        d = layers.UpSampling3D((2, 2, 2), 'channels_first')
        """
    )
    assert (outcome.checked, outcome.skipped, outcome.findings) == (4, 0, [])
    (call,), _ = find_calls(
        "from keras import layers\nlayers.UpSampling2D((2, 3), None, 'bilinear')"
    )
    node = layer_node(call)
    assert node.resize.mode == "linear" and [int(s) for s in node.resize.scales] == [2, 3]


def test_noqa() -> None:
    outcome = check(
        """
        from keras import layers
        a = layers.Conv2DTranspose(8, 3, strides=2)  # noqa: DL001
        b = layers.Conv2DTranspose(8, 3, strides=2)  # noqa
        c = layers.Conv2DTranspose(8, 3, strides=2)  # noqa: DL005
        d = layers.Conv2DTranspose(
            8, 3, strides=2,
        )  # deconvlint: ignore[DL001]
        """
    )
    assert [f.node for f in outcome.findings] == ["5:5"]


def test_the_dcgan_tutorial_generator() -> None:
    outcome = check(
        """
        import tensorflow as tf
        from tensorflow.keras import layers

        def make_generator_model():
            model = tf.keras.Sequential()
            model.add(layers.Dense(7*7*256, use_bias=False, input_shape=(100,)))
            model.add(layers.Reshape((7, 7, 256)))
            model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding='same', use_bias=False))
            model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding='same', use_bias=False))
            model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding='same', use_bias=False,
                                             activation='tanh'))
            return model
        """
    )
    assert [(f.node, f.rule) for f in outcome.findings] == [("10:15", "DL001"), ("11:15", "DL001")]
    first = outcome.findings[0].suggestions
    assert first[0].code == (
        "model.add(layers.Conv2DTranspose(64, (4, 4), strides=(2, 2), padding='same', use_bias=False))"
    )
    assert "layers.Conv2D(64, 5, padding='same', use_bias=False)" in first[1].code


FIXABLE = """\
import keras
from keras import layers

a = layers.Conv2DTranspose(8, 5, 2, 'same')  # positional
b = keras.layers.Conv2DTranspose(filters=8, kernel_size=(3, 3), strides=(2, 2))
c = layers.Conv1DTranspose(8, 3, strides=2, padding='same', output_padding=0)
d = layers.Conv2DTranspose(
    8,
    3,
    strides=(2, 1),
    padding='valid',
    output_padding=(1, 0),
)
e = layers.Conv3DTranspose(4, 3, strides=2, padding='same', data_format='channels_first')
"""
NAMES = "abcde"


def _shapes(text: str) -> dict[str, tuple[int, ...]]:
    """Build the file's layers with real Keras and run each on a few inputs."""
    namespace: dict = {}
    exec(compile(text, "fixed.py", "exec"), namespace)
    shapes = {}
    for name in NAMES:
        layer = namespace[name]
        rank = len(layer.kernel_size)
        first = layer.data_format == "channels_first"
        for n in (1, 2, 5):
            shape = (
                (1, 2, *(n + i for i in range(rank)))
                if first
                else (1, *(n + i for i in range(rank)), 2)
            )
            shapes[f"{name}{n}"] = tuple(layer(np.zeros(shape, "float32")).shape)
    return shapes


def test_fix_keeps_the_style_and_keras_keeps_the_shape(tmp_path: Path) -> None:
    pytest.importorskip("keras", reason="the fixed layers are built with Keras")
    path = tmp_path / "model.py"
    path.write_text(FIXABLE)
    outcome = check_file(path, fix=True)
    assert outcome.unsafe_hidden == 5 and path.read_text() == FIXABLE  # kernel fixes are unsafe
    outcome = check_file(path, fix=True, unsafe_fixes=True)
    fixed = path.read_text()
    assert outcome.fixed == 5 and outcome.result.findings == []
    ast.parse(fixed)
    assert check_text(fixed).findings == []
    lines = fixed.splitlines()
    assert lines[3] == "a = layers.Conv2DTranspose(8, 4, 2, 'same')  # positional"
    assert lines[4] == (
        "b = keras.layers.Conv2DTranspose(filters=8, kernel_size=(2, 2), strides=(2, 2), "
        "output_padding=1)"
    )
    # (3, 3) valid with output_padding (1, 0) is (4, 3) valid with none: the same lengths
    assert (
        "    (4, 3),\n    strides=(2, 1),\n    padding='valid',\n    output_padding=None,\n)"
        in fixed
    )
    assert _shapes(fixed) == _shapes(FIXABLE)


def test_cli_on_a_keras_file(tmp_path: Path) -> None:
    path = tmp_path / "gen.py"
    path.write_text(
        "from tensorflow.keras import layers\n"
        "up = layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding='same', use_bias=False)\n"
    )
    proc = run_cli("gen.py", cwd=tmp_path, env=cli_env())
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("gen.py:2:6: DL001 [warning] uneven overlap: taps per output")
    assert (
        "  suggestion: Conv2DTranspose(kernel_size=4, strides=2, padding='same'): kernel a "
        "multiple of the stride, same output size\n"
        "      up = layers.Conv2DTranspose(64, (4, 4), strides=(2, 2), padding='same', "
        "use_bias=False)\n"
    ) in proc.stdout
    proc = run_cli("--fix", "--unsafe-fixes", "gen.py", cwd=tmp_path, env=cli_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "layers.Conv2DTranspose(64, (4, 4), strides=(2, 2)" in path.read_text()
    assert run_cli("gen.py", cwd=tmp_path, env=cli_env()).returncode == 0


CHAIN = """\
import keras
from keras import layers

generator = keras.Sequential([
    layers.Conv2DTranspose(64, 3, strides=2, padding='same'),
    layers.BatchNormalization(),
    layers.LeakyReLU(),
    layers.Conv2DTranspose(32, 3, strides=2, padding='same'),
    layers.Activation('tanh'),
], name='generator')
broken = keras.Sequential(layers=[
    layers.Conv2DTranspose(8, 4, strides=3, padding='same'),
    layers.Dense(4),
    layers.Conv2DTranspose(8, 4, strides=3, padding='same'),
])
spread = keras.Sequential([*blocks, layers.Conv2DTranspose(8, 4, strides=3, padding='same')])
"""


def test_a_keras_sequential_list_is_a_chain(tmp_path: Path) -> None:
    outcome = check(CHAIN)
    found = [(f.node, f.rule) for f in outcome.findings]
    # norms and activations pass the pattern; Dense breaks the chain; a spread list is no chain
    assert found == [
        ("5:5", "DL001"),
        ("8:5", "DL001"),
        ("8:5", "DL003"),
        ("12:5", "DL001"),
        ("14:5", "DL001"),
        ("16:37", "DL001"),
    ]
    stack = next(f for f in outcome.findings if f.rule == "DL003").suggestions[0].code
    assert stack == (
        "# line 5\nlayers.Conv2DTranspose(64, 4, strides=2, padding='same'),\n"
        "# line 8\nlayers.Conv2DTranspose(32, 4, strides=2, padding='same'),"
    )
    path = tmp_path / "gen.py"
    path.write_text(CHAIN)
    assert check_file(path, fix=True, unsafe_fixes=True).result.findings == []
    assert check_text(path.read_text()).findings == []

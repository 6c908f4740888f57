"""Source mode on Flax and JAX calls: ``flax.linen``/``flax.nnx`` ``ConvTranspose`` and
``jax.image.resize`` spellings (imports, aliases, positional and keyword), Flax's defaults,
``# noqa``, ``--fix`` (re-parsed, re-checked, and the fixed module built with real Flax keeps
the shape), and one CLI run."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from deconvlint.config.settings import Settings
from deconvlint.source import check_file
from deconvlint.source.calls import find_calls
from deconvlint.source.check import check_text
from deconvlint.source.layers import layer_node
from deconvlint.source.libraries import flax_transpose_axis
from tests.support.cli import cli_env, run_cli

#: the README's source-mode example (``src/up_flax.py``), checked by tests/test_readme_console.py
README_FLAX = """\
import flax.linen as nn


class Up(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.ConvTranspose(features=64, kernel_size=(3, 3), strides=(2, 2))(x)
"""


def check(code: str):
    return check_text(textwrap.dedent(code), Settings())


@pytest.mark.parametrize(
    ("code", "key"),
    [
        (
            "import flax.linen as nn\nnn.ConvTranspose(features=32, kernel_size=(3, 3), strides=(2, 2))",
            "linen",
        ),
        ("from flax import linen as nn\nnn.ConvTranspose(32, (3, 3), (2, 2), 'SAME')", "linen"),
        ("import flax\nflax.linen.ConvTranspose(32, kernel_size=(3, 3), strides=2)", "linen"),
        ("from flax.linen import ConvTranspose\nConvTranspose(32, (3, 3), 2)", "linen"),
        ("from flax import nnx\nnnx.ConvTranspose(16, 32, (3, 3), 2, rngs=rngs)", "nnx"),
        (
            "from flax import nnx\nnnx.ConvTranspose(in_features=16, out_features=32, kernel_size=(3, 3), "
            "strides=(2, 2), padding='SAME', rngs=nnx.Rngs(0))",
            "nnx",
        ),
        (
            "import flax.nnx\nflax.nnx.ConvTranspose(16, 32, kernel_size=(3, 3), strides=(2, 2), rngs=r)",
            "nnx",
        ),
    ],
)
def test_conv_transpose_spellings_are_read(code: str, key: str) -> None:
    (call,), skipped = find_calls(code)
    assert skipped == 0 and call.cls == f"flax.{key}.ConvTranspose"
    node = layer_node(call)
    assert node.extra["library"] == f"flax.{key}" and node.out_channels == 32
    assert set(node.window) == {flax_transpose_axis(3, 2, 1, "SAME")}
    (finding,) = check_text(code).findings
    assert (finding.rule, finding.op, finding.node) == ("DL001", "ConvTranspose", "2:1")
    assert finding.suggestions[0].title.startswith(
        "ConvTranspose(kernel_size=(4, 4), strides=(2, 2)"
    )
    assert "(4, 4)" in finding.suggestions[0].code and "(3, 3)" not in finding.suggestions[0].code
    assert "jax.image.resize(x, " in finding.suggestions[1].code


def test_flax_defaults_and_what_is_not_read() -> None:
    outcome = check(
        """
        import flax.linen as nn
        a = nn.ConvTranspose(8, (3, 3))                        # strides=None: 1
        b = nn.ConvTranspose(8, (4, 4), (2, 2))                # padding='SAME', even kernel
        c = nn.ConvTranspose(8, 3, 2)                           # an int kernel_size is 1-D
        d = nn.ConvTranspose(8, (3, 3), (2, 2), 'CIRCULAR')     # not modelled: skipped
        e = nn.ConvTranspose(8, (3, 3), (2, 2), kernel_dilation=2, padding=((2, 2), (2, 2)))
        f = nn.ConvTranspose(8, (k, k), (2, 2))                 # not literal: skipped
        """
    )
    assert [(f.node, f.rule) for f in outcome.findings] == [("5:5", "DL001"), ("7:5", "DL002")]
    assert outcome.findings[0].message.endswith("(kernel 3 is not a multiple of stride 2)")
    assert "shares a factor 2" in outcome.findings[1].message
    assert (outcome.checked, outcome.skipped) == (4, 2)
    # torch's conventional nn: nn.ConvTranspose is not a torch class
    assert find_calls("nn.ConvTranspose(8, (3, 3), (2, 2))") == ([], 0)


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (
            "import jax\ny = jax.image.resize(x, (b, int(h * 1.5), int(w * 1.5), c), method='nearest')",
            "DL005",
        ),
        ("import jax\ny = jax.image.resize(x, (b, h * 3 // 2, w * 3 // 2, c), 'nearest')", "DL005"),
        (
            "from jax import image\ny = image.resize(x, shape=(n, round(1.5 * h), w, c), method='nearest')",
            "DL005",
        ),
        ("import jax\ny = jax.image.resize(x, (b, h * 2, w * 2, c), 'nearest')", None),
        ("import jax\ny = jax.image.resize(x, (b, int(h * 1.5), int(w * 1.5), c), 'linear')", None),
    ],
)
def test_jax_resize(code: str, rule: str | None) -> None:
    (call,), skipped = find_calls(code)
    assert skipped == 0 and call.cls == "jax.image.resize"
    outcome = check_text(code)
    assert [f.rule for f in outcome.findings] == ([rule] if rule else [])
    if rule:
        (suggestion,) = outcome.findings[0].suggestions
        assert "'nearest'" not in suggestion.code and "'linear'" in suggestion.code


def test_jax_resize_by_named_sizes_is_skipped() -> None:
    assert find_calls("import jax\njax.image.resize(x, (b, size, size, c), 'nearest')") == ([], 1)
    assert find_calls("import jax\njax.image.resize(x, shape, 'nearest')") == ([], 1)


def test_noqa() -> None:
    outcome = check(
        """
        import jax
        import flax.linen as nn
        a = nn.ConvTranspose(8, (3, 3), (2, 2))  # noqa: DL001
        b = nn.ConvTranspose(8, (3, 3), (2, 2))  # noqa
        c = jax.image.resize(x, (1, h * 1.5, w * 1.5, 3), 'nearest')  # noqa: DL001
        d = jax.image.resize(x, (1, h * 1.5, w * 1.5, 3), 'nearest')  # noqa: DL005
        """
    )
    assert [(f.node, f.rule) for f in outcome.findings] == [("6:5", "DL005")]


FIXABLE = """\
import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import nnx


class Up(nn.Module):
    @nn.compact
    def __call__(self, x):
        a = nn.ConvTranspose(8, (3, 3), (2, 2))(x)  # positional
        b = nn.ConvTranspose(features=8, kernel_size=(5, 3), strides=(2, 1), padding='VALID')(x)
        c = nn.ConvTranspose(
            features=8,
            kernel_size=(3, 3),
            strides=(2, 2),
            padding=((1, 1), (0, 2)),
            use_bias=False,
        )(x)
        d = jax.image.resize(x, (x.shape[0], int(x.shape[1] * 1.5), int(x.shape[2] * 1.5), 2), 'nearest')
        return a, b, c, d


def nnx_layer(rngs):
    return nnx.ConvTranspose(2, 8, (3, 3), 2, padding='VALID', rngs=rngs)
"""


def _shapes(text: str) -> list[tuple[int, ...]]:
    jax = pytest.importorskip("jax")
    nnx = pytest.importorskip("flax.nnx")
    namespace: dict = {}
    exec(compile(text, "fixed.py", "exec"), namespace)
    shapes = []
    for h, w in ((1, 1), (2, 3), (4, 4)):
        x = jax.numpy.ones((1, h, w, 2))
        outs, _ = namespace["Up"]().init_with_output(jax.random.PRNGKey(0), x)
        shapes += [o.shape for o in outs]
        shapes.append(namespace["nnx_layer"](nnx.Rngs(0))(x).shape)
    return shapes


def test_fix_keeps_the_style_and_flax_keeps_the_shape(tmp_path: Path) -> None:
    pytest.importorskip("flax.linen", reason="the fixed modules are built with Flax")
    path = tmp_path / "model.py"
    path.write_text(FIXABLE)
    outcome = check_file(path, fix=True)  # only the safe fix: the resize's method
    assert outcome.fixed == 1 and outcome.unsafe_hidden == 4
    assert "* 1.5), 2), 'linear')" in path.read_text()  # in the call's own quotes
    outcome = check_file(path, fix=True, unsafe_fixes=True)
    fixed = path.read_text()
    assert outcome.fixed == 4 and outcome.result.findings == []
    ast.parse(fixed)
    assert check_text(fixed).findings == []
    assert "a = nn.ConvTranspose(8, (4, 4), (2, 2))(x)  # positional" in fixed
    assert "nn.ConvTranspose(features=8, kernel_size=(4, 3), strides=(2, 1), padding=" in fixed
    assert "            use_bias=False,\n        )(x)" in fixed
    assert _shapes(fixed) == _shapes(FIXABLE)


def test_cli_on_a_flax_file(tmp_path: Path) -> None:
    path = tmp_path / "gen.py"
    path.write_text(
        "import flax.linen as nn\n"
        "up = nn.ConvTranspose(features=64, kernel_size=(3, 3), strides=(2, 2))\n"
    )
    proc = run_cli("gen.py", cwd=tmp_path, env=cli_env())
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("gen.py:2:6: DL001 [warning] uneven overlap: taps per output")
    assert (
        "      up = nn.ConvTranspose(features=64, kernel_size=(4, 4), strides=(2, 2))\n"
        in proc.stdout
    )
    proc = run_cli("--fix", "--unsafe-fixes", "gen.py", cwd=tmp_path, env=cli_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run_cli("gen.py", cwd=tmp_path, env=cli_env()).returncode == 0

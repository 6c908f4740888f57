"""Flax suggestions: real ``flax.linen``/``flax.nnx`` modules (JAX on CPU) keep the output shape
on every input length, and the source-mode geometry of a Flax call matches Flax's placement
(a real run with all-ones kernels).

Grid: ``ConvTranspose`` 1-D with kernel 1..6, stride 1..4, dilation 1..2 and padding
``'SAME'``, ``'VALID'``, ``1``, ``(0, 0)``, ``(1, 2)``, ``(2, 1)``, ``(3, 3)`` (336 layers; the
ones whose padding puts zeros before the first tap are not modelled: source mode skips those
calls, tested on their own), each on
input lengths 1..5 and 8; then 2-D and ``nnx`` cases.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is needed to build the suggested Flax modules")
nn = pytest.importorskip("flax.linen", reason="Flax is needed to build the suggested modules")
nnx = pytest.importorskip("flax.nnx", reason="Flax is needed to build the suggested modules")
import jax.numpy as jnp  # noqa: E402

from deconvlint.core import geometry as geo  # noqa: E402
from deconvlint.core.ir import Kind, Node, ResizeSpec, WindowAxis  # noqa: E402
from deconvlint.core.sizes import conv_transpose_length  # noqa: E402
from deconvlint.rewrites import flax as flax_rewrites  # noqa: E402
from deconvlint.rewrites import spellings  # noqa: E402
from deconvlint.source.libraries import flax_padding, flax_transpose_axis  # noqa: E402
from tests.frontends.onnx.test_onnx_window import transposed_coverage  # noqa: E402

LENGTHS = (1, 2, 3, 4, 5, 8)
PADDINGS = ("SAME", "VALID", 1, ((0, 0),), ((1, 2),), ((2, 1),), ((3, 3),))
GRID = [(k, s, d, p) for k in range(1, 7) for s in range(1, 5) for d in (1, 2) for p in PADDINGS]


def _axis(k: int, s: int, d: int, padding) -> WindowAxis | None:
    (per_axis,) = flax_padding(padding, 1)
    return flax_transpose_axis(k, s, d, per_axis)


def _node(window, *, features=3, library="flax.linen", bias=True, cin=None) -> Node:
    return Node(
        "3:6",
        "ConvTranspose",
        Kind.CONV_TRANSPOSE,
        ("x",),
        ("y",),
        window=tuple(window),
        in_channels=cin,
        out_channels=features,
        has_bias=bias,
        extra={"library": library},
    )


def _shape(module, spatial: tuple[int, ...]) -> tuple[int, ...]:
    x = jax.ShapeDtypeStruct((1, *spatial, 2), jnp.float32)
    out = jax.eval_shape(lambda v: module.init_with_output(jax.random.PRNGKey(0), v)[0], x)
    return tuple(out.shape[1:-1])


class _Code(nn.Module):
    """Runs a suggestion's ``x = ...`` lines inside a compact module, as it would be used."""

    code: str

    @nn.compact
    def __call__(self, x):
        namespace = {"jax": jax, "nn": nn, "x": x}
        exec(self.code, namespace)
        return namespace["x"]


def _ir_length(win: WindowAxis, n: int) -> int:
    pads = win.pads_begin + win.pads_end
    return conv_transpose_length(n, win.kernel, win.stride, win.dilation, pads, win.output_padding)


def _coverage(win: WindowAxis, n: int) -> list[int]:
    """Brute force (the ONNX window tests'): taps j of inputs i land on i*s + j*d - pads_begin."""
    if _ir_length(win, n) < 1:
        return []  # JAX gives an empty output where the crop exceeds the full length
    return transposed_coverage(n, win).astype(int).tolist()


MODELLED = [case for case in GRID if _axis(*case) is not None]
UNMODELLED = [case for case in GRID if _axis(*case) is None]


def test_the_grid_is_as_documented() -> None:
    assert len(GRID) == 336
    assert len(MODELLED) == 288 and len(UNMODELLED) == 48


def test_the_unmodelled_paddings_put_zeros_before_the_first_tap_and_are_skipped(tmp_path) -> None:
    """The 48 grid layers source mode does not model: a real all-ones run shows why (its first
    output sample gets no tap), and the source checker counts the call as skipped, no finding."""
    from deconvlint.source import check_file

    for k, s, d, padding in UNMODELLED:
        module = nn.ConvTranspose(
            features=1, kernel_size=(k,), strides=(s,), padding=padding, kernel_dilation=(d,),
            use_bias=False, kernel_init=nn.initializers.ones,
        )  # fmt: skip
        out, _ = module.init_with_output(jax.random.PRNGKey(0), jnp.ones((1, 6, 1)))
        assert float(np.asarray(out)[0, 0, 0]) == 0.0, (k, s, d, padding)
        path = tmp_path / "model.py"
        path.write_text(
            "import flax.linen as nn\n"
            f"nn.ConvTranspose(features=1, kernel_size=({k},), strides=({s},), "
            f"padding={padding!r}, kernel_dilation=({d},))\n"
        )
        outcome = check_file(path)
        assert (outcome.checked, outcome.skipped) == (0, 1), (k, s, d, padding)
        assert not outcome.result.findings


@pytest.mark.parametrize(("k", "s", "d", "padding"), MODELLED)
def test_conv_transpose_rewrite_keeps_the_length(k: int, s: int, d: int, padding) -> None:
    win = _axis(k, s, d, padding)
    assert win is not None
    kwargs = {"kernel_size": (k,), "strides": (s,), "padding": padding, "kernel_dilation": (d,)}
    original = nn.ConvTranspose(features=1, **kwargs)
    node = _node([win])
    params = flax_rewrites.solve_conv_transpose(node)
    assert params["kernel_size"][0] % s == 0
    rewrite = nn.ConvTranspose(features=1, **params)
    kernel_code, resize_code = (s.code for s in spellings.layer_rewrites(node))
    assert kernel_code.startswith("nn.ConvTranspose(features=3, ")
    resize_conv = _Code(resize_code)
    for n in LENGTHS:
        expected = _shape(original, (n,))
        assert (max(_ir_length(win, n), 0),) == expected, f"IR length of {win} at n={n}"
        if expected[0] < 1:
            continue
        assert _shape(rewrite, (n,)) == expected, (params, n)
        assert _shape(resize_conv, (n,)) == expected, (resize_code, n)


@pytest.mark.parametrize(("k", "s", "d", "padding"), MODELLED)
def test_source_geometry_matches_flax_placement(k: int, s: int, d: int, padding) -> None:
    win = _axis(k, s, d, padding)
    assert win is not None
    module = nn.ConvTranspose(
        features=1,
        kernel_size=(k,),
        strides=(s,),
        padding=padding,
        kernel_dilation=(d,),
        use_bias=False,
        kernel_init=nn.initializers.ones,
    )
    x = jnp.ones((1, 6, 1))
    out, _ = module.init_with_output(jax.random.PRNGKey(0), x)
    assert np.asarray(out)[0, :, 0].round().astype(int).tolist() == _coverage(win, 6)


@pytest.mark.parametrize(
    ("kernel", "strides", "padding"),
    [((3, 3), (2, 2), "SAME"), ((5, 3), (2, 1), "VALID"), ((3, 4), (3, 2), ((1, 1), (0, 2)))],
)
def test_2d_linen_rewrites_keep_the_shape(kernel, strides, padding) -> None:
    per_axis = flax_padding(padding, 2)
    window = [
        flax_transpose_axis(k, s, 1, p) for k, s, p in zip(kernel, strides, per_axis, strict=True)
    ]
    node = _node(window, features=8, bias=False)
    original = nn.ConvTranspose(features=8, kernel_size=kernel, strides=strides, padding=padding)
    kernel_rewrite, resize_conv = spellings.layer_rewrites(node)
    assert "use_bias=False" in kernel_rewrite.code
    rewrite = eval(kernel_rewrite.code, {"nn": nn})
    for spatial in ((1, 1), (3, 2), (5, 8)):
        expected = _shape(original, spatial)
        assert _shape(rewrite, spatial) == expected
        assert _shape(_Code(resize_conv.code), spatial) == expected


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(3, 2, "SAME"), (3, 2, "VALID"), (5, 3, 1)]
)
def test_nnx_rewrites_keep_the_shape(kernel: int, stride: int, padding) -> None:
    (per_axis,) = flax_padding(padding, 1)
    win = flax_transpose_axis(kernel, stride, 1, per_axis)
    node = _node([win], features=4, library="flax.nnx", cin=2)
    rngs = nnx.Rngs(0)
    original = nnx.ConvTranspose(2, 4, (kernel,), stride, padding=padding, rngs=rngs)
    kernel_rewrite, resize_conv = spellings.layer_rewrites(node)
    assert (
        kernel_rewrite.code.startswith("nnx.ConvTranspose(2, 4, ")
        and "rngs=rngs" in kernel_rewrite.code
    )
    rewrite = eval(kernel_rewrite.code, {"nnx": nnx, "rngs": rngs})
    for n in (2, 3, 5):
        x = jnp.ones((1, n, 2))
        expected = original(x).shape
        assert rewrite(x).shape == expected
        namespace = {"nnx": nnx, "jax": jax, "rngs": rngs, "in_features": 2, "x": x}
        exec(resize_conv.code, namespace)
        assert namespace["x"].shape == expected, resize_conv.code


def test_stack_rewrite_is_flax_code() -> None:
    win = flax_transpose_axis(3, 2, 1, "SAME")
    (stack,) = spellings.stack_rewrites([_node([win, win]), _node([win, win])])
    assert stack.code.count("nn.ConvTranspose(features=3, kernel_size=(4, 4)") == 2


@pytest.mark.parametrize("scale", [Fraction(3, 2), Fraction(5, 3), Fraction(2, 3)])
def test_jax_nearest_resize_placement_and_rewrite(scale: Fraction) -> None:
    """``jax.image.resize(..., 'nearest')`` copies each input as often as the IR's nearest
    footprint says (half_pixel, round_prefer_ceil), and the linear rewrite keeps the shape."""
    m = 6 * scale.denominator
    n = int(m * scale)
    spec = ResizeSpec("nearest", (scale,), "half_pixel", "round_prefer_ceil")
    out = np.asarray(jax.image.resize(jnp.arange(m, dtype=jnp.float32), (n,), "nearest"))
    copies = np.bincount(out.astype(int), minlength=m)
    pattern = geo.nearest_fanout(spec, 0)
    period = len(pattern)
    interior = copies[period : m - period]
    assert sorted(set(interior.tolist())) == sorted(set(np.asarray(pattern).tolist()))
    whole = period * (len(interior) // period)  # whole periods from input index `period` on
    assert interior[:whole].tolist() == np.resize(np.asarray(pattern), whole).tolist()
    node = Node("2:5", "resize", Kind.RESIZE, ("x",), ("y",), resize=spec, extra={"library": "jax"})
    (suggestion,) = spellings.resize_rewrites(node)
    assert suggestion.code == "jax.image.resize(x, shape, method='linear')"
    x, shape = jnp.ones((1, m, m, 1)), (1, n, n, 1)
    assert eval(suggestion.code, {"jax": jax, "x": x, "shape": shape}).shape == shape

"""Hypothesis strategies that write chain specs (the language of :mod:`deconvlint.core.chainspec`).

Strategies produce the *text* of a layer or chain, so a failing example shrinks to a spec a
person can paste: ``parse_chain("ConvTranspose1d(k=3, s=2, p=1, pe=0, op=1, d=1)")``.  What the
chain language cannot write (ONNX-only resize modes, arbitrary fixed kernels) comes as IR:
``resize_spec`` and ``fixed_kernel_conv``.  Sizes stay modest so that the brute-force oracle
(``tests/support/oracle.py``) runs in milliseconds.

>>> from hypothesis import find
>>> find(conv_transpose_layer(1), lambda spec: "s=3" in spec)
'ConvTranspose1d(k=1, s=3, p=0, pe=0, op=0, d=1)'
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import strategies as st

from deconvlint.core.ir import Kind, Node, ResizeSpec, WindowAxis

#: Scales of nearest upsampling, integer and fractional (numerator = new period factor).
NEAREST_SCALES = ("2", "3", "3/2", "5/2", "4/3", "5/3", "7/4")
#: Blur taps (all but (1, 2) have the [1,1] zero-order-hold factor, which takes out period 2).
BLUR_TAPS = ((1, 1), (1, 2, 1), (1, 3, 3, 1), (1, 4, 6, 4, 1), (1, 2))


def _axis_text(values: list[Any]) -> str:
    """One value for all axes when they agree, else a per-axis tuple."""
    if len(set(values)) == 1:
        return str(values[0])
    return "(" + ", ".join(str(v) for v in values) + ")"


def _layer(name: str, axes: list[dict[str, int]]) -> str:
    keys = axes[0].keys()
    return (
        f"{name}(" + ", ".join(f"{key}={_axis_text([a[key] for a in axes])}" for key in keys) + ")"
    )


@st.composite
def _per_axis(draw, rank: int, axis_strategy) -> list[dict[str, int]]:
    """Per-axis parameter dicts; half of the time all axes share the first axis' values."""
    first = draw(axis_strategy)
    if rank == 1 or draw(st.booleans()):
        return [first] * rank
    return [first] + [draw(axis_strategy) for _ in range(rank - 1)]


@st.composite
def conv_transpose_axis(draw, max_kernel=8, max_stride=5, max_dilation=4) -> dict[str, int]:
    """k, s, d; begin and end pads in [0, d*(k-1)] independently; op in [0, max(s, d))."""
    k = draw(st.integers(1, max_kernel))
    s = draw(st.integers(1, max_stride))
    d = draw(st.integers(1, max_dilation))
    reach = d * (k - 1)
    p = draw(st.integers(0, reach))
    pe = draw(st.integers(0, reach))
    op = draw(st.integers(0, max(s, d) - 1))
    return {"k": k, "s": s, "p": p, "pe": pe, "op": op, "d": d}


@st.composite
def conv_axis(draw, max_kernel=5, strides=(1,), max_dilation=3) -> dict[str, int]:
    """A convolution axis: pads (asymmetric) in [0, d*(k-1)]."""
    k = draw(st.integers(1, max_kernel))
    s = draw(st.sampled_from(strides))
    d = draw(st.integers(1, max_dilation))
    reach = d * (k - 1)
    return {
        "k": k,
        "s": s,
        "p": draw(st.integers(0, reach)),
        "pe": draw(st.integers(0, reach)),
        "d": d,
    }


@st.composite
def pool_axis(draw, dilation: bool = False) -> dict[str, int]:
    """A pooling axis: pads in [0, k // 2] (torch's limit), the end pad drawn on its own."""
    k = draw(st.integers(1, 3))
    axis = {
        "k": k,
        "s": draw(st.integers(1, 3)),
        "p": draw(st.integers(0, k // 2)),
        "pe": draw(st.integers(0, k // 2)),
    }
    if dilation:
        axis["d"] = draw(st.integers(1, 2))
    return axis


@st.composite
def unpool_axis(draw) -> dict[str, int]:
    """A MaxUnpool axis: window k, stride s, pads p < k."""
    k = draw(st.integers(1, 4))
    return {"k": k, "s": draw(st.integers(1, 3)), "p": draw(st.integers(0, k - 1))}


def conv_transpose_layer(rank: int, **limits) -> st.SearchStrategy[str]:
    """A ``ConvTranspose{rank}d`` layer (per-axis parameters may differ)."""
    return _per_axis(rank, conv_transpose_axis(**limits)).map(
        lambda axes: _layer(f"ConvTranspose{rank}d", axes)
    )


@st.composite
def _resize(draw, rank: int) -> str:
    if draw(st.integers(0, 3)) == 0:
        return f"Upsample(scale=2, mode=linear, rank={rank})"
    scale = draw(st.sampled_from(NEAREST_SCALES))
    mode = draw(st.sampled_from(["nearest", "nearest-exact"]))
    return f"Upsample(scale={scale}, mode={mode}, rank={rank})"


@st.composite
def _blur(draw, rank: int) -> str:
    taps = draw(st.sampled_from(BLUR_TAPS))
    return f"Blur{rank}d(taps={taps}, p={draw(st.integers(0, len(taps) - 1))})"


@st.composite
def _shift(draw, rank: int) -> str:
    if draw(st.booleans()):
        pads = [draw(st.integers(0, 3)) for _ in range(rank)]
        return f"Pad{rank}d(p={_axis_text(pads)})"
    axes = draw(
        _per_axis(
            rank, st.fixed_dictionaries({"start": st.integers(0, 3), "step": st.integers(1, 3)})
        )
    )
    return _layer(f"Slice{rank}d", axes)


def layers(rank: int, *, small: bool = False) -> st.SearchStrategy[str]:
    """One layer of a chain: any op the chain tests mix.  ``small`` keeps periods tiny (N-D runs).

    Upsamplers are drawn three times as often as the rest, so that most chains carry a pattern.
    """
    up = 2 if small else 3
    upsampler = conv_transpose_layer(
        rank, max_kernel=4 if small else 6, max_stride=up, max_dilation=2 if small else 3
    )
    resize = st.just(f"Upsample(scale=2, rank={rank})") if small else _resize(rank)
    return st.one_of(
        upsampler,
        upsampler,
        upsampler,
        resize,
        resize,
        _per_axis(rank, conv_axis()).map(lambda a: _layer(f"Conv{rank}d", a)),
        _per_axis(rank, conv_axis(strides=(2, 3), max_dilation=2)).map(
            lambda a: _layer(f"Conv{rank}d", a)
        ),
        _per_axis(rank, pool_axis()).map(lambda a: _layer(f"AvgPool{rank}d", a)),
        _per_axis(rank, pool_axis(dilation=True)).map(lambda a: _layer(f"MaxPool{rank}d", a)),
        _per_axis(rank, unpool_axis()).map(lambda a: _layer(f"MaxUnpool{rank}d", a)),
        _blur(rank),
        st.sampled_from([2] if small else [2, 3]).map(
            lambda r: f"PixelShuffle(r={r}, rank={rank})"
        ),
        _shift(rank),
        st.just("ReLU()"),
    )


@st.composite
def uneven_conv_transpose(draw, rank: int, max_stride: int = 3) -> str:
    """A strided ConvTranspose whose own pattern is uneven (s does not divide k)."""
    s = draw(st.integers(2, max_stride))
    k = s * draw(st.integers(0, 1)) + draw(st.integers(1, s - 1))  # k in 1..2s, s does not divide k
    p = draw(st.integers(0, k - 1))
    return f"ConvTranspose{rank}d(k={k}, s={s}, p={p})"


@st.composite
def chains(
    draw, rank: int, min_layers: int = 2, max_layers: int = 5, *, small: bool = False
) -> str:
    """A chain of ``min_layers..max_layers`` layers of one spatial rank, joined by ``->``.

    Three chains in four contain an uneven strided ConvTranspose somewhere, so that what comes
    after it (resizes, convs, pools, shuffles) has a pattern to move around.
    """
    chain = draw(st.lists(layers(rank, small=small), min_size=min_layers, max_size=max_layers))
    if draw(st.integers(0, 3)):
        at = draw(st.integers(0, len(chain) - 1))
        chain[at] = draw(uneven_conv_transpose(rank, max_stride=2 if small else 3))
    return " -> ".join(chain)


@st.composite
def resize_layer(draw, rank: int = 1) -> str:
    """Any resize the chain language can write, for the resize-specific chain tests."""
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "cubic"]))
    scale = draw(
        st.sampled_from(["2", "3", "3/2"] if mode in ("linear", "cubic") else NEAREST_SCALES)
    )
    return f"Upsample(scale={scale}, mode={mode}, rank={rank})"


@st.composite
def op_on_a_pattern(draw, rank: int = 1) -> str:
    """An uneven ConvTranspose, then one op of any kind, sometimes then another ConvTranspose.

    Every op then has a non-constant pattern to transform, which is where rounding, pad and
    flip mistakes show.
    """
    chain = [draw(uneven_conv_transpose(rank)), draw(layers(rank))]
    if draw(st.booleans()):
        chain.append(draw(uneven_conv_transpose(rank)))
    return " -> ".join(chain)


#: ONNX Resize-19 coordinate transforms (tf_half_pixel_for_nn from Resize-11/13).
COORDINATE_MODES = (
    "half_pixel",
    "pytorch_half_pixel",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "align_corners",
    "half_pixel_symmetric",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
RESIZE_SCALES = ("2", "3", "3/2", "5/2", "4/3", "5/3", "2/3", "1/2", "3/4")


@st.composite
def resize_spec(draw, rank: int = 1, coordinate_modes=COORDINATE_MODES) -> ResizeSpec:
    """Any ONNX Resize-19 mode, coordinate transform, rounding, cubic a, per-axis scales.

    (The chain language writes only torch's modes; this covers the rest of Resize-19.)
    """
    return ResizeSpec(
        mode=draw(st.sampled_from(["nearest", "linear", "cubic"])),
        scales=tuple(Fraction(draw(st.sampled_from(RESIZE_SCALES))) for _ in range(rank)),
        coordinate_transformation_mode=draw(st.sampled_from(coordinate_modes)),
        nearest_mode=draw(st.sampled_from(NEAREST_MODES)),
        cubic_coeff_a=draw(st.sampled_from([-0.75, -0.5])),
    )


def resize_node(spec: ResizeSpec, name: str = "resize") -> Node:
    """A Resize node around ``spec``."""
    return Node(
        name=name,
        op_type="Resize",
        kind=Kind.RESIZE,
        inputs=(f"{name}_in",),
        outputs=(f"{name}_out",),
        resize=spec,
    )


@st.composite
def fixed_kernel_conv(draw, rank: int = 2, separable: bool = True) -> Node:
    """A depthwise conv with a fixed kernel (blur, BlurPool with stride, any taps, any sum).

    ``separable``: the outer product of per-axis integer taps; else an arbitrary integer kernel.
    """
    sizes = [draw(st.integers(1, 4)) for _ in range(rank)]
    taps = st.integers(0, 4)
    if separable:
        kernel = np.ones(())
        for size in sizes:
            axis_taps = draw(st.lists(taps, min_size=size, max_size=size).filter(any))
            kernel = np.multiply.outer(kernel, np.array(axis_taps, float))
    else:
        flat = draw(st.lists(taps, min_size=math.prod(sizes), max_size=math.prod(sizes)))
        kernel = np.array(flat, float).reshape(sizes)
        if not kernel.any():  # an all-zero filter is no filter
            kernel = np.ones(sizes)
    window = []
    for size in sizes:
        d = draw(st.integers(1, 2))
        reach = d * (size - 1)
        window.append(
            WindowAxis(
                kernel=size,
                stride=draw(st.integers(1, 2)),
                dilation=d,
                pads_begin=draw(st.integers(0, reach)),
                pads_end=draw(st.integers(0, reach)),
            )
        )
    return Node(
        name="fixed",
        op_type="Conv",
        kind=Kind.CONV,
        inputs=("fixed_in",),
        outputs=("fixed_out",),
        window=tuple(window),
        fixed_kernel=kernel,
    )

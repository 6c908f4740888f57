"""A tiny text form for chains of layers, used by the rule catalogue's examples and the tests.

A chain is layers joined by ``->``; a layer is a PyTorch-like name with keyword arguments.  Ints or
tuples (one value per axis, or one value for all axes).  The spatial rank comes from the ``1d``,
``2d``, ``3d`` suffix, or ``rank=`` for rank-free names.

================================  ==============================================================
``ConvTranspose2d(k, s, p, op, d)``  transposed conv (PyTorch padding ``p`` both sides; ``pe`` for
                                  a different end pad, as ONNX allows)
``Conv2d(k, s, p, d)``            convolution (``pe`` likewise)
``AvgPool2d(k, s, p)``            average pool; ``MaxPool2d`` likewise
``Blur2d(taps=(1,3,3,1), p, s)``  a fixed depthwise filter: the outer product of ``taps`` per axis
``Upsample(scale, mode, rank)``   resize; ``mode`` nearest|nearest-exact|linear|cubic,
                                  ``align_corners`` 0/1; ``scale`` may be a fraction ``3/2``
``PixelShuffle(r, rank)``         depth to space; ``PixelUnshuffle`` space to depth
``MaxUnpool2d(k, s, p)``          unpooling
``Pad2d(p)``, ``Slice2d(start, step)``  index shifts
``ReLU()``                        any pointwise op
================================  ==============================================================

Trained weights, for the weight-aware rules (a ConvTranspose or Conv without them has none):
``taps=(1, 2, 1)`` the kernel on every axis (outer product), equal on every channel pair;
``init=default`` PyTorch's default initialisation (seeded by ``seed=``); ``init=icnr`` with
``r=2`` an ICNR sub-pixel conv (CRD order); ``bias=(0, 1, 2, 3)`` one bias per output channel;
``cin=``, ``cout=`` the channel counts (default 1, or ``r**rank`` outputs for ``init=icnr``).

>>> [n.op_type for n in parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1) -> ReLU()")]
['ConvTranspose2d', 'ReLU']
>>> parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1)")[0].window[0]
WindowAxis(kernel=3, stride=2, dilation=1, pads_begin=1, pads_end=1, output_padding=1)
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from typing import Any

import numpy as np

from deconvlint.core.ir import Kind, LayerWeights, Node, ResizeSpec, ShiftAxis, WindowAxis

_LAYER = re.compile(r"^\s*([A-Za-z]+?)([123]d)?\s*\((.*)\)\s*$")

_WINDOW_KINDS = {
    "ConvTranspose": Kind.CONV_TRANSPOSE,
    "Conv": Kind.CONV,
    "AvgPool": Kind.AVG_POOL,
    "MaxPool": Kind.MAX_POOL,
    "MaxUnpool": Kind.MAX_UNPOOL,
}

# Resize modes in the chain language -> (ONNX mode, coordinate transform, nearest mode)
_RESIZE_MODES = {
    "nearest": ("nearest", "asymmetric", "floor"),
    "nearest-exact": ("nearest", "half_pixel", "round_prefer_ceil"),  # = torch nearest-exact
    "linear": ("linear", "half_pixel", "round_prefer_floor"),
    "bilinear": ("linear", "half_pixel", "round_prefer_floor"),
    "trilinear": ("linear", "half_pixel", "round_prefer_floor"),
    "cubic": ("cubic", "half_pixel", "round_prefer_floor"),
    "bicubic": ("cubic", "half_pixel", "round_prefer_floor"),
}


def _parse_args(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    call = ast.parse(f"f({text})", mode="eval").body
    assert isinstance(call, ast.Call)
    if call.args:
        raise ValueError(f"chain spec arguments must be keywords: {text!r}")
    return {kw.arg: _literal(kw.value) for kw in call.keywords}


def _literal(value: ast.expr) -> Any:
    """Ints, fractions ``3/2``, tuples of them, and bare words such as ``nearest-exact``."""
    if isinstance(value, ast.Tuple):
        return tuple(_literal(v) for v in value.elts)
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div):
        return Fraction(ast.literal_eval(value.left), ast.literal_eval(value.right))
    try:
        return ast.literal_eval(value)
    except ValueError:
        return ast.unparse(value).replace(" ", "")


def _per_axis(value: Any, rank: int) -> tuple[Any, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) != rank:
            raise ValueError(f"expected {rank} values, got {value!r}")
        return tuple(value)
    return (value,) * rank


def _window(args: dict[str, Any], rank: int) -> tuple[WindowAxis, ...]:
    k = _per_axis(args["k"], rank)
    s = _per_axis(args.get("s", 1), rank)
    p = _per_axis(args.get("p", 0), rank)
    pe = _per_axis(args.get("pe", args.get("p", 0)), rank)
    op = _per_axis(args.get("op", 0), rank)
    d = _per_axis(args.get("d", 1), rank)
    return tuple(
        WindowAxis(
            kernel=k[a],
            stride=s[a],
            dilation=d[a],
            pads_begin=p[a],
            pads_end=pe[a],
            output_padding=op[a],
        )
        for a in range(rank)
    )


def _chain_weights(base: str, args: dict[str, Any], window: tuple[WindowAxis, ...]) -> Any:
    """A :data:`deconvlint.core.ir.WeightSource` for ``taps``/``init``/``bias``, else ``None``."""
    if not any(key in args for key in ("taps", "init", "bias")):
        return None
    rank = len(window)
    ksize = tuple(a.kernel for a in window)
    init = args.get("init", "taps" if "taps" in args else "ones")
    r = int(args.get("r", 2))
    cin = int(args.get("cin", 1))
    cout = int(args.get("cout", r**rank if init == "icnr" else 1))
    shape = (cin, cout, *ksize) if base == "ConvTranspose" else (cout, cin, *ksize)
    rng = np.random.default_rng(int(args.get("seed", 0)))
    bound = 1.0 / np.sqrt(shape[1] * int(np.prod(ksize)))  # torch: kaiming_uniform(a=sqrt(5))
    if init == "taps":
        taps = np.asarray(args["taps"] if isinstance(args["taps"], tuple) else (args["taps"],))
        kernel = taps.astype(float)
        for _ in range(rank - 1):
            kernel = np.multiply.outer(kernel, taps)
        kernel = np.broadcast_to(kernel, shape).copy()
    elif init == "default":
        kernel = rng.uniform(-bound, bound, shape)
    elif init == "icnr":
        base_kernel = rng.normal(0.0, bound, (cout // r**rank, *shape[1:]))
        kernel = np.repeat(base_kernel, r**rank, axis=0)
    else:
        kernel = np.ones(shape)
    if "bias" in args:
        bias = np.asarray(args["bias"], dtype=float).reshape(-1)
    elif init == "default":
        bias = rng.uniform(-bound, bound, cout)
    else:
        bias = None
    weights = LayerWeights(kernel=kernel, bias=bias)
    return lambda: weights


def parse_layer(text: str, index: int = 0) -> Node:
    """Parse one layer such as ``"ConvTranspose2d(k=3, s=2, p=1, op=1)"`` into a :class:`Node`."""
    m = _LAYER.match(text)
    if not m:
        raise ValueError(f"cannot parse layer spec {text!r}")
    base, suffix, arg_text = m.groups()
    args = _parse_args(arg_text)
    rank = int(suffix[0]) if suffix else int(args.pop("rank", 2))
    name = args.pop("name", f"layer{index}")
    op_type = base + (suffix or "")
    common = {
        "name": name,
        "op_type": op_type,
        "inputs": (f"v{index}",),
        "outputs": (f"v{index + 1}",),
    }
    if base in _WINDOW_KINDS:
        window = _window(args, rank)
        return Node(
            kind=_WINDOW_KINDS[base],
            window=window,
            weights=_chain_weights(base, args, window),
            **common,
        )
    if base == "Blur":
        taps = np.asarray(args["taps"], dtype=float)
        kernel = taps
        for _ in range(rank - 1):
            kernel = np.multiply.outer(kernel, taps)
        kernel = kernel / kernel.sum()
        return Node(
            kind=Kind.CONV,
            fixed_kernel=kernel,
            window=tuple(
                WindowAxis(
                    kernel=len(taps),
                    stride=int(args.get("s", 1)),
                    pads_begin=int(args.get("p", 0)),
                    pads_end=int(args.get("p", 0)),
                )
                for _ in range(rank)
            ),
            **common,
        )
    if base == "Upsample":
        mode, coord, nearest = _RESIZE_MODES[args.get("mode", "nearest")]
        if args.get("align_corners"):
            coord = "align_corners"
        scales = tuple(Fraction(v) for v in _per_axis(args.get("scale", 2), rank))
        lengths = _per_axis(args.get("n", None), rank)
        return Node(
            kind=Kind.RESIZE,
            resize=ResizeSpec(
                mode=mode,
                scales=scales,
                coordinate_transformation_mode=coord,
                nearest_mode=nearest,
                input_lengths=lengths,
                output_lengths=tuple(
                    None if n is None else int(n * sc)
                    for n, sc in zip(lengths, scales, strict=False)
                ),
            ),
            **common,
        )
    if base in ("PixelShuffle", "PixelUnshuffle"):
        kind = Kind.DEPTH_TO_SPACE if base == "PixelShuffle" else Kind.SPACE_TO_DEPTH
        return Node(kind=kind, block=_per_axis(args.get("r", 2), rank), **common)
    if base == "Pad":
        return Node(
            kind=Kind.SHIFT,
            shift=tuple(ShiftAxis(offset=-p) for p in _per_axis(args["p"], rank)),
            **common,
        )
    if base == "Slice":
        starts = _per_axis(args.get("start", 0), rank)
        steps = _per_axis(args.get("step", 1), rank)
        return Node(
            kind=Kind.SHIFT,
            shift=tuple(ShiftAxis(offset=a, step=b) for a, b in zip(starts, steps, strict=False)),
            **common,
        )
    return Node(kind=Kind.POINTWISE, **common)


def parse_chain(text: str) -> list[Node]:
    """Parse ``"A(...) -> B(...)"`` into connected nodes ``layer0``, ``layer1``, ...

    The chain reads value ``v0`` and writes ``v{len}``.
    """
    return [parse_layer(part, i) for i, part in enumerate(text.split("->"))]

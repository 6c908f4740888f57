"""Weight-aware geometry: what a trained upsampler answers to a constant input, per output phase.

Pure numpy, like :mod:`deconvlint.core.geometry`, but with the real weights instead of the all-ones
model.  A constant input (ones on every channel) reaches the interior of a transposed conv's
output as, per output channel ``co`` and output phase ``q``::

    r[co, q] = sum over c_in of co's group, sum over taps j with (j*d - p) mod s == q, of W[c_in, co, j]
               + bias[co]

(the bias is the same on every phase).  A sub-pixel layer (a conv whose ``C*r^2`` output
channels a PixelShuffle / DepthToSpace lays out on an ``r x r`` grid) answers with the conv's
per-channel sums plus biases, sorted into phases by the shuffle's channel order.

The *checkerboard index* of a response is the share of its energy outside the DC term of its
DFT over the phases: ``1 - (sum r)^2 / (N * sum r^2)``; 0 for a uniform response, 1 for a pure
alternation.

>>> from deconvlint.core.ir import WindowAxis
>>> axis = WindowAxis(kernel=4, stride=2, pads_begin=1, pads_end=1)
>>> kernel = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4)
>>> conv_transpose_response(kernel, None, (axis,))
array([[6., 4.]])
>>> round(checkerboard_index(np.array([6.0, 4.0])), 4)
0.0385
>>> checkerboard_index(np.array([1.0, 1.0]))
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deconvlint.core.ir import WindowAxis

# Below this share of the largest response's energy, a response counts as zero (index 0).
_ZERO = 1e-24


def checkerboard_index(response: np.ndarray) -> float:
    """Share of the energy of ``response`` (over all its axes) outside the DC term, in [0, 1].

    Parseval: the DFT's total energy is ``N * sum r^2`` and its DC term is ``(sum r)^2``.

    >>> checkerboard_index(np.array([1.0, -1.0]))
    1.0
    """
    r = np.asarray(response, dtype=np.float64).ravel()
    energy = float(r.size * np.dot(r, r))
    if energy <= _ZERO:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - float(r.sum()) ** 2 / energy)))


def channel_indexes(responses: np.ndarray) -> np.ndarray:
    """The checkerboard index of every channel of ``responses`` (channels first)."""
    return np.array([checkerboard_index(r) for r in responses])


def _phase_matrix(axis: WindowAxis) -> np.ndarray:
    """``M[j, q] = 1`` when tap ``j`` lands on output phase ``q = (j*d - p) mod s``."""
    phases = (np.arange(axis.kernel) * axis.dilation - axis.pads_begin) % axis.stride
    matrix = np.zeros((axis.kernel, axis.stride))
    matrix[np.arange(axis.kernel), phases] = 1.0
    return matrix


def conv_transpose_response(
    kernel: np.ndarray, bias: np.ndarray | None, window: Sequence[WindowAxis], groups: int = 1
) -> np.ndarray:
    """Interior response to a constant input, shape ``(C_out, s_1, ..., s_D)``.

    ``kernel`` is ``(C_in, C_out/groups, k_1, ..., k_D)`` (ONNX and PyTorch layout).
    """
    w = np.asarray(kernel, dtype=np.float64)
    for axis in window:  # sum the taps of each phase, one spatial axis at a time
        w = np.tensordot(w, _phase_matrix(axis), axes=([2], [0]))  # axis moves to the end
    c_in, c_out_g = w.shape[:2]
    phases = w.shape[2:]
    # sum over the input channels of each group: (g, C_in/g, C_out/g, s...) -> (C_out, s...)
    w = w.reshape(groups, c_in // groups, c_out_g, *phases).sum(axis=1)
    response = w.reshape(groups * c_out_g, *phases)
    if bias is not None:
        response = response + np.asarray(bias, dtype=np.float64).reshape(-1, *[1] * len(phases))
    return response


def subpixel_channel_order(channels: int, block: Sequence[int], mode: str) -> np.ndarray:
    """``order[c, *phase]``: the conv channel a depth-to-space puts at ``phase`` of channel ``c``.

    CRD (PyTorch PixelShuffle, ONNX ``mode="CRD"``): ``c*R + phase``; DCR (the ONNX default,
    TensorFlow): ``phase*C + c``; ``R = prod(block)``, ``phase`` raveled in C order.

    >>> subpixel_channel_order(1, (2, 2), "CRD")[0]
    array([[0, 1],
           [2, 3]])
    >>> subpixel_channel_order(2, (2, 2), "DCR")[1]
    array([[1, 3],
           [5, 7]])
    """
    cells = int(np.prod(block))
    phase = np.arange(cells).reshape(block)
    c = np.arange(channels).reshape(-1, *[1] * len(block))
    return c * cells + phase if mode == "CRD" else phase * channels + c


def subpixel_response(
    kernel: np.ndarray, bias: np.ndarray | None, block: Sequence[int], mode: str
) -> np.ndarray:
    """Interior response of conv + depth-to-space to a constant input, ``(C, r_1, ..., r_D)``.

    ``kernel`` is the conv's ``(C*R, C_in/groups, k...)``; a constant input gives each conv
    channel the sum of its kernel plus its bias.
    """
    w = np.asarray(kernel, dtype=np.float64)
    sums = w.reshape(w.shape[0], -1).sum(axis=1)
    if bias is not None:
        sums = sums + np.asarray(bias, dtype=np.float64)
    order = subpixel_channel_order(w.shape[0] // int(np.prod(block)), block, mode)
    return sums[order]


def subpixel_subkernels(
    kernel: np.ndarray, bias: np.ndarray | None, block: Sequence[int], mode: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The conv's kernels and biases regrouped as ``(C, R, ...)``: the R sub-kernels of each
    output channel, one per phase (ICNR makes them identical)."""
    w = np.asarray(kernel, dtype=np.float64)
    cells = int(np.prod(block))
    order = subpixel_channel_order(w.shape[0] // cells, block, mode).reshape(-1, cells)
    b = None if bias is None else np.asarray(bias, dtype=np.float64)[order]
    return w[order], b


def depthwise_filter(kernel: np.ndarray, groups: int) -> np.ndarray | None:
    """The taps ``(k...)`` of a depthwise ``(C, 1, k...)`` kernel (``C == groups >= 2``) that is
    the same on every channel (a blur, a box), as float64; else ``None``.

    Decided by the values alone (an ONNX initializer does not say whether it was trained), so
    that every front end reads a model and its export alike.

    >>> depthwise_filter(np.ones((3, 1, 2)) * [1.0, 2.0], 3)
    array([1., 2.])
    >>> depthwise_filter(np.arange(6.0).reshape(3, 1, 2), 3) is None
    True
    """
    w = np.asarray(kernel)
    if groups < 2 or w.ndim < 3 or w.shape[0] != groups or w.shape[1] != 1:
        return None
    if w.dtype.kind not in "fiu":
        return None
    w = w.astype(np.float64)
    if not np.array_equal(w, np.broadcast_to(w[:1], w.shape)):
        return None
    return w[0, 0].copy()


def spread(values: np.ndarray) -> float:
    """Largest difference between the rows of ``values`` (the sub-kernels or biases of one
    channel, one row per phase), relative to the largest magnitude: 0 when they are identical.

    >>> spread(np.array([0.0, 1.0, 2.0, 3.0]))
    1.0
    """
    values = np.asarray(values, dtype=np.float64)
    scale = float(np.abs(values).max()) if values.size else 0.0
    if scale == 0.0:
        return 0.0
    return float(np.abs(values - values[:1]).max() / scale)


def index_summary(response: np.ndarray) -> dict[str, Any]:
    """Per-layer numbers: the worst output channel, its index and response, the mean index.

    >>> s = index_summary(np.array([[1.0, 1.0], [6.0, 4.0]]))
    >>> s["worst_channel"], round(s["max_index"], 4), round(s["mean_index"], 4)
    (1, 0.0385, 0.0192)
    """
    indexes = channel_indexes(response)
    worst = int(np.argmax(indexes))
    return {
        "worst_channel": worst,
        "max_index": float(indexes[worst]),
        "mean_index": float(indexes.mean()),
        "response": response[worst],
    }


def icnr_code(conv: str, r: int, rank: int = 2, mode: str = "CRD") -> str:
    """The ICNR initialisation (Aitken et al. 2017) for ``conv``, ready to paste; ``mode`` is the
    shuffle's channel order (PyTorch's PixelShuffle is CRD)."""
    copies = (
        f"base.repeat_interleave(r**{rank}, dim=0)"  # channel c*R + phase <- base[c]
        if mode == "CRD"
        else f"base.repeat(r**{rank}, *[1] * (base.dim() - 1))"  # channel phase*C + c <- base[c]
    )
    return (
        "import torch\n"
        "from torch import nn\n\n"
        f"def icnr_(weight, r={r}, init=nn.init.kaiming_normal_):\n"
        "    # every sub-kernel of an output channel starts identical: no checkerboard at init\n"
        "    out_channels, *rest = weight.shape\n"
        f"    base = torch.empty(out_channels // r**{rank}, *rest)\n"
        "    init(base)\n"
        "    with torch.no_grad():\n"
        f"        weight.copy_({copies})\n\n"
        f"icnr_({conv}.weight)\n"
        f"nn.init.zeros_({conv}.bias)  # per-phase biases paint a pattern too"
    )

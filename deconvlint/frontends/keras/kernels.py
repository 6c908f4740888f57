"""Keras's kernel layouts to the IR's (:class:`deconvlint.core.ir.LayerWeights`).

Keras stores spatial axes first: a transposed conv ``(k..., filters, C_in)``, a conv
``(k..., C_in/groups, filters)``, a depthwise conv ``(k..., C_in, multiplier)`` (output channel
``c*multiplier + m``), a separable conv its depthwise kernel and a ``(1..., C_in*multiplier,
filters)`` pointwise kernel.  The IR wants ``(C_in, C_out/groups, k...)`` for a transposed conv
and ``(C_out, C_in/groups, k...)`` for a conv, as ONNX and PyTorch; neither Keras backend flips
the kernel (both scatter ``x[i] * w[j]`` to ``i*s + j*d - pads_begin``).

>>> import numpy as np
>>> keras_kernel = np.zeros((5, 5, 64, 128))  # Conv2DTranspose(64, 5) on 128 channels
>>> transpose_kernel(keras_kernel).shape
(128, 64, 5, 5)
>>> depthwise_kernel(np.zeros((3, 3, 8, 2))).shape
(16, 1, 3, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _channels_first(kernel: np.ndarray) -> np.ndarray:
    """``(k..., a, b)`` -> ``(b, a, k...)``."""
    rank = kernel.ndim - 2
    return np.transpose(kernel, (rank + 1, rank, *range(rank)))


def transpose_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``(k..., C_out, C_in)`` -> IR ``(C_in, C_out, k...)``."""
    return _channels_first(np.asarray(kernel, dtype=np.float64))


def conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``(k..., C_in/groups, C_out)`` -> IR ``(C_out, C_in/groups, k...)``."""
    return _channels_first(np.asarray(kernel, dtype=np.float64))


def depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``(k..., C_in, m)`` -> IR ``(C_in*m, 1, k...)``, channel ``c*m + j``."""
    w = np.asarray(kernel, dtype=np.float64)
    rank = w.ndim - 2
    flat = w.reshape(*w.shape[:rank], -1)
    return np.moveaxis(flat, -1, 0)[:, None]


def separable_kernel(depthwise: np.ndarray, pointwise: np.ndarray) -> np.ndarray:
    """The one conv a separable conv is: ``W[o, c, k] = sum_j P[c*m + j, o] * D[c, j, k]``."""
    d = np.asarray(depthwise, dtype=np.float64)
    rank = d.ndim - 2
    c_in, m = d.shape[rank:]
    p = np.asarray(pointwise, dtype=np.float64).reshape(c_in, m, -1)
    taps = np.moveaxis(d, (rank, rank + 1), (0, 1))  # (C_in, m, k...)
    return np.einsum("cj...,cjo->oc...", taps, p)


def kernel_fits(kernel: np.ndarray, kernel_size: Sequence[int]) -> bool:
    """A saved kernel of rank ``len(kernel_size) + 2`` whose spatial axes are ``kernel_size``."""
    rank = len(kernel_size)
    return kernel.ndim == rank + 2 and tuple(kernel.shape[:rank]) == tuple(kernel_size)


__all__ = [
    "conv_kernel",
    "depthwise_kernel",
    "kernel_fits",
    "separable_kernel",
    "transpose_kernel",
]

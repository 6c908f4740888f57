"""Size arithmetic shared by the front ends and source mode, numpy only: a float resize scale
read as a fraction, padding split between the two ends, a transposed conv's output length.

>>> scale_fraction(0.33333334, np.float32), scale_fraction(0.33333334)
(Fraction(1, 3), None)
>>> split_pads(3), split_pads(3, odd_at_end=False), same_pads((4, 3), (1, 2))
((1, 2), (2, 1), ((1, 2), (2, 2)))
>>> conv_transpose_length(8, kernel=4, stride=2, pads=2)
16
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

#: Largest denominator accepted when a float scale is read as a fraction.
MAX_DENOMINATOR = 256
#: How far a float scale may lie from the fraction it stands for, by the dtype it was stored in:
#: ``(rtol, floor)`` accepts ``|fraction - value| <= rtol * max(floor, |value|)``.
SCALE_TOLERANCE: dict[np.dtype, tuple[float, float]] = {
    # ONNX Resize/Upsample scales are float32 tensors: 1/3 arrives as 0.33333334 (3e-8 off,
    # relative).  A relative 1e-6 (about 8 float32 ulps) takes every fraction rounded to
    # float32 and still refuses a short decimal such as 0.33333 (1e-5 off).
    np.dtype(np.float32): (1e-6, 0.0),
    # torch's scale_factor is a Python float (float64), exact for 2.0 or 1.5 and 1e-16 off for
    # 1/3 computed in float64; 1e-9 also takes 1/3 written with nine or more digits, and below 1
    # the bound is absolute (1e-9), not relative to the small scale.
    np.dtype(np.float64): (1e-9, 1.0),
}


def scale_fraction(value: float, dtype: type | np.dtype = np.float64) -> Fraction | None:
    """The small fraction (denominator up to :data:`MAX_DENOMINATOR`) a float scale stands for,
    within the :data:`SCALE_TOLERANCE` of the ``dtype`` it was stored in; else ``None``.

    >>> scale_fraction(1.5), scale_fraction(0.7071, np.float32)
    (Fraction(3, 2), None)
    """
    rtol, floor = SCALE_TOLERANCE[np.dtype(dtype)]
    fraction = Fraction(value).limit_denominator(MAX_DENOMINATOR)
    if abs(float(fraction) - value) <= rtol * max(floor, abs(value)):
        return fraction
    return None


def split_pads(total: int, odd_at_end: bool = True) -> tuple[int, int]:
    """``(pads_begin, pads_end)`` of a total padding: halves, the odd sample at the end (torch,
    ONNX ``SAME_UPPER``) or at the begin (ONNX ``SAME_LOWER``).

    >>> split_pads(5), split_pads(5, odd_at_end=False), split_pads(4)
    ((2, 3), (3, 2), (2, 2))
    """
    half = total // 2
    return (half, total - half) if odd_at_end else (total - half, half)


def same_pads(
    kernel: Sequence[int], dilation: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """torch's ``padding="same"`` (stride 1): a total of ``d*(k-1)`` per axis, the odd sample at
    the end as torch pads it; ``(pads_begin, pads_end)``, one entry per axis both give.

    >>> same_pads((3, 4), (1, 1))
    ((1, 1), (1, 2))
    """
    splits = [split_pads(d * (k - 1)) for k, d in zip(kernel, dilation, strict=False)]
    return tuple(b for b, _ in splits), tuple(e for _, e in splits)


def conv_transpose_length(
    length: int, kernel: int, stride: int, dilation: int = 1, pads: int = 0, output_padding: int = 0
) -> int:
    """A transposed conv's output length: ``s*(n-1) + d*(k-1) + 1 + op - pads`` (``pads``: both
    ends together).

    >>> conv_transpose_length(8, kernel=3, stride=2, pads=2, output_padding=1)
    16
    """
    return stride * (length - 1) + dilation * (kernel - 1) + 1 + output_padding - pads


__all__ = [
    "MAX_DENOMINATOR",
    "SCALE_TOLERANCE",
    "conv_transpose_length",
    "same_pads",
    "scale_fraction",
    "split_pads",
]

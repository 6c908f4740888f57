"""``core/sizes.py``: scale fractions per dtype, pad splits, transposed-conv output lengths."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from deconvlint.core.sizes import (
    MAX_DENOMINATOR,
    conv_transpose_length,
    same_pads,
    scale_fraction,
    split_pads,
)

FRACTIONS = sorted({Fraction(p, q) for q in range(1, 17) for p in range(1, 8 * q + 1)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_small_fraction_stored_in_its_dtype_is_read_back(dtype: type) -> None:
    for f in FRACTIONS:
        stored = float(dtype(f.numerator) / dtype(f.denominator))
        assert scale_fraction(stored, dtype) == f, (f, stored)


def test_float32_rounding_is_refused_at_float64_tolerance() -> None:
    # 1/3 and 1/10 rounded to float32 are 6.7e-9 and 1.5e-9 off: too far for a Python float
    assert scale_fraction(float(np.float32(1 / 3)), np.float32) == Fraction(1, 3)
    assert scale_fraction(float(np.float32(1 / 3))) is None
    assert scale_fraction(float(np.float32(0.1))) is None


def test_short_decimals_are_not_fractions() -> None:
    assert scale_fraction(0.33333, np.float32) is None  # 1e-5 off, relative
    assert scale_fraction(0.3333333, np.float64) is None
    assert scale_fraction(0.333333333, np.float64) == Fraction(1, 3)  # 3e-10 off
    assert scale_fraction(0.7071, np.float32) is None
    assert scale_fraction(1 / (MAX_DENOMINATOR + 1)) is None  # the denominator is too large


def test_float64_bound_is_absolute_below_one_and_relative_above() -> None:
    assert scale_fraction(0.5 + 9e-10) == Fraction(1, 2)
    assert scale_fraction(0.5 + 2e-9) is None
    assert scale_fraction(100.0 + 9e-8) == Fraction(100)  # 9e-10 relative
    assert scale_fraction(100.0 + 2e-7) is None


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(KeyError):
        scale_fraction(0.5, np.float16)


@pytest.mark.parametrize("total", range(0, 12))
def test_split_pads_halves_with_the_odd_sample_where_asked(total: int) -> None:
    upper, lower = split_pads(total), split_pads(total, odd_at_end=False)
    assert sum(upper) == sum(lower) == total
    assert upper[1] - upper[0] == lower[0] - lower[1] == total % 2
    assert upper == tuple(reversed(lower))


def test_same_pads_keep_the_length_at_stride_one() -> None:
    for k, d, n in itertools.product(range(1, 8), range(1, 4), range(1, 12)):
        (begin,), (end,) = same_pads((k,), (d,))
        # conv length floor((n + pb + pe - d(k-1) - 1)/1) + 1 == n
        assert n + begin + end - d * (k - 1) == n
        assert end - begin == (d * (k - 1)) % 2  # the odd sample at the end, as torch pads


def test_conv_transpose_length_by_brute_force() -> None:
    # scatter every input sample's dilated kernel into a full output, then crop and pad it
    for n, k, s, d in itertools.product(range(1, 6), range(1, 5), range(1, 4), range(1, 3)):
        full = np.zeros((n - 1) * s + (k - 1) * d + 1)
        for i, t in itertools.product(range(n), range(k)):
            full[i * s + t * d] += 1
        for pb, pe, op in itertools.product(range(2), range(2), range(min(s, d))):
            expected = len(full) - pb - pe + op
            assert conv_transpose_length(n, k, s, d, pb + pe, op) == expected


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_same_pads_and_conv_transpose_length_match_torch() -> None:
    torch = pytest.importorskip("torch")
    for k, d in itertools.product(range(1, 6), range(1, 3)):
        conv = torch.nn.Conv1d(1, 1, k, padding="same", dilation=d, bias=False)
        torch.nn.init.ones_(conv.weight)
        x = torch.zeros(1, 1, 21)
        x[0, 0, 10] = 1  # output o reads input o - pads_begin + t*d
        (begin,), (end,) = same_pads((k,), (d,))
        hits = [o for o in range(21) if conv(x)[0, 0, o].item() != 0]
        assert hits == sorted(10 + begin - t * d for t in range(k)), (k, d)
        assert begin + end == d * (k - 1)
    for n, k, s, p, op in itertools.product((3, 5), (2, 3, 4), (1, 2, 3), (0, 1), (0, 1)):
        if op >= s:
            continue
        up = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op)
        length = up(torch.zeros(1, 1, n)).shape[-1]
        assert conv_transpose_length(n, k, s, 1, 2 * p, op) == length

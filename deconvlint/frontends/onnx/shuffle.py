"""Recognise PixelShuffle / PixelUnshuffle exported as ``Reshape -> Transpose -> Reshape``.

``x (N, C*r^D, H...) -> Reshape(mid) -> Transpose(perm) -> Reshape(N, C, H*r...)``, for D = 1..3:

* depth to space, CRD (``torch.pixel_shuffle``): ``mid = [N, C, r_1..r_D, H_1..H_D]``,
  ``perm = [0, 1, 2+D, 2, 3+D, 3, ...]`` (2-D: ``[0, 1, 4, 2, 5, 3]``);
* depth to space, DCR (ONNX default, TF): ``mid = [N, r_1..r_D, C, H_1..H_D]``,
  ``perm = [0, 1+D, 2+D, 1, 3+D, 2, ...]`` (2-D: ``[0, 3, 4, 1, 5, 2]``);
* space to depth (``torch.pixel_unshuffle``): ``mid = [N, C, H_1, r_1, ..., H_D, r_D]``,
  ``perm = [0, 1, 3, 5, ..., 2, 4, ...]`` (2-D: ``[0, 1, 3, 5, 2, 4]``).

In 1-D the CRD and space-to-depth permutations coincide (``[0, 1, 3, 2]``); there a known dim
must confirm the reading.  Any known dim that contradicts it rejects the match.

>>> match_shuffle((1, 8, 5, 5), (1, 2, 2, 2, 5, 5), [0, 1, 4, 2, 5, 3], (1, 2, 10, 10))
ShuffleMatch(kind=<Kind.DEPTH_TO_SPACE: 'depth_to_space'>, block=(2, 2), mode='CRD')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deconvlint.core.ir import Kind


@dataclass(frozen=True)
class ShuffleMatch:
    kind: Kind
    block: tuple[int, ...]
    mode: str  # "CRD" or "DCR" (space to depth: "CRD", torch's channel order)


def _layouts(rank: int) -> list[tuple[Kind, str, list[int], list[int], int, list[int]]]:
    """(kind, mode, perm, block positions, channel position, spatial positions) of ``mid``."""
    d = rank
    crd = [0, 1] + [p for i in range(d) for p in (2 + d + i, 2 + i)]
    dcr = [0, 1 + d] + [p for i in range(d) for p in (2 + d + i, 1 + i)]
    s2d = [0, 1] + [3 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)]
    spatial = list(range(2 + d, 2 + 2 * d))
    return [
        (Kind.DEPTH_TO_SPACE, "CRD", crd, list(range(2, 2 + d)), 1, spatial),
        (Kind.DEPTH_TO_SPACE, "DCR", dcr, list(range(1, 1 + d)), 1 + d, spatial),
        (
            Kind.SPACE_TO_DEPTH,
            "CRD",
            s2d,
            [3 + 2 * i for i in range(d)],
            1,
            [2 + 2 * i for i in range(d)],
        ),
    ]


def _agree(a: Any, b: Any) -> bool | None:
    """True/False when both dims are known (ints or the same symbol), else None."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, str) and isinstance(b, str) and a and a == b:
        return True
    return None


def match_shuffle(
    x: Sequence[Any] | None, mid: Sequence[Any], perm: Sequence[int], out: Sequence[Any] | None
) -> ShuffleMatch | None:
    """The shuffle that ``Reshape(mid) -> Transpose(perm) -> Reshape(out)`` performs, if any."""
    if len(mid) % 2 or not 4 <= len(mid) <= 8 or out is None:
        return None
    d = len(mid) // 2 - 1
    if len(out) != d + 2 or (x is not None and len(x) != d + 2):
        return None
    for kind, mode, layout_perm, block_at, channel_at, spatial_at in _layouts(d):
        if list(perm) != layout_perm:
            continue
        block = [mid[p] for p in block_at]
        if not all(isinstance(b, int) and b >= 1 for b in block):
            continue
        r = math.prod(block)
        c, h = mid[channel_at], [mid[p] for p in spatial_at]

        def times(dim: Any, factor: int) -> Any:
            return dim * factor if isinstance(dim, int) else None

        x_dims = x if x is not None else [None] * (d + 2)
        if kind is Kind.DEPTH_TO_SPACE:  # (N, C*r, H) -> (N, C, H*r)
            checks = [_agree(x_dims[1], times(c, r)), _agree(out[1], c)]
            checks += [_agree(x_dims[2 + i], h[i]) for i in range(d)]
            checks += [_agree(out[2 + i], times(h[i], block[i])) for i in range(d)]
        else:  # (N, C, H*r) -> (N, C*r, H)
            checks = [_agree(x_dims[1], c), _agree(out[1], times(c, r))]
            checks += [_agree(x_dims[2 + i], times(h[i], block[i])) for i in range(d)]
            checks += [_agree(out[2 + i], h[i]) for i in range(d)]
        if False in checks:
            continue
        if d == 1 and mode == "CRD" and True not in checks:
            continue  # 1-D CRD and space to depth share the permutation: need evidence
        return ShuffleMatch(kind=kind, block=tuple(block), mode=mode)
    return None

"""DL006 strided-conv-gradient: a strided convolution or pool whose backward pass fans out
unevenly over the input phases (checkerboard gradients).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from deconvlint.core import geometry as geo
from deconvlint.core.ir import Kind, Node
from deconvlint.report import Finding
from deconvlint.rewrites import spellings
from deconvlint.rules.base import Context, pattern_text, spread_text, why_uneven

RULE_ID = "DL006"


def _weighted_phase_sums(node: Node, axis: int) -> np.ndarray:
    win = node.window[axis]
    taps = geo.node_taps(node, axis)
    phases = (np.arange(win.kernel) * win.dilation - win.pads_begin) % win.stride
    return np.bincount(phases, weights=taps, minlength=win.stride)


def check(ctx: Context) -> Iterator[Finding]:
    for node in ctx.graph.nodes:
        if node.kind not in (Kind.CONV, Kind.AVG_POOL, Kind.MAX_POOL):
            continue
        if all(w.stride == 1 for w in node.window):
            continue
        # backward fan-out per input phase: tap j reaches input phase (j*d - p) mod s
        fanouts = [_weighted_phase_sums(node, a) for a in range(node.spatial_rank)]
        if geo.patterns_uniform(fanouts):
            continue
        metrics = geo.pattern_metrics(fanouts)
        message = (
            f"strided {node.op_type}: backward fan-out per input phase "
            f"{pattern_text(metrics['pattern'])}, "
            f"{spread_text(metrics, node.spatial_rank)} ({why_uneven(node)}): "
            "checkerboard gradients"
        )
        yield ctx.finding(node, message, metrics, spellings.strided_rewrites(node))

"""What the weight-aware rules (DL007, DL008) share: the upsamplers whose weights were read,
their constant-input response, and its wording.

They read a layer's weights through ``Node.weights`` (see :data:`deconvlint.core.ir.WeightSource`)
and skip layers without any.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from deconvlint.core import weights as wg
from deconvlint.core.analysis import CELL_CAP, periodic_compensation
from deconvlint.core.geometry import MAX_SHOWN, plain_number
from deconvlint.core.ir import Kind, LayerWeights, Node
from deconvlint.rules.base import Context, fmt_number


@dataclass
class WeightedLayer:
    """An upsampler whose weights were read: the node findings name, the node whose output
    carries the pattern, its period per axis and its constant-input response."""

    node: Node  # the transposed conv, or the conv of a sub-pixel layer
    upsampler: Node  # the transposed conv, or the depth-to-space
    periods: tuple[int, ...]
    response: np.ndarray  # (C_out, *periods)
    weights: LayerWeights


def _read(node: Node) -> LayerWeights | None:
    if node.weights is None:
        return None
    try:
        return node.weights()
    except Exception:  # an unreadable tensor only costs the weight-aware rules this layer
        return None


def _feeding_conv(ctx: Context, shuffle: Node) -> Node | None:
    """The conv whose channels ``shuffle`` lays out, through pointwise ops (ReLU, PReLU)."""
    producers = ctx.graph.producers()
    value = shuffle.inputs[0] if shuffle.inputs else None
    while value is not None and value in producers:
        node = producers[value]
        if node.kind is Kind.CONV:
            return node
        if node.kind is not Kind.POINTWISE or len(node.inputs) != 1:
            return None
        value = node.inputs[0]
    return None


def weighted_layers(ctx: Context, subpixel_only: bool = False) -> Iterator[WeightedLayer]:
    """Every transposed conv and sub-pixel layer whose weights can be read (read once per
    graph); ``subpixel_only`` reads no transposed conv's weights (DL008 is on by default)."""
    cached = ctx.cache.weighted
    if subpixel_only not in cached:
        cached[subpixel_only] = list(_weighted_layers(ctx, subpixel_only))
    yield from cached[subpixel_only]


def _weighted_layers(ctx: Context, subpixel_only: bool) -> Iterator[WeightedLayer]:
    for node in ctx.graph.nodes:
        if node.kind is Kind.CONV_TRANSPOSE and not subpixel_only:
            w = _read(node)
            if w is None or w.kernel.ndim != node.spatial_rank + 2:
                continue
            periods = tuple(a.stride for a in node.window)
            if math.prod(periods) > CELL_CAP:  # more phases than the coverage pass composes
                continue
            response = wg.conv_transpose_response(w.kernel, w.bias, node.window, node.groups)
            yield WeightedLayer(node, node, periods, response, w)
        elif node.kind is Kind.DEPTH_TO_SPACE and node.block:
            conv = _feeding_conv(ctx, node)
            w = None if conv is None else _read(conv)
            cells = int(np.prod(node.block))
            if conv is None or w is None or w.kernel.shape[0] % cells:
                continue
            response = wg.subpixel_response(w.kernel, w.bias, node.block, node.depth_to_space_mode)
            yield WeightedLayer(conv, node, tuple(node.block), response, w)


def nested(array: np.ndarray) -> list:
    """The response as nested lists, at most :data:`MAX_SHOWN` entries per axis (a finding's
    output stays small whatever the period; ``period`` gives the full size)."""
    shown = np.asarray(array)[tuple(slice(0, MAX_SHOWN) for _ in range(np.ndim(array)))]
    return np.vectorize(plain_number, otypes=[object])(np.round(shown, 6)).tolist()


def weight_compensation(ctx: Context, layer: WeightedLayer) -> tuple[str | None, str, list[str]]:
    if not layer.upsampler.outputs:
        return None, "", []
    by = periodic_compensation(ctx.graph, layer.upsampler.outputs[0], layer.periods)
    if not by:
        return None, "", []
    names = ", ".join(f"'{b}'" for b in by)
    return "info", f"; compensated downstream by {names} (the period is cancelled there)", by


def layer_kind_text(layer: WeightedLayer) -> str:
    if layer.upsampler is layer.node:
        return "transposed conv"
    return (
        f"sub-pixel conv (through '{layer.upsampler.name}', {layer.upsampler.depth_to_space_mode})"
    )


def grid_text(response: np.ndarray) -> str:
    values = np.round(np.asarray(response, dtype=float), 4)
    more = ", ..." if len(values) > MAX_SHOWN else ""
    if values.ndim == 1:
        return "[" + ", ".join(fmt_number(v) for v in values[:MAX_SHOWN]) + more + "]"
    return "[" + ", ".join(grid_text(row) for row in values[:MAX_SHOWN]) + more + "]"

"""The weight-aware rules DL007 and DL008 (what the trained weights answer to a constant input)
and DL009 (what --probe measured).

They read a layer's weights through ``Node.weights`` (see :data:`deconvlint.core.ir.WeightSource`)
and skip layers without any.  Registered into :data:`deconvlint.rules.registry.RULES` on import.

>>> from deconvlint.core.chainspec import parse_chain
>>> from deconvlint.rules.registry import run_rules
>>> from deconvlint.core.ir import Graph
>>> from deconvlint.config.settings import Settings
>>> nodes = parse_chain("ConvTranspose1d(k=4, s=2, p=1, taps=(1, 2, 3, 4))")
>>> [(f.rule, f.metrics["response"]) for f in run_rules(
...     Graph("g", nodes, ("v0",), ("v1",)), Settings(select=("DL007",)))]
[('DL007', [6, 4])]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from deconvlint.core import weights as wg
from deconvlint.core.analysis import CELL_CAP, periodic_compensation
from deconvlint.core.geometry import MAX_SHOWN, json_number
from deconvlint.core.ir import Kind, LayerWeights, Node
from deconvlint.report import Finding, Suggestion
from deconvlint.rules.registry import Context, _fmt, rule


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
    key = "weighted-subpixel" if subpixel_only else "weighted"
    if key not in ctx._coverage:
        ctx._coverage[key] = list(_weighted_layers(ctx, subpixel_only))  # type: ignore[assignment]
    yield from ctx._coverage[key]  # type: ignore[misc]


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


def _nested(array: np.ndarray) -> list:
    """The response as nested lists, at most :data:`MAX_SHOWN` entries per axis (a finding's
    output stays small whatever the period; ``period`` gives the full size)."""
    shown = np.asarray(array)[tuple(slice(0, MAX_SHOWN) for _ in range(np.ndim(array)))]
    return np.vectorize(json_number, otypes=[object])(np.round(shown, 6)).tolist()


def _compensation(ctx: Context, layer: WeightedLayer) -> tuple[str | None, str, list[str]]:
    if not layer.upsampler.outputs:
        return None, "", []
    by = periodic_compensation(ctx.graph, layer.upsampler.outputs[0], layer.periods)
    if not by:
        return None, "", []
    names = ", ".join(f"'{b}'" for b in by)
    return "info", f"; compensated downstream by {names} (the period is cancelled there)", by


def _what(layer: WeightedLayer) -> str:
    if layer.upsampler is layer.node:
        return "transposed conv"
    return (
        f"sub-pixel conv (through '{layer.upsampler.name}', {layer.upsampler.depth_to_space_mode})"
    )


@rule("DL007")
def weight_phase_imbalance(ctx: Context) -> Iterator[Finding]:
    max_index = float(ctx.option("max-index"))
    for layer in weighted_layers(ctx):
        summary = wg.index_summary(layer.response)
        if summary["max_index"] <= max_index:
            continue
        severity, tail, by = _compensation(ctx, layer)
        response = summary["response"]
        metrics = {
            "checkerboard_index": json_number(round(summary["max_index"], 6)),
            "mean_index": json_number(round(summary["mean_index"], 6)),
            "worst_channel": summary["worst_channel"],
            "channels": int(layer.response.shape[0]),
            "response": _nested(response),
            "period": list(layer.periods),
            "compensated_by": by,
        }
        if layer.upsampler is not layer.node:
            metrics["shuffle"] = layer.upsampler.name
        shown = " x ".join(str(p) for p in layer.periods)
        message = (
            f"weight phase imbalance: the trained {_what(layer)} answers a constant input with "
            f"{_grid_text(response)} per output phase (period {shown}) on output channel "
            f"{summary['worst_channel']}: checkerboard index {_fmt(round(summary['max_index'], 4))}"
            f" > max-index {_fmt(max_index)} (mean over {layer.response.shape[0]} channels "
            f"{_fmt(round(summary['mean_index'], 4))}){tail}"
        )
        yield ctx.finding(layer.node, message, metrics, severity=severity)


def _grid_text(response: np.ndarray) -> str:
    values = np.round(np.asarray(response, dtype=float), 4)
    more = ", ..." if len(values) > MAX_SHOWN else ""
    if values.ndim == 1:
        return "[" + ", ".join(_fmt(v) for v in values[:MAX_SHOWN]) + more + "]"
    return "[" + ", ".join(_grid_text(row) for row in values[:MAX_SHOWN]) + more + "]"


@rule("DL008")
def subpixel_without_icnr(ctx: Context) -> Iterator[Finding]:
    for layer in weighted_layers(ctx, subpixel_only=True):
        shuffle = layer.upsampler
        kernels, biases = wg.subpixel_subkernels(
            layer.weights.kernel, layer.weights.bias, shuffle.block, shuffle.depth_to_space_mode
        )
        kernel_spread = max(wg.spread(k) for k in kernels)
        bias_spread = 0.0 if biases is None else max(wg.spread(b) for b in biases)
        if kernel_spread <= 1e-6 and bias_spread <= 1e-6:
            continue
        severity, tail, by = _compensation(ctx, layer)
        summary = wg.index_summary(layer.response)
        differ = [
            what
            for what, s in (("sub-kernels", kernel_spread), ("biases", bias_spread))
            if s > 1e-6
        ]
        cells = int(np.prod(shuffle.block))
        metrics = {
            "kernel_spread": json_number(round(kernel_spread, 6)),
            "bias_spread": json_number(round(bias_spread, 6)),
            "checkerboard_index": json_number(round(summary["max_index"], 6)),
            "response": _nested(summary["response"]),
            "period": list(layer.periods),
            "shuffle": shuffle.name,
            "mode": shuffle.depth_to_space_mode,
            "compensated_by": by,
        }
        message = (
            f"sub-pixel conv without ICNR: the {cells} {' and '.join(differ)} that "
            f"'{shuffle.name}' ({shuffle.depth_to_space_mode}) lays out on each "
            f"{' x '.join(str(b) for b in shuffle.block)} block differ (largest relative "
            f"difference {_fmt(round(max(kernel_spread, bias_spread), 4))}); a constant input "
            f"gives {_grid_text(summary['response'])} on channel {summary['worst_channel']}, "
            f"checkerboard index {_fmt(round(summary['max_index'], 4))}{tail}"
        )
        r = shuffle.block[0] if len(set(shuffle.block)) == 1 else max(shuffle.block)
        where = _python_name(layer.node.name)
        code = (
            f"# conv = {where}\n" if where else f"# conv: the layer '{layer.node.name}'\n"
        ) + wg.icnr_code("conv", r, len(shuffle.block), shuffle.depth_to_space_mode)
        suggestion = Suggestion(
            title="ICNR initialisation: identical sub-kernels per output channel, zero bias",
            params={"r": r, "mode": shuffle.depth_to_space_mode},
            code=code,
        )
        yield ctx.finding(layer.node, message, metrics, [suggestion], severity)


def _python_name(node_name: str) -> str | None:
    """``decoder.0.conv`` -> ``model.decoder[0].conv``: a module's qualified name as Python;
    ``None`` for other names (an exporter's ``/decoder/0/Conv``)."""
    parts = []
    for part in node_name.split("."):
        if part.isdigit():
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(f".{part}")
        else:
            return None
    return "model" + "".join(parts) if parts else None


@rule("DL009")
def measured_periodic_artifact(ctx: Context) -> Iterator[Finding]:
    measured = ctx.graph.measurements
    if not measured:
        return
    max_db = float(ctx.option("max-db"))
    outputs = [m for m in measured.values() if m.output]
    outputs_clean = bool(outputs) and all(m.db <= max_db for m in outputs)
    for node in ctx.graph.nodes:
        m = measured.get(node.name)
        if m is None or m.db <= max_db:
            continue
        # an intermediate artifact that no graph output shows: something later removed it
        severity, tail = (
            ("info", "; every graph output measures below max-db")
            if outputs_clean and not m.output
            else (None, "")
        )
        where = f"graph output '{m.value}'" if m.output else f"the output of {node.op_type}"
        peak = " x ".join(str(f) for f in m.peak)
        message = (
            f"measured periodic artifact: on smooth probe inputs, {where} carries "
            f"{_fmt(round(m.db, 1))} dB of energy at the harmonics of its period "
            f"{' x '.join(str(p) for p in m.periods)} against the smooth signal (> max-db "
            f"{_fmt(max_db)}); strongest at {peak} cycles/sample ({_fmt(round(m.peak_db, 1))} dB)"
            f"{tail}"
        )
        yield ctx.finding(node, message, m.to_metrics(), severity=severity)


def annotate_measurements(graph_measurements: dict, findings: list[Finding]) -> None:
    """Add what the probe measured at a finding's node (or its shuffle) to its metrics."""
    for f in findings:
        if f.rule == "DL009":
            continue
        m = graph_measurements.get(f.node) or graph_measurements.get(f.metrics.get("shuffle", ""))
        if m is not None:
            f.metrics["measured_db"] = round(m.db, 2)

"""The probe's torch runner: forward hooks on the upsampling modules named in the graph, and the
model's own outputs, on the probe inputs (``torch.no_grad``, eval mode, float32).

Nodes the torch front end made from a function call (``F.interpolate`` inside ``forward``) have
no module to hook: only their effect on the graph outputs is measured.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from deconvlint.core.ir import Graph
from deconvlint.errors import one_line
from deconvlint.probe.measure import (
    Measurement,
    ProbeError,
    ProbeRun,
    measurements,
    probe_inputs,
    probe_targets,
)


def _tensors(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def probe_module(
    module: Any, graph: Graph, input_shapes: Sequence[Sequence[int]]
) -> dict[str, Measurement]:
    """Run the probe on ``module`` (already translated to ``graph``) fed ``input_shapes``."""
    import torch

    if not input_shapes:
        raise ProbeError("--probe: the model's input shapes are unknown; pass --input-shape")
    named = dict(module.named_modules())
    hooked: dict[str, str] = {}  # module name -> value
    outputs: list[str] = []
    for node, value, _periods, is_output in probe_targets(graph):
        if is_output:
            outputs.append(value)
        if node in named and named[node] is not module:
            hooked[node] = value
    run = ProbeRun()
    current: dict[str, Any] = {}
    handles = [
        named[name].register_forward_hook(
            lambda _m, _a, out, value=value: current.__setitem__(value, out)
        )
        for name, value in hooked.items()
    ]
    order = list(graph.outputs)
    try:
        with torch.no_grad():
            for feeds in probe_inputs([tuple(s) for s in input_shapes]):
                current.clear()
                inputs = [torch.from_numpy(x.astype(np.float32)) for x in feeds]
                start = time.perf_counter()
                try:
                    result = module(*inputs)
                except Exception as exc:
                    raise ProbeError(
                        f"--probe: the model failed on the probe inputs "
                        f"{[tuple(s) for s in input_shapes]}: {type(exc).__name__}: "
                        f"{one_line(exc)[:300]}"
                    ) from None
                run.seconds += time.perf_counter() - start
                returned = _tensors(result)
                if len(returned) == len(order):
                    current.update(zip(order, returned, strict=True))
                for value, tensor in current.items():
                    tensors = _tensors(tensor)
                    if tensors:
                        array = tensors[0].detach().to("cpu").double().numpy()
                        run.captured.setdefault(value, []).append(array)
    finally:
        for handle in handles:
            handle.remove()
    return measurements(graph, run)

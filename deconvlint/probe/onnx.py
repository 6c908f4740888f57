"""The probe's ONNX runner: onnxruntime on a copy of the model whose upsampler outputs are also
graph outputs.  onnxruntime is an optional extra (``deconvlint[probe]``), imported here only.

Input shapes come from the model; a symbolic batch dimension is taken as 1; any other dynamic
dimension needs ``--input-shape`` (one per input, in the model's order).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deconvlint.core.ir import Graph
from deconvlint.errors import one_line
from deconvlint.files import open_regular
from deconvlint.probe.measure import Measurement, ProbeError, ProbeRun, measurements, probe_inputs

INSTALL_HINT = "pip install 'deconvlint[probe]'"


def _input_shapes(
    model: Any, graph: Graph, given: Sequence[Sequence[int]]
) -> list[tuple[str, tuple[int, ...], Any]]:
    """``(name, shape, numpy dtype)`` of every data input."""
    from onnx import helper

    infos = [v for v in model.graph.input if v.name in graph.inputs]
    if given and len(given) != len(infos):
        raise ProbeError(
            f"--probe: --input-shape given {len(given)} times, the model has {len(infos)} inputs"
        )
    found = []
    for index, info in enumerate(infos):
        tensor_type = info.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if dtype.kind != "f":
            raise ProbeError(f"--probe: input {info.name!r} is {dtype}, not floating point")
        if given:
            found.append((info.name, tuple(given[index]), dtype))
            continue
        dims = list(tensor_type.shape.dim) if tensor_type.HasField("shape") else None
        if dims is None:
            raise ProbeError(
                f"--probe: input {info.name!r} has no static shape; pass --input-shape"
            )
        shape = []
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
            elif axis == 0:
                shape.append(1)  # a dynamic batch
            else:
                raise ProbeError(
                    f"--probe: input {info.name!r} has the dynamic dimension "
                    f"{dim.dim_param or '?'!r} at axis {axis}; pass --input-shape"
                )
        found.append((info.name, tuple(shape), dtype))
    return found


def _session(model: Any) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ProbeError(
            f"--probe: onnxruntime is not installed, the probe cannot run ({INSTALL_HINT})"
        ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        return ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ProbeError(
            f"--probe: onnxruntime cannot run the model: {one_line(exc)[:300]}"
        ) from None


def _inline_every_external_tensor(model: Any, base_dir: Path | None) -> None:
    """Read all external data into ``model`` ourselves, wherever a tensor hides (subgraphs,
    functions, attributes): onnxruntime, handed the bytes of a model that still names files,
    would resolve them against the current folder, outside the model's folder rule."""
    from deconvlint.frontends.onnx.tensors import inline_external, is_external, model_tensors

    for tensor in model_tensors(model):
        if is_external(tensor):
            try:
                inline_external(tensor, base_dir)
            except ValueError as exc:
                raise ProbeError(f"--probe: {one_line(exc)}") from None


def probe_onnx(
    source: str | os.PathLike | Any, graph: Graph, input_shapes: Sequence[Sequence[int]] = ()
) -> dict[str, Measurement]:
    """Run the probe on an ONNX file (or ``ModelProto``) already translated to ``graph``."""
    import onnx

    from deconvlint.probe.measure import probe_targets

    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        base_dir = None
    else:
        path = Path(os.fspath(source))
        with open_regular(path) as handle:
            model = onnx.load_model_from_string(handle.read())
        base_dir = path.parent
    _inline_every_external_tensor(model, base_dir)
    inputs = _input_shapes(model, graph, input_shapes)
    known = {o.name for o in model.graph.output}
    produced = {out for node in model.graph.node for out in node.output}
    wanted = [v for _, v, _, _ in probe_targets(graph)]
    for value in wanted:
        if value in produced and value not in known:
            model.graph.output.append(onnx.ValueInfoProto(name=value))
            known.add(value)
    session = _session(model)
    names = [o.name for o in session.get_outputs()]
    run = ProbeRun()
    for feeds in probe_inputs([shape for _, shape, _ in inputs]):
        start = time.perf_counter()
        try:
            results = session.run(
                None,
                {name: x.astype(dtype) for (name, _, dtype), x in zip(inputs, feeds, strict=True)},
            )
        except Exception as exc:
            raise ProbeError(
                f"--probe: onnxruntime failed on the probe inputs "
                f"{[s for _, s, _ in inputs]}: {one_line(exc)[:300]}"
            ) from None
        run.seconds += time.perf_counter() - start
        for name, value in zip(names, results, strict=True):
            if name in wanted and isinstance(value, np.ndarray):
                run.captured.setdefault(name, []).append(value)
    return measurements(graph, run)

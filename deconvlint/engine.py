"""Glue between front ends, analysis and rules: one model in, one :class:`FileResult` out.

>>> from deconvlint.core.chainspec import parse_chain
>>> from deconvlint.core.ir import Graph
>>> nodes = parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1)")
>>> graph = Graph(name="demo", nodes=nodes, inputs=("v0",), outputs=("v1",))
>>> [finding] = check_graph(graph)
>>> finding.rule, [(o["output"], o["pattern"]) for o in finding.metrics["outputs"]]
('DL001', [('v1', [[1, 2], [1, 2]])])

The pattern that reaches the output (DL004) is the layer's own, so it is told with the layer's
DL001 rather than as a finding of its own.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from deconvlint.config.settings import Settings
from deconvlint.core.ir import Graph
from deconvlint.errors import DeconvlintError, one_line
from deconvlint.report import FileResult, Finding

if TYPE_CHECKING:
    from deconvlint.frontends.target import ModelSpec


def check_graph(graph: Graph, settings: Settings | None = None) -> list[Finding]:
    """Run every enabled rule on ``graph``; findings sorted by node order, then rule id."""
    from deconvlint.rules.registry import run_rules

    return run_rules(graph, settings or Settings())


def check_path(
    path: str | os.PathLike, settings: Settings | None = None, *, raise_errors: bool = False
) -> FileResult:
    """Load one ONNX file and check it; a model that cannot be read gives ``FileResult.error``.

    The error is one line naming the cause (the path is in ``FileResult.path``).  With
    ``raise_errors`` the :class:`DeconvlintError` propagates instead (``--debug`` shows it).
    """
    from deconvlint.frontends.onnx.reader import load_graph

    shown = os.fspath(path)
    try:
        graph = load_graph(path)
        if settings is not None and settings.probe:
            from deconvlint.probe.onnx import probe_onnx

            graph.measurements = probe_onnx(path, graph, settings.probe_input_shapes)
        findings = check_graph(graph, settings)
    except DeconvlintError as exc:
        if raise_errors:
            raise
        return FileResult(path=shown, error=one_line(exc))
    return FileResult(path=shown, findings=findings)


def check_target(
    target: str | os.PathLike | ModelSpec,
    settings: Settings | None = None,
    *,
    trust_pickle: bool = False,
    timeout: float | None = None,
    raise_errors: bool = False,
) -> FileResult:
    """Check a module target (``"pkg.models:Generator"``) or a model file of any kind.

    A ``.py`` file is Python source (:mod:`deconvlint.source`: parsed, never imported).  Any
    other file is recognised by :func:`deconvlint.frontends.target.file_format` (a ``*.onnx`` name is
    ONNX; else its content): ONNX goes to the ONNX front end exactly as :func:`check_path` does,
    a ``.pt2`` to the archive reader that runs nothing (``torch.export.load`` with
    ``trust_pickle``), a TorchScript archive, or a pickle, only with ``trust_pickle``.  A
    :class:`~deconvlint.frontends.target.ModelSpec` carries the ``kwargs`` and the
    example input shapes; ``FileResult.path`` is the target as given.

    >>> [(f.node, f.rule) for f in check_target("examples/cyclegan_decoder.onnx").findings]
    [('decoder.up1', 'DL001'), ('decoder.up2', 'DL001'), ('decoder.up2', 'DL003')]
    >>> import torch  # a module target is a torch model: it needs the torch extra
    >>> print(check_target("no_such_package.models:Generator").error)
    cannot import no_such_package.models: ModuleNotFoundError: No module named 'no_such_package'
    """
    from deconvlint.frontends.target import ModelSpec, load_target

    spec = target if isinstance(target, ModelSpec) else ModelSpec(os.fspath(target))
    if spec.target.endswith(".py") and os.path.isfile(spec.target):
        from deconvlint.source import check_file  # Python source: parsed, never imported

        return check_file(spec.target, settings).result
    try:
        graph, module = load_target(spec, trust_pickle=trust_pickle, timeout=timeout)
        if settings is not None and settings.probe:
            graph.measurements = _probe_target(spec, graph, settings, module)
        findings = check_graph(graph, settings)
    except DeconvlintError as exc:
        if raise_errors:
            raise
        return FileResult(path=spec.target, error=one_line(exc))
    return FileResult(path=spec.target, findings=findings, notes=list(graph.report_notes))


def _probe_target(spec: ModelSpec, graph: Graph, settings: Settings, module: Any) -> dict:
    """``--probe`` on a target: onnxruntime for an ONNX file, torch for a module target."""
    from deconvlint.frontends.target import FileFormat, file_format
    from deconvlint.probe.measure import ProbeError

    shapes = settings.probe_input_shapes or spec.input_shapes
    onnx_file = os.path.exists(spec.target) and (
        file_format(spec.target, sniffed=not spec.onnx_only) is FileFormat.ONNX
    )
    if onnx_file:
        from deconvlint.probe.onnx import probe_onnx

        return probe_onnx(spec.target, graph, shapes)
    if module is not None:
        from deconvlint.probe.torch import probe_module

        return probe_module(module, graph, shapes)
    raise ProbeError(
        "--probe runs ONNX files and package.module:attribute targets; export this model to "
        "ONNX to probe it"
    )

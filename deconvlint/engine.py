"""Glue between front ends, analysis and rules: one target in, one :class:`FileResult` out.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deconvlint.config.settings import Settings
from deconvlint.errors import DeconvlintError, one_line
from deconvlint.report import FileResult, Finding

if TYPE_CHECKING:
    from deconvlint.core.ir import Graph
    from deconvlint.frontends.load import Loaded
    from deconvlint.frontends.target import ModelSpec


@dataclass(frozen=True)
class RunOptions:
    """How a run is done, as opposed to what it judges (:class:`Settings`)."""

    probe: bool = False  # run the model on smooth inputs and measure the artifacts (rule DL009)
    trust_pickle: bool = False  # load torch files whose loading runs code from the file
    timeout: float | None = None  # seconds a torch model's forward pass (or trace) may take


def check_graph(
    graph: Graph,
    settings: Settings | None = None,
    measurements: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Run every enabled rule on ``graph``; findings sorted by node order, then rule id.
    ``measurements``: what the probe measured, by node name."""
    from deconvlint.rules.registry import run_rules

    return run_rules(graph, settings or Settings(), measurements)


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
        findings = check_graph(load_graph(path), settings)
    except DeconvlintError as exc:
        if raise_errors:
            raise
        return FileResult(path=shown, error=one_line(exc))
    return FileResult(path=shown, findings=findings)


def check_loaded(
    loaded: Loaded, settings: Settings | None = None, options: RunOptions | None = None
) -> FileResult:
    """The rules (and with ``options.probe`` the probe) on a model :func:`load` has read."""
    measurements = measure(loaded) if options is not None and options.probe else None
    findings = check_graph(loaded.graph, settings, measurements)
    return FileResult(path=loaded.path, findings=findings, notes=list(loaded.graph.report_notes))


def measure(loaded: Loaded) -> dict:
    """The probe on a loaded model: onnxruntime for ONNX (a file or a ``ModelProto``), torch for
    a module (a module target, or an object), fed :meth:`Loaded.probe_shapes`."""
    from deconvlint.probe.measure import ProbeError

    if loaded.onnx is not None:
        from deconvlint.probe.onnx import probe_onnx

        return probe_onnx(loaded.onnx, loaded.graph, loaded.probe_shapes())
    if loaded.module is not None:
        from deconvlint.probe.torch import probe_module

        return probe_module(loaded.module, loaded.graph, loaded.probe_shapes())
    if loaded.frontend == "keras":
        raise ProbeError(
            "--probe runs models with onnxruntime or torch, and a Keras file runs only in "
            "Keras, which deconvlint does not import; export it to ONNX "
            "(model.export('model.onnx', format='onnx')) and probe that file"
        )
    raise ProbeError(
        "--probe runs ONNX files and package.module:attribute targets; export this model to "
        "ONNX to probe it"
    )


def check_target(
    target: str | os.PathLike | ModelSpec,
    settings: Settings | None = None,
    options: RunOptions | None = None,
    *,
    raise_errors: bool = False,
) -> FileResult:
    """Check a module target (``"pkg.models:Generator"``) or a model file of any kind.

    A ``.py`` file is Python source (:mod:`deconvlint.source`: parsed, never imported); anything
    else goes to :func:`deconvlint.frontends.load.load`.  A
    :class:`~deconvlint.frontends.target.ModelSpec` carries the ``kwargs`` and the example input
    shapes; ``FileResult.path`` is the target as given.  A target that cannot be read gives
    ``FileResult.error``, one line; with ``raise_errors`` the :class:`DeconvlintError`
    propagates instead (``--debug`` shows it).

    >>> [(f.node, f.rule) for f in check_target("examples/cyclegan_decoder.onnx").findings]
    [('decoder.up1', 'DL001'), ('decoder.up2', 'DL001'), ('decoder.up2', 'DL003')]
    >>> import torch  # a module target is a torch model: it needs the torch extra
    >>> print(check_target("no_such_package.models:Generator").error)
    cannot import no_such_package.models: ModuleNotFoundError: No module named 'no_such_package'
    """
    from deconvlint.frontends.load import load
    from deconvlint.frontends.target import ModelSpec

    spec = target if isinstance(target, ModelSpec) else ModelSpec(os.fspath(target))
    if spec.target.endswith(".py") and os.path.isfile(spec.target):
        from deconvlint.source import check_file  # Python source: parsed, never imported

        return check_file(spec.target, settings).result
    options = options or RunOptions()
    try:
        loaded = load(spec, trust_pickle=options.trust_pickle, timeout=options.timeout)
        return check_loaded(loaded, settings, options)
    except DeconvlintError as exc:
        if raise_errors:
            raise
        return FileResult(path=spec.target, error=one_line(exc))

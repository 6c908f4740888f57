"""The Python API: check a model from a script or a test, and get a :class:`Report` back.

:func:`check` takes what a Python user holds (a ``torch.nn.Module``, a
``torch.export.ExportedProgram``, an ``onnx.ModelProto`` or the path of an ONNX file), runs the
same rules with the same settings as the command line, and returns the report; ``print(report)``
shows the text the CLI prints.  :func:`assert_clean` is the pytest form.  Nothing here imports
torch or onnx until a target needs it.

A target that cannot be read raises the :mod:`deconvlint.errors` exception (``LoadError``,
``TraceError``), and wrong settings raise ``ConfigError``: an API user wants an exception, not
an error line in the report.  A target of an unsupported type is a ``TypeError``.

>>> report = check("examples/cyclegan_decoder.onnx", select="DL001")
>>> [(f.node, f.rule, f.severity) for f in report.findings]
[('decoder.up1', 'DL001', 'warning'), ('decoder.up2', 'DL001', 'warning')]
>>> report.frontend
'onnx'
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deconvlint.config.settings import Settings
from deconvlint.errors import ConfigError, LoadError, one_line
from deconvlint.report import SEVERITIES, FileResult, Finding, Report, severity_rank

if TYPE_CHECKING:
    from deconvlint.core.ir import Graph

__all__ = ["DeconvLintWarning", "assert_clean", "check"]

#: Rule ids or prefixes: ``"DL001,DL003"``, ``"DL00"``, ``["DL001", "DL003"]``.
Selectors = str | Iterable[str]


class DeconvLintWarning(UserWarning):
    """One finding, issued by ``check(..., warn=True)``; the finding is ``.finding``.

    Filter them like any warning, e.g. ``warnings.simplefilter("error", DeconvLintWarning)``
    or pytest's ``-W error::deconvlint.DeconvLintWarning``.

    >>> f = Finding("DL001", "uneven-overlap", "warning", "up1", "ConvTranspose", "uneven")
    >>> w = DeconvLintWarning(warning_message(f), f)
    >>> str(w), w.finding.rule
    ('up1: DL001 [warning] uneven', 'DL001')
    """

    def __init__(self, message: str, finding: Finding | None = None) -> None:
        super().__init__(message)
        self.finding = finding


def warning_message(finding: Finding) -> str:
    """``"{node}: {rule} [{severity}] {message}"``, the text of a :class:`DeconvLintWarning`."""
    return f"{finding.node}: {finding.rule} [{finding.severity}] {finding.message}"


# --- settings -----------------------------------------------------------------------------------


def _selectors(name: str, value: Selectors | None, catalogue: dict) -> tuple[str, ...] | None:
    from deconvlint.config.load import parse_selectors

    if value is None:
        return None
    values: Any = value.split(",") if isinstance(value, str) else value
    if not isinstance(values, list) and isinstance(values, Iterable):
        values = list(values)  # a tuple or a set; parse_selectors names anything else
    try:
        return parse_selectors(values, catalogue)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _options_of(settings: Settings, catalogue: dict) -> Any:
    """A resolved :class:`Settings` as the file layer of a merge: its rules spelt out."""
    from deconvlint.config.load import Options

    enabled = tuple(r for r, doc in catalogue.items() if settings.is_enabled(r, doc.default))
    return Options(
        select=enabled,
        fail_on=settings.fail_on,
        per_node_ignores=dict(settings.per_node_ignores),
        rule_options={rule: dict(opts) for rule, opts in settings.rule_options.items()},
    )


def resolve_settings(
    config: str | os.PathLike | Settings | None = None,
    *,
    select: Selectors | None = None,
    ignore: Selectors | None = None,
    extend_select: Selectors | None = None,
    fail_on: str | None = None,
    stacklevel: int = 2,
) -> Settings:
    """The :class:`Settings` :func:`check` uses: the configuration, then the keywords.

    ``config`` is a configuration file, a :class:`Settings`, or ``None`` for the file found
    from the current folder upwards, as the CLI finds it.  The keywords are layered on top
    as the CLI's flags are: ``select`` starts over, ``extend_select`` adds, ``ignore`` removes.

    A prefix never selects an opt-in rule (DL006, DL007): only its exact id does.

    >>> resolve_settings(Settings(), select="DL00", ignore=["DL004"]).select
    ('DL001', 'DL002', 'DL003', 'DL005', 'DL008', 'DL009')
    >>> resolve_settings(Settings(), select="DL00", extend_select=["DL006"]).select
    ('DL001', 'DL002', 'DL003', 'DL004', 'DL005', 'DL006', 'DL008', 'DL009')
    """
    from deconvlint.config.load import Options, discover_config, load_config, merge
    from deconvlint.rules.catalogue import load_catalogue

    catalogue = load_catalogue()
    if isinstance(config, Settings):
        file_layer = _options_of(config, catalogue)
    elif config is not None:
        file_layer = load_config(Path(os.fspath(config)), catalogue)
    else:
        found = discover_config()
        for note in found.warnings:  # the CLI prints these on stderr
            warnings.warn(note, UserWarning, stacklevel=stacklevel + 1)
        file_layer = Options() if found.path is None else load_config(found.path, catalogue)
    if fail_on is not None and fail_on not in SEVERITIES:
        raise ConfigError(f"fail_on: expected one of {', '.join(SEVERITIES)}, got {fail_on!r}")
    flags = Options(
        select=_selectors("select", select, catalogue),
        extend_select=_selectors("extend_select", extend_select, catalogue),
        ignore=_selectors("ignore", ignore, catalogue),
        fail_on=fail_on,
    )
    return merge(file_layer, flags, catalogue)


# --- reading the target ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    graph: Graph
    frontend: str  # "onnx", "fx", "export" or "hooks"
    path: str  # shown in front of every finding, as the CLI shows a file's path


def _inputs_tuple(example_inputs: Any) -> tuple[Any, ...] | None:
    if example_inputs is None or isinstance(example_inputs, tuple):
        return example_inputs
    if isinstance(example_inputs, list):
        return tuple(example_inputs)
    return (example_inputs,)  # one tensor


def _torch_front_end() -> Any:
    try:
        from deconvlint.frontends.torch import load as front_end
    except ImportError as exc:
        cause = one_line(exc)
        raise LoadError(f"the torch front end is not available: {cause}") from exc
    return front_end


def _read(target: Any, example_inputs: Any, timeout: float | None) -> _Read:
    if isinstance(target, (str, os.PathLike)):
        from deconvlint.errors import LoadError
        from deconvlint.frontends.onnx.reader import load_graph

        try:
            return _Read(load_graph(target), "onnx", os.fspath(target))
        except LoadError as exc:  # name the path, as the CLI's error line does
            raise LoadError(f"{os.fspath(target)}: {exc}") from exc
    onnx = sys.modules.get("onnx")  # a ModelProto means onnx is imported already
    if onnx is not None and isinstance(target, onnx.ModelProto):
        from deconvlint.frontends.onnx.reader import graph_from_model

        name = target.graph.name or "model"
        return _Read(graph_from_model(target, name=name), "onnx", f"<{name}>")
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(target, torch.export.ExportedProgram):
            graph = _torch_front_end().graph_from_exported(target)
            return _Read(graph, "export", "<ExportedProgram>")
        if isinstance(target, torch.nn.Module):
            graph, tracer = _torch_front_end().load_module(
                target, _inputs_tuple(example_inputs), timeout=timeout
            )
            return _Read(graph, tracer, f"<{type(target).__name__}>")
    raise TypeError(
        "deconvlint.check expects a torch.nn.Module, a torch.export.ExportedProgram, an "
        f"onnx.ModelProto or the path of an ONNX file, not {type(target).__name__}"
    )


def _probe(target: Any, graph: Any, example_inputs: Any) -> dict:
    """``probe=True``: onnxruntime for ONNX, torch for a module fed ``example_inputs``' shapes."""
    from deconvlint.probe.measure import ProbeError

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(target, torch.nn.Module):
        from deconvlint.probe.torch import probe_module

        shapes = [tuple(x.shape) for x in _inputs_tuple(example_inputs) or ()]
        return probe_module(target, graph, shapes)
    if isinstance(target, torch.export.ExportedProgram if torch is not None else ()):
        raise ProbeError("probe=True needs an nn.Module or ONNX, not an ExportedProgram")
    from deconvlint.probe.onnx import probe_onnx

    return probe_onnx(target, graph)


# --- checking -------------------------------------------------------------------------------------


def _run(
    target: Any,
    example_inputs: Any,
    *,
    select: Selectors | None,
    ignore: Selectors | None,
    extend_select: Selectors | None,
    fail_on: str | None,
    config: str | os.PathLike | Settings | None,
    warn: bool,
    timeout: float | None,
    stacklevel: int,
    probe: bool = False,
) -> tuple[Report, Settings]:
    from deconvlint.engine import check_graph

    settings = resolve_settings(
        config,
        select=select,
        ignore=ignore,
        extend_select=extend_select,
        fail_on=fail_on,
        stacklevel=stacklevel + 1,
    )
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(target, torch.nn.Module):
        from deconvlint.frontends.torch.names import library_root_call, remember_root_call

        # a model built by a library's class: its findings point at the caller's call of it
        remember_root_call(target, library_root_call(target, sys._getframe(stacklevel)))
    read = _read(target, example_inputs, timeout)
    if probe:
        read.graph.measurements = _probe(target, read.graph, example_inputs)
    findings = check_graph(read.graph, settings)
    result = FileResult(read.path, findings, notes=list(read.graph.report_notes))
    report = Report([result], frontend=read.frontend)
    if warn:  # an info finding is information, not a warning (as --fail-on's default says)
        for finding in (f for f in findings if f.severity != "info"):
            warnings.warn(
                DeconvLintWarning(warning_message(finding), finding), stacklevel=stacklevel + 1
            )
    return report, settings


def check(
    target: Any,
    example_inputs: Any = None,
    *,
    select: Selectors | None = None,
    ignore: Selectors | None = None,
    extend_select: Selectors | None = None,
    fail_on: str | None = None,
    config: str | os.PathLike | Settings | None = None,
    warn: bool = False,
    timeout: float | None = None,
    probe: bool = False,
) -> Report:
    """Check one model with the CLI's rules and settings; ``print(report)`` shows the findings.

    ``target``: a ``torch.nn.Module`` (``example_inputs``, a tensor or a tuple of tensors,
    feed it when tracing needs shapes; ``timeout`` bounds the tracing in seconds), a
    ``torch.export.ExportedProgram``, an ``onnx.ModelProto``, or the path of an ONNX file
    (``example_inputs`` is not needed for these).  ``report.frontend`` says which reader was
    used: ``"onnx"``, ``"fx"``, ``"export"`` or ``"hooks"``.

    Settings: ``config`` (a file, a :class:`Settings`, or ``None`` for the file discovered from
    the current folder, as the CLI does), then the keywords, which win as the CLI's flags do.
    ``fail_on`` does not change the report; it is the threshold of :func:`assert_clean` and of
    ``report.exit_code``.  With ``warn=True`` each finding at warning or error is also issued as a
    :class:`DeconvLintWarning`.  ``probe=True`` runs the model on smooth inputs (torch for a
    module, fed the shapes of ``example_inputs``; onnxruntime for ONNX) and adds rule DL009.

    Raises ``LoadError`` / ``TraceError`` (from :mod:`deconvlint.errors`) for a target that
    cannot be read, ``ConfigError`` for wrong settings, ``TypeError`` for an unsupported target.

    >>> report = check("examples/stylegan_blur.onnx")
    >>> [(f.rule, f.severity) for f in report.findings]
    [('DL001', 'info')]
    """
    report, _ = _run(
        target,
        example_inputs,
        select=select,
        ignore=ignore,
        extend_select=extend_select,
        fail_on=fail_on,
        config=config,
        warn=warn,
        timeout=timeout,
        stacklevel=2,
        probe=probe,
    )
    return report


def failing_report(report: Report, fail_on: str) -> Report:
    """The part of ``report`` at or above ``fail_on``, for the message of :func:`assert_clean`."""
    threshold = severity_rank(fail_on)
    return Report(
        [
            FileResult(
                r.path,
                [f for f in r.findings if severity_rank(f.severity) >= threshold],
                r.error,
                r.notes,
            )
            for r in report.results
        ],
        frontend=report.frontend,
    )


def assert_clean(
    target: Any,
    example_inputs: Any = None,
    *,
    select: Selectors | None = None,
    ignore: Selectors | None = None,
    extend_select: Selectors | None = None,
    fail_on: str | None = None,
    config: str | os.PathLike | Settings | None = None,
    warn: bool = False,
    timeout: float | None = None,
    probe: bool = False,
) -> Report:
    """:func:`check`, then ``AssertionError`` if a finding is at or above ``fail_on``.

    ``fail_on`` defaults to the configuration's ``fail-on``, else ``"warning"``.  The message
    is the text report of the failing findings, as the CLI prints them; otherwise the full
    report is returned::

        def test_generator_has_no_checkerboard():
            deconvlint.assert_clean(Generator(), example_inputs=(torch.randn(1, 100, 1, 1),))
    """
    report, settings = _run(
        target,
        example_inputs,
        select=select,
        ignore=ignore,
        extend_select=extend_select,
        fail_on=fail_on,
        config=config,
        warn=warn,
        timeout=timeout,
        stacklevel=2,
        probe=probe,
    )
    failing = failing_report(report, settings.fail_on)
    count = len(failing.findings)
    if count:
        plural = "finding" if count == 1 else "findings"
        raise AssertionError(
            f"deconvlint: {count} {plural} at or above {settings.fail_on!r}\n{failing}"
        )
    return report

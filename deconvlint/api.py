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
from typing import Any

from deconvlint.config.settings import Settings
from deconvlint.errors import LoadError
from deconvlint.report import FileResult, Finding, Report, severity_rank

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
    from deconvlint.config import resolve

    def warn(note: str) -> None:  # the CLI prints these on stderr
        # stacklevel counts this function and the resolver's frame too
        warnings.warn(note, UserWarning, stacklevel=stacklevel + 3)

    return resolve.resolve_settings(
        config,
        select=select,
        extend_select=extend_select,
        ignore=ignore,
        fail_on=fail_on,
        warn=warn,
    ).settings


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
    from deconvlint.engine import RunOptions, check_loaded
    from deconvlint.frontends.load import load
    from deconvlint.frontends.target import ModelSpec

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
    path = os.fspath(target) if isinstance(target, (str, os.PathLike)) else None
    try:  # a path is read as its name says (Keras for .keras and .h5, else ONNX), never sniffed
        loaded = load(
            ModelSpec(path, onnx_only=True) if path is not None else target,
            example_inputs,
            timeout=timeout,
        )
    except LoadError as exc:
        if path is None:
            raise
        raise LoadError(f"{path}: {exc}") from exc  # name the path, as the CLI's error line does
    if probe and loaded.module is None and loaded.onnx is None:
        from deconvlint.probe.measure import ProbeError

        what = "a Keras file" if loaded.frontend == "keras" else "an ExportedProgram"
        raise ProbeError(f"probe=True needs an nn.Module or ONNX, not {what}")
    result = check_loaded(loaded, settings, RunOptions(probe=probe, timeout=timeout))
    findings = result.findings
    report = Report([result], frontend=loaded.frontend)
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
    ``torch.export.ExportedProgram``, an ``onnx.ModelProto``, or the path of an ONNX file or a
    Keras file (``.keras``, legacy ``.h5``; read without keras, tensorflow or jax)
    (``example_inputs`` is not needed for these).  ``report.frontend`` says which reader was
    used: ``"onnx"``, ``"keras"``, ``"fx"``, ``"export"`` or ``"hooks"``.

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

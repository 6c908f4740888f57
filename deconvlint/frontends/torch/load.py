"""The torch front end: an ``nn.Module`` (or an ``ExportedProgram``) in, a :class:`Graph` out.

With example inputs, the model's forward runs once and is recorded (reader ``hooks``: forward
hooks on every module and a ``TorchFunctionMode``, see :mod:`.hooks`); it sees what the
model runs, branches, list inputs and ``autograd.Function`` included, for about the cost of that
forward.  Its graph is used when it holds every upsampling module the forward called (the
completeness check); otherwise these are tried in turn and the first complete one is used:

1. ``fx``: ``torch.fx`` symbolic tracing (standard ``torch.nn`` modules are leaves), with
   the traced graph run on the example inputs, when given, for static shapes; the only reader
   without example inputs;
2. ``export``: ``torch.export.export(strict=False)`` and the aten graph (needs example inputs).

When none is complete, the graph that misses the fewest layers is used and
``Graph.report_notes`` names the layers it could not place.  Every reader leaves the model as
it found it (:mod:`.state`).

Every forward pass the front end runs happens in eval mode (the modules' ``training`` flags
are restored afterwards, so batch-norm statistics never change) and without autograd.  With
``timeout``, each reader runs in a worker thread and is given up after that many seconds; a
forward that never returns then leaves a daemon thread behind but no longer blocks the
checker, and the readers after it are not tried (fx may leave its patches in place).

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1))
>>> graph, reader = load_module(model)
>>> reader, [(n.name, n.op_type, n.kind.value) for n in graph.nodes]
('fx', [('0', 'ConvTranspose2d', 'conv_transpose')])
>>> load_module(model, (torch.randn(1, 4, 8, 8),))[1]
'hooks'
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from deconvlint.core.ir import Graph
from deconvlint.errors import TraceError
from deconvlint.frontends.target import as_input_tuple
from deconvlint.frontends.torch.spec import failure_reason

__all__ = ["graph_from_exported", "load_module"]

#: The thread a forward pass runs in under a timeout; the CLI exits hard when one is left
#: running (:func:`deconvlint.cli.main.console_main`).
FORWARD_THREAD = "deconvlint-forward"
#: Least time given to symbolic tracing (fx, export) under a timeout: they take seconds before
#: any model code runs (export's first call imports and sets up much of torch).
TRACE_TIMEOUT_FLOOR = 120.0


class ReaderTimeout(TimeoutError):
    """A forward pass (or trace) that did not finish within the timeout."""


def _runner(timeout: float | None) -> Callable[[Callable[[], Any]], Any]:
    """``run(fn)``: ``fn()`` directly, or in a daemon thread given up after ``timeout`` s."""

    def run(fn: Callable[[], Any]) -> Any:
        if timeout is None:
            return fn()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = fn()
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=FORWARD_THREAD, daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise ReaderTimeout(f"did not return within {timeout:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")

    return run


@contextlib.contextmanager
def _eval_mode(model: Any, flags: list[tuple[Any, bool]] | None = None) -> Iterator[None]:
    """Eval mode while reading; ``flags``: every module's ``training`` flag, if already read."""
    if flags is None:
        flags = [(m, m.training) for m in model.modules()]
    if any(training for _, training in flags):  # eval(), as the user would, only if needed
        model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            if module.training != training:
                module.training = training


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread while reading: the forward passes run on example inputs, whose ops
    are too small to gain from threads, and the pool's synchronisation then costs more than the
    arithmetic, many times more on a busy machine (hifigan's ShapeProp: 0.03 s on one thread,
    0.3 s on two, measured on a loaded 2-core box).  Restored on exit (the setting is global)."""
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _walk(model: Any) -> tuple[list[tuple[Any, bool]], list[str]]:
    """One walk of the modules: each one's ``training`` flag, and the names of the lazy ones
    whose parameters are not initialised yet."""
    from torch.nn.modules.lazy import LazyModuleMixin

    flags, lazy = [], []
    for name, m in model.named_modules():
        flags.append((m, m.training))
        if isinstance(m, LazyModuleMixin) and m.has_uninitialized_params():
            lazy.append(name or type(m).__name__)
    return flags, lazy


def _materialize(model: Any, inputs: tuple[Any, ...], run: Callable[..., Any]) -> None:
    """One forward pass sets the shapes of lazy modules (as the model's first use would)."""
    import torch

    def forward() -> None:
        with torch.no_grad():
            model(*inputs)

    try:
        run(forward)
    except ReaderTimeout as exc:
        raise TraceError(f"could not read the model: the forward pass {exc}") from exc
    except Exception as exc:
        raise TraceError(
            f"could not read the model: the forward pass that sets its lazy modules raised "
            f"{failure_reason(exc)}"
        ) from exc


def load_module(
    model: Any, example_inputs: tuple[Any, ...] | None = None, *, timeout: float | None = None
) -> tuple[Graph, str]:
    """Read ``model`` into a :class:`Graph`; returns it with the reader's name.

    With example inputs: ``"hooks"``, the forward pass the model runs; ``"fx"`` or ``"export"``
    only when the recording could not place an upsampling layer the forward ran and their
    graph holds every one of them (the completeness check).  Without: ``"fx"``.  The model is
    left as it was found (:mod:`~deconvlint.frontends.torch.state`).  Raises
    :class:`TraceError` with one line naming each reader's failure.
    """
    import torch

    from deconvlint.frontends.torch.state import kept

    if not isinstance(model, torch.nn.Module):
        raise TraceError(f"not a torch.nn.Module: {type(model).__name__}")
    inputs = as_input_tuple(example_inputs)
    run = _runner(timeout)
    flags, lazy = _walk(model)
    if lazy:
        if inputs is None:
            raise TraceError(
                f"could not read the model: lazy modules ({', '.join(lazy[:3])}) get their "
                "shapes from a first forward pass: example inputs are needed"
            )
        with _eval_mode(model, flags), _one_thread():
            _materialize(model, inputs, run)  # as the model's first use would: not undone
        flags, _ = _walk(model)
    with _eval_mode(model, flags), _one_thread(), kept(model) as state:
        return _first_complete(model, inputs, timeout, state)


def _first_complete(
    model: Any, inputs: tuple[Any, ...] | None, timeout: float | None, state: Any
) -> tuple[Graph, str]:
    """The first reader whose graph holds every upsampling layer the forward ran; ``state``
    (a :class:`~deconvlint.frontends.torch.state.ModelState`) restores the model before the
    next reader (the caller restores it after the last)."""
    failures: list[tuple[str, str]] = []
    required: tuple[str, ...] = ()
    incomplete: list[tuple[Graph, str, list[str]]] = []
    readers = ("hooks", "fx", "export") if inputs is not None else ("fx",)
    for reader in readers:
        try:
            if reader == "hooks":
                assert inputs is not None
                recording = _record(model, inputs, timeout)
                graph, required = recording.graph, recording.required
                missing = [f"{name!r} ({why})" for name, why in recording.unplaced.items()]
            else:
                graph = _read(reader, model, inputs, timeout)
                names = {node.name for node in graph.nodes}
                missing = [repr(name) for name in required if name not in names]
        except ReaderTimeout as exc:
            failures.append((reader, f"the forward pass {exc}"))
            break
        except Exception as exc:
            failures.append((reader, failure_reason(exc)))
            state.restore()
            continue
        if missing:
            state.restore()
            incomplete.append((graph, reader, missing))
            failures.append((reader, f"its graph misses {', '.join(missing)}"))
            continue
        return _noted(graph, failures, reader), reader
    if inputs is None:
        failures += [("hooks", "needs example inputs"), ("export", "needs example inputs")]
    if incomplete:  # no reader placed every layer: the one that missed fewest, and say so
        graph, reader, missing = min(incomplete, key=lambda item: len(item[2]))
        graph.report_notes.append(
            f"{reader}: could not place on a coverage path: {', '.join(missing)}"
        )
        return _noted(graph, [f for f in failures if f[0] != reader], reader), reader
    raise TraceError("could not read the model: " + _failures_text(failures))


_DOES_NOT_RUN = "the model does not run on the example inputs: "


def _failures_text(failures: list[tuple[str, str]]) -> str:
    """Each cause once, with the readers that failed for it: a model that raises the same
    error under every reader (a wrong input shape) gets that error stated once.

    >>> _failures_text([("hooks", "E: x"), ("fx", _DOES_NOT_RUN + "E: x"), ("export", "E: x")])
    'hooks, fx, export: the model does not run on the example inputs: E: x'
    >>> _failures_text([("fx", "A"), ("hooks", "B"), ("export", "B")])
    'fx: A; hooks, export: B'
    """
    causes: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for name, why in failures:
        cause = why.removeprefix(_DOES_NOT_RUN)
        causes.setdefault(cause, []).append(name)
        if why != cause or cause not in shown:  # fx's wording says where it failed: keep it
            shown[cause] = why
    return "; ".join(f"{', '.join(names)}: {shown[cause]}" for cause, names in causes.items())


def _noted(graph: Graph, failures: list[tuple[str, str]], reader: str) -> Graph:
    notes = [f"{name} could not read the model: {why}" for name, why in failures]
    graph.notes[:0] = notes
    if failures:
        graph.report_notes.insert(0, f"read by {reader}: " + "; ".join(notes))
    return graph


def _record(model: Any, inputs: tuple[Any, ...], timeout: float | None) -> Any:
    from deconvlint.frontends.torch.hooks import record_forward

    return record_forward(model, inputs, _runner(timeout))


def read_with(
    reader: str, model: Any, example_inputs: Any = None, *, timeout: float | None = None
) -> Graph:
    """One reader only (``"fx"``, ``"export"`` or ``"hooks"``), no fallback: for tests and for
    comparing readers.  Errors propagate as the reader raised them."""
    from deconvlint.frontends.torch.state import kept

    inputs = as_input_tuple(example_inputs)
    if reader != "fx" and inputs is None:
        raise TraceError(f"{reader} needs example inputs")
    with _eval_mode(model), _one_thread(), kept(model):
        return _read(reader, model, inputs, timeout)


def _read(reader: str, model: Any, inputs: tuple[Any, ...] | None, timeout: float | None) -> Graph:
    """One reader; the forward passes it runs get ``timeout``, symbolic tracing (which runs the
    forward's Python too) at least :data:`TRACE_TIMEOUT_FLOOR`."""
    run = _runner(timeout)
    trace_run = _runner(None if timeout is None else max(timeout, TRACE_TIMEOUT_FLOOR))
    if reader == "fx":
        from deconvlint.frontends.torch.fx import read_fx

        return trace_run(lambda: read_fx(model, inputs, run))
    if reader == "export":
        from deconvlint.frontends.torch.export import export_module

        assert inputs is not None
        return export_module(model, inputs, trace_run)
    from deconvlint.frontends.torch.hooks import read_hooks

    assert inputs is not None
    return read_hooks(model, inputs, run)


def graph_from_exported(ep: Any) -> Graph:
    """The :class:`Graph` of a ``torch.export.ExportedProgram`` (e.g. from ``torch.export.load``).

    Module layers are named by their qualified names; their sources are found when the model's
    classes are imported in this process.
    """
    from deconvlint.frontends.torch.export import read_exported

    try:
        return read_exported(ep, model=None)
    except TraceError:
        raise
    except Exception as exc:
        raise TraceError(f"could not read the exported program: {failure_reason(exc)}") from exc

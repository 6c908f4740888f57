"""Checking many models at once: ONNX files in worker processes, results in input order.

:func:`check_in_order` takes the inputs in command-line order and returns one
:class:`~deconvlint.report.FileResult` per input, in that order, whatever order the workers
finish in.  ONNX files go to a pool of ``jobs`` processes; torch inputs (module targets,
``.pt2``, TorchScript, pickles) are checked in this process meanwhile, since they import the
user's code, may print, and need torch, which the workers never load.  A
worker that dies (a native crash in a library) costs only its own file: the files it took down
with it are checked again, each in a fresh process, and the one that kills its worker again
becomes a one-line error.  Whatever else fails while one file is checked (a MemoryError, a bug)
is that file's error line, never the end of the run.

>>> from deconvlint.report import FileResult
>>> done = check_in_order([FileResult("a.onnx", error="x")], run=None, jobs=2)
>>> [r.path for r in done]
['a.onnx']
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from deconvlint.errors import one_line
from deconvlint.printable import printable
from deconvlint.report import FileResult

if TYPE_CHECKING:
    import multiprocessing.context
    from concurrent.futures import Future, ProcessPoolExecutor

    from deconvlint.frontends.target import ModelSpec

# multiprocessing and concurrent.futures are imported only when a pool is started (~20 ms of
# start-up that a one-file run does not need).

BATCH_MAX = 8  # files per task sent to a worker
PROGRESS_MIN_FILES = 5  # "more than a few files" before a progress bar is worth drawing
# Imported before the workers start, so that each worker starts with them loaded (onnx's
# protobuf classes too: forked workers then share them instead of each loading them again).
_PRELOAD = [
    "deconvlint.cli.main",
    "deconvlint.engine",
    "deconvlint.rules.registry",
    "deconvlint.frontends.onnx.reader",
    "deconvlint.frontends.onnx.skim",
    "deconvlint.frontends.onnx.walk",
]


def default_jobs() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Progress:
    """``[#####.....] 37/200 models/x.onnx`` redrawn on one line of a terminal's stderr; nothing
    at all when ``enabled`` is false."""

    def __init__(self, total: int, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] {self.done}/{self.total} {printable(label)}"
        columns = _columns(self.stream)
        self.stream.write("\r\033[K" + line[: columns - 1])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _columns(stream: IO[str]) -> int:
    """The terminal's width; a terminal that reports 0 columns (some CI pseudo-terminals,
    serial consoles) gets ``COLUMNS`` or 80, as :func:`shutil.get_terminal_size` does."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    if columns > 0:
        return columns
    import shutil  # only for progress on a console that tells no size

    return shutil.get_terminal_size((80, 24)).columns or 80


def wants_progress(total: int, stream: IO[str] | None = None) -> bool:
    """A progress bar only on a terminal, and only for more than a few files."""
    stream = stream if stream is not None else sys.stderr
    return total > PROGRESS_MIN_FILES and hasattr(stream, "isatty") and stream.isatty()


def _context() -> multiprocessing.context.BaseContext:
    """fork while this process has a single thread and no torch (what the CLI has when it
    starts the pool: all workers are forked at the first submit, before any torch target runs
    here), with the ONNX front end imported first so that every worker has it; otherwise a
    forkserver (a clean server process to fork from: forking a process with threads, torch's
    among them, can deadlock the child)."""
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and "torch" not in sys.modules:
        for module in _PRELOAD:
            importlib.import_module(module)
        from deconvlint.frontends.onnx.proto import proto

        proto()
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _pool(jobs: int) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor

    from deconvlint.frontends.onnx.reader import prestart_inference

    # every worker checks ONNX files: its shape-inference process warms up while it waits
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=_context(), initializer=prestart_inference
    )


def _failed(spec: ModelSpec, exc: BaseException) -> FileResult:
    cause = one_line(exc, empty="no message")
    return FileResult(
        path=spec.target,
        error=f"internal error: {type(exc).__name__}: {cause}; run it alone with --debug -j 1 "
        "to see more",
    )


def _guarded(run: Callable[[ModelSpec], FileResult], spec: ModelSpec) -> FileResult:
    """``run(spec)``, with anything it lets escape (MemoryError too) made that file's error."""
    try:
        return run(spec)
    except Exception as exc:
        return _failed(spec, exc)


def _retry_alone(spec: ModelSpec, run: Callable[[ModelSpec], FileResult]) -> FileResult:
    """Check ``spec`` in a fresh process of its own, after a worker died during a batch."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        with _pool(1) as pool:
            return pool.submit(_guarded, run, spec).result()
    except BrokenProcessPool:
        return FileResult(
            path=spec.target,
            error="internal error: the process checking this file died (a crash in a "
            "native library?); run it alone with --debug -j 1 to see more",
        )
    except Exception as exc:  # the result could not come back (MemoryError, pickling)
        return _failed(spec, exc)


def _run_batch(run: Callable[[ModelSpec], FileResult], specs: list[ModelSpec]) -> list[FileResult]:
    return [_guarded(run, spec) for spec in specs]


def _batches(indices: list[int], jobs: int) -> list[list[int]]:
    """Consecutive runs of a few files per task, as ``Executor.map``'s ``chunksize``: fewer
    hand-offs between this process and the workers, while the progress bar keeps moving and
    the load stays even (about four tasks per worker, at most ``BATCH_MAX`` files each)."""
    size = max(1, min(BATCH_MAX, len(indices) // (4 * jobs)))
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _completed(
    futures: dict[Future, list[int]],
) -> Iterator[tuple[list[int], list[FileResult] | None]]:
    """``(batch, results)`` as the batches finish; ``None`` for a batch whose worker died or
    whose results could not come back (each of its files is then checked again alone)."""
    if not futures:
        return
    from concurrent.futures import as_completed

    for future in as_completed(futures):
        try:
            yield futures[future], future.result()
        except Exception:  # BrokenProcessPool, or MemoryError unpickling the results
            yield futures[future], None


def check_in_order(
    inputs: Sequence[FileResult | ModelSpec],
    run: Callable[[ModelSpec], FileResult] | None,
    jobs: int,
    in_process: Callable[[ModelSpec], bool] = lambda spec: False,
    progress: Progress | None = None,
) -> list[FileResult]:
    """One result per input, in input order.

    ``inputs`` holds a ready :class:`FileResult` (an input already known to be an error) or a
    :class:`~deconvlint.frontends.target.ModelSpec` to check with ``run`` (a picklable, module-level
    function).  ``in_process(spec)`` says which specs must run here rather than in a worker.
    """
    progress = progress or Progress(len(inputs), enabled=False)
    results: list[FileResult | None] = [None] * len(inputs)
    pooled: list[int] = []
    for index, item in enumerate(inputs):
        if isinstance(item, FileResult):
            results[index] = item
            progress.advance(item.path)
        elif jobs > 1 and not in_process(item):
            pooled.append(index)
    if len(pooled) < 2:
        pooled = []
    pooled_set = set(pooled)
    pool = _pool(min(jobs, len(pooled))) if pooled else None
    try:
        futures: dict[Future, list[int]] = {}
        if pool is not None:
            for batch in _batches(pooled, jobs):
                futures[pool.submit(_run_batch, run, [inputs[i] for i in batch])] = batch
        for index, item in enumerate(inputs):
            if results[index] is None and index not in pooled_set:
                results[index] = _guarded(run, item)  # type: ignore[arg-type]
                progress.advance(item.target)  # type: ignore[union-attr]
        broken = []
        for batch, done in _completed(futures):
            if done is None:
                broken += batch
                continue
            for index, result in zip(batch, done, strict=True):
                results[index] = result
                progress.advance(result.path)
        for index in sorted(broken):
            results[index] = _retry_alone(inputs[index], run)  # type: ignore[arg-type]
            progress.advance(inputs[index].target)  # type: ignore[union-attr]
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    return [r for r in results if r is not None]

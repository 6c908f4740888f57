"""ONNX shape inference in a long-lived forked worker process.

onnx's C++ shape inference aborts on some corrupt models (e.g. a ``std::clamp`` assertion after
a Pad with a huge negative pad), which must not take the checker down, so it never runs in the
checker's own process.  Forking a fresh child per model cost ~40 ms (page tables and
copy-on-write faults of the parent), more than the rest of the check; one worker serves every
model instead and is replaced only when it dies or overruns its time.  It exits when the parent
closes its pipe (or exits); a worker inherited through a later ``fork`` is never reused.

The first inference in a process also builds onnx's operator-schema registry (~15 ms).
:meth:`InferenceWorker.prestart` forks the worker early and has it build the registry while
the parent loads its configuration and reads the model, so a one-file run does not wait for it.

Requests and replies are bytes: a serialized model in, whatever ``infer`` makes of it out.

>>> from onnx import helper, TensorProto, ModelProto
>>> node = helper.make_node("Relu", ["x"], ["y"])
>>> graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
...     "x", TensorProto.FLOAT, [1, 2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
>>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
>>> def infer(serialized):
...     from onnx import shape_inference
...     return shape_inference.infer_shapes(ModelProto.FromString(serialized)).SerializeToString()
>>> inferred = ModelProto.FromString(WORKER.run(model.SerializeToString(), infer, timeout=60))
>>> [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
[1, 2]
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import select
import signal
import struct
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("<Q")


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes from ``fd``; ``None`` at end of file; TimeoutError past ``deadline``."""
    chunks, missing = [], size
    while missing:
        if deadline is not None:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def warm_up() -> None:
    """Load onnx's C++ library and build its operator-schema registry, which every inference
    needs; a failure here is left for the first real request to meet and report."""
    from deconvlint.frontends.onnx import proto as onnx_proto

    with contextlib.suppress(Exception):
        onnx_proto.cpp().defs.get_schema("Relu")


def _serve(requests: int, replies: int, infer: Callable[[bytes], bytes]) -> None:
    """The worker's loop: a length-prefixed request in, ``+reply`` or ``-message`` out."""
    while True:
        header = _read_exactly(requests, _HEADER.size, None)
        if header is None:
            return
        body = _read_exactly(requests, _HEADER.unpack(header)[0], None)
        if body is None:
            return
        try:
            reply = b"+" + infer(body)
        except Exception as exc:
            reply = b"-" + (str(exc) or type(exc).__name__).encode("utf-8", "replace")
        _write_all(replies, _HEADER.pack(len(reply)) + reply)


#: Address space the worker may add to what it inherited; a model whose inference needs more is
#: corrupt (inference holds shapes, never weights) and fails with a note instead of swapping.
MEMORY_LIMIT = 4 << 30


def _limit_memory(extra: int) -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + extra if hard == resource.RLIM_INFINITY else min(size + extra, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):  # not Linux: no limit
        pass


class InferenceWorker:
    """One forked process running ``infer`` on serialized models, restarted when it dies.

    ``crashed`` and ``failed`` word its failures for the library it runs (the Keras front end
    runs h5py in one of its own)."""

    def __init__(
        self,
        crashed: str = "onnx crashed on this model",
        failed: str = "the shape inference process failed",
    ) -> None:
        self.crashed, self.failed = crashed, failed
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._owner = 0  # the pid that forked the worker
        self._infer: Callable[[Any], Any] | None = None
        self._requests = self._replies = -1

    def prestart(self, infer: Callable[[Any], Any]) -> None:
        """Start the worker for ``infer`` now, warming it up before it serves (see the module
        docstring); nothing if one is already running for it in this process."""
        with self._lock:
            self._ensure(infer, warm=True)

    def _ensure(self, infer: Callable[[Any], Any], warm: bool = False) -> None:
        """A worker of this process for ``infer`` is running (the caller holds the lock)."""
        if self._pid is not None and (self._owner != os.getpid() or self._infer is not infer):
            self.stop()  # inherited through a fork, or another function: start afresh
        if self._pid is None:
            self._start(infer, warm)

    def _start(self, infer: Callable[[Any], Any], warm: bool = False) -> None:
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                os.close(from_parent)
                os.close(to_parent)
                faulthandler.disable()  # an expected abort here is not a crash report
                quiet = os.open(os.devnull, os.O_WRONLY)
                os.dup2(quiet, 2)  # nor is a C++ assertion message
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
                _limit_memory(MEMORY_LIMIT)
                if warm:
                    warm_up()
                _serve(to_child, from_child, infer)
            except BaseException:
                code = 3
            os._exit(code)
        os.close(to_child)
        os.close(from_child)
        self._pid, self._owner, self._infer = pid, os.getpid(), infer
        self._requests, self._replies = from_parent, to_parent

    def stop(self) -> None:
        """Close the pipes and reap the worker (killed if it does not leave at once)."""
        if self._pid is None:
            return
        if self._owner == os.getpid():
            for fd in (self._requests, self._replies):
                os.close(fd)
            try:
                pid, _ = os.waitpid(self._pid, os.WNOHANG)
                if pid == 0:
                    os.kill(self._pid, signal.SIGKILL)
                    os.waitpid(self._pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
        self._pid = None

    def _reap(self) -> int:
        """Close the pipes of a worker that died or was killed; its wait status."""
        pid, self._pid = self._pid, None
        for fd in (self._requests, self._replies):
            os.close(fd)
        try:
            return os.waitpid(pid, 0)[1] if pid is not None else 0
        except ChildProcessError:
            return 0

    def _crashed(self) -> RuntimeError:
        status = self._reap()
        if os.WIFSIGNALED(status):
            return RuntimeError(f"{self.crashed} (signal {os.WTERMSIG(status)})")
        return RuntimeError(self.failed)

    def run(self, payload: bytes, infer: Callable[[bytes], bytes], timeout: float) -> bytes:
        """``infer(payload)`` in the worker; RuntimeError if it fails, crashes or overruns."""
        with self._lock:
            self._ensure(infer)
            try:
                _write_all(self._requests, _HEADER.pack(len(payload)) + payload)
                deadline = time.monotonic() + timeout
                header = _read_exactly(self._replies, _HEADER.size, deadline)
                body = None
                if header is not None:
                    body = _read_exactly(self._replies, _HEADER.unpack(header)[0], deadline)
            except TimeoutError:
                os.kill(self._pid, signal.SIGKILL)  # type: ignore[arg-type]
                self._reap()
                raise RuntimeError(f"timed out after {timeout:g} s") from None
            except BrokenPipeError:
                raise self._crashed() from None
            if body is None:
                raise self._crashed()
        if body[:1] == b"-":
            raise RuntimeError(body[1:].decode("utf-8", "replace"))
        return body[1:]


WORKER = InferenceWorker()
atexit.register(WORKER.stop)

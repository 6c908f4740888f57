"""Writing a file so that nobody ever sees it half-written: ``--output``, ``--report``, ``--fix``.

The bytes go to a new temporary file in the same folder, which then replaces the file in one
``os.replace``: a crash, a full disk or a ``kill`` leaves the old file or the new one, never an
empty or truncated one.  The file keeps its permission bits (a new file gets the usual ``0o666``
less the umask).  A path that exists and is not a regular file, such as ``/dev/stdout`` or a
named pipe, cannot be replaced and is written in place.  The caller decides where a symbolic
link leads: ``path`` is written as given (a link there would be replaced by the file).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "report.json"
>>> write_atomically(path, b"{}\\n")
>>> path.read_bytes(), sorted(p.name for p in path.parent.iterdir())
(b'{}\\n', ['report.json'])
"""

from __future__ import annotations

import contextlib
import os
import stat


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Make ``path`` hold exactly ``data``, all at once (see the module's docstring)."""
    path = os.fspath(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        status = None
    if status is not None and not stat.S_ISREG(status.st_mode):
        with open(path, "wb") as stream:  # a device or a pipe: nothing there to truncate
            stream.write(data)
        return
    folder = os.path.dirname(path) or os.curdir
    temporary = os.path.join(folder, f".deconvlint-{os.urandom(6).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with open(descriptor, "wb") as stream:
            if status is not None and hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), stat.S_IMODE(status.st_mode))
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


__all__ = ["write_atomically"]

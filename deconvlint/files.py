"""Opening a file that may be hostile: regular files only, and never an open that blocks.

``open()`` of a FIFO waits for a writer forever, and a device or a socket is no model either.
:func:`open_regular` looks at the path first (``stat``, which never blocks), opens it without
waiting (``O_NONBLOCK``, which a regular file ignores) and checks again on the open descriptor,
so a file swapped for a FIFO in between is refused too.  The refusal is an ``OSError`` whose
``strerror`` reads well after "cannot read ...:".

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> os.mkfifo(os.path.join(folder, "p.onnx"))
>>> open_regular(os.path.join(folder, "p.onnx"))
Traceback (most recent call last):
...
deconvlint.files.NotRegularFile: [Errno 22] not a regular file (a FIFO)
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a socket or a folder: nothing to read a model from."""


def _check(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
        raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind})")


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``open(path, "rb")`` for a regular file (symlinks followed); :class:`NotRegularFile`
    for anything else, without blocking on it."""
    _check(os.stat(path).st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    descriptor = os.open(path, flags | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _check(os.fstat(descriptor).st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def is_regular(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (symlinks followed); never opens it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False

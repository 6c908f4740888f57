"""Python source mode: check (and fix) the upsampling layers that ``.py`` files build.

The file is parsed, never imported.  :func:`check_file` reads one file and returns its
:class:`~deconvlint.report.FileResult` with the findings (named ``line:col``), the counts of
checked and skipped calls, and, with ``fix`` or ``diff``, the fixed text: safe fixes always (a
fractional nearest resize made linear), the kernel rewrites only with ``unsafe_fixes`` (they
change checkpoint shapes).  libcst is imported only when a file has something to rewrite.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "bad.py"
>>> _ = path.write_text("def f(:\\n")
>>> check_file(path).result.error
'syntax error at line 1, column 7: invalid syntax'
"""

from __future__ import annotations

import ast
import os
import tokenize
from dataclasses import dataclass

from deconvlint.atomic import write_atomically
from deconvlint.config.settings import Settings
from deconvlint.files import open_regular
from deconvlint.printable import printable
from deconvlint.report import FileResult

SOURCE_SUFFIX = ".py"


@dataclass
class FileOutcome:
    result: FileResult
    checked: int = 0
    skipped: int = 0
    fixed: int = 0  # findings removed by the applied (or, with diff, the proposed) fixes
    unsafe_hidden: int = 0  # findings an unsafe fix would remove (not applied)
    diff: str = ""  # unified diff of the fix (with ``diff``; empty when nothing changes)


def is_source(path: str | os.PathLike) -> bool:
    return os.fspath(path).endswith(SOURCE_SUFFIX)


def _read(path: str) -> tuple[bytes, str, str]:
    """The bytes, the text (newlines as they are) and its encoding (PEP 263 cookie or BOM, else
    UTF-8)."""
    with open_regular(path) as handle:  # a FIFO named x.py would block open() forever
        raw = handle.read()
    try:
        encoding, _ = tokenize.detect_encoding(iter(raw.splitlines(keepends=True)).__next__)
    except SyntaxError as exc:  # not UTF-8 and no coding cookie
        raise ValueError(exc.msg) from None
    return raw, raw.decode(encoding), encoding


def fix_destination(path: str, root: str | None = None) -> str:
    """Where ``--fix`` may write ``path``: the file a symbolic link leads to, if it lies inside
    ``root`` (the folder given on the command line; for a file named there, its own folder).
    Raises ``ValueError`` for a link that leads out of it.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "link.py").symlink_to("/etc/hostname")
    >>> fix_destination(str(folder / "link.py"), str(folder))
    Traceback (most recent call last):
    ...
    ValueError: a symbolic link to a file outside ...
    """
    real = os.path.realpath(path)
    inside = os.path.realpath(root if root is not None else os.path.dirname(os.path.abspath(path)))
    if os.path.commonpath([real, inside]) != inside:
        raise ValueError(f"a symbolic link to a file outside {inside}, not followed")
    return real


def _syntax_message(exc: SyntaxError) -> str:
    where = f" at line {exc.lineno}" if exc.lineno else ""
    if exc.lineno and exc.offset:
        where += f", column {exc.offset}"
    return f"syntax error{where}: {exc.msg}"


def check_file(
    path: str | os.PathLike,
    settings: Settings | None = None,
    *,
    fix: bool = False,
    unsafe_fixes: bool = False,
    diff: bool = False,
    root: str | None = None,
) -> FileOutcome:
    """Check one Python file; with ``fix`` write the fixes, with ``diff`` only describe them.

    The fixed calls are spliced into the file's bytes (:mod:`deconvlint.source.splice`): every
    byte outside them stays.  The file is replaced atomically, keeping its mode, and never
    through a symbolic link that leads out of ``root`` (:func:`fix_destination`).  A file that
    cannot be read or parsed gives a one-line ``FileResult.error``, and so does a fix that
    cannot be written (its findings are kept).
    """
    from deconvlint.source.check import check_text

    shown = os.fspath(path)
    settings = settings or Settings()
    try:
        raw, text, encoding = _read(shown)
        outcome = check_text(text, settings, shown)
    except SyntaxError as exc:
        return FileOutcome(FileResult(shown, error=_syntax_message(exc)))
    except (OSError, UnicodeDecodeError, LookupError, ValueError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return FileOutcome(FileResult(shown, error=f"cannot read the file: {cause}"))
    except RecursionError:
        return FileOutcome(FileResult(shown, error="the file is nested too deeply to parse"))
    result = FileOutcome(
        FileResult(shown, findings=outcome.findings), outcome.checked, outcome.skipped
    )
    edits = dict(outcome.safe_edits)
    if unsafe_fixes:
        edits.update(outcome.unsafe_edits)
    result.unsafe_hidden = 0 if unsafe_fixes else len(outcome.unsafe_edits)
    if not (fix or diff) or not edits:
        return result
    import difflib

    from deconvlint.source.calls import scan
    from deconvlint.source.rewrite import SourceEditor
    from deconvlint.source.splice import SpliceError, splice_bytes, splice_text

    editor = SourceEditor(text, scan(ast.parse(text), text).imports)
    replacements = editor.replacements(edits)
    new_text = splice_text(text, replacements)
    after = check_text(new_text, settings)  # also proves the new text parses
    result.fixed = len(outcome.findings) - len(after.findings)
    if diff:
        result.diff = "".join(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=printable(shown),  # the file's lines are its own; its name is escaped
                tofile=printable(shown),
            )
        )
        return result
    try:
        destination = fix_destination(shown, root)
        write_atomically(destination, splice_bytes(raw, text, encoding, replacements))
    except (SpliceError, ValueError, OSError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        result.fixed = 0
        result.result = FileResult(shown, outcome.findings, error=f"--fix: not written: {cause}")
        return result
    result.result = FileResult(shown, findings=after.findings)
    return result


__all__ = ["SOURCE_SUFFIX", "FileOutcome", "check_file", "fix_destination", "is_source"]

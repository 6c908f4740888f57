"""Names from models and file systems, made safe to show: the one place that escapes them.

A node name, an output name or a file name comes from a file deconvlint did not write.  Shown
raw, a newline in it starts a line of its own (a GitHub workflow command such as ``::error``, if
the log is a CI run's), an ESC sequence drives the terminal, and a bidi control (U+202E, U+2066 to
U+2069) reorders what the reader sees.  :func:`printable` escapes every character that
:meth:`str.isprintable` refuses (C0 and C1 controls, DEL, format characters such as the bidi
controls, line and paragraph separators, lone surrogates, spaces other than the ASCII one) the
way :func:`repr` writes them, and leaves every other character, non-ASCII letters included, as
it is.  Every human-readable output goes through it: text, ``--statistics``, GitHub
annotations, the HTML report, SARIF messages, the ``path: error: cause`` lines and the progress
line.

:func:`without_surrogates` is for the machine-readable formats (JSON, SARIF), which keep names
exact: only a lone surrogate (a file name that is not valid UTF-8, as Python decodes it) is
written as its escape, since no UTF-8 text and no JSON parser can hold one.

>>> printable("x\\n::error file=evil.py::forged \\x1b[31m\\u202eevil")
'x\\\\n::error file=evil.py::forged \\\\x1b[31m\\\\u202eevil'
>>> printable("décodeur.上采样 1"), without_surrogates("bad\\udcff.onnx")
('décodeur.上采样 1', 'bad\\\\udcff.onnx')
"""

from __future__ import annotations

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_character(character: str) -> str:
    """``character`` as :func:`repr` writes it when it is not printable: ``\\n``, ``\\x1b``,
    ``\\u202e``, ``\\U000e0001``."""
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped as :func:`repr` does
    (backslashes themselves are left alone, so Windows paths read as they are)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else escape_character(c) for c in text)


def without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\udcff``), so that it can be
    encoded as UTF-8; everything else is kept."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(escape_character(c) if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


__all__ = ["escape_character", "printable", "without_surrogates"]

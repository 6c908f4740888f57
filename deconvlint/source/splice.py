"""Put a fix into a file's bytes and change nothing else: line endings (CR, LF, CR LF, mixed),
the byte order mark, the encoding a coding cookie names, a missing final newline.

A :class:`~deconvlint.source.rewrite.Replacement` gives the new text of one call between two
``(line, column)`` positions of the decoded text.  :func:`splice_text` applies them to the text;
:func:`splice_bytes` finds the same positions in the file's bytes and encodes only the new code,
so every byte outside the calls stays as it was.  Lines end where Python's tokenizer ends them:
at CR LF, CR or LF.  Where the encoding does not allow that (a stateful one such as UTF-7 with a
non-ASCII character before the call on its line), the fix is refused rather than re-encoding the
file.

>>> from deconvlint.source.rewrite import Replacement
>>> raw = "# é\\rup = f(3)\\r".encode("latin-1")
>>> splice_bytes(raw, raw.decode("latin-1"), "latin-1", [Replacement((2, 5), (2, 9), "f(4)")])
b'# \\xe9\\rup = f(4)\\r'
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence

from deconvlint.source.rewrite import Replacement

_LINE_END = re.compile(r"\r\n|\r|\n")
_LINE_END_BYTES = re.compile(rb"\r\n|\r|\n")


class SpliceError(ValueError):
    """The fix cannot be written without changing bytes outside it."""


def line_starts(text: str) -> list[int]:
    """The offset where each line of ``text`` starts (line 1 at index 0)."""
    return [0, *(m.end() for m in _LINE_END.finditer(text))]


def _offsets(text: str, replacements: Sequence[Replacement]) -> list[tuple[int, int]]:
    starts = line_starts(text)
    return [
        (starts[r.start[0] - 1] + r.start[1], starts[r.end[0] - 1] + r.end[1]) for r in replacements
    ]


def splice_text(text: str, replacements: Sequence[Replacement]) -> str:
    """``text`` with each replacement's span (in order, not overlapping) replaced by its code."""
    pieces, done = [], 0
    for (begin, end), replacement in zip(_offsets(text, replacements), replacements, strict=True):
        pieces += [text[done:begin], replacement.code]
        done = end
    return "".join(pieces) + text[done:]


def splice_bytes(
    raw: bytes, text: str, encoding: str, replacements: Sequence[Replacement]
) -> bytes:
    """``raw`` (which decodes to ``text``) with the replacements spliced in: only their code is
    encoded, every other byte is kept.  Raises :class:`SpliceError` when that cannot be done."""
    bom = codecs.BOM_UTF8 if encoding == "utf-8-sig" and raw.startswith(codecs.BOM_UTF8) else b""
    piece_encoding = "utf-8" if encoding == "utf-8-sig" else encoding
    text_starts = line_starts(text)
    byte_starts = [len(bom), *(m.end() for m in _LINE_END_BYTES.finditer(raw, len(bom)))]
    if len(byte_starts) != len(text_starts):
        raise SpliceError(f"its lines cannot be told apart in its encoding ({encoding})")

    def byte_offset(line: int, column: int) -> int:
        begin = text_starts[line - 1]
        return byte_starts[line - 1] + len(text[begin : begin + column].encode(piece_encoding))

    pieces, done = [raw[: len(bom)]], len(bom)
    for replacement in replacements:
        begin, end = byte_offset(*replacement.start), byte_offset(*replacement.end)
        pieces += [raw[done:begin], replacement.code.encode(piece_encoding)]
        done = end
    pieces.append(raw[done:])
    spliced = b"".join(pieces)
    if spliced.decode(encoding) != splice_text(text, replacements):
        raise SpliceError(f"its encoding ({encoding}) would change bytes outside the fix")
    return spliced


__all__ = ["SpliceError", "line_starts", "splice_bytes", "splice_text"]

"""``errors.one_line``: the one place a message is put on one line."""

from __future__ import annotations

import pytest

from deconvlint.errors import LoadError, one_line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cannot read\n  the file", "cannot read the file"),
        ("\ttabs\r\nand  runs ", "tabs and runs"),
        (OSError("no such\nfile"), "no such file"),
        (LoadError("  padded  "), "padded"),
        (42, "42"),
    ],
)
def test_whitespace_runs_become_one_space(text: object, expected: str) -> None:
    assert one_line(text) == expected


def test_empty_stands_in_for_a_message_with_no_text() -> None:
    assert one_line(KeyError()) == ""
    assert one_line(ValueError(" \n "), empty="no message") == "no message"
    assert one_line("kept", empty="no message") == "kept"


def test_names_are_left_for_the_output_to_escape() -> None:
    # escaping is printable()'s job where the message is shown; one_line keeps the text exact
    assert one_line("node 'x\x1b[31m'\u202e") == "node 'x\x1b[31m'\u202e"

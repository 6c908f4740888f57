"""The small exception family; the CLI turns each into one line and exit code 2."""

from __future__ import annotations


class DeconvlintError(Exception):
    """Base class: an input that could not be analysed.  ``str()`` is the one-line message."""


class LoadError(DeconvlintError):
    """A model file that cannot be read: missing, not ONNX, truncated, nonsense attributes."""


class TraceError(DeconvlintError):
    """A torch model that none of the tracing front ends could read."""


class ConfigError(DeconvlintError):
    """A configuration file or option that is wrong: unknown key, wrong type, unknown rule."""


class FixError(DeconvlintError):
    """``deconvlint.fix`` could not verify its result, or the model fails on its example inputs."""


def one_line(text: object, *, empty: str = "") -> str:
    """``text`` (a message or an exception) on one line: each run of whitespace, newlines and
    tabs included, becomes one space and the ends are trimmed; ``empty`` stands in when nothing
    is left (an exception raised without a message).

    Messages are put on one line where they are built; the names in them are escaped once,
    where they are shown (:func:`deconvlint.printable.printable`).

    >>> one_line("cannot read\\n  the file:\\tgone ")
    'cannot read the file: gone'
    >>> one_line(KeyError(), empty="no message")
    'no message'
    """
    return " ".join(str(text).split()) or empty

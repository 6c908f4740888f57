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

"""What the three torch readers (fx, export, hooks) hand to the op table, and what it returns.

A reader describes each call's arguments with plain Python values, :data:`UNKNOWN` for a value
it cannot know statically (a size computed from a traced tensor without example inputs), and
:class:`TensorArg` for a tensor: a *data* tensor (one that depends on a model input) has an IR
value name, a weight or a buffer has none but may carry the tensor itself.  The op table
answers with a :class:`Spec`, which the reader's :class:`~deconvlint.frontends.torch.graph.
GraphBuilder` names and turns into a :class:`~deconvlint.core.ir.Node`.

>>> x = TensorArg("x", (1, 4, 8, 8))
>>> window_axes(kernel=3, stride=2, padding=1, rank=2)[0]
WindowAxis(kernel=3, stride=2, dilation=1, pads_begin=1, pads_end=1, output_padding=0)
>>> spatial_rank(x)
2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deconvlint.core.ir import Kind, WindowAxis
from deconvlint.errors import TraceError, one_line

#: Longest reason kept per reader in the one-line error.
MAX_REASON = 240


class ReaderError(Exception):
    """A reader's own failure, whose message says it all (shown without the class name)."""


def failure_reason(exc: BaseException) -> str:
    """Why a reader (or the model's forward pass) failed, for the one-line error: the exception's
    class and the first line of its message, or the first line alone for a :class:`ReaderError`
    or a :class:`~deconvlint.errors.TraceError` (whose message says it all); cut to
    :data:`MAX_REASON` characters.

    >>> failure_reason(ValueError("shapes differ\\n  at layer 3"))
    'ValueError: shapes differ'
    >>> failure_reason(ReaderError("the model does not run")), failure_reason(KeyError())
    ('the model does not run', 'KeyError')
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    if isinstance(exc, (ReaderError, TraceError)) and lines:
        text = lines[0]
    text = one_line(text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class _Unknown:
    """A Python argument whose value is not known statically."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class TensorArg:
    """A tensor argument: ``value`` is its IR value name when it carries data, else ``None``."""

    value: str | None = None
    shape: tuple[int | None, ...] | None = None
    # The concrete tensor when it is a weight, buffer or constant the reader can see.
    tensor: Any = None
    # Not trained: a buffer, a constant, or a parameter with requires_grad=False.
    fixed: bool = False
    # For the indices output of a max pool: the pool's Spec (MaxUnpool reads its geometry).
    indices_of: Spec | None = None

    @property
    def is_data(self) -> bool:
        return self.value is not None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


@dataclass
class Spec:
    """An IR node before it has a name and outputs."""

    kind: Kind
    inputs: tuple[str, ...]
    fields: dict[str, Any] = field(default_factory=dict)  # window, resize, block, shift, ...
    notes: list[str] = field(default_factory=list)
    op_type: str | None = None  # a module's class name; None: the function's name
    extra: dict[str, Any] = field(default_factory=dict)
    # How the elements of a tuple result are read: "indices" (a max pool with indices: element 1
    # holds the indices, not data) or "each" (split, chunk: every element is data).
    tuple_output: str | None = None


def data_inputs(*values: Any) -> tuple[str, ...]:
    """IR value names of the data tensors among ``values`` (lists and tuples searched too), each
    once: ``cat([y, y])`` has one data input, as the ONNX front end reads ``Concat(y, y)``."""
    found: list[str] = []

    def visit(v: Any) -> None:
        if isinstance(v, TensorArg):
            if v.value is not None and v.value not in found:
                found.append(v.value)
        elif isinstance(v, (list, tuple)):
            for item in v:
                visit(item)
        elif isinstance(v, dict):
            for item in v.values():
                visit(item)

    for v in values:
        visit(v)
    return tuple(found)


def barrier(*args: Any, note: str | None = None) -> Spec:
    """An op whose spatial effect is unknown: paths restart after it."""
    return Spec(Kind.BARRIER, data_inputs(*args), notes=[note] if note else [])


def known(value: Any) -> bool:
    """Whether ``value`` (possibly a nested sequence) holds no :data:`UNKNOWN`."""
    if value is UNKNOWN:
        return False
    if isinstance(value, (list, tuple)):
        return all(known(v) for v in value)
    return True


def per_axis(value: Any, rank: int) -> tuple[Any, ...] | None:
    """One value per spatial axis from an int or a sequence (``None`` if it does not fit)."""
    if not known(value):
        return None
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and rank != 1:
            return (value[0],) * rank
        return tuple(value) if len(value) == rank else None
    return (value,) * rank


def spatial_rank(x: TensorArg, default: int | None = None) -> int | None:
    """Spatial axes of an ``(N, C, spatial...)`` tensor, else ``default``."""
    return x.rank - 2 if x.rank is not None and x.rank >= 3 else default


def spatial_lengths(shape: Sequence[Any] | None, rank: int) -> tuple[int | None, ...]:
    if shape is None or len(shape) != rank + 2:
        return (None,) * rank
    return tuple(d if isinstance(d, int) else None for d in shape[2:])


def window_axes(
    kernel: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    output_padding: Any = 0,
    *,
    rank: int,
    pads_end: Any = None,
) -> tuple[WindowAxis, ...] | None:
    """Per-axis window geometry (PyTorch padding on both sides unless ``pads_end`` differs)."""
    k = per_axis(kernel, rank)
    s = per_axis(stride if stride not in (None, [], ()) else kernel, rank)
    p = per_axis(padding, rank)
    pe = per_axis(padding if pads_end is None else pads_end, rank)
    d = per_axis(dilation, rank)
    op = per_axis(output_padding, rank)
    if None in (k, s, p, pe, d, op):
        return None
    assert k and s and p and pe and d and op
    return tuple(
        WindowAxis(
            kernel=int(k[a]),
            stride=int(s[a]),
            dilation=int(d[a]),
            pads_begin=int(p[a]),
            pads_end=int(pe[a]),
            output_padding=int(op[a]),
        )
        for a in range(rank)
    )


def normal_dim(dim: Any, rank: int | None) -> int | None:
    """``dim`` made non-negative (``None`` when it is negative and the rank is unknown)."""
    if not isinstance(dim, int):
        return None
    if dim >= 0:
        return dim
    return None if rank is None else dim + rank

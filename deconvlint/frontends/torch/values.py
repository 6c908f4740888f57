"""The values a torch reader keeps per graph node, shared by the three readers (fx, export, hooks).

A reader's environment maps each node to a plain Python value, :data:`~.spec.UNKNOWN`, a
:class:`~.spec.TensorArg` or a :class:`TupleValue` (a data node's tuple result).  A real tensor
met while reading is wrapped into a :class:`~.spec.TensorArg` that carries it (:func:`wrap`) and
unwrapped again to call torch on it (:func:`unwrap`); :func:`all_fixed` says whether a value
depends on nothing the caller can change (no input, no weight loaded later).

>>> arg = TensorArg(None, (1, 2), fixed=True)
>>> unwrap([arg, {"k": 3}]), all_fixed((arg, [arg], {"k": arg}))
([UNKNOWN, {'k': 3}], True)
"""

from __future__ import annotations

from typing import Any

from deconvlint.core.ir import Kind
from deconvlint.frontends.torch.graph import shape_of
from deconvlint.frontends.torch.spec import UNKNOWN, Spec, TensorArg


class TupleValue:
    """The tuple result of a data node (a pool with indices, a split): read with getitem."""

    def __init__(self, spec: Spec, value: str, shapes: list[Any]) -> None:
        self.spec, self.value, self.shapes = spec, value, shapes
        if spec.tuple_output is None and spec.kind is Kind.MAX_POOL:
            spec.tuple_output = "indices"  # max_pool2d_with_indices

    def element(self, index: Any) -> TensorArg:
        shape = self.shapes[index] if isinstance(index, int) and index < len(self.shapes) else None
        if self.spec.tuple_output == "indices" and index == 1:
            return TensorArg(None, shape, indices_of=self.spec)
        return TensorArg(self.value, shape)


def wrap(value: Any, fixed: bool) -> Any:
    """``value`` with a real tensor wrapped into a :class:`~.spec.TensorArg` carrying it (``fixed``:
    it depends on no input); any other value as it is."""
    import torch

    if isinstance(value, torch.Tensor):
        return TensorArg(None, shape_of(value), tensor=value, fixed=fixed)
    return value


def unwrap(value: Any) -> Any:
    """``value`` with each :class:`~.spec.TensorArg` replaced by its tensor, or by
    :data:`~.spec.UNKNOWN` when it carries none, through lists, tuples and dicts."""
    if isinstance(value, TensorArg):
        return UNKNOWN if value.tensor is None else value.tensor
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    return value


def all_fixed(args: Any) -> bool:
    """Whether every :class:`~.spec.TensorArg` in ``args`` (through lists, tuples and dicts) is
    fixed; a value that is not a tensor always is."""
    if isinstance(args, TensorArg):
        return args.fixed
    if isinstance(args, (list, tuple)):
        return all(all_fixed(a) for a in args)
    if isinstance(args, dict):
        return all(all_fixed(a) for a in args.values())
    return True

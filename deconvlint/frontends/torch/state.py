"""The user's model, exactly as the front end found it: a snapshot taken before any reader runs
and restored after each one, whether it read the model, failed, or was given up.

A reader runs the model's own ``forward`` (the hooks reader for real, fx and export on
proxies and fake tensors), and a forward may write into its module: basicsr's EDSR does
``self.mean = self.mean.type_as(x)``, which under fx tracing stores a ``torch.fx.Proxy`` in the
model.  The snapshot keeps, for every module: its ``__dict__`` (plain attributes, the
``training`` flag), the contents of its parameter, buffer, submodule and hook dictionaries
(the dictionaries themselves are kept too, so references to them stay valid), and the value of
every parameter and buffer, restored only when its version counter says it was written in
place.  Parametrizations are modules and parameters of the model, so they are covered.

>>> import torch
>>> class Shift(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.register_buffer("mean", torch.zeros(1))
...     def forward(self, x):
...         self.mean = self.mean + 1  # writes into the module
...         self.calls = 1
...         return x - self.mean
>>> model = Shift()
>>> with kept(model):
...     _ = model(torch.zeros(1))
>>> float(model.mean), hasattr(model, "calls")
(0.0, False)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from operator import is_
from typing import Any


class _Snapshot:
    """One dictionary as it was: its keys and the identities of its values."""

    __slots__ = ("keys", "values")

    def __init__(self, mapping: dict[Any, Any]) -> None:
        self.keys = tuple(mapping)
        self.values = list(mapping.values())

    def same(self, mapping: dict[Any, Any]) -> bool:
        # identity checks in C (map/is_): this runs for every dictionary of every module
        return (
            len(mapping) == len(self.keys)
            and all(map(is_, mapping.values(), self.values))
            and tuple(mapping) == self.keys
        )

    def put_back(self, mapping: dict[Any, Any]) -> None:
        mapping.clear()
        mapping.update(zip(self.keys, self.values, strict=True))


class ModelState:
    """What :func:`kept` restores, taken in one walk of the modules."""

    def __init__(self, model: Any) -> None:
        import torch

        # (module, its __dict__, the dictionaries among its attributes: key -> snapshot)
        self.modules: list[tuple[Any, _Snapshot, list[tuple[str, _Snapshot | None]]]] = []
        self.tensors: list[tuple[Any, int, Any]] = []  # (tensor, _version, copy)
        seen: set[int] = set()
        for module in model.modules():
            attributes = module.__dict__
            contents = [
                (k, _Snapshot(v) if v else None)  # most are empty hook dictionaries
                for k, v in attributes.items()
                if isinstance(v, dict)
            ]
            self.modules.append((module, _Snapshot(attributes), contents))
            for tensor in (*module._parameters.values(), *module._buffers.values()):
                if tensor is None or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                version = _version(tensor) if isinstance(tensor, torch.Tensor) else None
                if version is not None and not tensor.is_meta:
                    self.tensors.append((tensor, version, None))

    def copy_values(self) -> None:
        """Copies of the parameter and buffer values: only a forward that writes them in place
        needs them, so they are taken only when asked (:func:`kept` with ``values=True``)."""
        import torch

        with torch.no_grad():
            self.tensors = [(t, v, t.detach().clone()) for t, v, _ in self.tensors]

    def restore(self) -> list[str]:
        """Puts everything back; returns what could not be restored (a tensor written in place
        whose value was not copied), for a note."""
        import torch

        for module, attributes, contents in self.modules:
            current = module.__dict__
            if not attributes.same(current):
                attributes.put_back(current)
            for key, snapshot in contents:
                mapping = current[key]
                if snapshot is None:
                    if mapping:
                        mapping.clear()
                elif not snapshot.same(mapping):
                    snapshot.put_back(mapping)
        lost = []
        with torch.no_grad():
            for tensor, version, copy in self.tensors:
                if _version(tensor) == version:
                    continue
                if copy is None:
                    lost.append(tuple(tensor.shape))
                    continue
                tensor.copy_(copy)
        return [f"a parameter or buffer of shape {shape} was written in place" for shape in lost]


def _version(tensor: Any) -> int | None:
    try:
        return int(tensor._version)
    except RuntimeError:  # an inference tensor has no version counter (and cannot be written)
        return None


@contextlib.contextmanager
def kept(model: Any, *, values: bool = True) -> Iterator[ModelState]:
    """Restores ``model`` on exit (see the module docstring); ``values``: also copy the tensor
    values first, so an in-place write is undone too."""
    state = ModelState(model)
    if values:
        state.copy_values()
    try:
        yield state
    finally:
        state.restore()

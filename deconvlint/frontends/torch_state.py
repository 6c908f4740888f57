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
from typing import Any


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


class ModelState:
    """What :func:`kept` restores; ``take`` walks the modules once."""

    def __init__(self, model: Any) -> None:
        import torch

        self.modules: list[tuple[Any, dict[str, Any], dict[str, dict[Any, Any]]]] = []
        self.tensors: list[tuple[Any, int, Any]] = []  # (tensor, _version, copy)
        seen: set[int] = set()
        for module in model.modules():
            attributes = dict(module.__dict__)
            contents = {k: dict(v) for k, v in attributes.items() if _is_dict(v)}
            self.modules.append((module, attributes, contents))
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
            for key in [k for k in current if k not in attributes]:
                del current[key]
            for key, value in attributes.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
                kept_items = contents.get(key)
                if kept_items is not None and _changed(value, kept_items):
                    value.clear()
                    value.update(kept_items)
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


_MISSING = object()


def _changed(now: dict[Any, Any], before: dict[Any, Any]) -> bool:
    if len(now) != len(before):
        return True
    return bool(before) and (
        now.keys() != before.keys() or any(now[k] is not v for k, v in before.items())
    )


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

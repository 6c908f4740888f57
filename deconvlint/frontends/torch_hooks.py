"""Reader 3: one real forward pass, watched by forward hooks and a ``TorchFunctionMode``.

Pre- and post-forward hooks on every module keep a stack of the modules running; a standard
``torch.nn`` module (the fx leaves) becomes one node when its forward returns, and the functional
calls made inside it are not recorded.  Every other torch call (``F.interpolate``, ``torch.cat``,
``x + y``, ``x[:, :, 1:]`` ...) that takes a data tensor is recorded by the function mode, named
after the innermost module running.

Connectivity comes from tensor identity: each tensor a node returns is remembered (weakly, by
object, so a freed tensor's ``id`` cannot be mistaken for a new one) with the IR value it
carries.  An in-place op returns its input object, which then carries the op's output value, so
later readers of that object see the update.  Views made through torch calls are new objects
with their own nodes.  Non-data tensors (weights, buffers, constants and what is computed from
them) are remembered too, with whether they are fixed: buffers, constants and parameters with
``requires_grad=False`` are, anything computed from a trainable parameter is not.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

from deconvlint.frontends.torch_fx import TupleValue
from deconvlint.frontends.torch_graph import GraphBuilder, shape_of
from deconvlint.frontends.torch_modules import class_name, is_standard_leaf, module_spec
from deconvlint.frontends.torch_names import SourceFinder, caller_source
from deconvlint.frontends.torch_ops import canonical_name, function_spec
from deconvlint.frontends.torch_spec import Spec, TensorArg, data_inputs
from deconvlint.ir import Graph


class HookRecorder:
    """The state of one watched forward pass."""

    def __init__(self, model: Any) -> None:
        import torch

        self.torch = torch
        self.builder = GraphBuilder(type(model).__name__)
        self.sources = SourceFinder.for_model(model)
        self.names = {id(m): name for name, m in model.named_modules()}
        self.trainable = {id(p): p.requires_grad for p in model.parameters()}
        self.tensors: dict[int, tuple[Any, Any]] = {}  # id -> (weakref, TensorArg | TupleValue)
        self.stack: list[tuple[str, bool]] = []  # (qualified name, is a standard leaf)
        self.busy = False
        self.errors: list[str] = []

    # -- tensors --------------------------------------------------------------------------------
    def remember(self, tensor: Any, arg: Any) -> None:
        try:
            ref = weakref.ref(tensor)
        except TypeError:
            return
        self.tensors[id(tensor)] = (ref, arg)

    def arg(self, obj: Any) -> Any:
        """A tensor as a TensorArg (data or not); other values as they are."""
        if isinstance(obj, self.torch.Tensor):
            entry = self.tensors.get(id(obj))
            if entry is not None and entry[0]() is obj:
                return entry[1]
            fixed = not self.trainable.get(id(obj), False) and not obj.requires_grad
            return TensorArg(None, shape_of(obj), tensor=obj, fixed=fixed)
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.arg(o) for o in obj) if not _is_namedtuple(obj) else obj
        if isinstance(obj, dict):
            return {k: self.arg(v) for k, v in obj.items()}
        return obj

    def _outputs(self, result: Any, spec: Spec | None, value: str | None, fixed: bool) -> None:
        """Remember the tensors of ``result``: data tensors carry ``value``."""
        tensors = [t for t in _flat(result) if isinstance(t, self.torch.Tensor)]
        if spec is None or value is None:
            for t in tensors:
                self.remember(t, TensorArg(None, shape_of(t), tensor=t, fixed=fixed))
            return
        if isinstance(result, (tuple, list)) and len(tensors) > 1:
            holder = TupleValue(spec, value, [shape_of(t) for t in result])
            for index, t in enumerate(result):
                if isinstance(t, self.torch.Tensor):
                    self.remember(t, holder.element(index))
            return
        for t in tensors:
            self.remember(t, TensorArg(value, shape_of(t)))

    # -- the module stack ---------------------------------------------------------------------
    def _in_leaf(self) -> bool:
        return any(leaf for _, leaf in self.stack)

    def pre_hook(self, module: Any, args: Any, kwargs: Any) -> None:
        self.stack.append((self.names.get(id(module), ""), is_standard_leaf(module)))

    def post_hook(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        if not self.stack:
            return
        name, leaf = self.stack.pop()
        if not leaf or self._in_leaf() or self.busy:
            return
        self.busy = True
        try:
            call_args, call_kwargs = self.arg(tuple(args)), self.arg(dict(kwargs))
            first = next((t for t in _flat(output) if isinstance(t, self.torch.Tensor)), None)
            spec = module_spec(module, call_args, call_kwargs, shape_of(first))
            if spec is None:
                self._outputs(output, None, None, _all_fixed((call_args, call_kwargs)))
                return
            value = self.builder.value(name.replace(".", "_") or "out")
            self.builder.add(
                spec, self.builder.module_name(name), class_name(module), (value,),
                self.sources.module_source(name),
            )  # fmt: skip
            if first is not None:
                self.builder.shapes[value] = shape_of(first)  # type: ignore[assignment]
            self._outputs(output, spec, value, False)
        except Exception as exc:  # recording must never break the user's forward
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            self.busy = False

    # -- functional calls -------------------------------------------------------------------
    def function_call(self, func: Any, args: Any, kwargs: Any, result: Any) -> None:
        if self.busy or self._in_leaf():
            return
        self.busy = True
        try:
            call_args, call_kwargs = self.arg(tuple(args)), self.arg(dict(kwargs or {}))
            if not data_inputs(call_args, call_kwargs):
                self._outputs(result, None, None, _all_fixed((call_args, call_kwargs)))
                return
            raw = getattr(func, "__name__", None) or str(func)
            shown = canonical_name(raw)
            first = next((t for t in _flat(result) if isinstance(t, self.torch.Tensor)), None)
            if first is None:
                return
            spec = function_spec(shown, call_args, call_kwargs, shape_of(first))
            if spec is None:
                self._outputs(result, None, None, False)
                return
            module = self.stack[-1][0] if self.stack else ""
            value = self.builder.value(shown)
            self.builder.add(
                spec, self.builder.function_name(module, shown), shown, (value,), caller_source()
            )
            self.builder.shapes[value] = shape_of(first)  # type: ignore[assignment]
            self._outputs(result, spec, value, False)
        except Exception as exc:
            self.errors.append(f"{getattr(func, '__name__', func)}: {type(exc).__name__}: {exc}")
        finally:
            self.busy = False


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _flat(value: Any) -> list[Any]:
    import torch

    return torch.utils._pytree.tree_leaves(value)


def _all_fixed(args: Any) -> bool:
    if isinstance(args, TensorArg):
        return args.fixed
    if isinstance(args, (list, tuple)):
        return all(_all_fixed(a) for a in args)
    if isinstance(args, dict):
        return all(_all_fixed(a) for a in args.values())
    return True


def _input_names(model: Any, count: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(model.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input{i}" for i in range(count)]


def read_hooks(model: Any, inputs: tuple[Any, ...], run: Any) -> Graph:
    """Run ``model(*inputs)`` once under the hooks; ``run(fn)`` applies the timeout."""
    import torch
    from torch.overrides import TorchFunctionMode

    recorder = HookRecorder(model)
    graph_inputs = []
    for name, x in zip(_input_names(model, len(inputs)), inputs, strict=True):
        if isinstance(x, torch.Tensor):
            value = recorder.builder.value(name)
            graph_inputs.append(value)
            recorder.builder.shapes[value] = shape_of(x)  # type: ignore[assignment]
            recorder.remember(x, TensorArg(value, shape_of(x)))

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            result = func(*args, **(kwargs or {}))
            recorder.function_call(func, args, kwargs, result)
            return result

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(recorder.pre_hook, with_kwargs=True))
        handles.append(
            module.register_forward_hook(recorder.post_hook, with_kwargs=True, always_call=True)
        )

    def forward() -> Any:
        with torch.no_grad(), Mode():
            return model(*inputs)

    try:
        output = run(forward)
    finally:
        for handle in handles:
            handle.remove()
    outputs = []
    for t in _flat(output):
        arg = recorder.arg(t) if isinstance(t, torch.Tensor) else None
        if isinstance(arg, TensorArg) and arg.is_data:
            outputs.append(arg.value)
    graph = recorder.builder.finish(tuple(graph_inputs), tuple(outputs))
    if recorder.errors:
        graph.notes.append(
            f"hooks: {len(recorder.errors)} calls not recorded: {recorder.errors[0]}"
        )
    return graph

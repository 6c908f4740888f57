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
from dataclasses import dataclass, field
from typing import Any

from deconvlint.core.ir import Graph, Kind
from deconvlint.frontends.torch.graph import GraphBuilder, live_values, shape_of
from deconvlint.frontends.torch.modules import (
    class_name,
    is_standard_leaf,
    is_upsampling_module,
    module_spec,
)
from deconvlint.frontends.torch.names import SourceFinder, caller_source
from deconvlint.frontends.torch.ops import canonical_name, function_spec
from deconvlint.frontends.torch.spec import Spec, TensorArg, data_inputs
from deconvlint.frontends.torch.values import TupleValue, all_fixed


class HookRecorder:
    """The state of one watched forward pass."""

    def __init__(self, model: Any) -> None:
        import torch

        self.torch = torch
        self.builder = GraphBuilder(type(model).__name__)
        self.sources = SourceFinder.for_model(model)
        self.modules: list[Any] = []
        # id(module) -> (qualified name, standard leaf, upsampler), found in one walk
        self.names: dict[int, tuple[str, bool, bool]] = {}
        self.trainable: dict[int, bool] = {}  # id(parameter) -> requires_grad
        self.owned: set[int] = set()  # parameters and buffers
        for name, m in model.named_modules():
            self.modules.append(m)
            self.names[id(m)] = (name, is_standard_leaf(m), is_upsampling_module(m))
            for p in m._parameters.values():
                if p is not None:
                    self.trainable[id(p)] = p.requires_grad
                    self.owned.add(id(p))
            self.owned.update(id(b) for b in m._buffers.values() if b is not None)
        self.leaf_depth = 0  # standard leaves on the stack
        # upsampling module calls by node name: None once recorded, else why they were not
        self.upsamplers: dict[str, str | None] = {}
        self.placed_notes: dict[str, str] = {}
        self.tensors: dict[int, tuple[Any, Any]] = {}  # id -> (weakref, TensorArg | TupleValue)
        self.stack: list[tuple[str, bool, bool]] = []  # as in ``names``
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
    def pre_hook(self, module: Any, args: Any, kwargs: Any) -> None:
        entry = self.names.get(id(module))
        if entry is None:  # a module the model made during its forward
            entry = ("", is_standard_leaf(module), is_upsampling_module(module))
        self.stack.append(entry)
        self.leaf_depth += entry[1]

    def post_hook(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        if not self.stack:
            return
        name, leaf, upsampler = self.stack.pop()
        self.leaf_depth -= leaf
        if not leaf or self.leaf_depth or self.busy:
            return
        self.busy = True
        try:
            call_args, call_kwargs = self.arg(tuple(args)), self.arg(dict(kwargs))
            first = next((t for t in _flat(output) if isinstance(t, self.torch.Tensor)), None)
            started = self._start_path(args, call_args) if upsampler else None
            if started is not None:
                call_args = started
            spec = module_spec(module, call_args, call_kwargs, shape_of(first))
            if spec is None:
                self._outputs(output, None, None, all_fixed((call_args, call_kwargs)))
                return
            node_name = self.builder.module_name(name)
            value = self.builder.value(name.replace(".", "_") or "out")
            self.builder.add(
                spec, node_name, class_name(module), (value,), self.sources.module_source(name)
            )
            if upsampler:
                self.upsamplers[node_name] = None
            if started is not None:
                self.placed_notes[node_name] = _UNTRACED
            if first is not None:
                self.builder.shapes[value] = shape_of(first)  # type: ignore[assignment]
            self._outputs(output, spec, value, False)
        except Exception as exc:  # recording must never break the user's forward
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            if upsampler:
                self.upsamplers[name] = f"recording it raised {type(exc).__name__}"
        finally:
            self.busy = False

    def _start_path(self, args: Any, call_args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """An upsampler whose input tensor came from nowhere the recorder saw (an op outside
        torch, a tensor made by a C extension) starts a coverage path of its own, with a note,
        rather than disappear from the graph."""
        if not args or not isinstance(args[0], self.torch.Tensor):
            return None
        x = call_args[0]
        if not isinstance(x, TensorArg) or x.is_data or id(args[0]) in self.owned:
            return None
        entry = self.tensors.get(id(args[0]))
        if entry is not None and entry[0]() is args[0]:
            return None  # a tensor computed from weights and constants: not data
        value = self.builder.value("untraced")
        self.builder.shapes[value] = shape_of(args[0])  # type: ignore[assignment]
        return (TensorArg(value, shape_of(args[0])), *call_args[1:])

    # -- functional calls -------------------------------------------------------------------
    def _setitem(self, args: Any, call_args: tuple[Any, ...]) -> None:
        """``y[index] = x`` writes into ``y``: from here on ``y`` carries a BARRIER of both."""
        target = args[0] if args and isinstance(args[0], self.torch.Tensor) else None
        inputs = data_inputs(call_args[0], call_args[2:])
        if target is None or not inputs:
            return
        module = self.stack[-1][0] if self.stack else ""
        value = self.builder.value("setitem")
        self.builder.add(
            Spec(Kind.BARRIER, inputs), self.builder.function_name(module, "setitem"),
            "setitem", (value,), caller_source(),
        )  # fmt: skip
        self.builder.shapes[value] = shape_of(target)  # type: ignore[assignment]
        self.remember(target, TensorArg(value, shape_of(target)))

    def function_call(self, func: Any, args: Any, kwargs: Any, result: Any) -> None:
        if self.busy or self.leaf_depth:
            return
        self.busy = True
        try:
            call_args, call_kwargs = self.arg(tuple(args)), self.arg(dict(kwargs or {}))
            raw = getattr(func, "__name__", None) or str(func)
            if raw in ("__get__", "__set__"):  # a tensor attribute: x.data, x.real, x.mT
                if raw == "__set__":
                    return
                raw = getattr(getattr(func, "__self__", None), "__name__", raw)
            shown = canonical_name(raw)
            if shown == "setitem":
                self._setitem(args, call_args)
                return
            if not data_inputs(call_args, call_kwargs):
                self._outputs(result, None, None, all_fixed((call_args, call_kwargs)))
                return
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


_UNTRACED = "its input was not traced back to the model's inputs: its coverage path starts here"


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _flat(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):  # most results: pytree costs 10 us a call
        return [value]
    return torch.utils._pytree.tree_leaves(value)


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


@dataclass
class Recording:
    """One watched forward: its graph, and the upsampling layers it ran.

    ``required``: the names of the upsampling module calls (and of the conv feeding a
    PixelShuffle) the forward made, which every reader's graph must hold to be used;
    ``unplaced``: those the recording could not place, with why.
    """

    graph: Graph
    required: tuple[str, ...]
    unplaced: dict[str, str] = field(default_factory=dict)


def read_hooks(model: Any, inputs: tuple[Any, ...], run: Any) -> Graph:
    """The graph of ``model(*inputs)`` run once under the hooks (:func:`record_forward`)."""
    return record_forward(model, inputs, run).graph


def _graph_inputs(recorder: HookRecorder, model: Any, inputs: tuple[Any, ...]) -> list[str]:
    """Every tensor among the inputs, also inside lists, tuples and dicts (``forward(self, hs)``
    called with ``([x],)``): ``hs``, or ``hs_0``, ``hs_1`` ... inside a container."""
    import torch

    values = []
    for name, x in zip(_input_names(model, len(inputs)), inputs, strict=True):
        leaves = _flat(x)
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        for index, t in enumerate(tensors):
            value = recorder.builder.value(name if t is x else f"{name}_{index}")
            values.append(value)
            recorder.builder.shapes[value] = shape_of(t)  # type: ignore[assignment]
            recorder.remember(t, TensorArg(value, shape_of(t)))
    return values


def record_forward(model: Any, inputs: tuple[Any, ...], run: Any) -> Recording:
    """Run ``model(*inputs)`` once under the hooks; ``run(fn)`` applies the timeout."""
    import torch
    from torch.overrides import TorchFunctionMode

    recorder = HookRecorder(model)
    graph_inputs = _graph_inputs(recorder, model, inputs)

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            result = func(*args, **(kwargs or {}))
            recorder.function_call(func, args, kwargs, result)
            return result

    handles = []
    for module in recorder.modules:
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
    placed = [name for name, why in recorder.upsamplers.items() if why is None]
    graph = recorder.builder.finish(tuple(graph_inputs), tuple(outputs), keep=placed)
    unplaced = {name: why for name, why in recorder.upsamplers.items() if why is not None}
    live = live_values(graph.nodes, graph.outputs)
    for node in graph.nodes:
        notes = []
        if node.name in recorder.placed_notes:
            notes.append(recorder.placed_notes[node.name])
        if node.name in recorder.upsamplers and not live.intersection(node.outputs):
            notes.append("its output reaches no output of the model")
        if notes:
            node.notes = (*node.notes, *notes)
            graph.report_notes.append(f"{node.name!r}: {'; '.join(notes)}")
    if recorder.errors:
        graph.notes.append(
            f"hooks: {len(recorder.errors)} calls not recorded: {recorder.errors[0]}"
        )
    return Recording(graph, _required(graph, placed), unplaced)


def _required(graph: Graph, placed: list[str]) -> tuple[str, ...]:
    """The placed upsamplers and the convs whose output a PixelShuffle reads."""
    producers = graph.producers()
    feeding = [
        producer.name
        for node in graph.nodes
        if node.kind is Kind.DEPTH_TO_SPACE
        for producer in [producers.get(node.inputs[0])]
        if node.inputs
        if producer is not None and producer.kind is Kind.CONV
    ]
    return tuple(dict.fromkeys([*placed, *feeding]))

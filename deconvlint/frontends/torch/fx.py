"""Reader 1: ``torch.fx`` symbolic tracing, standard ``torch.nn`` modules as leaves.

Custom modules are traced through, so a functional call inside them is seen with the module
that made it (``nn_module_stack``).  With example inputs, :class:`Forward` runs the graph once,
as fx's ``ShapeProp`` would, in the same walk that reads it, and gives every value its static
shape and every non-data value (``x.size(2)``, a kernel built from a buffer) its concrete
value.  Without them, the non-data parts that depend only on weights and constants are still
evaluated; anything that needs the input size stays unknown.
"""

from __future__ import annotations

import operator
from typing import Any

from deconvlint.core.ir import Graph
from deconvlint.frontends.torch.graph import GraphBuilder, shape_of
from deconvlint.frontends.torch.modules import class_name, module_spec
from deconvlint.frontends.torch.names import SourceFinder, caller_source
from deconvlint.frontends.torch.ops import NON_TENSOR, canonical_name, function_spec
from deconvlint.frontends.torch.spec import (
    UNKNOWN,
    ReaderError,
    TensorArg,
    failure_reason,
    known,
)
from deconvlint.frontends.torch.values import TupleValue, all_fixed, unwrap, wrap


def _make_tracer() -> Any:
    import torch.fx

    class Tracer(torch.fx.Tracer):
        """Records the user line of every function and method call it creates (a module call
        is named by the line that built the module instead)."""

        def create_node(self, kind: str, *args: Any, **kwargs: Any) -> Any:
            node = super().create_node(kind, *args, **kwargs)
            if kind in ("call_function", "call_method"):
                node.meta["deconvlint_source"] = caller_source()
            return node

    return Tracer()


class Forward:
    """Runs the traced graph on the example inputs one node at a time, as fx's ``Interpreter``
    (and ``ShapeProp``) would, for a reader that walks the nodes in the same order and reads
    each real value as it is made.  A value is dropped after its last use.

    The ``Interpreter`` costs a context manager, a progress bar and an argument fetch per node:
    three fifths of ShapeProp on hifigan, whose ops are small.
    """

    def __init__(
        self, root: Any, graph: Any, inputs: tuple[Any, ...], modules: dict[str, Any]
    ) -> None:
        import torch.fx

        self.root, self.modules = root, modules
        self._map = torch.fx.node.map_arg
        self.inputs = iter(inputs)
        self.env: dict[Any, Any] = {}
        last: dict[Any, Any] = {}
        for n in graph.nodes:
            for a in n.all_input_nodes:
                last[a] = n
        self.drops: dict[Any, list[Any]] = {}
        for value, user in last.items():
            self.drops.setdefault(user, []).append(value)

    def step(self, n: Any) -> Any:
        """The real value of node ``n``; raises :class:`ReaderError` if the node raises."""
        try:
            value = self._run(n)
        except Exception as exc:
            cause = failure_reason(exc)
            raise ReaderError(f"the model does not run on the example inputs: {cause}") from exc
        env = self.env
        env[n] = value
        for done in self.drops.get(n, ()):
            env.pop(done, None)
        return value

    def _run(self, n: Any) -> Any:
        op = n.op
        if op == "placeholder":
            if n.target.startswith("*"):
                return list(self.inputs)
            value = next(self.inputs, _MISSING)
            if value is not _MISSING:
                return value
            if n.args:
                return n.args[0]
            raise RuntimeError(f"expected an argument for the parameter {n.target}")
        if op == "get_attr":
            return _fetch(self.root, n.target)
        fetch = self.env.__getitem__
        args = self._map(n.args, fetch)
        kwargs = self._map(n.kwargs, fetch) if n.kwargs else {}
        if op == "call_function":
            return n.target(*args, **kwargs)
        if op == "call_method":
            return getattr(args[0], n.target)(*args[1:], **kwargs)
        if op == "call_module":
            return _submodule(self.root, self.modules, n.target)(*args, **kwargs)
        return None  # output: the reader reads the values it names


_MISSING = object()


def _shape_meta(value: Any) -> Any:
    """The shape the reader keeps of a real value: a tuple for a tensor, a list of them (None
    for a non-tensor element) for a tuple or list holding tensors, else None."""
    import torch

    if isinstance(value, torch.Tensor):
        return shape_of(value)
    if isinstance(value, (tuple, list)) and any(
        isinstance(t, torch.Tensor) for t in torch.utils._pytree.tree_leaves(value)
    ):
        return [shape_of(v) if isinstance(v, torch.Tensor) else None for v in value]
    return None


def trace(model: Any) -> tuple[Any, Any]:
    """``(graph, root)`` of the symbolic trace; raises what fx raises."""
    tracer = _make_tracer()
    graph = tracer.trace(model)
    return graph, tracer.root


def _data_nodes(graph: Any, flags: list[bool] | None) -> set[Any]:
    """Nodes whose value depends on a tensor input of the model (``flags``: which example
    inputs are tensors; ``None``: every input is)."""
    data: set[Any] = set()
    index = 0
    for n in graph.nodes:
        if n.op == "placeholder":
            if flags is None or (index < len(flags) and flags[index]):
                data.add(n)
            index += 1
        elif n.op in ("call_function", "call_method", "call_module"):
            name = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "")
            if n.target is getattr or canonical_name(str(name)) in NON_TENSOR:
                continue
            if any(a in data for a in n.all_input_nodes):
                data.add(n)
    return data


def _owner(n: Any) -> str:
    stack = n.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1]
    return str(path[0] if isinstance(path, tuple) else path)


def _fetch(root: Any, target: str) -> Any:
    found = root
    for part in target.split("."):
        found = getattr(found, part)
    return found


def submodules(root: Any) -> dict[str, Any]:
    """Every submodule of ``root`` by each of its qualified names (one walk, where a lookup
    per call would walk its path: 5 us per call on hifigan)."""
    return dict(root.named_modules(remove_duplicate=False))


def _submodule(root: Any, modules: dict[str, Any], target: str) -> Any:
    found = modules.get(target)
    return found if found is not None else root.get_submodule(target)


def _evaluate(n: Any, root: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The value of a node that carries no data, computed from known weights and constants."""
    import torch

    real_args, real_kwargs = unwrap(args), unwrap(kwargs)
    if not known(list(real_args)) or not known(list(real_kwargs.values())):
        return UNKNOWN
    if n.target is getattr and args and isinstance(args[0], TensorArg):
        return UNKNOWN  # x.shape of a tensor whose value is unknown
    try:
        with torch.no_grad():
            if n.op == "call_function":
                result = n.target(*real_args, **real_kwargs)
            elif n.op == "call_method":
                result = getattr(real_args[0], n.target)(*real_args[1:], **real_kwargs)
            else:
                result = root.get_submodule(n.target)(*real_args, **real_kwargs)
    except Exception:
        return UNKNOWN
    return wrap(result, all_fixed((args, kwargs)))


class FxReader:
    """Turns one traced fx graph into IR nodes; with a :class:`Forward`, in the same walk that
    runs the graph on the example inputs (shapes and the values of non-data nodes are then
    real, not computed from weights and constants alone)."""

    def __init__(
        self,
        model: Any,
        graph: Any,
        root: Any,
        forward: Forward | None,
        modules: dict[str, Any] | None = None,
    ) -> None:
        import torch.fx

        self.model, self.graph, self.root = model, graph, root
        self.forward = forward
        self._map = torch.fx.node.map_arg
        self.modules = submodules(root) if modules is None else modules
        self.builder = GraphBuilder(type(model).__name__)
        self.sources = SourceFinder.for_model(model, self.modules if model is root else None)
        self.env: dict[Any, Any] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []

    def read(self, data: set[Any]) -> Graph:
        import torch

        forward = self.forward
        params: dict[int, Any] | None = None  # walked only if the graph reads an attribute
        for n in self.graph.nodes:
            real = None if forward is None else forward.step(n)
            if n.op == "placeholder":
                self._placeholder(n, n in data, real)
            elif n.op == "get_attr":
                if params is None:
                    params = {id(p): p for p in self.root.parameters()}
                value = real if forward is not None else _fetch(self.root, n.target)
                fixed = not (id(value) in params and value.requires_grad)
                self.env[n] = wrap(value, fixed)
            elif n.op == "output":
                leaves = torch.utils._pytree.tree_leaves(self._args(n.args[0]))
                self.outputs = [v.value for v in leaves if isinstance(v, TensorArg) and v.is_data]
            else:
                self._call(n, n in data, real)
        return self.builder.finish(tuple(self.inputs), tuple(self.outputs))

    def _args(self, value: Any) -> Any:
        if not value:  # most kwargs
            return value
        env = self.env
        return self._map(value, lambda a: env.get(a, UNKNOWN))

    def _placeholder(self, n: Any, is_data: bool, real: Any) -> None:
        if not is_data:
            self.env[n] = real if self.forward is not None else (n.args[0] if n.args else None)
            return
        value = self.builder.value(n.name)
        self.inputs.append(value)
        shape = _shape_meta(real)
        if isinstance(shape, tuple):
            self.builder.shapes[value] = shape
        self.env[n] = TensorArg(value, shape if isinstance(shape, tuple) else None)

    def _call(self, n: Any, is_data: bool, real: Any) -> None:
        args, kwargs = self._args(n.args), self._args(n.kwargs)
        if n.target is operator.getitem and isinstance(args[0], TupleValue):
            self.env[n] = args[0].element(args[1])
            return
        if not is_data:
            if self.forward is not None:
                self.env[n] = wrap(real, all_fixed((args, kwargs)))
            else:
                self.env[n] = _evaluate(n, self.root, args, kwargs)
            return
        shape = _shape_meta(real)
        out_shape = shape[0] if isinstance(shape, list) and shape else shape
        if n.op == "call_module":
            module = _submodule(self.root, self.modules, n.target)
            spec = module_spec(module, args, kwargs, out_shape)
            op_type = class_name(module)
        else:
            raw = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "call")
            op_type = canonical_name(raw)
            spec = function_spec(op_type, args, kwargs, out_shape)
        if spec is None:
            self.env[n] = TensorArg(None, out_shape if isinstance(out_shape, tuple) else None)
            return
        if n.op == "call_module":
            name, source = self.builder.module_name(n.target), self.sources.module_source(n.target)
        else:
            name = self.builder.function_name(_owner(n), op_type)
            source = n.meta.get("deconvlint_source")
        value = self.builder.value(n.name)
        self.builder.add(spec, name, op_type, (value,), source)
        if isinstance(out_shape, tuple):
            self.builder.shapes[value] = out_shape
        if spec.tuple_output or isinstance(shape, list):
            self.env[n] = TupleValue(spec, value, shape if isinstance(shape, list) else [])
        else:
            self.env[n] = TensorArg(value, out_shape)


def read_fx(model: Any, example_inputs: tuple[Any, ...] | None, run: Any) -> Graph:
    """The graph of ``model`` through fx; ``run(fn)`` runs the walk that runs the graph on the
    example inputs (the forward pass that a timeout bounds).

    Raises when fx cannot trace the model, or when the traced graph does not run on the
    example inputs.
    """
    import torch

    graph, root = trace(model)
    flags = None
    if example_inputs is not None:
        flags = [isinstance(x, torch.Tensor) for x in example_inputs]
    data = _data_nodes(graph, flags)

    def read() -> Graph:
        modules = submodules(root)
        forward = None
        if example_inputs is not None:
            forward = Forward(root, graph, example_inputs, modules)
        # after tracing (whose proxies must not be cached): the forward pass and the reader
        # then compute each parametrized weight (weight_norm) once, not once each
        with torch.no_grad(), torch.nn.utils.parametrize.cached():
            return FxReader(model, graph, root, forward, modules).read(data)

    return read() if example_inputs is None else run(read)

"""Reader 1: ``torch.fx`` symbolic tracing, standard ``torch.nn`` modules as leaves.

Custom modules are traced through, so a functional call inside them is seen with the module
that made it (``nn_module_stack``).  With example inputs, :class:`ShapeProp` runs the graph
once and gives every value its static shape and every non-data value (``x.size(2)``, a kernel
built from a buffer) its concrete value.  Without them, the non-data parts that depend only on
weights and constants are still evaluated; anything that needs the input size stays unknown.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

from deconvlint.frontends.torch_graph import GraphBuilder, shape_of
from deconvlint.frontends.torch_modules import class_name, module_spec
from deconvlint.frontends.torch_names import SourceFinder, caller_source
from deconvlint.frontends.torch_ops import NON_TENSOR, canonical_name, function_spec
from deconvlint.frontends.torch_spec import UNKNOWN, ReaderError, Spec, TensorArg, known
from deconvlint.ir import Graph, Kind


class TensorShape(NamedTuple):
    """What the reader keeps of a tensor result: its shape (fx's ``TensorMetadata`` also
    checks memory formats and strides, which cost a tenth of a check and were never read)."""

    shape: Any


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


def _make_recorder(root: Any, graph: Any, data: set[Any]) -> Any:
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    class Recorder(ShapeProp):
        """ShapeProp that also keeps the results of the nodes that carry no data, and lets an
        error pass unprinted (ShapeProp prints its traceback)."""

        def __init__(self) -> None:
            # the traced root and its graph, without a GraphModule: building one generates
            # and compiles Python code for the graph (a tenth of a check), which an
            # interpreter never runs
            torch.fx.Interpreter.__init__(self, root, graph=graph)
            self.fake_module = self.fake_mode = None  # what ShapeProp.__init__ would set
            self.real_module = self.module
            self.results: dict[Any, Any] = {}

        def run_node(self, n: Any) -> Any:
            result = torch.fx.Interpreter.run_node(self, n)
            if isinstance(result, torch.Tensor):  # most nodes: no tree to walk
                n.meta["deconvlint_meta"] = TensorShape(result.shape)
            elif any(isinstance(t, torch.Tensor) for t in _leaves(result)):
                n.meta["deconvlint_meta"] = torch.fx.node.map_aggregate(
                    result, lambda v: TensorShape(v.shape) if isinstance(v, torch.Tensor) else v
                )
            if n not in data:
                self.results[n] = result
            return result

    return Recorder()


def _leaves(value: Any) -> list[Any]:
    import torch

    return torch.utils._pytree.tree_leaves(value)


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


def _wrap(value: Any, fixed: bool) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return TensorArg(None, shape_of(value), tensor=value, fixed=fixed)
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, TensorArg):
        return UNKNOWN if value.tensor is None else value.tensor
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _fixed(args: Any) -> bool:
    if isinstance(args, TensorArg):
        return args.fixed
    if isinstance(args, (list, tuple)):
        return all(_fixed(a) for a in args)
    if isinstance(args, dict):
        return all(_fixed(a) for a in args.values())
    return True


def _evaluate(n: Any, root: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The value of a node that carries no data, computed from known weights and constants."""
    import torch

    real_args, real_kwargs = _unwrap(args), _unwrap(kwargs)
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
    return _wrap(result, _fixed((args, kwargs)))


class FxReader:
    """Turns one traced fx graph into IR nodes."""

    def __init__(self, model: Any, graph: Any, root: Any, results: dict[Any, Any] | None) -> None:
        self.model, self.graph, self.root = model, graph, root
        self.results = results
        self.builder = GraphBuilder(type(model).__name__)
        self.sources = SourceFinder.for_model(model)
        self.env: dict[Any, Any] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []

    def read(self, data: set[Any]) -> Graph:
        import torch

        params: dict[int, Any] | None = None  # walked only if the graph reads an attribute
        for n in self.graph.nodes:
            if n.op == "placeholder":
                self._placeholder(n, n in data)
            elif n.op == "get_attr":
                if params is None:
                    params = {id(p): p for p in self.root.parameters()}
                value = _fetch(self.root, n.target)
                fixed = not (id(value) in params and value.requires_grad)
                self.env[n] = _wrap(value, fixed)
            elif n.op == "output":
                leaves = torch.utils._pytree.tree_leaves(self._args(n.args[0]))
                self.outputs = [v.value for v in leaves if isinstance(v, TensorArg) and v.is_data]
            else:
                self._call(n, n in data)
        return self.builder.finish(tuple(self.inputs), tuple(self.outputs))

    def _args(self, value: Any) -> Any:
        import torch.fx

        return torch.fx.node.map_arg(value, lambda a: self.env.get(a, UNKNOWN))

    def _shape(self, n: Any) -> Any:
        meta = n.meta.get("deconvlint_meta")
        if isinstance(meta, (tuple, list)) and not hasattr(meta, "shape"):
            return [shape_of(m) for m in meta]
        return shape_of(meta)

    def _placeholder(self, n: Any, is_data: bool) -> None:
        if not is_data:
            default = n.args[0] if n.args else None
            self.env[n] = self.results.get(n, default) if self.results else default
            return
        value = self.builder.value(n.name)
        self.inputs.append(value)
        shape = self._shape(n)
        if isinstance(shape, tuple):
            self.builder.shapes[value] = shape
        self.env[n] = TensorArg(value, shape if isinstance(shape, tuple) else None)

    def _call(self, n: Any, is_data: bool) -> None:
        args, kwargs = self._args(n.args), self._args(n.kwargs)
        if n.target is operator.getitem and isinstance(args[0], TupleValue):
            self.env[n] = args[0].element(args[1])
            return
        if not is_data:
            if self.results is not None and n in self.results:
                self.env[n] = _wrap(self.results[n], _fixed((args, kwargs)))
            else:
                self.env[n] = _evaluate(n, self.root, args, kwargs)
            return
        shape = self._shape(n)
        out_shape = shape[0] if isinstance(shape, list) and shape else shape
        if n.op == "call_module":
            module = self.root.get_submodule(n.target)
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
    """The graph of ``model`` through fx; ``run(fn)`` runs the forward pass of ShapeProp.

    Raises when fx cannot trace the model, or when the traced graph does not run on the
    example inputs.
    """
    import torch
    import torch.fx

    graph, root = trace(model)
    flags = None
    if example_inputs is not None:
        flags = [isinstance(x, torch.Tensor) for x in example_inputs]
    data = _data_nodes(graph, flags)
    results = None
    if example_inputs is not None:
        recorder = _make_recorder(root, graph, data)

        def propagate() -> None:
            with torch.no_grad():
                recorder.propagate(*example_inputs)

        try:
            run(propagate)
        except TimeoutError:
            raise
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            cause = f"{type(exc).__name__}: {lines[0] if lines else ''}"
            raise ReaderError(f"the model does not run on the example inputs: {cause}") from exc
        results = recorder.results
    return FxReader(model, graph, root, results).read(data)

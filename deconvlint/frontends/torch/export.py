"""Reader 2: ``torch.export`` (non-strict) and its aten graph.

Each aten op is rewritten into the torch function it came from (``aten.upsample_nearest2d.vec``
is ``interpolate(mode="nearest")``, ``aten.convolution(transposed=True)`` is
``conv_transpose2d``, ``aten.constant_pad_nd`` is ``pad`` ...) and read by the same function
table as the other readers.  Ops recorded inside a standard ``torch.nn`` module
(``nn_module_stack``) take the module's qualified name and class; the others are named after the
module whose forward made them, like functional calls elsewhere.

Weights are the program's parameters, buffers and constants, each marked trained or not (a
buffer, a constant, or a parameter with ``requires_grad=False`` is not); a depthwise weight equal
on every channel is a fixed filter either way, and a trained one gets a note.
"""

from __future__ import annotations

import contextlib
import io
import operator
from typing import Any

from deconvlint.core.ir import Graph, Kind
from deconvlint.frontends.torch.graph import GraphBuilder, shape_of
from deconvlint.frontends.torch.names import SourceFinder, stack_trace_source
from deconvlint.frontends.torch.ops import canonical_name, function_spec
from deconvlint.frontends.torch.spec import UNKNOWN, Spec, TensorArg, data_inputs, known
from deconvlint.frontends.torch.values import TupleValue, all_fixed, unwrap, wrap

_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _resize(packet: str, overload: str, args: tuple[Any, ...]) -> tuple[str, tuple, dict]:
    """``aten.upsample_*`` / ``aten._upsample_*``: back to ``interpolate``."""
    x, output_size = args[0], args[1] if len(args) > 1 else None
    has_corners = "nearest" not in packet
    align = args[2] if has_corners and len(args) > 2 else None
    rest = args[3 if has_corners else 2 :]
    if overload == "vec":
        scales = rest[0] if rest else None
    else:  # .default: one optional scale per axis
        scales = tuple(rest) if rest and all(s is not None for s in rest) else None
    if "nearest" in packet:
        mode = "nearest-exact" if "exact" in packet else "nearest"
    else:
        mode = next(m for m in ("trilinear", "bilinear", "bicubic", "linear", "") if m in packet)
    kwargs = {
        "size": None if scales is not None else output_size,
        "scale_factor": scales,
        "mode": mode,
        "align_corners": align,
        "antialias": packet.endswith("_aa"),
    }
    return "interpolate", (x,), kwargs


def aten_call(
    packet: str, overload: str, args: tuple, kwargs: dict
) -> tuple[str, str, tuple, dict]:
    """(table name, display name, args, kwargs) of the torch function an aten op came from."""
    if "upsample" in packet:
        name, args, kwargs = _resize(packet, overload, args)
        return name, name, args, kwargs
    if packet in ("convolution", "_convolution"):
        x, w, b, stride, padding, dilation, transposed, output_padding, groups = args[:9]
        rank = len(w.shape) - 2 if isinstance(w, TensorArg) and w.shape else 2
        if transposed:
            name = f"conv_transpose{rank}d"
            return name, name, (x, w, b, stride, padding, output_padding, groups, dilation), {}
        return f"conv{rank}d", f"conv{rank}d", (x, w, b, stride, padding, dilation, groups), {}
    if packet.startswith(("reflection_pad", "replication_pad", "_pad_circular")):
        mode = "reflect" if packet.startswith("reflection") else "replicate"
        mode = "circular" if "circular" in packet else mode
        return "pad", "pad", (args[0], args[1]), {"mode": mode}
    if packet == "constant_pad_nd":
        return "pad", "pad", (args[0], args[1]), {}
    if packet.startswith("_adaptive_avg_pool"):
        name = packet[1:]
        return name, name, args, kwargs
    if packet.startswith("adaptive_max_pool"):
        return packet, packet, args[:2], {"return_indices": True}
    if packet.startswith("max_pool") and packet.endswith("_with_indices"):
        return packet, packet.removesuffix("_with_indices"), args, kwargs
    if packet.startswith("max_unpool"):
        keys = ("input", "indices", "output_size", "stride", "padding")
        return packet, packet, (), dict(zip(keys, args, strict=False))
    if packet in ("_softmax", "_log_softmax"):
        return packet[1:], packet[1:], args[:2], {}
    name = canonical_name(packet)
    if name in ("_unsafe_view", "view_copy", "_reshape_alias"):
        name = "view"
    return name, name, args, kwargs


def _is_leaf_type(type_name: str) -> bool:
    module_name, _, cls = type_name.rpartition(".")
    return module_name.startswith(("torch.nn", "torch.ao.nn")) and cls not in _CONTAINERS


def _class_name(type_name: str) -> str:
    cls = type_name.rpartition(".")[2]
    return cls.removeprefix("Parametrized") if cls.startswith("Parametrized") else cls


def _weights(ep: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """(placeholder -> TensorArg for weights, data placeholders, user outputs)."""
    from torch.export.graph_signature import InputKind, OutputKind

    weights: dict[str, Any] = {}
    data: list[str] = []
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if name is None:
            continue
        if spec.kind == InputKind.USER_INPUT:
            data.append(name)
            continue
        tensor = ep.state_dict.get(spec.target)
        if tensor is None:
            tensor = ep.constants.get(spec.target)
        if tensor is None or not hasattr(tensor, "shape"):
            weights[name] = UNKNOWN
            continue
        fixed = spec.kind != InputKind.PARAMETER or not tensor.requires_grad
        weights[name] = TensorArg(None, shape_of(tensor), tensor=tensor, fixed=fixed)
    outputs = [
        getattr(s.arg, "name", None)
        for s in ep.graph_signature.output_specs
        if s.kind == OutputKind.USER_OUTPUT
    ]
    return weights, data, [o for o in outputs if o]


class ExportReader:
    def __init__(self, ep: Any, model: Any) -> None:
        self.ep = ep
        name = type(model).__name__ if model is not None else "ExportedProgram"
        self.builder = GraphBuilder(name)
        self.env: dict[Any, Any] = {}
        # leaf-module calls (nn_module_stack key) -> (qualified name, class, their nodes)
        self.module_calls: dict[str, tuple[str, str, list[Any]]] = {}
        types: dict[str, str] = {}
        for n in ep.graph.nodes:
            for path, type_name in (n.meta.get("nn_module_stack") or {}).values():
                shown = type_name if isinstance(type_name, str) else _qualname(type_name)
                types[str(path)] = shown
        self.types = types
        if model is not None:
            self.sources = SourceFinder.for_model(model)
        else:
            self.sources = SourceFinder.for_type_names(types)
        # With the model at hand, the aten ops of one leaf-module call become one node, read
        # from the module itself as fx and hooks read it: call key -> its nodes.
        self.modules = dict(model.named_modules()) if model is not None else {}
        self.regions: dict[str, list[Any]] = {}
        self.region_of: dict[Any, str] = {}
        for n in ep.graph.nodes:
            key = self._leaf_call(n)
            if key is not None:
                self.regions.setdefault(key, []).append(n)
                self.region_of[n] = key
        self.done: set[str] = set()
        self.user_outputs: set[str] = set()

    def _leaf_call(self, n: Any) -> str | None:
        if n.op != "call_function" or not self.modules:
            return None
        for key, (path, type_name) in (n.meta.get("nn_module_stack") or {}).items():
            shown = type_name if isinstance(type_name, str) else _qualname(type_name)
            if _is_leaf_type(shown) and str(path) in self.modules:
                return str(key)
        return None

    def _region(self, key: str) -> bool:
        """Read one leaf-module call as a whole; False when it carries no data."""
        from deconvlint.frontends.torch.modules import class_name, module_spec

        nodes = self.regions[key]
        inside = set(nodes)
        outer: list[Any] = []
        for n in nodes:
            for a in n.all_input_nodes:
                if a not in inside and a not in outer:
                    outer.append(a)
        args = [self.env.get(a) for a in outer]
        args = [a for a in args if isinstance(a, TensorArg) and (a.is_data or a.indices_of)]
        if not data_inputs(args):
            return False
        outs = [
            n for n in nodes if n.name in self.user_outputs or any(u not in inside for u in n.users)
        ]
        path = self._path(nodes[0], key)
        module = self.modules[path]
        first = outs[0].meta.get("val") if outs else None
        if isinstance(first, (list, tuple)):
            first = first[0] if first else None
        spec = module_spec(module, tuple(args), {}, shape_of(first))
        if spec is None:
            return False
        value = self.builder.value(path.replace(".", "_") or "out")
        self.builder.add(
            spec, self.builder.module_name(path), class_name(module), (value,),
            self.sources.module_source(path),
        )  # fmt: skip
        if shape_of(first) is not None:
            self.builder.shapes[value] = shape_of(first)  # type: ignore[assignment]
        for n in outs:
            val = n.meta.get("val")
            if isinstance(val, (list, tuple)):
                self.env[n] = TupleValue(spec, value, [shape_of(v) for v in val])
            elif n.target is operator.getitem and n.args[0] in inside:
                shapes = [shape_of(v) for v in n.args[0].meta.get("val") or ()]
                self.env[n] = TupleValue(spec, value, shapes).element(n.args[1])
            else:
                self.env[n] = TensorArg(value, shape_of(val))
        return True

    @staticmethod
    def _path(n: Any, key: str) -> str:
        return str((n.meta.get("nn_module_stack") or {})[key][0])

    def read(self) -> Graph:
        weights, data, outputs = _weights(self.ep)
        self.user_outputs = set(outputs)
        inputs = []
        for n in self.ep.graph.nodes:
            if n.op == "placeholder":
                if n.name in data and hasattr(n.meta.get("val"), "shape"):
                    value = self.builder.value(n.name)
                    inputs.append(value)
                    shape = shape_of(n.meta.get("val"))
                    self.builder.shapes[value] = shape  # type: ignore[assignment]
                    self.env[n] = TensorArg(value, shape)
                else:
                    self.env[n] = weights.get(n.name, _plain(n.meta.get("val")))
            elif n.op == "call_function":
                key = self.region_of.get(n)
                if key is not None and key in self.done:
                    continue
                if key is not None:
                    self.done.add(key)
                    if self._region(key):
                        continue
                    for inner in self.regions[key]:  # no data: read op by op
                        self._call(inner)
                    continue
                self._call(n)
            elif n.op == "get_attr":
                self.env[n] = UNKNOWN
        by_name = {n.name: n for n in self.ep.graph.nodes}
        values = []
        for name in outputs:
            found = self.env.get(by_name.get(name))
            if isinstance(found, TensorArg) and found.is_data:
                values.append(found.value)
        self._name_modules()
        return self.builder.finish(tuple(inputs), tuple(values))

    def _name_modules(self) -> None:
        """Each leaf-module call gives its name to its main node: the first that is not a pad or
        a pointwise op (``padding_mode="reflect"`` records a pad before the conv)."""
        plain = (Kind.SHIFT, Kind.POINTWISE)
        for path, type_name, nodes in self.module_calls.values():
            main = next((n for n in nodes if n.kind not in plain), nodes[0])
            main.name = self.builder.module_name(path)
            main.op_type = _class_name(type_name)
            main.source = self.sources.module_source(path)

    def _args(self, value: Any) -> Any:
        import torch.fx

        return torch.fx.node.map_arg(value, lambda a: self.env.get(a, UNKNOWN))

    def _call(self, n: Any) -> None:
        args, kwargs = self._args(n.args), self._args(n.kwargs)
        val = n.meta.get("val")
        if n.target is operator.getitem:
            if isinstance(args[0], TupleValue):
                self.env[n] = args[0].element(args[1])
            elif isinstance(args[0], (list, tuple)) and isinstance(args[1], int):
                self.env[n] = args[0][args[1]]
            else:
                self.env[n] = _plain(val)
            return
        packet = getattr(getattr(n.target, "_overloadpacket", None), "__name__", None)
        if packet is None:  # a higher-order op (cond, while_loop, ...) or a Python callable
            packet = getattr(n.target, "__name__", str(n.target))
        overload = getattr(n.target, "_overloadname", "default")
        if not data_inputs(args, kwargs):
            self.env[n] = self._constant(n, args, kwargs, val)
            return
        table, shown, call_args, call_kwargs = aten_call(packet, overload, args, kwargs)
        shapes = [shape_of(v) for v in val] if isinstance(val, (list, tuple)) else None
        out_shape = shape_of(val) if shapes is None else (shapes[0] if shapes else None)
        spec = function_spec(table, call_args, call_kwargs, out_shape)
        if spec is None or val is None:
            self.env[n] = _plain(val)
            return
        value = self.builder.value(n.name)
        self._add(n, spec, shown, value)
        if out_shape is not None:
            self.builder.shapes[value] = out_shape
        if shapes is not None:
            self.env[n] = TupleValue(spec, value, shapes)
        else:
            self.env[n] = TensorArg(value, out_shape)

    def _constant(self, n: Any, args: Any, kwargs: Any, val: Any) -> Any:
        """A value that carries no data: computed when its inputs are known (weights)."""
        import torch

        if not hasattr(val, "shape"):
            return _plain(val)
        real_args, real_kwargs = unwrap(args), unwrap(kwargs)
        if known(list(real_args)) and known(list(real_kwargs.values())):
            try:
                with torch.no_grad():
                    return wrap(n.target(*real_args, **real_kwargs), all_fixed(args))
            except Exception:
                pass
        return TensorArg(None, shape_of(val))

    def _add(self, n: Any, spec: Spec, shown: str, value: str) -> None:
        stack = list((n.meta.get("nn_module_stack") or {}).items())
        key, (path, _) = stack[-1] if stack else ("", ("", ""))
        path = str(path)
        type_name = self.types.get(path, "")
        source = stack_trace_source(n.meta.get("stack_trace"))
        node = self.builder.add(
            spec, self.builder.function_name(path, shown), shown, (value,), source
        )
        if stack and _is_leaf_type(type_name):
            self.module_calls.setdefault(key, (path, type_name, []))[2].append(node)


def _qualname(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '')}.{getattr(cls, '__qualname__', cls)}"


def _plain(val: Any) -> Any:
    """A non-tensor value of the program (a static int stays, a symbolic one is unknown)."""
    if val is None or isinstance(val, (bool, int, float, str)):
        return val
    if isinstance(val, (list, tuple)):
        return type(val)(_plain(v) for v in val)
    if hasattr(val, "shape"):
        return TensorArg(None, shape_of(val))
    return UNKNOWN


def read_exported(ep: Any, model: Any = None) -> Graph:
    """The :class:`Graph` of an ExportedProgram (``model``: the module it came from, if known)."""
    return ExportReader(ep, model).read()


def export_module(model: Any, inputs: tuple[Any, ...], run: Any) -> Graph:
    """``torch.export.export(model, inputs, strict=False)``, then :func:`read_exported`."""
    import logging

    import torch

    # symbolic_shapes warns about the guard it is about to raise on; the raise says it all
    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = shapes_log.level
    shapes_log.setLevel(logging.ERROR)

    def export() -> Any:
        # a failed export prints the partial graph to stderr; the error line is enough
        with contextlib.redirect_stderr(io.StringIO()):
            return torch.export.export(model, inputs, strict=False)

    try:
        ep = run(export)
    finally:
        shapes_log.setLevel(level)
    graph = read_exported(ep, model)
    graph.name = type(model).__name__
    return graph

"""A Keras model configuration (parsed JSON) to the IR, with Keras semantics, running nothing.

``config`` is the top-level model JSON: ``config.json`` of a ``.keras`` archive or the
``model_config`` attribute of a legacy ``.h5`` (``{"class_name": "Sequential" | "Functional" |
"Model", "config": {...}}``).  Keras, TensorFlow and JAX are never imported; a ``Lambda``
layer's marshalled code and custom classes are never deserialised (they are opaque nodes).

Models: ``Sequential`` (a chain), ``Functional`` / ``Model`` (layers with ``inbound_nodes`` in
Keras 3's form, ``{"args": [...keras tensors...], "kwargs": {...}}``, or Keras 2's, ``[[[layer,
node_index, tensor_index, kwargs], ...], ...]``), nested models inlined, shared layers.

Names (the ``node.name`` a finding shows):

* a layer: its Keras name, ``conv2d_transpose``;
* a layer of a nested model: the nested model's name, ``/``, the layer's name,
  ``generator/conv2d_transpose`` (deeper nesting adds more ``/``);
* a shared layer's second, third ... call: ``#2``, ``#3`` after the name, ``conv#2``; a
  nested model called again names its layers ``inner#2/conv``;
* a ``Resizing`` with ``crop_to_aspect_ratio``/``pad_to_aspect_ratio``: its crop is a SHIFT
  node ``<name>:crop`` before it.

Values are named after the node that makes them; a model's inputs after their ``InputLayer``.
A ``keras.ops`` call in a functional model (Keras 3 saves it as an operation, e.g.
``ops.depth_to_space``, ``ops.image.resize``) is read by :mod:`deconvlint.frontends.keras.ops`.

Every Keras node carries ``extra["library"] = "keras"``, ``extra["class_name"]`` (also its
``op_type``) and, for layers with a ``data_format``, ``extra["data_format"]``; a windowed layer
(conv, pool) keeps its ``padding`` string in ``extra["padding"]`` (a ``'same'`` conv's rewrite
stays ``'same'``, whose length holds for every input length).

>>> config = {"class_name": "Sequential", "config": {"name": "g", "layers": [
...     {"class_name": "InputLayer", "config": {"name": "z", "batch_shape": [None, 7, 7, 128]}},
...     {"class_name": "Conv2DTranspose", "config": {"name": "up", "filters": 64,
...      "kernel_size": [5, 5], "strides": [2, 2], "padding": "same", "use_bias": False}}]}}
>>> graph = graph_from_config(config, name="g")
>>> [(n.name, n.window[0].pads_begin, n.out_channels) for n in graph.nodes], graph.shapes["up"]
([('up', 1, 64)], (None, 14, 14, 64))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deconvlint.core.ir import Graph, Kind, LayerWeights, Node, WeightSource
from deconvlint.core.weights import depthwise_filter
from deconvlint.errors import DeconvlintError, LoadError, one_line
from deconvlint.frontends.keras.kernels import (
    conv_kernel,
    depthwise_kernel,
    kernel_fits,
    separable_kernel,
    transpose_kernel,
)
from deconvlint.frontends.keras.ops import is_keras_op, op_spec
from deconvlint.frontends.keras.table import (
    CODE,
    LayerConfigError,
    LayerSpec,
    is_custom,
    is_registered_elsewhere,
    layer_spec,
)

#: Reads one layer's variables in their saved order (kernel, bias, ...) as numpy arrays in
#: Keras's layout, or None; the path is the chain of layer names from the top model down.
LayerVariables = Callable[[tuple[str, ...]], "list[np.ndarray] | None"]

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
#: Bounds on a hostile config: nesting of models, layer calls in all, depth of a call's args.
MAX_NESTING = 32
MAX_CALLS = 100_000
MAX_ARG_DEPTH = 16

TRAINABLE_FILTER = (
    "the depthwise kernel is trainable but equal on every channel: read as the fixed filter it "
    "holds now (trainable=False keeps it)"
)

Ref = tuple[str, int, int]  # (layer name, node index, tensor index)


def _fail(cause: str) -> LoadError:
    return LoadError(f"Keras model config: {cause}")


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{what} is not a list")
    return value


def _name(layer: Mapping[str, Any]) -> str:
    name = layer.get("name")
    if name is None:
        name = _dict(layer.get("config", {}), "a layer's config").get("name")
    if not isinstance(name, str) or not name:
        raise _fail("a layer has no name")
    return name


def _shape(value: Any) -> tuple[Any, ...] | None:
    """A Keras shape list (``None`` for unknown dims) as a tuple, or None."""
    if not isinstance(value, list) or not value:
        return None
    if all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in value):
        return tuple(value)
    return None


def _input_shape(cfg: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """An InputLayer's (or a Keras 2 first layer's) ``batch_shape`` / ``batch_input_shape``."""
    for key in ("batch_shape", "batch_input_shape"):
        shape = _shape(cfg.get(key))
        if shape is not None:
            return shape
    return None


def is_model(layer: Mapping[str, Any]) -> bool:
    """A nested Sequential or Functional model (inlined); a custom Model subclass is opaque."""
    cfg, class_name = layer.get("config"), layer.get("class_name")
    if class_name == "Sequential" and isinstance(cfg, list):
        return True  # Keras 2.0-2.2
    return (
        isinstance(class_name, str)
        and class_name in MODEL_CLASSES
        and isinstance(cfg, Mapping)
        and isinstance(cfg.get("layers"), list)
        and not is_registered_elsewhere(layer)
    )


@dataclass
class _Model:
    """One inlined call of a (nested) model: where its names and weight paths start."""

    prefix: str  # node name prefix: "" or "generator/"
    path: tuple[str, ...]  # weight path of the model: () or ("generator",)
    legacy: bool = False  # Keras 2 inbound_nodes
    created: dict[str, int] = field(default_factory=dict)  # layer -> calls made


class _Builder:
    def __init__(self, name: str, variables: LayerVariables | None) -> None:
        self.name = name
        self.variables = variables
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[Any, ...]] = {}
        self.notes: list[str] = []
        self.report_notes: list[str] = []
        self.used: set[str] = set()
        self.calls = 0
        self.inputs: list[str] = []
        # the data_format a value was made in (a layer without one keeps its input's)
        self.formats: dict[str, str] = {}

    # --- names ---------------------------------------------------------------------------------

    def unique(self, base: str) -> str:
        candidate, k = base, 1
        while candidate in self.used:
            k += 1
            candidate = f"{base}#{k}"
        self.used.add(candidate)
        return candidate

    # --- models --------------------------------------------------------------------------------

    def model(
        self, layer: Mapping[str, Any], scope: _Model, inputs: list[str] | None, depth: int
    ) -> list[str]:
        """Inline a model; ``inputs`` are the values it is called on (None: the top model,
        whose InputLayers become graph inputs).  Returns its output values in order."""
        if depth > MAX_NESTING:
            raise _fail(f"models nested deeper than {MAX_NESTING}")
        cfg = layer.get("config")
        if isinstance(cfg, list):  # Keras 2.0-2.2 wrote a Sequential's config as its layers
            cfg = {"layers": cfg}
        cfg = _dict(cfg, "a model's config")
        layers = _list(cfg.get("layers"), "a model's layers")
        if layer.get("class_name") == "Sequential" or "input_layers" not in cfg:
            return self.sequential(cfg, layers, scope, inputs, depth)
        return self.functional(cfg, layers, scope, inputs, depth)

    def graph_input(self, name: str, shape: tuple[Any, ...] | None) -> str:
        value = self.unique(name)
        if shape is not None:
            self.shapes[value] = shape
        self.inputs.append(value)
        return value

    def sequential(
        self,
        cfg: Mapping[str, Any],
        layers: list[Any],
        scope: _Model,
        inputs: list[str] | None,
        depth: int,
    ) -> list[str]:
        layers = [_dict(item, "a layer") for item in layers]
        if inputs is None:
            first = layers[0] if layers else {}
            first_cfg = _dict(first.get("config", {}), "a layer's config")
            shape = _input_shape(first_cfg) or _shape(cfg.get("build_input_shape"))
            is_input = first.get("class_name") == "InputLayer"
            name = _name(first) if is_input else "input"
            inputs = [self.graph_input(scope.prefix + name, shape)]
        if len(inputs) != 1:
            raise _fail(f"a Sequential model is called on {len(inputs)} inputs")
        value = inputs[0]
        for layer in layers:
            if layer.get("class_name") == "InputLayer":
                continue
            outputs = self.call(layer, scope, [value], depth)
            if len(outputs) != 1:
                raise _fail(f"layer '{_name(layer)}' in a Sequential model has several outputs")
            value = outputs[0]
        return [value]

    def functional(
        self,
        cfg: Mapping[str, Any],
        layers: list[Any],
        scope: _Model,
        inputs: list[str] | None,
        depth: int,
    ) -> list[str]:
        by_name: dict[str, Mapping[str, Any]] = {}
        for item in layers:
            layer = _dict(item, "a layer")
            name = _name(layer)
            if name in by_name:
                raise _fail(f"two layers are named '{name}'")
            by_name[name] = layer
        scope.legacy = any(
            isinstance(node, list)
            for layer in by_name.values()
            if isinstance(layer.get("inbound_nodes"), list)
            for node in layer["inbound_nodes"]
        )
        values: dict[Ref, str] = {}
        input_refs = _refs(cfg.get("input_layers"), "input_layers")
        if inputs is not None and len(inputs) != len(input_refs):
            raise _fail(f"a model with {len(input_refs)} inputs is called on {len(inputs)}")
        for k, (name, _, _) in enumerate(input_refs):
            layer = by_name.get(name)
            if layer is None or layer.get("class_name") != "InputLayer":
                raise _fail(f"input '{name}' is not an InputLayer of the model")
            if inputs is None:
                shape = _input_shape(_dict(layer.get("config", {}), "a layer's config"))
                values[(name, 0, 0)] = self.graph_input(scope.prefix + name, shape)
            else:
                values[(name, 0, 0)] = inputs[k]
        pending = [
            (name, index, node)
            for name, layer in by_name.items()
            if layer.get("class_name") != "InputLayer"
            for index, node in enumerate(_list(layer.get("inbound_nodes") or [], "inbound_nodes"))
        ]
        while pending:
            waiting = []
            for name, index, node in pending:
                refs = _node_refs(node, scope.legacy)
                resolved = [self.resolve(values, by_name, ref, scope) for ref in refs]
                if any(v is None for v in resolved):
                    waiting.append((name, index, node))
                    continue
                for value, shape in zip(resolved, tensor_shapes(node), strict=False):
                    if shape is not None and value is not None:
                        self.shapes.setdefault(value, shape)
                outputs = self.call(by_name[name], scope, resolved, depth)  # type: ignore[arg-type]
                for t, value in enumerate(outputs):
                    values[(name, index, t)] = value
            if len(waiting) == len(pending):
                names = sorted({name for name, _, _ in waiting})[:5]
                raise _fail(f"layers {names} wait for inputs no layer makes (a loop?)")
            pending = waiting
        out = []
        for ref in _refs(cfg.get("output_layers"), "output_layers"):
            value = self.resolve(values, by_name, ref, scope, io=True)
            if value is None:
                raise _fail(f"output {list(ref)} is not made by any layer")
            out.append(value)
        return out

    def resolve(
        self,
        values: dict[Ref, str],
        by_name: Mapping[str, Mapping[str, Any]],
        ref: Ref,
        scope: _Model,
        *,
        io: bool = False,
    ) -> str | None:
        """The value of ``[layer, node_index, tensor_index]``.

        ``node_index`` counts the layer's calls in this model, except that a nested model that
        starts with an InputLayer counts its own first node too: in Keras 2 everywhere, in
        Keras 3 in ``input_layers``/``output_layers`` of a Functional one.
        """
        name, index, tensor = ref
        layer = by_name.get(name)
        if layer is None:
            raise _fail(f"a node reads layer '{name}', which the model does not have")
        if is_model(layer) and index > 0:
            nested = layer.get("config")
            starts = _starts_with_input(
                nested if isinstance(nested, Mapping) else {"layers": nested}
            )
            if (scope.legacy and starts) or (
                io and not scope.legacy and layer.get("class_name") != "Sequential"
            ):
                index -= 1
        if layer.get("class_name") == "InputLayer":
            return values.get((name, 0, tensor))
        return values.get((name, index, tensor))

    # --- layer calls ---------------------------------------------------------------------------

    def call(
        self, layer: Mapping[str, Any], scope: _Model, inputs: list[str], depth: int
    ) -> list[str]:
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise _fail(f"more than {MAX_CALLS} layer calls")
        name = _name(layer)
        count = scope.created.get(name, 0) + 1
        scope.created[name] = count
        called = name if count == 1 else f"{name}#{count}"
        if is_model(layer):
            inner = _Model(prefix=f"{scope.prefix}{called}/", path=(*scope.path, name))
            return self.model(layer, inner, inputs, depth + 1)
        return [self.layer(layer, scope, scope.prefix + called, (*scope.path, name), inputs)]

    def layer(
        self,
        layer: Mapping[str, Any],
        scope: _Model,
        node_name: str,
        path: tuple[str, ...],
        inputs: list[str],
    ) -> str:
        class_name = layer.get("class_name")
        cfg = _dict(layer.get("config", {}), f"layer '{path[-1]}''s config")
        self.fill_shapes(layer, inputs)
        shapes = [self.shapes.get(v) for v in inputs]
        if not isinstance(class_name, str):
            raise _fail(f"layer '{path[-1]}' has no class_name")
        fmt = next((self.formats[v] for v in inputs if v in self.formats), None)
        if class_name in CODE or (is_custom(layer) and not is_keras_op(layer)):
            spec = self.opaque(class_name, node_name)
        else:
            convert = op_spec if is_keras_op(layer) else layer_spec
            try:
                spec = convert(class_name, cfg, shapes, fmt)
            except LayerConfigError as error:
                raise _fail(f"layer '{path[-1]}' ({class_name}): {error}") from None
        for out in (spec.crop, spec):
            shape = out.out_shape if out is not None else None
            if shape is not None and any(isinstance(d, int) and d < 1 for d in shape[1:]):
                raise _fail(f"layer '{path[-1]}' ({class_name}) makes an empty output {shape}")
        if spec.crop is not None:
            crop = self.node(spec.crop, f"{node_name}:crop", class_name, inputs)
            inputs = [crop]
        return self.node(spec, node_name, class_name, inputs, cfg=cfg, path=path)

    def fill_shapes(self, layer: Mapping[str, Any], inputs: list[str]) -> None:
        """Shapes the propagation lost (after a barrier) from the layer's ``build_config``
        (Keras 3 saves the input shape each layer was built for)."""
        build = layer.get("build_config")
        saved = build.get("input_shape") if isinstance(build, Mapping) else None
        if not isinstance(saved, list) or not saved:
            return
        several = isinstance(saved[0], list)
        if several and len(saved) != len(inputs):
            return
        for value, shape in zip(inputs, saved if several else [saved], strict=False):
            shape = _shape(shape)
            if value not in self.shapes and shape is not None:
                self.shapes[value] = shape

    def opaque(self, class_name: str, node_name: str) -> LayerSpec:
        what = "Lambda layer" if class_name in CODE else f"custom layer ({class_name})"
        note = f"{what} '{node_name}': its code is not run, so a pattern is not followed through it"
        self.report_notes.append(note)
        return LayerSpec(Kind.BARRIER, {}, None, notes=[note])

    def node(
        self,
        spec: LayerSpec,
        node_name: str,
        class_name: str,
        inputs: list[str],
        *,
        cfg: Mapping[str, Any] | None = None,
        path: tuple[str, ...] = (),
    ) -> str:
        name = self.unique(node_name)
        fields = dict(spec.fields)
        extra = {"library": "keras", "class_name": class_name, **fields.pop("extra", {})}
        if spec.data_format is not None:
            extra["data_format"] = spec.data_format
        padding = cfg.get("padding") if cfg is not None else None
        if "window" in spec.fields and isinstance(padding, str):  # kept by a rewrite ('same')
            extra["padding"] = padding.lower()
        notes = list(spec.notes)
        if cfg is not None and spec.kind in (Kind.CONV, Kind.CONV_TRANSPOSE):
            fields["weights"] = self.weight_source(class_name, cfg, spec, path)
            if class_name.startswith("DepthwiseConv"):
                fields["fixed_kernel"] = self.fixed_filter(fields)
                if fields["fixed_kernel"] is not None and cfg.get("trainable", True):
                    notes.append(TRAINABLE_FILTER)
        node = Node(
            name=name,
            op_type=class_name,
            kind=spec.kind,
            inputs=tuple(inputs),
            outputs=(name,),
            notes=tuple(notes),
            extra=extra,
            **fields,
        )
        self.nodes.append(node)
        fmt = spec.data_format or next((self.formats[v] for v in inputs if v in self.formats), None)
        if fmt is not None and spec.kind is not Kind.BARRIER:
            self.formats[name] = fmt
        if spec.out_shape is not None:
            self.shapes[name] = spec.out_shape
        return name

    # --- weights -------------------------------------------------------------------------------

    def weight_source(
        self, class_name: str, cfg: Mapping[str, Any], spec: LayerSpec, path: tuple[str, ...]
    ) -> WeightSource | None:
        variables = self.variables
        if variables is None:
            return None
        kernel_size = tuple(w.kernel for w in spec.fields["window"])
        has_bias = bool(spec.fields.get("has_bias"))

        def read() -> LayerWeights | None:
            arrays = variables(path)
            if not arrays:
                return None
            arrays = [np.asarray(a) for a in arrays]
            if class_name.startswith("SeparableConv"):
                if len(arrays) < 2 or not kernel_fits(arrays[0], kernel_size):
                    return None
                kernel = separable_kernel(arrays[0], arrays[1])
                rest = arrays[2:]
            else:
                if not kernel_fits(arrays[0], kernel_size):
                    return None
                if class_name.startswith("DepthwiseConv"):
                    kernel = depthwise_kernel(arrays[0])
                elif spec.kind == Kind.CONV_TRANSPOSE:
                    kernel = transpose_kernel(arrays[0])
                else:
                    kernel = conv_kernel(arrays[0])
                rest = arrays[1:]
            bias = rest[0].astype(np.float64).reshape(-1) if has_bias and rest else None
            return LayerWeights(kernel, bias)

        return read

    def fixed_filter(self, fields: Mapping[str, Any]) -> np.ndarray | None:
        """A depthwise kernel equal on every channel is a fixed filter (read now, as the ONNX
        and torch front ends read theirs)."""
        source = fields.get("weights")
        try:
            weights = source() if source is not None else None
        except DeconvlintError as error:  # a weight the reader refuses: the geometry still counts
            self.notes.append(f"a depthwise kernel could not be read: {one_line(error)}")
            return None
        groups = fields.get("groups", 1)
        if weights is None or weights.kernel.shape[0] != groups:
            return None
        return depthwise_filter(weights.kernel, groups)


def _starts_with_input(cfg: Mapping[str, Any]) -> bool:
    """Keras 2 counts a nested model's own first node when it was built on an Input."""
    if "input_layers" in cfg:
        return True
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], Mapping):
        return False
    first = layers[0]
    if first.get("class_name") == "InputLayer":
        return True
    first_cfg = first.get("config")
    return isinstance(first_cfg, Mapping) and _input_shape(first_cfg) is not None


def _ref(value: Any) -> Ref | None:
    if (
        isinstance(value, list)
        and len(value) >= 3
        and isinstance(value[0], str)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value[1:3])
    ):
        return (value[0], value[1], value[2])
    return None


def _refs(value: Any, what: str) -> list[Ref]:
    """``input_layers``/``output_layers``: one ``[name, node, tensor]`` or a list (or dict) of them."""
    single = _ref(value)
    if single is not None:
        return [single]
    items = list(value.values()) if isinstance(value, Mapping) else value
    if not isinstance(items, list) or not items:
        raise _fail(f"{what} is missing")
    refs = [_ref(item) for item in items]
    if any(r is None for r in refs):
        raise _fail(f"{what} is not a list of [layer, node, tensor]")
    return refs  # type: ignore[return-value]


def _node_refs(node: Any, legacy: bool) -> list[Ref]:
    """The tensors one call reads, in order: Keras 2's list, or the keras tensors in Keras 3's
    ``args`` and ``kwargs``."""
    if isinstance(node, list):
        # tf.keras writes a TFOpLambda's call flat, [layer, node, tensor, kwargs], and its
        # kwargs may hold tensors too: {"y": [layer, node, tensor]}
        entries = [node] if node and isinstance(node[0], str) else node
        refs = [_ref(entry) for entry in entries]
        if any(r is None for r in refs):
            raise _fail("a Keras 2 inbound node is not a list of [layer, node, tensor, kwargs]")
        for entry in entries:
            kwargs = entry[3] if len(entry) > 3 and isinstance(entry[3], Mapping) else {}
            refs += [r for r in map(_ref, kwargs.values()) if r is not None]
        return refs  # type: ignore[return-value]
    if not isinstance(node, Mapping):
        raise _fail("an inbound node is neither a list nor an object")
    found: list[Ref] = []
    _collect(node.get("args", []), found, 0)
    _collect(node.get("kwargs", {}), found, 0)
    return found


def tensor_shapes(node: Any) -> list[tuple[Any, ...] | None]:
    """The shapes Keras 3 saves with each keras tensor of a call, in the order of its refs."""
    if not isinstance(node, Mapping):
        return []
    found: list[Ref] = []
    shapes: list[tuple[Any, ...] | None] = []
    _collect(node.get("args", []), found, 0, shapes)
    _collect(node.get("kwargs", {}), found, 0, shapes)
    return shapes


def _collect(
    value: Any, found: list[Ref], depth: int, shapes: list[tuple[Any, ...] | None] | None = None
) -> None:
    if depth > MAX_ARG_DEPTH:
        raise _fail(f"a call's arguments nest deeper than {MAX_ARG_DEPTH}")
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            cfg = value.get("config")
            ref = _ref(cfg.get("keras_history")) if isinstance(cfg, Mapping) else None
            if ref is None:
                raise _fail("a keras tensor has no keras_history [layer, node, tensor]")
            found.append(ref)
            if shapes is not None:
                shapes.append(_shape(cfg.get("shape")) if isinstance(cfg, Mapping) else None)
            return
        for item in value.values():
            _collect(item, found, depth + 1, shapes)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found, depth + 1, shapes)


def graph_from_config(
    config: Mapping[str, Any], *, name: str, variables: LayerVariables | None = None
) -> Graph:
    """The IR graph of a Keras model config; ``variables`` reads a layer's saved variables
    when a rule asks for weights (and, at once, those of depthwise convs, for fixed filters).

    Raises :class:`~deconvlint.errors.LoadError` with a one-line cause for a config it cannot
    read.
    """
    top = _dict(config, "the model config")
    if not is_model(top):
        cls = top.get("class_name")
        shown = cls if isinstance(cls, str) else type(cls).__name__
        raise _fail(f"the top level is not a Sequential or Functional model (class {shown!r})")
    builder = _Builder(name, variables)
    outputs = builder.model(top, _Model(prefix="", path=()), None, 0)
    return Graph(
        name=name,
        nodes=builder.nodes,
        inputs=tuple(builder.inputs),
        outputs=tuple(dict.fromkeys(outputs)),
        shapes=builder.shapes,
        notes=builder.notes,
        report_notes=list(dict.fromkeys(builder.report_notes)),
    )


__all__ = ["LayerVariables", "graph_from_config", "is_model"]

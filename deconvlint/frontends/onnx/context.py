"""What one op converter sees of an ONNX node: typed attributes, folded inputs, static shapes.

Converters (``onnx_window``, ``onnx_resize``, ``onnx_ops``) take an :class:`OpContext` and return
one :class:`deconvlint.core.ir.Node`.  Attribute errors become :class:`LoadError` naming the node:

>>> from onnx import helper
>>> ctx = OpContext(helper.make_node("Conv", ["x", "w"], ["y"], strides=[0, 2]), "c1", 19,
...                 ["x", "w"], ["y"], [True, False], None)
>>> ctx.positive_ints("strides", [1, 1])
Traceback (most recent call last):
...
deconvlint.errors.LoadError: node 'c1' (Conv): strides must be positive, got [0, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from deconvlint.core.ir import Kind, LayerWeights, Node, WeightSource
from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.fold import Folded

#: Largest kernel, stride, dilation or block size taken seriously.
MAX_WINDOW = 1 << 16
#: Largest pad, output padding or length taken seriously.
MAX_LENGTH = 1 << 24

# AttributeProto.AttributeType values
_FLOAT, _INT, _STRING, _TENSOR, _GRAPH, _FLOATS, _INTS = 1, 2, 3, 4, 5, 6, 7
_TYPE_NAMES = {
    1: "float",
    2: "int",
    3: "string",
    4: "tensor",
    5: "graph",
    6: "floats",
    7: "ints",
    8: "strings",
    9: "tensors",
    10: "graphs",
}


class ValueLookup(Protocol):
    """The walker's view of values: folded constants, static shapes, weights."""

    def folded(self, value: str) -> Folded | None: ...

    def shape(self, value: str) -> tuple[Any, ...] | None: ...

    def weights(self, value: str, notes: list[str]) -> np.ndarray | None: ...


class OpContext:
    """One node under conversion; IR value names in ``inputs``/``outputs`` (``""``: absent)."""

    def __init__(
        self,
        proto: Any,
        name: str,
        opset: int,
        inputs: Sequence[str],
        outputs: Sequence[str],
        data: Sequence[bool],
        values: ValueLookup | None,
        extra_data_inputs: Sequence[str] = (),
    ) -> None:
        self.proto = proto
        self.name = name
        self.opset = opset
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.data = list(data)
        self.values = values
        self.notes: list[str] = []
        self.extra_data_inputs = tuple(extra_data_inputs)
        self._attrs = {a.name: a for a in proto.attribute}

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    def fail(self, message: str) -> LoadError:
        return LoadError(f"node {self.name!r} ({self.op_type}): {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)

    # -- attributes --------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._attrs

    def _attr(self, name: str, expected: int) -> Any:
        attr = self._attrs[name]
        if attr.type != expected:
            got = _TYPE_NAMES.get(attr.type, f"type {attr.type}")
            raise self.fail(f"attribute {name!r} must be {_TYPE_NAMES[expected]}, got {got}")
        return attr

    def attr_int(self, name: str, default: int) -> int:
        return int(self._attr(name, _INT).i) if self.has(name) else default

    def attr_ints(self, name: str, default: Sequence[int] | None = None) -> list[int] | None:
        if not self.has(name):
            return None if default is None else list(default)
        return [int(v) for v in self._attr(name, _INTS).ints]

    def attr_float(self, name: str, default: float) -> float:
        return float(self._attr(name, _FLOAT).f) if self.has(name) else default

    def attr_floats(self, name: str) -> list[float] | None:
        return [float(v) for v in self._attr(name, _FLOATS).floats] if self.has(name) else None

    def attr_string(self, name: str, default: str) -> str:
        if not self.has(name):
            return default
        return self._attr(name, _STRING).s.decode("utf-8", errors="replace")

    def choice(self, name: str, default: str, allowed: Sequence[str]) -> str:
        value = self.attr_string(name, default)
        if value not in allowed:
            raise self.fail(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def positive_ints(
        self, name: str, default: Sequence[int], *, rank: int | None = None, limit: int = MAX_WINDOW
    ) -> list[int]:
        values = self.attr_ints(name, default)
        assert values is not None
        self.check_ints(name, values, minimum=1, rank=rank, limit=limit)
        return values

    def check_ints(
        self,
        name: str,
        values: Sequence[int],
        *,
        minimum: int,
        rank: int | None = None,
        limit: int = MAX_LENGTH,
    ) -> None:
        if rank is not None and len(values) != rank:
            raise self.fail(f"{name} must have {rank} values, got {list(values)}")
        if any(v < minimum for v in values):
            what = "positive" if minimum == 1 else "non-negative"
            raise self.fail(f"{name} must be {what}, got {list(values)}")
        if any(v > limit for v in values):
            raise self.fail(f"{name} is implausibly large, got {list(values)}")

    # -- inputs ------------------------------------------------------------------------------
    def input(self, index: int) -> str:
        return self.inputs[index] if index < len(self.inputs) else ""

    def folded(self, index: int) -> Folded | None:
        name = self.input(index)
        return self.values.folded(name) if name and self.values is not None else None

    def const(self, index: int) -> np.ndarray | None:
        """Input ``index`` as an array when fully known statically."""
        f = self.folded(index)
        return f.value if f is not None and f.is_known else None

    def shape(self, index: int) -> tuple[Any, ...] | None:
        name = self.input(index)
        return self.values.shape(name) if name and self.values is not None else None

    def symbolic_shape(self, index: int) -> tuple[Any, ...] | None:
        """Input ``index``'s shape with unknown dims named ``?{value}:{axis}`` (as Shape folds)."""
        dims = self.shape(index)
        if dims is None:
            return None
        name = self.input(index)
        return tuple(f"?{name}:{axis}" if d is None else d for axis, d in enumerate(dims))

    def output_shape(self, index: int = 0) -> tuple[Any, ...] | None:
        name = self.outputs[index] if index < len(self.outputs) else ""
        return self.values.shape(name) if name and self.values is not None else None

    def weights(self, index: int) -> np.ndarray | None:
        name = self.input(index)
        if not name or self.values is None:
            return None
        return self.values.weights(name, self.notes)

    def weight_source(self, kernel: int = 1, bias: int = 2) -> WeightSource | None:
        """Reads the op's weight and bias initializers when a weight-aware rule asks.

        The one place the ONNX front end hands weights to rules: a reader that skims the file
        (reading tensors only on demand) replaces ``ValueLookup.weights`` behind it.
        """
        names = (self.input(kernel), self.input(bias))
        if not names[0] or self.values is None or self.is_data(kernel) or self.is_data(bias):
            return None
        values = self.values

        def read() -> LayerWeights | None:
            notes: list[str] = []
            w = values.weights(names[0], notes)
            b = values.weights(names[1], notes) if names[1] else None
            if w is None or (names[1] and b is None):
                return None
            with np.errstate(invalid="ignore"):  # a signalling NaN among the taps casts quietly
                return LayerWeights(
                    np.asarray(w, dtype=np.float64),
                    None if b is None else np.asarray(b, dtype=np.float64).reshape(-1),
                )

        return read

    def is_data(self, index: int) -> bool:
        return index < len(self.data) and self.data[index]

    @property
    def data_inputs(self) -> tuple[str, ...]:
        names = [n for n, d in zip(self.inputs, self.data, strict=True) if d and n]
        names += [n for n in self.extra_data_inputs if n not in names]
        return tuple(dict.fromkeys(names))

    def node(self, kind: Kind, *, inputs: Sequence[str] | None = None, **fields: Any) -> Node:
        """The IR node for this op; ``inputs`` defaults to the data inputs."""
        return Node(
            name=self.name,
            op_type=self.op_type,
            kind=kind,
            inputs=tuple(self.data_inputs if inputs is None else inputs),
            outputs=tuple(o for o in self.outputs if o),
            notes=tuple(self.notes),
            **fields,
        )

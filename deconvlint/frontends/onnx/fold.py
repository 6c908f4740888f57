"""A small constant folder for the shape arithmetic that exporters write into ONNX graphs.

``torch.onnx`` exports ``F.interpolate(x, scale_factor=2)`` as ``Shape -> Gather -> Cast -> Mul ->
Floor -> Cast -> Concat -> Resize(sizes)``, and the pads of ``F.pad`` / ``nn.ReflectionPad2d`` as
``Concat(pads, ConstantOfShape) -> Reshape -> Slice(step -1) -> Transpose -> Reshape -> Cast ->
Pad``.  The folder evaluates such chains from the static shapes
that shape inference found.  A value may be *partly* known: each element is a number or a symbol
(the name of a symbolic dim, so that ``sizes[0]`` read from ``Shape(x)[0]`` is known to equal the
batch dim of ``x`` even when that dim is ``"N"``).  Arithmetic on a symbol gives an anonymous
unknown.  Nothing here raises: an op it cannot evaluate gives ``None``.

Every value is capped at :data:`MAX_ELEMENTS` elements, so the cost never depends on the spatial
size the model declares (``ConstantOfShape(Shape(x))`` of a large image is simply not folded).

>>> shape = Folded.from_dims((1, "N", 8))
>>> shape.dims()
[1, 'N', 8]
>>> fold("Mul", [shape, Folded.known(np.array(2, dtype=np.int64))], {}, 19)[0].dims()
[2, '', 16]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deconvlint.frontends.onnx.proto import np_dtype, to_array

#: Largest tensor the folder materialises (shape vectors and scale lists are far smaller).
MAX_ELEMENTS = 4096

Dim = int | str | None


@dataclass(frozen=True)
class Folded:
    """A constant, possibly with unknown elements.

    ``value`` holds the numbers (1 where unknown); ``symbols`` is an object array of the same
    shape: ``None`` for a known element, else a str naming the unknown (``""``: anonymous).
    """

    value: np.ndarray
    symbols: np.ndarray

    @staticmethod
    def known(value: np.ndarray) -> Folded:
        return Folded(value, np.full(value.shape, None, dtype=object))

    @staticmethod
    def from_dims(dims: Sequence[Dim], unknown_prefix: str = "") -> Folded:
        """A 1-D int64 shape vector; ``None`` dims become anonymous symbols ``{prefix}{axis}``."""
        value = np.array([d if isinstance(d, int) else 1 for d in dims], dtype=np.int64)
        symbols = np.full(len(dims), None, dtype=object)
        for axis, d in enumerate(dims):
            if not isinstance(d, int):
                symbols[axis] = d or (f"{unknown_prefix}{axis}" if unknown_prefix else "")
        return Folded(value, symbols)

    @property
    def is_known(self) -> bool:
        return all(s is None for s in self.symbols.flat)

    def dims(self) -> list[Dim]:
        """Elements as Python numbers, or the symbol name where unknown."""
        return [
            s if s is not None else v.item()
            for v, s in zip(self.value.reshape(-1), self.symbols.reshape(-1), strict=True)
        ]


FoldFn = Callable[[Sequence[Folded | None], dict, int], list[Folded] | None]
_FOLDERS: dict[str, FoldFn] = {}


def _folder(*op_types: str) -> Callable[[FoldFn], FoldFn]:
    def register(fn: FoldFn) -> FoldFn:
        for op_type in op_types:
            _FOLDERS[op_type] = fn
        return fn

    return register


def can_fold(op_type: str) -> bool:
    return op_type in _FOLDERS


def fold(
    op_type: str, inputs: Sequence[Folded | None], attrs: dict[str, Any], opset: int
) -> list[Folded] | None:
    """Evaluate one node; ``None`` when an input is missing or the op is not foldable.

    ``attrs`` holds decoded attribute values (``Shape`` also reads ``attrs["__shape__"]``, the
    static shape of its input as ints/str/None).
    """
    fn = _FOLDERS.get(op_type)
    if fn is None:
        return None
    try:
        with np.errstate(all="ignore"):
            outputs = fn(inputs, attrs, opset)
    except Exception:  # any numpy complaint means "not foldable"
        return None
    if outputs is None or any(o is None or o.value.size > MAX_ELEMENTS for o in outputs):
        return None
    return outputs


def _fits(shape: Sequence[int]) -> bool:
    return all(d >= 0 for d in shape) and math.prod(shape) <= MAX_ELEMENTS


def _known_array(f: Folded | None) -> np.ndarray | None:
    return f.value if f is not None and f.is_known else None


def _known_ints(f: Folded | None) -> list[int] | None:
    a = _known_array(f)
    return None if a is None else [int(v) for v in a.reshape(-1)]


def _move(fn: Callable[..., np.ndarray], *args: Folded) -> Folded:
    """Apply a data-movement op to values and symbols alike."""
    return Folded(
        np.asarray(fn(*[a.value for a in args])),
        np.asarray(fn(*[a.symbols for a in args]), dtype=object),
    )


def _elementwise(fn: Callable[..., np.ndarray], *args: Folded) -> Folded:
    """Numbers where every operand is known, an anonymous unknown elsewhere."""
    value = np.asarray(fn(*[a.value for a in args]))
    unknown = np.zeros(value.shape, dtype=bool)
    for a in args:
        unknown |= np.broadcast_to(np.not_equal(a.symbols, None), value.shape)
    if unknown.any():
        value = value.copy()
        value[unknown] = 1
    return Folded(value, np.where(unknown, "", None).astype(object))


@_folder("Constant")
def _constant(inputs, attrs, opset):
    if "value" in attrs:
        return [Folded.known(to_array(attrs["value"]))]
    for key, dtype in (
        ("value_float", np.float32),
        ("value_floats", np.float32),
        ("value_int", np.int64),
        ("value_ints", np.int64),
    ):
        if key in attrs:
            return [Folded.known(np.array(attrs[key], dtype=dtype))]
    return None


@_folder("Identity")
def _identity(inputs, attrs, opset):
    return [inputs[0]] if inputs and inputs[0] is not None else None


@_folder("Shape")
def _shape(inputs, attrs, opset):
    dims = attrs.get("__shape__")
    if dims is None:
        return None
    # shape[start:end] with negative indices relative to the rank, clamped (Shape-15)
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    prefix = attrs.get("__unknown_prefix__", "?")
    full = Folded.from_dims(dims, prefix)
    return [_move(lambda a: a[slice(start, end)], full)]


@_folder("Size")
def _size(inputs, attrs, opset):
    dims = attrs.get("__shape__")
    if dims is None or not all(isinstance(d, int) for d in dims):
        return None
    return [Folded.known(np.array(math.prod(dims), dtype=np.int64))]


@_folder("Gather")
def _gather(inputs, attrs, opset):
    data, indices = inputs[0], _known_array(inputs[1])
    if data is None or indices is None:
        return None
    axis = attrs.get("axis", 0) % max(data.value.ndim, 1)
    n = data.value.shape[axis]
    if np.any(indices < -n) or np.any(indices >= n):
        return None
    idx = np.where(indices < 0, indices + n, indices)  # out[...] = data[..., idx, ...]
    return [_move(lambda a: np.take(a, idx, axis=axis), data)]


@_folder("Slice")
def _slice(inputs, attrs, opset):
    data = inputs[0]
    if data is None:
        return None
    if opset < 10:
        starts, ends = attrs.get("starts"), attrs.get("ends")
        axes, steps = attrs.get("axes"), None
    else:
        starts, ends = _known_ints(inputs[1]), _known_ints(inputs[2])
        axes = _known_ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else None
        steps = _known_ints(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else None
        if (len(inputs) > 3 and inputs[3] is not None and axes is None) or (
            len(inputs) > 4 and inputs[4] is not None and steps is None
        ):
            return None
    if starts is None or ends is None:
        return None
    rank = data.value.ndim
    axes = list(range(len(starts))) if axes is None else [a % rank for a in axes]
    steps = steps or [1] * len(starts)
    index = [slice(None)] * rank
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=False):
        if step == 0:
            return None
        index[axis] = slice(start, end, step)  # Python slicing clamps like the spec
    return [_move(lambda a: a[tuple(index)], data)]


@_folder("Concat")
def _concat(inputs, attrs, opset):
    if not inputs or any(i is None for i in inputs):
        return None
    axis = attrs.get("axis", 0)
    return [_move(lambda *a: np.concatenate(a, axis=axis), *inputs)]


def _axes_input(inputs, attrs, opset, since: int) -> list[int] | None:
    if opset < since:
        return list(attrs.get("axes", []))
    if len(inputs) > 1 and inputs[1] is not None:
        return _known_ints(inputs[1])
    return []


@_folder("Unsqueeze")
def _unsqueeze(inputs, attrs, opset):
    axes = _axes_input(inputs, attrs, opset, 13)
    if inputs[0] is None or axes is None:
        return None
    rank = inputs[0].value.ndim + len(axes)
    return [_move(lambda a: np.expand_dims(a, tuple(sorted(x % rank for x in axes))), inputs[0])]


@_folder("Squeeze")
def _squeeze(inputs, attrs, opset):
    axes = _axes_input(inputs, attrs, opset, 13)
    if inputs[0] is None or axes is None:
        return None
    rank = inputs[0].value.ndim
    squeezed = tuple(x % rank for x in axes) if axes else None
    return [_move(lambda a: np.squeeze(a, axis=squeezed), inputs[0])]


def reshape_target(in_shape: Sequence[int], target: Sequence[int], allowzero: int) -> list[int]:
    """Reshape's output shape: 0 copies the input dim (unless allowzero), -1 is inferred."""
    out = [
        in_shape[i] if d == 0 and not allowzero and i < len(in_shape) else d
        for i, d in enumerate(target)
    ]
    if out.count(-1) == 1:
        rest = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(in_shape) // rest if rest else 0
    return out


@_folder("Reshape")
def _reshape(inputs, attrs, opset):
    target = _known_ints(inputs[1]) if len(inputs) > 1 else attrs.get("shape")
    if inputs[0] is None or target is None:
        return None
    shape = reshape_target(inputs[0].value.shape, target, attrs.get("allowzero", 0))
    return [_move(lambda a: a.reshape(shape), inputs[0])]


@_folder("Transpose")
def _transpose(inputs, attrs, opset):
    data = inputs[0] if inputs else None
    if data is None:
        return None
    rank = data.value.ndim
    perm = list(attrs.get("perm", range(rank)[::-1]))  # out.shape[i] = in.shape[perm[i]]
    if sorted(perm) != list(range(rank)):
        return None
    return [_move(lambda a: np.transpose(a, perm), data)]


@_folder("ConstantOfShape")
def _constant_of_shape(inputs, attrs, opset):
    shape = _known_ints(inputs[0])
    if shape is None or not _fits(shape):
        return None
    fill = to_array(attrs["value"]).reshape(-1)[0] if "value" in attrs else (np.float32(0))
    return [Folded.known(np.full(shape, fill, dtype=np.asarray(fill).dtype))]


@_folder("Range")
def _range(inputs, attrs, opset):
    start, limit, delta = (_known_array(i) for i in inputs[:3])
    if start is None or limit is None or delta is None or delta.item() == 0:
        return None
    count = max(math.ceil((limit.item() - start.item()) / delta.item()), 0)  # spec formula
    if count > MAX_ELEMENTS:
        return None
    return [Folded.known(np.arange(count, dtype=start.dtype) * delta + start)]


@_folder("Expand")
def _expand(inputs, attrs, opset):
    shape = _known_ints(inputs[1])
    if inputs[0] is None or shape is None:
        return None
    out_shape = np.broadcast_shapes(inputs[0].value.shape, tuple(shape))
    if not _fits(out_shape):
        return None
    return [_move(lambda a: np.broadcast_to(a, out_shape).copy(), inputs[0])]


@_folder("Cast")
def _cast(inputs, attrs, opset):
    if inputs[0] is None or "to" not in attrs:
        return None
    dtype = np_dtype(attrs["to"])
    if dtype.kind not in "biuf":
        return None
    return [Folded(inputs[0].value.astype(dtype), inputs[0].symbols)]


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # integer Div truncates toward zero (C semantics, as onnxruntime does)
    return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(np.result_type(a, b))


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return _int_div(a, b)
    return np.asarray(a / b).astype(np.result_type(a, b))


_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _div,
    "Equal": np.equal,  # the exporter's Expand(shape) guard: Where(Equal(shape, -1), 1, shape)
}
_UNARY = {
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,  # Round: half to even
    "Neg": np.negative,
    "Abs": np.abs,
}


@_folder("Where")
def _where(inputs, attrs, opset):
    # out = X where condition else Y; an unknown condition element gives an unknown
    if len(inputs) != 3 or any(i is None for i in inputs):
        return None
    condition, x, y = inputs
    shape = np.broadcast_shapes(*[i.value.shape for i in inputs])
    if not _fits(shape):
        return None
    chosen = np.broadcast_to(condition.value.astype(bool), shape)
    picked = _move(lambda a, b: np.where(chosen, a, b), x, y)
    unknown = np.broadcast_to(np.not_equal(condition.symbols, None), shape)
    if not unknown.any():
        return [picked]
    value, symbols = picked.value.copy(), picked.symbols.copy()
    value[unknown], symbols[unknown] = 1, ""
    return [Folded(value, symbols)]


def _binary_folder(op_type: str) -> FoldFn:
    def run(inputs, attrs, opset):
        if len(inputs) != 2 or inputs[0] is None or inputs[1] is None:
            return None
        if not _fits(np.broadcast_shapes(inputs[0].value.shape, inputs[1].value.shape)):
            return None
        return [_elementwise(_BINARY[op_type], inputs[0], inputs[1])]

    return run


def _unary_folder(op_type: str) -> FoldFn:
    def run(inputs, attrs, opset):
        if not inputs or inputs[0] is None:
            return None
        return [_elementwise(_UNARY[op_type], inputs[0])]

    return run


def _variadic_folder(reduce: Callable[..., np.ndarray]) -> FoldFn:
    def run(inputs, attrs, opset):
        if not inputs or any(i is None for i in inputs):
            return None
        if not _fits(np.broadcast_shapes(*[i.value.shape for i in inputs])):
            return None
        return [_elementwise(lambda *a: reduce(np.broadcast_arrays(*a), axis=0), *inputs)]

    return run


for _op in _BINARY:
    _FOLDERS[_op] = _binary_folder(_op)
for _op in _UNARY:
    _FOLDERS[_op] = _unary_folder(_op)
_FOLDERS["Min"] = _variadic_folder(np.min)
_FOLDERS["Max"] = _variadic_folder(np.max)

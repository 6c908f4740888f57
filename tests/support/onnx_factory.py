"""Real ONNX models for tests: from chain specs (``model_from_chain``) or node by node.

>>> from deconvlint.core.chainspec import parse_chain
>>> model = model_from_chain(parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1) -> ReLU()"))
>>> [(n.name, n.op_type) for n in model.graph.node]
[('layer0', 'ConvTranspose'), ('layer1', 'Relu')]
>>> [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
[1, 4, 32, 32]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from deconvlint.core.ir import Kind, Node

INT64_MAX = 2**63 - 1
#: Kinds whose output channel count the factory chooses freely.
_FREE_CHANNELS = (Kind.CONV_TRANSPOSE, Kind.CONV)


def tensor(name: str, array: Any, dtype: Any = np.float32) -> TensorProto:
    """An initializer from anything ``np.asarray`` accepts."""
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def value_info(
    name: str, shape: Sequence[Any] | None, elem_type: int = TensorProto.FLOAT
) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[TensorProto] = (),
    *,
    opset: int = 19,
    **kwargs: Any,
) -> onnx.ModelProto:
    """A model around ``nodes`` with one default-domain opset import."""
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kwargs)


def save(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (weights inside the file) and return the path."""
    path = Path(path)
    onnx.save(model, os.fspath(path))
    return path


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` with onnxruntime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


class _ChainBuilder:
    def __init__(
        self, chain: list[Node], channels: int, opset: int, weights: str, seed: int
    ) -> None:
        if weights not in ("ones", "random"):
            raise ValueError(f"weights must be 'ones' or 'random', got {weights!r}")
        if opset < 11:
            raise ValueError("model_from_chain needs opset 11 or later")
        self.chain, self.channels, self.opset = chain, channels, opset
        self.random = np.random.default_rng(seed) if weights == "random" else None
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []

    def weight(self, name: str, shape: Sequence[int]) -> str:
        array = np.ones(shape) if self.random is None else self.random.standard_normal(shape)
        self.initializers.append(tensor(name, array))
        return name

    def const(self, name: str, array: Any, dtype: Any = np.int64) -> str:
        self.initializers.append(tensor(name, array, dtype))
        return name

    def channels_for(self, index: int) -> int:
        """Channels to produce before chain[index:] so that every depth-to-space divides."""
        factor = 1
        for node in self.chain[index:]:
            if node.kind in _FREE_CHANNELS and node.fixed_kernel is None:
                break
            if node.kind is Kind.DEPTH_TO_SPACE:
                factor *= math.prod(node.block)
        return self.channels * factor


def _window_attrs(node: Node, dilations: bool = True) -> dict[str, Any]:
    w = node.window
    attrs: dict[str, Any] = {
        "kernel_shape": [a.kernel for a in w],
        "strides": [a.stride for a in w],
        "pads": [a.pads_begin for a in w] + [a.pads_end for a in w],
    }
    if dilations and any(a.dilation != 1 for a in w):
        attrs["dilations"] = [a.dilation for a in w]
    return attrs


def _conv_length(n: int, a: Any) -> int:
    return (n + a.pads_begin + a.pads_end - a.effective_kernel) // a.stride + 1


def _shuffle(b: _ChainBuilder, node: Node, x: str, y: str, c: int, lengths: list[int]) -> None:
    """Reshape -> Transpose -> Reshape, as torch exports pixel (un)shuffle."""
    d, r = len(lengths), list(node.block)
    if node.kind is Kind.DEPTH_TO_SPACE:
        out_c = c // math.prod(r)
        if node.depth_to_space_mode == "DCR":
            mid = [1, *r, out_c, *lengths]
            perm = [0, 1 + d] + [p for i in range(d) for p in (2 + d + i, 1 + i)]
        else:
            mid = [1, out_c, *r, *lengths]
            perm = [0, 1] + [p for i in range(d) for p in (2 + d + i, 2 + i)]
        out = [1, out_c] + [n * k for n, k in zip(lengths, r, strict=True)]
    else:
        mid = [1, c] + [v for n, k in zip(lengths, r, strict=True) for v in (n // k, k)]
        perm = [0, 1] + [3 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)]
        out = [1, c * math.prod(r)] + [n // k for n, k in zip(lengths, r, strict=True)]
    name = node.name
    b.nodes += [
        helper.make_node(
            "Reshape",
            [x, b.const(f"{name}.mid_shape", mid)],
            [f"{name}/mid"],
            name=f"{name}/reshape_in",
        ),
        helper.make_node("Transpose", [f"{name}/mid"], [f"{name}/moved"], name=name, perm=perm),
        helper.make_node(
            "Reshape",
            [f"{name}/moved", b.const(f"{name}.out_shape", out)],
            [y],
            name=f"{name}/reshape_out",
        ),
    ]


def _emit(
    b: _ChainBuilder, index: int, node: Node, c: int, lengths: list[int]
) -> tuple[int, list[int]]:
    """Append the ONNX nodes of one chain node; returns the new channels and lengths."""
    x, y, name, kind = node.inputs[0], node.outputs[0], node.name, node.kind
    if kind is Kind.CONV_TRANSPOSE:
        out_c = b.channels_for(index + 1)
        w = b.weight(f"{name}.weight", [c, out_c, *[a.kernel for a in node.window]])
        attrs = _window_attrs(node)
        attrs["output_padding"] = [a.output_padding for a in node.window]
        b.nodes.append(helper.make_node("ConvTranspose", [x, w], [y], name=name, **attrs))
        # out = s*(n-1) + op + (k-1)*d + 1 - pads_begin - pads_end
        return out_c, [
            a.stride * (n - 1) + a.output_padding + a.effective_kernel - a.pads_begin - a.pads_end
            for n, a in zip(lengths, node.window, strict=True)
        ]
    if kind is Kind.CONV:
        kernel = [a.kernel for a in node.window]
        if node.fixed_kernel is not None:
            out_c, group = c, c
            b.const(
                f"{name}.weight", np.broadcast_to(node.fixed_kernel, (c, 1, *kernel)), np.float32
            )
        else:
            out_c, group = b.channels_for(index + 1), 1
            b.weight(f"{name}.weight", [out_c, c, *kernel])
        b.nodes.append(
            helper.make_node(
                "Conv", [x, f"{name}.weight"], [y], name=name, group=group, **_window_attrs(node)
            )
        )
        return out_c, [_conv_length(n, a) for n, a in zip(lengths, node.window, strict=True)]
    if kind in (Kind.AVG_POOL, Kind.MAX_POOL):
        op = "AveragePool" if kind is Kind.AVG_POOL else "MaxPool"
        attrs = _window_attrs(node, dilations=op == "MaxPool" or b.opset >= 19)
        b.nodes.append(helper.make_node(op, [x], [y], name=name, **attrs))
        return c, [_conv_length(n, a) for n, a in zip(lengths, node.window, strict=True)]
    if kind is Kind.MAX_UNPOOL:
        # out = (n-1)*s + k - pads; indices point at each window's first in-range slot
        out = [
            (n - 1) * a.stride + a.kernel - a.pads_begin - a.pads_end
            for n, a in zip(lengths, node.window, strict=True)
        ]
        grids = np.meshgrid(
            *[
                np.clip(np.arange(n) * a.stride - a.pads_begin, 0, o - 1)
                for n, a, o in zip(lengths, node.window, out, strict=True)
            ],
            indexing="ij",
        )
        flat = np.ravel_multi_index(tuple(grids), out)
        planes = np.arange(c).reshape((1, c) + (1,) * len(out)) * math.prod(out)
        b.const(f"{name}.indices", flat[None, None] + planes)
        b.nodes.append(
            helper.make_node(
                "MaxUnpool",
                [x, f"{name}.indices"],
                [y],
                name=name,
                **_window_attrs(node, dilations=False),
            )
        )
        return c, out
    if kind is Kind.RESIZE:
        spec = node.resize
        assert spec is not None
        if any(s is None for s in spec.scales):
            raise ValueError(f"{name}: unknown scale")
        scales = b.const(f"{name}.scales", [1.0, 1.0, *[float(s) for s in spec.scales]], np.float32)
        roi = b.const(f"{name}.roi", [], np.float32) if b.opset < 13 else ""
        attrs: dict[str, Any] = {
            "mode": spec.mode,
            "coordinate_transformation_mode": spec.coordinate_transformation_mode,
            "nearest_mode": spec.nearest_mode,
        }
        if spec.mode == "cubic":
            attrs["cubic_coeff_a"] = spec.cubic_coeff_a
        if spec.antialias and b.opset >= 18:
            attrs["antialias"] = 1
        b.nodes.append(helper.make_node("Resize", [x, roi, scales], [y], name=name, **attrs))
        return c, [
            math.floor(n * float(np.float32(s))) for n, s in zip(lengths, spec.scales, strict=True)
        ]
    if kind in (Kind.DEPTH_TO_SPACE, Kind.SPACE_TO_DEPTH):
        r = list(node.block)
        if kind is Kind.DEPTH_TO_SPACE and c % math.prod(r):
            raise ValueError(f"{name}: {c} channels do not divide into blocks {r}")
        if kind is Kind.SPACE_TO_DEPTH and any(n % k for n, k in zip(lengths, r, strict=True)):
            raise ValueError(f"{name}: lengths {lengths} do not divide into blocks {r}")
        if len(r) == 2 and r[0] == r[1]:
            op = "DepthToSpace" if kind is Kind.DEPTH_TO_SPACE else "SpaceToDepth"
            attrs = {"mode": node.depth_to_space_mode} if op == "DepthToSpace" else {}
            b.nodes.append(helper.make_node(op, [x], [y], name=name, blocksize=r[0], **attrs))
        else:
            _shuffle(b, node, x, y, c, lengths)
        if kind is Kind.DEPTH_TO_SPACE:
            return c // math.prod(r), [n * k for n, k in zip(lengths, r, strict=True)]
        return c * math.prod(r), [n // k for n, k in zip(lengths, r, strict=True)]
    if kind is Kind.SHIFT:
        return c, _shift(b, node, x, y, lengths)
    if kind is Kind.POINTWISE:
        b.nodes.append(helper.make_node("Relu", [x], [y], name=name))
        return c, lengths
    raise ValueError(f"{name}: no ONNX form for kind {kind.value}")


def _shift(b: _ChainBuilder, node: Node, x: str, y: str, lengths: list[int]) -> list[int]:
    axes = list(range(2, 2 + len(node.shift)))
    if all(a.step == 1 and a.offset <= 0 for a in node.shift) and any(a.offset for a in node.shift):
        pads = [0, 0, *[-a.offset for a in node.shift]] * 2  # the same pad at both ends
        b.nodes.append(
            helper.make_node("Pad", [x, b.const(f"{node.name}.pads", pads)], [y], name=node.name)
        )
        return [n - 2 * a.offset for n, a in zip(lengths, node.shift, strict=True)]
    if any(a.offset < 0 for a in node.shift):
        raise ValueError(f"{node.name}: a pad with a step has no single ONNX op")
    ends = [INT64_MAX if a.step > 0 else -INT64_MAX for a in node.shift]
    inputs = [
        x,
        b.const(f"{node.name}.starts", [a.offset for a in node.shift]),
        b.const(f"{node.name}.ends", ends),
        b.const(f"{node.name}.axes", axes),
        b.const(f"{node.name}.steps", [a.step for a in node.shift]),
    ]
    b.nodes.append(helper.make_node("Slice", inputs, [y], name=node.name))
    out = []
    for n, a in zip(lengths, node.shift, strict=True):
        # positive step: ceil((n - start) / step); negative: floor(start / |step|) + 1
        out.append(
            -(-(n - a.offset) // a.step) if a.step > 0 else min(a.offset, n - 1) // -a.step + 1
        )
    return out


def model_from_chain(
    nodes: list[Node],
    *,
    channels: int = 4,
    spatial: tuple[int, ...] | None = None,
    opset: int = 19,
    weights: str = "ones",
    seed: int = 0,
) -> onnx.ModelProto:
    """A valid ONNX model (checker passes, onnxruntime runs it) computing the chain.

    ONNX node names are the chain's node names.  Channels are chosen so that every
    depth-to-space divides; the input is ``(1, C, *spatial)``, 16 per axis by default.
    Raises ``ValueError`` for a chain that has no valid model (a length falls to 0).
    """
    ranks = {n.spatial_rank for n in nodes if n.spatial_rank}
    if len(ranks) > 1:
        raise ValueError(f"the chain mixes spatial ranks {sorted(ranks)}")
    rank = ranks.pop() if ranks else 2
    lengths = list(spatial or (16,) * rank)
    b = _ChainBuilder(nodes, channels, opset, weights, seed)
    c = c_in = b.channels_for(0)
    first = nodes[0].inputs[0] if nodes else "v0"
    last = first
    for index, node in enumerate(nodes):
        c, lengths = _emit(b, index, node, c, lengths)
        if any(n < 1 for n in lengths):
            raise ValueError(f"{node.name}: output lengths {lengths}")
        last = node.outputs[0]
    if not nodes:
        b.nodes.append(helper.make_node("Identity", [first], ["v1"], name="identity"))
        last = "v1"
    model = make_model(
        b.nodes,
        [value_info(first, [1, c_in, *(spatial or (16,) * rank)])],
        [value_info(last, [1, c, *lengths])],
        b.initializers,
        opset=opset,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


# Decoders of one to three upsamplers, even and uneven, for runs over many files.
_MANY_LAYERS = (
    "ConvTranspose2d(k=3, s=2, p=1, op=1)",
    "ConvTranspose2d(k=4, s=2, p=1)",
    "ConvTranspose2d(k=5, s=2, p=2, op=1)",
    "ConvTranspose2d(k=1, s=2, op=1)",
    "Upsample(scale=2, mode=nearest) -> Conv2d(k=3, p=1)",
    "Conv2d(k=3, s=2, p=1)",
)


def write_many_models(folder: str | os.PathLike, count: int) -> list[Path]:
    """``count`` small ONNX decoders ``model_000.onnx``... in ``folder`` (the same every time),
    a mix of clean and flagged ones."""
    from deconvlint.core.chainspec import parse_chain

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        depth = 1 + index % 3
        layers = [_MANY_LAYERS[(index // 3 + 5 * k) % len(_MANY_LAYERS)] for k in range(depth)]
        chain = " -> ReLU() -> ".join(layers)
        paths.append(save(model_from_chain(parse_chain(chain)), folder / f"model_{index:03d}.onnx"))
    return paths

"""Inputs for the performance benchmarks, written without holding the weights in memory twice.

``big``: 120 layers (Conv 512->512 3x3, every 20th a ConvTranspose 3x3 stride 2), weights
embedded, ~1.13 GB.  The graph is serialized by onnx; the initializers are streamed into the same
``graph`` field one by one, so the file is an ordinary single-graph ONNX file.
``volume``: a small 3-D decoder declared at any spatial size (target 3).
Usage: python benchmarks/make_models.py big OUT.onnx | volume SIZE OUT.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

LAYERS, CHANNELS = 120, 512


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload_length: int) -> bytes:
    return _varint(number << 3 | 2) + _varint(payload_length)


def write_big(path: Path, layers: int = LAYERS, channels: int = CHANNELS) -> Path:
    nodes, shapes, value = [], [], "x"
    for i in range(layers):
        up = i % 20 == 19
        op = "ConvTranspose" if up else "Conv"
        attrs = {"strides": [2, 2], "output_padding": [1, 1]} if up else {}
        attrs["pads"] = [1, 1, 1, 1]
        nodes.append(helper.make_node(op, [value, f"w{i}"], [f"h{i}"], name=f"layer{i}", **attrs))
        shapes.append((f"w{i}", [channels, channels, 3, 3]))
        value = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 8, 8])],
        [helper.make_tensor_value_info(value, TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    graph_bytes = model.graph.SerializeToString()
    model.ClearField("graph")
    rng = np.random.default_rng(0)
    headers = []
    for name, dims in shapes:
        header = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
        nbytes = int(np.prod(dims)) * 4
        tensor_length = len(header.SerializeToString()) + len(_field(9, nbytes)) + nbytes
        headers.append((header.SerializeToString(), nbytes, tensor_length))
    graph_length = len(graph_bytes) + sum(len(_field(5, t)) + t for _, _, t in headers)
    with open(path, "wb") as out:
        out.write(model.SerializeToString() + _field(7, graph_length) + graph_bytes)
        for header, nbytes, tensor_length in headers:
            out.write(_field(5, tensor_length) + header + _field(9, nbytes))
            out.write(rng.standard_normal(nbytes // 4, dtype=np.float32).tobytes())
    return path


def write_volume(path: Path, size: int) -> Path:
    """Conv3d -> ConvTranspose3d(k=3, s=2) -> Resize(nearest, 2) -> Conv3d, at ``size``^3."""
    c = 8
    weights = [
        helper.make_tensor(n, TensorProto.FLOAT, d, np.ones(d, np.float32).ravel())
        for n, d in (("w0", [c, 1, 3, 3, 3]), ("w1", [c, c, 3, 3, 3]), ("w2", [1, c, 3, 3, 3]))
    ]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [5], [1, 1, 2, 2, 2])
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], name="enc", pads=[1] * 6),
        helper.make_node("ConvTranspose", ["a", "w1"], ["b"], name="up", strides=[2, 2, 2]),
        helper.make_node("Resize", ["b", "", "scales"], ["r"], name="resize", mode="nearest"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="head", pads=[1] * 6),
    ]
    graph = helper.make_graph(
        nodes,
        "volume",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [*weights, scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    path.write_bytes(model.SerializeToString())
    return path


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "big":
        print(write_big(Path(rest[0])))
    else:
        print(write_volume(Path(rest[1]), int(rest[0])))

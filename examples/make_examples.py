"""Write the small ONNX models in ``examples/`` that the README and the tests run deconvlint on.

    python examples/make_examples.py            # rewrites examples/*.onnx
    python examples/make_examples.py OUT_DIR    # writes them to OUT_DIR instead

The bytes are deterministic (fixed seeds, fixed IR and opset versions, no timestamps), so running
this again leaves ``git status`` clean.  Each model is a few KB: small channel counts, 16x16
inputs.

- ``cyclegan_decoder.onnx``: the CycleGAN / pix2pixHD decoder: two ConvTranspose k3 s2 p1
  output_padding 1, each followed by InstanceNormalization and Relu, then a 7x7 Conv and Tanh.
  Kernel 3 with stride 2 overlaps unevenly: the classic checkerboard.
- ``clean_decoder.onnx``: the same decoder with resize-convolution (nearest Resize x2, then a 3x3
  Conv), as recommended by Odena et al.: same output shape, no checkerboard.
- ``stylegan_blur.onnx``: StyleGAN2's upsampling: ConvTranspose k3 s2 (uneven on its own)
  followed by a depthwise [1,3,3,1] x [1,3,3,1] / 64 blur with identical kernels on every
  channel, which evens the coverage out; the output is exactly twice the input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
OPSET = 17
SIZE = 16  # spatial input size


def _weight(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> TensorProto:
    fan_in = int(np.prod(shape[1:]))
    values = rng.standard_normal(shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
    return numpy_helper.from_array(values, name)


def _const(name: str, values: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(values, name)


def _model(
    name: str, nodes: list, initializers: list, channels: int, out_size: int
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        inputs=[helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, channels, SIZE, SIZE])],
        outputs=[
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, out_size, out_size])
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, producer_name="deconvlint-examples", opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def _norm_relu(index: int, x: str, channels: int) -> tuple[list, list]:
    scale = _const(f"decoder.norm{index}.weight", np.ones(channels, np.float32))
    bias = _const(f"decoder.norm{index}.bias", np.zeros(channels, np.float32))
    nodes = [
        helper.make_node(
            "InstanceNormalization",
            [x, scale.name, bias.name],
            [f"n{index}"],
            name=f"decoder.norm{index}",
            epsilon=1e-5,
        ),
        helper.make_node("Relu", [f"n{index}"], [f"r{index}"], name=f"decoder.relu{index}"),
    ]
    return nodes, [scale, bias]


def _head(rng: np.random.Generator, x: str, channels: int) -> tuple[list, list]:
    """The CycleGAN output block: 7x7 Conv to RGB, then Tanh."""
    w = _weight(rng, "decoder.out.weight", (3, channels, 7, 7))
    nodes = [
        helper.make_node(
            "Conv", [x, w.name], ["o"], name="decoder.out", kernel_shape=[7, 7], pads=[3, 3, 3, 3]
        ),
        helper.make_node("Tanh", ["o"], ["image"], name="decoder.tanh"),
    ]
    return nodes, [w]


def cyclegan_decoder() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    channels = (16, 8, 4)
    nodes: list = []
    inits: list = []
    x = "z"
    for index in range(1, len(channels)):
        c_in, c_out = channels[index - 1], channels[index]
        w = _weight(rng, f"decoder.up{index}.weight", (c_in, c_out, 3, 3))
        b = _const(f"decoder.up{index}.bias", np.zeros(c_out, np.float32))
        nodes.append(
            helper.make_node(
                "ConvTranspose",
                [x, w.name, b.name],
                [f"u{index}"],
                name=f"decoder.up{index}",
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                output_padding=[1, 1],
            )
        )
        more_nodes, more_inits = _norm_relu(index, f"u{index}", c_out)
        nodes += more_nodes
        inits += [w, b, *more_inits]
        x = f"r{index}"
    head_nodes, head_inits = _head(rng, x, channels[-1])
    return _model("cyclegan_decoder", nodes + head_nodes, inits + head_inits, channels[0], SIZE * 4)


def clean_decoder() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    channels = (16, 8, 4)
    scales = _const("scales_x2", np.array([1, 1, 2, 2], np.float32))
    nodes: list = []
    inits: list = [scales]
    x = "z"
    for index in range(1, len(channels)):
        c_in, c_out = channels[index - 1], channels[index]
        w = _weight(rng, f"decoder.up{index}.conv.weight", (c_out, c_in, 3, 3))
        b = _const(f"decoder.up{index}.conv.bias", np.zeros(c_out, np.float32))
        nodes += [
            helper.make_node(
                "Resize",
                [x, "", scales.name],
                [f"s{index}"],
                name=f"decoder.up{index}.resize",
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            ),
            helper.make_node(
                "Conv",
                [f"s{index}", w.name, b.name],
                [f"u{index}"],
                name=f"decoder.up{index}.conv",
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
            ),
        ]
        more_nodes, more_inits = _norm_relu(index, f"u{index}", c_out)
        nodes += more_nodes
        inits += [w, b, *more_inits]
        x = f"r{index}"
    head_nodes, head_inits = _head(rng, x, channels[-1])
    return _model("clean_decoder", nodes + head_nodes, inits + head_inits, channels[0], SIZE * 4)


def stylegan_blur() -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    channels = 8
    taps = np.array([1, 3, 3, 1], np.float32)
    blur = np.outer(taps, taps) / np.float32(64)  # sums to 1
    w_up = _weight(rng, "synthesis.up.weight", (channels, channels, 3, 3))
    w_blur = _const(
        "synthesis.blur.kernel", np.broadcast_to(blur, (channels, 1, 4, 4)).astype(np.float32)
    )
    w_rgb = _weight(rng, "synthesis.torgb.weight", (3, channels, 1, 1))
    # ConvTranspose k3 s2 p0 gives 2n+1; the 4-tap blur with pads 1+1 brings it back to 2n.
    nodes = [
        helper.make_node(
            "ConvTranspose",
            ["z", w_up.name],
            ["u"],
            name="synthesis.up",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[0, 0, 0, 0],
        ),
        helper.make_node(
            "Conv",
            ["u", w_blur.name],
            ["b"],
            name="synthesis.blur",
            kernel_shape=[4, 4],
            pads=[1, 1, 1, 1],
            group=channels,
        ),
        helper.make_node("LeakyRelu", ["b"], ["a"], name="synthesis.act", alpha=0.2),
        helper.make_node(
            "Conv", ["a", w_rgb.name], ["image"], name="synthesis.torgb", kernel_shape=[1, 1]
        ),
    ]
    return _model("stylegan_blur", nodes, [w_up, w_blur, w_rgb], channels, SIZE * 2)


EXAMPLES = {
    "cyclegan_decoder.onnx": cyclegan_decoder,
    "clean_decoder.onnx": clean_decoder,
    "stylegan_blur.onnx": stylegan_blur,
}


def write_examples(out_dir: Path) -> list[Path]:
    """Write every example model to ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, build in EXAMPLES.items():
        path = out_dir / filename
        path.write_bytes(build().SerializeToString(deterministic=True))
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for path in write_examples(target):
        print(f"wrote {path} ({path.stat().st_size} bytes)")

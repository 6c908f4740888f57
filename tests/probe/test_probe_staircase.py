"""DL009 measures the checkerboard, not the staircase of a nearest resize (issue 16).

A nearest resize repeats samples: the images of a smooth input's spectrum sit right beside the
harmonics of its period (with a zero exactly on them).  The probe counts only the constant
input's lines at the harmonics, so a resize-convolution passes whatever its weights, while the
CycleGAN decoder (k3 s2) still fails.  Real ONNX models run by onnxruntime, and the CLI.
"""

from __future__ import annotations

import subprocess

import numpy as np
import onnx
import pytest
from onnx import helper

from deconvlint.config.settings import Settings
from deconvlint.frontends.onnx.reader import graph_from_model
from deconvlint.probe.measure import measure
from deconvlint.probe.onnx import probe_onnx
from deconvlint.rules.registry import run_rules
from tests.support.onnx_factory import make_model, tensor, value_info

pytest.importorskip("onnxruntime")

from tests.support.cli import REPO, run_cli

CHANNELS = (16, 8, 4)


def _zero_mean(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """PyTorch-like initialisation: zero-mean, scaled by the fan-in."""
    return rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))


def decoder(kind: str, seed: int, weights: str = "zero-mean") -> onnx.ModelProto:
    """The examples' decoder, 16x16 -> 64x64: two x2 upsamplers, each followed by
    InstanceNormalization and Relu, then a 7x7 conv and Tanh.  ``kind``: ``"k3"`` (CycleGAN:
    ConvTranspose k3 s2 p1 op1), ``"k4"`` (ConvTranspose k4 s2 p1) or ``"resize"`` (nearest
    Resize x2 + 3x3 conv); ``weights``: ``"zero-mean"`` or ``"positive"`` (uniform 0.5..1)."""
    rng = np.random.default_rng(seed)

    def weight(shape: tuple[int, ...]) -> np.ndarray:
        if weights == "positive":
            return rng.uniform(0.5, 1.0, shape) / np.prod(shape[1:]) * 4
        return _zero_mean(rng, shape)

    nodes, inits, x = [], [tensor("scales", [1, 1, 2, 2])], "z"
    for i in (1, 2):
        c_in, c_out = CHANNELS[i - 1], CHANNELS[i]
        if kind == "resize":
            inits.append(tensor(f"w{i}", weight((c_out, c_in, 3, 3))))
            nodes += [
                helper.make_node("Resize", [x, "", "scales"], [f"s{i}"], name=f"up{i}.resize",
                                 mode="nearest", coordinate_transformation_mode="asymmetric",
                                 nearest_mode="floor"),
                helper.make_node("Conv", [f"s{i}", f"w{i}"], [f"u{i}"], name=f"up{i}.conv",
                                 pads=[1] * 4),
            ]  # fmt: skip
        else:
            k = 3 if kind == "k3" else 4
            inits.append(tensor(f"w{i}", weight((c_in, c_out, k, k))))
            nodes.append(
                helper.make_node("ConvTranspose", [x, f"w{i}"], [f"u{i}"], name=f"up{i}",
                                 strides=[2, 2], pads=[1] * 4, output_padding=[k % 2] * 2)
            )  # fmt: skip
        inits += [tensor(f"g{i}", np.ones(c_out)), tensor(f"b{i}", np.zeros(c_out))]
        nodes += [
            helper.make_node("InstanceNormalization", [f"u{i}", f"g{i}", f"b{i}"], [f"n{i}"],
                             name=f"norm{i}"),
            helper.make_node("Relu", [f"n{i}"], [f"r{i}"], name=f"relu{i}"),
        ]  # fmt: skip
        x = f"r{i}"
    inits.append(tensor("head", weight((3, CHANNELS[-1], 7, 7))))
    nodes += [
        helper.make_node("Conv", [x, "head"], ["h"], name="head", pads=[3] * 4),
        helper.make_node("Tanh", ["h"], ["image"], name="tanh"),
    ]
    z = value_info("z", [1, CHANNELS[0], 16, 16])
    return make_model(nodes, [z], [value_info("image", None)], inits)


def probed(model: onnx.ModelProto):
    graph = graph_from_model(model)
    measured = probe_onnx(model, graph)
    found = [f for f in run_rules(graph, Settings(select=("DL009",)), measured)]
    return {k: round(m.db, 1) for k, m in measured.items()}, found


@pytest.mark.parametrize("seed", range(3))
def test_resize_convolution_with_random_weights_passes(seed: int):
    db, found = probed(decoder("resize", seed))
    assert set(db) == {"up1.resize", "up2.resize", "tanh"}
    assert all(v < -50 for v in db.values()), db
    assert not found


@pytest.mark.parametrize("seed", range(3))
def test_cyclegan_decoder_with_random_weights_still_fails(seed: int):
    db, found = probed(decoder("k3", seed))
    assert db["up1"] > -10 and db["up2"] > -10, db
    assert {f.node for f in found if f.severity == "warning"} >= {"up1", "up2"}


@pytest.mark.parametrize("seed", range(3))
def test_k4s2_with_random_positive_weights_passes_at_the_default_threshold(seed: int):
    """The layers' phase sums differ a little by chance (a few % ripple, info at most); the
    picture the decoder paints is clean."""
    db, found = probed(decoder("k4", seed, weights="positive"))
    assert db["tanh"] < -30, db
    assert all(f.severity == "info" for f in found), [(f.node, f.severity) for f in found]


def test_k4s2_with_zero_mean_random_weights_paints_a_real_checkerboard():
    """Zero-mean random kernels give every output channel its own phase sums whatever k is
    (theory.md section 6, Aitken et al. 2017): on a flat input the layer paints a checkerboard,
    and the probe says so.  What it no longer counts is the staircase."""
    model = decoder("k4", 0)
    db, found = probed(model)
    assert db["up1"] > -10, db
    assert any(f.severity == "warning" for f in found)
    # the constant input's answer is periodic: a genuine line, not a resize's image
    import onnxruntime as ort

    graph = model.graph
    graph.output.append(onnx.ValueInfoProto(name="u1"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    u1 = session.run(["u1"], {"z": np.ones((1, 16, 16, 16), np.float32)})[0][0, 0, 4:-4, 4:-4]
    assert not np.allclose(u1[0::2, 0::2], u1[1::2, 1::2], atol=1e-3)


def test_the_staircase_of_a_smooth_field_is_not_measured():
    """Nearest x2 of a smooth ramp-and-cosine field: steps everywhere, no checkerboard."""
    n = 32
    grid = np.arange(n) / n
    smooth = 1 + 0.4 * np.cos(2 * np.pi * grid)[:, None] * np.cos(np.pi * grid + 1)[None, :]
    steps = smooth.repeat(2, 0).repeat(2, 1)[None]
    flat = np.ones_like(steps)
    m = measure([flat, steps], (2, 2))
    assert m.db < -60, m.db
    checker = flat * np.where(np.add.outer(np.arange(2 * n), np.arange(2 * n)) % 2, 1.1, 0.9)
    assert measure([checker, steps], (2, 2)).db > -30


def test_cli_examples_clean_decoder_passes_and_cyclegan_fails():
    def run(name: str) -> subprocess.CompletedProcess:
        return run_cli("--probe", "--select", "DL009", f"examples/{name}", cwd=REPO)

    clean = run("clean_decoder.onnx")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "DL009" not in clean.stdout
    cyclegan = run("cyclegan_decoder.onnx")
    assert cyclegan.returncode == 1, cyclegan.stderr
    assert cyclegan.stdout.count("DL009 [warning]") == 3

"""The probe (--probe, DL009) on real ONNX models run by onnxruntime, and --plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from deconvlint.config.settings import Settings
from deconvlint.frontends.onnx.reader import graph_from_model
from deconvlint.probe.measure import measure, predicted_periods
from deconvlint.probe.onnx import probe_onnx
from deconvlint.rules.registry import run_rules
from tests.support.onnx_factory import make_model, save, tensor, value_info

pytest.importorskip("onnxruntime")

from tests.support.cli import REPO

C, SIZE = 4, 16


def _positive(rng, shape, fan):
    return rng.uniform(0.5, 1.0, shape) / fan


def decoder(kind: str, *, dynamic: bool = False, seed: int = 0) -> onnx.ModelProto:
    """A CycleGAN-style decoder, 16x16 -> 64x64: two x2 upsamplers with ReLU, a 7x7 conv, Tanh.

    ``cyclegan``: ConvTranspose k3 s2 p1 op1 with all-positive weights (the classic
    checkerboard); ``resize``: nearest Resize x2 + 3x3 conv, all-positive; ``linear``: the same
    ConvTranspose as ``cyclegan`` whose trained-like weights are the linear-interpolation kernel
    ``[.5, 1, .5]`` per axis on each channel (DL001 fires, nothing is painted).
    """
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "z"
    for i in (1, 2):
        if kind == "resize":
            inits += [
                tensor(f"scales{i}", [1, 1, 2, 2]),
                tensor(f"w{i}", _positive(rng, (C, C, 3, 3), C * 9)),
            ]
            nodes += [
                helper.make_node("Resize", [x, "", f"scales{i}"], [f"r{i}"], name=f"up{i}.resize", mode="nearest"),
                helper.make_node("Conv", [f"r{i}", f"w{i}"], [f"u{i}"], name=f"up{i}.conv", pads=[1] * 4),
            ]  # fmt: skip
        else:
            if kind == "linear":
                taps = np.array([0.5, 1.0, 0.5])
                w = np.zeros((C, C, 3, 3))
                w[np.arange(C), np.arange(C)] = np.outer(taps, taps)
            else:
                w = _positive(rng, (C, C, 3, 3), C * 9 / 4)
            inits.append(tensor(f"w{i}", w))
            nodes.append(
                helper.make_node("ConvTranspose", [x, f"w{i}"], [f"u{i}"], name=f"up{i}",
                                 strides=[2, 2], pads=[1] * 4, output_padding=[1, 1])
            )  # fmt: skip
        nodes.append(helper.make_node("Relu", [f"u{i}"], [f"a{i}"], name=f"relu{i}"))
        x = f"a{i}"
    inits.append(tensor("head", _positive(rng, (3, C, 7, 7), C * 49)))
    nodes += [
        helper.make_node("Conv", [x, "head"], ["h"], name="head", pads=[3] * 4),
        helper.make_node("Tanh", ["h"], ["image"], name="tanh"),
    ]
    shape = ["batch", C, "height", "width"] if dynamic else [1, C, SIZE, SIZE]
    return make_model(nodes, [value_info("z", shape)], [value_info("image", None)], inits)


def findings(model: onnx.ModelProto, select=("ALL",)):
    graph = graph_from_model(model)
    measured = probe_onnx(model, graph)
    return measured, run_rules(graph, Settings(select=select), measured)


def test_cyclegan_with_positive_weights_shows_a_strong_peak_at_the_stride_frequency():
    m, found = findings(decoder("cyclegan"))
    assert m["up1"].db > -10 and m["up2"].db > -10, {k: v.db for k, v in m.items()}
    assert m["up1"].periods == (2, 2) and m["up2"].periods == (4, 4)
    assert "1/2" in [str(f) for f in m["up1"].peak]
    assert m["tanh"].output and m["tanh"].db > -30
    dl009 = {f.node: f for f in found if f.rule == "DL009"}
    assert set(dl009) == {"up1", "up2", "tanh"}
    assert all(f.severity == "warning" for f in dl009.values())
    # the structural findings carry the measurement too
    dl001 = [f for f in found if f.rule == "DL001" and f.node == "up1"]
    assert dl001[0].metrics["measured_db"] == round(m["up1"].db, 2)


def test_resize_convolution_shows_no_peak():
    measured, found = findings(decoder("resize"))
    assert measured, "nothing was measured"
    assert all(v.db < -30 for v in measured.values()), {
        k: round(v.db, 1) for k, v in measured.items()
    }
    assert not [f for f in found if f.rule == "DL009"]


def test_linear_interpolation_weights_show_no_peak_although_dl001_fires():
    measured, found = findings(decoder("linear"))
    rules = {f.rule for f in found}
    assert "DL001" in rules
    assert "DL009" not in rules and "DL007" not in rules
    assert all(v.db < -30 for v in measured.values())


def test_measure_finds_a_known_checkerboard_level():
    """A 2-D pattern [1+e, 1-e] x [1+e, 1-e] on a flat field: harmonic/DC energy is known."""
    e = 0.1
    axis = np.where(np.arange(64) % 2, 1 - e, 1 + e)
    field = np.multiply.outer(axis, axis)[None]
    m = measure([field], (2, 2))
    # three harmonics of amplitude e (twice) and e^2, against DC 1: 10*log10(2e^2 + e^4)
    assert m.db == pytest.approx(10 * np.log10(2 * e**2 + e**4), abs=0.2)
    np.testing.assert_allclose(m.response, np.outer([1 + e, 1 - e], [1 + e, 1 - e]), rtol=1e-9)


def test_predicted_periods_of_the_decoder():
    graph = graph_from_model(decoder("cyclegan"))
    periods = predicted_periods(graph)
    assert periods["u1"] == (2, 2) and periods["image"] == (4, 4)


# --- the command line --------------------------------------------------------------------------


def cli(*args: str, cwd: Path = REPO, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"import sys\n{prelude}\nfrom deconvlint.cli.main import main\nraise SystemExit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_cli_probe_json(tmp_path: Path):
    path = save(decoder("cyclegan"), tmp_path / "gen.onnx")
    proc = cli("--probe", "--format", "json", str(path))
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    dl009 = [f for f in result["findings"] if f["rule"] == "DL009"]
    assert {f["node"] for f in dl009} == {"up1", "up2", "tanh"}
    assert dl009[0]["metrics"]["measured_db"] > -10
    assert "1/2" in dl009[0]["metrics"]["peak_frequency"]
    assert np.asarray(dl009[0]["metrics"]["measured_response"]).shape == (2, 2)
    assert not list(tmp_path.glob("*.png")) and sorted(p.name for p in tmp_path.iterdir()) == [
        "gen.onnx"
    ]


def test_cli_without_probe_runs_no_dl009(tmp_path: Path):
    path = save(decoder("cyclegan"), tmp_path / "gen.onnx")
    proc = cli("--format", "json", str(path))
    assert "DL009" not in {f["rule"] for f in json.loads(proc.stdout)["results"][0]["findings"]}


def test_probe_says_when_shapes_are_dynamic(tmp_path: Path):
    path = save(decoder("cyclegan", dynamic=True), tmp_path / "dyn.onnx")
    proc = cli("--probe", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dyn.onnx" in lines[0], proc.stderr
    assert "dynamic dimension 'height'" in lines[0] and "--input-shape" in lines[0]
    ok = cli("--probe", "--input-shape", "1,4,16,16", "--select", "DL009", str(path))
    assert ok.returncode == 1 and "DL009" in ok.stdout, ok.stderr


def test_probe_says_when_onnxruntime_is_missing(tmp_path: Path):
    path = save(decoder("resize"), tmp_path / "m.onnx")
    proc = cli("--probe", str(path), prelude="sys.modules['onnxruntime'] = None")
    assert proc.returncode == 2
    assert "onnxruntime is not installed" in proc.stderr and "deconvlint[probe]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_checking_onnx_imports_no_runtime_no_plotting_no_torch(tmp_path: Path):
    path = save(decoder("resize"), tmp_path / "small.onnx")
    check = (
        "import sys\nfrom deconvlint.cli.main import main\ncode = main([sys.argv[1]])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'onnxruntime', 'matplotlib', 'torch'})\n"
        "assert not heavy, heavy\nraise SystemExit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", check, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_plot_writes_one_png_per_finding(tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = save(decoder("cyclegan"), tmp_path / "gen.onnx")
    out = tmp_path / "plots"
    proc = cli("--probe", "--extend-select", "DL007", "--plot", str(out), str(path))
    assert proc.returncode == 1, proc.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert "gen__up1__DL001.png" in names and "gen__up1__DL009.png" in names
    assert "gen__up1__DL007.png" in names
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)
    assert proc.stdout.count(": DL0") == len(names)


def test_plot_says_when_matplotlib_is_missing(tmp_path: Path):
    path = save(decoder("resize"), tmp_path / "m.onnx")
    proc = cli("--plot", str(tmp_path / "p"), str(path), prelude="sys.modules['matplotlib'] = None")
    assert proc.returncode == 2 and "matplotlib is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_probe_input_shape_is_one_line(tmp_path: Path):
    path = save(decoder("cyclegan"), tmp_path / "gen.onnx")
    proc = cli("--probe", "--input-shape", "1,4,16,16", "--input-shape", "1,4", str(path))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--input-shape given 2 times, the model has 1 inputs" in proc.stderr


def test_dl009_option_max_db(tmp_path: Path):
    model = decoder("linear")
    graph = graph_from_model(model)
    loose = Settings(select=("DL009",), rule_options={"DL009": {"max-db": -400.0}})
    found = run_rules(graph, loose, probe_onnx(model, graph))
    assert {f.node for f in found} == {"up1", "up2", "tanh"}
    del tmp_path

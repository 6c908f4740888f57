"""What deconvlint opens: only regular files, only inside the model's folder, wherever an ONNX
tensor hides, and never anything onnxruntime would resolve on its own; and a failure while one
file is checked costs that file only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from deconvlint.cli.parallel import check_in_order
from deconvlint.frontends.target import ModelSpec
from deconvlint.report import FileResult
from tests.support.cli import REPO, run_cli
from tests.support.onnx_factory import make_model, tensor, value_info

#: Prints every path the checker opens below a folder, then runs the command line.
WATCH_OPENS = """
import os, sys
watched = os.path.realpath(sys.argv.pop(1))
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(watched):
            print("OPENED " + path, file=sys.stderr)
sys.addaudithook(hook)
from deconvlint.cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def deconvlint(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command line, as a subprocess; a run that hangs fails the test after ``timeout``."""
    try:
        return run_cli(*args, cwd=cwd, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"deconvlint {' '.join(args)} hung for {timeout} s")


def _upsampler(blur_weight: onnx.TensorProto, *, channels: int = 4) -> onnx.ModelProto:
    """x -> ConvTranspose(k=3, s=2) -> depthwise Conv with ``blur_weight`` (read by the
    fixed-filter check)."""
    nodes = [
        helper.make_node(
            "ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node(
            "Conv", ["y", "blur"], ["z"], name="blur", group=channels, pads=[1, 1, 1, 1]
        ),
    ]
    weight = tensor("w", np.ones((channels, channels, 3, 3)))
    return make_model(
        nodes,
        [value_info("x", [1, channels, 8, 8])],
        [value_info("z", [1, channels, 15, 15])],
        [weight, blur_weight],
    )


def _external(name: str, location: str, shape: list[int]) -> onnx.TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    return t


# --- item: every place a tensor can hide is checked before anything is opened ----------------


def _function_default_model(location: str) -> onnx.ModelProto:
    """The blur's kernel is the *default value* of a model-local function's attribute."""
    kernel = helper.make_attribute("kernel", _external("kernel", location, [4, 1, 3, 3]))
    constant = helper.make_node("Constant", [], ["k"], name="k")
    constant.attribute.add(name="value", ref_attr_name="kernel", type=onnx.AttributeProto.TENSOR)
    body = [constant, helper.make_node("Conv", ["y", "k"], ["z"], group=4, pads=[1, 1, 1, 1])]
    function = helper.make_function(
        "local", "Blur", ["y"], ["z"], body, [helper.make_opsetid("", 19)]
    )
    function.attribute_proto.append(kernel)
    nodes = [
        helper.make_node(
            "ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Blur", ["y"], ["z"], name="blur", domain="local"),
    ]
    model = make_model(
        nodes,
        [value_info("x", [1, 4, 8, 8])],
        [value_info("z", [1, 4, 15, 15])],
        [tensor("w", np.ones((4, 4, 3, 3)))],
    )
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.functions.append(function)
    return model


def test_external_data_in_a_function_attribute_default_is_checked_before_any_open(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "kernel.bin"
    secret.write_bytes(np.full((4, 1, 3, 3), 1 / 9, np.float32).tobytes())
    (tmp_path / "models").mkdir()
    onnx.save(_function_default_model(str(secret)), tmp_path / "models" / "m.onnx")
    proc = subprocess.run(
        [sys.executable, "-c", WATCH_OPENS, str(outside), "models/m.onnx"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert "OPENED" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    (line,) = proc.stderr.strip().splitlines()
    assert "tensor 'kernel' has external data at" in line and "an absolute path" in line, line


def test_every_tensor_of_a_model_is_visited(tmp_path: Path) -> None:
    from deconvlint.frontends.onnx.tensors import model_tensors

    model = _function_default_model("k.bin")
    branch = helper.make_graph([], "b", [], [], [tensor("sub", [1.0])])
    model.graph.node.append(
        helper.make_node("If", ["c"], [], then_branch=branch, else_branch=branch)
    )
    model.training_info.add().initialization.initializer.append(tensor("train", [1.0]))
    sparse = helper.make_sparse_tensor(tensor("values", [1.0]), tensor("idx", [0], np.int64), [2])
    model.graph.sparse_initializer.append(sparse)
    names = {t.name for t in model_tensors(model)}
    assert {"w", "kernel", "sub", "train", "values", "idx"} <= names


# --- item: the probe hands onnxruntime only tensors deconvlint read itself -------------------


def _subgraph_external_model() -> onnx.ModelProto:
    """An If whose then-branch adds a bias stored in ``bias.bin`` next to the model."""
    bias = _external("bias", "bias.bin", [1, 4, 1, 1])
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["y", "bias"], ["t"])],
        "then",
        [],
        [value_info("t", [1, 4, 15, 15])],
        [bias],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["y"], ["e"])], "else", [], [value_info("e", [1, 4, 15, 15])]
    )
    nodes = [
        helper.make_node(
            "ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node(
            "If", ["c"], ["z"], name="branch", then_branch=then_branch, else_branch=else_branch
        ),
    ]
    initializers = [
        tensor("w", np.ones((4, 4, 3, 3))),
        helper.make_tensor("c", TensorProto.BOOL, [], [True]),
    ]
    return make_model(
        nodes, [value_info("x", [1, 4, 8, 8])], [value_info("z", [1, 4, 15, 15])], initializers
    )


def test_probe_never_lets_onnxruntime_resolve_external_data_against_the_current_folder(
    tmp_path: Path,
) -> None:
    pytest.importorskip("onnxruntime")
    models, elsewhere = tmp_path / "models", tmp_path / "cwd"
    models.mkdir()
    elsewhere.mkdir()
    onnx.save(_subgraph_external_model(), models / "m.onnx")
    bias = np.full((1, 4, 1, 1), 0.5, np.float32).tobytes()
    (elsewhere / "bias.bin").write_bytes(bias)  # in the current folder, not the model's
    proc = deconvlint("--probe", "-q", str(models / "m.onnx"), cwd=elsewhere)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    (line,) = proc.stderr.strip().splitlines()
    assert "cannot read external data 'bias.bin'" in line, line
    (models / "bias.bin").write_bytes(bias)  # beside the model: read, and the probe runs
    proc = deconvlint("--probe", "--format", "json", str(models / "m.onnx"), cwd=elsewhere)
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["results"][0]["error"] is None


# --- item: only regular files are opened -----------------------------------------------------

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


@needs_fifo
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_fifo_in_a_folder_is_one_error_line_and_the_others_are_checked(
    tmp_path: Path, jobs: str
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    os.mkfifo(folder / "p.onnx")
    (folder / "good.onnx").write_bytes((REPO / "examples" / "cyclegan_decoder.onnx").read_bytes())
    (folder / "more.onnx").write_bytes((REPO / "examples" / "cyclegan_decoder.onnx").read_bytes())
    proc = deconvlint("-j", jobs, "--format", "json", "models", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    results = {r["path"]: r for r in json.loads(proc.stdout)["results"]}
    fifo = results[os.path.join("models", "p.onnx")]
    assert fifo["error"] == "cannot read the file: not a regular file (a FIFO)", fifo
    for name in ("good.onnx", "more.onnx"):
        assert results[os.path.join("models", name)]["findings"], results


@needs_fifo
def test_a_fifo_as_external_data_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "w.bin")
    onnx.save(_upsampler(_external("blur", "w.bin", [4, 1, 3, 3])), tmp_path / "m.onnx")
    proc = deconvlint("--format", "json", "m.onnx", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["error"] is None and result["findings"]
    from deconvlint.frontends.onnx.reader import load_graph

    (blur,) = [node for node in load_graph(tmp_path / "m.onnx").nodes if node.name == "blur"]
    assert any("not a regular file (a FIFO)" in note for note in blur.notes), blur.notes


@needs_fifo
def test_a_fifo_named_explicitly_is_one_error_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model.pt")
    proc = deconvlint("model.pt", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == "model.pt: error: cannot read the file: not a regular file (a FIFO)"
    )


# --- item: one file's failure is that file's error line ------------------------------------


def _fails_on_b(spec: ModelSpec) -> FileResult:
    """A check that runs out of memory on ``b.onnx`` (module level: sent to worker processes)."""
    if spec.target == "b.onnx":
        raise MemoryError()
    return FileResult(path=spec.target, findings=[])


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failure_inside_one_check_costs_only_that_file(jobs: int) -> None:
    specs = [ModelSpec(name) for name in ("a.onnx", "b.onnx", "c.onnx", "d.onnx")]
    results = check_in_order(specs, _fails_on_b, jobs=jobs)
    assert [r.path for r in results] == ["a.onnx", "b.onnx", "c.onnx", "d.onnx"]
    assert [r.error is None for r in results] == [True, False, True, True]
    assert results[1].error.startswith("internal error: MemoryError"), results[1].error


def test_the_cli_turns_a_memory_error_while_sniffing_into_that_files_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from deconvlint.cli import main as cli
    from deconvlint.frontends import sniff as sniffing

    good = tmp_path / "good.onnx"
    good.write_bytes((REPO / "examples" / "cyclegan_decoder.onnx").read_bytes())
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"PK\x03\x04")

    def exhausted(path):
        raise MemoryError()

    monkeypatch.setattr(sniffing, "sniff", exhausted)
    code = cli.main(["-j", "1", "-q", "--format", "json", str(odd), str(good)])
    assert code == 2
    results = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["odd.bin"]["error"].startswith("internal error: MemoryError")
    assert results["good.onnx"]["findings"]

"""The one loader: every kind of target through :func:`deconvlint.frontends.load.load`."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from deconvlint.core.chainspec import parse_chain
from deconvlint.engine import RunOptions, check_target
from deconvlint.errors import LoadError
from deconvlint.frontends.load import is_file, load, runs_torch
from deconvlint.frontends.target import ModelSpec, as_input_tuple
from tests.support.cli import REPO
from tests.support.onnx_factory import model_from_chain, save

EXAMPLE = REPO / "examples" / "cyclegan_decoder.onnx"


def test_an_onnx_path_reads_with_the_onnx_front_end_and_can_be_probed() -> None:
    for target in (EXAMPLE, str(EXAMPLE), ModelSpec(str(EXAMPLE), input_shapes=((1, 3, 8, 8),))):
        loaded = load(target)
        assert loaded.frontend == "onnx" and loaded.path == str(EXAMPLE)
        assert loaded.onnx == str(EXAMPLE) and loaded.module is None
        assert [n.name for n in loaded.graph.nodes if n.name.startswith("decoder.up")]
    assert load(ModelSpec(str(EXAMPLE), input_shapes=((1, 3, 8, 8),))).input_shapes == (
        (1, 3, 8, 8),
    )


def test_a_model_proto_is_named_after_its_graph() -> None:
    model = model_from_chain(parse_chain("ConvTranspose2d(k=3, s=2, p=1, op=1)"))
    model.graph.name = "tiny"
    loaded = load(model)
    assert (loaded.frontend, loaded.path, loaded.onnx) == ("onnx", "<tiny>", model)
    assert [n.op_type for n in loaded.graph.nodes] == ["ConvTranspose"]


def test_a_file_found_in_a_folder_is_onnx_whatever_its_bytes(tmp_path: Path) -> None:
    pickled = tmp_path / "model.bin"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(LoadError, match="holds only tensors and plain data"):
        load(str(pickled))  # sniffed: a pickle of plain data
    with pytest.raises(LoadError, match="not an ONNX model"):
        load(ModelSpec(str(pickled), onnx_only=True))
    assert runs_torch(ModelSpec(str(pickled))) and not runs_torch(
        ModelSpec(str(pickled), onnx_only=True)
    )


def test_a_module_target_is_imported_unless_a_file_has_its_spelling(tmp_path, monkeypatch):
    assert not is_file(ModelSpec("pkg.models:Generator"))
    assert runs_torch(ModelSpec("pkg.models:Generator"))
    monkeypatch.chdir(tmp_path)
    save(model_from_chain(parse_chain("ConvTranspose2d(k=4, s=2, p=1)")), "pkg.models:Generator")
    assert is_file(ModelSpec("pkg.models:Generator"))
    assert not runs_torch(ModelSpec("pkg.models:Generator"))
    assert load("pkg.models:Generator").frontend == "onnx"
    with pytest.raises(LoadError, match=r"--weights applies to package\.module:attribute"):
        load(ModelSpec("pkg.models:Generator", weights="w.pt"))


def test_unsupported_objects_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="not list"):
        load([1, 2])


def test_example_inputs_become_a_tuple() -> None:
    assert as_input_tuple((1,)) == (1,) and as_input_tuple([1, 2]) == (1, 2)
    assert as_input_tuple(7) == (7,) and as_input_tuple(None) is None


def test_the_probe_of_a_file_without_a_runner_is_that_files_error(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    path = tmp_path / "up.pt2"
    module = torch.nn.Sequential(torch.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1))
    torch.export.save(torch.export.export(module, (torch.randn(1, 2, 4, 4),)), path)
    assert load(str(path)).frontend == "export"
    assert check_target(str(path)).findings  # DL001, without the probe
    result = check_target(str(path), options=RunOptions(probe=True))
    assert result.error is not None and "export this model to ONNX to probe it" in result.error


def test_loading_onnx_imports_neither_torch_nor_the_torch_front_end() -> None:
    code = (
        "import sys; from deconvlint.frontends.load import load\n"
        f"load({str(EXAMPLE)!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
        "or m.startswith('deconvlint.frontends.torch'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

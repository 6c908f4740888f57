"""Torch targets without the CLI: module target names, input shapes, and telling torch's file
formats apart by content without ever unpickling.

The command line on the same inputs, as a subprocess, is in ``tests/cli/test_cli_torch.py``.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import pytest

from deconvlint.cli.discovery import collect_targets
from deconvlint.config.lines import parse_yaml, toml_lines
from deconvlint.frontends.sniff import FileFormat, sniff
from deconvlint.frontends.target import is_module_target, parse_input_shape, shapes_from_config
from tests.support.cli import REPO

# --- names and shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pkg.models:Generator", True),
        ("models:make_generator", True),
        ("pkg.models:Registry.generator", True),
        ("pkg.models", False),
        ("pkg/models.py:Generator", False),
        ("pkg.models:", False),
        (":Generator", False),
        ("pkg.models:Gen:x", False),
        ("pkg.models:1st", False),
        ("examples/cyclegan_decoder.onnx", False),
    ],
)
def test_module_targets(text: str, expected: bool) -> None:
    assert is_module_target(text) is expected


def test_input_shapes() -> None:
    assert parse_input_shape("1,3,64,64") == (1, 3, 64, 64)
    assert parse_input_shape(" 1, 10 ") == (1, 10)
    for bad in ("", "1,,3", "1,0,4", "1,-3", "1x3x64x64", "a,b", "1.5,2"):
        with pytest.raises(ValueError, match="positive integers"):
            parse_input_shape(bad)
    assert shapes_from_config([1, 3, 8, 8]) == ((1, 3, 8, 8),)
    assert shapes_from_config([[1, 3, 8, 8], [2, 5]]) == ((1, 3, 8, 8), (2, 5))
    for bad in ([], [[]], [1, [2]], [True, 3], "1,3", [[1, 3], [0]], {"x": 1}):
        with pytest.raises(ValueError):
            shapes_from_config(bad)


def test_discovery_tells_module_targets_from_missing_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pkg.models:Generator").write_text("an existing path wins\n")
    monkeypatch.chdir(tmp_path)
    targets = collect_targets(
        ["pkg.models:Generator", "pkg.models:make", "gone:model.onnx", "pkg/x.py:Gen", "gone"]
    )
    assert [(t.display, t.module, t.error) for t in targets] == [
        ("pkg.models:Generator", False, None),
        ("pkg.models:make", True, None),
        ("gone:model.onnx", False, "no such file or folder"),
        ("pkg/x.py:Gen", False, "no such file or folder, nor a package.module:attribute target"),
        ("gone", False, "no such file or folder"),
    ]


def test_line_finder_knows_arrays_of_tables_and_yaml_lists() -> None:
    text = (
        '[tool.deconvlint]\nignore = []\n\n[[tool.deconvlint.models]]\ntarget = "a:B"\n\n'
        "[tool.deconvlint.models.kwargs]\nwidth = 2\n\n[[tool.deconvlint.models]]\n"
        'target = "c:D"\n'
    )
    lines = toml_lines(text, ("tool", "deconvlint"))
    assert lines[("models",)] == 4
    assert lines[("models", 0, "target")] == 5
    assert lines[("models", 0, "kwargs", "width")] == 8
    assert lines[("models", 1)] == 10
    assert lines[("models", 1, "target")] == 11
    _data, yaml_lines = parse_yaml("models:\n  - target: a:B\n  - target: c:D\n", "x.yaml")
    assert yaml_lines[("models", 1)] == 3 and yaml_lines[("models", 1, "target")] == 3


# --- recognising files, never unpickling -----------------------------------------------------------


class _Alarm:
    """Unpickling this creates a file: proof that sniffing ran the pickle's code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_plain_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("chain: nothing\n")
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("folder/readme.txt", "hello")
    assert sniff(REPO / "examples" / "cyclegan_decoder.onnx") is FileFormat.ONNX
    assert sniff(text) is FileFormat.ONNX  # the ONNX front end says what is wrong with it
    assert sniff(tmp_path / "missing.pt") is FileFormat.ONNX  # likewise
    assert sniff(zipped) is FileFormat.OTHER_ZIP


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickles_are_classified_without_running_them(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "unpickled"
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps({"model": _Alarm(str(marker))}, protocol=protocol))
    counter = tmp_path / "counter.pkl"
    counter.write_bytes(pickle.dumps(collections.Counter("ab"), protocol=protocol))
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"lr": 0.1, "epoch": [1, 2]}, protocol=protocol))
    assert sniff(hostile) is FileFormat.PICKLED_OBJECT
    assert sniff(counter) is FileFormat.PICKLED_OBJECT
    assert sniff(plain) is FileFormat.PICKLED_WEIGHTS  # no class at all: data, not a model
    assert not marker.exists()


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind of file torch writes, of one small model."""
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("torch_files")
    model = torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 4, 3, 2, 1, 1), torch.nn.ReLU())
    example = (torch.randn(1, 4, 8, 8),)
    files = {name: folder / name for name in ("export.pt2", "script.pt", "trace.pt")}
    torch.export.save(torch.export.export(model, example), files["export.pt2"])
    torch.jit.script(model).save(files["script.pt"])
    torch.jit.trace(model, example).save(files["trace.pt"])
    for name, obj in (("full", model), ("weights", model.state_dict())):
        files[f"{name}.pt"] = folder / f"{name}.pt"
        torch.save(obj, files[f"{name}.pt"])
        files[f"{name}_legacy.pt"] = folder / f"{name}_legacy.pt"
        torch.save(obj, files[f"{name}_legacy.pt"], _use_new_zipfile_serialization=False)
    files["checkpoint.pth"] = folder / "checkpoint.pth"
    torch.save({"model": model.state_dict(), "epoch": 3}, files["checkpoint.pth"])
    files["module.pkl"] = folder / "module.pkl"
    files["module.pkl"].write_bytes(pickle.dumps(model, protocol=5))
    return files


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("export.pt2", FileFormat.EXPORTED_PROGRAM),
        ("script.pt", FileFormat.TORCHSCRIPT),
        ("trace.pt", FileFormat.TORCHSCRIPT),
        ("full.pt", FileFormat.PICKLED_OBJECT),
        ("full_legacy.pt", FileFormat.PICKLED_OBJECT),
        ("module.pkl", FileFormat.PICKLED_OBJECT),
        ("weights.pt", FileFormat.PICKLED_WEIGHTS),
        ("weights_legacy.pt", FileFormat.PICKLED_WEIGHTS),
        ("checkpoint.pth", FileFormat.PICKLED_WEIGHTS),
    ],
)
def test_torch_formats(torch_files: dict[str, Path], name: str, expected: FileFormat) -> None:
    assert sniff(torch_files[name]) is expected


def test_scope_names_follow_the_module_tree() -> None:
    onnx = pytest.importorskip("onnx")
    from deconvlint.frontends.torch.build import _scope_names

    names = ["/decoder/0/up/ConvTranspose", "/decoder/0/Constant", "/decoder/0/Add", "/Tanh"]
    nodes = [onnx.helper.make_node("Relu", ["x"], ["y"], name=n) for n in names]
    graph = onnx.helper.make_graph(nodes, "g", [], [])
    model = onnx.helper.make_model(graph)
    _scope_names(model)
    assert [n.name for n in model.graph.node] == [
        "decoder.0.up",
        "decoder.0/Constant",
        "decoder.0/Add",
        "/Tanh",
    ]


def test_sniffing_reads_zip_members_without_extracting(tmp_path: Path) -> None:
    archive = tmp_path / "fake.pt"
    payload = pickle.dumps(_Alarm(str(tmp_path / "unpickled")), protocol=2)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("fake/data.pkl", payload)
        zipped.writestr("fake/version", "3\n")
    assert sniff(archive) is FileFormat.PICKLED_OBJECT
    assert not (tmp_path / "unpickled").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.pt"]

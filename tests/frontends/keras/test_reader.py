"""Reading Keras files: the configuration and each layer's variables, from real files that
Keras 3 wrote (torch backend), compared with what Keras says they hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deconvlint.errors import LoadError
from deconvlint.frontends.keras.reader import read_keras_file
from deconvlint.frontends.keras.variables import saved_keys
from deconvlint.frontends.sniff import FileFormat, file_format, sniff
from tests.support.cli import REPO
from tests.support.keras_files import (
    config_of,
    edited_h5,
    keras_files,
    rewrite_archive,
    saved_weights,
    weights_member,
)

pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return keras_files(tmp_path_factory.getbasetemp() / "keras_files")


def _same(read: list[np.ndarray] | None, saved: list[np.ndarray]) -> bool:
    return (
        read is not None
        and len(read) == len(saved)
        and all(
            np.array_equal(np.asarray(a, np.float32), b) for a, b in zip(read, saved, strict=True)
        )
    )


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", ["sequential", "nested", "bfloat16", "lambda", "shared"])
def test_every_layers_variables_are_what_keras_saved(files, name: str, suffix: str) -> None:
    path = files[name].with_suffix(suffix)
    model = read_keras_file(path)
    saved = saved_weights(files[name])
    assert saved, "the model has layers with variables"
    for layer, weights in saved.items():
        assert _same(model.variables(layer), weights), (path.name, layer)
    assert model.variables.notes == []


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_configuration_is_the_json_keras_wrote(files, suffix: str) -> None:
    model = read_keras_file(files["nested"].with_suffix(suffix))
    written = config_of(files["nested"])
    assert model.config["class_name"] == written["class_name"] == "Functional"
    names = [layer["config"]["name"] for layer in model.config["config"]["layers"]]
    assert names == [layer["config"]["name"] for layer in written["config"]["layers"]]
    assert names == ["image", "middle", "head"]


def test_files_are_recognised_by_name_then_by_content(files, tmp_path: Path) -> None:
    archive, legacy = files["sequential"], files["sequential"].with_suffix(".h5")
    assert file_format(archive) is FileFormat.KERAS
    assert file_format(legacy) is FileFormat.HDF5
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(archive.read_bytes())
    assert sniff(renamed) is FileFormat.KERAS
    renamed.write_bytes(legacy.read_bytes())
    assert sniff(renamed) is FileFormat.HDF5
    # found in a folder (not sniffed): the name alone decides
    assert file_format(renamed, sniffed=False) is FileFormat.ONNX
    assert file_format(legacy, sniffed=False) is FileFormat.HDF5
    assert read_keras_file(renamed, FileFormat.HDF5).config["class_name"] == "Sequential"


def test_an_hdf5_user_block_is_found(files, tmp_path: Path) -> None:
    """HDF5 allows a user block of 512, 1024, 2048 ... bytes before the file proper."""
    path = tmp_path / "blocked.bin"
    with h5py.File(path, "w", userblock_size=1024) as h5:
        h5.attrs["model_config"] = json.dumps(config_of(files["sequential"]))
    assert path.read_bytes()[:4] == bytes(4)
    assert sniff(path) is FileFormat.HDF5
    assert read_keras_file(path).config["config"]["name"] == "generator"


def test_the_layer_keys_without_the_name_tags_of_keras_3_15(files, tmp_path: Path) -> None:
    """Older Keras 3 files do not tag ``vars`` groups with the layer's name: the key then comes
    from the configuration (snake-case class names, numbered), as Keras saves them."""

    def untag(h5) -> None:
        def visit(name: str, obj) -> None:
            if "name" in obj.attrs:
                del obj.attrs["name"]

        h5.visititems(visit)

    for name in ("sequential", "nested", "shared"):
        stripped = edited_h5(weights_member(files[name]), untag)
        path = rewrite_archive(
            files[name], tmp_path / f"{name}.keras", {"model.weights.h5": stripped}
        )
        model = read_keras_file(path)
        for layer, weights in saved_weights(files[name]).items():
            assert _same(model.variables(layer), weights), (name, layer)
    assert saved_keys(config_of(files["nested"])) == {
        ("image",): "layers/input_layer",
        ("middle",): "layers/functional",
        ("middle", "mid_in"): "layers/functional/layers/input_layer",
        ("middle", "inner"): "layers/functional/layers/sequential",
        ("middle", "inner", "ct"): "layers/functional/layers/sequential/layers/conv2d_transpose",
        ("middle", "mid_conv"): "layers/functional/layers/conv2d",
        ("head",): "layers/conv2d_transpose",
    }


def test_a_layer_that_is_not_in_the_file_is_a_note_not_an_error(files) -> None:
    for path in (files["nested"], files["nested"].with_suffix(".h5")):
        variables = read_keras_file(path).variables
        assert variables(("no_such_layer",)) is None
        assert variables(("no_such_layer",)) is None
        assert variables.notes == [f"layer 'no_such_layer': no variables of it in {_what(path)}"]


def _what(path: Path) -> str:
    return "model.weights.h5" if path.suffix == ".keras" else path.name


def test_weights_files_are_refused_saying_what_to_pass(files, tmp_path: Path) -> None:
    import keras

    model = keras.saving.load_model(files["sequential"])
    model.save_weights(tmp_path / "gen.weights.h5")
    with pytest.raises(LoadError, match=r"^a Keras weights file .*model.save\('model.keras'\)"):
        read_keras_file(tmp_path / "gen.weights.h5")
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(tmp_path / "legacy_weights.h5", "w") as h5:
        legacy_h5_format.save_weights_to_hdf5_group(h5, model)
    with pytest.raises(LoadError, match=r"^a legacy Keras weights file"):
        read_keras_file(tmp_path / "legacy_weights.h5")
    with h5py.File(tmp_path / "data.h5", "w") as h5:
        h5["images"] = np.zeros((4, 8, 8))
    with pytest.raises(LoadError, match=r"^an HDF5 file without a model_config attribute"):
        read_keras_file(tmp_path / "data.h5")
    weights_only = rewrite_archive(files["sequential"], tmp_path / "w.keras", {"config.json": None})
    with pytest.raises(LoadError, match=r"^a Keras archive without config\.json .*model\.save"):
        read_keras_file(weights_only)


def test_an_archive_without_weights_still_gives_its_config(files, tmp_path: Path) -> None:
    path = rewrite_archive(files["sequential"], tmp_path / "bare.keras", {"model.weights.h5": None})
    model = read_keras_file(path)
    assert model.config["class_name"] == "Sequential"
    assert model.variables(("up1",)) is None and model.variables(("up2",)) is None
    assert model.variables.notes == [
        "weights not read: the archive has no model.weights.h5; the checks that need weights "
        "skip every layer"
    ]


def test_weights_kept_as_npz_are_not_read_and_the_note_says_why(files, tmp_path: Path) -> None:
    path = rewrite_archive(
        files["sequential"],
        tmp_path / "npz.keras",
        {"model.weights.h5": None, "model.weights.npz": b"PK\x05\x06" + bytes(18)},
    )
    model = read_keras_file(path)
    assert model.variables(("up1",)) is None
    assert model.variables.notes == [
        "weights not read: the archive keeps them in model.weights.npz, whose variables numpy "
        "can only unpickle; the checks that need weights skip every layer"
    ]


def test_a_keras_archive_is_read_without_h5py_and_its_weights_say_they_need_it(files) -> None:
    """Only the weights need h5py: the structure of a .keras file is read from its zip."""
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "from deconvlint.frontends.keras.reader import read_keras_file\n"
        "from deconvlint.errors import LoadError\n"
        f"model = read_keras_file({str(files['sequential'])!r})\n"
        "print(model.config['class_name'], model.variables(('up1',)), model.variables(('up2',)))\n"
        "print(model.variables.notes)\n"
        "try:\n"
        f"    read_keras_file({str(files['sequential'].with_suffix('.h5'))!r})\n"
        "except LoadError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Sequential None None"
    assert lines[1] == (
        "[\"weights not read: h5py is not installed (pip install 'deconvlint[keras]'); the checks "
        'that need weights (weight-aware rules, fixed filters) skip every layer"]'
    )
    assert lines[2] == (
        "an HDF5 file (a legacy Keras .h5 model?): reading it needs h5py, which is not installed "
        "(pip install 'deconvlint[keras]')"
    )


def test_a_keras_2_legacy_layout_is_read(files, tmp_path: Path) -> None:
    """tf.keras 2 wrote bytes attributes and variable names ending ``:0``; a nested model's
    group lists its layers' variables as ``<layer>/<variable>:0``."""
    kernel = np.arange(5 * 5 * 6 * 8, dtype=np.float32).reshape(5, 5, 6, 8)
    inner = np.ones((3, 3, 2, 2), np.float32)
    with h5py.File(tmp_path / "tf2.h5", "w") as h5:
        h5.attrs["model_config"] = json.dumps(config_of(files["sequential"])).encode()
        h5.attrs["keras_version"] = b"2.15.0"
        weights = h5.create_group("model_weights")
        weights.attrs["layer_names"] = [b"up1", b"block"]
        up1 = weights.create_group("up1")
        up1.attrs["weight_names"] = [b"up1/kernel:0"]
        up1["up1/kernel:0"] = kernel
        block = weights.create_group("block")
        block.attrs["weight_names"] = [b"ct/kernel:0", b"ct/bias:0", b"smooth/kernel:0"]
        block["ct/kernel:0"], block["ct/bias:0"] = inner, np.zeros(2, np.float32)
        block["smooth/kernel:0"] = np.zeros((3, 3, 2, 2), np.float32)
    variables = read_keras_file(tmp_path / "tf2.h5").variables
    [read] = variables(("up1",))
    assert np.array_equal(read, kernel)
    ct = variables(("block", "ct"))
    assert [a.shape for a in ct] == [(3, 3, 2, 2), (2,)] and np.array_equal(ct[0], inner)
    assert [a.shape for a in variables(("block", "smooth"))] == [(3, 3, 2, 2)]
    assert variables.notes == []

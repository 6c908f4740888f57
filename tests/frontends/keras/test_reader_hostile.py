"""Hostile Keras files: every one is a one-line error or, for weights, a note; nothing is read
outside the file, nothing unbounded is allocated, nothing from the file runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deconvlint.errors import LoadError
from deconvlint.frontends.keras import h5 as keras_h5
from deconvlint.frontends.keras import reader, worker
from deconvlint.frontends.keras.model_json import MAX_CONFIG_BYTES, MAX_JSON_DEPTH
from deconvlint.frontends.keras.reader import read_keras_file
from tests.support.cli import REPO
from tests.support.keras_files import (
    config_of,
    edited_h5,
    keras_files,
    rewrite_archive,
    weights_member,
)

pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")


@pytest.fixture
def fresh_worker():
    """The HDF5 worker forked after the test's monkeypatching (and again after the test), so
    that it reads with the patched bounds."""
    worker.WORKER.stop()
    yield
    worker.WORKER.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return keras_files(tmp_path_factory.getbasetemp() / "keras_files")


def _with_config(files, tmp_path: Path, config: bytes, name: str = "bad.keras") -> Path:
    return rewrite_archive(files["sequential"], tmp_path / name, {"config.json": config})


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (b"[1, 2]", "config.json is not a JSON object (a list)"),
        (b"null", "config.json is not a JSON object (null)"),
        (b'"Sequential"', "config.json is not a JSON object (a string)"),
        (b'{"class_name": "\xff"}', "config.json is not UTF-8 text (byte 16)"),
        (b'{"class_name": ', "config.json is not valid JSON: Expecting value: line 1 column 16"),
        (b"[" * 200_000, "config.json nests lists and objects too deeply"),
        (
            b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
            f"config.json nests lists and objects more than {MAX_JSON_DEPTH} deep",
        ),
        (b'{"n": 1' + b"0" * 5000 + b"}", "config.json is not valid JSON: Exceeds the limit"),
    ],
)
def test_a_bad_config_is_one_line(files, tmp_path: Path, config: bytes, error: str) -> None:
    with pytest.raises(LoadError) as caught:
        read_keras_file(_with_config(files, tmp_path, config))
    assert str(caught.value).startswith(error) and "\n" not in str(caught.value)


def test_a_zip_bomb_is_refused_before_it_inflates(files, tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b" " * (MAX_CONFIG_BYTES + 1))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(LoadError, match=r"^config\.json inflates to 67,108,865 bytes, more than"):
        read_keras_file(path)


def test_a_member_that_lies_about_its_size_inflates_no_further(files, tmp_path: Path) -> None:
    """The zip's sizes claim 20 bytes: reading stops there and the CRC check fails."""
    text = json.dumps(config_of(files["sequential"])).encode()
    path = tmp_path / "liar.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", text)
    data = bytearray(path.read_bytes())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = (20).to_bytes(4, "little")  # uncompressed size
    data[central + 24 : central + 28] = (20).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match=r"^cannot read config\.json from the archive: Bad CRC-32"):
        read_keras_file(path)


def test_a_large_stored_config_is_refused(files, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("deconvlint.frontends.keras.archive.MAX_CONFIG_BYTES", 1000)
    with pytest.raises(LoadError, match=r"config\.json inflates to \d[\d,]* bytes, more than"):
        read_keras_file(files["sequential"])


def test_truncated_files_are_one_line_errors(files, tmp_path: Path) -> None:
    for source in (files["nested"], files["nested"].with_suffix(".h5")):
        data = source.read_bytes()
        for cut in sorted({1, 8, 100, 512, 2048, len(data) // 3, len(data) // 2, len(data) - 1}):
            path = tmp_path / f"cut{cut}{source.suffix}"
            path.write_bytes(data[:cut])
            with pytest.raises(LoadError) as caught:
                read_keras_file(path).variables(("head",))
            assert "\n" not in str(caught.value), (source.name, cut)


def test_a_truncated_weights_member_is_a_note(files, tmp_path: Path) -> None:
    data = weights_member(files["nested"])
    path = rewrite_archive(files["nested"], tmp_path / "w.keras", {"model.weights.h5": data[:4000]})
    variables = read_keras_file(path).variables
    assert variables(("head",)) is None
    [note] = variables.notes
    assert note.startswith("layer 'head': weights not read: not an HDF5 file, or a damaged one")


def _kernel_path(h5) -> str:
    return "layers/conv2d_transpose/vars/0"


def _hostile_weights(files, tmp_path: Path, name: str, edit) -> list[str]:
    """The notes of reading layer ``up1`` from the sequential model after ``edit`` replaced
    its kernel (the dataset ``layers/conv2d_transpose/vars/0``)."""

    def replace(h5) -> None:
        del h5[_kernel_path(h5)]
        edit(h5, h5["layers/conv2d_transpose/vars"])

    data = edited_h5(weights_member(files["sequential"]), replace)
    path = rewrite_archive(files["sequential"], tmp_path / name, {"model.weights.h5": data})
    variables = read_keras_file(path).variables
    assert variables(("up1",)) is None
    return variables.notes


def test_links_out_of_the_file_are_never_followed(files, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "secret.h5"
    with h5py.File(target, "w") as h5:
        h5["kernel"] = np.full((5, 5, 6, 8), 7.0, np.float32)
    external = _hostile_weights(
        files,
        tmp_path,
        "external.keras",
        lambda h5, group: group.__setitem__("0", h5py.ExternalLink(str(target), "/kernel")),
    )
    soft = _hostile_weights(
        files,
        tmp_path,
        "soft.keras",
        lambda h5, group: group.__setitem__(
            "0", h5py.SoftLink("/layers/conv2d_transpose_1/vars/0")
        ),
    )
    assert (
        external
        == soft
        == ["layer 'up1': weights not read: variable 0 is not a dataset of the file (a link?)"]
    )


def test_virtual_and_external_datasets_are_refused(files, tmp_path: Path) -> None:
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as h5:
        h5["kernel"] = np.full((5, 5, 6, 8), 7.0, np.float32)

    def virtual(h5, group) -> None:
        layout = h5py.VirtualLayout(shape=(5, 5, 6, 8), dtype="f4")
        layout[...] = h5py.VirtualSource(str(source), "kernel", shape=(5, 5, 6, 8))
        group.create_virtual_dataset("0", layout)

    def external(h5, group) -> None:
        group.create_dataset("0", shape=(5, 5, 6, 8), dtype="f4", external=[(str(source), 0, 4800)])

    assert _hostile_weights(files, tmp_path, "virtual.keras", virtual) == [
        "layer 'up1': weights not read: variable 0 is a virtual dataset (it maps other files): not read"
    ]
    assert _hostile_weights(files, tmp_path, "external.keras", external) == [
        "layer 'up1': weights not read: variable 0 keeps its data in external files: not read"
    ]


def test_a_link_to_a_fifo_outside_is_never_opened(files, tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: a reader that followed any of these links
    would hang, and the subprocess would time out."""
    fifo = tmp_path / "outside" / "pipe"
    fifo.parent.mkdir()
    os.mkfifo(fifo)

    def every_way(h5, group) -> None:
        group["0"] = h5py.ExternalLink(str(fifo), "/kernel")
        layout = h5py.VirtualLayout(shape=(3,), maxshape=(None,), dtype="f4")
        layout[: h5py.h5s.UNLIMITED] = h5py.VirtualSource(
            str(fifo), "kernel", shape=(3,), maxshape=(None,)
        )[: h5py.h5s.UNLIMITED]
        h5["layers/conv2d_transpose_1/vars"].create_virtual_dataset("0v", layout)
        del h5["layers/conv2d_transpose_1/vars/0"]
        h5["layers/conv2d_transpose_1/vars"].create_virtual_dataset("0", layout)
        norm = h5["layers/batch_normalization/vars"]
        del norm["0"]
        norm.create_dataset("0", shape=(6,), dtype="f4", external=[(str(fifo), 0, 24)])

    data = edited_h5(
        weights_member(files["sequential"]),
        lambda h5: (
            h5.__delitem__(_kernel_path(h5)),
            every_way(h5, h5["layers/conv2d_transpose/vars"]),
        ),
    )
    path = rewrite_archive(files["sequential"], tmp_path / "fifo.keras", {"model.weights.h5": data})
    code = (
        "from deconvlint.frontends.keras.reader import read_keras_file\n"
        f"v = read_keras_file({str(path)!r}).variables\n"
        "print([v((name,)) for name in ('up1', 'up2', 'norm')])\n"
        "print(len(v.notes))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[None, None, None]", "3"]


def test_datasets_are_bounded_before_they_are_read(
    files, tmp_path: Path, monkeypatch, fresh_worker
) -> None:
    def unallocated(h5, group) -> None:  # declares 64 MiB, stores nothing
        group.create_dataset("0", shape=(4096, 4096), dtype="f4", chunks=(256, 256))

    def plugin(h5, group) -> None:  # a filter HDF5 would look for on its plugin path
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_chunk((5, 5, 6, 8))
        plist.set_filter(32099, h5py.h5z.FLAG_OPTIONAL, ())
        space = h5py.h5s.create_simple((5, 5, 6, 8))
        made = h5py.h5d.create(group.id, b"0", h5py.h5t.NATIVE_FLOAT, space, dcpl=plist)
        h5py.Dataset(made)[...] = np.ones((5, 5, 6, 8))

    def text(h5, group) -> None:
        group["0"] = np.array([b"kernel"] * 4)

    assert _hostile_weights(files, tmp_path, "bomb.keras", unallocated) == [
        "layer 'up1': weights not read: variable 0 declares 67,108,864 bytes but stores 0"
    ]
    assert _hostile_weights(files, tmp_path, "plugin.keras", plugin) == [
        "layer 'up1': weights not read: variable 0 is compressed by filter [32099] (a plugin): not read"
    ]
    assert _hostile_weights(files, tmp_path, "text.keras", text) == [
        "layer 'up1': weights not read: variable 0 is not numeric (|S6)"
    ]
    monkeypatch.setattr(keras_h5, "MAX_VARIABLE_BYTES", 500)
    worker.WORKER.stop()  # the next read forks a worker with the patched bound
    variables = read_keras_file(files["sequential"]).variables
    assert variables(("up1",)) is None and variables(("up2",)) is None
    assert variables.notes[0] == (
        "layer 'up1': weights not read: variable 0 declares 4,800 bytes, more than 500"
    )


def test_a_group_cycle_ends_within_the_link_budget(files, tmp_path: Path) -> None:
    def cycle(h5) -> None:
        for key in ("conv2d_transpose", "conv2d_transpose_1", "batch_normalization"):
            h5[f"layers/{key}/layers"] = h5["layers"]  # a hard link back up
            del h5[f"layers/{key}/vars"].attrs["name"]

    data = edited_h5(weights_member(files["sequential"]), cycle)
    path = rewrite_archive(
        files["sequential"], tmp_path / "cycle.keras", {"model.weights.h5": data}
    )
    variables = read_keras_file(path).variables
    assert variables(("up1",)) is None
    assert variables.notes == ["layer 'up1': weights not read: more than 100,000 links"]


def test_the_model_config_attribute_is_bounded(files, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(reader, "MAX_CONFIG_BYTES", 1000)
    text = json.dumps(config_of(files["sequential"]))
    for name, value in (("fixed.h5", np.bytes_(text.encode())), ("variable.h5", text)):
        with h5py.File(tmp_path / name, "w") as h5:
            h5.attrs["model_config"] = value
        with pytest.raises(LoadError) as caught:
            read_keras_file(tmp_path / name)
        assert str(caught.value) == (
            "cannot read the HDF5 file: the attribute 'model_config' is larger than 1,000 bytes"
        )
    with h5py.File(tmp_path / "many.h5", "w") as h5:
        h5.attrs["model_config"] = np.array([text] * 3, dtype=h5py.string_dtype())
    with pytest.raises(LoadError, match="holds 3 values, more than 1"):
        read_keras_file(tmp_path / "many.h5")


def test_irregular_and_missing_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.keras")
    os.mkfifo(tmp_path / "pipe.h5")
    for name in ("pipe.keras", "pipe.h5"):
        with pytest.raises(
            LoadError, match=r"^cannot read the file: not a regular file \(a FIFO\)"
        ):
            read_keras_file(tmp_path / name)
    with pytest.raises(LoadError, match=r"^file not found$"):
        read_keras_file(tmp_path / "missing.h5")
    (tmp_path / "folder.keras").mkdir()
    with pytest.raises(LoadError, match=r"^is a directory, not a Keras model file$"):
        read_keras_file(tmp_path / "folder.keras")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(LoadError, match=r"^not an HDF5 file \(no HDF5 signature\)"):
        read_keras_file(tmp_path / "text.h5")


def test_an_hdf5_file_that_makes_the_library_spin_is_given_up(
    files, tmp_path: Path, monkeypatch, fresh_worker
) -> None:
    """A global-heap object whose size field lies makes HDF5's C code loop forever (found by
    fuzzing a real file): the read runs in the worker, which is killed after its time."""
    data = files["sequential"].with_suffix(".h5").read_bytes()
    name = b"generator/up2/kernel"
    at = data.find(len(name).to_bytes(8, "little") + name)
    assert at > 0, "the weight name's heap object"
    path = tmp_path / "spins.h5"
    path.write_bytes(data[:at] + (79).to_bytes(8, "little") + data[at + 8 :])
    monkeypatch.setattr(worker, "TIMEOUT", 3.0)
    with pytest.raises(LoadError) as caught:
        read_keras_file(path)
    assert (
        str(caught.value) == "cannot read the HDF5 file: reading it with h5py: timed out after 3 s"
    )
    # the next file gets a new worker
    assert read_keras_file(files["nested"].with_suffix(".h5")).variables(("head",)) is not None


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_byte_mutations_are_errors_or_notes(files, tmp_path: Path, monkeypatch, suffix) -> None:
    """Random byte flips of real files (seeded): each is read, or a one-line LoadError; the
    variables are arrays, or None with a note; nothing else escapes, nothing hangs past the
    worker's time (fuzzing found the spinning heap this way)."""
    import random

    monkeypatch.setattr(worker, "TIMEOUT", 5.0)
    data = files["nested"].with_suffix(suffix).read_bytes()
    rng = random.Random(19)
    outcomes = {"read": 0, "error": 0}
    for case in range(60):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path = tmp_path / f"m{case}{suffix}"
        path.write_bytes(bytes(mutated))
        try:
            variables = read_keras_file(path).variables
        except LoadError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
            continue
        for layer in (("head",), ("middle", "inner", "ct"), ("middle", "mid_conv")):
            found = variables(layer)
            assert found is None or all(isinstance(a, np.ndarray) for a in found)
        assert all("\n" not in note for note in variables.notes)
        outcomes["read"] += 1
    assert outcomes["read"] and outcomes["error"], outcomes

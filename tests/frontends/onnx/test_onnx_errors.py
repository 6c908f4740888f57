"""Bad inputs: every one is a one-line LoadError without the path; external data stays inside."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.reader import graph_from_model, load_graph
from tests.support.onnx_factory import make_model, save, tensor, value_info


def pad_slice_model(pads: list[int]) -> object:
    """Pad then Slice: onnx's shape inference aborts (a C++ assertion) on a huge negative pad."""
    inits = [tensor("pads", pads, np.int64)] + [
        tensor(n, v, np.int64) for n, v in (("s", [1]), ("e", [2**62]), ("a", [3]), ("st", [2]))
    ]
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Slice", ["p", "s", "e", "a", "st"], ["y"], name="cut"),
    ]
    return make_model(nodes, [value_info("x", [1, 2, 6, 6])], [value_info("y", None)], inits)


def small_model() -> object:
    w = tensor("w", np.ones((2, 2, 3, 3)))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
    return make_model([node], [value_info("x", [1, 2, 4, 4])], [value_info("y", None)], [w])


def load_error(path: Path) -> str:
    with pytest.raises(LoadError) as info:
        load_graph(path)
    message = str(info.value)
    assert "\n" not in message and str(path) not in message and message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.onnx") == "file not found"


def test_directory(tmp_path: Path) -> None:
    assert "directory" in load_error(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is a text file\n",
        bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)),
        b"",
        b"\x08\x07",  # ir_version only
    ],
)
def test_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    assert "not an ONNX model" in load_error(path)


def test_truncated_protobuf(tmp_path: Path) -> None:
    data = small_model().SerializeToString()
    path = tmp_path / "model.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert "not an ONNX model" in load_error(path)


@pytest.mark.parametrize(
    "message",
    [
        tensor("t", np.ones((3, 4))),
        helper.make_graph([], "g", [], []),
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_opsetid("", 19),
    ],
)
def test_protobuf_of_another_message_type(tmp_path: Path, message) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(message.SerializeToString())
    assert "not an ONNX model" in load_error(path)


def test_model_without_graph(tmp_path: Path) -> None:
    model = small_model()
    model.ClearField("graph")
    assert load_error(save(model, tmp_path / "m.onnx")) == "not an ONNX model: it has no graph"


def test_not_a_model_proto() -> None:
    with pytest.raises(LoadError, match="not an ONNX model"):
        graph_from_model(helper.make_graph([], "g", [], []))


def test_no_default_opset() -> None:
    model = small_model()
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(LoadError, match=r"imports no ai\.onnx opset"):
        graph_from_model(model)


def test_undefined_value_and_cycle() -> None:
    node = helper.make_node("Add", ["x", "ghost"], ["y"], name="add")
    model = make_model([node], [value_info("x", [1])], [value_info("y", None)])
    with pytest.raises(LoadError, match=r"node 'add' \(Add\): input 'ghost' is not defined"):
        graph_from_model(model)
    cycle = [
        helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
        helper.make_node("Relu", ["a"], ["b"], name="n2"),
    ]
    model = make_model(cycle, [value_info("x", [1])], [value_info("b", None)])
    with pytest.raises(LoadError, match="cycle"):
        graph_from_model(model)


def test_nonsense_pad_and_slice_raise() -> None:
    pad = helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")
    model = make_model(
        [pad],
        [value_info("x", [1, 1, 4])],
        [value_info("y", None)],
        [tensor("pads", [0, 0, 1, 0, 0], np.int64)],
    )
    with pytest.raises(LoadError, match=r"node 'pad' \(Pad\): pads must have an even length"):
        graph_from_model(model)
    cut = helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"], name="cut")
    inits = [tensor(n, v, np.int64) for n, v in (("s", [0]), ("e", [2]), ("a", [2]), ("st", [0]))]
    model = make_model([cut], [value_info("x", [1, 1, 4])], [value_info("y", None)], inits)
    with pytest.raises(LoadError, match="steps must be non-zero"):
        graph_from_model(model)


def test_wrong_attribute_type_raises() -> None:
    w = tensor("w", np.ones((1, 1, 3)))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2.0])
    model = make_model([node], [value_info("x", [1, 1, 4])], [value_info("y", None)], [w])
    with pytest.raises(LoadError, match="attribute 'strides' must be ints, got floats"):
        graph_from_model(model)


def test_a_crash_in_onnx_shape_inference_does_not_take_us_down() -> None:
    # found by fuzzing: Pad by -2**61 at the end of W, then Slice -> std::clamp assertion
    with pytest.raises(LoadError, match=r"node 'pad' \(Pad\): pads are implausibly large"):
        graph_from_model(pad_slice_model([0, 0, 1, 1, 0, 0, 1, -(2**61)]))


def test_an_aborting_shape_inference_becomes_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from deconvlint.frontends.onnx import reader as frontend

    monkeypatch.setattr(frontend, "_infer", lambda work: os.abort())
    graph = graph_from_model(pad_slice_model([0, 0, 1, 1, 0, 0, 1, 1]))
    # without shapes the Slice cannot tell which axes are spatial
    assert [n.kind.value for n in graph.nodes] == ["shift", "barrier"]
    assert graph.notes == ["shape inference failed: onnx crashed on this model (signal 6)"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_files_only_ever_raise_load_error(tmp_path_factory, data) -> None:
    base = data.draw(st.sampled_from([small_model(), pad_slice_model([0, 0, 1, 1, 0, 0, 1, 1])]))
    raw = bytearray(base.SerializeToString())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path_factory.mktemp("fuzz") / "model.onnx"
    path.write_bytes(bytes(raw))
    try:
        load_graph(path)
    except LoadError as exc:
        assert "\n" not in str(exc) and str(exc)


# -- external data -------------------------------------------------------------------------------
def external_model(folder: Path, location: str, *, depthwise: bool = False) -> Path:
    """A model whose weight ``w`` lives in external data at ``location`` (written as is)."""
    folder.mkdir(parents=True, exist_ok=True)
    weight = np.ones((2, 1, 3, 3), np.float32) if depthwise else np.ones((2, 2, 3, 3), np.float32)
    op = "Conv" if depthwise else "ConvTranspose"
    node = helper.make_node(op, ["x", "w"], ["y"], name="layer", group=2 if depthwise else 1)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=weight.shape)
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(weight.nbytes))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    model = make_model([node], [value_info("x", [1, 2, 4, 4])], [value_info("y", None)], [w])
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


class OpenRecorder:
    """Records every path opened (``opened``) or stat'ed (``probed``) while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[str] = []
        self.probed: list[str] = []
        for module, name, log in (
            (builtins, "open", self.opened),
            (io, "open", self.opened),
            (os, "open", self.opened),
            (os, "stat", self.probed),
            (os, "lstat", self.probed),
        ):
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name), log))

    @staticmethod
    def _wrap(original, log: list[str]):
        def recorded(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)):
                log.append(os.path.abspath(os.fsdecode(path)))
            return original(path, *args, **kwargs)

        return recorded

    def touched(self, path: Path) -> bool:
        """Opened or even stat'ed."""
        return any(p.startswith(str(path)) for p in self.opened + self.probed)

    def read(self, path: Path) -> bool:
        return any(p.startswith(str(path)) for p in self.opened)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "w.bin").write_bytes(np.ones(36, np.float32).tobytes())
    return folder


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("../outside/w.bin", "climbs out"),
        ("sub/../../outside/w.bin", "climbs out"),
        ("ABSOLUTE", "absolute path"),
        ("link.bin", "symlink"),
        ("linkdir/w.bin", "symlink"),
        ("chain.bin", "symlink"),
    ],
)
def test_external_data_outside_the_folder_is_refused_untouched(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, location: str, why: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "link.bin").symlink_to(outside / "w.bin")
    (folder / "linkdir").symlink_to(outside)
    (folder / "inner.bin").symlink_to("../outside/w.bin")
    (folder / "chain.bin").symlink_to("inner.bin")
    location = str(outside / "w.bin") if location == "ABSOLUTE" else location
    path = external_model(folder, location, depthwise=True)
    recorder = OpenRecorder(monkeypatch)
    message = load_error(path)
    assert f"tensor 'w' has external data at {location!r}" in message and why in message
    assert "refusing to read it" in message
    assert not recorder.touched(outside)


@pytest.mark.records_reads
def test_external_data_inside_the_folder_is_not_read_unless_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    path = external_model(folder, "weights/w.bin")
    (folder / "weights").mkdir()
    (folder / "weights" / "w.bin").write_bytes(np.ones(36, np.float32).tobytes())
    recorder = OpenRecorder(monkeypatch)
    graph = load_graph(path)
    assert graph.nodes[0].window[0].kernel == 3 and not graph.nodes[0].notes
    assert not recorder.read(folder / "weights" / "w.bin")


def test_external_data_of_a_depthwise_conv_is_read_for_the_fixed_filter_check(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "model"
    path = external_model(folder, "w.bin", depthwise=True)
    (folder / "w.bin").write_bytes(np.full(18, 0.5, np.float32).tobytes())
    node = load_graph(path).nodes[0]
    np.testing.assert_array_equal(node.fixed_kernel, np.full((3, 3), 0.5))
    (folder / "w.bin").unlink()
    node = load_graph(path).nodes[0]
    assert node.fixed_kernel is None and any("weights not read" in n for n in node.notes)


def test_symlink_that_stays_inside_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    path = external_model(folder, "alias.bin", depthwise=True)
    (folder / "data").mkdir()
    (folder / "data" / "w.bin").write_bytes(np.full(18, 2.0, np.float32).tobytes())
    (folder / "alias.bin").symlink_to("data/../data/w.bin")
    np.testing.assert_array_equal(load_graph(path).nodes[0].fixed_kernel, np.full((3, 3), 2.0))


def test_graph_from_model_without_folder_never_reads_external_data(tmp_path: Path) -> None:
    import onnx

    path = external_model(tmp_path, "w.bin", depthwise=True)
    model = onnx.load(str(path), load_external_data=False)
    node = graph_from_model(model).nodes[0]
    assert node.fixed_kernel is None and any("folder is unknown" in n for n in node.notes)
    with pytest.raises(LoadError, match="climbs out"):
        graph_from_model(
            onnx.load(str(external_model(tmp_path / "b", "../w.bin")), load_external_data=False)
        )

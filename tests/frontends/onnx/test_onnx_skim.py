"""The skimming reader: same graph or same error as ``onnx.load``, weights decoded on demand, and
no allocation or hang on lying length fields.  (``tests/conftest.py`` also compares the two paths
on every file any test loads.)"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from deconvlint.errors import LoadError
from deconvlint.frontends.onnx.reader import load_graph, read_file
from deconvlint.frontends.onnx.skim import (
    NeedsFullParse,
    SkimError,
    SkimmedModel,
    _encode_varint,
    skim_bytes,
)
from tests.conftest import canonical
from tests.support.cli import REPO
from tests.support.onnx_factory import make_model, save, tensor, value_info

NOT_ONNX = "not an ONNX model (the file does not parse as one; truncated or another format?)"


def depthwise_blur_model(channels: int = 64) -> onnx.ModelProto:
    """A depthwise [1,2,1]^2 blur after a large ConvTranspose: the blur's kernel (576 elements,
    kept whole) and the big weight (deferred) sit side by side; the second blur's kernel is big
    enough to be deferred and must be decoded for the fixed-filter check."""
    taps = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    up = tensor("up_w", np.full((channels, channels, 4, 4), 0.25))
    blur = tensor("blur_w", np.broadcast_to(taps, (channels, 1, 3, 3)))
    wide = channels * 8
    widen = tensor("widen_w", np.ones((wide, channels, 1, 1)))
    blur2 = tensor("blur2_w", np.broadcast_to(taps, (wide, 1, 3, 3)))
    nodes = [
        helper.make_node("ConvTranspose", ["x", "up_w"], ["u"], name="up", strides=[2, 2]),
        helper.make_node("Conv", ["u", "blur_w"], ["b"], name="blur", group=channels),
        helper.make_node("Conv", ["b", "widen_w"], ["w"], name="widen"),
        helper.make_node(
            "Conv", ["w", "blur2_w"], ["y"], name="blur2", group=wide, pads=[1, 1, 1, 1]
        ),
    ]
    return make_model(
        nodes,
        [value_info("x", [1, channels, 8, 8])],
        [value_info("y", None)],
        [up, blur, widen, blur2],
    )


def both(path: Path) -> tuple[object, object]:
    def outcome(skim: bool) -> object:
        try:
            return canonical(read_file(path, skim=skim))
        except LoadError as exc:
            return f"LoadError: {exc}"

    return outcome(True), outcome(False)


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.onnx")), ids=lambda p: p.name)
def test_examples_read_the_same_both_ways(path: Path) -> None:
    skimmed, full = both(path)
    assert skimmed == full


def test_large_weights_stay_in_the_file_and_are_decoded_on_demand(tmp_path: Path) -> None:
    model = depthwise_blur_model()
    path = save(model, tmp_path / "m.onnx")
    skim = SkimmedModel.open(path)
    stubs = {t.name: t for t in skim.model.graph.initializer}
    assert skim.model.ByteSize() < 10_000 < path.stat().st_size
    assert [skim.is_deferred(n) for n in stubs] == [True, False, True, True]
    assert not stubs["up_w"].raw_data and list(stubs["up_w"].dims) == [64, 64, 4, 4]
    assert stubs["blur_w"].raw_data  # small: kept whole for the constant folder
    for original in model.graph.initializer:
        np.testing.assert_array_equal(
            skim.tensor(original.name), onnx.numpy_helper.to_array(original)
        )
    with pytest.raises(KeyError):
        skim.tensor("nope")
    graph = load_graph(path)
    kernels = {n.name: n.fixed_kernel for n in graph.nodes}
    taps = np.outer([1, 2, 1], [1, 2, 1]) / 16
    np.testing.assert_allclose(kernels["blur"], taps)
    np.testing.assert_allclose(kernels["blur2"], taps)  # decoded from the file
    assert kernels["up"] is None


def test_only_the_asked_tensor_is_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(depthwise_blur_model(), tmp_path / "m.onnx")
    asked: list[str] = []
    original = SkimmedModel.tensor_proto

    def recorded(self: SkimmedModel, name: str) -> object:
        asked.append(name)
        return original(self, name)

    monkeypatch.setattr(SkimmedModel, "tensor_proto", recorded)
    read_file(path, skim=True)
    assert asked == ["blur2_w"]  # the depthwise kernel only, never the big ConvTranspose weight


def test_a_file_changed_after_the_skim_is_not_read_as_if_it_had_not(tmp_path: Path) -> None:
    path = save(depthwise_blur_model(), tmp_path / "m.onnx")
    skim = SkimmedModel.open(path)
    assert skim.tensor("up_w").shape == (64, 64, 4, 4)  # read after the mapping is gone
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="changed since it was read"):
        skim.tensor("up_w")


def model_bytes() -> bytes:
    w = tensor("w", np.ones((2, 2, 3, 3)))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
    model = make_model([node], [value_info("x", [1, 2, 4, 4])], [value_info("y", None)], [w])
    return model.SerializeToString()


def tag(field: int, wire: int) -> bytes:
    return _encode_varint(field << 3 | wire)


@pytest.mark.parametrize(
    "content",
    [
        tag(7, 2) + _encode_varint(2**60) + b"\x0a\x00",  # graph claims 2**60 bytes
        tag(7, 2) + _encode_varint(6) + tag(5, 2) + _encode_varint(2**60) + b"\x00",
        tag(7, 2) + _encode_varint(5) + tag(5, 2) + b"\x03" + tag(9, 2) + _encode_varint(2**60),
        tag(7, 2) + b"\xff" * 20,  # a varint that never ends
        tag(7, 6) + b"\x00",  # wire type 6
        b"\x00\x01",  # field number 0
    ],
    ids=["graph", "initializer", "raw_data", "varint", "wire6", "field0"],
)
def test_lying_framing_is_the_usual_error_at_once(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(model_bytes() + content)
    start = time.perf_counter()
    with pytest.raises(LoadError) as info:
        load_graph(path)
    assert str(info.value) == NOT_ONNX
    assert time.perf_counter() - start < 30  # generous: a hang or a 2**60 allocation never ends
    with pytest.raises(SkimError):
        skim_bytes(model_bytes() + content)


def test_every_truncation_gives_what_the_full_load_gives(tmp_path: Path) -> None:
    content = model_bytes()
    for cut in range(0, len(content), 3):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(content[:cut])
        skimmed, full = both(path)
        assert skimmed == full, f"cut at {cut}"


def test_groups_fall_back_to_the_full_parser(tmp_path: Path) -> None:
    # an unknown field 99 encoded as a group: legal protobuf that onnx.load accepts
    content = model_bytes() + tag(99, 3) + tag(1, 0) + b"\x05" + tag(99, 4)
    with pytest.raises(NeedsFullParse):
        skim_bytes(content)
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    assert [n.name for n in load_graph(path).nodes] == ["up"]


def test_repeated_graph_fields_merge_as_protobuf_does(tmp_path: Path) -> None:
    first = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])],
        "g",
        [value_info("x", [1, 2, 4, 4])],
        [value_info("y", None)],
    )
    second = onnx.GraphProto()
    second.initializer.append(tensor("w", np.ones((2, 2, 64, 64))))  # large: deferred
    model = helper.make_model(first, opset_imports=[helper.make_opsetid("", 19)])
    content = model.SerializeToString() + tag(7, 2) + _encode_varint(second.ByteSize())
    path = tmp_path / "m.onnx"
    path.write_bytes(content + second.SerializeToString())
    skimmed, full = both(path)
    assert skimmed == full and "LoadError" not in str(skimmed)


def test_a_text_format_extension_goes_to_onnx_load(tmp_path: Path) -> None:
    path = tmp_path / "m.txtpb"
    onnx.save(onnx.ModelProto.FromString(model_bytes()), path, format="textproto")
    assert [n.name for n in load_graph(path).nodes] == ["up"]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    skimmed, full = both(path)
    assert skimmed == full and str(skimmed).startswith("LoadError: not an ONNX model")


@pytest.mark.parametrize("field, length", [(4, 65535), (10, 65532), (7, 65536)])
def test_corrupt_packed_data_is_refused_like_the_full_parser(
    tmp_path: Path, field: int, length: int
) -> None:
    header = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 64, 64])
    data = b"\x01" * (length - 1) + (b"\x80" if field == 7 else b"\x01")
    body = header.SerializeToString() + tag(field, 2) + _encode_varint(length) + data
    graph = tag(5, 2) + _encode_varint(len(body)) + body
    content = model_bytes() + tag(7, 2) + _encode_varint(len(graph)) + graph
    with pytest.raises(SkimError):
        skim_bytes(content)
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    skimmed, full = both(path)
    assert skimmed == full == f"LoadError: {NOT_ONNX}"


def _files_to_frame(tmp_path: Path) -> list[Path]:
    from tests.frontends.onnx.test_hostile_onnx import nested_ifs

    paths = sorted((REPO / "examples").glob("*.onnx"))
    paths.append(save(depthwise_blur_model(8), tmp_path / "blur.onnx"))
    for depth in (3, 40, 120):  # 120: deeper than protobuf (and the framing) will go
        paths.append(tmp_path / f"ifs{depth}.onnx")
        paths[-1].write_bytes(nested_ifs(depth))
    return paths


def test_framing_every_field_gives_the_same_graph_or_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no field short enough to keep verbatim, the skim frames every message it knows,
    down to the attributes of subgraphs' nodes, and must still read what onnx.load reads."""
    import deconvlint.frontends.onnx.skim as skim

    for path in _files_to_frame(tmp_path):
        monkeypatch.setattr(skim, "SKIP_ABOVE", 0)
        framed = both(path)
        monkeypatch.setattr(skim, "SKIP_ABOVE", 1 << 20)
        assert framed == both(path), path.name
        assert framed[0] == framed[1], path.name
    assert framed[0] == f"LoadError: {NOT_ONNX}"  # the 120 deep Ifs


def test_a_long_doc_string_is_left_out_and_the_weight_around_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A doc string longer than SKIP_ABOVE is not in the skimmed model; a deferred weight
    whose doc string was left out still reads whole from the parts of the file around it."""
    import deconvlint.frontends.onnx.skim as skim

    model = depthwise_blur_model(8)
    model.doc_string = "m" * 100
    model.graph.node[0].doc_string = "n" * 100
    model.graph.initializer[3].doc_string = "t" * 100  # blur2_w: 576 elements, kept whole
    model.graph.initializer[0].doc_string = "u" * 100  # up_w: deferred
    model.graph.initializer[0].CopyFrom(tensor("up_w", np.arange(8 * 8 * 4 * 70.0)
                                               .reshape(8, 8, 4, 70)))  # fmt: skip
    model.graph.initializer[0].doc_string = "u" * 100
    path = save(model, tmp_path / "doc.onnx")
    monkeypatch.setattr(skim, "SKIP_ABOVE", 50)
    opened = SkimmedModel.open(path)
    assert opened.model.doc_string == opened.model.graph.node[0].doc_string == ""
    assert [t.doc_string for t in opened.model.graph.initializer] == [""] * 4
    assert opened.deferred_size("up_w") == model.graph.initializer[0].ByteSize()
    whole = opened.tensor_proto("up_w")
    assert whole.doc_string == "" and whole.raw_data == model.graph.initializer[0].raw_data
    np.testing.assert_array_equal(opened.tensor("blur2_w"), onnx.numpy_helper.to_array(
        model.graph.initializer[3]))  # fmt: skip

"""Hostile ONNX files, black-box: every one gives findings or one line and exit code 2.

These go through :func:`deconvlint.engine.check_path` and the CLI only, so they hold for any
file reader.  The CLI run caps the address space (``RLIMIT_AS``) and the wall time: a case that
needs gigabytes or hangs fails the test instead of the machine.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from deconvlint.engine import check_path
from tests.support.cli import run_cli
from tests.support.onnx_factory import make_model, tensor, value_info

#: Address space the CLI may use on the whole hostile set (it needs ~300 MB).
MEMORY_CAP = 2 << 30


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def conv_transpose(attrs=None, *, weight=(2, 2, 3, 3), x=(1, 2, 4, 4), opset=19, inputs=("x", "w")):
    node = helper.make_node("ConvTranspose", list(inputs), ["y"], name="up", **(attrs or {}))
    w = tensor("w", np.ones(weight))
    return make_model([node], [value_info("x", list(x))], [value_info("y", None)], [w], opset=opset)


def nested_ifs(depth: int) -> bytes:
    """``depth`` If nodes, each holding the next in its then-branch, a ConvTranspose innermost;
    written byte by byte, since the protobuf library refuses to build what it cannot parse."""
    w = tensor("w", np.ones((1, 1, 3, 3))).SerializeToString()
    leaf = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])],
        "leaf",
        [],
        [value_info("y", None)],
    ).SerializeToString()
    body, y = leaf, value_info("y", None).SerializeToString()
    for d in range(depth):
        then = field(1, b"then_branch") + b"\x50\x05" + field(6, body)  # type GRAPH, g
        other = field(1, b"else_branch") + b"\x50\x05" + field(6, leaf)
        node = field(1, b"c") + field(2, b"y") + field(3, b"if%d" % d) + field(4, b"If")
        body = field(1, node + field(5, then) + field(5, other)) + field(12, y)
    inputs = [value_info("x", [1, 1, 4, 4]), value_info("c", [], TensorProto.BOOL)]
    graph = body + field(5, w) + b"".join(field(11, v.SerializeToString()) for v in inputs)
    return b"\x08\x08" + field(7, graph) + field(8, helper.make_opsetid("", 19).SerializeToString())


def resize(scales) -> object:
    inits = [tensor("roi", [], np.float32), tensor("scales", scales, np.float32)]
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="rs", mode="nearest")
    return make_model([node], [value_info("x", [1, 1, 4, 4])], [value_info("y", None)], inits)


def _huge_weight() -> object:
    model = conv_transpose({"strides": [2, 2]})
    del model.graph.initializer[:]
    model.graph.initializer.append(
        TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2, 2**20, 2**20])
    )
    return model


def _domain(imported: bool) -> object:
    model = conv_transpose({"strides": [2, 2]})
    model.graph.node[0].domain = "com.example"
    if imported:
        model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


def _relu(inputs, outputs) -> object:
    nodes = [
        helper.make_node("Relu", [i], [o], name=f"r{k}")
        for k, (i, o) in enumerate(zip(inputs, outputs, strict=True))
    ]
    return make_model(nodes, [value_info("x", [1, 1, 4, 4])], [value_info("y", None)])


def _nan_weights() -> object:
    """A quiet and a signalling NaN among the taps (a fuzzed byte flip made the second; both
    readers must agree on it)."""
    model = conv_transpose({"strides": [2, 2]})
    taps = np.ones((2, 2, 3, 3), np.float32)
    taps.reshape(-1)[:2] = np.array([0x7FC00000, 0x7FA00000], np.uint32).view(np.float32)
    model.graph.initializer[0].CopyFrom(tensor("w", taps))
    return model


SMALL = conv_transpose({"strides": [2, 2]})

#: name -> (the model or the bytes of the file, "error" | "findings" | "clean", fragment of the error or None)
CASES: dict[str, tuple[Callable[[], Any], str, str | None]] = {
    "length field claiming 2 TiB": (
        lambda: b"\x08\x08\x3a" + varint(2**41) + b"\x0a\x01x", "error", None),
    "unknown field claiming 2 TiB": (lambda: b"\x08\x08" + field(99, b"")[:2] + varint(2**41), "error", None),
    "varint of twenty bytes": (lambda: b"\x08" + b"\xff" * 20, "error", None),
    "nested subgraphs 1000 deep": (lambda: nested_ifs(1000), "error", None),
    "nested subgraphs 20 deep": (lambda: nested_ifs(20), "findings", None),
    "a GraphProto": (lambda: SMALL.graph.SerializeToString(), "error", "not an ONNX model"),
    "a NodeProto": (lambda: SMALL.graph.node[0].SerializeToString(), "error", "not an ONNX model"),
    "a TensorProto": (lambda: SMALL.graph.initializer[0].SerializeToString(), "error", None),
    "empty file": (lambda: b"", "error", None),
    "empty graph": (lambda: make_model([], [], []), "clean", None),
    "self reference": (
        lambda: _relu(["y"], ["y"]), "error", "cycle through node 'r0'"),
    "cycle": (lambda: _relu(["b", "a"], ["a", "b"]), "error", "cycle"),
    "missing input": (
        lambda: _relu(["ghost"], ["y"]), "error", "'ghost' is not defined"),
    "missing weight": (
        lambda: conv_transpose(inputs=("x",)), "error", "weight input W is missing"),
    "stride 0": (lambda: conv_transpose({"strides": [0, 2]}), "error", "strides must be positive"),
    "stride -2": (lambda: conv_transpose({"strides": [-2, 2]}), "error", "strides must be positive"),
    "negative pads": (lambda: conv_transpose({"pads": [-5] * 4}), "error", "pads must be non-negative"),
    "pads of 2**62": (lambda: conv_transpose({"pads": [2**62] * 4}), "error", "implausibly large"),
    "strides of wrong type": (lambda: conv_transpose({"strides": [2.0, 2.0]}), "error", "must be ints, got floats"),
    "group of wrong type": (lambda: conv_transpose({"group": "two"}), "error", "must be int, got string"),
    "kernel_shape disagrees with the weight": (
        lambda: conv_transpose({"kernel_shape": [5, 5]}), "error", "disagrees with the weight"),
    "input dims of 2**40": (
        lambda: conv_transpose({"strides": [2, 2]}, x=(1, 2, 2**40, 2**40)), "findings", None),
    "weight dims of 2**40 without data": (lambda: _huge_weight(), "error", "tensor 'w'"),
    "opset from the future": (
        lambda: conv_transpose({"strides": [2, 2]}, opset=10**6), "findings", None),
    "negative opset": (
        lambda: conv_transpose({"strides": [2, 2]}, opset=-5), "error", "opset"),
    "unknown domain": (lambda: _domain(False), "clean", None),
    "unknown imported domain": (lambda: _domain(True), "clean", None),
    "NaN resize scale": (lambda: resize([1, 1, float("nan"), 2]), "error", "scales must be positive"),
    "resize scale 1e30": (lambda: resize([1, 1, 1e30, 1e30]), "clean", None),
    "NaN weights": (_nan_weights, "findings", None),
}  # fmt: skip


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for index, (name, (build, _, _)) in enumerate(CASES.items()):
        content = build()
        raw = content if isinstance(content, bytes) else content.SerializeToString()
        (folder / f"case{index:02d}.onnx").write_bytes(raw)
        (folder / f"case{index:02d}.txt").write_text(name)
    return folder


def _path(folder: Path, name: str) -> Path:
    return folder / f"case{list(CASES).index(name):02d}.onnx"


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file(hostile_folder: Path, name: str) -> None:
    _build, outcome, fragment = CASES[name]
    result = check_path(_path(hostile_folder, name))
    if outcome == "error":
        assert result.error is not None, f"{name}: expected an error, got {result.findings}"
        assert "\n" not in result.error and "internal error" not in result.error
        assert fragment is None or fragment in result.error, result.error
    else:
        assert result.error is None, f"{name}: {result.error}"
        assert bool(result.findings) == (outcome == "findings"), result.findings


def test_truncated_at_every_byte_offset(tmp_path: Path) -> None:
    raw = SMALL.SerializeToString()
    path = tmp_path / "model.onnx"
    outcomes = set()
    for length in range(len(raw)):
        path.write_bytes(raw[:length])
        result = check_path(path)
        outcomes.add("error" if result.error else "ok")
        if result.error:
            assert "\n" not in result.error and "internal error" not in result.error, length
    assert "error" in outcomes


def test_random_byte_flips(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    raw = SMALL.SerializeToString()
    path = tmp_path / "model.onnx"
    for _ in range(300):
        mangled = bytearray(raw)
        for position in rng.integers(0, len(raw), rng.integers(1, 5)):
            mangled[position] = rng.integers(0, 256)
        path.write_bytes(bytes(mangled))
        result = check_path(path)
        assert result.error is None or ("\n" not in result.error and result.error)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def test_cli_on_every_hostile_file_with_capped_memory_and_time(hostile_folder: Path) -> None:
    paths = sorted(str(p) for p in hostile_folder.glob("*.onnx"))
    proc = run_cli("--format", "json", *paths, timeout=120, preexec_fn=_capped)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    results = {r["path"]: r for r in json.loads(proc.stdout)["results"]}
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == sum(1 for r in results.values() if r["error"])
    for name, (_build, outcome, _fragment) in CASES.items():
        result = results[str(_path(hostile_folder, name))]
        assert (result["error"] is not None) == (outcome == "error"), (name, result)


@pytest.mark.parametrize(("claimed", "refused"), [(10**9, True), (5000, False)])
def test_large_initializer_dims_are_checked_against_its_data_by_both_readers(
    tmp_path: Path, claimed: int, refused: bool
) -> None:
    """The skimming reader keeps only the header of a large initializer; the size check must
    still see how much data the file holds for it, exactly as after a full load."""
    from deconvlint.errors import LoadError
    from deconvlint.frontends.onnx.reader import read_file

    weight = helper.make_tensor("w", TensorProto.FLOAT, [5000], np.ones(5000, np.float32))
    del weight.dims[:]
    weight.dims.append(claimed)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [weight],
    )
    path = tmp_path / "big_dims.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    outcomes = []
    for skim in (True, False):
        try:
            read_file(path, skim=skim)
            outcomes.append(None)
        except LoadError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] is not None) == refused
    if refused:
        assert "claim 1000000000 elements" in outcomes[0]


#: What a sparse file claims in one field: twice the CLI's whole address-space cap.
CLAIMED = 4 << 30
SPARSE_CASES = ["model doc_string", "unknown model field", "node doc_string",
                "initializer doc_string"]  # fmt: skip


def _sparse_model(where: str) -> tuple[bytes, int, onnx.ModelProto]:
    """A model whose last bytes open a ``CLAIMED``-byte field that the file leaves as a hole:
    the bytes to write, the file's size, and the same model without that field.  The field is
    the model's doc string, its field 1000 (which no ONNX version knows), the doc string of the
    graph's node, or that of its initializer (large enough to be read lazily)."""
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
    weight = tensor("w", np.full((8, 8, 9, 9), 0.25) + np.arange(81).reshape(9, 9) / 64)
    plain = make_model([node], [value_info("x", [1, 8, 8, 8])], [value_info("y", None)], [weight])
    envelope, graph = onnx.ModelProto(), onnx.GraphProto()
    envelope.CopyFrom(plain)
    envelope.ClearField("graph")
    graph.CopyFrom(plain.graph)
    hole = {"model doc_string": (None, 6), "unknown model field": (None, 1000),
            "node doc_string": (1, 6), "initializer doc_string": (5, 12)}[where]  # fmt: skip
    last, number = hole
    opening = varint(number << 3 | 2) + varint(CLAIMED)
    if last is None:
        head = envelope.SerializeToString() + field(7, graph.SerializeToString()) + opening
        return head, len(head) + CLAIMED, plain
    inner = (node if last == 1 else weight).SerializeToString() + opening
    graph.ClearField("node" if last == 1 else "initializer")
    graph_head = graph.SerializeToString() + varint(last << 3 | 2)
    graph_head += varint(len(inner) + CLAIMED) + inner
    head = envelope.SerializeToString() + varint(7 << 3 | 2)
    head += varint(len(graph_head) + CLAIMED) + graph_head
    return head, len(head) + CLAIMED, plain


def _cli_json(model: Path) -> tuple[int, str, dict[str, Any]]:
    proc = run_cli(
        "--format", "json", "--extend-select", "DL007", str(model), timeout=60, preexec_fn=_capped
    )
    result = json.loads(proc.stdout)["results"][0] if proc.stdout else {}
    result.pop("path", None)
    return proc.returncode, proc.stderr, result


@pytest.mark.parametrize("where", SPARSE_CASES)
def test_a_sparse_file_claiming_gigabytes_in_an_unneeded_field_is_read_in_bounded_memory(
    tmp_path: Path, where: str
) -> None:
    """A 4 GiB doc string (or unknown field) in a small sparse file was copied whole by the
    skimming reader: 12.6 GB and 20 s.  It is skipped by its length now: the CLI stays under its
    address-space cap and reports what it reports on the model without that field (DL007 reads
    the initializer's data, around the doc string that follows it)."""
    head, size, plain = _sparse_model(where)
    path, plain_path = tmp_path / "sparse.onnx", tmp_path / "plain.onnx"
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    assert path.stat().st_size > CLAIMED > 1000 * path.stat().st_blocks * 512  # a hole
    plain_path.write_bytes(plain.SerializeToString())
    got, want = _cli_json(path), _cli_json(plain_path)
    assert want[0] == 1 and {f["rule"] for f in want[2]["findings"]} >= {"DL001", "DL007"}
    assert got == want

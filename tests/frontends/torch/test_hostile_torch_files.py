"""Torch files that try to run code as deconvlint reads them: nothing from them runs without
``--trust-pickle``, a ``*.onnx`` name or a folder never reaches torch, and sniffing stays bounded.

Every payload writes a marker file when it runs; each test checks that the marker never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from deconvlint.frontends import sniff as sniffing
from deconvlint.frontends.sniff import FileFormat, sniff
from tests.cli.test_cli_torch import error_lines, headers, run
from tests.support.cli import REPO, cli_env, run_cli

torch = pytest.importorskip("torch")
nn = torch.nn

pytestmark = pytest.mark.torch


class Up(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.up(x)


class _WritesMarker:
    """Unpickling it runs ``exec``, which writes the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _rewrite(source: Path, target: Path, change) -> Path:
    """A copy of the zip ``source`` whose members ``change(members, root)`` rewrote."""
    with zipfile.ZipFile(source) as archive:
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    root = next(iter(members)).split("/")[0]
    members = change(members, root)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _pickled_weight(marker: Path):
    def change(members: dict, root: str) -> dict:
        config_name = f"{root}/data/weights/model_weights_config.json"
        config = json.loads(members[config_name])
        entry = config["config"]["up.weight"]
        entry["use_pickle"] = True
        members[config_name] = json.dumps(config).encode()
        members[f"{root}/data/weights/{entry['path_name']}"] = pickle.dumps(_WritesMarker(marker))
        return members

    return change


def _pickled_sample_inputs(marker: Path):
    def change(members: dict, root: str) -> dict:
        members[f"{root}/data/sample_inputs/model.pt"] = pickle.dumps(_WritesMarker(marker))
        return members

    return change


def _shape_expression(marker: Path):
    """``sympy.sympify`` ``eval``-s the exported program's shape expressions."""
    code = f"__import__('builtins').exec(\"open({str(marker)!r}, 'w').write('ran')\")"

    def change(members: dict, root: str) -> dict:
        name = f"{root}/models/model.json"
        text, count = re.subn(
            r'"expr_str": "[^"]*"',
            lambda _: '"expr_str": ' + json.dumps(code),
            members[name].decode(),
            count=1,
        )
        assert count == 1
        members[name] = text.encode()
        return members

    return change


def _export(path: Path, dynamic: bool) -> Path:
    shapes = {"x": {2: torch.export.Dim("H", min=2, max=64)}} if dynamic else None
    program = torch.export.export(Up(), (torch.randn(1, 4, 8, 8),), dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


EVIL_PT2 = {
    "pickled-weight": (_pickled_weight, False, "stores the weight 'up.weight' as a pickle"),
    "sample-inputs": (_pickled_sample_inputs, False, None),  # never read: the file loads
    "shape-expression": (_shape_expression, True, "has a shape expression"),
}


@pytest.mark.parametrize("case", list(EVIL_PT2))
def test_a_pt2_archive_runs_nothing_from_the_file(tmp_path: Path, case: str) -> None:
    change, dynamic, refusal = EVIL_PT2[case]
    marker = tmp_path / "ran"
    clean = _export(tmp_path / "clean.pt2", dynamic)
    _rewrite(clean, tmp_path / "evil.pt2", change(marker))
    proc = run("evil.pt2", "--format", "json", cwd=tmp_path)
    assert not marker.exists(), "the archive ran code as it was read"
    if refusal is None:
        assert proc.returncode == 1, proc.stderr
        assert {f["rule"] for f in json.loads(proc.stdout)["results"][0]["findings"]} >= {"DL001"}
        return
    (line,) = error_lines(proc)
    assert line.startswith("evil.pt2: error: a torch.export archive that "), line
    assert refusal in line and "--trust-pickle" in line


def test_a_pt2_weight_claiming_more_elements_than_its_record_holds_is_refused(
    tmp_path: Path,
) -> None:
    def inflate(members: dict, root: str) -> dict:
        config_name = f"{root}/data/weights/model_weights_config.json"
        config = json.loads(members[config_name])
        meta = config["config"]["up.weight"]["tensor_meta"]
        meta["sizes"] = [{"as_int": 1 << 20}] * 4  # 2**80 elements over a 576-byte record
        meta["strides"] = [{"as_int": 0}] * 4
        members[config_name] = json.dumps(config).encode()
        return members

    _rewrite(_export(tmp_path / "clean.pt2", dynamic=False), tmp_path / "big.pt2", inflate)
    (line,) = error_lines(run("big.pt2", cwd=tmp_path))
    assert "has a weight 'up.weight' larger than the data it holds" in line, line


def test_a_clean_pt2_reads_the_same_with_and_without_trust(tmp_path: Path) -> None:
    _export(tmp_path / "dyn.pt2", dynamic=True)
    safe = run("dyn.pt2", "--format", "json", cwd=tmp_path)
    trusted = run("dyn.pt2", "--format", "json", "--trust-pickle", cwd=tmp_path)
    assert safe.returncode == trusted.returncode == 1, (safe.stderr, trusted.stderr)
    assert json.loads(safe.stdout) == json.loads(trusted.stdout)


@pytest.mark.parametrize(
    "text",
    [
        "Add(Mul(Integer(4), Symbol('s53', positive=True, integer=True)), Integer(2))",
        "FloorDiv(Symbol('s0', integer=True), Integer(2))",
        "Pow(Symbol('s0', integer=True), Integer(2))",
    ],
)
def test_shape_expressions_torch_writes_pass(text: str) -> None:
    from deconvlint.frontends.torch.pt2 import check_program

    check_program({"expr_str": text})


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('id')",
        "Symbol('s0').__class__",
        "Integer(9) ** Integer(9)",
        "Pow(Integer(9), Integer(10000000000))",
        "Pow(Pow(Pow(Symbol('s0'), Integer(2)), Integer(2)), Integer(2))",
        "Float('1.0', precision=1000000000)",
        "Symbol('x; import os')",
        "lambda: 0",
        "preview(Symbol('s0'))",
    ],
)
def test_shape_expressions_that_could_run_code_or_explode_are_refused(text: str) -> None:
    from deconvlint.frontends.torch.pt2 import UnsafeArchive, check_program

    with pytest.raises(UnsafeArchive):
        check_program({"expr_str": text})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("target", "torch.os.system"),
        ("target", "torch.ops.load_library"),
        ("target", "torch.ops.import_module.x"),
        ("target", "builtins.exec"),
        ("target", "#ext:op"),
        ("as_operator", "torch.os.system"),
        (
            "in_spec",
            '[1, {"type": "collections.defaultdict", "context": "{}", "children_spec": []}]',
        ),
        (
            "out_spec",
            '[1, {"type": "builtins.tuple", "context": "{\\"__enum__\\": 1, \\"fqn\\": \\"os:X\\"}",'
            ' "children_spec": []}]',
        ),
    ],
)
def test_node_targets_and_tree_specs_that_import_or_call_are_refused(key: str, value: str) -> None:
    from deconvlint.frontends.torch.pt2 import UnsafeArchive, check_program

    program = {"nodes": [{key: value, "inputs": [], "outputs": []}]}
    if key != "target":
        program = {"signature": {key: value}}
    with pytest.raises(UnsafeArchive):
        check_program(program)


# --- TorchScript ---------------------------------------------------------------------------

WRITES_ON_LOAD = '''
import sys
from typing import Tuple

import torch
from torch import nn


class Hook(nn.Module):
    """Its __setstate__, which torch.jit.load runs, creates a file with torch.from_file."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.size = 0

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool, int]:
        return (self.target, self.training, self.size)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool, int]) -> None:
        self.target = state[0]
        self.training = state[1]
        self.size = torch.from_file(self.target, shared=True, size=16).numel()

    def forward(self, x):
        return x


class Model(nn.Module):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.hook = Hook(target)
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.up(self.hook(x))


torch.jit.script(Model(sys.argv[1])).save(sys.argv[2])
'''


def test_torchscript_needs_trust_because_loading_it_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    (tmp_path / "make_evil.py").write_text(WRITES_ON_LOAD)  # torch.jit.script reads the source
    made = subprocess.run(
        [sys.executable, "make_evil.py", str(marker), "evil.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr
    marker.unlink(missing_ok=True)
    (line,) = error_lines(run("evil.pt", "--input-shape", "1,4,8,8", cwd=tmp_path))
    assert not marker.exists(), "torch.jit.load ran the archive's __setstate__"
    assert line.startswith("evil.pt: error: a TorchScript archive, not loaded"), line
    assert "--trust-pickle" in line
    trusted = run("--trust-pickle", "evil.pt", "--input-shape", "1,4,8,8", cwd=tmp_path)
    assert trusted.returncode == 1, trusted.stderr
    assert marker.exists()  # trusted: it is loaded, and its code runs, as the flag says


# --- what is sniffed, and how much -----------------------------------------------------------


def test_a_torch_archive_named_onnx_or_found_in_a_folder_is_read_as_onnx(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    models = tmp_path / "models"
    models.mkdir()
    clean = _export(tmp_path / "clean.pt2", dynamic=False)
    _rewrite(clean, models / "decoder.onnx", _pickled_weight(marker))
    for args in (["models"], ["models/decoder.onnx"]):
        proc = run(*args, cwd=tmp_path)
        assert not marker.exists(), f"deconvlint {' '.join(args)} ran the archive's pickle"
        (line,) = error_lines(proc)
        assert line.startswith(f"{os.path.join('models', 'decoder.onnx')}: error: not an ONNX")


def _onnx_zip_polyglot(members: dict[str, bytes]) -> bytes:
    """One file that is a valid ONNX model (``onnx.load`` and ``onnx.checker`` accept it) and a
    zip holding ``members``: it starts with ``PK`` (ModelProto field 10, a varint, unknown to
    onnx) and carries the zip in an unknown length-delimited field at its end, where zip readers
    look for the central directory."""
    from onnx import helper

    from tests.support.onnx_factory import make_model, tensor, value_info

    weight = tensor("w", [[[[1.0] * 3] * 3] * 4] * 4)
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2], pads=[1, 1, 1, 1]
    )
    model = make_model(
        [node], [value_info("x", [1, 4, 8, 8])], [value_info("y", [1, 4, 15, 15])], [weight]
    ).SerializeToString()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    blob = buffer.getvalue()
    unknown = bytes([0xC2, 0x3E])  # field 1000, wire type 2
    length = bytearray()
    n = len(blob)
    while n >= 0x80:
        length.append((n & 0x7F) | 0x80)
        n >>= 7
    length.append(n)
    return b"PK" + model + unknown + bytes(length) + blob


def test_an_onnx_zip_polyglot_named_onnx_is_checked_as_onnx(tmp_path: Path) -> None:
    import onnx

    marker = tmp_path / "ran"
    clean = _export(tmp_path / "clean.pt2", dynamic=False)
    evil = _rewrite(clean, tmp_path / "evil.pt2", _pickled_weight(marker))
    with zipfile.ZipFile(evil) as archive:
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    data = _onnx_zip_polyglot(members)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "decoder.onnx").write_bytes(data)
    onnx.checker.check_model(onnx.load_from_string(data))
    assert zipfile.is_zipfile(tmp_path / "models" / "decoder.onnx")
    proc = run("models", cwd=tmp_path)
    assert not marker.exists(), "the polyglot was read as a torch archive"
    assert proc.returncode == 1, proc.stderr
    assert headers(proc.stdout)[0].startswith(f"{os.path.join('models', 'decoder.onnx')}:up: DL001")


def _pickle_of_ops(count: int) -> bytes:
    """A pickle of ``count`` NONE opcodes: cheap to write, a long walk for the opcode reader."""
    return b"\x80\x02" + b"N" * count + b"."


def test_sniffing_walks_a_bounded_number_of_pickle_opcodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickletools

    path = tmp_path / "ops.pkl"
    path.write_bytes(_pickle_of_ops(20_000_000))  # 20 MB: a 49-second walk unbounded
    walked = 0
    genops = pickletools.genops

    def counted(stream):
        nonlocal walked
        for item in genops(stream):
            walked += 1
            yield item

    monkeypatch.setattr(pickletools, "genops", counted)
    assert sniff(path) is FileFormat.PICKLED_OBJECT
    assert walked <= sniffing.MAX_PICKLE_OPS + 1, walked


def _deflate_bomb(path: Path, name: str, head: bytes, unit: bytes, repeats: int, tail: bytes):
    """A zip whose member ``name`` inflates to ``head + unit * repeats + tail``, written without
    deflating it all: after a full flush the compressor starts afresh, so every copy of ``unit``
    compresses to the same block, written ``repeats`` times."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    last = compressor.compress(tail) + compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(repeats):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(unit) * repeats + len(tail)
    packed = len(first) + len(block) * repeats + len(last)
    encoded = name.encode()
    sizes = (crc, packed, size, len(encoded))
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, *sizes, 0) + encoded)
        out.write(first)
        for _ in range(repeats):
            out.write(block)
        out.write(last)
        offset = out.tell()
        central = (
            struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0, 0, 0
            )
            + encoded
        )
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0))
    return path


@pytest.mark.slow
def test_a_zip_bomb_is_sniffed_in_bounded_memory_and_costs_only_its_own_result(
    tmp_path: Path,
) -> None:
    import resource
    import shutil

    # 3 GiB of pickle opcodes inflated from 3 MB on disk
    _deflate_bomb(
        tmp_path / "model.bin", "archive/data.pkl", b"\x80\x02", b"N" * (1 << 20), 3 << 10, b"."
    )
    shutil.copy(REPO / "examples" / "cyclegan_decoder.onnx", tmp_path / "good.onnx")
    cap = 3 << 30  # less than the member inflates to

    def capped() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    for jobs in ("1", "2"):
        proc = run_cli(
            "-j",
            jobs,
            "-q",
            "model.bin",
            "good.onnx",
            cwd=tmp_path,
            preexec_fn=capped,
            env=cli_env(),
        )
        (line,) = error_lines(proc)
        assert line.startswith("model.bin: error: a pickled Python object"), line
        assert headers(proc.stdout)[0].startswith("good.onnx:decoder.up1: DL001"), proc.stdout

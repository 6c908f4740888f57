"""Hostile names in the output: node and file names that try to forge lines, drive the terminal,
reorder text or break an encoding.  Every human-readable output escapes them (one function,
:func:`deconvlint.printable.printable`), the machine-readable ones keep them exact but encodable,
and no output file is ever left empty or half-written.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from deconvlint.cli.parallel import Progress
from deconvlint.core.chainspec import parse_chain
from tests.support.cli import REPO, run_cli
from tests.support.onnx_factory import model_from_chain

FORGED = "::error file=evil.py,line=1::forged"
#: A node name carrying a workflow command after a line break, an ESC sequence, bidi controls,
#: C1 and DEL controls, a line separator and a NEL.
HOSTILE = f"x\n{FORGED} \x1b[2J\x1b]0;title\x07\u202egnp.exe\u2066\u2069\x85\x9b\x7f\u2028\r"
#: What may not reach a terminal or a page: C0 (but the line break between lines and the tab
#: between --statistics columns) and C1 controls, DEL, bidi controls, line and paragraph
#: separators.
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
NOT_UTF8 = os.fsdecode(b"bad\xff\xfe.onnx")


def _uneven_chain(names: tuple[str, str]) -> bytes:
    """Two uneven transposed convolutions in a row (DL001, DL003, DL004), named ``names``."""
    model = model_from_chain(parse_chain("ConvTranspose2d(k=3, s=2) -> ConvTranspose2d(k=3, s=2)"))
    for node, name in zip(model.graph.node, names, strict=True):
        node.name = name
    return model.SerializeToString()


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return run_cli(
        *args, cwd=cwd, env=dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1"), text=False
    )


@pytest.fixture()
def hostile_folder(tmp_path: Path) -> Path:
    """A model with hostile node names, a broken model whose file name is hostile, and a model
    whose file name spells a workflow command, all at the folder's top."""
    (tmp_path / "evil.onnx").write_bytes(_uneven_chain((HOSTILE, f"up2\u202e{HOSTILE}")))
    (tmp_path / f"broken\x1b[31m\n{FORGED}.onnx").write_bytes(b"not a model")
    (tmp_path / f"{FORGED}.onnx").write_bytes(_uneven_chain(("a", "b")))
    return tmp_path


def _lines(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    text = proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")
    return text.split("\n")


@pytest.mark.parametrize(
    "flags",
    [(), ("--statistics",), ("--format", "html"), ("--format", "github")],
    ids=["text", "statistics", "html", "github"],
)
def test_hostile_names_are_escaped_in_every_human_readable_format(
    hostile_folder: Path, flags: tuple[str, ...]
) -> None:
    proc = _run(".", *flags, cwd=hostile_folder)
    assert proc.returncode == 2, proc.stderr  # the broken file is an error line
    lines = _lines(proc)
    unsafe = [line for line in lines if UNSAFE.search(line)]
    assert not unsafe, f"unescaped control characters in {unsafe[:3]}"
    commands = [line for line in lines if line.lstrip().startswith("::")]
    if "github" in flags:  # one annotation per finding and one for the error: ours only
        found = json.loads(_run(".", "--format", "json", cwd=hostile_folder).stdout)
        assert len(commands) == found["summary"]["findings"] + 1, commands
        assert all(re.match(r"::(warning|error|notice) file=", c) for c in commands), commands
    else:
        assert not commands, f"lines that GitHub reads as workflow commands: {commands}"
    if "--statistics" not in flags:
        assert "x\\n::error file=evil.py,line=1::forged \\x1b[2J" in "\n".join(lines)
    error_lines = [line for line in proc.stderr.decode().split("\n") if ": error: " in line]
    assert len(error_lines) == 1 and "broken\\x1b[31m\\n::error" in error_lines[0], error_lines


def test_the_stacked_rewrite_s_code_keeps_a_name_inside_its_comment(hostile_folder: Path) -> None:
    """The suggested code names each layer in a comment: a line break in the name would end
    the comment, and what follows would be code a user pastes."""
    proc = _run("evil.onnx", "--format", "json", cwd=hostile_folder)
    findings = json.loads(proc.stdout)["results"][0]["findings"]
    stacked = [f for f in findings if f["rule"] == "DL003"]
    assert stacked, findings
    code = stacked[0]["suggestions"][0]["code"]
    assert all(line.startswith(("# ", "nn.")) for line in code.split("\n")), code
    assert "x\\n::error file=evil.py,line=1::forged \\x1b[2J" in code


def test_the_progress_line_escapes_the_file_name() -> None:
    stream = io.StringIO()
    progress = Progress(1, stream=stream, enabled=True)
    progress.advance(f"a\x1b[2J\u202e\n{FORGED}.onnx")
    drawn = stream.getvalue()
    assert drawn.startswith("\r\x1b[K")  # its own redraw, then nothing raw from the name
    assert not UNSAFE.search(drawn[len("\r\x1b[K") :]), repr(drawn)


def test_printable_escapes_what_repr_escapes_and_keeps_the_rest() -> None:
    from deconvlint.printable import printable, without_surrogates

    text = "décodeur.上采样 1/up\\0" + HOSTILE + "\ud800\U000e0001\xa0"
    shown = printable(text)
    assert shown.isprintable()
    assert shown.startswith("décodeur.上采样 1/up\\0x\\n::error")
    # each escape is the one repr writes
    for character in "\n\x1b\x85\u202e\u2066\u2028\ud800\U000e0001\xa0\x7f":
        assert printable(character) == repr(character)[1:-1]
    assert without_surrogates("a\udcffé\n") == "a\\udcffé\n"


# --- file names that are not valid UTF-8 -------------------------------------------------------


@pytest.fixture()
def not_utf8_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / NOT_UTF8).write_bytes(_uneven_chain(("up1", "up2")))
    return folder


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "html"])
def test_a_file_name_that_is_not_utf8_is_encoded_in_every_format(
    not_utf8_folder: Path, fmt: str
) -> None:
    proc = _run(".", "--format", fmt, cwd=not_utf8_folder)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout.decode("utf-8")  # strict: no byte that is not UTF-8
    assert "internal error" not in proc.stderr.decode()
    if fmt in ("json", "sarif"):
        parsed = json.loads(out)
        # no lone surrogate: the parsed document encodes as UTF-8 (a strict parser reads it)
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    if fmt == "json":
        assert parsed["results"][0]["path"] == "bad\\udcff\\udcfe.onnx"
    elif fmt == "sarif":
        location = parsed["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "bad%FF%FE.onnx"
    else:
        assert "bad\\udcff\\udcfe.onnx" in out


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "html"])
def test_output_and_report_files_are_written_whole_for_a_name_that_is_not_utf8(
    not_utf8_folder: Path, fmt: str
) -> None:
    output, report = not_utf8_folder.parent / "out.txt", not_utf8_folder.parent / "r.html"
    output.write_text("the previous run's output\n")
    proc = _run(".", "--format", fmt, "--output", str(output), "--report", str(report),
                cwd=not_utf8_folder)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    written = output.read_bytes().decode("utf-8")
    if fmt in ("json", "sarif"):
        json.loads(written)
    assert re.search(r"bad(\\{1,2}udcff|%FF)", written), written
    assert "bad\\udcff\\udcfe.onnx" in report.read_bytes().decode("utf-8")
    assert sorted(p.name for p in output.parent.iterdir()) == ["models", "out.txt", "r.html"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deconvlint.atomic import write_atomically

    path = tmp_path / "out.json"
    path.write_bytes(b"old")
    path.chmod(0o640)

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(path, b"new" * 1000)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    monkeypatch.undo()
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640


def test_output_through_a_symlink_and_to_a_pipe(tmp_path: Path) -> None:
    """``--output`` follows a link as a shell redirection does (the link stays a link), and
    writes in place what cannot be replaced, such as a pipe."""
    from deconvlint.atomic import write_atomically

    real = tmp_path / "real.json"
    real.write_text("old")
    (tmp_path / "link.json").symlink_to(real)
    write_atomically(os.path.realpath(tmp_path / "link.json"), b"new")
    assert (tmp_path / "link.json").is_symlink() and real.read_bytes() == b"new"
    read, write = os.pipe()
    try:
        write_atomically(f"/proc/self/fd/{write}", b"through the pipe")
        assert os.read(read, 100) == b"through the pipe"
    finally:
        os.close(read)
        os.close(write)


def test_output_to_dev_stdout_when_it_is_a_pipe(not_utf8_folder: Path) -> None:
    proc = _run(".", "--format", "json", "--output", "/dev/stdout", "-q", cwd=not_utf8_folder)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["summary"]["findings"] > 0


def test_names_made_from_a_model_stay_exact_in_json(tmp_path: Path) -> None:
    """JSON is for programs: a node name keeps its characters (escaped the JSON way)."""
    (tmp_path / "evil.onnx").write_bytes(_uneven_chain((HOSTILE, "up2")))
    proc = _run("evil.onnx", "--format", "json", cwd=tmp_path)
    nodes = {f["node"] for f in json.loads(proc.stdout)["results"][0]["findings"]}
    assert HOSTILE in nodes

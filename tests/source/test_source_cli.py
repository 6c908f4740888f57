"""Source mode from the command line: folders, syntax errors, ``--fix``/``--diff``, the round trip
through torch, and the pre-commit hook on ``.py`` and ``.onnx`` files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.cli import REPO, cli_env, run_cli

EXAMPLES = REPO / "examples"

# The CycleGAN generator's style: layers appended to a list in a loop, then nn.Sequential(*model).
CYCLEGAN = '''\
import torch
import torch.nn as nn


class ResnetDecoder(nn.Module):
    """Upsampling half of the CycleGAN ResnetGenerator."""

    def __init__(self, ngf=8, output_nc=3, n_downsampling=2, use_bias=True):
        super().__init__()
        model = []
        for i in range(n_downsampling):  # add upsampling layers
            mult = 2 ** (n_downsampling - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2),
                                         kernel_size=3, stride=2,
                                         padding=1, output_padding=1,
                                         bias=use_bias),
                      nn.BatchNorm2d(int(ngf * mult / 2)),
                      nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3)]
        model += [nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def build():
    return ResnetDecoder(), (1, 32, 5, 7)
'''

# U-Net blocks with keyword arguments, a Sequential stack, a functional resize.
UNET = """\
import torch
from torch import nn
import torch.nn.functional as F


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(
            in_channels=in_channels,
            out_channels=in_channels // 2,
            kernel_size=3,
            stride=2,
            padding=1,
            output_padding=1,  # keep 2x
        )
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x, skip):
        x = self.up(x)
        return self.conv(torch.cat([x, skip], dim=1))


class Head(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.stack = nn.Sequential(
            nn.ConvTranspose2d(c, c, 5, stride=2, padding=2, output_padding=1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c, c, kernel_size=(1, 3), stride=(2, 2), output_padding=1),
        )

    def forward(self, x):
        x = self.stack(x)
        return F.interpolate(x, scale_factor=(1.5, 1.5), mode="nearest")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = Up(16, 8)
        self.head = Head(8)

    def forward(self, x):
        y = self.up(x, torch.zeros(x.shape[0], 8, 2 * x.shape[2], 2 * x.shape[3]))
        return self.head(y)


def build():
    return Net(), (1, 16, 6, 5)
"""

BAD = "import torch.nn as nn\nup = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)\n"
GOOD = "import torch.nn as nn\nup = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, env=cli_env())


def test_python_file_findings_carry_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "gen.py").write_text(BAD)
    proc = run("gen.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("gen.py:2:6: DL001 [warning] uneven overlap")
    assert "      up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, output_padding=0)" in (
        proc.stdout
    )
    data = json.loads(run("--format", "json", "gen.py", cwd=tmp_path).stdout)
    assert data["results"][0]["findings"][0]["node"] == "2:6"


def test_folder_with_python_files_and_no_model_is_checked(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text(GOOD)
    (tmp_path / "src" / "pkg" / "b.py").write_text("print('no layers')\n")
    (tmp_path / "src" / ".venv").mkdir()
    (tmp_path / "src" / ".venv" / "bad.py").write_text(BAD)
    proc = run("-v", "src", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All checks passed (2 files)." in proc.stdout
    assert "a.py: 1 upsampling call with literal geometry checked, 0 skipped" in proc.stderr


def test_syntax_error_is_one_line_and_other_files_are_still_checked(tmp_path: Path) -> None:
    (tmp_path / "a_broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "b.py").write_text(BAD)
    shutil.copy(EXAMPLES / "clean_decoder.onnx", tmp_path / "c.onnx")
    proc = run(".", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "a_broken.py: error: syntax error at line 1, column 7: invalid syntax"
    ]
    assert "b.py:2:6: DL001" in proc.stdout
    assert "Found 1 finding (1 warning) in 2 files; 1 file could not be analysed." in proc.stdout


def test_undecodable_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"x = '\xe9'\n")
    proc = run("latin.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("latin.py: error: cannot read the file: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_checking_source_imports_neither_torch_nor_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "model.py").write_text(f"open({str(marker)!r}, 'w').close()\n{BAD}")
    code = (
        "import sys; from deconvlint.cli.main import main; code = main(['model.py', '-q']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; raise SystemExit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=cli_env()
    )
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists()


def test_checking_onnx_loads_no_source_mode(tmp_path: Path) -> None:
    code = (
        "import sys; from deconvlint.cli.main import main; "
        f"code = main([{str(EXAMPLES / 'cyclegan_decoder.onnx')!r}, '-q']); "
        "bad = [m for m in sys.modules if m == 'libcst' or m.startswith('deconvlint.source')]; "
        "assert not bad, bad; raise SystemExit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=cli_env()
    )
    assert proc.returncode == 1, proc.stderr


def test_diff_prints_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "unet.py"
    path.write_text(UNET)
    proc = run("--diff", "unet.py", cwd=tmp_path)
    assert proc.returncode == 1
    assert path.read_text() == UNET
    # only the safe fix without --unsafe-fixes: the resize mode
    changed = [line[0] for line in proc.stdout.splitlines()[2:] if line[:1] in "+-"]
    assert changed == ["-", "+"], proc.stdout
    assert (
        '+        return F.interpolate(x, scale_factor=(1.5, 1.5), mode="bilinear"' in proc.stdout
    )
    assert "Would fix 1 finding in 1 file. 3 more unsafe fixes" in proc.stderr
    unsafe = run("--diff", "--unsafe-fixes", "unet.py", cwd=tmp_path)
    assert unsafe.returncode == 1 and "+            kernel_size=4," in unsafe.stdout
    assert "+            output_padding=0,  # keep 2x" in unsafe.stdout
    assert path.read_text() == UNET
    clean = tmp_path / "clean.py"
    clean.write_text(GOOD)
    assert run("--diff", "clean.py", cwd=tmp_path).returncode == 0


def test_fix_applies_only_safe_fixes_without_unsafe_fixes(tmp_path: Path) -> None:
    path = tmp_path / "unet.py"
    path.write_text(UNET)
    proc = run("--fix", "unet.py", cwd=tmp_path)
    assert proc.returncode == 1  # the kernels are still uneven
    assert "DL005" not in proc.stdout and "DL001" in proc.stdout
    assert path.read_text() == UNET.replace(
        'mode="nearest")', 'mode="bilinear", align_corners=False)'
    )


def _shapes(path: Path, cwd: Path) -> list[list[int]]:
    """Import ``path`` in a fresh interpreter and run its model on a few input sizes."""
    script = textwrap.dedent(
        f"""
        import importlib.util, json, torch
        spec = importlib.util.spec_from_file_location("m", {str(path)!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        model, shape = m.build()
        out = []
        for extra in (0, 1, 3):
            x = torch.randn(*shape[:2], shape[2] + extra, shape[3] + 2 * extra)
            out.append(list(model.eval()(x).shape))
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("name", ["cyclegan", "unet"])
def test_round_trip_fix_unsafe_then_clean_with_the_same_shapes(tmp_path: Path, name: str) -> None:
    pytest.importorskip("torch")
    path = tmp_path / f"{name}.py"
    original = {"cyclegan": CYCLEGAN, "unet": UNET}[name]
    path.write_text(original)
    before = _shapes(path, tmp_path)
    first = run("--fix", "--unsafe-fixes", f"{name}.py", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "All checks passed (1 file)." in first.stdout
    assert path.read_text() != original
    second = run(f"{name}.py", cwd=tmp_path)
    assert second.returncode == 0 and "All checks passed (1 file)." in second.stdout
    assert _shapes(path, tmp_path) == before
    # comments and layout survive
    for line in original.splitlines():
        if "#" in line:
            assert line.split("#", 1)[1] in path.read_text()


# --- pre-commit -----------------------------------------------------------------------------


def _pre_commit() -> str | None:
    return shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which(
        "pre-commit"
    )


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _snapshot(target: Path) -> str:
    """This working tree (committed or not) as a one-commit repository; its commit id."""
    files = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=REPO)
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    _git("init", "-q", cwd=target)
    _git("add", "-A", cwd=target)
    _git("commit", "-q", "-m", "snapshot", cwd=target)
    return _git("rev-parse", "HEAD", cwd=target).strip()


@pytest.mark.slow
@pytest.mark.skipif(
    _pre_commit() is None,
    reason="pre-commit is not installed (pip install pre-commit); .ci/run installs it",
)
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_pre_commit_run_files_on_python_and_onnx(tmp_path: Path) -> None:
    hook_repo = tmp_path / "hook-repo"
    rev = _snapshot(hook_repo)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: deconvlint\n"
    )
    (project / "bad.py").write_text(BAD)
    (project / "good.py").write_text(GOOD)
    shutil.copy(EXAMPLES / "cyclegan_decoder.onnx", project / "bad.onnx")
    shutil.copy(EXAMPLES / "clean_decoder.onnx", project / "good.onnx")
    (project / "notes.txt").write_text("not a model\n")
    _git("init", "-q", cwd=project)
    _git("add", "-A", cwd=project)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-cache")

    def pre_commit(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [_pre_commit(), "run", "--files", *files],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=1500,
        )

    bad = pre_commit("bad.py", "bad.onnx", "notes.txt")
    output = bad.stdout + bad.stderr
    assert bad.returncode == 1, output
    assert "bad.py:2:6: DL001" in output and "bad.onnx:decoder.up1: DL001" in output
    assert "notes.txt" not in output
    good = pre_commit("good.py", "good.onnx", "notes.txt")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


def test_the_program_exits_without_teardown_but_with_its_exit_functions(tmp_path: Path) -> None:
    """Run as the program (the ``deconvlint`` executable's own two lines), deconvlint ends the
    process without the interpreter's teardown (code after it does not run), yet what was
    registered with atexit runs, the output is whole and the exit code is the run's."""
    (tmp_path / "gen.py").write_text(BAD)
    script = (
        "import atexit, sys\n"
        "atexit.register(print, 'atexit ran', file=sys.stderr)\n"
        "from deconvlint.__main__ import main\n"
        "sys.argv = ['deconvlint', 'gen.py', '--format', 'json']\n"
        "code = main()\n"
        "print('after main', file=sys.stderr)\n"
        "raise SystemExit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=cli_env()
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == ["atexit ran"]
    assert json.loads(proc.stdout)["summary"]["findings"] == 1
    via_m = run("gen.py", "--format", "json", cwd=tmp_path)
    assert (via_m.returncode, via_m.stdout) == (1, proc.stdout)


def test_run_by_another_program_the_cli_returns_to_it(tmp_path: Path) -> None:
    """runpy.run_module('deconvlint', run_name='__main__') in someone else's process: its code
    after the run still runs (no early exit), with the run's exit code."""
    (tmp_path / "gen.py").write_text(BAD)
    script = (
        "import runpy, sys\n"
        "sys.argv = ['deconvlint', 'gen.py', '-q']\n"
        "try:\n"
        "    runpy.run_module('deconvlint', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print('returned', exc.code, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=cli_env()
    )
    assert (proc.returncode, proc.stderr.splitlines()[-1:]) == (0, ["returned 1"]), proc.stderr

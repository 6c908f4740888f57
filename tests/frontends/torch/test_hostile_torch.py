"""Torch models that misbehave: a clear error or a correct result, never a hang or a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import deconvlint  # noqa: E402
from deconvlint.errors import TraceError  # noqa: E402
from tests.cli.test_cli_torch import run  # noqa: E402

pytestmark = pytest.mark.torch

MODELS_PY = '''
import time
import torch
from torch import nn


class Hangs(nn.Module):
    """fx and export give up on the data-dependent loop; the forward never returns."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, x):
        while x.sum() > -1e9:
            time.sleep(0.01)
        return self.up(x)


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, x):
        raise RuntimeError("this model cannot run on CPU")
'''


class InPlace(nn.Module):
    """In-place activations and an in-place add after each uneven transposed convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.act = nn.ReLU(inplace=True)
        self.up2 = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)

    def forward(self, x):
        y = self.act(self.up1(x))
        y += 1.0
        y.mul_(0.5)
        z = self.up2(y)
        return torch.relu_(z)


class OutOfPlace(InPlace):
    """The same arithmetic, nothing in place."""

    def forward(self, x):
        y = torch.relu(self.up1(x))
        y = (y + 1.0) * 0.5
        return torch.relu(self.up2(y))


class NestedOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.clean = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)

    def forward(self, x):
        return {"image": [self.up(x), (self.clean(x), None)], "meta": {"scale": 2}}


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, x):
        raise RuntimeError("this model cannot run on CPU")


X = (torch.randn(1, 4, 8, 8),)


def test_in_place_ops_give_the_findings_of_the_same_model_without_them() -> None:
    def findings(model: nn.Module) -> list[tuple[str, str, str]]:
        return [(f.node, f.rule, f.severity) for f in deconvlint.check(model, X).findings]

    # up2 (k4 s2) evens out up1's uneven overlap, so up1's DL001 is lowered to info
    assert findings(InPlace()) == findings(OutOfPlace()) == [("up1", "DL001", "info")]


def test_nested_outputs_are_followed() -> None:
    report = deconvlint.check(NestedOutputs(), X)
    rules = {(f.node, f.rule) for f in report.findings}
    assert ("up", "DL001") in rules and not any(node == "clean" for node, _ in rules)


def test_a_forward_that_raises_is_one_clear_error() -> None:
    with pytest.raises(TraceError, match="this model cannot run on CPU") as info:
        deconvlint.check(Raises(), X)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile_torch")
    (folder / "bad_models.py").write_text(MODELS_PY)
    return folder


def test_cli_timeout_gives_up_on_a_forward_that_never_returns(project: Path) -> None:
    start = time.monotonic()
    proc = run("bad_models:Hangs", "--input-shape", "1,4,8,8", "--timeout", "2", cwd=project)
    assert time.monotonic() - start < 120
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("bad_models:Hangs: error: ") and "did not return within 2 s" in line


CONSOLE_WITH_A_STUCK_FORWARD = r"""
import atexit, sys, threading, time
import deconvlint.cli.main as cli
from deconvlint.frontends.torch.load import FORWARD_THREAD

atexit.register(lambda: print("finalized", flush=True))

def main():
    threading.Thread(target=time.sleep, args=(60,), name=FORWARD_THREAD, daemon=True).start()
    print("report")  # buffered: the hard exit must flush it
    return 2

cli.main = main
sys.exit(cli.console_main())
"""


def test_console_exits_hard_past_a_forward_it_gave_up_on() -> None:
    """A forward thread left inside torch's C++ aborted the process at interpreter exit about
    one run in eight (SIGABRT instead of exit code 2): the command now exits without the
    interpreter's finalization when such a thread is alive, after flushing its output."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_WITH_A_STUCK_FORWARD],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (proc.returncode, proc.stdout) == (2, "report\n"), proc


def test_cli_forward_that_raises(project: Path) -> None:
    proc = run("bad_models:Raises", "--input-shape", "1,4,8,8", "--format", "json", cwd=project)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert "this model cannot run on CPU" in result["error"]


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_cli_timeout_must_be_positive(project: Path, value: str) -> None:
    proc = run("bad_models:Raises", "--timeout", value, cwd=project)
    assert proc.returncode == 2 and "--timeout" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

"""Weights and the probe through the torch front end: module parameters, --weights, probe=True."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

import deconvlint
from tests.support.cli import REPO, run_cli

torch = pytest.importorskip("torch")
nn = torch.nn

MODELS = textwrap.dedent(
    """
    from torch import nn

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.up1 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
            self.up2 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.up2(self.act(self.up1(x)))
    """
)


def _decoder(kind: str) -> nn.Module:
    namespace: dict = {}
    exec(MODELS, namespace)
    model = namespace["Decoder"]().eval()
    set_weights(model, kind)
    return model


def set_weights(model: nn.Module, kind: str) -> None:
    """``linear``: each channel's kernel is [.5, 1, .5] x [.5, 1, .5]; ``positive``: U(0.5, 1)/9."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in (model.up1, model.up2):
            if kind == "linear":
                taps = torch.tensor([0.5, 1.0, 0.5])
                conv.weight.zero_()
                for c in range(4):
                    conv.weight[c, c] = torch.outer(taps, taps)
            else:
                conv.weight.copy_(0.5 + 0.5 * torch.rand(conv.weight.shape, generator=generator))
                conv.weight /= 9
            conv.bias.zero_()


def rules(report) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in report.findings:
        found.setdefault(f.rule, set()).add(f.node)
    return found


def test_module_parameters_feed_the_weight_rules_and_the_probe():
    x = torch.randn(1, 4, 16, 16)
    positive = deconvlint.check(_decoder("positive"), (x,), extend_select="DL007", probe=True)
    assert rules(positive)["DL009"] == {"up1", "up2"}
    assert rules(positive)["DL007"] == {"up1", "up2"}
    linear = deconvlint.check(_decoder("linear"), (x,), extend_select="DL007", probe=True)
    found = rules(linear)
    assert found["DL001"] == {"up1", "up2"}
    assert "DL007" not in found and "DL009" not in found, linear


def test_probe_on_a_module_needs_example_inputs():
    from deconvlint.probe.measure import ProbeError

    with pytest.raises(ProbeError, match="input shapes are unknown"):
        deconvlint.check(_decoder("positive"), probe=True)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_cli_weights_checkpoint_changes_the_verdict(tmp_path: Path):
    (tmp_path / "probepkg").mkdir()
    (tmp_path / "probepkg" / "__init__.py").write_text("")
    (tmp_path / "probepkg" / "models.py").write_text(MODELS)
    model = _decoder("linear")
    torch.save(model.state_dict(), tmp_path / "linear.pt")
    torch.save({"state_dict": _decoder("positive").state_dict()}, tmp_path / "positive.pt")
    common = ["probepkg.models:Decoder", "--input-shape", "1,4,16,16", "--probe"]
    common += ["--extend-select", "DL007", "--format", "json"]

    linear = _cli(tmp_path, *common, "--weights", "linear.pt")
    found = {f["rule"] for f in json.loads(linear.stdout)["results"][0]["findings"]}
    assert "DL001" in found and not {"DL007", "DL009"} & found, linear.stderr

    positive = _cli(tmp_path, *common, "--weights", "positive.pt")
    found = {f["rule"] for f in json.loads(positive.stdout)["results"][0]["findings"]}
    assert {"DL007", "DL009"} <= found, positive.stderr

    (tmp_path / "wrong.pt").write_bytes(b"not a checkpoint")
    wrong = _cli(tmp_path, *common, "--weights", "wrong.pt")
    assert wrong.returncode == 2 and "--weights: cannot read wrong.pt" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1

    torch.save({"other.weight": torch.ones(1)}, tmp_path / "misfit.pt")
    misfit = _cli(tmp_path, *common, "--weights", "misfit.pt")
    assert misfit.returncode == 2 and "does not fit the model" in misfit.stderr

    onnx_file = REPO / "examples" / "clean_decoder.onnx"
    refused = _cli(tmp_path, str(onnx_file), "--weights", "linear.pt")
    assert refused.returncode == 2 and "package.module:attribute targets only" in refused.stderr

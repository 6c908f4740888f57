"""The torch front end with example inputs reads the forward the model runs, leaves the model as
it found it, and places every upsampling layer the forward ran on a coverage path (or says which
it could not).

Each idiom is a small module after the real code that showed it (asteroid's complex convs,
speechbrain's list inputs and VQ-VAE quantiser, basicsr's ``self.mean = self.mean.type_as(x)``);
every test checks the findings and that the model is unchanged afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import deconvlint  # noqa: E402
from deconvlint.config.settings import Settings  # noqa: E402
from deconvlint.core.ir import Kind  # noqa: E402
from deconvlint.frontends.torch import hooks as torch_hooks  # noqa: E402
from deconvlint.frontends.torch.load import load_module, read_with  # noqa: E402
from deconvlint.report import Report  # noqa: E402

pytestmark = pytest.mark.torch

DEFAULTS = Settings()
UNEVEN = {("up", "DL001", "warning")}  # ConvT k3 s2 at the output (its DL001 carries the output)


def x4(c: int = 4, n: int = 8) -> Any:
    return torch.randn(1, c, n, n, generator=torch.Generator().manual_seed(0))


def found(report: Report) -> set[tuple[str, str, str]]:
    return {(f.node, f.rule, f.severity) for f in report.findings}


# --- the model as it was --------------------------------------------------------------------------


def fingerprint(model: nn.Module, inputs: tuple[Any, ...]) -> dict[str, Any]:
    """What a check must not change: values, attribute types and identities, flags, hooks and
    parametrizations, and what the forward returns."""
    modules = dict(model.named_modules())
    with torch.no_grad():  # on a copy: the forward may write into the module
        output = copy.deepcopy(model)(*inputs)
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "tensors": {k: id(v) for k, v in (*model.named_parameters(), *model.named_buffers())},
        "attributes": {
            (name, key): (type(value), id(value))
            for name, m in modules.items()
            for key, value in vars(m).items()
        },
        "training": {name: m.training for name, m in modules.items()},
        "hooks": {
            (name, key): list(value)
            for name, m in modules.items()
            for key, value in vars(m).items()
            if "hooks" in key and isinstance(value, dict)
        },
        "parametrized": {name for name, m in modules.items() if hasattr(m, "parametrizations")},
        "output": output,
    }


def assert_unchanged(model: nn.Module, inputs: tuple[Any, ...], before: dict[str, Any]) -> None:
    after = fingerprint(model, inputs)
    for key in ("tensors", "attributes", "training", "hooks", "parametrized"):
        assert after[key] == before[key], key
    assert after["state"].keys() == before["state"].keys()
    for name, value in before["state"].items():
        assert torch.equal(after["state"][name], value), name
    assert torch.equal(after["output"], before["output"])


def checked(model: nn.Module, inputs: tuple[Any, ...]) -> Report:
    """``deconvlint.check`` with the model's fingerprint compared before and after."""
    model.eval()
    before = fingerprint(model, inputs)
    report = deconvlint.check(model, inputs, config=DEFAULTS)
    assert_unchanged(model, inputs, before)
    return report


# --- what fx lost: attribute access, complex views, lists -----------------------------------------


class Glue(nn.Module):
    """``x.mT``, ``x.data`` or ``torch.complex(x, x).real`` before an uneven ConvTranspose2d:
    fx's graph came out empty (asteroid's complex convolutions, DCUNet)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, x):
        if self.how == "mT":
            x = x.mT
        elif self.how == "data":
            x = x.data
        elif self.how == "complex":
            x = torch.complex(x, x).real
        return self.up(x)


@pytest.mark.parametrize("how", ["mT", "data", "complex"])
def test_tensor_attributes_and_complex_views_keep_the_graph(how: str) -> None:
    report = checked(Glue(how), (x4(),))
    assert found(report) == UNEVEN
    assert report.frontend == "hooks" and not report.results[0].notes


class ListInput(nn.Module):
    """speechbrain's CNN14PSI: ``forward(self, hs)`` called with a list of feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, hs):
        return self.up(hs[0]) + self.up(hs[1]["late"])


def test_list_and_dict_inputs_are_followed() -> None:
    report = checked(ListInput(), ([x4(), {"late": x4()}],))
    assert found(report) == {
        ("up", "DL001", "warning"),
        ("up#2", "DL001", "warning"),  # which carries the output's coverage (no DL004)
    }
    graph, _ = load_module(ListInput(), ([x4(), {"late": x4()}],))
    assert graph.inputs == ("hs_0", "hs_1")


class StraightThrough(torch.autograd.Function):
    """A VQ-VAE quantiser: the nearest codebook entry, found under ``no_grad``, with the
    gradient passed straight through (export turned this into wrap_with_set_grad_enabled and
    lost the decoder)."""

    @staticmethod
    def forward(ctx, z, codebook):
        with torch.no_grad():
            distances = (z.permute(0, 2, 3, 1)[..., None, :] - codebook).pow(2).sum(-1)
            quantised = codebook[distances.argmin(-1)].permute(0, 3, 1, 2)
        return z + (quantised - z)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class VQVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(3, 4, 4, stride=2, padding=1)
        self.codebook = nn.Parameter(torch.randn(8, 4))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
        )

    def forward(self, x):
        return self.decoder(StraightThrough.apply(self.encoder(x), self.codebook))


def test_an_autograd_function_with_a_no_grad_region_keeps_the_decoder() -> None:
    report = checked(VQVAE(), (x4(3, 16),))
    assert found(report) == {
        ("decoder.0", "DL001", "warning"),
        ("decoder.2", "DL001", "warning"),
        ("decoder.2", "DL003", "warning"),  # which carries the output's coverage (no DL004)
    }


# --- glue that passes the pattern through ---------------------------------------------------------


class TwoUps(nn.Module):
    """ConvT k3 s2 (op 1), some glue, ConvT k3 s2 (op 1): the glue must not end the stack."""

    def __init__(self, glue: str) -> None:
        super().__init__()
        self.glue = glue
        self.a = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.b = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        y = self.a(x)
        if self.glue == "interpolate":
            y = F.interpolate(y, scale_factor=2, mode="nearest")
        elif self.glue == "repeat_interleave":
            y = y.repeat_interleave(2, dim=2).repeat_interleave(2, dim=-1)
        elif self.glue == "complex_stack":  # real and imaginary parts on a last axis of two
            y = torch.view_as_complex(torch.stack([y, 2 * y], dim=-1)).real
        elif self.glue == "tile":
            y = y.repeat(1, 1, 2, 2)
        return self.b(y)


def signature(report: Report) -> list[tuple[Any, ...]]:
    return [(f.node, f.rule, f.severity, f.metrics.get("pattern")) for f in report.findings]


def test_repeat_interleave_on_a_spatial_axis_is_a_nearest_resize() -> None:
    graph = read_with("hooks", TwoUps("repeat_interleave"), (x4(),))
    resizes = [n for n in graph.nodes if n.kind is Kind.RESIZE]
    assert [n.resize.scales for n in resizes] == [(2, 1), (1, 2)]
    assert all(n.resize.mode == "nearest" for n in resizes)
    by_interleave = checked(TwoUps("repeat_interleave"), (x4(),))
    by_interpolate = checked(TwoUps("interpolate"), (x4(),))
    assert signature(by_interleave) == signature(by_interpolate)
    assert ("b", "DL003", "warning") in found(by_interleave)


@pytest.mark.parametrize("glue", ["complex_stack", "tile"])
def test_complex_stacks_and_tiles_pass_the_pattern_through(glue: str) -> None:
    report = checked(TwoUps(glue), (x4(),))
    plain = checked(TwoUps("none"), (x4(),))
    assert signature(report) == signature(plain)
    assert ("b", "DL003", "warning") in found(report)  # the stack a -> b is seen across the glue


def test_a_stack_that_moves_the_spatial_axes_is_a_barrier() -> None:
    class Front(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

        def forward(self, x):
            return torch.stack([self.a(x), x4(4, 16)], dim=2)

    graph = read_with("hooks", Front(), (x4(),))
    assert [n.kind for n in graph.nodes] == [Kind.CONV_TRANSPOSE, Kind.BARRIER]


# --- never touch the user's model -----------------------------------------------------------------


class MeanShift(nn.Module):
    """basicsr's EDSR/SwinIR: ``self.mean = self.mean.type_as(x)`` in ``forward`` (a plain
    attribute, no buffer); under fx tracing it stored a Proxy in the model."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
        self.register_buffer("scale", torch.ones(1))
        self.up = nn.ConvTranspose2d(3, 3, 3, stride=2)
        self.calls = 0

    def forward(self, x):
        self.mean = self.mean.type_as(x)
        self.calls += 1
        self.last = x  # a cache, as some models keep
        self.scale.mul_(1.0)  # writes a buffer in place
        return self.up(x - self.mean) + self.mean


def test_a_forward_that_writes_into_its_module_leaves_no_trace() -> None:
    model = MeanShift()
    inputs = (x4(3),)
    report = checked(model, inputs)
    assert ("up", "DL001", "warning") in found(report)
    assert isinstance(model.mean, torch.Tensor) and type(model.mean) is torch.Tensor
    assert model.calls == 0 and "last" not in vars(model)


@pytest.mark.parametrize("reader", ["fx", "export", "hooks"])
def test_each_reader_leaves_the_model_as_it_was_even_when_it_fails(reader: str) -> None:
    model = MeanShift().eval()
    inputs = (x4(3),)
    before = fingerprint(model, inputs)
    with contextlib.suppress(Exception):  # fx fails halfway: its Proxy breaks its graph's run
        read_with(reader, model, inputs)
    assert_unchanged(model, inputs, before)


class Decorated(nn.Module):
    """A weight-normalised transposed conv, the user's own hooks, a training-mode submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.utils.parametrizations.weight_norm(nn.ConvTranspose2d(4, 4, 3, stride=2))
        self.norm = nn.BatchNorm2d(4)
        self.seen: list[tuple[int, ...]] = []
        self.up.register_forward_hook(lambda m, i, o: self.seen.append(tuple(o.shape)))
        self.register_forward_pre_hook(lambda m, i: None)

    def forward(self, x):
        return self.norm(self.up(x))


def test_parametrizations_hooks_and_training_flags_are_kept() -> None:
    model = Decorated()
    model.eval()
    model.norm.train()  # a mixed state: the check must not flatten it
    inputs = (x4(),)
    before = fingerprint(model, inputs)
    report = deconvlint.check(model, inputs, config=DEFAULTS)
    assert ("up", "DL001", "warning") in found(report)
    assert_unchanged(model, inputs, before)  # running statistics included: read in eval mode
    assert model.norm.training and not model.training
    assert len(model.up._forward_hooks) == 1 and len(model._forward_pre_hooks) == 1


# --- the completeness check -----------------------------------------------------------------------


class Untraced(nn.Module):
    """The upsampler's input made outside torch (a numpy round trip): not traced to the input."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, x):
        return self.up(torch.from_numpy(x.numpy()))


def test_an_upsampler_fed_from_outside_torch_starts_its_own_path() -> None:
    report = checked(Untraced(), (x4(),))
    assert found(report) == UNEVEN
    (note,) = report.results[0].notes
    assert note.startswith("'up': its input was not traced back to the model's inputs")
    assert "note: 'up': its input was not traced" in str(report)
    assert report.to_dict()["results"][0]["notes"] == [note]


def test_notes_reach_sarif_github_and_html() -> None:
    # text and JSON show the reader's notes; so do the formats CI reads, as notes (the run
    # still succeeds), ``::notice`` annotations and a Notes section, escaped like every name
    from deconvlint.formatters import Style, get_formatter

    report = checked(Untraced(), (x4(),))
    report.results[0].path = "<Untraced\x1b>"
    (note,) = report.results[0].notes
    sarif = json.loads(get_formatter("sarif").format_report(report))
    (invocation,) = sarif["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True
    assert invocation["toolExecutionNotifications"] == [
        {"level": "note", "message": {"text": f"<Untraced\\x1b>: {note}"}}
    ]
    github = get_formatter("github").format_report(report, Style(summary=False))
    assert github.splitlines()[-1] == (
        f"::notice title=deconvlint note::<Untraced\\x1b>: {note.replace('%', '%25')}"
    )
    assert sum(line.startswith("::") for line in github.splitlines()) == 2  # finding, note
    page = get_formatter("html").format_report(report)
    assert "<h2>Notes</h2><ul><li><code>&lt;Untraced\\x1b&gt;</code>: " in page
    assert "\x1b" not in page and html.escape(note) in page


class DeadBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)
        self.head = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        self.up(x)  # computed and dropped
        return self.head(x)


def test_an_upsampler_whose_output_is_dropped_is_still_judged() -> None:
    report = checked(DeadBranch(), (x4(),))
    assert found(report) == {("up", "DL001", "warning")}
    assert report.results[0].notes == ["'up': its output reaches no output of the model"]


def hooks_lose_the_upsamplers(monkeypatch: Any) -> None:
    """The recording reader fails on every ConvTranspose2d, so its graph misses them."""
    real = torch_hooks.module_spec

    def fails_on_upsamplers(module, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(module, nn.ConvTranspose2d):
            raise RuntimeError("lost")
        return real(module, *args, **kwargs)

    monkeypatch.setattr(torch_hooks, "module_spec", fails_on_upsamplers)


def test_a_recording_that_misses_an_upsampler_falls_back(monkeypatch: Any) -> None:
    hooks_lose_the_upsamplers(monkeypatch)
    report = checked(Glue("none"), (x4(),))
    assert report.frontend == "fx" and found(report) == UNEVEN
    (note,) = report.results[0].notes
    assert note.startswith("read by fx: hooks could not read the model: its graph misses 'up'")


def test_no_reader_places_the_layer_and_the_report_says_so(monkeypatch: Any) -> None:
    hooks_lose_the_upsamplers(monkeypatch)
    # fx cannot trace the data-dependent branch, export refuses it too
    model = Gated()
    report = checked(model, (x4(),))
    assert report.frontend == "hooks" and not report.findings
    assert any(
        "hooks: could not place on a coverage path: 'up' (recording it raised RuntimeError)" in n
        for n in report.results[0].notes
    ), report.results[0].notes
    assert "could not place on a coverage path: 'up'" in str(report)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2)

    def forward(self, x):
        if x.sum() > 1e9:
            x = x * 2
        return torch.tanh(self.up(x))

"""``deconvlint.fix``: every zoo model with every strategy, and the layers it must leave alone.

For each model and strategy: the original is untouched (weights, buffers, structure), the
output shapes are kept, the layers the zoo flags are replaced (or left alone with the reason
the strategy gives), and an independent ``deconvlint.check`` of the result reports no
DL001-DL004 finding at warning or above except on the layers left alone.  Sub-pixel layers are
ICNR: a constant input gives a constant output in the interior of the new layer.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import deconvlint  # noqa: E402
from deconvlint.config.settings import Settings  # noqa: E402
from deconvlint.core.ir import WindowAxis  # noqa: E402
from deconvlint.errors import FixError, TraceError  # noqa: E402
from deconvlint.report import Report  # noqa: E402
from deconvlint.rewrites.model import STRATEGIES, FixResult  # noqa: E402
from deconvlint.rewrites.replacements import solve_subpixel  # noqa: E402
from deconvlint.rewrites.suggestions import excess  # noqa: E402
from tests.support.zoo import ZOO  # noqa: E402

pytestmark = pytest.mark.torch

nn = torch.nn
DEFAULTS = Settings()  # every default rule; no configuration file from the cwd
FIXED_RULES = ("DL001", "DL002", "DL003", "DL004")

# model -> the layers flagged at warning or above (tests/test_zoo.py holds the verdicts)
FLAGGED: dict[str, tuple[str, ...]] = {
    "cyclegan_resnet": ("model.19", "model.22"),
    "wavegan": tuple(f"deconv_{i}" for i in range(1, 6)),
    "unet3d": ("model.1.submodule.2.conv", "model.2.conv"),
    "gated_decoder": ("up",),
    "autoencoder": ("decoder.0", "decoder.3"),
}
# (model, strategy) -> the words of the reason its layers are left alone
LEFT_ALONE = {
    ("wavegan", "subpixel"): "2-D only (this layer is 1-D)",
    ("unet3d", "subpixel"): "2-D only (this layer is 3-D)",
}
REPLACEMENT_TYPE = {
    "kernel": (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
    "resize-conv": nn.Sequential,
    "subpixel": nn.Sequential,
}


def _snapshot(model: nn.Module) -> tuple[str, dict[str, Any], bool]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return str(model), state, model.training


def _assert_same(model: nn.Module, snapshot: tuple[str, dict[str, Any], bool]) -> None:
    text, state, training = snapshot
    assert str(model) == text, "the original's structure changed"
    assert model.training == training
    now = model.state_dict()
    assert list(now) == list(state)
    for key, value in state.items():
        assert torch.equal(now[key], value), f"the original's {key} changed"


def _output_shapes(model: nn.Module, inputs: tuple) -> list[tuple[int, ...]]:
    with torch.no_grad():
        out = model.eval()(*inputs)
    return [tuple(t.shape) for t in (out if isinstance(out, tuple) else (out,))]


def _fix(model: nn.Module, inputs: tuple, strategy: str, **kwargs: Any) -> FixResult:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = deconvlint.fix(model, inputs, strategy, config=DEFAULTS, **kwargs)
    left = [str(w.message) for w in caught if "deconvlint.fix" in str(w.message)]
    assert len(left) == len(result.skipped), left  # each layer left alone is said aloud
    return result


def _bad(report: Report, threshold: tuple[str, ...] = ("warning", "error")) -> list[Any]:
    return [f for f in report.findings if f.rule in FIXED_RULES and f.severity in threshold]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_model(name: str, strategy: str) -> None:
    entry = ZOO[name]
    model, inputs = entry.model(), entry.inputs()
    snapshot = _snapshot(model)
    shapes = _output_shapes(entry.model(), inputs)

    result = _fix(model, inputs, strategy)

    _assert_same(model, snapshot)
    assert result.model is not model
    assert _output_shapes(result.model, inputs) == shapes
    reason = LEFT_ALONE.get((name, strategy))
    flagged = FLAGGED.get(name, ())
    assert [c.node for c in result.changes] == list(flagged)
    assert [c.node for c in result.replaced] == ([] if reason else list(flagged))
    for change in result.skipped:
        assert reason in change.reason, change
        assert type(result.model.get_submodule(change.node)) is type(
            model.get_submodule(change.node)
        )
    for change in result.replaced:
        new = result.model.get_submodule(change.node)
        assert isinstance(new, REPLACEMENT_TYPE[strategy]), change
        assert change.after.startswith("nn.")
    if strategy == "kernel":  # same keys, new kernel shapes
        assert list(result.model.state_dict()) == list(model.state_dict())

    if not result.changes:  # nothing flagged: the copy's report is the original's
        assert not _bad(result.report)
        return
    after = deconvlint.check(result.model, inputs, config=DEFAULTS)  # an independent check
    blamed = {n for f in _bad(after) for n in f.metrics.get("nodes", [f.node])}
    assert blamed <= {c.node for c in result.skipped}, str(after)
    assert [(f.node, f.rule) for f in after.findings] == [
        (f.node, f.rule) for f in result.report.findings
    ]


@pytest.mark.parametrize("name", ["cyclegan_resnet", "gated_decoder", "autoencoder"])
def test_subpixel_is_icnr(name: str) -> None:
    """A constant input gives every sub-pixel phase of a channel the same value (away from the
    zero padding), so the new layer paints no checkerboard at initialisation; the bias is the
    original's, repeated for every phase."""
    entry = ZOO[name]
    model = entry.model()
    result = _fix(model, entry.inputs(), "subpixel")
    assert result.replaced
    for change in result.replaced:
        layer = result.model.get_submodule(change.node)
        conv, shuffle = layer
        assert isinstance(conv, nn.Conv2d) and isinstance(shuffle, nn.PixelShuffle)
        s = shuffle.upscale_factor
        with torch.no_grad():
            out = layer(torch.ones(1, conv.in_channels, 12, 12))
        k = conv.kernel_size[0] // 2
        interior = out[:, :, s * k : -s * k or None, s * k : -s * k or None]
        per_channel = interior.flatten(2)
        assert torch.allclose(per_channel, per_channel[:, :, :1].expand_as(per_channel), atol=1e-5)
        # and the response is not trivially constant: channels differ
        assert per_channel[0, :, 0].unique().numel() > 1
        old = model.get_submodule(change.node)
        assert torch.equal(conv.bias, old.bias.repeat_interleave(s * s))


def test_stylegan2_blurred_layers_only_with_fail_on_info() -> None:
    entry = ZOO["stylegan2_up"]
    assert not _fix(entry.model(), entry.inputs(), "kernel").changes  # info: compensated
    result = _fix(entry.model(), entry.inputs(), "kernel", fail_on="info")
    assert [c.node for c in result.replaced] == ["blocks.0.conv", "blocks.1.conv"]
    assert result.replaced[0].after == (
        "nn.ConvTranspose2d(4, 4, kernel_size=4, stride=2, padding=1, output_padding=1, bias=False)"
    )
    assert not _bad(result.report, ("info", "warning", "error"))
    # ConvT k3 s2 p0 gives 2n + 1: PixelShuffle(2) cannot, so sub-pixel leaves them alone
    subpixel = _fix(entry.model(), entry.inputs(), "subpixel", fail_on="info")
    assert not subpixel.replaced and len(subpixel.skipped) == 2
    assert "2*n+1 is not a multiple of the stride 2" in subpixel.skipped[0].reason


def test_functional_layer_is_left_alone_with_the_reason() -> None:
    entry = ZOO["functional"]
    result = _fix(entry.model(), entry.inputs(), "kernel", fail_on="info")
    (change,) = result.changes
    assert change.node == "conv_transpose2d" and not change.replaced
    assert "functional call" in change.reason
    assert "left alone (kernel): it is a functional call" in str(change)


# --- layers of every kind --------------------------------------------------------------------------


class Decoder(nn.Module):
    """Two flagged layers (a stack), a grouped one, one with no bias, and BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.norm = nn.BatchNorm2d(8)
        self.up2 = nn.ConvTranspose2d(8, 4, 5, stride=2, padding=2, output_padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up2(torch.relu(self.norm(self.up1(x))))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_groups_no_bias_and_a_training_model(strategy: str) -> None:
    torch.manual_seed(0)
    model = Decoder().train()
    x = torch.randn(2, 8, 6, 7)
    snapshot = _snapshot(model)
    result = _fix(model, x, strategy)
    _assert_same(model, snapshot)
    assert [c.node for c in result.replaced] == ["up1", "up2"]
    # both are in the stack (DL003), which also carries the output's path (no DL004 of its own)
    assert [c.rules for c in result.changes] == [("DL001", "DL003")] * 2
    fixed = result.model
    assert fixed.training and fixed.up1.training  # modes kept
    assert torch.equal(fixed.norm.running_mean, model.norm.running_mean)  # no forward in train
    convs = [m for m in fixed.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [c.groups for c in convs] == [2, 1]
    assert convs[1].bias is None and "bias=False" in result.changes[1].after
    for size in ((6, 7), (5, 9)):  # the output size is kept for other input sizes too
        y = torch.randn(2, 8, *size)
        assert _output_shapes(fixed, (y,)) == _output_shapes(Decoder(), (y,))
    assert not _bad(deconvlint.check(fixed, x, config=DEFAULTS))


def test_kernel_strategy_keeps_weight_norm() -> None:
    from torch.nn.utils.parametrizations import weight_norm

    model = nn.Sequential(
        weight_norm(nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1))
    )
    x = torch.randn(1, 4, 10)
    result = _fix(model, x, "kernel")
    new = result.model[0]
    assert list(result.model.state_dict()) == list(model.state_dict())  # original0, original1
    assert new.weight.shape == (4, 2, 4)
    assert type(new).__name__ == "ParametrizedConvTranspose1d"
    resized = _fix(model, x, "resize-conv").model[0][1]
    assert type(resized).__name__ == "ParametrizedConv1d"


class SharedUp(nn.Module):
    """One transposed conv applied twice (``up`` and ``up#2`` in the graph)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 3, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.tanh(self.up(x)))


def test_a_layer_called_twice_is_replaced_once() -> None:
    result = _fix(SharedUp(), torch.randn(1, 3, 4, 4), "resize-conv")
    assert [c.node for c in result.changes] == ["up"]
    assert isinstance(result.model.up, nn.Sequential)
    assert not _bad(result.report)


class OutputSize(nn.Module):
    """``up(x, output_size=...)``: only a transposed conv takes that keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 3, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x, output_size=[2 * x.shape[-2], 2 * x.shape[-1]])


def test_a_call_the_replacement_cannot_take_is_left_alone() -> None:
    x = torch.randn(1, 3, 5, 5)
    left = _fix(OutputSize(), x, "resize-conv")
    (change,) = left.skipped
    assert "output_size=" in change.reason
    assert isinstance(left.model.up, nn.ConvTranspose2d)
    kept = _fix(OutputSize(), x, "kernel")
    assert kept.replaced and _output_shapes(kept.model, (x,)) == [(1, 3, 10, 10)]


def test_anisotropic_stride() -> None:
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, (3, 3), stride=(2, 1), padding=1))
    x = torch.randn(1, 2, 5, 6)
    resized = _fix(model, x, "resize-conv")
    assert "scale_factor=(2.0, 1.0)" in resized.replaced[0].after
    assert _output_shapes(resized.model, (x,)) == _output_shapes(model, (x,))
    subpixel = _fix(model, x, "subpixel")
    assert "same stride on every axis" in subpixel.skipped[0].reason


def test_holes_are_fixed() -> None:
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 1, stride=2))  # DL002: 1 tap in 4 phases
    x = torch.randn(1, 2, 5, 5)
    for strategy in ("kernel", "resize-conv"):
        result = _fix(model, x, strategy)
        assert result.changes[0].rules == ("DL002",) and result.replaced
        assert _output_shapes(result.model, (x,)) == [(1, 2, 9, 9)]
        assert not _bad(result.report)
    # 2n - 1 is odd: no sub-pixel layer gives it
    assert "2*n-1 is not a multiple" in _fix(model, x, "subpixel").skipped[0].reason


# --- errors --------------------------------------------------------------------------------------


def test_errors() -> None:
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=2))
    with pytest.raises(ValueError, match="strategy: expected one of kernel, resize-conv"):
        deconvlint.fix(model, torch.randn(1, 2, 4, 4), "bilinear", config=DEFAULTS)
    with pytest.raises(ValueError, match="needs example_inputs"):
        deconvlint.fix(model, None, config=DEFAULTS)
    with pytest.raises(TypeError, match=r"expects a torch\.nn\.Module"):
        deconvlint.fix("model.onnx", torch.randn(1, 2, 4, 4), config=DEFAULTS)
    with pytest.raises(TraceError, match="does not run on the example inputs"):
        deconvlint.fix(model, torch.randn(1, 3, 4, 4), config=DEFAULTS)  # 3 channels, not 2


# --- the size algebra ------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [2, 3, 4])
@pytest.mark.parametrize("kernel", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_solve_subpixel_keeps_the_length(kernel: int, stride: int, padding: int) -> None:
    for output_padding in range(stride):
        win = WindowAxis(kernel, stride, 1, padding, padding, output_padding)
        solved = solve_subpixel(win)
        if (excess(win) + 1) % stride:
            assert solved is None
            continue
        assert solved is not None
        k, p = solved
        for n in (3, 4, 7):
            want = (n - 1) * stride - 2 * padding + kernel + output_padding
            assert stride * (n + 2 * p - k + 1) == want


# --- the verification catches a wrong replacement ------------------------------------------------


def test_a_replacement_that_stays_uneven_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from deconvlint.rewrites import replacements

    def same_layer(node: Any, module: nn.Module) -> replacements.Plan:
        return replacements.Plan(copy.deepcopy(module), "nn.Identity()")  # still k3 s2

    monkeypatch.setattr(replacements, "_kernel", same_layer)
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1))
    with pytest.raises(FixError, match="the replaced layers are still reported"):
        deconvlint.fix(model, torch.randn(1, 2, 4, 4), config=DEFAULTS)


def test_a_replacement_that_changes_the_shape_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deconvlint.rewrites import replacements

    def wrong_size(node: Any, module: nn.Module) -> replacements.Plan:
        return replacements.Plan(nn.ConvTranspose2d(2, 2, 4, stride=2), "nn.ConvTranspose2d(...)")

    monkeypatch.setattr(replacements, "_kernel", wrong_size)
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1))
    result = _fix(model, torch.randn(1, 2, 4, 4), "kernel")
    (change,) = result.skipped
    assert "would change the output shape (1, 2, 8, 8) to (1, 2, 10, 10)" in change.reason

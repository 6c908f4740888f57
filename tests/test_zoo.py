"""Acceptance tests on the model zoo (``tests/support/zoo.py``): known architectures, known verdicts.

For every model: the verdict on every upsampling layer and every other finding, by qualified
module name; the tracer that read it; the same findings from its ONNX export; and every
suggestion for a flagged layer, evaluated as code and swapped into the model, keeps the output
shape and clears the layer.  The ``optional`` group checks real library models (MONAI) when that
library is installed.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import deconvlint  # noqa: E402
from deconvlint.config.settings import Settings  # noqa: E402
from deconvlint.report import Finding, Report  # noqa: E402
from tests.support.zoo import ZOO, ZooEntry  # noqa: E402

pytestmark = pytest.mark.torch

DEFAULTS = Settings()  # every default rule; no configuration file from the cwd

# Layers that raise the resolution, as modules (functional ones are listed by node name below).
UPSAMPLING_MODULES = (
    torch.nn.ConvTranspose1d,
    torch.nn.ConvTranspose2d,
    torch.nn.ConvTranspose3d,
    torch.nn.Upsample,
    torch.nn.PixelShuffle,
    torch.nn.MaxUnpool1d,
    torch.nn.MaxUnpool2d,
    torch.nn.MaxUnpool3d,
)

CLEAN: tuple[str, ...] = ()
WARN, INFO = "warning", "info"


def _v(*pairs: str) -> tuple[str, ...]:
    return tuple(sorted(pairs))


# model -> the tracer expected to read it
TRACER = {
    "dcgan": "hooks",
    "pix2pix_unet": "hooks",
    "cyclegan_resnet": "hooks",
    "espcn": "hooks",
    "srgan": "hooks",
    "style_transfer": "hooks",
    "stylegan2_up": "hooks",
    "hifigan": "hooks",
    "wavegan": "hooks",
    "unet3d": "hooks",
    "gated_decoder": "hooks",
    "size_adaptive": "hooks",
    "functional": "hooks",
    "autoencoder": "hooks",
}

# model -> {node: findings as "RULE:severity"}; UPSAMPLERS holds every upsampling layer (clean
# ones too), OTHERS any other node with a finding.  Together they are all the findings.  A
# functional call is named "module:function" by the torch front end ("tanh" at the top level).
UPSAMPLERS: dict[str, dict[str, tuple[str, ...]]] = {
    "dcgan": {f"main.{i}": CLEAN for i in (0, 3, 6, 9, 12)},
    "pix2pix_unet": {
        "model.model.3": CLEAN,
        "model.model.1.model.5": CLEAN,
        "model.model.1.model.3.model.5": CLEAN,
        "model.model.1.model.3.model.3.model.5": CLEAN,
        "model.model.1.model.3.model.3.model.3.model.5": CLEAN,
        "model.model.1.model.3.model.3.model.3.model.3.model.3": CLEAN,  # innermost
    },
    "cyclegan_resnet": {
        "model.19": _v(f"DL001:{WARN}"),
        "model.22": _v(f"DL001:{WARN}", f"DL003:{WARN}"),
    },
    "espcn": {"last_part.1": CLEAN},
    "srgan": {"block8.0.pixel_shuffle": CLEAN, "block8.1.pixel_shuffle": CLEAN},
    "style_transfer": {"deconv1:interpolate": CLEAN, "deconv2:interpolate": CLEAN},
    "stylegan2_up": {"blocks.0.conv": _v(f"DL001:{INFO}"), "blocks.1.conv": _v(f"DL001:{INFO}")},
    "hifigan": {f"ups.{i}": CLEAN for i in range(4)},
    "wavegan": {
        "deconv_1": _v(f"DL001:{WARN}"),
        "deconv_2": _v(f"DL001:{WARN}"),
        "deconv_3": _v(f"DL001:{WARN}"),
        "deconv_4": _v(f"DL001:{WARN}"),
        "deconv_5": _v(f"DL001:{WARN}", f"DL003:{WARN}"),
    },
    "unet3d": {
        "model.1.submodule.2.conv": _v(f"DL001:{WARN}"),
        "model.2.conv": _v(f"DL001:{WARN}", f"DL003:{WARN}"),  # the output itself
    },
    "gated_decoder": {"up": _v(f"DL001:{WARN}")},
    "size_adaptive": {"up": CLEAN},
    "functional": {
        # [1, 2] then nearest x3/2 reads phases [1, 1, 2]: the 3x3 head sums to 4 everywhere
        "conv_transpose2d": _v(f"DL001:{INFO}"),
        "interpolate": _v(f"DL005:{WARN}"),
    },
    "autoencoder": {
        "decoder.0": _v(f"DL001:{WARN}"),
        "decoder.3": _v(f"DL001:{WARN}", f"DL003:{WARN}"),
    },
}

OTHERS: dict[str, dict[str, tuple[str, ...]]] = {
    # No DL004: every uneven output here is explained by the DL001/DL003 findings above, which
    # carry the output's coverage (metrics["outputs"]); see test_outputs_ride_on_their_cause.
    # default-initialised sub-pixel convs: their r^2 sub-kernels differ (no ICNR)
    "espcn": {"last_part.0": _v(f"DL008:{INFO}")},
    "srgan": {"block8.0.conv": _v(f"DL008:{INFO}"), "block8.1.conv": _v(f"DL008:{INFO}")},
}

# DL006 is opt-in: what it finds when selected
STRIDED_GRADIENTS: dict[str, tuple[str, ...]] = {
    "cyclegan_resnet": ("model.4", "model.7"),  # Conv k3 s2 p1: backward fan-out [1, 2]
    "style_transfer": ("conv2.conv2d", "conv3.conv2d"),  # reflection pad 1 + Conv k3 s2
    "unet3d": ("model.0.conv", "model.1.submodule.0.conv"),
}

# model -> (the finding carrying the output's coverage, the output's producer) where the
# output's pattern is uneven (a DL004 before findings were folded into their cause)
OUTPUT_CARRIERS: dict[str, tuple[tuple[str, str], str]] = {
    "cyclegan_resnet": (("model.22", "DL003"), "model.27"),  # a 7x7 conv does not even it out
    "wavegan": (("deconv_5", "DL003"), "tanh"),
    "unet3d": (("model.2.conv", "DL003"), "model.2.conv"),
    "gated_decoder": (("up", "DL001"), "tanh"),
    "autoencoder": (("decoder.3", "DL003"), "decoder.5"),
}


def _expected(model: str) -> set[tuple[str, str]]:
    table = {**UPSAMPLERS[model], **OTHERS.get(model, {})}
    return {(node, verdict) for node, verdicts in table.items() for verdict in verdicts}


def _found(report: Report) -> set[tuple[str, str]]:
    return {(f.node, f"{f.rule}:{f.severity}") for f in report.findings}


class _Reports(dict):
    """Each zoo model checked once through the torch front end, when a test first asks."""

    def __missing__(self, name: str) -> Report:
        entry = ZOO[name]
        self[name] = deconvlint.check(entry.model(), entry.inputs(), config=DEFAULTS)
        return self[name]


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    return _Reports()


def test_every_model_has_expectations() -> None:
    assert set(ZOO) == set(TRACER) == set(UPSAMPLERS)


@pytest.mark.parametrize("name", list(ZOO))
def test_every_upsampling_module_has_a_verdict(name: str) -> None:
    modules = [
        qualified
        for qualified, module in ZOO[name].model().named_modules()
        if isinstance(module, UPSAMPLING_MODULES)
    ]
    missing = [m for m in modules if m not in UPSAMPLERS[name]]
    assert not missing, f"{name}: no expected verdict for upsampling layers {missing}"


@pytest.mark.parametrize("name", list(ZOO))
def test_verdicts(name: str, reports: dict[str, Report]) -> None:
    report = reports[name]
    found, expected = _found(report), _expected(name)
    assert found == expected, (
        f"{name}: unexpected {sorted(found - expected)}, missing {sorted(expected - found)}\n"
        f"{report}"
    )


@pytest.mark.parametrize("name", list(OUTPUT_CARRIERS))
def test_outputs_ride_on_their_cause(name: str, reports: dict[str, Report]) -> None:
    (node, rule), producer = OUTPUT_CARRIERS[name]
    carriers = [f for f in reports[name].findings if f.metrics.get("outputs")]
    assert [(f.node, f.rule) for f in carriers] == [(node, rule)], str(reports[name])
    assert [o["node"] for o in carriers[0].metrics["outputs"]] == [producer]
    alone = deconvlint.check(ZOO[name].model(), ZOO[name].inputs(), config=_ONLY_DL004)
    assert [(f.node, f.rule) for f in alone.findings] == [(producer, "DL004")]


_ONLY_DL004 = Settings(select=("DL004",))


@pytest.mark.parametrize("name", list(STRIDED_GRADIENTS))
def test_strided_gradients_when_selected(name: str) -> None:
    report = deconvlint.check(
        ZOO[name].model(), ZOO[name].inputs(), config=Settings(select=("DL006",))
    )
    assert sorted(f.node for f in report.findings) == sorted(STRIDED_GRADIENTS[name])
    assert {f.severity for f in report.findings} == {INFO}


@pytest.mark.parametrize("name", list(ZOO))
def test_tracer(name: str, reports: dict[str, Report]) -> None:
    assert reports[name].frontend == TRACER[name]


def _one(report: Report, node: str, rule: str) -> Finding:
    (finding,) = [f for f in report.findings if f.node == node and f.rule == rule]
    return finding


def test_unet3d_ratio_is_8_in_3d(reports: dict[str, Report]) -> None:
    for node in UPSAMPLERS["unet3d"]:
        finding = _one(reports["unet3d"], node, "DL001")
        assert finding.metrics["pattern"] == [[1, 2]] * 3
        assert finding.metrics["ratio"] == 8
        assert "in 3-D" in finding.message
    stack = _one(reports["unet3d"], "model.2.conv", "DL003")
    assert stack.metrics["ratio"] == 27  # [1, 3, 2, 3] per axis, cubed


def test_wavegan_pattern(reports: dict[str, Report]) -> None:
    finding = _one(reports["wavegan"], "deconv_1", "DL001")
    assert finding.metrics["pattern"] == [[6, 7, 6, 6]]
    assert finding.metrics["ratio"] == pytest.approx(7 / 6, abs=1e-4)


def test_cyclegan_stack_compounds(reports: dict[str, Report]) -> None:
    stack = _one(reports["cyclegan_resnet"], "model.22", "DL003")
    assert stack.metrics["nodes"] == ["model.19", "model.22"]
    assert stack.metrics["effect"] == "compounds"
    assert stack.metrics["ratio"] == 9


def test_stylegan2_blur_is_named(reports: dict[str, Report]) -> None:
    for block in ("blocks.0", "blocks.1"):
        finding = _one(reports["stylegan2_up"], f"{block}.conv", "DL001")
        assert "compensated downstream by" in finding.message
        assert f"'{block}.blur" in finding.message, finding.message


def test_sequential_names(reports: dict[str, Report]) -> None:
    assert [f.node for f in reports["autoencoder"].findings][:2] == ["decoder.0", "decoder.3"]
    assert str(reports["autoencoder"]).startswith("<ConvAutoencoder>:decoder.0: DL001 [warning]")


# --- the same findings from the ONNX export ---------------------------------------------------------


def _onnx_export(entry: ZooEntry, exporter: str) -> Any:
    """The model's ONNX export: ``torchscript`` (``dynamo=False``) or ``dynamo`` (the default)."""
    onnx = pytest.importorskip("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        if exporter == "torchscript":
            buffer = io.BytesIO()
            torch.onnx.export(entry.model(), entry.inputs(), buffer, dynamo=False)
            return onnx.load_from_string(buffer.getvalue())
        pytest.importorskip("onnxscript", reason="torch's default ONNX exporter needs onnxscript")
        program = torch.onnx.export(entry.model(), entry.inputs(), dynamo=True, verbose=False)
        return program.model_proto


def _signature(finding: Finding) -> tuple:
    """A finding without node and value names (which differ between the two readers): how many
    nodes it names, and whether it names an output, stay."""
    names = ("nodes", "output", "shuffle", "compensated_by")
    metrics = {k: v for k, v in finding.metrics.items() if k not in names}
    metrics["nodes"] = len(finding.metrics.get("nodes", ()))
    metrics["output"] = "output" in finding.metrics
    if "outputs" in finding.metrics:  # the coverage at each output, without its names
        metrics["outputs"] = [
            {k: v for k, v in entry.items() if k not in ("output", "node")}
            for entry in finding.metrics["outputs"]
        ]
    suggestions = [
        (
            s.title,
            list(s.params.values()) if s.title.startswith("Rewrite every layer") else s.params,
            "\n".join(line for line in s.code.splitlines() if not line.startswith("# ")),
        )
        for s in finding.suggestions
    ]
    return finding.rule, finding.severity, metrics, suggestions


# The TorchScript exporter computes the pads of nn.ReflectionPad2d and F.pad with Constant ->
# ConstantOfShape -> Concat -> Reshape -> Slice -> Transpose -> Reshape -> Cast (CycleGAN,
# StyleGAN2's blur); the default (dynamo) exporter writes them as an initializer.  torch.export,
# which the default exporter runs first, refuses gated_decoder's data-dependent branch.
ONNX_CASES = [
    *[pytest.param(name, "torchscript", id=f"{name}-torchscript") for name in ZOO],
    *[
        pytest.param(name, "dynamo", id=f"{name}-dynamo", marks=pytest.mark.slow)
        for name in ZOO
        if name != "gated_decoder"
    ],
]


@pytest.mark.parametrize(("name", "exporter"), ONNX_CASES)
def test_same_findings_as_onnx_export(name: str, exporter: str, reports: dict[str, Report]) -> None:
    by_torch = reports[name]
    by_onnx = deconvlint.check(_onnx_export(ZOO[name], exporter), config=DEFAULTS)
    assert by_onnx.frontend == "onnx"
    torch_side = [_signature(f) for f in by_torch.findings]
    onnx_side = [_signature(f) for f in by_onnx.findings]
    assert torch_side == onnx_side, f"{name}: torch front end\n{by_torch}\n\nONNX export\n{by_onnx}"


# --- a depthwise fixed filter is recognised by its values on both paths -------------------------


class _FilteredUp(torch.nn.Module):
    """ConvT k3 s2 (phases [2, 1]) then a depthwise [1, 2, 1] blur, held as ``how`` says.

    The blur makes the pattern uniform (DL001 info); a learnable all-ones 3x3 would not (DL001
    warning and DL004).  ONNX cannot tell a trained initializer from a buffer, so both front ends
    decide by the values: equal on every channel is a fixed filter, trainable or not.
    """

    def __init__(self, how: str, channels: int = 4) -> None:
        super().__init__()
        self.how, self.channels = how, channels
        self.up = torch.nn.ConvTranspose2d(channels, channels, 3, stride=2)
        taps = torch.tensor([1.0, 2.0, 1.0])
        blur = torch.outer(taps, taps) / 16
        if how == "buffer":
            self.register_buffer("kernel", blur.expand(channels, 1, 3, 3).clone())
        elif how == "buffer_expanded_in_forward":
            self.register_buffer("kernel", blur[None, None].clone())
        elif how == "frozen_parameter":
            self.kernel = torch.nn.Parameter(blur.expand(channels, 1, 3, 3).clone(), False)
        elif how == "trainable_parameter":  # initialised to the blur
            self.kernel = torch.nn.Parameter(blur.expand(channels, 1, 3, 3).clone())
        elif how == "trainable_shared":
            self.kernel = torch.nn.Parameter(blur[None, None].clone())
        elif how == "trainable_per_channel":  # kaiming init: not equal across channels
            self.kernel = torch.nn.Conv2d(channels, channels, 3, groups=channels).weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel.expand(self.channels, 1, 3, 3)
        return torch.nn.functional.conv2d(self.up(x), kernel, padding=1, groups=self.channels)


FILTERS = {
    "buffer": _v(f"DL001:{INFO}"),
    "buffer_expanded_in_forward": _v(f"DL001:{INFO}"),
    "frozen_parameter": _v(f"DL001:{INFO}"),
    "trainable_parameter": _v(f"DL001:{INFO}"),
    "trainable_shared": _v(f"DL001:{INFO}"),
    "trainable_per_channel": _v(f"DL001:{WARN}"),  # which carries the output's coverage
}


@pytest.mark.parametrize(
    "exporter", ["torchscript", pytest.param("dynamo", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("how", list(FILTERS))
def test_depthwise_filters_agree_with_the_onnx_export(how: str, exporter: str) -> None:
    entry = ZooEntry(how, lambda: _FilteredUp(how), ((1, 4, 8, 8),))
    by_torch = deconvlint.check(entry.model(), entry.inputs(), config=DEFAULTS)
    assert tuple(sorted(f"{f.rule}:{f.severity}" for f in by_torch.findings)) == FILTERS[how]
    by_onnx = deconvlint.check(_onnx_export(entry, exporter), config=DEFAULTS)
    torch_side = [_signature(f) for f in by_torch.findings]
    onnx_side = [_signature(f) for f in by_onnx.findings]
    assert torch_side == onnx_side, f"{how}: torch front end\n{by_torch}\n\nONNX export\n{by_onnx}"


# --- suggestions become code ---------------------------------------------------------------------


def _swap(model: torch.nn.Module, qualified: str, replacement: torch.nn.Module) -> None:
    parent_name, _, child = qualified.rpartition(".")
    setattr(model.get_submodule(parent_name), child, replacement)


def _is_module(model: torch.nn.Module, qualified: str) -> bool:
    try:
        model.get_submodule(qualified)
    except AttributeError:
        return False
    return True


# models with a flagged layer that is a module (functional's layer is F.conv_transpose2d)
PATCHABLE = [
    name
    for name, table in UPSAMPLERS.items()
    if name != "functional"
    and any(v.startswith(("DL001", "DL002")) for vs in table.values() for v in vs)
]


@pytest.mark.parametrize("name", PATCHABLE)
def test_suggestions_become_code(name: str, reports: dict[str, Report]) -> None:
    entry = ZOO[name]
    model, inputs = entry.model(), entry.inputs()
    with torch.no_grad():
        shape = model(*inputs).shape
    flagged = [f for f in reports[name].findings if f.rule in ("DL001", "DL002")]
    assert flagged
    for finding in flagged:
        assert _is_module(model, finding.node), finding.node
        assert len(finding.suggestions) == 2, finding
        for suggestion in finding.suggestions:
            replacement = eval(suggestion.code, {"nn": torch.nn})
            patched = copy.deepcopy(model)
            _swap(patched, finding.node, replacement)
            patched.eval()
            with torch.no_grad():
                new_shape = patched(*inputs).shape
            where = f"{name}:{finding.node} <- {suggestion.title}"
            assert new_shape == shape, f"{where}: output {tuple(new_shape)} != {tuple(shape)}"
            after = deconvlint.check(patched, inputs, config=DEFAULTS)
            still = [
                f"{f.node}: {f.rule}"
                for f in after.findings
                if f.rule in ("DL001", "DL002")
                and (f.node == finding.node or f.node.startswith(finding.node + "."))
            ]
            assert not still, f"{where}: still reported {still}\n{after}"


# --- real library models (optional) --------------------------------------------------------------


def _monai() -> Any:
    return pytest.importorskip(
        "monai",
        reason="MONAI is not installed (pip install monai --no-deps; it needs no other torch)",
    )


def _conv_transposes(model: torch.nn.Module) -> list[str]:
    kinds = (torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    return [name for name, module in model.named_modules() if isinstance(module, kinds)]


@pytest.mark.optional
def test_monai_unet_matches_the_zoo_unet() -> None:
    nets = _monai().networks.nets
    model = nets.UNet(
        spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2)
    ).eval()
    inputs = ZOO["unet3d"].inputs()
    report = deconvlint.check(model, inputs, config=DEFAULTS)
    zoo = deconvlint.check(ZOO["unet3d"].model(), inputs, config=DEFAULTS)
    assert _found(report) == _found(zoo), f"MONAI ({report.frontend})\n{report}"
    assert report.frontend == "hooks"


@pytest.mark.optional
def test_monai_unet_with_residual_units() -> None:
    nets = _monai().networks.nets
    model = nets.UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=2,
        channels=(4, 8, 16),
        strides=(2, 2),
        num_res_units=2,
    ).eval()
    report = deconvlint.check(model, (torch.randn(1, 1, 32, 32),), config=DEFAULTS)
    ups = _conv_transposes(model)
    assert len(ups) == 2
    for node in ups:
        finding = _one(report, node, "DL001")
        assert finding.severity == WARN and finding.metrics["ratio"] == 4
    assert report.frontend == "hooks"


@pytest.mark.optional
def test_monai_basic_unet_is_clean() -> None:
    nets = _monai().networks.nets
    model = nets.BasicUNet(
        spatial_dims=3, in_channels=1, out_channels=2, features=(2, 2, 4, 8, 16, 2)
    ).eval()
    report = deconvlint.check(model, (torch.randn(1, 1, 32, 32, 32),), config=DEFAULTS)
    assert len(_conv_transposes(model)) == 4  # ConvTranspose3d k2 s2: kernel = stride
    bad = [f for f in report.findings if f.rule in ("DL001", "DL002", "DL003", "DL004")]
    assert not bad, str(report)
    assert report.frontend == "hooks"  # UpCat pads by comparing shapes: fx cannot trace it


def _monai_models() -> dict[str, Any]:
    nets = _monai().networks.nets
    return {
        "UNet-3d": (
            lambda: nets.UNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2)),
            (1, 1, 16, 16, 16),
        ),
        "UNet-residual-2d": (
            lambda: nets.UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=2),
            (1, 1, 32, 32),
        ),
        "BasicUNet-3d": (
            lambda: nets.BasicUNet(3, 1, 2, features=(2, 2, 4, 8, 16, 2)),
            (1, 1, 32, 32, 32),
        ),
        "AutoEncoder-2d": (
            lambda: nets.AutoEncoder(2, 1, 1, channels=(4, 8, 16), strides=(2, 2, 2)),
            (1, 1, 32, 32),
        ),
    }


@pytest.mark.optional
@pytest.mark.parametrize("name", ["UNet-3d", "UNet-residual-2d", "BasicUNet-3d", "AutoEncoder-2d"])
def test_monai_models_give_the_findings_of_their_onnx_export(name: str) -> None:
    build, shape = _monai_models()[name]
    entry = ZooEntry(name, build, (shape,))
    by_torch = deconvlint.check(entry.model(), entry.inputs(), config=DEFAULTS)
    by_onnx = deconvlint.check(_onnx_export(entry, "torchscript"), config=DEFAULTS)
    assert by_torch.frontend == "hooks"
    # rule, severity and metrics: the suggestions differ by design (a layer MONAI builds gets
    # MONAI's own rewrite, which the ONNX export cannot know)
    torch_side = [_signature(f)[:3] for f in by_torch.findings]
    onnx_side = [_signature(f)[:3] for f in by_onnx.findings]
    assert torch_side == onnx_side, f"{name}: torch front end\n{by_torch}\n\nONNX export\n{by_onnx}"


@pytest.mark.optional
@pytest.mark.slow
def test_asteroid_dcunet_places_every_transposed_conv() -> None:
    """asteroid's complex U-Net (complex convolutions on ``.real``/``.imag``, ``torch.complex``,
    ``view_as_complex``): fx read an empty graph.  Its ONNX export fails (complex ops)."""
    models = pytest.importorskip("asteroid.models", reason="asteroid is not installed")
    model = models.DCUNet("DCUNet-10", fix_length_mode="pad").eval()
    inputs = (torch.randn(1, 4000, generator=torch.Generator().manual_seed(0)),)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = deconvlint.check(model, inputs, config=DEFAULTS)
    ups = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    flagged = {f.node for f in report.findings if f.rule == "DL001"}
    assert report.frontend == "hooks" and not report.results[0].notes
    assert len(ups) == 10 and set(ups) <= flagged  # every one, by its qualified name
    assert any(f.rule == "DL003" for f in report.findings)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())

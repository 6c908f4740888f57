"""Suggestions a user can apply to a layer a library builds (issue 16): MONAI's UNet,
AttentionUnet and VarAutoEncoder get the subclass that works (their own parameters cannot fix
it), diffusers' Upsample2D gets its own parameters.  Each suggested code is run: it builds,
keeps the output shape, and checks clean."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

import deconvlint  # noqa: E402

pytestmark = pytest.mark.optional
STRUCTURAL = ["DL001", "DL002", "DL003", "DL004", "DL005"]


def _findings(model, x):
    return deconvlint.check(model.eval(), x, select=STRUCTURAL).findings


def _suggested(model, x, cls: str):
    """The library suggestion on the flagged transposed convs, and the class its code defines."""
    found = [f for f in _findings(model, x) if f.rule == "DL001"]
    assert found, "the default configuration should be flagged"
    suggestion = found[0].suggestions[0]
    assert all(f.suggestions[0].code == suggestion.code for f in found)
    assert suggestion.params["class"] == cls
    assert f"MONAI's {cls} has no parameter" in suggestion.title
    namespace: dict = {}
    exec(compile(suggestion.code, "<suggestion>", "exec"), namespace)  # the code as shown
    return suggestion, namespace[f"ResizeConv{cls}"]


def _same_and_clean(original, rewritten, x) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        assert rewritten.eval()(x).shape == original.eval()(x).shape
    assert _findings(rewritten, x) == []


def test_monai_unet_up_kernel_size_4_is_refused_by_monai() -> None:
    """Why the plain rewrite cannot go through UNet's parameters."""
    from monai.networks.nets import UNet

    with pytest.raises(NotImplementedError):
        UNet(2, 1, 1, (4, 8, 16), (2, 2), up_kernel_size=4)


@pytest.mark.parametrize("num_res_units", [0, 2])
def test_monai_unet_suggestion_subclass_runs_and_is_clean(num_res_units: int) -> None:
    from monai.networks.nets import UNet

    args = dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16, 32),
                strides=(2, 2, 2), num_res_units=num_res_units)  # fmt: skip
    x = torch.randn(1, 1, 32, 32)
    _, subclass = _suggested(UNet(**args), x, "UNet")
    _same_and_clean(UNet(**args), subclass(**args), x)


def test_monai_unet_3d_suggestion_is_clean() -> None:
    from monai.networks.nets import UNet

    args = dict(spatial_dims=3, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,))
    x = torch.randn(1, 1, 16, 16, 16)
    _, subclass = _suggested(UNet(**args), x, "UNet")
    _same_and_clean(UNet(**args), subclass(**args), x)


def test_monai_attention_unet_suggestion_subclass_runs_and_is_clean() -> None:
    from monai.networks.nets import AttentionUnet

    args = dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2))
    x = torch.randn(1, 1, 32, 32)
    _, subclass = _suggested(AttentionUnet(**args), x, "AttentionUnet")
    _same_and_clean(AttentionUnet(**args), subclass(**args), x)


def test_monai_varautoencoder_suggestion_subclass_runs_and_is_clean() -> None:
    from monai.networks.nets import VarAutoEncoder

    args = dict(spatial_dims=2, in_shape=(1, 32, 32), out_channels=1, latent_size=4,
                channels=(4, 8), strides=(2, 2))  # fmt: skip
    x = torch.randn(1, 1, 32, 32)
    original = VarAutoEncoder(**args)
    _, subclass = _suggested(original, x, "VarAutoEncoder")
    rewritten = subclass(**args)
    torch.manual_seed(0)
    with torch.no_grad():  # (reconstruction, mu, logvar, z)
        assert rewritten.eval()(x)[0].shape == original.eval()(x)[0].shape
    assert [f.rule for f in _findings(rewritten, x) if f.rule != "DL004"] == []


def test_diffusers_upsample2d_gets_its_own_parameters() -> None:
    pytest.importorskip("diffusers")
    from diffusers.models.upsampling import Upsample2D

    class Net(torch.nn.Module):
        def __init__(self, up):
            super().__init__()
            self.up = up

        def forward(self, x):
            return self.up(x)

    x = torch.randn(1, 4, 8, 8)
    flagged = Net(Upsample2D(4, use_conv_transpose=True, kernel_size=3))
    found = [f for f in _findings(flagged, x) if f.rule == "DL001"]
    assert [f.node for f in found] == ["up.conv"]
    codes = [s.code for s in found[0].suggestions]
    assert codes == [
        "Upsample2D(4, out_channels=4, use_conv_transpose=True, kernel_size=4, padding=1)",
        "Upsample2D(4, out_channels=4, use_conv=True)",
    ]
    for code in codes:
        rewritten = Net(eval(code, {"Upsample2D": Upsample2D}))
        with torch.no_grad():
            assert rewritten(x).shape == (1, 4, 16, 16)
        assert _findings(rewritten, x) == []


def test_a_users_own_layers_keep_the_layer_rewrite() -> None:
    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)

        def forward(self, x):
            return self.up(x)

    found = _findings(Decoder(), torch.randn(1, 4, 8, 8))
    assert "nn.ConvTranspose2d(4, 4, kernel_size=4" in found[0].suggestions[0].code

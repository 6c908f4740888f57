"""Rewrites for layers that an installed library's class builds (MONAI, diffusers).

A flagged ``ConvTranspose`` inside MONAI's ``UNet`` cannot take the usual rewrite through
MONAI's own parameters: ``up_kernel_size=4`` raises ``NotImplementedError`` (MONAI pads "same"
and needs an odd kernel), and MONAI's transposed ``Convolution`` always adds ``output_padding =
stride - 1``, so an even kernel could not keep the size anyway.  The suggestion then says so
and gives the subclass that works (resize, then convolve with stride 1).  A class that has the
parameter (diffusers' ``Upsample2D(kernel_size=...)``) gets that parameter.  Each code sample is
tested: it runs, keeps the output shape, and checks clean.

Pure Python: the classes are matched by name (``SourceLine.owners`` from the torch front end),
never imported here.

>>> from deconvlint.core.ir import Kind, Node
>>> node = Node("model.2.conv", "ConvTranspose2d", Kind.CONV_TRANSPOSE, ("x",), ("y",))
>>> [s.params["class"] for s in library_suggestions((("", "monai.networks.nets.unet.UNet"),), node)]
['UNet']
"""

from __future__ import annotations

from collections.abc import Callable

from deconvlint.core.ir import Node
from deconvlint.report import Suggestion

_MONAI_UNET = '''\
import torch.nn as nn
from monai.networks.nets import UNet


class ResizeConvUNet(UNet):
    """UNet whose up layers resize (nearest), then convolve with stride 1."""

    def _get_up_layer(self, in_channels, out_channels, strides, is_top):
        layer = super()._get_up_layer(in_channels, out_channels, 1, is_top)
        return nn.Sequential(nn.Upsample(scale_factor=strides, mode="nearest"), layer)


# model = ResizeConvUNet(...same arguments as UNet...)
'''

_MONAI_AUTOENCODER = '''\
import torch.nn as nn
from monai.networks.nets import {cls}


class ResizeConv{cls}({cls}):
    """{cls} whose decoder layers resize (nearest), then convolve with stride 1."""

    def _get_decode_layer(self, in_channels, out_channels, strides, is_last):
        layer = super()._get_decode_layer(in_channels, out_channels, 1, is_last)
        return nn.Sequential(nn.Upsample(scale_factor=strides, mode="nearest"), layer)


# model = ResizeConv{cls}(...same arguments as {cls}...)
'''

_MONAI_ATTENTION_UNET = '''\
import torch.nn as nn
from monai.networks.nets import AttentionUnet
from monai.networks.nets.attentionunet import UpConv


class ResizeConvAttentionUnet(AttentionUnet):
    """AttentionUnet whose up-convolutions resize (nearest), then convolve with stride 1."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for module in self.modules():
            if isinstance(module, UpConv) and max(module.up.conv.stride) > 1:
                transposed = module.up.conv
                conv = getattr(nn, f"Conv{len(transposed.stride)}d")(
                    transposed.in_channels,
                    transposed.out_channels,
                    transposed.kernel_size,
                    padding=transposed.padding,
                    bias=transposed.bias is not None,
                )
                module.up.conv = nn.Sequential(
                    nn.Upsample(scale_factor=transposed.stride, mode="nearest"), conv
                )


# model = ResizeConvAttentionUnet(...same arguments as AttentionUnet...)
'''

_NO_PARAMETER = (
    "MONAI's {cls} has no parameter for an even upsampling kernel ({param} must be odd: an "
    "even one raises NotImplementedError, and an odd one overlaps unevenly with stride 2); "
    "subclass it to resize, then convolve ({where})"
)


def _monai_unet(path: str, node: Node) -> list[Suggestion]:
    title = _NO_PARAMETER.format(cls="UNet", param="up_kernel_size", where="_get_up_layer")
    params = {"class": "UNet", "module": path or "model", "override": "_get_up_layer"}
    return [Suggestion(title, params, _MONAI_UNET)]


def _monai_autoencoder(cls: str) -> Callable[[str, Node], list[Suggestion]]:
    def suggest(path: str, node: Node) -> list[Suggestion]:
        title = _NO_PARAMETER.format(cls=cls, param="up_kernel_size", where="_get_decode_layer")
        params = {"class": cls, "module": path or "model", "override": "_get_decode_layer"}
        return [Suggestion(title, params, _MONAI_AUTOENCODER.format(cls=cls))]

    return suggest


def _monai_attention_unet(path: str, node: Node) -> list[Suggestion]:
    title = _NO_PARAMETER.format(cls="AttentionUnet", param="up_kernel_size", where="UpConv")
    params = {"class": "AttentionUnet", "module": path or "model", "override": "__init__"}
    return [Suggestion(title, params, _MONAI_ATTENTION_UNET)]


def _diffusers_upsample2d(path: str, node: Node) -> list[Suggestion]:
    channels = node.in_channels if node.in_channels is not None else "channels"
    out = node.out_channels if node.out_channels is not None else "out_channels"
    head = f"Upsample2D({channels}, out_channels={out}"
    return [
        Suggestion(
            "diffusers Upsample2D: kernel_size=4, padding=1 (its default with "
            "use_conv_transpose): kernel a multiple of the stride, output 2n",
            {"class": "Upsample2D", "module": path, "kernel_size": 4, "padding": 1},
            f"{head}, use_conv_transpose=True, kernel_size=4, padding=1)",
        ),
        Suggestion(
            "diffusers Upsample2D: use_conv=True: nearest x2, then a 3x3 conv, output 2n",
            {"class": "Upsample2D", "module": path, "use_conv": True},
            f"{head}, use_conv=True)",
        ),
    ]


#: Known library classes, by ``module.Class``; the innermost enclosing one wins.
KNOWN: dict[str, Callable[[str, Node], list[Suggestion]]] = {
    "monai.networks.nets.unet.UNet": _monai_unet,
    "monai.networks.nets.attentionunet.AttentionUnet": _monai_attention_unet,
    "monai.networks.nets.varautoencoder.VarAutoEncoder": _monai_autoencoder("VarAutoEncoder"),
    "monai.networks.nets.autoencoder.AutoEncoder": _monai_autoencoder("AutoEncoder"),
    "diffusers.models.upsampling.Upsample2D": _diffusers_upsample2d,
}


def library_suggestions(owners: tuple[tuple[str, str], ...], node: Node) -> list[Suggestion]:
    """The library-level rewrites for a layer inside the known classes ``owners`` (qualified
    name and class, outermost first), or ``[]``."""
    for path, cls in reversed(owners):
        suggest = KNOWN.get(cls)
        if suggest is not None:
            return suggest(path, node)
    return []

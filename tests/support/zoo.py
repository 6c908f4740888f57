"""Tiny versions of known upsampling networks, written after their published definitions.

Channel counts are tiny so that tracing and export take milliseconds; the layer geometry
(kernel, stride, padding, output padding, dilation), the order of the layers, the skips and the
module names follow the reference code named in each docstring, so that the qualified names
(``main.3``, ``model.1.model.3.model.3``, ``ups.0``) are the ones a user of that code sees.

Every builder returns the model in eval mode, with weights seeded; :data:`ZOO` lists them with
their example input shapes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# --- DCGAN (Radford, Metz & Chintala 2016; the PyTorch DCGAN tutorial's Generator) ------------


class DCGANGenerator(nn.Module):
    """A 1x1 latent to a 64x64 image: ConvT k4 s1 p0, then four ConvT k4 s2 p1."""

    def __init__(self, nz: int = 8, ngf: int = 4, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


# --- pix2pix U-Net (Isola et al. 2017; junyanz/pytorch-CycleGAN-and-pix2pix networks.py) ------


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down (Conv k4 s2 p1), the inner levels, up (ConvT k4 s2 p1),
    and the skip concatenation (except at the outermost level)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer is nn.InstanceNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(
                inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """``num_downs`` levels built from the innermost out; 64x64 input for ``num_downs=6``."""

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 6, ngf: int = 2
    ) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=True)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)


# --- CycleGAN ResnetGenerator (Zhu et al. 2017; same file, after Johnson et al.) ---------------


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm_layer: type[nn.Module], use_bias: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Reflection pad + 7x7 conv, two Conv k3 s2 p1, ``n_blocks`` residual blocks, two ConvT
    k3 s2 p1 op1, reflection pad + 7x7 conv, tanh (``resnet_9blocks``, instance norm)."""

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, ngf: int = 4, n_blocks: int = 9
    ) -> None:
        super().__init__()
        norm_layer = nn.InstanceNorm2d
        use_bias = True  # the reference sets bias when the norm is InstanceNorm2d
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            model += [
                nn.Conv2d(
                    ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias
                ),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**n_downsampling
        model += [ResnetBlock(ngf * mult, norm_layer, use_bias) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=use_bias,
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)


# --- ESPCN (Shi et al. 2016) and the SRGAN generator (Ledig et al. 2017) ------------------------


class ESPCN(nn.Module):
    """Features in low resolution (5x5 tanh, 3x3 tanh), then a 3x3 conv to r^2 channels and the
    sub-pixel shuffle."""

    def __init__(self, upscale_factor: int = 3, channels: int = 1) -> None:
        super().__init__()
        self.first_part = nn.Sequential(
            nn.Conv2d(channels, 8, kernel_size=5, padding=2),
            nn.Tanh(),
            nn.Conv2d(8, 4, kernel_size=3, padding=1),
            nn.Tanh(),
        )
        self.last_part = nn.Sequential(
            nn.Conv2d(4, channels * upscale_factor**2, kernel_size=3, padding=1),
            nn.PixelShuffle(upscale_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_part(self.first_part(x))


class SRResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))
        return x + residual


class UpsampleBlock(nn.Module):
    """Conv to r^2 times the channels, PixelShuffle(r), PReLU."""

    def __init__(self, in_channels: int, up_scale: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels * up_scale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(up_scale)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class SRGANGenerator(nn.Module):
    """9x9 conv, residual blocks, conv + BN with the long skip, log2(scale) upsample blocks,
    9x9 conv, (tanh + 1) / 2."""

    def __init__(self, scale_factor: int = 4, channels: int = 8, n_blocks: int = 2) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, channels, kernel_size=9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[SRResidualBlock(channels) for _ in range(n_blocks)])
        self.block7 = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)
        )
        upsample = [UpsampleBlock(channels, 2) for _ in range(int(math.log2(scale_factor)))]
        upsample.append(nn.Conv2d(channels, 3, kernel_size=9, padding=4))
        self.block8 = nn.Sequential(*upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block1 = self.block1(x)
        block7 = self.block7(self.blocks(block1))
        block8 = self.block8(block1 + block7)
        return (torch.tanh(block8) + 1) / 2


# --- Fast style transfer (Johnson et al. 2016, with the Distill resize-convolution fix;
#     pytorch/examples fast_neural_style TransformerNet) ------------------------------------------


class ConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class StyleResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class UpsampleConvLayer(nn.Module):
    """Nearest upsampling, then a reflection-padded conv: the checkerboard-free upsampler
    (http://distill.pub/2016/deconv-checkerboard/)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = x
        if self.upsample:
            x_in = F.interpolate(x_in, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x_in))


class TransformerNet(nn.Module):
    """Three convs (k9 s1, k3 s2, k3 s2), five residual blocks, two resize-convolutions, k9."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, c, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(c, affine=True)
        self.conv2 = ConvLayer(c, 2 * c, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(2 * c, affine=True)
        self.conv3 = ConvLayer(2 * c, 4 * c, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(4 * c, affine=True)
        self.res1 = StyleResidualBlock(4 * c)
        self.res2 = StyleResidualBlock(4 * c)
        self.res3 = StyleResidualBlock(4 * c)
        self.res4 = StyleResidualBlock(4 * c)
        self.res5 = StyleResidualBlock(4 * c)
        self.deconv1 = UpsampleConvLayer(4 * c, 2 * c, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * c, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * c, c, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(c, affine=True)
        self.deconv3 = ConvLayer(c, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


# --- StyleGAN2 upsampling (Karras et al. 2020; rosinality/stylegan2-pytorch, without the
#     style modulation): ConvT k3 s2, then a fixed [1,3,3,1] blur held in a buffer --------------


def make_kernel(taps: tuple[int, ...]) -> torch.Tensor:
    """The separable FIR filter ``outer(taps, taps)``, normalised to sum 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


class Blur(nn.Module):
    """``upfirdn2d(x, kernel, pad=pad)``: pad, then the same FIR filter on every channel."""

    def __init__(
        self, taps: tuple[int, ...], channels: int, pad: tuple[int, int], upsample_factor: int = 1
    ) -> None:
        super().__init__()
        kernel = make_kernel(taps) * upsample_factor**2  # keeps the mean of zero-stuffed input
        self.channels = channels
        self.pad = pad
        # one depthwise copy per channel; a buffer: fixed, not trained
        self.register_buffer("kernel", kernel.flip(0, 1).expand(channels, 1, -1, -1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, p1 = self.pad
        return F.conv2d(F.pad(x, (p0, p1, p0, p1)), self.kernel, groups=self.channels)


class UpConvBlock(nn.Module):
    """``StyledConv(upsample=True)`` without modulation: ConvT k3 s2 p0, blur, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        taps, factor = (1, 3, 3, 1), 2
        p = (len(taps) - factor) - (kernel_size - 1)
        pad = ((p + 1) // 2 + factor - 1, p // 2 + 1)
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=2, padding=0, bias=False
        )
        self.blur = Blur(taps, out_channels, pad, upsample_factor=factor)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.activate = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.blur(self.conv(x)) + self.bias) * math.sqrt(2)


class StyleGAN2Upsampler(nn.Module):
    """A 3x3 conv on the 4x4 input, two up blocks (4 -> 8 -> 16), a 1x1 to_rgb."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.blocks = nn.Sequential(
            UpConvBlock(channels, channels), UpConvBlock(channels, channels)
        )
        self.to_rgb = nn.Conv2d(channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_rgb(self.blocks(self.conv1(x)))


# --- HiFi-GAN V1 (Kong et al. 2020; jik876/hifi-gan models.py Generator, ResBlock1) ---------

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    def __init__(
        self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)
    ) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    1,
                    dilation=d,
                    padding=get_padding(kernel_size, d),
                )
            )
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, 1, padding=get_padding(kernel_size))
            )
            for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class HiFiGANGenerator(nn.Module):
    """conv_pre, then per rate ``u``: leaky ReLU, ConvT1d(k = 2u, s = u, p = (k - u) / 2) and the
    average of the multi-receptive-field ResBlocks; conv_post, tanh.  Hop length 256."""

    def __init__(
        self,
        in_channels: int = 8,
        upsample_initial_channel: int = 16,
        upsample_rates: tuple[int, ...] = (8, 8, 2, 2),
        upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4),
        resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11),
        resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5),) * 3,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.conv_pre = weight_norm(nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, 3))
        self.ups = nn.ModuleList(
            weight_norm(
                nn.ConvTranspose1d(
                    upsample_initial_channel // (2**i),
                    upsample_initial_channel // (2 ** (i + 1)),
                    k,
                    u,
                    padding=(k - u) // 2,
                )
            )
            for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True))
        )
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i in range(len(self.ups)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock1(ch, k, d))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = self.ups[i](x)
            xs = None
            for j in range(self.num_kernels):
                if xs is None:
                    xs = self.resblocks[i * self.num_kernels + j](x)
                else:
                    xs += self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = F.leaky_relu(x)
        x = self.conv_post(x)
        return torch.tanh(x)


# --- WaveGAN (Donahue, McAuley & Puckette 2019; the PyTorch port's Transpose1dLayer) ----------


class WaveGANGenerator(nn.Module):
    """Dense to 16 x 16d, then five ConvT1d of length 25, stride 4, padding 11, output padding
    1 (each x4), tanh: 16384 samples."""

    def __init__(self, latent_dim: int = 8, model_size: int = 2, num_channels: int = 1) -> None:
        super().__init__()
        d = model_size
        self.model_size = d
        self.fc1 = nn.Linear(latent_dim, 256 * d)
        widths = (16 * d, 8 * d, 4 * d, 2 * d, d, num_channels)
        for index, (c_in, c_out) in enumerate(itertools.pairwise(widths), start=1):
            layer = nn.ConvTranspose1d(c_in, c_out, 25, stride=4, padding=11, output_padding=1)
            self.add_module(f"deconv_{index}", layer)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(z).view(-1, 16 * self.model_size, 16))
        x = F.relu(self.deconv_1(x))
        x = F.relu(self.deconv_2(x))
        x = F.relu(self.deconv_3(x))
        x = F.relu(self.deconv_4(x))
        return torch.tanh(self.deconv_5(x))


# --- 3-D U-Net in MONAI's layout (monai.networks.nets.UNet, num_res_units=0) ------------------


class ADN(nn.Sequential):
    """Norm, dropout, activation (MONAI's default ordering "NDA")."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.add_module("N", nn.InstanceNorm3d(channels))
        self.add_module("D", nn.Dropout(0.0))
        self.add_module("A", nn.PReLU())


class Convolution(nn.Sequential):
    """``conv`` (Conv3d, or ConvTranspose3d with padding 1 and output padding stride - 1),
    then ``adn`` unless ``conv_only``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        strides: int = 1,
        kernel_size: int = 3,
        is_transposed: bool = False,
        conv_only: bool = False,
    ) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2
        if is_transposed:
            conv: nn.Module = nn.ConvTranspose3d(
                in_channels,
                out_channels,
                kernel_size,
                stride=strides,
                padding=padding,
                output_padding=strides - 1,
            )
        else:
            conv = nn.Conv3d(
                in_channels, out_channels, kernel_size, stride=strides, padding=padding
            )
        self.add_module("conv", conv)
        if not conv_only:
            self.add_module("adn", ADN(out_channels))


class SkipConnection(nn.Module):
    def __init__(self, submodule: nn.Module) -> None:
        super().__init__()
        self.submodule = submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.submodule(x)], dim=1)


class UNet3D(nn.Module):
    """Sequential(down, SkipConnection(inner), up) at every level, built recursively."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        channels: tuple[int, ...] = (4, 8, 16),
        strides: tuple[int, ...] = (2, 2),
    ) -> None:
        super().__init__()
        self.model = self._create_block(in_channels, out_channels, channels, strides, True)

    def _create_block(
        self, inc: int, outc: int, channels: tuple[int, ...], strides: tuple[int, ...], top: bool
    ) -> nn.Module:
        c, s = channels[0], strides[0]
        if len(channels) > 2:
            subblock = self._create_block(c, c, channels[1:], strides[1:], False)
            upc = c * 2
        else:
            subblock = Convolution(c, channels[1], strides=1)  # the bottom layer
            upc = c + channels[1]
        down = Convolution(inc, c, strides=s)
        up = Convolution(upc, outc, strides=s, is_transposed=True, conv_only=top)
        return nn.Sequential(down, SkipConnection(subblock), up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --- models for the tracers ---------------------------------------------------------------------


class GatedDecoder(nn.Module):
    """Data-dependent control flow: the branch depends on the activations' values, which
    neither torch.fx nor torch.export can trace; running the model can."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.refine = nn.Conv2d(4, 3, 3, padding=1)
        self.skip = nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(x)
        y = self.refine(y) if y.mean() > -1e9 else self.skip(y)  # always the first branch
        return torch.tanh(y)


class SizeAdaptiveDecoder(nn.Module):
    """Control flow on the input size: torch.fx cannot evaluate it (the size is a Proxy),
    torch.export specialises it."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)
        self.head = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 32:
            x = self.up(x)
        return self.head(x)


class FunctionalUpsampler(nn.Module):
    """``F.conv_transpose2d`` with its weight held as a parameter, then
    ``F.interpolate(size=...)`` by 3/2 (nearest), then a conv."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, channels, 3, 3) * 0.1)
        self.bias = nn.Parameter(torch.randn(channels) * 0.1)
        self.head = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv_transpose2d(x, self.weight, self.bias, stride=2, padding=1, output_padding=1)
        x = F.interpolate(F.relu(x), size=(24, 24), mode="nearest")
        return self.head(x)


class ConvAutoencoder(nn.Module):
    """Encoder and decoder built as lists and wrapped in nn.Sequential: ``decoder.0``,
    ``decoder.3`` (ConvT k3 s2 p1 op1 each)."""

    def __init__(self, channels: tuple[int, ...] = (3, 8, 16)) -> None:
        super().__init__()
        encoder: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            encoder += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        decoder: list[nn.Module] = []
        widths = channels[::-1]
        for c_in, c_out in itertools.pairwise(widths):
            decoder += [
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        decoder[-1] = nn.Sigmoid()
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# --- the list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooEntry:
    """A model of the zoo: how to build it and the shapes of its example inputs."""

    name: str
    build: Callable[[], nn.Module]
    input_shapes: tuple[tuple[int, ...], ...]

    def model(self) -> nn.Module:
        """A fresh instance in eval mode with weights seeded (the same on every call)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return self.build().eval()

    def inputs(self) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(0)
        return tuple(torch.randn(shape, generator=generator) for shape in self.input_shapes)


ZOO = {
    entry.name: entry
    for entry in (
        ZooEntry("dcgan", DCGANGenerator, ((1, 8, 1, 1),)),
        ZooEntry("pix2pix_unet", UnetGenerator, ((1, 3, 64, 64),)),
        ZooEntry("cyclegan_resnet", ResnetGenerator, ((1, 3, 32, 32),)),
        ZooEntry("espcn", ESPCN, ((1, 1, 16, 16),)),
        ZooEntry("srgan", SRGANGenerator, ((1, 3, 16, 16),)),
        ZooEntry("style_transfer", TransformerNet, ((1, 3, 32, 32),)),
        ZooEntry("stylegan2_up", StyleGAN2Upsampler, ((1, 4, 4, 4),)),
        ZooEntry("hifigan", HiFiGANGenerator, ((1, 8, 8),)),
        ZooEntry("wavegan", WaveGANGenerator, ((1, 8),)),
        ZooEntry("unet3d", UNet3D, ((1, 1, 16, 16, 16),)),
        ZooEntry("gated_decoder", GatedDecoder, ((1, 4, 8, 8),)),
        ZooEntry("size_adaptive", SizeAdaptiveDecoder, ((1, 4, 8, 8),)),
        ZooEntry("functional", FunctionalUpsampler, ((1, 4, 8, 8),)),
        ZooEntry("autoencoder", ConvAutoencoder, ((1, 3, 32, 32),)),
    )
}

"""GPEN (GAN Prior Embedded Network, Yang et al., CVPR 2021) face restorer, for loading GPEN-BFR-*
checkpoints through spandrel (which has no GPEN support of its own).

A StyleGAN2 generator (rosinality layout) whose noise inputs are the feature maps of a small
encoder of the degraded face (concatenated, not added). Parameter and buffer names follow the
upstream `FullGenerator` so its .pth files load unchanged. Written for export: plain PyTorch ops
only (the upstream fused CUDA ops are replaced by their reference definitions).

The ModulatedConv2d forward below is the upstream formulation (per-sample weights, grouped conv);
unblur_models.export_patches swaps it for an equivalent constant-weight form before ONNX export.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

SQRT2 = math.sqrt(2.0)


def make_kernel(k) -> torch.Tensor:
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def fir_weight(kernel: torch.Tensor) -> torch.Tensor:
    """The conv2d weight [1, 1, kh, kw] that applies `kernel` as a true convolution."""
    return torch.flip(kernel, [0, 1]).reshape(1, 1, kernel.shape[0], kernel.shape[1])


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0),
              fir: torch.Tensor | None = None) -> torch.Tensor:
    """Upsample by zero insertion, pad, FIR filter (true convolution), downsample; same pad on x and y.
    `fir` = fir_weight(kernel) precomputed (the export patch sets it so the weight is a constant)."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-p0, 0):hh - max(-p1, 0), max(-p0, 0):ww - max(-p1, 0)]
    # one single-channel filter over every (sample, channel) plane: the weight keeps a static shape
    hh, ww = x.shape[2], x.shape[3]
    weight = fir if fir is not None else fir_weight(kernel)
    x = F.conv2d(x.reshape(b * c, 1, hh, ww), weight.to(x.dtype))
    x = x.reshape(b, c, x.shape[2], x.shape[3])
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2, scale: float = SQRT2):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.reshape(shape), negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    def __init__(self, kernel, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor ** 2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.fir = None

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, fir=self.fir)


class Blur(nn.Module):
    def __init__(self, kernel, pad, upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor ** 2)
        self.register_buffer("kernel", k)
        self.pad = pad
        self.fir = None

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad, fir=self.fir)


class EqualConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True,
                 upsample=False, downsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        factor = 2
        if upsample:
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def forward(self, x, style):
        """Upstream form: one weight per sample, applied with a grouped convolution."""
        b, cin, h, w = x.shape
        k = self.kernel_size
        style = self.modulation(style).view(b, 1, cin, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(b, self.out_channel, 1, 1, 1)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * cin, self.out_channel, k, k)
            out = F.conv_transpose2d(x.reshape(1, b * cin, h, w), weight, padding=0, stride=2, groups=b)
            out = out.view(b, self.out_channel, out.shape[2], out.shape[3])
            return self.blur(out)
        weight = weight.view(b * self.out_channel, cin, k, k)
        if self.downsample:
            x = self.blur(x)
            out = F.conv2d(x.reshape(1, b * cin, x.shape[2], x.shape[3]), weight, padding=0, stride=2, groups=b)
        else:
            out = F.conv2d(x.reshape(1, b * cin, h, w), weight, padding=self.padding, groups=b)
        return out.view(b, self.out_channel, out.shape[2], out.shape[3])


class NoiseInjection(nn.Module):
    def __init__(self, isconcat=True):
        super().__init__()
        self.isconcat = isconcat
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise):
        if self.isconcat:
            return torch.cat((image, self.weight * noise), dim=1)
        return image + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False,
                 blur_kernel=(1, 3, 3, 1), demodulate=True, isconcat=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, demodulate=demodulate)
        self.noise = NoiseInjection(isconcat)
        self.activate = FusedLeakyReLU(out_channel * (2 if isconcat else 1))

    def forward(self, x, style, noise):
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def _channels(channel_multiplier, narrow):
    return {4: int(512 * narrow), 8: int(512 * narrow), 16: int(512 * narrow), 32: int(512 * narrow),
            64: int(256 * channel_multiplier * narrow), 128: int(128 * channel_multiplier * narrow),
            256: int(64 * channel_multiplier * narrow), 512: int(32 * channel_multiplier * narrow),
            1024: int(16 * channel_multiplier * narrow), 2048: int(8 * channel_multiplier * narrow)}


class Generator(nn.Module):
    def __init__(self, size, style_dim, n_mlp, channel_multiplier=2, blur_kernel=(1, 3, 3, 1),
                 lr_mlp=0.01, isconcat=True, narrow=1.0):
        super().__init__()
        self.size = size
        self.n_mlp = n_mlp
        self.style_dim = style_dim
        fm = 2 if isconcat else 1
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)])
        self.channels = ch = _channels(channel_multiplier, narrow)
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel, isconcat=isconcat)
        self.to_rgb1 = ToRGB(ch[4] * fm, style_dim, upsample=False)
        self.log_size = int(math.log(size, 2))
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channel = ch[4]
        for i in range(3, self.log_size + 1):
            out_channel = ch[2 ** i]
            self.convs.append(StyledConv(in_channel * fm, out_channel, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, isconcat=isconcat))
            self.convs.append(StyledConv(out_channel * fm, out_channel, 3, style_dim,
                                         blur_kernel=blur_kernel, isconcat=isconcat))
            self.to_rgbs.append(ToRGB(out_channel * fm, style_dim))
            in_channel = out_channel
        self.n_latent = self.log_size * 2 - 2

    def forward(self, style, noise):
        latent = self.style(style)  # one style for every layer (no mixing, no truncation)
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent, noise[0])
        skip = self.to_rgb1(out, latent)
        for k, (conv1, conv2, to_rgb) in enumerate(zip(self.convs[::2], self.convs[1::2], self.to_rgbs)):
            out = conv1(out, latent, noise[1 + 2 * k])
            out = conv2(out, latent, noise[2 + 2 * k])
            skip = to_rgb(out, latent, skip)
        return skip


class ConvLayer(nn.Sequential):
    def __init__(self, in_channel, out_channel, kernel_size, downsample=False, blur_kernel=(1, 3, 3, 1),
                 bias=True, activate=True):
        layers = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel) if bias else nn.LeakyReLU(0.2))
        super().__init__(*layers)


class GPEN(nn.Module):
    """GPEN FullGenerator: input RGB [-1, 1] of size x size, output RGB [-1, 1] of the same size."""

    def __init__(self, *, size=512, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=1.0,
                 blur_kernel=(1, 3, 3, 1), lr_mlp=0.01, isconcat=True):
        super().__init__()
        self.hyperparameters = dict(size=size, style_dim=style_dim, n_mlp=n_mlp,
                                    channel_multiplier=channel_multiplier, narrow=narrow)
        ch = _channels(channel_multiplier, narrow)
        self.log_size = int(math.log(size, 2))
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier,
                                   blur_kernel=blur_kernel, lr_mlp=lr_mlp, isconcat=isconcat, narrow=narrow)
        self.ecd0 = nn.Sequential(ConvLayer(3, ch[size], 1))
        self.names = ["ecd%d" % i for i in range(self.log_size - 1)]
        in_channel = ch[size]
        for i in range(self.log_size, 2, -1):
            out_channel = ch[2 ** (i - 1)]
            setattr(self, self.names[self.log_size - i + 1],
                    nn.Sequential(ConvLayer(in_channel, out_channel, 3, downsample=True)))
            in_channel = out_channel
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, style_dim, activation="fused_lrelu"))

    def forward(self, x):
        feats = []
        for name in self.names:
            x = getattr(self, name)(x)
            feats.append(x)
        style = self.final_linear(x.reshape(x.shape[0], -1))
        # Each encoder feature feeds the two generator layers at its resolution (coarse first);
        # the 4x4 one only the first layer.
        noise = [f for f in feats for _ in range(2)][::-1][1:]
        return self.generator(style, noise)


# ------------------------------------------------------------------ spandrel support

def gpen_architecture():
    """A spandrel Architecture for GPEN checkpoints (registered by unblur_models.export_archs)."""
    from spandrel import Architecture, ImageModelDescriptor, SizeRequirements
    from spandrel.util import KeyCondition

    class GPENArch(Architecture[GPEN]):
        def __init__(self):
            super().__init__(id="GPEN", detect=KeyCondition.has_all(
                "generator.style.1.weight", "generator.input.input", "ecd0.0.0.weight", "final_linear.0.weight",
                "generator.to_rgb1.conv.weight"))

        def load(self, state_dict):
            n_ecd = 0
            while f"ecd{n_ecd}.0.0.weight" in state_dict or f"ecd{n_ecd}.0.1.weight" in state_dict:
                n_ecd += 1
            size = 2 ** (n_ecd + 1)
            n_mlp = 0
            while f"generator.style.{n_mlp + 1}.weight" in state_dict:
                n_mlp += 1
            style_dim = state_dict["generator.style.1.weight"].shape[0]
            narrow = state_dict["generator.input.input"].shape[1] / 512
            first = state_dict["ecd0.0.0.weight"].shape[0]  # channels[size]
            channel_multiplier = first / (32 * narrow * (512 / size)) if size <= 512 else first / (16 * narrow)
            channel_multiplier = int(round(channel_multiplier))
            model = GPEN(size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier,
                         narrow=narrow)
            # Checkpoints normally carry the blur kernels; fill them in if one does not.
            own = model.state_dict()
            state_dict = dict(state_dict)
            for k, v in own.items():
                if k.endswith(".kernel") and k not in state_dict:
                    state_dict[k] = v
            return ImageModelDescriptor(
                model, state_dict, architecture=self, purpose="FaceSR", tags=[f"{size}px"],
                supports_half=False, supports_bfloat16=True, scale=1, input_channels=3, output_channels=3,
                size_requirements=SizeRequirements(minimum=size), call_fn=lambda m, img: m(img * 2 - 1) * 0.5 + 0.5)

    return GPENArch()

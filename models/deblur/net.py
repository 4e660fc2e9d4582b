"""Unblur's deblurring network: a compact NAFNet-style U-Net (Chen et al., "Simple Baselines for
Image Restoration", 2022) restricted to operations that tract runs well and that keep TILED
inference seamless:

- Conv (3×3, depthwise 3×3, 1×1, and 2×2 stride 2 to go down a level), DepthToSpace (PixelShuffle)
  after a 1×1 conv to go up, Add, Mul, SimpleGate (split the channels in two halves, multiply);
- a channel-wise LayerNorm written out as ReduceMean over the channel axis, Sub, Mul, Sqrt, Div;
- NO statistic over H or W (NAFNet's simplified channel attention is a global average pool: on
  tiles it would differ per tile and make seams), so every output pixel depends only on a
  bounded neighbourhood of the input;
- a global residual: output = input + net(input), not clamped (the Rust side clamps).

Three levels of downsampling: H and W must be multiples of 8 (the caller pads).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH = 16
ENC = (1, 1, 2)
MIDDLE = 6  # v1 had 2: v2 grew it by 4 (`train.py --init`), widening the field from ±43 to ±75 px
DEC = (1, 1, 1)
MULTIPLE = 8


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis only, as plain ops (ReduceMean, Sub, Mul, Sqrt, Div)."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.eps = eps

    def forward(self, x):
        if not torch.onnx.is_in_onnx_export() and torch.is_grad_enabled():
            # training: the same function through torch's fused kernel (about 15% faster a step)
            return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight.view(-1),
                                self.bias.view(-1), self.eps).permute(0, 3, 1, 2)
        mu = x.mean(1, keepdim=True)
        d = x - mu
        var = (d * d).mean(1, keepdim=True)
        return d / torch.sqrt(var + self.eps) * self.weight + self.bias


class SimpleGate(nn.Module):
    """Split the channels in two fixed halves and multiply (one static ONNX Split, no Shape ops)."""

    def __init__(self, c: int):
        super().__init__()
        self.half = c // 2

    def forward(self, x):
        a, b = torch.split(x, [self.half, self.half], dim=1)
        return a * b


class NAFBlock(nn.Module):
    """NAFNet's block without the simplified channel attention (see the module's docstring)."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw = c * dw_expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, c * ffn_expand, 1)
        self.conv5 = nn.Conv2d(c * ffn_expand // 2, c, 1)
        self.sg = SimpleGate(dw)
        self.sg2 = SimpleGate(c * ffn_expand)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = self.conv3(self.sg(self.conv2(self.conv1(self.norm1(inp)))))
        y = inp + x * self.beta
        x = self.conv5(self.sg2(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class DeblurNet(nn.Module):
    def __init__(self, width: int = WIDTH, enc=ENC, middle: int = MIDDLE, dec=DEC):
        super().__init__()
        self.config = {"width": width, "enc": list(enc), "middle": middle, "dec": list(dec)}
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c = width
        for n in enc:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle)])
        for n in dec:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        # start as the identity (output = input: the last conv is zero) but with every block
        # already in the path (β = γ = 0.1, where NAFNet starts them at 0, which learned several
        # times slower in the first hundred steps here)
        for name, p in self.named_parameters():
            if name.endswith((".beta", ".gamma")):
                nn.init.constant_(p, 0.1)
        nn.init.zeros_(self.ending.weight)
        nn.init.zeros_(self.ending.bias)

    def forward(self, inp):
        x = self.intro(inp)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for dec, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = dec(up(x) + skip)
        return inp + self.ending(x)


def init_from(net: DeblurNet, path) -> list[str]:
    """Loads the weights of a smaller net of the same design (a training checkpoint or an exported
    .onnx, whose initializers keep the parameter names) into `net`, which may have more bottom
    blocks. A block the source lacks starts as the identity: its two output convs are zero, so the
    grown net computes exactly the source's function at step 0, while β, γ and the rest are
    already in the path and learn at once (a zero β or γ would learn several times slower).
    Returns the names of the tensors that were new."""
    from deblur.train import saved_weights  # here: train.py imports this module
    src = saved_weights(path)
    own = net.state_dict()
    bad = [k for k, v in src.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{path}: not a smaller net of this design ({bad[:3]} ...)")
    new = [k for k in own if k not in src]
    with torch.no_grad():
        for k, v in src.items():
            own[k].copy_(v)
        for k in new:
            if k.endswith((".conv3.weight", ".conv3.bias", ".conv5.weight", ".conv5.bias")):
                own[k].zero_()
    return new


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def macs_per_pixel(net: nn.Module, side: int = 64) -> float:
    """Multiply-accumulates per input pixel, counted with hooks on every Conv2d (the norms, gates
    and adds are a few ops per value and left out)."""
    total = [0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += out.numel() * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, side, side))
    for h in hs:
        h.remove()
    return total[0] / (side * side)


def receptive_margin(net: nn.Module) -> int:
    """Theoretical half-width of the receptive field in input px, from the architecture: each 3×3
    conv at level l (scale 2^l) adds 2^l on each side, a 2×2 stride-2 conv at level l adds 2^l."""
    cfg = net.config
    r = 1  # intro
    for l, n in enumerate(cfg["enc"]):
        r += n * (1 << l) + (1 << l)
    r += cfg["middle"] * (1 << len(cfg["enc"]))
    for i, n in enumerate(cfg["dec"]):
        l = len(cfg["dec"]) - 1 - i
        r += n * (1 << l)
    return r + 1  # ending


def pad_to_multiple(x: torch.Tensor, m: int = MULTIPLE) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w


def describe(net: nn.Module) -> dict:
    return {"params": count_params(net), "gmac_per_mp": macs_per_pixel(net) / 1e3,
            "receptive_margin_px": receptive_margin(net), **net.config}


if __name__ == "__main__":
    print(describe(DeblurNet()))

"""Unblur's damage detector: a small U-Net that gives, for every pixel of a photo, the logit that it
is damage (a scratch, crack, crease, fibre or dust speck) rather than the photo.

Plain operations only (Conv 4×4 stride 2 / 3×3 / 2×2 stride 2 / 1×1, Relu, Add, DepthToSpace):
tract runs them well. v1 (`stem=2`) works at half resolution from its first layer: a 4×4 stride-2
conv reads each 2×2 block with its neighbours (a 1-px scratch is still all there, in the channels),
and the last conv gives the 2×2 block's four logits, put back in place by DepthToSpace. That costs
a third of v0's full-resolution U-Net (`stem=1`: 10.9 GMAC/MP), which the page's suggestion needed
to answer within 0.5 s. Then three levels down (H and W multiples of `MULTIPLE`; the caller pads),
so a pixel is judged from a ~200-px neighbourhood: enough to tell a crack that crosses the texture
from the grass or hair it lies on. The output is a logit; the Rust side applies the threshold
(logit 0 = probability 0.5).
"""
from __future__ import annotations

import torch
import torch.nn as nn

WIDTHS = (12, 24, 48, 64)
STEM = 2
MULTIPLE = 8 * STEM  # the input's sides: the stem and three 2× levels down


def _conv(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True))


class DetectNet(nn.Module):
    def __init__(self, widths=WIDTHS, stem: int = STEM):
        super().__init__()
        if stem not in (1, 2):
            raise ValueError(f"stem must be 1 or 2, not {stem}")
        self.config = {"widths": list(widths), "stem": stem}
        w = widths
        if stem == 1:
            self.intro = _conv(3, w[0])
        else:
            self.intro = nn.Sequential(nn.Conv2d(3, w[0], 4, stride=2, padding=1), nn.ReLU(inplace=True))
        self.enc = nn.ModuleList([_conv(w[0], w[0])] + [_conv(c, c) for c in w[1:-1]])
        self.downs = nn.ModuleList([nn.Sequential(nn.Conv2d(a, b, 2, stride=2), nn.ReLU(inplace=True))
                                    for a, b in zip(w[:-1], w[1:])])
        self.middle = nn.Sequential(_conv(w[-1], w[-1]), _conv(w[-1], w[-1]))
        self.ups = nn.ModuleList([nn.Sequential(nn.Conv2d(b, 4 * a, 1), nn.PixelShuffle(2))
                                  for a, b in zip(w[:-1], w[1:])])
        self.dec = nn.ModuleList([_conv(c, c) for c in w[:-1]])
        last = nn.Conv2d(w[0], stem * stem, 3, padding=1)
        nn.init.constant_(last.bias, -3.0)  # start by calling nothing damage
        self.out = last if stem == 1 else nn.Sequential(last, nn.PixelShuffle(stem))

    def forward(self, x):
        x = self.intro(x)
        skips = []
        for enc, down in zip(self.enc, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for up, dec, skip in reversed(list(zip(self.ups, self.dec, skips))):
            x = dec(up(x) + skip)
        return self.out(x)


def gmac_per_mp(net: nn.Module, side: int = 256) -> float:
    """Multiply-accumulates per megapixel, counted from the convolutions' shapes."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        total += out.numel() * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, side, side))
    for h in hs:
        h.remove()
    return total / (side * side) * 1e6 / 1e9

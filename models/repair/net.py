"""Unblur's damage detector: a small U-Net that gives, for every pixel of a photo, the logit that it
is damage (a scratch, crack, crease, fibre or dust speck) rather than the photo.

Plain operations only (Conv 3×3 / 2×2 stride 2 / 1×1, Relu, Add, DepthToSpace): tract runs them
well. Three levels down (H and W multiples of 8; the caller pads), so a pixel is judged from a
~100-px neighbourhood: enough to tell a crack that crosses the texture from the grass or hair it
lies on. The output is a logit; the Rust side applies the threshold (logit 0 = probability 0.5).
"""
from __future__ import annotations

import torch
import torch.nn as nn

WIDTHS = (12, 24, 48, 64)
MULTIPLE = 8


def _conv(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True))


class DetectNet(nn.Module):
    def __init__(self, widths=WIDTHS):
        super().__init__()
        self.config = {"widths": list(widths)}
        w = widths
        self.intro = _conv(3, w[0])
        self.enc = nn.ModuleList([_conv(w[0], w[0])] + [_conv(c, c) for c in w[1:-1]])
        self.downs = nn.ModuleList([nn.Sequential(nn.Conv2d(a, b, 2, stride=2), nn.ReLU(inplace=True))
                                    for a, b in zip(w[:-1], w[1:])])
        self.middle = nn.Sequential(_conv(w[-1], w[-1]), _conv(w[-1], w[-1]))
        self.ups = nn.ModuleList([nn.Sequential(nn.Conv2d(b, 4 * a, 1), nn.PixelShuffle(2))
                                  for a, b in zip(w[:-1], w[1:])])
        self.dec = nn.ModuleList([_conv(c, c) for c in w[:-1]])
        self.out = nn.Conv2d(w[0], 1, 3, padding=1)
        nn.init.constant_(self.out.bias, -3.0)  # start by calling nothing damage

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

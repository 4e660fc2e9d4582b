"""Unblur's 512² face restorer (issue 29): a compact U-Net that takes the aligned 256² face the
face stage cuts (RGB −1…1, the face-model convention) and returns the face at the 512² template.

    256²×3 ─e0 (2 conv)─▶ 256²·c0 ─s2─▶ 128²·c1 ─s2─▶ 64²·c2 ─s2─▶ 32²·c3 (a res block)
        ─s2─▶ 16²·c4 (1 conv) ─nearest ×2, add─▶ 32²·c3 (2 conv)
    decoder, at each side: nearest ×2, conv, concat the encoder's skip, 2 conv
        64² ─▶ 128² ─▶ 256² ─bilinear ×2, conv─▶ 512²·c5 ─2 conv─▶ 3 residual
    + the input brought to 512² (bilinear) ─▶ RGB −1…1, [1,3,512,512]

The encoder reaches 16² (the face's eyes, nose and mouth all inside one receptive field), so
the decoder knows where it is on the face. Only plain ops: Conv, PReLU, Add, Concat, Resize
(nearest ×2 inside the U-Net, bilinear ×2 to 512² and for the residual).

The last ×2 is a resize-convolution (Odena et al. 2016), not a sub-pixel convolution: the
PixelShuffle it replaced gives each of the four output phases its own filter, and trained on CPU
budgets it left a visible 2-px grid (the period-2 measure 6.8–7.4× on held-back faces, the ground
truth 0.84) that the periodic loss did not remove. A bilinear ×2 has no energy at the 512²
Nyquist frequency and the convolutions after it are shift-invariant, so nothing imprints a phase.
`load_generator` converts a shuffle checkpoint (the mean of the four phases' filters).

Training cost: `forward(x, crop=(y, x, side))` runs the encoder and the 32²–128² decoder on the
whole face, and the full-resolution stages (256², 512²) only on a window of the 512² output
(with a margin so the window's values equal the whole face's there), which is what the pixel
losses see. The window's corner must be a multiple of 32 (the network's largest period at 512²)
so that periodic-artifact phases are the network's.

`noise=True` (training's `--noise`) adds StyleGAN's noise inputs at the two full-resolution stages:
a map of N(0, 1) per pixel, scaled per channel by a learned factor (zero at the start, so a
noiseless checkpoint loads unchanged). Without a source of randomness a generator asked for
texture by a discriminator can only draw it as a function of a smooth input, which it does as
contour lines along the input's levels (run 12's grid); with one it can draw pores and strands.
Their inference form (`freeze_noise`, what the export writes and the evaluation scores) is a fixed
map made of two small seeded tiles: the face stage then needs no random source, and the page and
the CLI (tract on wasm32 and on 64-bit) give the same face. `load_generator` into a noiseless
`FaceNet512()` still gives the network without its noise.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

IN_SIDE = 256
# Periods (in output pixels) that the strides and the upsamplings can imprint: the ×2 to 512² and
# the 256² stage 2·1, the stride-2 encoders at 128/64/32/16 → 4, 8, 16, 32.
PERIODS = (2, 4, 8, 16, 32)
# Sides of the two tiles whose sum is a fixed noise map (`freeze_noise`): co-prime, so the sum
# repeats only after p·q pixels (4,087 at 256², 16,637 at 512²), and no side is a multiple of
# the network's periods.
NOISE_TILES = {"noise0": (61, 67), "noise1": (127, 131)}
MARGIN = 8  # pixels at 256² around a window for the cropped stages (they see ~6: 3 convs, the bilinear ×2, 3 convs at 512²)


def conv(ci: int, co: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(ci, co, 3, stride, 1)


class Block(nn.Sequential):
    """conv, PReLU, conv, PReLU."""

    def __init__(self, ci: int, co: int):
        super().__init__(conv(ci, co), nn.PReLU(co), conv(co, co), nn.PReLU(co))


class Res(nn.Module):
    """x + conv(PReLU(conv(x))), at the bottleneck."""

    def __init__(self, c: int):
        super().__init__()
        self.c1, self.act, self.c2 = conv(c, c), nn.PReLU(c), conv(c, c)

    def forward(self, x):
        return x + self.c2(self.act(self.c1(x)))


def down(ci: int, co: int) -> nn.Sequential:
    return nn.Sequential(conv(ci, co, 2), nn.PReLU(co))


class Up(nn.Module):
    """nearest ×2, conv to the skip's width, concat the skip, two convs."""

    def __init__(self, ci: int, cs: int, co: int):
        super().__init__()
        self.up = nn.Sequential(conv(ci, cs), nn.PReLU(cs))
        self.fuse = Block(2 * cs, co)

    def forward(self, x, skip):
        x = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.fuse(torch.cat([x, skip], 1))


class FaceNet512(nn.Module):
    def __init__(self, ch=(24, 32, 64, 96, 96, 16), noise: bool = False):
        super().__init__()
        c0, c1, c2, c3, c4, c5 = ch
        self.ch = tuple(ch)
        if noise:  # per-channel scales of the 256² and 512² noise maps (StyleGAN's noise inputs)
            self.noise0 = nn.Parameter(torch.zeros(1, c0, 1, 1))
            self.noise1 = nn.Parameter(torch.zeros(1, c5, 1, 1))
        self.e0 = Block(3, c0)                      # 256²
        self.e1 = nn.Sequential(down(c0, c1), conv(c1, c1), nn.PReLU(c1))  # 128²
        self.e2 = nn.Sequential(down(c1, c2), conv(c2, c2), nn.PReLU(c2))  # 64²
        self.e3 = nn.Sequential(down(c2, c3), Res(c3))                     # 32²
        self.e4 = nn.Sequential(down(c3, c4), conv(c4, c3))                # 16², added back at 32²
        self.mid = Block(c3, c3)                    # 32², after the 16² context is added
        self.d2 = Up(c3, c2, c2)                    # 64²
        self.d1 = Up(c2, c1, c1)                    # 128²
        self.d0 = Up(c1, c0, c0)                    # 256² (full resolution of the input)
        self.to512 = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                                   conv(c0, c5), nn.PReLU(c5))
        self.head = nn.Sequential(conv(c5, c5), nn.PReLU(c5), conv(c5, 3))
        nn.init.normal_(self.head[-1].weight, std=1e-3)
        nn.init.zeros_(self.head[-1].bias)

    def low(self, x):
        """The whole-face part: encoder and decoder up to 128²; returns (d1 output, e0 skip)."""
        s0 = self.e0(x)
        s1 = self.e1(s0)
        s2 = self.e2(s1)
        s3 = self.e3(s2)
        m = self.mid(s3 + F.interpolate(self.e4(s3), scale_factor=2.0, mode="nearest"))
        return self.d1(self.d2(m, s2), s1), s0

    def high(self, f1, s0, x, origin: tuple[int, int] = (0, 0)):
        """The full-resolution part on matching windows of the 128² features, the 256² skip and
        the 256² input (whose corner is `origin` at 256²): returns the 512² output of that window."""
        f0 = self.d0.fuse(torch.cat([self.d0.up(F.interpolate(f1, scale_factor=2.0, mode="nearest")), s0], 1))
        f0 = self._noise(f0, "noise0", origin)
        res = self.head(self._noise(self.to512(f0), "noise1", (2 * origin[0], 2 * origin[1])))
        base = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return base + res

    def _noise(self, f, name: str, origin: tuple[int, int]):
        scale = getattr(self, name, None)
        if scale is None:
            return f
        tiles = [getattr(self, f"{name}_tile{i}", None) for i in range(len(NOISE_TILES[name]))]
        if self.training or tiles[0] is None:  # training, or never frozen: a fresh draw
            return f + scale * torch.randn(f.shape[0], 1, *f.shape[2:], device=f.device, dtype=f.dtype)
        return f + scale * tiled_noise(tiles, f, origin)

    def freeze_noise(self, seed: int = 0) -> "FaceNet512":
        """The inference form of the noise inputs (what the export writes, what the evaluation
        scores): in eval mode each noise map is a fixed one, the sum of two seeded N(0, ½) tiles
        of co-prime sides (`NOISE_TILES`), so the face stage needs no random source and the page
        and the CLI draw the same grain; the map repeats only after p·q pixels (> the face), and
        the graph holds p² + q² values a stage, not the map. Training mode still draws afresh."""
        g = torch.Generator().manual_seed(seed)
        for name, sides in NOISE_TILES.items():
            if hasattr(self, name):
                for i, n in enumerate(sides):
                    tile = torch.randn(1, 1, n, n, generator=g) * 0.5 ** 0.5
                    # Not in the state dict: the seed makes them, checkpoints stay loadable anywhere.
                    self.register_buffer(f"{name}_tile{i}", tile.to(self.noise0.device), persistent=False)
        return self

    def forward(self, x, crop: tuple[int, int, int] | None = None):
        f1, s0 = self.low(x)
        if crop is None:
            return self.high(f1, s0, x)
        y, xx, side = crop  # a window of the 512² output; corner multiple of 32
        assert y % 32 == 0 and xx % 32 == 0 and side % 32 == 0
        # In 256² coordinates with a margin (even, so the 128² features line up).
        y0, x0, s = y // 2, xx // 2, side // 2
        a, b = max(y0 - MARGIN, 0), max(x0 - MARGIN, 0)
        a2, b2 = min(y0 + s + MARGIN, IN_SIDE), min(x0 + s + MARGIN, IN_SIDE)
        out = self.high(f1[..., a // 2:a2 // 2, b // 2:b2 // 2], s0[..., a:a2, b:b2], x[..., a:a2, b:b2], (a, b))
        oy, ox = 2 * (y0 - a), 2 * (x0 - b)
        return out[..., oy:oy + side, ox:ox + side]

    def macs(self, side: int = IN_SIDE) -> int:
        """Multiply-accumulates of one face (convolutions; PReLU, Add, Resize are ≪ 1 %), counted
        on a 64² input and scaled by the area (every layer is spatial), which is exact."""
        return self._macs(64) * (side // 64) ** 2

    def _macs(self, side: int) -> int:
        total = 0
        hooks = []

        def count(m, inp, out):
            nonlocal total
            total += m.weight.numel() * out.shape[2] * out.shape[3]

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                hooks.append(m.register_forward_hook(count))
        with torch.no_grad():
            self.forward(torch.zeros(1, 3, side, side))
        for h in hooks:
            h.remove()
        return total


def tiled_noise(tiles, f: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """The [1,1,H,W] window at `origin` of the fixed map for features `f` (so that a training
    window sees what the whole face has there): each tile repeated, summed. Written with `f`'s
    shape taken at run time (Shape/Tile/Slice in ONNX), so that the export keeps the small tiles
    instead of folding the map into a constant."""
    (h, w), (oy, ox) = f.shape[2:], origin
    out = 0
    for t in tiles:
        n = t.shape[-1]
        dy, dx = oy % n, ox % n
        out = out + t.repeat(1, 1, (dy + h + n - 1) // n, (dx + w + n - 1) // n)[..., dy:dy + h, dx:dx + w]
    return out


def load_generator(net: FaceNet512, state: dict) -> FaceNet512:
    """Loads generator weights (any dtype) into `net`; a checkpoint of the sub-pixel design
    (`to512.0` a conv to 4·c5 channels before a PixelShuffle) becomes the resize-convolution's
    conv as the mean of its four phases' filters: the same response on smooth features, the
    phase differences (the grid) dropped."""
    state = {k: v.float() for k, v in state.items()}
    w = state.get("to512.0.weight")
    if w is not None and w.dim() == 4:
        c5 = w.shape[0] // 4
        state["to512.1.weight"] = w.view(c5, 4, *w.shape[1:]).mean(1)
        state["to512.1.bias"] = state.pop("to512.0.bias").view(c5, 4).mean(1)
        del state["to512.0.weight"]
    has = hasattr(net, "noise0")
    if not has:  # the noiseless form of a noise-trained generator (loaded into `FaceNet512()`)
        state = {k: v for k, v in state.items() if not k.startswith("noise")}
    elif "noise0" not in state:  # a noiseless checkpoint into a noise generator: scales stay 0
        state = {**state, "noise0": net.noise0.detach(), "noise1": net.noise1.detach()}
    net.load_state_dict(state)
    return net


def new_generator(state: dict) -> FaceNet512:
    """A generator built for `state` (with the noise inputs where it has them) and loaded."""
    return load_generator(FaceNet512(noise="noise0" in state), state)


def export_onnx(net: FaceNet512, path: Path, opset: int = 13) -> None:
    """A fixed [1,3,256,256] → [1,3,512,512] graph named as the face stage expects. The bilinear
    Resize is written with `half_pixel` (what the product's own converter emits and tract reads;
    torch writes `pytorch_half_pixel`, the same for any side > 1)."""
    import onnx
    net = net.eval().float()
    x = torch.zeros(1, 3, IN_SIDE, IN_SIDE)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, x, str(path), input_names=["input"], output_names=["output"],
                      opset_version=opset, do_constant_folding=True, dynamo=False)
    m = onnx.load(str(path))
    for n in m.graph.node:
        if n.op_type == "Resize":
            for a in n.attribute:
                if a.name == "coordinate_transformation_mode" and a.s == b"pytorch_half_pixel":
                    a.s = b"half_pixel"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def fp16_state(net: nn.Module) -> dict:
    """The generator's weights in fp16 (what is committed under candidates/, ≤ 2 MB)."""
    return {k: v.detach().half().cpu() for k, v in net.state_dict().items()}

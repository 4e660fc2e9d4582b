"""Losses of the 512² face restorer (issue 29) beyond L1: the periodic-artifact loss at every
period of the network, DiffAugment for the discriminators' inputs, the eye/mouth patches
the component discriminator judges (GFPGAN's idea, one small discriminator for the three), and
LDL's artifact map (the GAN's ripples told from its detail), and a texture-only patch
discriminator.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from face.train import PatchD


def period_loss(out, target, mask, periods) -> torch.Tensor:
    """`train.fold_grid_loss` generalised: for each period P, the error's mean at each of the P²
    phases over blocks of max(64, 4P) pixels, less the mean of the phases. Content averages out
    over a block; a grid the network imprints at its own period does not. Windows must start at
    multiples of the largest P so that the phases are the network's."""
    e = (out - target) * mask
    total = 0.0
    side = e.shape[-1]
    for p in periods:
        block = min(max(64, 4 * p), side) // p  # in periods
        u = F.avg_pool2d(F.pixel_unshuffle(e, p), block)  # [B, 3·P², h, w]
        u = u.view(u.shape[0], 3, p * p, -1)
        total = total + (u - u.mean(2, keepdim=True)).abs().mean()
    return total / len(periods)


def artifact_map(out, ema, target, mask, k: int = 7) -> torch.Tensor:
    """LDL's refined artifact map (Liang, Zeng and Zhang, "Details or Artifacts", CVPR 2022, as
    BasicSR's `get_refined_artifact_map`): where the GAN generator's residual against the target
    is both locally busy (its variance over k×k, scaled by the window's whole variance ** 1/5)
    and larger than a slow EMA of the same generator's residual, the pixel is more likely an
    artifact the GAN drew (a doubled lid, a ripple) than detail; elsewhere 0. Images in −1…1 are
    read in 0…1 as BasicSR reads them; the map carries no gradient. BasicSR has no mask: here
    both variances are taken over the covered pixels only (the template's pixels outside the
    photo are out of every loss, and their zeros would make the coverage's edge look busy), and
    the map is 0 outside; with the whole window covered it is BasicSR's."""
    with torch.no_grad():
        m = (mask[:, :1] > 0).to(out.dtype)
        r = ((out - target).abs() / 2).sum(1, keepdim=True) * m
        r_ema = ((ema - target).abs() / 2).sum(1, keepdim=True) * m
        n = m.sum(dim=(1, 2, 3), keepdim=True)
        mean = r.sum(dim=(1, 2, 3), keepdim=True) / n.clamp_min(1)
        patch = (((r - mean) * m) ** 2).sum(dim=(1, 2, 3), keepdim=True) / (n - 1).clamp_min(1)
        pad = lambda t: F.pad(t, [k // 2] * 4, mode="reflect")  # noqa: E731
        cnt = F.avg_pool2d(pad(m), k, 1) * (k * k)  # covered pixels in each window
        s1, s2 = F.avg_pool2d(pad(r), k, 1) * (k * k), F.avg_pool2d(pad(r * r), k, 1) * (k * k)
        local = ((s2 - s1 * s1 / cnt.clamp_min(1)) / (cnt - 1).clamp_min(1)).clamp_min(0)  # unbiased
        return patch ** 0.2 * local * (r >= r_ema) * m


def diff_augment(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020; 'color,translation,cutout'), differentiable, drawn per
    sample: a few thousand faces overfit a discriminator fast without it."""
    b = x.shape[0]
    r = lambda *s: torch.rand(*s, generator=g, device=x.device)  # noqa: E731
    # color: brightness, saturation, contrast (on −1…1 values)
    x = x + (r(b, 1, 1, 1) - 0.5)
    m = x.mean(1, keepdim=True)
    x = (x - m) * (r(b, 1, 1, 1) * 2) + m
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * (r(b, 1, 1, 1) + 0.5) + m
    # translation by up to 1/8 of the side, zero padded
    h, w = x.shape[-2:]
    sy, sx = h // 8, w // 8
    pad = F.pad(x, (sx, sx, sy, sy))
    ty = (r(b) * (2 * sy + 1)).long()
    tx = (r(b) * (2 * sx + 1)).long()
    x = torch.stack([pad[i, :, ty[i]:ty[i] + h, tx[i]:tx[i] + w] for i in range(b)])
    # cutout: a zeroed square of half the side
    cy = (r(b) * h).long()
    cx = (r(b) * w).long()
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    hole = ((yy - cy[:, None, None]).abs() < h // 4) & ((xx - cx[:, None, None]).abs() < w // 4)
    return x * (~hole)[:, None].to(x.dtype)


COMP = 96  # side of an eye or mouth patch at 512²


def component_patches(img, lm, crop) -> tuple[torch.Tensor, torch.Tensor]:
    """Eyes and mouth of each face as COMP² patches from a window (`crop` = (y, x, side) of the
    512² template) of `img` [B,3,side,side]; the right eye mirrored so that both eyes look alike.
    Returns (patches [n,3,COMP,COMP], which samples gave them [B] bool): a face whose three
    patches are not all inside the window gives none."""
    y0, x0, side = crop
    half = COMP // 2
    centres = torch.stack([lm[:, 0], lm[:, 1], (lm[:, 3] + lm[:, 4]) / 2], 1)  # [B,3,2] x,y
    c = centres.round().long() - torch.tensor([x0, y0])
    ok = ((c - half >= 0) & (c + half <= side)).all(2).all(1)
    patches = []
    for i in torch.nonzero(ok).flatten().tolist():
        for j in range(3):
            cx, cy = c[i, j].tolist()
            p = img[i, :, cy - half:cy + half, cx - half:cx + half]
            patches.append(p.flip(-1) if j == 1 else p)
    if not patches:
        return img.new_zeros(0, 3, COMP, COMP), ok
    return torch.stack(patches), ok


def high_pass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The image less its Gaussian blur (σ in pixels, separable, reflect-padded): what is left is
    texture and the sharp part of edges; shading and the shape of features are gone."""
    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) ** 2 / (2 * sigma * sigma))
    k = (k / k.sum()).repeat(x.shape[1], 1, 1, 1)
    b = F.pad(x, [r] * 4, mode="reflect")
    b = F.conv2d(F.conv2d(b, k.view(-1, 1, 1, 2 * r + 1), groups=x.shape[1]),
                 k.view(-1, 1, 2 * r + 1, 1), groups=x.shape[1])
    return x - b


class TextureD(PatchD):
    """A patch discriminator that judges texture, not structure (`train512.py --d-texture`).

    Runs 3–11 put a 70-px PatchGAN against the 0.9 M-parameter generator and it drew the same
    rippled, doubled contours around the eyes and mouth whatever else was changed: the
    discriminator judges the shape of features the generator cannot place from a ×8 input. This
    one sees only the high-pass image (`high_pass`, σ), through `downs` stride-2 layers
    (receptive field 14 px for 1, 30 px for 2), so what it can ask of the generator is skin, hair
    and lash texture at the scale of a pore, not a second eyelid. Alone (run 12) it made the
    generator draw contour lines over the whole face: a generator with no source of randomness
    can only make texture out of its smooth input's levels. With `net512`'s noise inputs (run 13)
    the lines are gone. PatchD with `downs` stride-2 layers, on the high-pass image."""

    def __init__(self, ch: int = 32, downs: int = 2, sigma: float = 2.0):
        super().__init__(ch, downs)
        self.sigma = sigma

    def forward(self, x, features: bool = False):
        # ×4: back to roughly the −1…1 range the layers expect.
        return super().forward(high_pass(x, self.sigma) * 4, features)

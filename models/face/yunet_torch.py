"""YuNet (the product's face detector, `common.Detector`) as a frozen, differentiable torch module,
and the 512² face restorer's landmark loss through it (issue 29).

The ONNX graph (`yunet_2023mar.onnx`, opset 11: Conv, Relu, MaxPool, nearest Resize ×2, Add,
Transpose, Reshape, Sigmoid) is converted by `onnx2torch` (a torch.fx module; no hand port). The
graph is fully convolutional: any side that is a multiple of 32 works, and a batch comes out of
its `Reshape [1, -1, k]` in batch order, so it is reshaped back to [B, n, k] here. Decoding is
`common.decode`'s (score = √(cls·obj), landmark j = (kps + anchor column/row) · stride), without
the threshold and NMS, for every anchor, differentiably.

The loss reads an aligned face (the 512² template) at `SIDE`² with the face brought to `FACE`²
(antialiased bilinear) in the middle and black around it, as the product's letterbox pads: at
160/128 YuNet finds every training face (best score ≥ 0.9 on 40 of them) on its stride-8 anchors,
and its landmarks there agree with the ones detected on the whole photo (`landmarks_512`) to
4.5 % of the eye distance on average (top-3 anchors; 4.5 % also at 320/256, which costs twice as
much; the face filling the 160² input gives 6 %, with the best anchor jumping between strides).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from face.common import MODELS_SRC, STRIDES

SIDE = 160  # YuNet's input side for the loss (multiple of 32)
FACE = 128  # the aligned face's side inside it
TOPK = 3  # anchors read per face: the target's best, weighted by the target's score
MIN_SCORE = 0.5  # a target face YuNet scores lower than this at its best anchor gives no loss


def load_yunet(path: Path | None = None) -> nn.Module:
    """YuNet as a frozen torch module (eval mode, no parameter requires grad); its forward takes
    [B,3,H,W] BGR 0…255 (H, W multiples of 32) and returns ONNX's twelve outputs in graph order
    (cls/obj/bbox/kps at strides 8, 16, 32), each [1, B·n, k]."""
    import onnx
    import onnx2torch
    model = onnx.load(str(path or MODELS_SRC / "yunet_2023mar.onnx"))
    names = [o.name for o in model.graph.output]
    assert names == [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in STRIDES], names
    net = onnx2torch.convert(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class YuNetLandmarks(nn.Module):
    """Every anchor's score and five landmarks for aligned faces, differentiable in the image."""

    def __init__(self, path: Path | None = None, side: int = SIDE, face: int = FACE):
        super().__init__()
        assert side % 32 == 0 and face <= side
        self.side, self.face = side, face
        self.net = load_yunet(path)
        anchors = []
        for s in STRIDES:
            n = side // s
            r, c = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            anchors.append(torch.stack([c, r], -1).reshape(-1, 1, 2).float() * s)  # [n², 1, 2]
        self.register_buffer("anchors", torch.cat(anchors), persistent=False)
        self.register_buffer("strides", torch.cat([torch.full((((side // s) ** 2),), float(s)) for s in STRIDES]),
                             persistent=False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen

    def raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`x`: YuNet's own input [B,3,side,side] (BGR 0…255). Returns (score [B,N], landmarks
        [B,N,5,2] in x's pixels) over the N anchors of strides 8, 16, 32 (common.decode's order)."""
        b = x.shape[0]
        outs = self.net(x)
        per = [[o.reshape(b, -1, o.shape[-1]) for o in outs[i::3]] for i in range(3)]  # per stride: cls, obj, bbox, kps
        cls = torch.cat([p[0] for p in per], 1)[..., 0]
        obj = torch.cat([p[1] for p in per], 1)[..., 0]
        kps = torch.cat([p[3] for p in per], 1)
        score = (cls.clamp(0, 1) * obj.clamp(0, 1)).sqrt()
        lm = kps.view(b, -1, 5, 2) * self.strides[:, None, None] + self.anchors
        return score, lm

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`img`: aligned faces [B,3,H,H] RGB −1…1 (the face-model convention). Returns (score
        [B,N], landmarks [B,N,5,2] in img's pixels)."""
        h = img.shape[-1]
        x = F.interpolate((img + 1) * 127.5, size=(self.face, self.face), mode="bilinear",
                          antialias=True, align_corners=False).flip(1)  # RGB → BGR
        p = (self.side - self.face) // 2
        x = F.pad(x, (p, self.side - self.face - p) * 2)
        score, lm = self.raw(x)
        return score, (lm - p) * (h / self.face)


def landmark_loss(yunet: YuNetLandmarks, out: torch.Tensor, target: torch.Tensor, lm: torch.Tensor,
                  topk: int = TOPK) -> torch.Tensor:
    """YuNet's reading of the restored faces against its reading of the targets: at the anchors
    the target activates most (its `topk` best, weighted by the target's scores, chosen without
    grad), the L1 distance of the five decoded landmarks, over the two coordinates and five points,
    in units of the eye distance (from `lm`, the target's landmarks [B,5,2] in the frame of `out`,
    the 512² template for `data512`). Both sides go through YuNet, so a perfect restoration scores
    0 whatever YuNet's own error on the target. `out`, `target`: whole aligned faces [B,3,H,H] RGB
    −1…1. A target YuNet does not find (best score < MIN_SCORE) counts 0."""
    with torch.no_grad():
        s_t, lm_t = yunet(target)
        top = s_t.topk(topk, 1)
        w = top.values / top.values.sum(1, keepdim=True).clamp_min(1e-6)  # [B,k]
        ok = (top.values[:, 0] >= MIN_SCORE).to(out.dtype)
        eye = (lm[:, 0] - lm[:, 1]).norm(dim=-1).clamp_min(1.0).to(out.dtype)
    _, lm_o = yunet(out)
    rows = torch.arange(out.shape[0], device=out.device)[:, None]
    d = (lm_o[rows, top.indices] - lm_t[rows, top.indices]).abs().mean((2, 3))  # [B,k]
    per_face = (d * w).sum(1) / eye
    return (per_face * ok).sum() / ok.sum().clamp_min(1.0)

"""Unblur's compact face restorer: an SRVGG-style network (plain 3×3 convolutions and PReLU,
what tract runs fastest) that works on the aligned 256² face folded into 4×4 blocks.

    256²×3 (RGB −1…1) ─PixelUnshuffle 4─▶ 64²×48 ─conv─▶ 64 ch ─(conv, PReLU)×body─▶
    ─conv─▶ 64²×48 ─PixelShuffle 4─▶ 256²×3 residual, + the input ─▶ RGB −1…1

Folding keeps every input pixel while the body runs at 1/16 of the pixels, so 12 layers cost
~2 GMAC per face and see ~116 input pixels around each output (most of a face). The face-model
convention (a fixed [1,3,256,256] input in −1…1) lets the product's face stage run it with no
special case. The body can start from `realesr-general-x4v3`'s first layers (BSD-3-Clause).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

SIDE = 256
FOLD = 4


class FaceNet(nn.Module):
    def __init__(self, ch: int = 64, body: int = 10):
        super().__init__()
        c_in = 3 * FOLD * FOLD
        self.unshuffle = nn.PixelUnshuffle(FOLD)
        self.conv_in = nn.Conv2d(c_in, ch, 3, padding=1)
        self.act_in = nn.PReLU(ch)
        layers = []
        for _ in range(body):
            layers += [nn.Conv2d(ch, ch, 3, padding=1), nn.PReLU(ch)]
        self.body = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(ch, c_in, 3, padding=1)
        self.shuffle = nn.PixelShuffle(FOLD)
        nn.init.normal_(self.conv_out.weight, std=1e-4)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.act_in(self.conv_in(self.unshuffle(x)))
        return x + self.shuffle(self.conv_out(self.body(f)))

    def macs(self, side: int = SIDE) -> int:
        hw = (side // FOLD) ** 2
        return sum(m.weight.numel() * hw for m in self.modules() if isinstance(m, nn.Conv2d))


def init_from_x4v3(net: FaceNet, onnx_path: Path) -> int:
    """Starts the body from realesr-general-x4v3's first convolutions and PReLUs. Its first
    convolution (3→64 on 0…1 pixels) becomes `conv_in` applied to each 4×4 block's mean of the
    −1…1 input, so at step 0 the features are x4v3's own. Returns the layers copied."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(onnx_path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    convs = [(init[n.input[1]], init[n.input[2]]) for n in m.graph.node if n.op_type == "Conv"]
    prelus = [init[n.input[1]].reshape(-1) for n in m.graph.node if n.op_type == "PRelu"]
    ch = net.conv_in.out_channels
    w0, b0 = convs[0]
    if w0.shape[0] != ch:
        return 0
    with torch.no_grad():
        # x01 = (x + 1) / 2 and the block mean spreads each weight over 16 folded channels
        # (PixelUnshuffle puts channel c's block at c·16 … c·16+15).
        w = np.repeat(w0, FOLD * FOLD, axis=1) / (FOLD * FOLD) / 2.0
        net.conv_in.weight.copy_(torch.from_numpy(w))
        net.conv_in.bias.copy_(torch.from_numpy(b0 + w0.sum(axis=(1, 2, 3)) / 2.0))
        net.act_in.weight.copy_(torch.from_numpy(prelus[0].copy()))
        body_convs = [l for l in net.body if isinstance(l, nn.Conv2d)]
        body_acts = [l for l in net.body if isinstance(l, nn.PReLU)]
        n = min(len(body_convs), len(convs) - 2)
        for i in range(n):
            body_convs[i].weight.copy_(torch.from_numpy(convs[1 + i][0].copy()))
            body_convs[i].bias.copy_(torch.from_numpy(convs[1 + i][1].copy()))
            body_acts[i].weight.copy_(torch.from_numpy(prelus[1 + i].copy()))
    return 1 + n


def init_from_onnx(net: FaceNet, onnx_path: Path) -> int:
    """Loads every weight of a FaceNet exported by `export_onnx` (e.g. the committed model, to
    go on training it): convolutions by name, PReLU slopes in graph order (the exporter renames
    them). Returns the tensors copied; raises if the shapes do not fit this network."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(onnx_path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    slopes = [init[n.input[1]] for n in m.graph.node if n.op_type == "PRelu"]
    state = net.state_dict()
    prelu_keys = {k for k in state if k.endswith(".weight") and state[k].dim() == 1}
    if len(prelu_keys) != len(slopes):
        raise ValueError(f"{onnx_path}: {len(slopes)} PReLUs, the network has {len(prelu_keys)}")
    next_slope = iter(slopes).__next__  # state_dict and the graph list the PReLUs in the same order
    new = {}
    for k, v in state.items():
        a = next_slope() if k in prelu_keys else init.get(k)
        if a is None or a.size != v.numel():
            raise ValueError(f"{onnx_path}: no weight of {tuple(v.shape)} for {k}")
        new[k] = torch.from_numpy(a.reshape(v.shape).copy())
    net.load_state_dict(new)
    return len(new)


def export_onnx(net: FaceNet, path: Path) -> None:
    """A fixed [1,3,256,256] graph named as the face stage expects."""
    net = net.eval().float()
    x = torch.zeros(1, 3, SIDE, SIDE)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net, x, str(path), input_names=["input"], output_names=["output"],
                      opset_version=13, do_constant_folding=True, dynamo=False)

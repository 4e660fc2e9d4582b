#!/usr/bin/env python3
"""Export a damage-detector checkpoint to ONNX for the core (tract) and the page.

    python3 models/repair/export.py [--ckpt models/build/repair/run/ckpt.pt]
        [--out models/unblur-repair/unblur-repair.onnx] [--random]

The graph: opset 17, input `input` [1,3,H,W] float32 RGB in 0…1 and output `output` [1,1,H,W]
logits (damage where > 0), dynamic H and W (multiples of 8; the caller pads), fp32 weights.
Checked against torch through onnxruntime on a 64×96 input (max |Δ| ≤ 1e-4); prints sha256 and
size. The export itself is the deblurring network's (models/deblur/export.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblur import data  # noqa: E402
from deblur.export import export, report  # noqa: E402
from repair.net import DetectNet, gmac_per_mp  # noqa: E402

OUT = data.REPO / "models" / "unblur-repair" / "unblur-repair.onnx"


def load_checkpoint(path: Path) -> DetectNet:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = DetectNet(**ck.get("config", {}))
    net.load_state_dict(ck["model"])
    return net.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, default=data.REPO / "models" / "build" / "repair" / "run" / "ckpt.pt")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--random", action="store_true", help="export a randomly initialised net (tests)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.random:
        torch.manual_seed(0)
        net = DetectNet().eval()
    else:
        net = load_checkpoint(args.ckpt)
    export(net, args.out, producer="unblur models/repair/export.py")
    return report(net, args.out, f"{sum(p.numel() for p in net.parameters())} parameters, "
                  f"{gmac_per_mp(net):.2f} GMAC/MP")


if __name__ == "__main__":
    sys.exit(main())

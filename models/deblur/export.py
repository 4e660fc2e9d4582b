#!/usr/bin/env python3
"""Export a deblurring checkpoint to ONNX for the core (tract) and the page.

    python3 models/deblur/export.py [--ckpt models/build/deblur/run/ckpt.pt]
        [--out models/unblur-deblur/unblur-deblur.onnx]

The graph: opset 17, input `input` and output `output`, both [1,3,H,W] float32 RGB in 0…1 with
dynamic H and W (multiples of 8; the caller pads), fp32 weights, output NOT clamped. Checked
against torch through onnxruntime on a 64×96 input (max |Δ| ≤ 1e-4); prints sha256 and size.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblur import data  # noqa: E402
from deblur.net import DeblurNet, describe  # noqa: E402

OUT = data.REPO / "models" / "unblur-deblur" / "unblur-deblur.onnx"
OPSET = 17
TOLERANCE = 1e-4


def load_checkpoint(path: Path) -> DeblurNet:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ck.get("config", {})
    net = DeblurNet(**{k: v for k, v in cfg.items()})
    net.load_state_dict(ck["model"])
    return net.eval()


def export(net: torch.nn.Module, out: Path, producer: str = "unblur models/deblur/export.py") -> None:
    net = net.eval().float()
    out.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(1, 3, 64, 64)
    torch.onnx.export(net, x, str(out), input_names=["input"], output_names=["output"],
                      opset_version=OPSET, do_constant_folding=True, dynamo=False,
                      dynamic_axes={"input": {2: "height", 3: "width"},
                                    "output": {2: "height", 3: "width"}})
    import onnx
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    inline_identities(model)
    # drop the doc strings torch writes (they carry local paths) and keep the file deterministic
    for node in model.graph.node:
        node.doc_string = ""
    model.producer_name = producer
    model.producer_version = ""
    onnx.save(model, str(out))


def inline_identities(model) -> None:
    """torch shares equal initialisers through Identity nodes; give each its own initialiser so
    that the graph holds only the network's operations."""
    from onnx import numpy_helper
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            arr = numpy_helper.to_array(inits[node.input[0]])
            model.graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def check(net: torch.nn.Module, path: Path, h: int = 64, w: int = 96, seed: int = 0) -> float:
    import onnxruntime as ort
    x = torch.from_numpy(np.random.default_rng(seed).uniform(0, 1, (1, 3, h, w)).astype(np.float32))
    with torch.no_grad():
        ref = net.eval()(x).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(["output"], {"input": x.numpy()})[0]
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return float(np.abs(got - ref).max())


def op_types(path: Path) -> list[str]:
    import onnx
    return sorted({n.op_type for n in onnx.load(str(path)).graph.node})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, default=data.WORK / "run" / "ckpt.pt")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--random", action="store_true", help="export a randomly initialised net (tests)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.random:
        torch.manual_seed(0)
        net = DeblurNet().eval()
    else:
        net = load_checkpoint(args.ckpt)
    export(net, args.out)
    return report(net, args.out, describe(net))


def report(net: torch.nn.Module, out: Path, what) -> int:
    """Checks an exported file against torch and prints its ops, the net, the difference, its
    size and sha256; 1 if the difference is above TOLERANCE (models/repair/export.py too)."""
    diff = check(net, out)
    print(f"ops: {' '.join(op_types(out))}")
    print(f"net: {what}")
    print(f"onnxruntime vs torch on 64x96: max |diff| = {diff:.2e}")
    print(f"wrote {out}: {out.stat().st_size} bytes, sha256 {sha256(out)}")
    if diff > TOLERANCE:
        print(f"FAIL: difference above {TOLERANCE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

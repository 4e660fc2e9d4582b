#!/usr/bin/env python3
"""Export face-restoration and RRDBNet models from PyTorch checkpoints to ONNX that tract runs well.

    python3 models/export.py --arch ARCH (--weights FILE.pth | --random) --out FILE.onnx [--check]
                             [--size N] [--fidelity 0.5] [--seed 0] [--opset 17] [--trust-pickle]
    python3 models/export.py --all-random --out-dir models/build/export [--check] [--force] [--only A,B]

ARCH: gfpgan, codeformer, gpen-bfr-512, restoreformer++, rrdbnet-x4, rrdbnet-x2.
Weights load through spandrel (random weights too: the default architecture's seeded random state
dict goes through the same loader; tensors the default init leaves at zero - biases, noise
strengths, position embeddings - get small random values so --check exercises every path). Face models: input `input` RGB [-1, 1] [1,3,512,512] -> `output`.
RRDBNet: RGB [0, 1] [1,3,N,N] (N = --size, default 64) -> `output` [1,3,sN,sN].

--check runs PyTorch (the model's own forward, before the export rewrites) and onnxruntime on the
same seeded random input, prints ||a-b||/||a|| (must be <= 1e-3) and writes next to FILE.onnx:
FILE.input.bin, FILE.expected.bin (raw little-endian f32: the input and PyTorch's output) and
FILE.json (their shapes and names), for the Rust/tract comparison test.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REL_TOL = 1e-3
EXPORTER_FILES = [HERE / "export.py"] + [HERE / "unblur_models" / f for f in
                                          ("export_archs.py", "export_patches.py", "gpen_arch.py", "rfpp_arch.py")]
STAMP = ".stamp.json"


def log(msg: str) -> None:
    print(msg, flush=True)


def sidecar(out: Path, suffix: str) -> Path:
    """FILE.onnx -> FILE<suffix> (FILE.input.bin, FILE.expected.bin, FILE.json)."""
    stem = out.name[:-5] if out.name.endswith(".onnx") else out.name
    return out.with_name(stem + suffix)


def tool_hash() -> str:
    import spandrel
    import torch

    h = hashlib.sha256()
    for p in EXPORTER_FILES:
        h.update(p.read_bytes())
    h.update(f"torch={torch.__version__};spandrel={spandrel.__version__}".encode())
    return h.hexdigest()


def onnx_checks(path: Path) -> dict:
    """Facts about the exported graph that matter to tract."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    consts = {t.name for t in m.graph.initializer}
    consts |= {o for n in m.graph.node if n.op_type == "Constant" for o in n.output}
    dyn_conv = [n.name or n.output[0] for n in m.graph.node
                if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1 and n.input[1] not in consts]
    grouped_dyn = dyn_conv  # any conv whose weight is computed is what we rewrite away
    ops = sorted({n.op_type for n in m.graph.node})
    return {"opset": next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "nodes": len(m.graph.node), "ops": ops, "dynamic_conv_weights": len(grouped_dyn)}


def maybe_simplify(path: Path) -> bool:
    """Run onnx-simplifier if it is installed and the result checks out; else leave the file."""
    try:
        import onnx
        from onnxsim import simplify
    except ImportError:
        return False
    try:
        m = onnx.load(str(path))
        s, ok = simplify(m)
        if ok and len(s.graph.node) <= len(m.graph.node):
            onnx.save(s, str(path))
            return True
    except Exception:  # noqa: BLE001 - optional step
        pass
    return False


def export_one(arch: str, out: Path, weights: str | None, check: bool, size: int | None = None,
               fidelity: float = 0.5, seed: int = 0, opset: int = 17, trust_pickle: bool = False) -> dict:
    import numpy as np
    import onnx
    import torch

    from unblur_models.export_archs import ARCHS, load_model

    spec = ARCHS[arch]
    opts = {"fidelity": fidelity}
    t0 = time.time()
    model = load_model(spec, weights, seed=seed, trust_pickle=trust_pickle)
    timing = {"load": time.time() - t0}
    params = sum(p.numel() for p in model.parameters())

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            y = spec.forward(self.inner, x, opts)
            return y[0] if isinstance(y, (tuple, list)) else y

    wrapper = Wrapper(model).eval()
    n = size or spec.size
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, n, n, generator=g)
    if spec.face:
        x = x * 2 - 1
    ref = None
    if check:
        with torch.no_grad():
            ref = wrapper(x).float().numpy()
    timing["torch"] = time.time() - t0 - sum(timing.values())
    for patch in spec.patches:
        patch(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (x,), str(tmp), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["output"], do_constant_folding=True)
    simplified = maybe_simplify(tmp)
    onnx.checker.check_model(str(tmp))
    os.replace(tmp, out)
    facts = onnx_checks(out)
    timing["export"] = time.time() - t0 - sum(timing.values())
    result = {"arch": arch, "params": int(params), "onnx": out.name, "onnx_bytes": out.stat().st_size,
              "input_shape": list(x.shape), "weights": weights or f"random(seed={seed})", "simplified": simplified,
              **facts, "export_s": round(time.time() - t0, 1)}
    if arch == "codeformer":
        result["fidelity"] = fidelity
    if facts["dynamic_conv_weights"]:
        raise RuntimeError(f"{facts['dynamic_conv_weights']} conv(s) with run-time weights left in the graph")
    if check:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        got = sess.run(["output"], feed)[0]
        times = []
        for _ in range(2):
            t = time.time()
            sess.run(["output"], feed)
            times.append(time.time() - t)
        if got.shape != ref.shape:
            raise RuntimeError(f"onnxruntime output shape {got.shape} != PyTorch {ref.shape}")
        rel = float(np.linalg.norm((ref - got).ravel()) / max(np.linalg.norm(ref.ravel()), 1e-30))
        result.update({"rel_err": rel, "max_abs_err": float(np.abs(ref - got).max()),
                       "ort_ms": round(1000 * min(times), 1), "output_shape": list(ref.shape)})
        x.numpy().astype("<f4").tofile(sidecar(out, ".input.bin"))
        ref.astype("<f4").tofile(sidecar(out, ".expected.bin"))
        meta = {
            "arch": arch, "onnx": out.name, "weights": result["weights"], "params": result["params"],
            "input": {"name": "input", "shape": list(x.shape), "file": sidecar(out, ".input.bin").name,
                      "dtype": "f32-le", "range": [-1, 1] if spec.face else [0, 1]},
            "expected": {"name": "output", "shape": list(ref.shape), "file": sidecar(out, ".expected.bin").name,
                         "dtype": "f32-le", "source": "PyTorch (model's own forward)"},
            "onnxruntime_rel_err": rel, "tolerance": REL_TOL,
        }
        sidecar(out, ".json").write_text(json.dumps(meta, indent=2) + "\n")
        result["ok"] = rel <= REL_TOL
        timing["onnxruntime"] = time.time() - t0 - sum(timing.values())
        result["timing_s"] = {k: round(v, 1) for k, v in timing.items()}
    else:
        result["ok"] = True
    return result


def fmt_row(r: dict) -> str:
    if r.get("error"):
        return f"{r['arch']:16} FAILED: {r['error']}"
    rel = f"{r['rel_err']:.2e}" if "rel_err" in r else "-"
    ms = f"{r['ort_ms']:.0f}" if "ort_ms" in r else "-"
    size = "x".join(str(d) for d in r["input_shape"][2:])
    flag = "" if r.get("ok", True) else "  <-- rel err above 1e-3"
    return (f"{r['arch']:16} {r['params']:>12,} {r['onnx_bytes']:>13,} {rel:>9} {ms:>8} {size:>8}"
            f" {r['nodes']:>6}{flag}")


TABLE_HEAD = (f"{'arch':16} {'params':>12} {'onnx bytes':>13} {'rel err':>9} {'ort ms':>8} {'input':>8} {'nodes':>6}")


def all_random(out_dir: Path, check: bool, force: bool, only: list[str] | None) -> int:
    import gc

    from unblur_models.export_archs import ARCHS

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_path = out_dir / STAMP
    stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    th = tool_hash()
    if stamp.get("tool") != th:
        stamp = {"tool": th, "results": {}}
    rows = []
    for arch in (only or list(ARCHS)):
        out = out_dir / f"{arch}.onnx"
        prev = stamp["results"].get(arch)
        needed = [out] + ([sidecar(out, s) for s in (".input.bin", ".expected.bin", ".json")] if check else [])
        if (not force and prev and not prev.get("error") and prev.get("ok") and (not check or "rel_err" in prev)
                and all(p.exists() for p in needed) and out.stat().st_size == prev["onnx_bytes"]):
            log(f"{arch}: up to date")
            rows.append(prev)
            continue
        log(f"{arch}: exporting ...")
        try:
            r = export_one(arch, out, None, check)
            log(f"{arch}: done in {r['export_s']}s" + (f", rel err {r['rel_err']:.2e}" if "rel_err" in r else ""))
        except Exception as e:  # noqa: BLE001 - report and keep going with the others
            msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            log(f"{arch}: FAILED: {msg}")
            traceback.print_exc(limit=3)
            r = {"arch": arch, "error": msg}
        stamp["results"][arch] = r
        stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
        rows.append(r)
        gc.collect()
    print()
    print(TABLE_HEAD)
    print("-" * len(TABLE_HEAD))
    for r in rows:
        print(fmt_row(r))
    (out_dir / "summary.json").write_text(json.dumps({"tolerance": REL_TOL, "results": rows}, indent=2) + "\n")
    bad = [r["arch"] for r in rows if r.get("error") or not r.get("ok", False)]
    if bad:
        print(f"\nnot ok: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    from unblur_models.export_archs import ARCHS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHS))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", help="checkpoint (.pth/.ckpt/.safetensors) to load through spandrel")
    src.add_argument("--random", action="store_true", help="random weights (seeded) instead of a checkpoint")
    p.add_argument("--out", help="output .onnx file")
    p.add_argument("--check", action="store_true", help="compare PyTorch and onnxruntime; write test vectors")
    p.add_argument("--size", type=int, help="input size (face models: 512; RRDBNet default 64)")
    p.add_argument("--fidelity", type=float, default=0.5, help="CodeFormer fidelity weight w (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--trust-pickle", action="store_true",
                   help="if spandrel's safe loader refuses the file, unpickle it fully (only for files you trust)")
    p.add_argument("--all-random", action="store_true", help="export every architecture with random weights")
    p.add_argument("--out-dir", default=str(HERE / "build" / "export"), help="folder for --all-random")
    p.add_argument("--only", help="with --all-random: comma-separated architectures")
    p.add_argument("--force", action="store_true", help="with --all-random: ignore the stamp")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if a.all_random:
        only = a.only.split(",") if a.only else None
        if only and not set(only) <= set(ARCHS):
            p.error(f"unknown architecture(s): {', '.join(sorted(set(only) - set(ARCHS)))}")
        return all_random(Path(a.out_dir), a.check, a.force, only)
    if not a.arch or not a.out or not (a.weights or a.random):
        p.error("give --arch, --out and one of --weights/--random (or --all-random)")
    if a.weights and not Path(a.weights).is_file():
        p.error(f"weights file not found: {a.weights}")
    if a.size and ARCHS[a.arch].face and a.size != 512:
        p.error("face models are exported at 512x512")
    try:
        r = export_one(a.arch, Path(a.out), a.weights, a.check, size=a.size, fidelity=a.fidelity,
                       seed=a.seed, opset=a.opset, trust_pickle=a.trust_pickle)
    except Exception as e:  # noqa: BLE001
        print(f"error: {a.arch}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(TABLE_HEAD)
    print(fmt_row(r))
    if "rel_err" in r:
        print(f"max relative error (||torch - onnxruntime|| / ||torch||): {r['rel_err']:.3e} "
              f"({'ok' if r['ok'] else 'ABOVE'} tolerance {REL_TOL:g})")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

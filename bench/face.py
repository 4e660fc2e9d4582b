#!/usr/bin/env python3
"""Time per face, natively: Unblur's own face model (each built form, through tract as the CLI
runs it, and onnxruntime for reference) against the SR fallback on the crops it runs for a face,
one thread each, on a real aligned dev face; with the GMAC per face from the graph. Then the
published face restorers (GFPGAN, CodeFormer) as the CLI runs them (`unblur models run`: the
.pth converted in Rust, its stored fp16 form loaded), on the random-weight checkpoints in
upstream's layout (models/checkpoints.py; the real files have the same graph and cost). Prints
markdown tables and writes bench/out/face.json.

    python3 bench/face.py [--reps 5] [--out bench/out/face.json] [--export-only]

Needs target/release/unblur-bench-native (cargo build --release -p unblur-bench-native, or
`make bench`) and the built models (make models).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.path.join(REPO, "models", "build")
TRACT = os.path.join(REPO, "target", "release", "unblur-bench-native")
FACE = os.path.join(REPO, "..", "shared", "data", "dev", "codeformer", "cropped_faces", "0143.png")
sys.path.insert(0, HERE)


def face_tile(work: str, side: int, signed: bool) -> tuple[str, np.ndarray]:
    a = np.asarray(Image.open(FACE).convert("RGB").resize((side, side), Image.BILINEAR), np.float32) / 255.0
    if signed:
        a = a * 2 - 1
    planar = np.ascontiguousarray(a.transpose(2, 0, 1)[None])
    p = os.path.join(work, f"face{side}{'s' if signed else ''}.f32")
    planar.astype("<f4").tofile(p)
    return p, planar


def tract_ms(model: str, tile: str, side: int, reps: int) -> dict:
    env = dict(os.environ, TRACT_DISABLE_DIRECT_SPATIAL="true")  # as the CLI sets it
    out = subprocess.run([TRACT, model, str(reps), f"{tile}:{side}:{side}"], capture_output=True, text=True,
                         check=True, env=env)
    r = json.loads(out.stdout.splitlines()[-1])
    return {"ms": min(r["runs_ms"]), "median_ms": float(np.median(r["runs_ms"])), "plan_ms": r["plan_ms"]}


def ort_ms(model: str, x: np.ndarray, reps: int) -> float:
    import time

    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    s.run(None, {name: x})
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append((time.perf_counter() - t0) * 1e3)
    return min(t)


def published_rows(work: str) -> list[dict]:
    """GFPGAN and CodeFormer per 512² face, natively, one thread (tract runs one thread here):
    the first `models run` converts the .pth and stores it, the second loads the stored form."""
    ckpt = os.path.join(BUILD, "checkpoints")
    unblur = os.path.join(REPO, "target", "release", "unblur")
    rows = []
    for arch, name, extra in (("gfpgan", "GFPGAN v1.4", []), ("codeformer", "CodeFormer v0.1.0 (w = 0.5)", ["--fidelity", "0.5"])):
        pth = os.path.join(ckpt, f"{arch}.pth")
        if not (os.path.exists(pth) and os.path.exists(unblur)):
            print(f"skipping {name}: no {pth} (make test-export) or no {unblur}", file=sys.stderr)
            continue
        env = dict(os.environ, UNBLUR_CACHE=os.path.join(work, "cache"))
        runs = []
        for _ in range(2):
            out = subprocess.run([unblur, "models", "run", pth, "--input", os.path.join(ckpt, f"{arch}.input.bin"),
                                  "--output", os.path.join(work, "out.bin"), *extra],
                                 capture_output=True, text=True, check=True, env=env)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.append({"model": name, "arch": arch, "convert_and_load_ms": runs[0]["load_ms"],
                     "load_ms": runs[1]["load_ms"], "ms": min(r["run_ms"] for r in runs)})
    return rows


def published_md(rows: list[dict]) -> str:
    md = ["| published face restorer (one 512² face, native, one thread) | first use: convert + load (s) | later load (s) | per face (s) |",
          "|---|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['convert_and_load_ms'] / 1e3:.1f} | {r['load_ms'] / 1e3:.1f} | {r['ms'] / 1e3:.1f} |")
    return "\n".join(md)


FACE512 = os.path.join(BUILD, "unblur-face-512-candidate.onnx")


def face512_onnx() -> str | None:
    """The 512² face model's best generator so far (the one `train512.py --recipe texture` goes on
    from, also what `make eval-face` scores) exported as it would ship, its noise frozen, to
    models/build (bench/browser.mjs times it there too); None where torch is not installed. The
    export is `make eval-face`'s own (`evaluate.onnx_of`, kept by the generator's sha256 in its
    folder), so it is made once for both."""
    try:
        import torch  # noqa: F401  (the export needs it)
        sys.path.insert(0, os.path.join(REPO, "models"))
        from face.evaluate import onnx_of
        from face.prepare512 import OUT as FACES512
        from face.train512 import RECIPES
    except ImportError as e:
        print(f"no 512² face model row: {e}", file=sys.stderr)
        return None
    shutil.copyfile(onnx_of(RECIPES["texture"]["init_gen"], FACES512 / "eval"), FACE512)
    return FACE512


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "face.json"))
    ap.add_argument("--export-only", action="store_true",
                    help="only export the 512² face model for bench/browser.mjs (bench/run.sh, before it)")
    args = ap.parse_args()
    if args.export_only:
        face512_onnx()
        return 0
    if not os.path.exists(TRACT):
        sys.exit(f"missing {TRACT}: cargo build --release -p unblur-bench-native")
    import flops as fl

    man = json.load(open(os.path.join(BUILD, "manifest.json")))
    own = next(m for m in man["models"] if m["id"] == "unblur-face")
    sr = next(m for m in man["models"] if m.get("default") and m["task"] == "super-resolution")
    work = tempfile.mkdtemp(prefix="unblur-face-bench-")
    rows = []
    t256, x256 = face_tile(work, 256, True)
    for form in ("fp32", own["ship"]) if own["ship"] != "fp32" else ("fp32",):
        path = os.path.join(BUILD, own["artifacts"][form]["file"])
        r = tract_ms(path, t256, 256, args.reps)
        f = fl.count(path, 256, 256)["flops"]
        rows.append({"method": f"Unblur face model ({form}{', shipped' if form == own['ship'] else ''}), 256² face",
                     "engine": "tract (Unblur)", "gmac": f / 2e9, **r, "bytes": own["artifacts"][form]["bytes"]})
    fp32 = os.path.join(BUILD, own["artifacts"]["fp32"]["file"])
    rows.append({"method": "Unblur face model (fp32), 256² face", "engine": "onnxruntime", "gmac": rows[0]["gmac"],
                 "ms": ort_ms(fp32, x256, args.reps)})
    # The 512² face model of issue 29 (not shipped: the best generator so far), as it would ship.
    c512 = face512_onnx()
    if c512:
        r = tract_ms(c512, t256, 256, args.reps)
        g = fl.count(c512, 256, 256)["flops"] / 2e9
        rows.append({"method": "512² face model candidate (fp32), 256² face → 512²", "engine": "tract (Unblur)",
                     "gmac": g, **r, "bytes": os.path.getsize(c512)})
        rows.append({"method": "512² face model candidate (fp32), 256² face → 512²", "engine": "onnxruntime",
                     "gmac": g, "ms": ort_ms(c512, x256, args.reps)})
    # The SR fallback on the crop it runs for a face of 64, 128 and 256 px (output ×4).
    sr_path = os.path.join(BUILD, sr["artifacts"][sr["ship"]]["file"])
    for side in (64, 128, 256):
        t, _ = face_tile(work, side, False)
        r = tract_ms(sr_path, t, side, max(2, args.reps // 2) if side == 256 else args.reps)
        f = fl.count(sr_path, side, side)["flops"]
        rows.append({"method": f"SR fallback ({sr['id']}, {sr['ship']}), {side}² crop", "engine": "tract (Unblur)",
                     "gmac": f / 2e9, **r})
    md = ["| face stage (one face, one thread, native) | engine | GMAC | ms (best) | median | plan (ms) |",
          "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['method']} | {r['engine']} | {r['gmac']:.2f} | {r['ms']:,.0f} | "
                  f"{r.get('median_ms', r['ms']):,.0f} | {r['plan_ms']:,.0f} |" if "plan_ms" in r else
                  f"| {r['method']} | {r['engine']} | {r['gmac']:.2f} | {r['ms']:,.0f} | | |")
    text = "\n".join(md)
    print(text)
    published = published_rows(work)
    if published:
        print(published_md(published))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    json.dump({"rows": rows, "face": os.path.relpath(FACE, REPO), "loadavg": open("/proc/loadavg").read().split()[:3],
               "markdown": text, "published": published}, open(args.out, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

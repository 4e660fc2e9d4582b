#!/usr/bin/env python3
"""The CLI's whole job as a user times it, against a plain Python script with onnxruntime.

    python3 bench/cli_job.py [--photo FILE] [--rounds 3] [--tiles 96:16,128:16,192:16,256:16] [--gemm]

Each runner is a fresh process timed from start to exit (decode → upscale ×4 → PNG written):
  - `unblur restore PHOTO --scale 4 --faces off` at its defaults, and like for like (`--denoise 1
    --form fp32`: the same fp32 network onnxruntime runs) at each tile:overlap given;
  - `python3 bench/cli_job.py --ort`: what Real-ESRGAN's own inference script does with onnxruntime
    on all cores: PIL decode, the fp32 model over 256² tiles with 10 px of padding, PNG out.
Runners alternate round by round; medians. Prints a table, writes bench/out/cli_job.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "target" / "release" / "unblur"
MODELS = Path(os.environ.get("UNBLUR_MODELS", REPO / "models" / "build"))
PHOTO = REPO.parent / "shared" / "data" / "dev" / "gfpgan" / "whole_imgs" / "Blake_Lively.jpg"


def ort_job(photo: Path, out: Path, model: Path, tile: int = 256, pad: int = 10) -> None:
    """Real-ESRGAN's tile_process with onnxruntime: each tile padded by `pad`, its output cropped."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    img = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 255.0
    h, w, _ = img.shape
    x = img.transpose(2, 0, 1)[None]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    s = 4
    y = np.zeros((1, 3, h * s, w * s), np.float32)
    for ty in range(0, h, tile):
        for tx in range(0, w, tile):
            y0, y1, x0, x1 = ty, min(ty + tile, h), tx, min(tx + tile, w)
            py0, py1, px0, px1 = max(y0 - pad, 0), min(y1 + pad, h), max(x0 - pad, 0), min(x1 + pad, w)
            o = sess.run(None, {name: np.ascontiguousarray(x[:, :, py0:py1, px0:px1])})[0]
            oy, ox = (y0 - py0) * s, (x0 - px0) * s
            y[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = o[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
    out_img = (np.clip(y[0].transpose(1, 2, 0), 0, 1) * 255.0).round().astype(np.uint8)
    Image.fromarray(out_img).save(out)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, UNBLUR_MODELS=str(MODELS), **(env or {})))
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photo", type=Path, default=PHOTO)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tiles", default="96:16,128:16,192:16,256:16")
    p.add_argument("--gemm", action="store_true", help="also the defaults with tract's own GEMM choice")
    p.add_argument("--ort", nargs=2, metavar=("PHOTO", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    fp32 = MODELS / "realesr-general-x4v3.fp32.onnx"
    if a.ort:
        ort_job(Path(a.ort[0]), Path(a.ort[1]), fp32)
        return
    with tempfile.TemporaryDirectory() as d:
        runners = {"onnxruntime script (fp32, 256² tiles + 10 px pad, all cores)":
                   [sys.executable, __file__, "--ort", str(a.photo), f"{d}/ort.png"],
                   "unblur restore (its defaults)":
                   [str(CLI), "restore", "--scale", "4", "--faces", "off", "-o", d, str(a.photo)]}
        envs = {}
        if a.gemm:
            # The same job with tract's own GEMM kernel choice instead of the one measured at
            # start-up (src/engine/gemm_native.rs): what that measurement wins on the whole job.
            k = "unblur restore (its defaults), tract's GEMM choice (UNBLUR_GEMM=tract)"
            runners[k], envs[k] = runners["unblur restore (its defaults)"], {"UNBLUR_GEMM": "tract"}
        for t in a.tiles.split(","):
            tile, overlap = t.split(":")
            runners[f"unblur, fp32, denoise 1, tile {tile} overlap {overlap}"] = [
                str(CLI), "restore", "--scale", "4", "--faces", "off", "--denoise", "1", "--form", "fp32",
                "--tile", tile, "--overlap", overlap, "-o", d, str(a.photo)]
        times = {k: [] for k in runners}
        names = list(runners)
        for r in range(a.rounds):
            for k in (names if r % 2 == 0 else names[::-1]):
                times[k].append(timed(runners[k], envs.get(k)))
                print(f"[cli_job] {k}: {times[k][-1]:.2f} s", file=sys.stderr, flush=True)
    ort_s = statistics.median(times[names[0]])
    rows = [{"runner": k, "median_s": statistics.median(v), "runs": v, "vs_ort": statistics.median(v) / ort_s}
            for k, v in times.items()]
    from PIL import Image

    w, h = Image.open(a.photo).size
    print(f"\n{a.photo.name} ({w}×{h}, {w * h / 1e6:.2f} MP) ×4, faces off; {a.rounds} alternating rounds, "
          f"load {os.getloadavg()[0]:.2f}\n")
    print("| runner | median (s) | ÷ onnxruntime script |\n|---|---:|---:|")
    for row in rows:
        print(f"| {row['runner']} | {row['median_s']:.2f} | {row['vs_ort']:.2f}× |")
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "cli_job.json").write_text(json.dumps(
        {"photo": a.photo.name, "size": [w, h], "rounds": a.rounds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What issue #11's NIQE bar rewards on these faces: the ground truth itself, and simple filters
on it and on a face model's output, scored and judged exactly as `evaluate.py` scores and judges
a face model (same held-out faces, degradations, seeds, metrics and bar against sr-fallback).

The bar asks for NIQE@512 at least 2.0 below sr-fallback's. On this data the ground truths are
~200-px photos enlarged ~2.5× by the alignment; this script measures whether anything faithful
can get there, and what does:

  ground truth            the 512² ground truth itself (PSNR ∞: a perfect restorer)
  ground truth + noise    grey Gaussian noise σ 1 (of 255), rounded to 8 bits
  ground truth + USM r/a  PIL's unsharp mask, radius r, amount a % (threshold 0): halos
  sr-fallback             what the product does without a face model (as evaluate.py)
  <model>                 the face model (as evaluate.py), and the same + unsharp mask

Beside PSNR, NIQE and LMD, each method's fold grid: the face model folds 4×4 pixels into
channels (net.py), and a periodic pattern on that grid shows in the luma's spectrum as a peak at a
period of 8 px of the 512² output (4 px of its 256² input). The column is the mean spectrum's
value there against its 8 neighbours (~1: no pattern).

    python3 models/face/niqe_probe.py [--model models/unblur-face/unblur-face-s.onnx] [--limit 60]

Prints markdown tables and writes `<faces>/eval/niqe_probe.json` and a grid of the first faces at
×4 (`niqe_probe_grid.png`; held-out faces are photos of real people: they stay in the git-ignored
build folder).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import REPO, WORK, Detector, FoldGrid, sha256_file, write_json  # noqa: E402
from face.degrade import LEVELS, reference, to_u8  # noqa: E402
from face.evaluate import (SR, SR_MODEL, FaceModel, Net, SrFallback, TruthCache, bar, bar_table,  # noqa: E402
                           fmt, grid, measure, seed, summarise)

NOISE = 1.0
USM_GT = ((2, 100), (3, 150), (4, 200))
USM_MODEL = ((2, 100), (2, 140), (2, 160), (3, 150))
GRID_FACES = 4


def usm(img: np.ndarray, radius: int, amount: int) -> np.ndarray:
    im = Image.fromarray(to_u8(img)).filter(ImageFilter.UnsharpMask(radius=radius, percent=amount, threshold=0))
    return np.asarray(im, np.float32) / 255.0


def noisy(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    grey = rng.normal(0.0, sigma / 255.0, img.shape[:2])[..., None]
    return np.asarray(to_u8(img + grey), np.float32) / 255.0


def methods(model: FaceModel, name: str, sr: SrFallback, gt: np.ndarray, rng: np.random.Generator):
    """Each method's 512² output for one low-quality face `lq` (the same for all): (lq) → image."""
    out = {"ground truth": lambda lq: gt, f"ground truth + noise σ {NOISE:g}": lambda lq: noisy(gt, NOISE, rng)}
    for r, a in USM_GT:
        out[f"ground truth + USM r{r}/{a}%"] = lambda lq, r=r, a=a: usm(gt, r, a)
    memo: dict = {}  # the model runs once per face and level, the unsharp masks reuse its output

    def restored(lq):
        if "out" not in memo:
            memo["out"] = model(lq)
        return memo["out"]

    out[SR] = sr
    out[name] = restored
    for r, a in USM_MODEL:
        out[f"{name} + USM r{r}/{a}%"] = lambda lq, r=r, a=a: usm(restored(lq), r, a)
    return out


def table(lv: str, levels: dict, n: int) -> list[str]:
    p = LEVELS[lv]
    lines = [f"### {lv}: {p['side']}² face, {n} faces", "",
             "| method | PSNR@512 | NIQE@512 | LMD % (misses) | fold grid |", "|---|---:|---:|---:|---:|"]
    for name, m in levels[lv].items():
        lines.append(f"| {name} | {fmt(m['psnr512'], 2)} | {fmt(m['niqe512'], 2)} | "
                     f"{fmt(m['lmd'], 2)} ({m['lmd_misses']}) | {fmt(m['fold_grid'], 1)}× |")
    return lines + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=WORK)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "unblur-face" / "unblur-face-s.onnx")
    ap.add_argument("--name", default="unblur-face")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="default <faces>/eval")
    args = ap.parse_args(argv)
    if not (args.faces / "heldout.json").exists():
        print(f"no {args.faces / 'heldout.json'}: run models/face/prepare.py first", file=sys.stderr)
        return 1
    out_dir = args.out or args.faces / "eval"
    detector = Detector(threads=args.threads)
    sr = SrFallback(Net(SR_MODEL, args.threads))
    model = FaceModel(Net(args.model, args.threads))
    cache = TruthCache(args.faces / "eval" / "gt_cache.json", detector)
    entries = sorted(json.loads((args.faces / "heldout.json").read_text()), key=lambda e: e["id"])[: args.limit]

    per: dict = {lv: {} for lv in LEVELS}
    grids: dict = {}
    tiles = []
    t0 = time.time()
    for k, e in enumerate(entries):
        gt = cache.get(e["id"], args.faces / "heldout" / f"{e['id']}.png")
        rng = np.random.default_rng(int(e["id"]))
        for lv in LEVELS:
            lq = reference(gt.img, lv, seed(e["id"], lv))
            row = []
            for name, method in methods(model, args.name, sr, gt.img, rng).items():
                img = method(lq)
                m, _ = measure(img, gt, detector)
                per[lv].setdefault(name, []).append(m)
                grids.setdefault((lv, name), FoldGrid(512)).add(img)
                row.append(img)
            if lv == "x4" and k < GRID_FACES:
                tiles.append(row)
        print(f"  {e['id']} ({k + 1}/{len(entries)}) {time.time() - t0:.0f}s", file=sys.stderr)
    cache.save()

    levels = {lv: {name: {**summarise(ms), "fold_grid": grids[lv, name].ratio()} for name, ms in t.items()}
              for lv, t in per.items()}
    judged = [name for name in levels["x4"] if name != SR]
    bars = bar(levels, judged)
    n = len(entries)
    md = [f"## What the NIQE bar rewards: {n} held-out faces", ""]
    for lv in LEVELS:
        md += table(lv, levels, n)
    md += bar_table(bars, levels)
    text = "\n".join(md) + "\n"
    print(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "niqe_probe.md").write_text(text)
    write_json(out_dir / "niqe_probe.json", {
        "faces": n, "levels": levels, "bar": bars,
        "model": {"name": args.name, "sha256": sha256_file(args.model)},
        "noise_sigma": NOISE, "usm_ground_truth": USM_GT, "usm_model": USM_MODEL,
    })
    labels = list(levels["x4"].keys())
    # Tiles at 256² from the 512² outputs (evaluate.grid's tile side); full size for a closer look.
    small = [[np.asarray(Image.fromarray(to_u8(t)).resize((256, 256), Image.BICUBIC), np.float32) / 255 for t in row]
             for row in tiles]
    grid([s.replace("ground truth", "GT") for s in labels], small).save(out_dir / "niqe_probe_grid.png")
    Image.fromarray(to_u8(np.concatenate([np.concatenate(r, 1) for r in tiles], 0))).save(
        out_dir / "niqe_probe_grid_512.png")
    print(f"wrote {out_dir / 'niqe_probe.md'}, niqe_probe.json, niqe_probe_grid.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""FFHQ 512² data preparation (`make face-data`, issue 29): decode each sharp FFHQ face of
`../shared/data/faces/ffhq512` once, fit the product's similarity to it (YuNet's landmarks onto
the FFHQ 5-point template, `common.to_template`, as the face stage fits it), and cache

  - the photo itself (uint8): training degrades it and cuts the network's input from it with the
    product's own bilinear warp (`common.warp`), as inference does;
  - the TARGET: the photo warped to the 512² template with a bicubic resampler (the product's
    bilinear warp halves a sharp face's Laplacian variance; bicubic keeps ~85 %), edges
    replicated;
  - the mask of the template's pixels the photo covers (the rest stays out of the losses).

    python3 models/face/prepare512.py [--src ../shared/data/faces/ffhq512]
        [--out models/build/faces512] [--val-n 100] [--workers 2] [--limit N]

Writes (git-ignored, derived from photos of real people, never committed: FFHQ is CC BY-NC-SA):
  {train,val}_photo.npy   uint8 [n, 512, 512, 3]  the decoded photos
  {train,val}_target.npy  uint8 [n, 512, 512, 3]  bicubic-aligned targets (512² template)
  {train,val}_mask.npy    uint8 [n, 512, 512]     1 where the template pixel lies in the photo
  index.json              per face: file, similarity (a, b, tx, ty), landmarks in the photo and
                          the template, detector score, coverage; `select`: the --val-n train/
                          faces held back to choose checkpoints (training never sees them).
`val/` is prepared for the report's evaluation only: never train or select on it.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import FACES_SRC, REPO, Detector, apply, inverse, to_template, write_json  # noqa: E402

SIDE = 512
OUT = REPO / "models" / "build" / "faces512"
SRC = FACES_SRC / "ffhq512"
PAD = 160  # edge-replicated border for the target warp (the template pokes up to ~17 % out)
_det: Detector | None = None


def coverage(m: np.ndarray, h: int, w: int, side: int = SIDE) -> np.ndarray:
    """Bool [side, side]: template pixels whose source (pixel centre, `common.warp`'s convention)
    lies inside the h×w photo."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64)
    p = apply(inverse(m), np.stack([xs + 0.5, ys + 0.5], -1))
    return (p[..., 0] >= 0) & (p[..., 0] <= w) & (p[..., 1] >= 0) & (p[..., 1] <= h)


def warp_hq(rgb: np.ndarray, m: np.ndarray, side: int = SIDE, method=Image.BICUBIC) -> np.ndarray:
    """The photo (uint8 HxWx3) warped to the `side`² template by the similarity `m` (photo →
    template) with PIL's bicubic, edges replicated. Pillow's affine transform works in continuous
    coordinates with pixel centres at +0.5, the convention of `common.warp` (checked by the test)."""
    padded = np.pad(rgb, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="edge")
    a, b, tx, ty = inverse(m)  # template → photo: x = a·u − b·v + tx, y = b·u + a·v + ty
    data = (a, -b, tx + PAD, b, a, ty + PAD)
    out = Image.fromarray(padded).transform((side, side), Image.AFFINE, data, resample=method)
    return np.asarray(out)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def work(path: str):
    """One face: (photo, target, mask, info), or (None, reason)."""
    global _det
    if _det is None:
        _det = Detector(threads=1)
    try:
        rgb = load(Path(path))
    except Exception as e:  # a damaged file is skipped and counted
        return None, f"decode: {e}"
    if rgb.shape[:2] != (SIDE, SIDE):
        return None, f"size {rgb.shape[1]}x{rgb.shape[0]}"
    faces = _det.detect(rgb)
    if not faces:
        return None, "no face"
    f = max(faces, key=lambda f: f["bbox"][2] * f["bbox"][3])
    lm = np.asarray(f["landmarks"], np.float64)
    m = to_template(lm, SIDE)
    mask = coverage(m, *rgb.shape[:2])
    info = {"file": Path(path).name, "score": round(f["score"], 4),
            "m": [round(float(v), 6) for v in m], "scale": round(float(np.hypot(m[0], m[1])), 4),
            "rot_deg": round(float(np.degrees(np.arctan2(m[1], m[0]))), 2),
            "coverage": round(float(mask.mean()), 4), "landmarks": lm.round(3).tolist(),
            "landmarks_512": apply(m, lm).round(3).tolist()}
    return (rgb, warp_hq(rgb, m), mask.astype(np.uint8)), info


def prepare_split(name: str, files: list[Path], out: Path, workers: int) -> tuple[list[dict], dict]:
    n = len(files)
    arrays = {k: np.lib.format.open_memmap(out / f"{name}_{k}.npy.tmp", "w+", np.uint8, shape)
              for k, shape in (("photo", (n, SIDE, SIDE, 3)), ("target", (n, SIDE, SIDE, 3)),
                               ("mask", (n, SIDE, SIDE)))}
    rows, skipped = [], {}
    t0 = time.time()
    with mp.Pool(workers) as pool:
        for i, (res, info) in enumerate(pool.imap(work, map(str, files), chunksize=8)):
            if res is None:
                skipped[info] = skipped.get(info, 0) + 1
            else:
                k = len(rows)
                arrays["photo"][k], arrays["target"][k], arrays["mask"][k] = res
                rows.append(info)
            if (i + 1) % 500 == 0 or i + 1 == n:
                print(f"{name}: {i + 1}/{n} photos, {len(rows)} faces, {time.time() - t0:.0f} s", flush=True)
    # Keep the rows written (a skipped face leaves no hole: rows are packed).
    for k, a in arrays.items():
        a.flush()
        del a
    k_rows = len(rows)
    for k in ("photo", "target", "mask"):
        tmp = out / f"{name}_{k}.npy.tmp"
        full = np.load(tmp, mmap_mode="r")
        if k_rows < n:  # rewrite without the unused tail
            dst = np.lib.format.open_memmap(out / f"{name}_{k}.npy", "w+", np.uint8, (k_rows, *full.shape[1:]))
            dst[:] = full[:k_rows]
            dst.flush()
            tmp.unlink()
        else:
            tmp.replace(out / f"{name}_{k}.npy")
    return rows, {"photos": n, "skipped": skipped, "seconds": round(time.time() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--val-n", type=int, default=100, help="train/ faces held back to choose checkpoints")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="first N photos per split (a quick run)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    index = {"side": SIDE, "src": str(args.src), "target_resampler": "bicubic (PIL), edges replicated"}
    for name in ("train", "val"):
        files = sorted([*(args.src / name).glob("*.avif"), *(args.src / name).glob("*.png")])
        files = files[: args.limit] if args.limit else files
        rows, counts = prepare_split(name, files, args.out, args.workers)
        index[name] = rows
        index[f"{name}_counts"] = counts
        print(f"{name}: {len(rows)} faces of {counts['photos']} ({counts['skipped']}), {counts['seconds']} s", flush=True)
    # The selection faces: a fixed, name-hashed choice of train/ faces.
    order = sorted(range(len(index["train"])), key=lambda i: hashlib.sha1(index["train"][i]["file"].encode()).hexdigest())
    index["select"] = sorted(order[: args.val_n])
    write_json(args.out / "index.json", index)
    sc = np.array([r["scale"] for r in index["train"]])
    cov = np.array([r["coverage"] for r in index["train"]])
    print(f"scale {sc.min():.3f}–{sc.max():.3f}, coverage min {cov.min():.3f} median {np.median(cov):.3f}; "
          f"{len(index['select'])} held back for selection", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

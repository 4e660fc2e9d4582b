#!/usr/bin/env python3
"""Face data preparation for the 256² v0–v5 models (`make face-data` ran it until issue 29; it now
runs `prepare512.py`): find and align every face photo of
`../shared/data/faces` with the product's own detector (YuNet) and FFHQ 5-point template, as
inference aligns it, at 256² (the 512 template scaled by ½: these faces carry detail up to about
that size); drop photos where no face is found and targets that are themselves blurry; split off
a held-out set that training never sees.

    python3 models/face/prepare.py [--out models/build/faces] [--limit N] [--workers 2]
                                   [--heldout 600] [--keep-sharpest 0.8]

Writes (git-ignored, derived from photos of real people, never committed):
  train_256.npy    memmap uint8 [rows, 256, 256, 3]: aligned faces
  train_mask.npy   memmap uint8 [rows, 256, 256]: 1 where the crop's pixel came from the photo
                   (UTKFace crops are tight, All-Age-Faces has black corners)
  index.json       per row: source file, detector score, sharpness, eye distance; the split
  heldout/NNNN.png the held-out faces aligned at 512² (ground truth), NNNN_mask.png
  heldout.json     the held-out list (source, landmarks in the 512 template)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import FACES_SRC, WORK, Detector, apply, to_template, warp, write_json  # noqa: E402

SIDE = 256
SETS = ("utkface", "all-age-faces")
_det: Detector | None = None


def valid_source(rgb: np.ndarray) -> np.ndarray:
    """1 where a photo pixel is real: not part of a near-black region touching the border (the
    rotation corners of All-Age-Faces)."""
    dark = (rgb.max(-1) <= 10).astype(np.uint8) * 255
    im = Image.fromarray(dark, "L")
    h, w = dark.shape
    for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if im.getpixel(xy) == 255:
            ImageDraw.floodfill(im, xy, 128)
    return (np.asarray(im) != 128).astype(np.float32)


def sharpness(face: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian of luma (0…255) over the face's centre (where the paste-back
    mask keeps the restored face), counting valid pixels only."""
    y = (face @ np.array([0.299, 0.587, 0.114], np.float32)) * 255.0
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    c = lap[70:220, 50:205]
    m = mask[71:221, 51:206] > 0.5
    return float(c[m].var()) if m.sum() > 100 else 0.0


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def align(rgb: np.ndarray, lm, side: int) -> tuple[np.ndarray, np.ndarray]:
    m = to_template(lm, side)
    src = np.concatenate([rgb.astype(np.float32) / 255.0, valid_source(rgb)[..., None]], -1)
    out, inside = warp(src, m, side)
    mask = (out[..., 3] > 0.5) & inside
    return np.clip(out[..., :3], 0, 1), mask


def work(path: str):
    global _det
    if _det is None:
        _det = Detector(threads=1)
    try:
        rgb = load(Path(path))
    except Exception as e:  # a damaged photo is skipped and counted
        return path, None, f"decode: {e}"
    faces = _det.detect(rgb)
    if not faces:
        return path, None, "no face"
    f = max(faces, key=lambda f: f["bbox"][2] * f["bbox"][3])
    face, mask = align(rgb, f["landmarks"], SIDE)
    lm = np.asarray(f["landmarks"])
    info = {"src": str(Path(path).relative_to(FACES_SRC)), "score": round(f["score"], 4),
            "eyes_px": round(float(np.linalg.norm(lm[1] - lm[0])), 1),
            "sharpness": round(sharpness(face, mask.astype(np.float32)), 2),
            "valid": round(float(mask.mean()), 4), "landmarks": lm.round(3).tolist()}
    return path, (np.round(face * 255).astype(np.uint8), mask.astype(np.uint8)), info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=FACES_SRC)
    ap.add_argument("--out", type=Path, default=WORK)
    ap.add_argument("--limit", type=int, default=0, help="first N photos per set (for a quick run)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--heldout", type=int, default=600)
    ap.add_argument("--keep-sharpest", type=float, default=0.8,
                    help="fraction of detected faces kept, by sharpness (the rest are soft targets)")
    ap.add_argument("--split-only", action="store_true",
                    help="redo only the filtering and the split, from the aligned faces already written")
    args = ap.parse_args()
    if args.split_only:
        index = json.loads((args.out / "index.json").read_text())
        masks = np.load(args.out / "train_mask.npy", mmap_mode="r")
        split(args, index["rows"], masks, {"photos": index["photos"], "skipped": index["skipped"]}, time.time())
        return 0

    files = []
    for s in SETS:
        fs = sorted((args.src / s).glob("*.jpg"))
        files += fs[: args.limit] if args.limit else fs
    n = len(files)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    faces = np.lib.format.open_memmap(out / "train_256.npy", "w+", np.uint8, (n, SIDE, SIDE, 3))
    masks = np.lib.format.open_memmap(out / "train_mask.npy", "w+", np.uint8, (n, SIDE, SIDE))
    rows, skipped = [], {}
    t0 = time.time()
    with mp.Pool(args.workers) as pool:
        for i, (path, arrays, info) in enumerate(pool.imap(work, map(str, files), chunksize=16)):
            if arrays is None:
                skipped[info] = skipped.get(info, 0) + 1
            else:
                faces[len(rows)], masks[len(rows)] = arrays
                rows.append(info)
            if (i + 1) % 1000 == 0 or i + 1 == n:
                print(f"{i + 1}/{n} photos, {len(rows)} faces, {time.time() - t0:.0f} s", flush=True)
    faces.flush()
    masks.flush()
    split(args, rows, masks, {"photos": n, "skipped": skipped}, t0)
    return 0


# The face's core in the 256² crop (brows to chin, cheek to cheek): a training face must have
# nearly all of it from the photo (UTKFace's tight crops leave the template's border empty).
CORE = (slice(80, 208), slice(64, 192))


def split(args, rows, masks, counts, t0) -> None:
    """Drops soft targets and faces whose core is not in the photo; splits off the held-out set."""
    out = args.out
    for i, r in enumerate(rows):
        r["core_valid"] = round(float(masks[i][CORE].mean()), 4)
    # Blurry targets out: keep the sharpest fraction (and faces with most of the centre valid).
    sharp = np.array([r["sharpness"] for r in rows])
    cut = float(np.quantile(sharp, 1 - args.keep_sharpest)) if rows else 0.0
    usable = [i for i, r in enumerate(rows) if r["sharpness"] >= cut and r["core_valid"] >= 0.95]
    # Held-out: the first faces in an order fixed by a hash of their file name.
    order = sorted(usable, key=lambda i: hashlib.sha1(rows[i]["src"].encode()).hexdigest())
    held = sorted(order[: args.heldout])
    train = sorted(set(usable) - set(held))

    hdir = out / "heldout"
    hdir.mkdir(exist_ok=True)
    held_list = []
    for k, i in enumerate(held):
        r = rows[i]
        rgb = load(args.src / r["src"])
        gt, mask = align(rgb, r["landmarks"], 512)
        Image.fromarray(np.round(gt * 255).astype(np.uint8)).save(hdir / f"{k:04d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(hdir / f"{k:04d}_mask.png")
        lm512 = apply(to_template(r["landmarks"], 512), np.asarray(r["landmarks"]))
        held_list.append({"id": f"{k:04d}", "row": i, "src": r["src"], "landmarks_512": lm512.round(3).tolist()})
    write_json(out / "heldout.json", held_list)
    write_json(out / "index.json", {
        "side": SIDE, "rows": rows, "train": train, "heldout": held, "sharpness_cut": cut, **counts,
    })
    print(f"{len(rows)} faces of {counts['photos']} photos ({counts['skipped']}); sharpness cut {cut:.1f}; "
          f"train {len(train)}, held out {len(held)}; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

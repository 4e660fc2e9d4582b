"""The repair stage's fill, measured: clean photos from ../shared/data/photos (permissively
licensed, damage-free; see its README), damage drawn over them by a held-out recipe, and the PSNR
of each repair against the clean photo inside the damage mask and over the whole photo.

The recipe (not one a detector is trained on): thin light and dark curves — cubic Béziers and
sine-wobbled strokes — 1 to 4 px wide, opacity 0.5 to 1, blurred by σ 0 to 1.2 px, and light and
dark specks of radius 1 to 3 px. The true mask is where the damage's opacity is at least 0.1.

Compared, each with the true mask:
  none            the damaged photo as it is
  cv2 telea       OpenCV's cv2.inpaint(..., 5, cv2.INPAINT_TELEA), on 8-bit BGR
  cv2 telea +1    the same with the mask widened by 1 px, as Unblur widens it
  cv2 tight (+1)  the same with a tight mask (pixels the damage moved by > 60 levels), as a
                  detector thresholded high might give, as it is and widened by 1 px: what the
                  widening is for
  unblur x1       `unblur restore --scale 1 --faces off --repair off`: the ×1 clean-up alone
  unblur x1 fill  `unblur restore --scale 1 --faces off --repair mask.png`: fill, then the clean-up

The CLI at ×1 still runs the SR network (denoise, then back to ×1), so its overall PSNR carries the
clean-up's own change; "unblur x1" shows it, so the fill's share is the difference.

    pip install opencv-python-headless pillow   # Pillow ≥ 11 reads the photos' AVIF
    cargo build --release
    python3 bench/repair_eval.py [--photos 10] [--seed 31] [--crop 320]

Prints a table and writes bench/out/repair_eval.json.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "../shared/data/photos"
OUT = ROOT / "bench/out"
METHODS = ["none", "cv2 telea", "cv2 telea +1", "cv2 tight", "cv2 tight +1", "unblur x1",
           "unblur x1 fill"]


def pick(n, rng):
    """n photos spread over the folders, the same ones for the same seed."""
    folders = sorted(p for p in PHOTOS.iterdir() if p.is_dir())
    files = [sorted(f.glob("*.avif")) for f in folders]
    chosen = []
    while len(chosen) < n:
        for f in files:
            rest = [p for p in f if p not in chosen]
            if rest and len(chosen) < n:
                chosen.append(rest[rng.integers(len(rest))])
    return chosen


def bezier(rng, w, h):
    p = rng.uniform([0, 0], [w, h], size=(4, 2))
    t = np.linspace(0, 1, 400)[:, None]
    return ((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2]
            + t**3 * p[3])


def wobble(rng, w, h):
    a, b = rng.uniform([0, 0], [w, h], size=(2, 2))
    t = np.linspace(0, 1, 400)[:, None]
    line = a + (b - a) * t
    normal = np.array([-(b - a)[1], (b - a)[0]]) / (np.linalg.norm(b - a) + 1e-9)
    amp, freq = rng.uniform(2, 12), rng.uniform(1, 4)
    return line + normal * amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))


def damage(clean, rng):
    """The damaged photo (uint8 RGB) and the true mask (bool)."""
    h, w, _ = clean.shape
    out = clean.astype(np.float32)
    mask = np.zeros((h, w), bool)
    layers = []
    for _ in range(rng.integers(3, 7)):
        curve = (bezier if rng.random() < 0.5 else wobble)(rng, w, h)
        layers.append(("curve", curve))
    for _ in range(rng.integers(15, 40)):
        layers.append(("speck", rng.uniform([0, 0], [w, h])))
    for kind, shape in layers:
        a = np.zeros((h, w), np.float32)
        if kind == "curve":
            width = int(rng.integers(1, 5))
            pts = np.round(shape * 4).astype(np.int32)  # 2 bits of subpixel precision
            cv2.polylines(a, [pts], False, 1.0, width, cv2.LINE_AA, shift=2)
        else:
            r = int(rng.integers(1, 4))
            cv2.circle(a, tuple(int(v) for v in shape), r, 1.0, -1, cv2.LINE_AA)
        sigma = rng.uniform(0, 1.2)
        if sigma > 0.3:
            a = cv2.GaussianBlur(a, (0, 0), sigma)
            a /= max(a.max(), 1e-6)
        a *= rng.uniform(0.5, 1.0)
        light = rng.random() < 0.5
        colour = rng.uniform(215, 255) if light else rng.uniform(0, 40)
        tint = colour + rng.uniform(-8, 8, size=3)
        out = out * (1 - a[..., None]) + tint * a[..., None]
        mask |= a >= 0.1
    return np.clip(np.round(out), 0, 255).astype(np.uint8), mask


def psnr(a, b, where=None):
    d = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        d = d[where]
    mse = float(np.mean(d**2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def unblur(binary, damaged_png, mask_png, out_dir, models):
    args = [str(binary), "restore", "--scale", "1", "--faces", "off", "--out", str(out_dir),
            "--repair", str(mask_png) if mask_png else "off"]
    if models:
        args += ["--models", models]
    started = time.time()
    subprocess.run(args + [str(damaged_png)], check=True, capture_output=True)
    seconds = time.time() - started
    stem = damaged_png.stem
    (result,) = [p for p in out_dir.iterdir() if p.name.startswith(stem)]
    rgb = np.asarray(Image.open(result).convert("RGB"))
    result.unlink()
    return rgb, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--crop", type=int, default=320,
                    help="a central crop this many pixels square (0: the whole photo); the "
                         "SR network the CLI runs at ×1 takes its time")
    ap.add_argument("--binary", default=str(ROOT / "target/release/unblur"))
    ap.add_argument("--models", default=os.environ.get("UNBLUR_MODELS"))
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        out_dir = tmp / "out"
        out_dir.mkdir()
        for path in pick(a.photos, rng):
            clean = np.asarray(Image.open(path).convert("RGB"))
            if a.crop:
                h, w, _ = clean.shape
                y, x = max(0, (h - a.crop) // 2), max(0, (w - a.crop) // 2)
                clean = clean[y:y + a.crop, x:x + a.crop]
            damaged, mask = damage(clean, rng)
            name = f"{path.parent.name}_{path.stem}"
            damaged_png = tmp / f"{name}.png"
            mask_png = tmp / f"{name}_mask.png"
            Image.fromarray(damaged).save(damaged_png)
            Image.fromarray(mask.astype(np.uint8) * 255).save(mask_png)
            m8 = mask.astype(np.uint8) * 255
            bgr = cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR)
            started = time.time()
            telea = cv2.inpaint(bgr, m8, 5, cv2.INPAINT_TELEA)
            cv2_s = time.time() - started
            wide = cv2.dilate(m8, np.ones((3, 3), np.uint8))
            telea1 = cv2.inpaint(bgr, wide, 5, cv2.INPAINT_TELEA)
            moved = np.abs(damaged.astype(int) - clean.astype(int)).max(axis=2) > 60
            tight = moved.astype(np.uint8) * 255
            tight0 = cv2.inpaint(bgr, tight, 5, cv2.INPAINT_TELEA)
            tight1 = cv2.inpaint(bgr, cv2.dilate(tight, np.ones((3, 3), np.uint8)), 5,
                                 cv2.INPAINT_TELEA)
            sr, sr_s = unblur(a.binary, damaged_png, None, out_dir, a.models)
            fill, fill_s = unblur(a.binary, damaged_png, mask_png, out_dir, a.models)
            results = {
                "none": damaged,
                "cv2 telea": cv2.cvtColor(telea, cv2.COLOR_BGR2RGB),
                "cv2 telea +1": cv2.cvtColor(telea1, cv2.COLOR_BGR2RGB),
                "cv2 tight": cv2.cvtColor(tight0, cv2.COLOR_BGR2RGB),
                "cv2 tight +1": cv2.cvtColor(tight1, cv2.COLOR_BGR2RGB),
                "unblur x1": sr,
                "unblur x1 fill": fill,
            }
            row = {
                "photo": str(path.relative_to(PHOTOS)),
                "size": [clean.shape[1], clean.shape[0]],
                "mask_fraction": float(mask.mean()),
                "seconds": {"cv2 telea": cv2_s, "unblur x1": sr_s, "unblur x1 fill": fill_s},
            }
            for k, v in results.items():
                row[k] = {"psnr_mask": psnr(v, clean, mask), "psnr_all": psnr(v, clean)}
            rows.append(row)
            print(f"{row['photo']}: mask {100 * row['mask_fraction']:.2f} %, "
                  + ", ".join(f"{k} {row[k]['psnr_mask']:.1f}" for k in METHODS),
                  file=sys.stderr)
    mean = {k: {m: float(np.mean([r[k][m] for r in rows])) for m in ("psnr_mask", "psnr_all")}
            for k in METHODS}
    print(f"\n{len(rows)} photos, mask {100 * np.mean([r['mask_fraction'] for r in rows]):.2f} % "
          f"of the pixels on average (seed {a.seed})\n")
    secs = {k: float(np.mean([r["seconds"][k] for r in rows])) for k in rows[0]["seconds"]}
    print(f"| {'method':<16} | PSNR in mask (dB) | PSNR overall (dB) | s/photo |")
    print(f"|{'-' * 18}|{'-' * 19}|{'-' * 19}|{'-' * 9}|")
    for k in METHODS:
        t = f"{secs[k]:7.2f}" if k in secs else " " * 7
        print(f"| {k:<16} | {mean[k]['psnr_mask']:17.2f} | {mean[k]['psnr_all']:17.2f} | {t} |")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"seed": a.seed, "crop": a.crop, "opencv": cv2.__version__, "photos": rows,
              "mean": mean, "seconds": secs}
    (OUT / "repair_eval.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {OUT / 'repair_eval.json'}")


if __name__ == "__main__":
    main()

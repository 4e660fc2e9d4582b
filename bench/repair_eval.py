"""The repair stage measured: the damage detector and the fill. Clean photos from
../shared/data/photos (permissively licensed, damage-free; see its README) that no Unblur network
trained on (the 20 of models/deblur/holdout.txt, which the detector's training leaves out too),
damage drawn over them by a held-out recipe; the PSNR of each repair against the clean photo
inside the damage mask and over the whole photo; the detector's precision, recall and IoU
against the true mask; and how much of a clean photo it calls damage (false alarms).

The recipe (not the detector's: models/repair/damage.py draws random-walk cracks, creases, lint
and irregular dust, over aged photos): thin light and dark curves — cubic Béziers and
sine-wobbled strokes — 1 to 4 px wide, opacity 0.5 to 1, blurred by σ 0 to 1.2 px, and light and
dark specks of radius 1 to 3 px, over the photo as it is. The true mask is where the damage's
opacity is at least 0.1.

Compared, each with the true mask:
  none            the damaged photo as it is
  cv2 telea       OpenCV's cv2.inpaint(..., 5, cv2.INPAINT_TELEA), on 8-bit BGR
  cv2 telea +1    the same with the mask widened by 1 px, as Unblur widens it
  cv2 tight (+1)  the same with a tight mask (pixels the damage moved by > 60 levels), as a
                  detector thresholded high might give, as it is and widened by 1 px: what the
                  widening is for
  unblur x1       `unblur restore --scale 1 --faces off --deblur off --repair off`: the ×1 clean-up alone
  unblur x1 fill  `unblur restore --scale 1 --faces off --repair mask.png`: fill, then the clean-up
  cv2 detected    cv2's Telea with the detector's mask (models/unblur-repair through onnxruntime,
                  as the core runs it: the photo padded to a multiple of 8, logit > 0), widened
                  by 1 px as Unblur widens it
  unblur x1 auto  `unblur restore --scale 1 --faces off --repair auto`: detection, fill, clean-up

Wide holes, a second held-out recipe (`--wide`): 2 to 4 stains per photo, each a blob of 2 to 4
overlapping ellipses with half-axes of 4 to 18 px, opacity 0.85 to 1, light, dark or brown,
its edge softened by σ 0 to 1 px; the fill alone, on the photo as it is (no SR after it):
  none            the stained photo
  cv2 telea +1    OpenCV's Telea with the mask widened by 1 px (Unblur's Telea is the same within
                  a few units of 65535: src/repair/telea.rs)
  unblur fill     the core's fill (`unblur::repair::repair` through bench/native's --fill): Telea,
                  then the wide parts by patches (src/repair/patch.rs)
and a side-by-side sheet of the first photos (clean, stained, cv2, Unblur) at 1:1 in
bench/out/repair_wide.png (`--docs`: 160² crops around the largest stain of the first five CC0 or
Kodak photos, docs/repair-stains.jpg).

The CLI at ×1 still runs the SR network (denoise, then back to ×1), so its overall PSNR carries the
clean-up's own change; "unblur x1" shows it, so the fill's share is the difference.

    pip install opencv-python-headless pillow   # Pillow ≥ 11 reads the photos' AVIF
    cargo build --release
    python3 bench/repair_eval.py [--photos 20] [--seed 31] [--crop 320]
    python3 bench/repair_eval.py --wide       # needs target/release/unblur-bench-native (bench/run.sh builds it)

    python3 bench/repair_eval.py --sheets [--docs]   # the cracked prints looked at (needs the CLI)

`--sheets`: before / the detector's mask (red) / `--repair auto` (×1, faces and deblurring off)
for the two cracked dev prints and the worst uncracked one, and for the cracked ones the defects
of their docs/ crop brushed in by hand (blue, `COMPLETE`) / `--repair` with that mask, whole, at 1:1, into
models/build/repair/grid/ (git-ignored: they show real people); with `--docs`, crops of them
where no person is (`DOCS_CROPS`: the curtain's cracks, the creased flowered wall) shown 3×
(nearest) in docs/repair-cracks.jpg.

Prints a table and writes bench/out/repair_eval.json. `--calibrate` first chooses the
detector's logit threshold and the coverage worth repairing (src/repair/detect.rs) on training
photos, and writes bench/out/repair_calibration.json.
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
           "unblur x1 fill", "cv2 detected", "unblur x1 auto"]
HOLDOUT = ROOT / "models/deblur/holdout.txt"
DETECTOR = pathlib.Path(os.environ.get("UNBLUR_DETECTOR", ROOT / "models/unblur-repair/unblur-repair.onnx"))
DEV = ROOT / "../shared/data/dev"


def pick(n):
    """The first n held-out photos (none of them trained any Unblur network)."""
    names = [l.strip() for l in HOLDOUT.read_text().splitlines() if l.strip() and not l.startswith("#")]
    return [PHOTOS / name for name in names[:n]]


class Detector:
    """The damage detector as the core runs it on a photo of at most 1 MP: padded (edges
    replicated) to the core's `MULTIPLE`, damage where the logit is above `threshold` (the core's
    `repair::detect::THRESHOLD`; `--calibrate` chooses it)."""

    def __init__(self, path, threshold=None):
        self.threshold = core_threshold() if threshold is None else threshold
        self.multiple = int(core_const("MULTIPLE"))
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def __call__(self, rgb):
        return mask_at(self.logits(rgb), self.threshold)

    def logits(self, rgb):
        h, w, _ = rgb.shape
        s = min(1.0, (2**20 / (w * h)) ** 0.5)
        if s < 1:  # as the core: a Lanczos copy of at most 1 MP, the logits brought back bilinearly
            cw, ch = max(1, round(w * s)), max(1, round(h * s))
            small = np.asarray(Image.fromarray(rgb).resize((cw, ch), Image.LANCZOS))
        else:
            small, (cw, ch) = rgb, (w, h)
        k = self.multiple
        ph, pw = -(-ch // k) * k, -(-cw // k) * k
        x = np.pad(small.astype(np.float32) / 255.0, ((0, ph - ch), (0, pw - cw), (0, 0)), mode="edge")
        logits = self.sess.run(None, {"input": x.transpose(2, 0, 1)[None]})[0][0, 0, :ch, :cw]
        if s < 1:
            logits = cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR)
        return logits


def core_const(name):
    """A constant of `src/repair/detect.rs` (THRESHOLD, CONFIDENT, WORTH_REPAIRING)."""
    import re
    src = (ROOT / "src/repair/detect.rs").read_text()
    return float(re.search(rf"pub const {name}: (?:f32|f64|usize) = ([-0-9.]+);", src).group(1))


def core_threshold():
    return core_const("THRESHOLD")


def mask_at(logits, threshold):
    """The core's mask from the logits: above the threshold, widened by its WIDEN (a square)."""
    widen = int(core_const("WIDEN"))
    m = (logits > threshold).astype(np.uint8)
    if widen:
        m = cv2.dilate(m, np.ones((2 * widen + 1, 2 * widen + 1), np.uint8))
    return m.astype(bool)


# The uncracked dev photos' worst false alarm a threshold may give (the issue's bound is 0.5 %):
# shown per threshold by --calibrate, and not a constraint (None). Tried at 0.0045: v1's threshold
# went from 3.25 to 5.5, which kept an old print's mooring rope called (and filled) in a thinner
# line and found the cracked print's wide crack in pieces, its fill leaving a grey ghost.
DEV_BAR = None


def uncracked_dev():
    """The real photos without damage the issue bounds the false alarms on: the dev `whole_imgs`
    and the uncracked old prints (their README: "to look at, to tune on, and to test")."""
    return sorted(DEV.glob("*/whole_imgs/*")) + sorted(DEV.glob("old-photos/old_*.png"))


def calibrate(detect, n, seed, crop):
    """Chooses the detector's threshold and the coverage worth repairing on TRAINING photos (not
    the held-out ones the report scores) damaged by this file's held-out recipe: the threshold
    with the best mean IoU among those whose false alarms on the same photos undamaged stay
    under 0.15 % on average (under a third of the issue's 0.5 % bound on old prints: the
    calibration photos' average runs well under the worst real print's, by 3 to 6 times for v0 and
    v1; some everyday photos are all thin lines: a wire sculpture, a facade), and, with `DEV_BAR`
    set, on the real uncracked dev photos under it at worst (the held-out photos the report scores
    never set a bar). The coverage worth repairing is judged on the
    confident calls (logit > CONFIDENT, 2 above the threshold): 1.25× their share on the clean
    photo at the 90th percentile (about one clean photo in ten may be suggested; the suggestion is
    a question, and `auto` in the CLI is opt-in), and at least 0.05 %."""
    sys.path.insert(0, str(ROOT / "models"))
    from deblur import data
    from repair.hard import calibration
    names = calibration(data.training_photos(), n)  # never mined for hard negatives in training
    rng = np.random.default_rng(seed + 1)
    pairs = []
    for name in names:
        clean = np.asarray(Image.open(PHOTOS / name).convert("RGB"))
        h, w, _ = clean.shape
        y, x = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        clean = clean[y:y + crop, x:x + crop]
        damaged, mask = damage(clean, rng)
        pairs.append((detect.logits(clean), detect.logits(damaged), mask))
    dev = [detect.logits(np.asarray(Image.open(p).convert("RGB"))) for p in uncracked_dev()]
    rows = []
    for t in np.arange(-1.0, 8.01, 0.25):
        alarms = [float(mask_at(c, t).mean()) for c, _, _ in pairs]
        dev_worst = max((float(mask_at(d, t).mean()) for d in dev), default=0.0)
        ious = [detection(mask_at(d, t), m)["iou"] for _, d, m in pairs]
        found = [float(mask_at(d, t).mean()) for _, d, _ in pairs]
        rows.append({"threshold": float(t), "iou": float(np.mean(ious)), "alarm_max": max(alarms),
                     "alarm_mean": float(np.mean(alarms)), "alarm_p90": float(np.percentile(alarms, 90)),
                     "found_min": min(found), "dev_worst": dev_worst})
    ok = [r for r in rows if r["alarm_mean"] <= 0.0015 and (DEV_BAR is None or r["dev_worst"] <= DEV_BAR)]
    best = max(ok or rows[-1:], key=lambda r: r["iou"])
    sure = best["threshold"] + 2.0
    clean_sure = sorted(float((c > sure).mean()) for c, _, _ in pairs)
    damaged_sure = [float((d > sure).mean()) for _, d, _ in pairs]
    worth = max(0.0005, 1.25 * float(np.percentile(clean_sure, 90)))
    print(f"\nconfident calls (logit > {sure}): clean photos {', '.join(f'{100 * v:.3f}' for v in clean_sure)} %; "
          f"damaged: least {100 * min(damaged_sure):.3f} %, {sum(v >= worth for v in damaged_sure)} of "
          f"{len(damaged_sure)} at or above the chosen coverage")
    print(f"\ncalibration on {len(names)} training photos (held-out recipe), per threshold:")
    print("| logit threshold | IoU (damaged) | false alarm: mean | 90th pct | worst | found, least "
          "| dev photos: worst |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mark = " ←" if r is best else ""
        print(f"| {r['threshold']:.2f}{mark} | {r['iou']:.3f} | {100 * r['alarm_mean']:.3f} % | "
              f"{100 * r['alarm_p90']:.3f} % | {100 * r['alarm_max']:.3f} % | {100 * r['found_min']:.2f} % | "
              f"{100 * r['dev_worst']:.3f} % |")
    print(f"chosen: THRESHOLD = {best['threshold']:.2f}, CONFIDENT = {sure:.2f}, WORTH_REPAIRING = {worth:.4f} "
          f"(src/repair/detect.rs)")
    return {"photos": names, "rows": rows, "threshold": best["threshold"], "worth_repairing": worth,
            "confident": sure, "clean_confident": clean_sure, "damaged_confident": damaged_sure}


def detection(found, truth):
    tp = float((found & truth).sum())
    fp = float((found & ~truth).sum())
    fn = float((~found & truth).sum())
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "iou": tp / max(tp + fp + fn, 1)}


# The two cracked dev prints, marked by hand (by eye, on 3-4x enlargements): `cracks`, boxes
# around the cracks whose near-white pixels (luma > 0.55) are the damage, or polylines 3 px wide
# along faint creases; `face`, a box over the face, which holds no damage. Not every defect of
# either print is marked (the chipped borders and the specks are not), so these give the recall
# on what is marked and the false alarms on the face, not a precision. For a precision each print
# also has one region marked completely (`COMPLETE`).
HAND = {
    "scratched_a.png": {"boxes": [(400, 237, 455, 272), (429, 257, 441, 298), (445, 310, 470, 350),
                                  (404, 206, 414, 229), (480, 249, 496, 256), (455, 271, 473, 277),
                                  (459, 291, 468, 305)],
                        "face": (200, 180, 350, 320)},
    "scratched_c.png": {"lines": [[(28, 0), (72, 35), (130, 72)], [(190, 132), (253, 160)]],
                        "face": (102, 120, 177, 200)},
}


# One region of each cracked print (its person-free docs/ crop, `DOCS_CROPS`) in which every
# defect is marked by hand, so that the detector's calls there have a precision: `paths`, a
# corridor (polyline, width in px) drawn along each crack, scratch and speck seen on a 4×
# enlargement; the damage is the corridors' pixels that stand more than `off` from the luma's
# 15-px median (a crack's light core and its dark shadow both); `off` None: the corridor itself
# (the faint crease, which hardly stands off its shading).
COMPLETE = {
    "scratched_a.png": {"off": 0.08, "paths": [
        ([(400, 268), (412, 262), (425, 256), (440, 248), (453, 240)], 9),  # the wide crack
        ([(429, 257), (432, 266), (434, 278), (436, 288), (440, 296)], 5),  # its branch
        ([(402, 203), (405, 212), (408, 221), (412, 229)], 5),
        ([(468, 314), (468, 325), (465, 336), (458, 343), (449, 349), (445, 352)], 7),  # the arc
        ([(458, 290), (463, 298), (467, 305)], 4),
        ([(482, 253), (496, 252)], 5),
        ([(393, 190), (397, 201)], 3),  # faint scratches
        ([(441, 199), (453, 196)], 3),
        ([(446, 192), (449, 201)], 3),
        ([(417, 288), (417.5, 288.5)], 4)]},  # a speck
    "scratched_c.png": {"off": None, "paths": [([(28, 0), (50, 17), (72, 35), (100, 53), (130, 72)], 3)]},
}


def corridors(name, shape):
    """`COMPLETE`'s corridors of `name` as a mask of the print's `shape`: what a brush along each
    defect paints."""
    from PIL import ImageDraw
    h, w = shape[:2]
    s = 4
    im = Image.new("L", (w * s, h * s), 0)
    for pts, width in COMPLETE[name]["paths"]:  # drawn at 4× and box-filtered: sub-pixel widths
        ImageDraw.Draw(im).line([(x * s, y * s) for x, y in pts], fill=255, width=width * s, joint="curve")
    return np.asarray(im.resize((w, h), Image.BOX)) > 127


def complete_truth(name, rgb):
    """The region of `name` marked completely (`COMPLETE`) and the damage in it, as masks."""
    h, w, _ = rgb.shape
    marks = COMPLETE[name]
    truth = corridors(name, rgb.shape)
    if marks["off"] is not None:
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        off = np.abs(luma.astype(np.float32) - cv2.medianBlur(luma, 15).astype(np.float32)) / 255.0
        truth &= off > marks["off"]
    x0, y0, x1, y1 = DOCS_CROPS[name]
    region = np.zeros((h, w), bool)
    region[y0:y1, x0:x1] = True
    return region, truth & region


# Person-free crops (x0, y0, x1, y1) of the cracked prints for docs/: the rules keep photos of real
# people out of the repository, so docs/ shows the damage where the prints show none.
DOCS_CROPS = {"scratched_a.png": (392, 180, 496, 370), "scratched_c.png": (0, 0, 130, 78)}
SHEETS = ["scratched_a.png", "scratched_c.png", "old_f.png"]


def sheets(a):
    """Before / mask / after of the cracked prints (and the worst false alarm) at 1:1; for the
    prints with a region marked completely (`COMPLETE`), also that region's defects brushed in by
    hand / the photo filled with them, as the page's brush would have it."""
    grid = ROOT / "models/build/repair/grid"
    grid.mkdir(parents=True, exist_ok=True)
    detect = Detector(DETECTOR)
    docs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for name in SHEETS:
            src = DEV / "old-photos" / name
            rgb = np.asarray(Image.open(src).convert("RGB"))
            found = detect(rgb)
            after, _ = unblur(a.binary, src, "auto", tmp, a.models)
            over = rgb.copy()
            over[found] = (255, 0, 0)
            panels = [rgb, over, after]
            if name in COMPLETE:  # and with the docs/ crop's defects brushed in by hand
                brush = corridors(name, rgb.shape)
                (tmp / "masks").mkdir(exist_ok=True)
                mask_png = tmp / "masks" / f"{src.stem}.png"
                Image.fromarray(brush.astype(np.uint8) * 255).save(mask_png)
                brushed, _ = unblur(a.binary, src, mask_png, tmp, a.models)
                over = rgb.copy()
                over[brush] = (0, 150, 255)
                panels += [over, brushed]
            Image.fromarray(np.concatenate(panels, axis=1)).save(grid / f"{src.stem}_sheet.png")
            print(f"{name}: {100 * found.mean():.2f} % called damage -> {grid / (src.stem + '_sheet.png')}")
            if name in DOCS_CROPS:
                x0, y0, x1, y1 = DOCS_CROPS[name]
                cut = [np.kron(p[y0:y1, x0:x1], np.ones((3, 3, 1), np.uint8)) for p in panels]
                gap = np.full((cut[0].shape[0], 6, 3), 255, np.uint8)
                docs.append(np.concatenate([x for c in cut for x in (c, gap)][:-1], axis=1))
    if a.docs:
        w = max(r.shape[1] for r in docs)
        rows = [np.pad(r, ((0, 6), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in docs]
        Image.fromarray(np.concatenate(rows, axis=0)).save(ROOT / "docs/repair-cracks.jpg", quality=92)
        print("wrote docs/repair-cracks.jpg")


def hand_marked(detect):
    """Recall on the hand-marked cracks of the cracked dev prints and false alarms on their faces."""
    from PIL import ImageDraw
    rows = {}
    for name, marks in HAND.items():
        rgb = np.asarray(Image.open(DEV / "old-photos" / name).convert("RGB"))
        h, w, _ = rgb.shape
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
        truth = np.zeros((h, w), bool)
        for x0, y0, x1, y1 in marks.get("boxes", []):
            truth[y0:y1, x0:x1] |= luma[y0:y1, x0:x1] > 0.55
        if marks.get("lines"):
            im = Image.new("L", (w, h), 0)
            for line in marks["lines"]:
                ImageDraw.Draw(im).line(line, fill=255, width=3)
            truth |= np.asarray(im) > 0
        found = detect(rgb)
        x0, y0, x1, y1 = marks["face"]
        rows[name] = {"marked": int(truth.sum()), "recall": float((found & truth).sum() / truth.sum()),
                      "face_called": float(found[y0:y1, x0:x1].mean()), "coverage": float(found.mean())}
        region, damage = complete_truth(name, rgb)
        called = found & region
        rows[name]["complete"] = {"region": DOCS_CROPS[name], "marked": int(damage.sum()), "called": int(called.sum()),
                                  **detection(called, damage)}
    return rows


def false_alarms(detect, crop):
    """The share of each clean photo the detector calls damage: the held-out photos as they are,
    the dev photos (real, degraded: `whole_imgs`) and the old prints without cracks."""
    rows = {}
    for path in pick(20):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        rows[f"holdout/{path.parent.name}/{path.name}"] = float(detect(rgb).mean())
    for path in uncracked_dev():
        rgb = np.asarray(Image.open(path).convert("RGB"))
        rows[str(path.relative_to(DEV))] = float(detect(rgb).mean())
    return rows


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


def stains(clean, rng):
    """The wide-hole recipe: the stained photo (uint8 RGB) and the true mask (bool)."""
    h, w, _ = clean.shape
    out = clean.astype(np.float32)
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(2, 5)):
        a = np.zeros((h, w), np.float32)
        cx, cy = rng.uniform([30, 30], [w - 30, h - 30])
        for _ in range(rng.integers(2, 5)):
            ax = tuple(int(v) for v in rng.uniform(4, 18, size=2))
            centre = (int(cx + rng.uniform(-10, 10)), int(cy + rng.uniform(-10, 10)))
            cv2.ellipse(a, centre, ax, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
        sigma = rng.uniform(0, 1.0)
        if sigma > 0.3:
            a = cv2.GaussianBlur(a, (0, 0), sigma)
            a /= max(a.max(), 1e-6)
        a *= rng.uniform(0.85, 1.0)
        kind = rng.integers(0, 3)
        colour = [rng.uniform(220, 250)] * 3 if kind == 0 else [rng.uniform(10, 40)] * 3 if kind == 1 \
            else [rng.uniform(140, 180), rng.uniform(100, 130), rng.uniform(50, 80)]
        out = out * (1 - a[..., None]) + np.array(colour, np.float32) * a[..., None]
        mask |= a >= 0.1
    return np.clip(np.round(out), 0, 255).astype(np.uint8), mask


def public_domain(path):
    """Whether a photo is CC0 or Kodak's unrestricted release (manifest.csv): free to show in docs/."""
    import csv
    rel = str(path.relative_to(PHOTOS))
    with open(PHOTOS / "manifest.csv") as f:
        lic = next((r["license"] for r in csv.DictReader(f) if r["file"] == rel), "")
    return lic.startswith("CC0") or lic.startswith("Kodak")


def wide_holes(a):
    """The fill alone on wide holes: none, cv2's Telea (+1 px) and the core's fill."""
    native = ROOT / "target/release/unblur-bench-native"
    if not native.exists():
        sys.exit(f"missing {native}: cargo build --release --manifest-path bench/native/Cargo.toml --target-dir target")
    rng = np.random.default_rng(a.seed + 1000)
    rows, sheet, docs = [], [], []
    methods = ["none", "cv2 telea +1", "unblur fill"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for path in pick(a.photos):
            clean = np.asarray(Image.open(path).convert("RGB"))
            h, w, _ = clean.shape
            y, x = max(0, (h - a.crop) // 2), max(0, (w - a.crop) // 2)
            clean = clean[y:y + a.crop, x:x + a.crop]
            damaged, mask = stains(clean, rng)
            m8 = mask.astype(np.uint8) * 255
            telea = cv2.cvtColor(cv2.inpaint(cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR),
                                             cv2.dilate(m8, np.ones((3, 3), np.uint8)), 5,
                                             cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB)
            Image.fromarray(damaged).save(tmp / "d.png")
            Image.fromarray(m8).save(tmp / "m.png")
            out = subprocess.run([str(native), "--fill", str(tmp / "d.png"), str(tmp / "m.png"), "1",
                                  str(tmp / "f.png")], capture_output=True, text=True, check=True)
            seconds = json.loads(out.stdout.splitlines()[-1])["median_ms"] / 1e3
            f16 = cv2.cvtColor(cv2.imread(str(tmp / "f.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
            fill = (f16.astype(np.float64) / 257.0).round().astype(np.uint8)  # 16-bit PNG
            results = {"none": damaged, "cv2 telea +1": telea, "unblur fill": fill}
            row = {"photo": str(path.relative_to(PHOTOS)), "mask_fraction": float(mask.mean()),
                   "fill_seconds": seconds}
            for k, v in results.items():
                row[k] = {"psnr_mask": psnr(v, clean, mask), "psnr_all": psnr(v, clean)}
            rows.append(row)
            print(f"{row['photo']}: stains {100 * row['mask_fraction']:.2f} %, "
                  + ", ".join(f"{k} {row[k]['psnr_mask']:.1f}" for k in methods), file=sys.stderr)
            if len(sheet) < 6:
                sheet.append(np.concatenate([clean, damaged, telea, fill], axis=1))
            if len(docs) < 5 and public_domain(path):
                # 160² at 1:1 around the largest stain: clean, stained, cv2's Telea, Unblur.
                n, _, stats, cent = cv2.connectedComponentsWithStats(m8)
                k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
                cx, cy = (int(v) for v in cent[k])
                x0 = min(max(0, cx - 80), a.crop - 160)
                y0 = min(max(0, cy - 80), a.crop - 160)
                cut = lambda im: np.pad(im[y0:y0 + 160, x0:x0 + 160], ((0, 0), (0, 6), (0, 0)),
                                        constant_values=255)
                docs.append(np.concatenate([cut(clean), cut(damaged), cut(telea), cut(fill)], axis=1))
    mean = {k: {m: float(np.mean([r[k][m] for r in rows])) for m in ("psnr_mask", "psnr_all")}
            for k in methods}
    print(f"\nwide holes: {len(rows)} photos ({a.crop}² crops), stains on "
          f"{100 * np.mean([r['mask_fraction'] for r in rows]):.2f} % of the pixels on average "
          f"(seed {a.seed + 1000}); the fill alone, no SR\n")
    print("| method | PSNR in mask (dB) | PSNR overall (dB) |")
    print("|---|---:|---:|")
    for k in methods:
        print(f"| {k} | {mean[k]['psnr_mask']:.2f} | {mean[k]['psnr_all']:.2f} |")
    wins = sum(r["unblur fill"]["psnr_mask"] > r["cv2 telea +1"]["psnr_mask"] for r in rows)
    print(f"\nunblur fill above cv2's Telea inside the mask on {wins} of {len(rows)} photos; "
          f"fill {np.mean([r['fill_seconds'] for r in rows]):.2f} s per photo (one thread)")
    OUT.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(sheet, axis=0)).save(OUT / "repair_wide.png")
    if a.docs:
        rows_px = [np.pad(r, ((0, 6), (0, 0), (0, 0)), constant_values=255) for r in docs]
        Image.fromarray(np.concatenate(rows_px, axis=0)).save(ROOT / "docs/repair-stains.jpg", quality=92)
        print("wrote docs/repair-stains.jpg")
    (OUT / "repair_wide.json").write_text(json.dumps(
        {"seed": a.seed + 1000, "crop": a.crop, "opencv": cv2.__version__, "photos": rows, "mean": mean}, indent=1))


def psnr(a, b, where=None):
    d = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        d = d[where]
    mse = float(np.mean(d**2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def unblur(binary, damaged_png, repair, out_dir, models):
    args = [str(binary), "restore", "--scale", "1", "--faces", "off", "--deblur", "off", "--out", str(out_dir),
            "--repair", str(repair) if repair else "off"]
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
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--crop", type=int, default=320,
                    help="a central crop this many pixels square (0: the whole photo); the "
                         "SR network the CLI runs at ×1 takes its time")
    ap.add_argument("--binary", default=str(ROOT / "target/release/unblur"))
    ap.add_argument("--models", default=os.environ.get("UNBLUR_MODELS"))
    ap.add_argument("--calibrate", action="store_true",
                    help="choose the threshold and the coverage worth repairing on training photos, then stop")
    ap.add_argument("--wide", action="store_true",
                    help="only the wide-hole recipe: the fill alone against cv2's Telea")
    ap.add_argument("--docs", action="store_true",
                    help="with --wide: docs/repair-stains.jpg, 1:1 crops of the first five public-domain "
                         "photos; with --sheets: docs/repair-cracks.jpg")
    ap.add_argument("--sheets", action="store_true",
                    help="only the cracked prints' before / mask / after, into models/build/repair/grid")
    a = ap.parse_args()
    if a.sheets:
        sheets(a)
        return
    if a.wide:
        wide_holes(a)
        return
    if a.calibrate:
        cal = calibrate(Detector(DETECTOR, 0.0), 20, a.seed, a.crop)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "repair_calibration.json").write_text(json.dumps(cal, indent=1))
        return
    rng = np.random.default_rng(a.seed)
    detect = Detector(DETECTOR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        out_dir = tmp / "out"
        out_dir.mkdir()
        for path in pick(a.photos):
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
            started = time.time()
            found = detect(damaged)
            detect_s = time.time() - started
            found1 = cv2.dilate(found.astype(np.uint8) * 255, np.ones((3, 3), np.uint8))
            detected = cv2.inpaint(bgr, found1, 5, cv2.INPAINT_TELEA)
            sr, sr_s = unblur(a.binary, damaged_png, None, out_dir, a.models)
            fill, fill_s = unblur(a.binary, damaged_png, mask_png, out_dir, a.models)
            auto, auto_s = unblur(a.binary, damaged_png, "auto", out_dir, a.models)
            results = {
                "none": damaged,
                "cv2 telea": cv2.cvtColor(telea, cv2.COLOR_BGR2RGB),
                "cv2 telea +1": cv2.cvtColor(telea1, cv2.COLOR_BGR2RGB),
                "cv2 tight": cv2.cvtColor(tight0, cv2.COLOR_BGR2RGB),
                "cv2 tight +1": cv2.cvtColor(tight1, cv2.COLOR_BGR2RGB),
                "unblur x1": sr,
                "unblur x1 fill": fill,
                "cv2 detected": cv2.cvtColor(detected, cv2.COLOR_BGR2RGB),
                "unblur x1 auto": auto,
            }
            row = {
                "photo": str(path.relative_to(PHOTOS)),
                "size": [clean.shape[1], clean.shape[0]],
                "mask_fraction": float(mask.mean()),
                "seconds": {"cv2 telea": cv2_s, "unblur x1": sr_s, "unblur x1 fill": fill_s,
                            "unblur x1 auto": auto_s, "detector (onnxruntime)": detect_s},
                "detection": detection(found, mask),
                "found_fraction": float(found.mean()),
            }
            for k, v in results.items():
                row[k] = {"psnr_mask": psnr(v, clean, mask), "psnr_all": psnr(v, clean)}
            rows.append(row)
            print(f"{row['photo']}: mask {100 * row['mask_fraction']:.2f} %, found "
                  f"{100 * row['found_fraction']:.2f} % (IoU {row['detection']['iou']:.2f}), "
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
    det = {k: float(np.mean([r["detection"][k] for r in rows])) for k in ("precision", "recall", "iou")}
    print(f"\ndetector on the damaged photos: precision {det['precision']:.3f}, recall "
          f"{det['recall']:.3f}, IoU {det['iou']:.3f} (mean per photo)")
    hand = hand_marked(detect)
    print("\nthe cracked dev prints, marked by hand")
    print("| print | marked px | recall on the marked cracks | face called damage | whole print called damage |")
    print("|---|---:|---:|---:|---:|")
    for k, v in hand.items():
        print(f"| {k} | {v['marked']} | {v['recall']:.2f} | {100 * v['face_called']:.2f} % | {100 * v['coverage']:.2f} % |")
    print("\nin the region of each print marked completely (COMPLETE: its docs/ crop)")
    print("| print | region | marked px | called px | precision | recall | IoU |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for k, v in hand.items():
        c = v["complete"]
        print(f"| {k} | {c['region']} | {c['marked']} | {c['called']} | {c['precision']:.2f} | {c['recall']:.2f} | {c['iou']:.2f} |")
    alarms = false_alarms(detect, a.crop)
    print("\nfalse alarms: the share of each undamaged photo called damage")
    print("| photo | called damage |")
    print("|---|---:|")
    for k, v in alarms.items():
        print(f"| {k} | {100 * v:.3f} % |")
    groups = {"held-out photos": "holdout/", "dev whole_imgs": "whole_imgs", "old prints (uncracked)": "old_"}
    summary = {g: max(v for k, v in alarms.items() if key in k) for g, key in groups.items()}
    print("| worst of | " + " | ".join(summary) + " |")
    print("|---|" + "---:|" * len(summary))
    print("| called damage | " + " | ".join(f"{100 * v:.3f} %" for v in summary.values()) + " |")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"seed": a.seed, "crop": a.crop, "opencv": cv2.__version__, "photos": rows,
              "mean": mean, "seconds": secs, "detection": det, "false_alarms": alarms,
              "false_alarms_worst": summary, "hand_marked": hand,
              "threshold": detect.threshold}
    (OUT / "repair_eval.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {OUT / 'repair_eval.json'}")


if __name__ == "__main__":
    main()

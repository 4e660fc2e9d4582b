"""The damage detector's TRAINING recipe: old-print damage drawn over clean photo patches, with
the mask of where it was drawn.

A photo patch is first aged (toned to sepia or gray, faded, given film grain and a little blur),
then damaged, then scanned (noise, JPEG). The damage, none of which `bench/repair_eval.py`'s
held-out recipe draws (that one draws cubic Béziers, sine-wobbled strokes and round specks):

- cracks: random walks with a drifting heading and branches, 0.5–3 px wide;
- creases: long, nearly straight strokes across the patch, 1–5 px wide, faint to opaque;
- lint: short, tightly curling fibres ~1 px wide;
- dust: small irregular blobs (rotated ellipses 0.5–3 px);
- folds (v1): a faint crease as a real print shows one, a light line beside a dark one 1–2.5 px
  apart (the paper's ridge catching the light and its shadow), 0.7–2 px wide, opacity 0.15–0.5;
the others each light (the paper showing through: 195–255, tinted) or dark (0–70), opacity 0.35–1, its
edge blurred by σ 0–1.5 px. A quarter of the patches get no damage at all, so that grain, hair,
grass and fabric are learned as what damage is not. The mask is where the damage's opacity is at
least `MASK_AT`.

Scene lines, negatives tried for a v2 and off by default (`SCENE_P` 0, the recipe v1 was trained
with): on `SCENE_P` of the patches, before the patch is aged, 1–3 lines that belong to the scene —
ropes, wires, masts, poles: long, gently bent, 1.5–8 px wide, softer than any damage (σ 1.5–3.5
px, as a line out of focus is), their tone varying along them — never in the mask. The idea: a
scratch lies on top of the print, as sharp as the scan; a rope lies in the photo, as soft as its
focus and under its grain. Fine-tuning v1 with them at 0.3 (and with `train.py --hard`) did not
stop it calling an old print's mooring rope damage (that rope is ~4 px wide and nearly as sharp
as a scratch), and lowered the calibration IoU at the dev photos' false-alarm bar (the card).

For a v2 (`train.py` flags, each off by default so that v1's recipe is drawn as it was):
- ridges (`RIDGE_P`, `--ridge`): a real print's fold, as the creases of a cracked dev print show
  it: the shading of either side moved apart along the line, and a thin light line (the cracked
  emulsion) on it, often broken; only the line is in the mask (with `RIDGE_STEP`, `--ridge-step`,
  a strong fold's step too, 1 px either side);
- scene lines as wide and nearly as sharp as a rope (`--scene-width 2.5 6 --scene-sigma 0.8 1.6`),
  with creases wider than 2.5 px drawn sharp (`SHARP_WIDE`): a wide scratch lies on the print's
  surface, as sharp as the scan; a wide soft line is more often a rope or a wire.

Drawn with Pillow at 4× and box-filtered down (anti-aliased, sub-pixel widths), so that nothing
here needs OpenCV.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import distance_transform_edt, gaussian_filter, label

SS = 4  # supersampling of the drawn layers
MASK_AT = 0.15
CLEAN_P = 0.25
SCENE_P = 0.0  # see the docstring: tried at 0.3, not adopted
SCENE_WIDTH, SCENE_SIGMA = (1.5, 8.0), (1.5, 3.5)  # the scene lines' width and softness (px)
SHARP_WIDE = False  # creases wider than 2.5 px keep a sharp edge (σ ≤ 0.6): no draw, v1's recipe as it was
RIDGE_P = 0.0  # share of damaged patches given a ridge (a real fold); 0 draws v1's recipe as it was
RIDGE_STEP = False  # a strong ridge's step (sides ≥ 24 % apart) masked 1 px either side, line or not


def _walk(rng, w, h, length, step, start=None, heading=None):
    """A crack's centre line: a random walk whose heading drifts, and its branch points."""
    x, y = start if start is not None else rng.uniform([0, 0], [w, h])
    a = rng.uniform(0, 2 * math.pi) if heading is None else heading
    pts, branches = [(x, y)], []
    for _ in range(int(length / step)):
        a += rng.normal(0, 0.35)
        x += step * math.cos(a)
        y += step * math.sin(a)
        pts.append((x, y))
        if rng.random() < 0.06:
            branches.append(((x, y), a + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)))
    return pts, branches


def _crease_line(rng, w, h):
    """A long, gently bent centre line across the patch (a quadratic Bézier), 64 points."""
    a = rng.uniform(0, 2 * math.pi)
    cx, cy = rng.uniform([0, 0], [w, h])
    r = max(w, h)
    p0 = np.array([cx - r * math.cos(a), cy - r * math.sin(a)])
    p2 = np.array([cx + r * math.cos(a), cy + r * math.sin(a)])
    p1 = (p0 + p2) / 2 + rng.normal(0, 0.08 * r, 2)
    t = np.linspace(0, 1, 64)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _down(im: Image.Image, w: int, h: int) -> np.ndarray:
    """A layer drawn at SS× as opacity (h×w float32 in 0..1), box-filtered down."""
    return np.asarray(im, np.float32).reshape(h, SS, w, SS).mean(axis=(1, 3)) / 255.0


def _draw(w, h, lines):
    """Opacity (h×w float32 in 0..1) of polylines [(points, width)] drawn at SS× and box-filtered."""
    im = Image.new("L", (w * SS, h * SS), 0)
    d = ImageDraw.Draw(im)
    for pts, width in lines:
        d.line([(float(px) * SS, float(py) * SS) for px, py in pts], fill=255,
               width=max(1, round(width * SS)), joint="curve")
    return _down(im, w, h)


def _fold(rng, w, h):
    """A faint fold: (light opacity, dark opacity), two lines side by side along one crease."""
    pts = _crease_line(rng, w, h)
    tangent = np.gradient(pts, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-6)
    apart, width = rng.uniform(1, 2.5), rng.uniform(0.7, 2)
    light = _draw(w, h, [(pts - normal * apart / 2, width)])
    dark = _draw(w, h, [(pts + normal * apart / 2, width)])
    sigma = rng.uniform(0, 0.8)
    if sigma > 0.3:
        light, dark = gaussian_filter(light, sigma), gaussian_filter(dark, sigma)
        light /= max(float(light.max()), 1e-6)
        dark /= max(float(dark.max()), 1e-6)
    return light * rng.uniform(0.15, 0.5), dark * rng.uniform(0.15, 0.5)


def _ridge(rng, w, h):
    """A fold as scanned prints show one (v2): the paper bent along a gently curved line tilts
    either way from it, so the scan's light brightens one side and darkens the other, fading
    over 2–25 px (by 4–20 % at the line); along the ridge the emulsion has cracked into a thin
    light line, often broken.
    Returns (shading, a multiplicative change of the photo, h×w float32; the line's opacity; the
    pixels within 1 px of the fold, bool)."""
    pts = _crease_line(rng, w, h)
    big = Image.new("L", (w * SS, h * SS), 0)
    ImageDraw.Draw(big).line([(float(x) * SS, float(y) * SS) for x, y in pts], fill=255, width=1)
    on = np.asarray(big)[SS // 2::SS, SS // 2::SS] > 0
    on |= _down(big, w, h) > 0.2
    dist = distance_transform_edt(~on).astype(np.float32)
    # the two sides: the patch less the line falls into (at least) two regions
    parts, n = label(~on)
    sizes = np.bincount(parts.ravel(), minlength=n + 1)
    side = np.where(parts == int(np.argmax(sizes[1:]) + 1), 1.0, -1.0).astype(np.float32)
    fall = rng.uniform(2, 25)
    up, down = rng.uniform(0.04, 0.2), rng.uniform(0.04, 0.2)
    shade = np.where(side > 0, up, -down).astype(np.float32) * np.exp(-dist / fall)
    line = _draw(w, h, [(pts, rng.uniform(0.5, 1.6))])
    if rng.random() < 0.6:  # broken along its length where the emulsion held
        along = gaussian_filter(rng.random((h, w)).astype(np.float32), rng.uniform(3, 10))
        along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        line = line * np.clip((along - rng.uniform(0.2, 0.5)) * 4, 0, 1)
    if rng.random() < 0.4:
        line = gaussian_filter(line, rng.uniform(0.3, 0.7))
        line /= max(float(line.max()), 1e-6)
    return shade, line * rng.uniform(0.2, 0.9), dist <= 1


def _paper(rng) -> np.ndarray:
    """The light tone where a fold has cracked the emulsion: the paper showing through (RGB in 0..1)."""
    return (np.clip(rng.uniform(215, 255) + rng.uniform(-8, 8, 3), 0, 255) / 255.0).astype(np.float32)


def _layer(rng, w, h, kind):
    """One damage element's opacity (h×w float32 in 0..1)."""
    im = Image.new("L", (w * SS, h * SS), 0)
    d = ImageDraw.Draw(im)

    def line(pts, width):
        d.line([(px * SS, py * SS) for px, py in pts], fill=255, width=max(1, round(width * SS)),
               joint="curve")

    if kind == "crack":
        pts, branches = _walk(rng, w, h, rng.uniform(30, 2 * max(w, h)), rng.uniform(2, 7))
        width = rng.uniform(0.5, 3)
        line(pts, width)
        for start, heading in branches:
            sub, _ = _walk(rng, w, h, rng.uniform(8, 60), rng.uniform(2, 5), start, heading)
            line(sub, width * rng.uniform(0.4, 0.9))
    elif kind == "crease":
        pts = [tuple(p) for p in _crease_line(rng, w, h)]
        width = rng.uniform(1, 5)
        line(pts, width)
    elif kind == "lint":
        x, y = rng.uniform([0, 0], [w, h])
        a, pts = rng.uniform(0, 2 * math.pi), []
        curl = rng.uniform(-0.6, 0.6)
        for _ in range(int(rng.integers(6, 30))):
            a += curl + rng.normal(0, 0.3)
            x += 1.5 * math.cos(a)
            y += 1.5 * math.sin(a)
            pts.append((x, y))
        line(pts, rng.uniform(0.6, 1.4))
    else:  # dust
        for _ in range(int(rng.integers(3, 30))):
            x, y = rng.uniform([0, 0], [w, h]) * SS
            rx, ry = rng.uniform(0.5, 3, 2) * SS
            d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=255)
    a = _down(im, w, h)
    sigma = rng.uniform(0, 1.5)
    if SHARP_WIDE and kind == "crease" and width > 2.5:
        # a wide scratch lies on the print's surface, as sharp as the scan; a wide soft line is
        # more often a rope or a wire of the scene (an old print's mooring rope, the card)
        sigma = min(sigma, 0.6)
    if sigma > 0.3:
        a = gaussian_filter(a, sigma)
        a /= max(float(a.max()), 1e-6)
    return a * rng.uniform(0.35, 1.0)


def scene_lines(p: np.ndarray, rng) -> np.ndarray:
    """1–3 soft lines of the scene itself (ropes, wires, masts) drawn into a clean patch: not damage."""
    h, w = p.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        a = _draw(w, h, [(_crease_line(rng, w, h), rng.uniform(*SCENE_WIDTH))])
        a = gaussian_filter(a, rng.uniform(*SCENE_SIGMA))  # not renormalised: a thin line out of focus fades
        along = gaussian_filter(rng.random((h, w)).astype(np.float32), 12)  # tone drifting along it
        along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        a = a * rng.uniform(0.5, 1.0) * (0.5 + 0.5 * along)
        base = rng.uniform(170, 255) if rng.random() < 0.5 else rng.uniform(0, 90)
        colour = (np.clip(base + rng.uniform(-25, 25, 3), 0, 255) / 255.0).astype(np.float32)
        p = p * (1 - a[..., None]) + colour * a[..., None]
    return p.astype(np.float32)


def age(p: np.ndarray, rng) -> np.ndarray:
    """A clean float32 RGB patch made to look like an old print (before it is damaged)."""
    r = rng.random()
    if r < 0.3:
        g = p @ np.array([0.299, 0.587, 0.114], np.float32)
        p = np.repeat(g[..., None], 3, axis=2)
    elif r < 0.6:
        g = p @ np.array([0.299, 0.587, 0.114], np.float32)
        tone = np.array([1.0, 0.86, 0.66], np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
        p = np.clip(g[..., None] * tone, 0, 1)
    if rng.random() < 0.6:  # fading: lifted blacks, lowered contrast
        lo, hi = rng.uniform(0, 0.2), rng.uniform(0.8, 1.0)
        p = lo + (hi - lo) * p
    if rng.random() < 0.5:
        p = gaussian_filter(p, (rng.uniform(0.3, 1.2),) * 2 + (0,))
    if rng.random() < 0.7:  # film grain, sometimes clumped
        n = rng.normal(0, rng.uniform(0.005, 0.04), p.shape[:2]).astype(np.float32)
        if rng.random() < 0.5:
            n = gaussian_filter(n, rng.uniform(0.5, 1.0)) * 2
        p = p + n[..., None]
    return np.clip(p, 0, 1).astype(np.float32)


def scan(p: np.ndarray, rng) -> np.ndarray:
    """Sensor noise and JPEG, as a scanned or photographed print has."""
    if rng.random() < 0.5:
        p = p + rng.normal(0, rng.uniform(0.002, 0.015), p.shape).astype(np.float32)
    p = np.clip(p, 0, 1)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(np.round(p * 255).astype(np.uint8)).save(
            buf, "JPEG", quality=int(rng.integers(60, 96)))
        p = np.asarray(Image.open(buf), np.float32) / 255.0
    return p.astype(np.float32)


def damage(p: np.ndarray, rng, clean: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(damaged patch, mask): a clean float32 H×W×3 patch in 0..1 aged, damaged and scanned; the
    mask float32 H×W in {0, 1}."""
    h, w = p.shape[:2]
    if SCENE_P > 0 and rng.random() < SCENE_P:  # off: no draw, so v1's recipe is drawn as it was
        p = scene_lines(p, rng)
    p = age(p, rng)
    mask = np.zeros((h, w), bool)
    if clean is None:
        clean = rng.random() < CLEAN_P
    if not clean:
        kinds = ["crack"] * int(rng.integers(0, 4)) + ["crease"] * int(rng.random() < 0.3) \
            + ["lint"] * int(rng.integers(0, 4)) + ["dust"] * int(rng.integers(0, 2)) \
            + ["fold"] * int(rng.random() < 0.3)
        if not kinds:
            kinds = [str(rng.choice(["crack", "crease", "lint", "dust", "fold"]))]
        if RIDGE_P > 0 and rng.random() < RIDGE_P:  # off: no draw, so v1's recipe is drawn as it was
            kinds.append("ridge")
        for kind in kinds:
            if kind == "ridge":
                shade, line, fold = _ridge(rng, w, h)
                p = np.clip(p * (1 + shade[..., None]), 0, 1)
                p = p * (1 - line[..., None]) + _paper(rng) * line[..., None]
                mask |= line >= MASK_AT
                if RIDGE_STEP and float(np.ptp(shade[fold])) >= 0.24:
                    mask |= fold
                continue
            if kind == "fold":
                light, dark = _fold(rng, w, h)
                paper = _paper(rng)
                shadow = np.clip(rng.uniform(0, 60) + rng.uniform(-8, 8, 3), 0, 255) / 255.0
                p = p * (1 - light[..., None]) + paper * light[..., None]
                p = p * (1 - dark[..., None]) + shadow.astype(np.float32) * dark[..., None]
                mask |= (light >= MASK_AT) | (dark >= MASK_AT)
                continue
            a = _layer(rng, w, h, kind)
            if rng.random() < 0.65:
                colour = rng.uniform(195, 255) + rng.uniform(-10, 10, 3)
            else:
                colour = rng.uniform(0, 70) + rng.uniform(-8, 8, 3)
            colour = np.clip(colour, 0, 255).astype(np.float32) / 255.0
            p = p * (1 - a[..., None]) + colour * a[..., None]
            mask |= a >= MASK_AT
    return scan(p, rng), mask.astype(np.float32)

"""Blur kernels and the degradations of the deblurring network.

Every kernel is a float64 array of odd size, non-negative, summing to 1, with its centre of mass
on the centre pixel (so blurring does not shift the photo and the network never has to shift it
back). Four families for training:

- camera shake: a random walk with momentum (Boracchi & Foi, "Modeling the performance of image
  restoration from motion blur", 2012), scaled to a random extent of 3–25 px, rasterised with
  sub-pixel (bilinear) splatting;
- straight streaks: length 3–25 px at any angle, anti-aliased by the same splatting;
- defocus disks: radius 1–6 with a soft edge (a linear ramp 1–2.5 px wide, slightly elliptic);
- Gaussian: σ 0.5–3.

`degrade_train` turns a clean crop into (input, target); `degrade_eval` is the held-out recipe,
drawn differently (streaks 10–20 px, HARD disks of radius 3–5 with a 1-px anti-aliased edge,
Gaussian noise σ 1–3, JPEG 85–95) and is never used by training.

Images here are float32 HxWx3 arrays in 0…1 unless said otherwise.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image
from scipy.signal import fftconvolve

MAX_EXTENT = 25          # longest motion blur, px
MAX_RADIUS = 6           # largest defocus radius, px
MARGIN = 36              # context a training crop takes around itself for a blur (≥ half a kernel:
                         # a shake kernel is centred on its centre of mass, which can lie near one
                         # end of its path, at most 24·√2 < 34 px away, + 1 px of splat)


# ------------------------------------------------------------------ kernels

def _splat(points: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rasterise 2-D points (N×2, x/y in px) with bilinear splatting into an odd-sized kernel whose
    centre pixel is the points' (weighted) centroid."""
    pts = np.asarray(points, np.float64)
    w = np.ones(len(pts)) if weights is None else np.asarray(weights, np.float64)
    c = (pts * w[:, None]).sum(0) / w.sum()
    pts = pts - c
    half = int(math.ceil(np.abs(pts).max())) + 1
    size = 2 * half + 1
    k = np.zeros((size, size))
    x = pts[:, 0] + half
    y = pts[:, 1] + half
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    fx = x - x0
    fy = y - y0
    for dx, dy, ww in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                       (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), ww * w)
    return normalise(k)


def normalise(k: np.ndarray) -> np.ndarray:
    """Sum 1, then trim all-zero outer rings symmetrically (size stays odd, centre stays)."""
    k = np.clip(k, 0, None)
    k = k / k.sum()
    while k.shape[0] > 3 and not k[0].any() and not k[-1].any() and not k[:, 0].any() and not k[:, -1].any():
        k = k[1:-1, 1:-1]
    return k


def streak_kernel(length: float, angle: float) -> np.ndarray:
    """A straight, anti-aliased line `length` px long (end to end) at `angle` radians."""
    n = max(int(length * 8), 2)
    t = np.linspace(-0.5, 0.5, n) * (length - 1.0)
    pts = np.stack([t * math.cos(angle), t * math.sin(angle)], 1)
    return _splat(pts)


def trajectory_kernel(rng: np.random.Generator, extent: float, steps: int = 128) -> np.ndarray:
    """Camera shake: Boracchi & Foi's random walk with momentum (random centripetal pull, Gaussian
    jitter and occasional big shakes), scaled so its bounding extent (largest side) is `extent` px,
    densified and splatted; the time spent at each place weights it, as an exposure does."""
    anxiety = rng.uniform(0.005, 0.3)
    centripetal = 0.7 * rng.uniform()
    gaussian_term = 10 * rng.uniform()
    freq_big_shakes = 0.2 * rng.uniform()
    step = 1.0 / (steps - 1)
    v = complex(*rng.normal(size=2))
    v = v / max(abs(v), 1e-9) * step
    x = np.zeros(steps, np.complex128)
    for t in range(1, steps):
        nxt = 0j
        if rng.uniform() < freq_big_shakes * anxiety:
            nxt = 2 * v * np.exp(1j * (math.pi + (rng.uniform() - 0.5)))
        dv = nxt + anxiety * (gaussian_term * complex(*rng.normal(size=2)) - centripetal * x[t - 1]) * step
        v = v + dv
        v = v / max(abs(v), 1e-12) * step
        x[t] = x[t - 1] + v
    pts = np.stack([x.real, x.imag], 1)
    span = (pts.max(0) - pts.min(0)).max()
    if span < 1e-9:
        return streak_kernel(extent, rng.uniform(0, math.pi))
    pts = pts * ((extent - 1.0) / span)
    # densify so that no gap opens between consecutive samples
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1).max()
    if seg > 0.25:
        m = int(math.ceil(seg / 0.25))
        t0 = np.linspace(0, 1, len(pts))
        t1 = np.linspace(0, 1, (len(pts) - 1) * m + 1)
        pts = np.stack([np.interp(t1, t0, pts[:, 0]), np.interp(t1, t0, pts[:, 1])], 1)
    return _splat(pts)


def disk_kernel(radius: float, edge: float = 1.0, aspect: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Defocus: a disk of `radius` px whose edge is a linear ramp `edge` px wide centred on the
    radius (edge=1: a hard disk with a 1-px anti-aliased rim). `aspect` ≠ 1 makes it elliptic."""
    half = int(math.ceil(radius * max(aspect, 1.0) + edge / 2)) + 1
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    c, s = math.cos(angle), math.sin(angle)
    u = (c * xx + s * yy) / aspect
    v = -s * xx + c * yy
    d = np.hypot(u, v)
    k = np.clip((radius - d) / edge + 0.5, 0, 1)
    if k.sum() == 0:
        k[half, half] = 1
    return normalise(k)


def gaussian_kernel(sigma: float) -> np.ndarray:
    half = max(int(math.ceil(3 * sigma)), 1)
    t = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return normalise(np.outer(g, g))


KINDS = ("shake", "streak", "disk", "gaussian")
KIND_P = (0.35, 0.2, 0.27, 0.18)
MOTION = ("shake", "streak")


def random_kernel(rng: np.random.Generator, kind: str | None = None) -> tuple[np.ndarray, str]:
    """A training kernel: (kernel, kind)."""
    kind = kind or KINDS[rng.choice(len(KINDS), p=KIND_P)]
    if kind == "shake":
        # lengths skewed towards short blurs, which are the common ones
        k = trajectory_kernel(rng, 3 + (MAX_EXTENT - 3) * rng.uniform() ** 1.3)
    elif kind == "streak":
        k = streak_kernel(3 + (MAX_EXTENT - 3) * rng.uniform() ** 1.3, rng.uniform(0, math.pi))
    elif kind == "disk":
        aspect = 1.0 if rng.uniform() < 0.6 else rng.uniform(1.0, 1.25)
        k = disk_kernel(rng.uniform(1.0, MAX_RADIUS), edge=rng.uniform(1.0, 2.5), aspect=aspect,
                        angle=rng.uniform(0, math.pi))
    else:
        k = gaussian_kernel(rng.uniform(0.5, 3.0))
    return k, kind


# ------------------------------------------------------------------ image operations

def convolve(img: np.ndarray, k: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """Blur HxWx3 `img` with `k`. mode='reflect': same size, edges reflect-padded; mode='valid':
    the output is smaller by the kernel size − 1 (the input carries its own context)."""
    img = np.asarray(img, np.float32)
    k = np.asarray(k, np.float32)
    h = k.shape[0] // 2
    if mode == "reflect":
        img = np.pad(img, ((h, h), (h, h), (0, 0)), mode="reflect")
    return np.stack([fftconvolve(img[..., c], k, mode="valid") for c in range(img.shape[2])], -1)


def add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float, poisson: float = 0.0) -> np.ndarray:
    """Gaussian noise of `sigma` (0…1 units) plus, if `poisson` > 0, signal-dependent noise with
    variance `poisson`·x (a shot-noise approximation), optionally in luma only."""
    n = rng.normal(size=img.shape).astype(np.float32) * sigma
    if poisson > 0:
        p = rng.normal(size=img.shape[:2] + (1,)).astype(np.float32)
        if rng.uniform() < 0.5:
            p = rng.normal(size=img.shape).astype(np.float32)
        n += p * np.sqrt(np.clip(img, 0, 1) * poisson)
    return img + n


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through Pillow's JPEG (4:2:0, as cameras and the web)."""
    return np.asarray(jpeg_image(Image.fromarray(to_u8(img)), quality), np.float32) / 255.0


def jpeg_image(im: Image.Image, quality: int) -> Image.Image:
    """`jpeg` on a Pillow image (RGB out)."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(img, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def quantise(img: np.ndarray) -> np.ndarray:
    return to_u8(img).astype(np.float32) / 255.0


def fade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild fading: contrast × 0.85–1 about mid-grey-ish, with a slight lift of the blacks."""
    c = rng.uniform(0.85, 1.0)
    lift = rng.uniform(0.0, 0.04)
    return img * c + (1 - c) * 0.5 * rng.uniform(0.3, 1.0) + lift * (1 - img)


# ------------------------------------------------------------------ recipes

SHARP_P = 0.15
ENLARGED_P = 0.12        # v3: share of enlarged, compressed identity samples (v1, v2: none)


def enlarged(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`clean` as an enlarged web photo: shrunk by 1.6–8, JPEG-compressed hard at that small size
    (quality 10–75; sometimes grey, as old prints are scanned), brought back to its size by a
    common resampler, then lightly noised and compressed again.

    The dev faces that `auto` made worse were such photos: soft like a defocus, but their softness
    is the enlargement's, and the network sharpened their 8-px JPEG blocks, grown to 30–60 px, into
    a grid. As identity samples (the input is its own target) they teach it to leave them alone
    (v3 then also leaves a blockless enlargement nearly alone: kodim08 ×6, R 0.47; the periodic
    look, src/deblur/periodic.rs, stops most of those before the network anyway)."""
    h, w = clean.shape[:2]
    f = math.exp(rng.uniform(math.log(1.6), math.log(8.0)))
    im = Image.fromarray(to_u8(clean))
    if rng.uniform() < 0.3:
        im = im.convert("L").convert("RGB")
    down = (Image.LANCZOS, Image.BICUBIC, Image.BOX)[int(rng.integers(3))]
    small = im.resize((max(8, round(w / f)), max(8, round(h / f))), down)
    small = jpeg_image(small, rng.integers(10, 76))
    up = (Image.BICUBIC, Image.BILINEAR, Image.LANCZOS)[int(rng.integers(3))]
    x = np.asarray(small.resize((w, h), up), np.float32) / 255.0
    if rng.uniform() < 0.5:
        x = add_noise(x, rng, rng.uniform(0, 1.5) / 255.0)
    return jpeg(x, rng.integers(70, 96)) if rng.uniform() < 0.7 else quantise(x)


def degrade_train(src: np.ndarray, rng: np.random.Generator, sharp: bool | None = None,
                  enlarged_p: float = ENLARGED_P) -> tuple[np.ndarray, np.ndarray, str]:
    """`src`: a clean float32 image with MARGIN px of context on every side of the region wanted
    (a training crop cut with its surroundings, or a whole photo reflect-padded by MARGIN).
    Returns (input, target, kind) of the region's size; kind is 'sharp' or 'enlarged' for the
    identity samples, whose target is the (noisy/compressed) input itself so that a sharp or an
    enlarged photo passes through unchanged, else the kernel family ('shake', 'streak', 'disk',
    'gaussian'). `sharp` given (True or False) forces that kind and draws no enlarged sample.

    Fading is photometric augmentation applied to the clean photo BEFORE the blur, so it is in
    both input and target: the network deblurs and never changes the tone."""
    if rng.uniform() < 0.3:
        src = np.clip(fade(src, rng), 0, 1)
    m = MARGIN
    hh, ww = src.shape[0] - 2 * m, src.shape[1] - 2 * m
    clean = src[m:m + hh, m:m + ww]
    if sharp is None and enlarged_p > 0 and rng.uniform() < enlarged_p:
        x = enlarged(clean, rng)
        return x, x.copy(), "enlarged"
    sharp = (rng.uniform() < SHARP_P) if sharp is None else sharp
    if sharp:
        x = clean.copy()
        kind = "sharp"
    else:
        k, kind = random_kernel(rng)
        h = k.shape[0] // 2
        assert h <= m, f"{kind} kernel of {k.shape[0]} px exceeds the margin of {m}"
        x = convolve(src[m - h:m + hh + h, m - h:m + ww + h], k, mode="valid")
    # noise: Gaussian σ 0–3 (of 255), sometimes shot noise; lighter on the identity samples
    s = rng.uniform(0, 3.0 if not sharp else 1.5) / 255.0
    pois = rng.uniform(0, 2e-4) if rng.uniform() < 0.3 else 0.0
    if rng.uniform() < 0.8:
        x = add_noise(x, rng, s, pois)
    if rng.uniform() < 0.7:
        x = jpeg(x, rng.integers(70 if not sharp else 80, 96))
    else:
        x = quantise(x)
    target = x.copy() if sharp else clean
    return x.astype(np.float32), np.ascontiguousarray(target, np.float32), kind


def degrade_train_full(img: np.ndarray, rng: np.random.Generator, sharp: bool | None = None
                       ) -> tuple[np.ndarray, np.ndarray, str]:
    """The training recipe on a whole image (edges reflect-padded)."""
    m = MARGIN
    return degrade_train(np.pad(img, ((m, m), (m, m), (0, 0)), mode="reflect"), rng, sharp)


EVAL_KINDS = ("motion", "defocus")


def eval_kernel(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Held-out kernels: straight streaks 10–20 px at any angle, or HARD disks of radius 3–5 with
    a 1-px anti-aliased edge."""
    if kind == "motion":
        return streak_kernel(rng.uniform(10.0, 20.0), rng.uniform(0, math.pi))
    if kind == "defocus":
        return disk_kernel(rng.uniform(3.0, 5.0), edge=1.0)
    raise ValueError(kind)


def eval_seed(name: str, kind: str) -> int:
    """Fixed per image and kind (independent of Python's hash randomisation)."""
    import zlib
    return zlib.crc32(f"deblur-eval:{kind}:{name}".encode()) + 1_000_003


def degrade_eval(clean: np.ndarray, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The held-out recipe on a whole image (edges reflect-padded): returns (input, kernel).
    kind 'sharp': JPEG 90 only."""
    if kind == "sharp":
        return jpeg(clean, 90), np.ones((1, 1))
    rng = np.random.default_rng(eval_seed(name, kind))
    k = eval_kernel(rng, kind)
    x = convolve(clean, k, mode="reflect")
    x = add_noise(x, rng, rng.uniform(1.0, 3.0) / 255.0)
    x = jpeg(x, int(rng.integers(85, 96)))
    return x, k

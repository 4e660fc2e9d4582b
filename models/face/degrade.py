"""Degradations: the random ones training draws from (Real-ESRGAN / GFPGAN's recipe, at the
faces' own 256² resolution) and the two fixed reference levels the evaluation judges by.

Every function takes and returns float32 HxWx3 RGB in 0…1.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

# The reference levels, each from a 512² ground truth (issue #11): blur σ at 512, the side the
# face is brought down to (bicubic), Gaussian noise σ (of 255), JPEG quality.
LEVELS = {
    "x4": {"sigma": 3.0, "side": 128, "noise": 6.0, "jpeg": 60},
    "x8": {"sigma": 4.0, "side": 64, "noise": 8.0, "jpeg": 55},
}


def gaussian_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def blur_separable(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Convolution with `k` along both axes, edges reflected."""
    r = len(k) // 2
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * np.take(p, np.arange(i, i + n), axis=axis)
        out = acc
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return blur_separable(img, gaussian_kernel(sigma)) if sigma > 0 else img


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """A line kernel of `length` pixels at `angle` radians (camera shake)."""
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    for t in np.linspace(-c, c, 4 * length):
        x, y = int(round(c + t * np.cos(angle))), int(round(c + t * np.sin(angle)))
        k[y, x] = 1
    k /= k.sum()
    r = length // 2
    p = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect")
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    for y, x in zip(*np.nonzero(k)):
        out += k[y, x] * p[y:y + h, x:x + w]
    return out


def resize(img: np.ndarray, side: int, method=Image.BICUBIC) -> np.ndarray:
    """Each channel as a float image (no 8-bit rounding), PIL's resampling."""
    chans = [np.asarray(Image.fromarray(img[..., c].astype(np.float32), "F").resize((side, side), method))
             for c in range(img.shape[2])]
    return np.stack(chans, -1)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(to_u8(img)).save(buf, "JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def reference(gt512: np.ndarray, level: str, seed: int) -> np.ndarray:
    """A reference-level low-quality face: blur at 512, bicubic down, Gaussian noise, JPEG.
    Deterministic for a seed (the evaluation uses the face's index)."""
    p = LEVELS[level]
    rng = np.random.default_rng(seed)
    x = gaussian_blur(gt512.astype(np.float32), p["sigma"])
    x = resize(x, p["side"], Image.BICUBIC)
    x = x + rng.normal(0, p["noise"] / 255.0, x.shape).astype(np.float32)
    return jpeg(np.clip(x, 0, 1), p["jpeg"])


def to_face_input(lq: np.ndarray, side: int = 256) -> np.ndarray:
    """What the face stage feeds a 256² face model for a face that spans `lq`'s side in the
    photo: the aligned crop cut by a bilinear warp (pixel centres at +0.5, edges replicated),
    which for an already aligned face is a bilinear resize."""
    return resize(lq, side, Image.BILINEAR)


def noise_and_jpeg(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The recipe's last steps on a small RGB 0…1 image: noise (Gaussian, color or gray, or Poisson
    shot noise, or none), then JPEG, sometimes twice."""
    v = rng.random()
    if v < 0.5:
        s = rng.uniform(1, 12) / 255.0
        n = rng.normal(0, s, x.shape[:2] + ((1,) if rng.random() < 0.4 else (3,)))
        x = x + n.astype(np.float32)
    elif v < 0.75:
        peak = 10 ** rng.uniform(1.5, 3.2)
        x = rng.poisson(np.clip(x, 0, 1) * peak).astype(np.float32) / peak
    for _ in range(2 if rng.random() < 0.3 else 1):
        if rng.random() < 0.85:
            x = jpeg(np.clip(x, 0, 1), int(rng.integers(20, 96)))
    return x


def random_degrade(gt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random low-quality version of a sharp 256² aligned face, brought back to 256² as the
    face stage would see it; and the target (gray when the input was made gray)."""
    side = gt.shape[0]
    x = gt.astype(np.float32)
    target = gt
    # Color: sometimes grayscale (target too: a restorer must not invent color), sometimes faded (the
    # target too: the face is pasted back into the same photo, so its colors must match).
    u = rng.random()
    if u < 0.08:
        g = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = np.repeat(g[..., None], 3, -1)
        target = x.copy()
    elif u < 0.16:
        g = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        f = rng.uniform(0.3, 0.8)
        x = (g + f * (x - g)) * rng.uniform(0.85, 1.0) + rng.uniform(0.0, 0.08)
        x = np.clip(x, 0, 1)
        target = x.copy()  # the face is pasted back into a faded photo: keep its colors
    # Blur (σ is for this 256² face; GFPGAN draws 0.1–10 at 512).
    if rng.random() < 0.85:
        x = gaussian_blur(x, rng.uniform(0.2, 3.5))
    if rng.random() < 0.15:
        x = motion_blur(x, int(rng.integers(3, 10)), rng.uniform(0, np.pi))
    # Down so that the face spans 16–128 pixels (log-uniform, the smallest rarer).
    lo = 24 if rng.random() < 0.8 else 16
    small = int(np.exp(rng.uniform(np.log(lo), np.log(128))))
    method = [Image.BICUBIC, Image.BILINEAR, Image.BOX][int(rng.integers(3))]
    x = resize(x, small, method)
    x = noise_and_jpeg(x, rng)
    x = to_face_input(np.clip(x, 0, 1), side)
    return np.clip(x, 0, 1).astype(np.float32), target.astype(np.float32)


def _color(x: np.ndarray, op: tuple | None) -> np.ndarray:
    """Applies a drawn color change (`random_photo_degrade`'s) to an RGB 0…1 image."""
    if op is None:
        return x
    g = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if op[0] == "gray":
        return np.repeat(g, 3, -1)
    _, f, gain, lift = op
    return np.clip((g + f * (x - g)) * gain + lift, 0, 1)


def random_photo_degrade(photo: np.ndarray, scale: float, rng: np.random.Generator):
    """The 512² training recipe (issue 29): a random low-quality version of a whole sharp photo
    (uint8 HxWx3), before the face stage cuts the face from it. `scale`: template pixels (512²)
    per photo pixel, so that blur and size are drawn in the template's units, as `random_degrade`
    draws them for a 256² face (σ and lengths ×2 here). Returns (the low-quality photo, float32
    0…1, k = its side over the photo's, the color change to apply to the target as well: grayscale
    and fading are kept in the target, since the face is pasted back into the same photo)."""
    from PIL import ImageFilter
    u = rng.random()
    op = None
    if u < 0.08:
        op = ("gray",)
    elif u < 0.16:
        op = ("fade", rng.uniform(0.3, 0.8), rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.08))
    im = Image.fromarray(photo)
    # Blur (σ in template pixels at 512, GFPGAN's 0.1–10 range, mostly ≤ 7); Pillow's radius is σ.
    # A quarter of the blurred photos are out of focus instead (issue 32: the face stage restores
    # the faces of missed-focus photos): a soft-edged disk of radius 2–12 template pixels, the
    # deblurring network's own kernel family.
    blur = rng.random()
    if blur < 0.64:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 7.0) / scale))
    x = np.asarray(im, np.float32) / 255.0
    if 0.64 <= blur < 0.85:
        from deblur.blur import convolve, disk_kernel
        x = convolve(x, disk_kernel(max(1.0, rng.uniform(2.0, 12.0) / scale), edge=rng.uniform(1.0, 2.5)))
    if rng.random() < 0.15:
        x = motion_blur(x, max(3, int(rng.integers(6, 20) / scale)), rng.uniform(0, np.pi))
    x = _color(x, op)
    # Down so that the template's side spans 16–128 pixels (log-uniform, the smallest rarer).
    lo = 24 if rng.random() < 0.8 else 16
    small = np.exp(rng.uniform(np.log(lo), np.log(128)))
    side = max(8, int(round(photo.shape[0] * small / (512.0 / scale))))
    method = [Image.BICUBIC, Image.BILINEAR, Image.BOX][int(rng.integers(3))]
    x = resize(x, side, method)
    x = noise_and_jpeg(x, rng)
    return np.clip(x, 0, 1).astype(np.float32), side / photo.shape[0], op

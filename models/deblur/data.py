"""The deblurring network's data: the permissive photos (`../shared/data/photos`), the 20 held out
(`holdout.txt`), decoded once into memory, and the batches made from them on the fly.

Only the permissive photos train (CC0 / CC BY / CC BY-SA / Kodak's unrestricted release); the
FFHQ faces (non-commercial) are only measured on, never trained on.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from . import blur

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
PHOTOS = SHARED / "data" / "photos"
FACES = SHARED / "data" / "faces" / "ffhq512" / "val"
HOLDOUT = Path(__file__).with_name("holdout.txt")
WORK = REPO / "models" / "build" / "deblur"
HOLDOUT_SEED = 32
HOLDOUT_N = 20


def all_photos() -> list[str]:
    """Every photo, relative to the photos folder, sorted."""
    return sorted(str(p.relative_to(PHOTOS)) for p in PHOTOS.glob("*/*.avif"))


def choose_holdout(seed: int = HOLDOUT_SEED, n: int = HOLDOUT_N) -> list[str]:
    """`n` photos spread over the folders in proportion to their size (at least 2 each), drawn
    with a fixed seed. Used once to write holdout.txt; the file is then the reference."""
    photos = all_photos()
    folders = sorted({p.split("/")[0] for p in photos})
    by = {f: [p for p in photos if p.startswith(f + "/")] for f in folders}
    quota = {f: 2 for f in folders}
    rest = n - sum(quota.values())
    share = {f: len(by[f]) / len(photos) * rest for f in folders}
    for f in folders:
        quota[f] += int(share[f])
    left = n - sum(quota.values())
    for f in sorted(folders, key=lambda f: share[f] - int(share[f]), reverse=True)[:left]:
        quota[f] += 1
    rng = np.random.default_rng(seed)
    out = []
    for f in folders:
        out += sorted(rng.choice(by[f], size=quota[f], replace=False).tolist())
    return sorted(out)


def holdout() -> list[str]:
    return [l.strip() for l in HOLDOUT.read_text().splitlines() if l.strip() and not l.startswith("#")]


def training_photos() -> list[str]:
    held = set(holdout())
    return [p for p in all_photos() if p not in held]


def load(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def load_photos(names: list[str]) -> list[np.ndarray]:
    return [load(PHOTOS / n) for n in names]


def faces(n: int = 100) -> list[Path]:
    return sorted(FACES.glob("*.avif"))[:n]


def calibration_faces(n: int) -> list[Path]:
    """The first `n` FFHQ training faces: for `auto`'s thresholds only (the network never trains on
    faces, and the held-out faces are `faces()`, from val/)."""
    return sorted((FACES.parent / "train").glob("*.avif"))[:n]


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Antialiased (Lanczos) resize of a uint8 image."""
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS), np.uint8)


def sample_patch(photo: np.ndarray, rng: np.random.Generator, side: int,
                 around: tuple[int, int] | None = None) -> np.ndarray:
    """A clean float32 patch of `side`² px at a random place and a random scale 0.5–1 (the region
    is cut first, with some slack, and then downscaled: the same as downscaling the photo), with a
    random flip / rot90. With `around` (y, x), the region holds that pixel (a quarter of the region
    in from its edge, unless the photo's own edge is nearer)."""
    h, w = photo.shape[:2]
    s = rng.uniform(0.5, 1.0)
    s = max(s, (side + 4) / min(h, w))
    src = int(math.ceil(side / s)) + 2
    src = min(src, h, w)
    if around is None:
        y = int(rng.integers(0, h - src + 1))
        x = int(rng.integers(0, w - src + 1))
    else:
        y, x = (int(np.clip(c - rng.integers(src // 4, src - src // 4), 0, n - src))
                for c, n in zip(around, (h, w)))
    region = photo[y:y + src, x:x + src]
    if src != side:
        region = resize(region, side, side) if src > side else region[:side, :side]
    p = region.astype(np.float32) / 255.0
    if rng.uniform() < 0.5:
        p = p[:, ::-1]
    p = np.rot90(p, int(rng.integers(0, 4)))
    return np.ascontiguousarray(p)


def make_batch(photos: list[np.ndarray], rng: np.random.Generator, batch: int, crop: int,
               sharp: list[bool] | None = None, enlarged_p: float = blur.ENLARGED_P
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(inputs, targets) as N×3×crop×crop float32 arrays, and each sample's kind."""
    xs, ys, kinds = [], [], []
    for i in range(batch):
        photo = photos[int(rng.integers(len(photos)))]
        patch = sample_patch(photo, rng, crop + 2 * blur.MARGIN)
        x, y, kind = blur.degrade_train(patch, rng, None if sharp is None else sharp[i], enlarged_p)
        xs.append(x.transpose(2, 0, 1))
        ys.append(y.transpose(2, 0, 1))
        kinds.append(kind)
    return np.stack(xs), np.stack(ys), kinds


def validation_set(photos: dict[str, np.ndarray], crop: int = 160) -> dict[str, np.ndarray]:
    """The fixed validation crops: 16 blurred (training recipe), 16 sharp and 16 enlarged
    (`blur.enlarged`), from 8 TRAINING photos chosen by a fixed seed, each drawn with its own fixed
    seed. The blurred and sharp crops are the ones v1 and v2 were validated on."""
    names = sorted(photos)
    pick = np.random.default_rng(1234).choice(len(names), size=8, replace=False)
    bx, by, sx, sy, ex, kinds = [], [], [], [], [], []
    for j, i in enumerate(sorted(pick)):
        for r in range(2):
            rng = np.random.default_rng(10_000 + 10 * j + r)
            x, y, k = make_batch([photos[names[i]]], rng, 1, crop, sharp=[False])
            bx.append(x[0]); by.append(y[0]); kinds.append(k[0])
            rng = np.random.default_rng(20_000 + 10 * j + r)
            x, y, _ = make_batch([photos[names[i]]], rng, 1, crop, sharp=[True])
            sx.append(x[0]); sy.append(y[0])
            rng = np.random.default_rng(30_000 + 10 * j + r)
            e = blur.enlarged(sample_patch(photos[names[i]], rng, crop), rng)
            ex.append(e.transpose(2, 0, 1))
    enl = np.stack(ex)   # identity samples: their own targets
    return {"blur_x": np.stack(bx), "blur_y": np.stack(by), "sharp_x": np.stack(sx),
            "sharp_y": np.stack(sy), "enl_x": enl, "enl_y": enl, "kinds": kinds}

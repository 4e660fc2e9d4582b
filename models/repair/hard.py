"""Hard negatives for the damage detector: the places in the clean training photos that a detector
already calls damage (ropes, wires, masts, window frames, text), so that training can cut more of
its crops there and learn that a photo's own thin lines are not scratches.

The synthetic recipe draws thin light and dark lines as damage, and a clean photo's own thin lines
look the same to a small network; drawn at random, crops rarely land on them. `mine` runs the
network once over every training photo (as it is and in gray, at full and ¾ size: the detector's
input scale in training) and keeps the pixels whose logit is above `AT`; `sample` cuts a crop
around one of them, the photo drawn uniformly among those that have any, so that one line-heavy
photo does not fill the batch.
The photos that calibrate the detector's threshold (`calibration`) are not mined: their false
alarms must stay as a network not drilled on them would give.
"""
from __future__ import annotations

import numpy as np

from deblur import data

AT = 0.0  # the training's own decision boundary: anything the loss would call damage
MAX_PER_PHOTO = 4000  # points kept per photo (a random subset), to bound the memory


def calibration(names: list[str], n: int = 20) -> list[str]:
    """The training photos `bench/repair_eval.py --calibrate` chooses the threshold on: every k-th."""
    return names[:: max(1, len(names) // n)][:n]


def _logits(net, rgb: np.ndarray) -> np.ndarray:
    import torch  # here, not at the top: the benchmark imports `calibration` without torch
    import torch.nn.functional as F
    from repair.net import MULTIPLE
    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float() / 255.0
    ph, pw = -h % MULTIPLE, -w % MULTIPLE
    x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    with torch.no_grad():
        return net(x)[0, 0, :h, :w].numpy()


def mine(net, photos: list[np.ndarray], rng: np.random.Generator,
         skip: set[int] = frozenset()) -> list[np.ndarray]:
    """For each photo, an N×2 int array of (y, x) in its own pixels where the network fires (none
    for the photos in `skip`)."""
    was = net.training
    net.eval()
    out = []
    for i, photo in enumerate(photos):
        h, w = photo.shape[:2]
        if i in skip:
            out.append(np.zeros((0, 2), int))
            continue
        gray = np.repeat(photo.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
        hits = []
        for img in (photo, gray):
            for s in (1.0, 0.75):
                small = img if s == 1.0 else data.resize(img, round(w * s), round(h * s))
                ys, xs = np.nonzero(_logits(net, small) > AT)
                hits.append(np.stack([np.minimum((ys / s).astype(int), h - 1),
                                      np.minimum((xs / s).astype(int), w - 1)], axis=1))
        pts = np.unique(np.concatenate(hits), axis=0)
        if len(pts) > MAX_PER_PHOTO:
            pts = pts[rng.choice(len(pts), MAX_PER_PHOTO, replace=False)]
        out.append(pts)
    net.train(was)
    return out


def sample(photos: list[np.ndarray], points: list[np.ndarray], rng: np.random.Generator,
           side: int) -> np.ndarray:
    """A clean patch as `data.sample_patch` cuts it, around a mined point of a photo that has any."""
    having = [i for i, p in enumerate(points) if len(p)]
    i = having[int(rng.integers(len(having)))]
    y, x = points[i][int(rng.integers(len(points[i])))]
    return data.sample_patch(photos[i], rng, side, around=(int(y), int(x)))

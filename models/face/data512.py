"""Training pairs for the 512² face restorer (issue 29), from what `prepare512.py` cached.

Each sample: the sharp photo degraded at random (`degrade.random_photo_degrade`), cut to the
network's 256² input with the product's own bilinear warp (`common.warp`, the similarity fitted on
the sharp photo, scaled to the low-quality photo), as the face stage cuts it at inference; the
target is the cached bicubic-aligned 512² face (the same color change applied), and the mask the
template's pixels the photo covers. Also the five landmarks in the 512² template, for the
component discriminators.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from face.common import warp
from face.degrade import _color, random_photo_degrade

IN_SIDE = 256


def input_from_photo(lq: np.ndarray, m512: np.ndarray, k: float) -> np.ndarray:
    """The face stage's 256² input (0…1) cut from a low-quality photo that is the sharp photo
    resized by `k`; `m512` maps the sharp photo onto the 512² template."""
    a, b, tx, ty = m512
    s = 0.5 / k  # LQ photo → sharp photo (÷k), → 512 template (m512), → 256 template (×½)
    m = np.array([a * s, b * s, tx * 0.5, ty * 0.5])
    x, _ = warp(lq, m, IN_SIDE)
    return x


def mirror_landmarks(lm: np.ndarray, side: int = 512) -> np.ndarray:
    """Landmarks after a horizontal flip of the aligned face: x mirrored, left/right swapped."""
    out = lm.copy()
    out[:, 0] = side - lm[:, 0]
    return out[[1, 0, 2, 4, 3]]


class Faces512(torch.utils.data.Dataset):
    """(input 256² −1…1, target 512² −1…1, mask 512², landmarks 5×2 in the 512 template)."""

    def __init__(self, data: Path, rows: list[int], seed: int, split: str = "train"):
        self.index = json.loads((data / "index.json").read_text())[split]
        self.data, self.rows, self.seed, self.split = data, rows, seed, split
        self.epoch = 0
        self.arrays = None

    def __len__(self):
        return len(self.rows)

    def open(self):
        if self.arrays is None:  # opened in each worker process
            self.arrays = {k: np.load(self.data / f"{self.split}_{k}.npy", mmap_mode="r")
                           for k in ("photo", "target", "mask")}
        return self.arrays

    def __getitem__(self, i):
        a = self.open()
        row = self.rows[i]
        info = self.index[row]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        lq, k, op = random_photo_degrade(np.asarray(a["photo"][row]), info["scale"], rng)
        x = input_from_photo(lq, np.asarray(info["m"]), k)
        target = _color(np.asarray(a["target"][row], np.float32) / 255.0, op)
        mask = np.asarray(a["mask"][row], np.float32)
        lm = np.asarray(info["landmarks_512"], np.float32)
        if rng.random() < 0.5:  # the FFHQ template is symmetric to < 1.5 px: flip the aligned face
            x, target, mask = x[:, ::-1], target[:, ::-1], mask[:, ::-1]
            lm = mirror_landmarks(lm)
        t = lambda v: torch.from_numpy(np.ascontiguousarray(v)).permute(2, 0, 1) * 2 - 1  # noqa: E731
        return t(x), t(target), torch.from_numpy(np.ascontiguousarray(mask))[None], torch.from_numpy(lm)

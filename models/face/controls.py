"""The evaluation's control rows (issue 29): what plain post-processing does for naturalness.

A face model's NIQE gain only means something against the cheap ways of lowering NIQE: an
unsharp mask and added grain over a smooth restoration. Each control is a base method (the SR
fallback, the model's own L1-only checkpoint) followed by one of them, its setting tuned on the
selection faces (held back from training, never `val/`) for the **lowest NIQE at ≤ 1 dB PSNR
cost** against the base, per reference level. The model must beat the best of them.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

PSNR_COST = 1.0  # dB a control may give up for its NIQE
# Unsharp mask: (Gaussian σ in px at 512², amount).
USM_GRID = tuple((s, a) for s in (0.7, 1.0, 1.5, 2.5) for a in (0.3, 0.6, 1.0, 1.5, 2.5))
# Grain: (σ in 8-bit levels, grain size: the noise's Gaussian blur σ in px, 0 = per pixel).
GRAIN_GRID = tuple((s, g) for s in (1, 2, 3, 4, 6, 8, 11) for g in (0.0, 0.7))
KINDS = {"usm": USM_GRID, "grain": GRAIN_GRID}


def usm(img: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask on each channel: img + amount·(img − blur(img)), clipped to 0…1."""
    blurred = gaussian_filter(img, (sigma, sigma, 0), mode="reflect")
    return np.clip(img + amount * (img - blurred), 0, 1).astype(np.float32)


def grain(img: np.ndarray, sigma: float, size: float, seed: int) -> np.ndarray:
    """Monochrome film-like grain of standard deviation `sigma` (8-bit levels), the same on all
    three channels (luma grain: colored noise reads as sensor noise, not texture)."""
    n = np.random.default_rng(seed).standard_normal(img.shape[:2])
    if size > 0:
        n = gaussian_filter(n, size, mode="wrap")
        n /= n.std() + 1e-12
    return np.clip(img + (sigma / 255.0) * n[..., None], 0, 1).astype(np.float32)


def apply(kind: str, setting: tuple, img: np.ndarray, seed: int) -> np.ndarray:
    if setting is None:
        return img
    if kind == "usm":
        return usm(img, *setting)
    return grain(img, *setting, seed=seed)


def tune(outputs: list[np.ndarray], truths: list[np.ndarray], masks: list[np.ndarray],
         seeds: list[int], kind: str, psnr: Callable, niqe: Callable) -> dict:
    """The setting of `kind` with the lowest mean NIQE whose mean PSNR is within PSNR_COST of the
    base's (`outputs`, the base method's restorations of the selection faces); every setting's
    means are kept for the report. No setting within the cost: the base itself (None)."""
    base_psnr = float(np.mean([psnr(o, t, m) for o, t, m in zip(outputs, truths, masks)]))
    base_niqe = float(np.mean([niqe(o) for o in outputs]))
    rows = []
    for setting in KINDS[kind]:
        outs = [apply(kind, setting, o, s) for o, s in zip(outputs, seeds)]
        p = float(np.mean([psnr(o, t, m) for o, t, m in zip(outs, truths, masks)]))
        q = float(np.mean([niqe(o) for o in outs]))
        rows.append({"setting": list(setting), "psnr": p, "niqe": q})
    ok = [r for r in rows if r["psnr"] >= base_psnr - PSNR_COST and math.isfinite(r["niqe"])]
    best = min(ok, key=lambda r: r["niqe"]) if ok else None
    return {"kind": kind, "base_psnr": base_psnr, "base_niqe": base_niqe,
            "setting": None if best is None else best["setting"],
            "psnr": base_psnr if best is None else best["psnr"],
            "niqe": base_niqe if best is None else best["niqe"], "grid": rows}


def describe(kind: str, setting) -> str:
    if setting is None:
        return "none within the cost"
    if kind == "usm":
        return f"unsharp σ {setting[0]:g} px, amount {setting[1]:g}"
    return f"grain σ {setting[0]:g} levels" + (f", size {setting[1]:g} px" if setting[1] else ", per pixel")

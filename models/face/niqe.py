"""NIQE (Mittal, Soundararajan & Bovik, "Making a 'Completely Blind' Image Quality Analyzer",
IEEE SPL 2013) as BasicSR computes it (`basicsr/metrics/niqe.py`, `calculate_niqe(img,
crop_border=0, input_order='HWC', convert_to='y')`), ported to numpy so that neither scipy nor
OpenCV is needed. Lower is more natural; no reference image is used.

The steps, as BasicSR takes them:
  1. the 8-bit image → Y of BT.601 (16…235, float32, MATLAB's `rgb2ycbcr`), rounded;
  2. cropped to whole 96×96 blocks;
  3. at two scales (the second one a MATLAB-style antialiased bicubic `imresize` by ½):
     MSCN coefficients with the 7×7 Gaussian window (edges replicated, scipy's
     `convolve(..., mode='nearest')`), 18 AGGD features per block (96² at scale 1, 48² at 2);
  4. a Gaussian fitted to the blocks' 36 features (nan-mean; covariance of the rows without a
     nan) and its distance to the pristine model (`niqe_pris_params.npz`).

The dtypes follow BasicSR's (float32 where it works in float32), so that scores agree with it
to a few 1e-4.
"""
from __future__ import annotations

import math
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import NIQE_PARAMS  # noqa: E402

BLOCK = 96


@lru_cache(maxsize=1)
def pristine() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.load(NIQE_PARAMS)
    return p["mu_pris_param"], p["cov_pris_param"], p["gaussian_window"]


# ------------------------------------------------------------------ MATLAB imresize (bicubic)

def cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))).astype(x.dtype)


def weights_indices(in_len: int, out_len: int, scale: float, antialiasing: bool = True):
    """BasicSR's `calculate_weights_indices` (float32, as its torch original): per output pixel
    the taps' weights and the first tap's index into the symmetrically padded input."""
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel_width = kernel_width / scale
    x = np.linspace(1, out_len, out_len, dtype=np.float32)
    u = (x / np.float32(scale) + np.float32(0.5 * (1 - 1 / scale))).astype(np.float32)
    left = np.floor(u - np.float32(kernel_width / 2))
    p = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(p, dtype=np.float32)[None, :]
    distance = u[:, None] - indices
    if scale < 1 and antialiasing:
        weights = np.float32(scale) * cubic(distance * np.float32(scale))
    else:
        weights = cubic(distance)
    weights = (weights / weights.sum(1, keepdims=True)).astype(np.float32)
    # Drop the first / last tap where it is zero for some output pixel (as BasicSR does).
    zeros = (weights == 0).sum(0)
    if zeros[0] != 0:
        indices, weights = indices[:, 1:p - 1], weights[:, 1:p - 1]
    if zeros[-1] != 0:
        indices, weights = indices[:, 0:p - 2], weights[:, 0:p - 2]
    sym_s = int(-indices.min() + 1)
    sym_e = int(indices.max() - in_len)
    indices = (indices + sym_s - 1).astype(np.int64)
    return weights, indices, sym_s, sym_e


def _resize_axis0(img: np.ndarray, out_len: int, scale: float, antialiasing: bool) -> np.ndarray:
    in_len = img.shape[0]
    w, idx, sym_s, sym_e = weights_indices(in_len, out_len, scale, antialiasing)
    # Symmetric padding (edge pixel repeated), as BasicSR's copies of flipped patches.
    head = img[:sym_s][::-1]
    tail = img[in_len - sym_e:][::-1] if sym_e > 0 else img[:0]
    aug = np.concatenate([head, img, tail], 0)
    taps = aug[idx]  # out × taps × rest
    return np.einsum("ot,ot...->o...", w, taps).astype(np.float32)


def imresize(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """MATLAB's `imresize(img, scale, 'bicubic')` as BasicSR's `matlab_functions.imresize`:
    HxW or HxWxC float in 0…1, output ceil(H·scale)×ceil(W·scale), float32, not rounded."""
    img = np.asarray(img, np.float32)
    h, w = img.shape[:2]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    out = _resize_axis0(img, out_h, scale, antialiasing)
    out = _resize_axis0(np.swapaxes(out, 0, 1), out_w, scale, antialiasing)
    return np.ascontiguousarray(np.swapaxes(out, 0, 1))


# ------------------------------------------------------------------ features

@lru_cache(maxsize=1)
def _gamma_table() -> tuple[np.ndarray, np.ndarray]:
    gam = np.arange(0.2, 10.001, 0.001)  # len = 9801
    g = np.vectorize(math.gamma, otypes=[np.float64])
    rec = np.reciprocal(gam)
    r_gam = np.square(g(rec * 2)) / (g(rec) * g(rec * 3))
    return gam, r_gam


def estimate_aggd_param(block: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit (Eq. 7): alpha, beta_l, beta_r. nan when a side
    of the distribution is empty (BasicSR lets the nan through; nanmean takes care of it)."""
    gam, r_gam = _gamma_table()
    block = block.flatten()
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        left_std = np.sqrt(np.mean(block[block < 0] ** 2))
        right_std = np.sqrt(np.mean(block[block > 0] ** 2))
        gammahat = left_std / right_std
        rhat = (np.mean(np.abs(block))) ** 2 / np.mean(block ** 2)
        rhatnorm = (rhat * (gammahat ** 3 + 1) * (gammahat + 1)) / ((gammahat ** 2 + 1) ** 2)
    alpha = float(gam[np.argmin((r_gam - np.float64(rhatnorm)) ** 2)])
    k = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, float(left_std) * k, float(right_std) * k


def compute_feature(block: np.ndarray) -> list[float]:
    """The 18 features of a block: the MSCN fit, then the fits of the products with the
    horizontal, vertical and both diagonal neighbours (circular, `np.roll`, as BasicSR)."""
    alpha, beta_l, beta_r = estimate_aggd_param(block)
    feat = [alpha, (beta_l + beta_r) / 2]
    for shift in ([0, 1], [1, 0], [1, 1], [1, -1]):
        shifted = np.roll(block, shift, axis=(0, 1))
        alpha, beta_l, beta_r = estimate_aggd_param(block * shifted)
        mean = (beta_r - beta_l) * (math.gamma(2 / alpha) / math.gamma(1 / alpha))  # Eq. 8
        feat.extend([alpha, mean, beta_l, beta_r])
    return feat


def convolve_nearest(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """scipy.ndimage.convolve(img, window, mode='nearest') for an odd window: computed in
    float64, returned in the input's dtype (as scipy does)."""
    kh, kw = window.shape
    rh, rw = kh // 2, kw // 2
    p = np.pad(img.astype(np.float64), ((rh, rh), (rw, rw)), mode="edge")
    h, w = img.shape
    flipped = window[::-1, ::-1].astype(np.float64)
    out = np.zeros((h, w), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += flipped[i, j] * p[i:i + h, j:j + w]
    return out.astype(img.dtype)


def niqe_y(img: np.ndarray, block_h: int = BLOCK, block_w: int = BLOCK) -> float:
    """BasicSR's `niqe(img, mu_pris_param, cov_pris_param, gaussian_window)`: `img` is a Y
    (or gray) image, HxW, 0…255 float32."""
    mu_pris, cov_pris, window = pristine()
    assert img.ndim == 2, "a Y image, HxW"
    h, w = img.shape
    nh, nw = h // block_h, w // block_w
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs at least one {block_h}×{block_w} block, got {h}×{w}")
    img = img[:nh * block_h, :nw * block_w]

    distparam = []
    for scale in (1, 2):
        mu = convolve_nearest(img, window)
        sigma = np.sqrt(np.abs(convolve_nearest(np.square(img), window) - np.square(mu)))
        mscn = (img - mu) / (sigma + 1)
        bh, bw = block_h // scale, block_w // scale
        feats = [compute_feature(mscn[ih * bh:(ih + 1) * bh, iw * bw:(iw + 1) * bw])
                 for iw in range(nw) for ih in range(nh)]
        distparam.append(np.array(feats))
        if scale == 1:
            img = imresize(img / np.float32(255.0), 0.5, antialiasing=True) * np.float32(255.0)

    distparam = np.concatenate(distparam, axis=1)
    complete = distparam[~np.isnan(distparam).any(axis=1)]
    if len(complete) < 2:  # e.g. a flat image: BasicSR fails here (pinv of nan); we say nan
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu_dist = np.nanmean(distparam, axis=0)
    cov_dist = np.cov(complete, rowvar=False)
    invcov = np.linalg.pinv((cov_pris + cov_dist) / 2)
    d = mu_pris - mu_dist
    return float(np.sqrt(np.squeeze(d @ invcov @ d.T)))


def y_channel(rgb_u8: np.ndarray) -> np.ndarray:
    """BasicSR's `to_y_channel` of the BGR image cv2 would read, then `.round()`: float32."""
    bgr = rgb_u8[..., ::-1].astype(np.float32) / np.float32(255.0)
    y = np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0  # bgr2ycbcr(y_only=True), float64
    y = (y / 255.0).astype(np.float32) * np.float32(255.0)
    return y.round()


def niqe(rgb01: np.ndarray) -> float:
    """NIQE of an HxWx3 RGB image in 0…1 (crop_border 0, Y channel). The image is first
    quantised to 8 bits, as the PNG a paper's evaluation reads back would be."""
    rgb = np.asarray(rgb01)
    u8 = rgb if rgb.dtype == np.uint8 else np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return niqe_y(y_channel(u8))


def main(argv: list[str]) -> int:
    from PIL import Image
    if not argv:
        print("usage: python3 models/face/niqe.py IMAGE...", file=sys.stderr)
        return 2
    for path in argv:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        print(f"{niqe(rgb):.4f}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

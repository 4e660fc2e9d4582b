"""What the face tooling shares with the product: YuNet's decoding and the FFHQ alignment,
written to match `src/face/detect.rs` and `src/face/align.rs` step for step (letterbox, score,
NMS, least-squares similarity, bilinear warp with pixel centres at +0.5 and edges replicated),
so that training faces are aligned exactly as inference aligns them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FACES_SRC = SHARED / "data" / "faces"
DEV = SHARED / "data" / "dev"
NIQE_PARAMS = SHARED / "data" / "metrics" / "niqe_pris_params.npz"
MODELS_SRC = SHARED / "models"
# Everything derived from the photos goes here (git-ignored: models/build is).
WORK = REPO / "models" / "build" / "faces"

FFHQ_512 = np.array([
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
], dtype=np.float64)

YUNET_SIZE = 640
STRIDES = (8, 16, 32)
THRESHOLD = 0.7
NMS_IOU = 0.3


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------------ detection

class Detector:
    """YuNet 2023mar through onnxruntime, decoded as the core decodes it."""

    def __init__(self, path: Path | None = None, threads: int = 1):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path or MODELS_SRC / "yunet_2023mar.onnx"), so,
                                         providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.sess.get_outputs()]

    def detect(self, rgb: np.ndarray, threshold: float = THRESHOLD) -> list[dict]:
        """`rgb`: HxWx3 uint8 (or float 0…255). Faces in photo coordinates, strongest first."""
        from PIL import Image
        h, w = rgb.shape[:2]
        factor = max(max(w, h) / YUNET_SIZE, 1.0)
        src = rgb
        if factor > 1.0:
            sw = min(max(round(w / factor), 1), YUNET_SIZE)
            sh = min(max(round(h / factor), 1), YUNET_SIZE)
            src = np.asarray(Image.fromarray(np.asarray(rgb, np.uint8)).resize((sw, sh), Image.LANCZOS))
            factor = w / sw
        x = np.zeros((1, 3, YUNET_SIZE, YUNET_SIZE), np.float32)
        sh_, sw_ = src.shape[:2]
        x[0, :, :sh_, :sw_] = np.asarray(src, np.float32)[..., ::-1].transpose(2, 0, 1)
        outs = dict(zip(self.names, self.sess.run(None, {self.sess.get_inputs()[0].name: x})))
        faces = nms(decode(outs, threshold), NMS_IOU)
        for f in faces:
            f["bbox"] = [v * factor for v in f["bbox"]]
            f["landmarks"] = (np.asarray(f["landmarks"]) * factor).tolist()
        return faces


def decode(outs: dict, threshold: float) -> list[dict]:
    faces = []
    for s in STRIDES:
        cls = outs[f"cls_{s}"].reshape(-1)
        obj = outs[f"obj_{s}"].reshape(-1)
        bbox = outs[f"bbox_{s}"].reshape(-1, 4)
        kps = outs[f"kps_{s}"].reshape(-1, 10)
        cols = YUNET_SIZE // s
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        for i in np.nonzero(score >= threshold)[0]:
            c, r = i % cols, i // cols
            b = bbox[i]
            cx, cy = (c + b[0]) * s, (r + b[1]) * s
            bw, bh = np.exp(b[2]) * s, np.exp(b[3]) * s
            k = kps[i]
            lm = [[(k[2 * j] + c) * s, (k[2 * j + 1] + r) * s] for j in range(5)]
            faces.append({"bbox": [cx - bw / 2, cy - bh / 2, bw, bh], "landmarks": lm,
                          "score": float(score[i])})
    return faces


def iou(a, b) -> float:
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def nms(faces: list[dict], max_iou: float) -> list[dict]:
    kept: list[dict] = []
    for f in sorted(faces, key=lambda f: -f["score"]):
        if all(iou(k["bbox"], f["bbox"]) <= max_iou for k in kept):
            kept.append(f)
    return kept


# ------------------------------------------------------------------ alignment

def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares `dst ≈ S(src)`; returns (a, b, tx, ty) with p' = [a −b; b a]·p + t."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    x, y = (src - ms).T
    u, v = (dst - md).T
    den = max(float((x * x + y * y).sum()), 1e-12)
    a = float((x * u + y * v).sum()) / den
    b = float((x * v - y * u).sum()) / den
    return np.array([a, b, md[0] - (a * ms[0] - b * ms[1]), md[1] - (b * ms[0] + a * ms[1])])


def to_template(landmarks, size: int) -> np.ndarray:
    return fit_similarity(np.asarray(landmarks, np.float64), FFHQ_512 * (size / 512.0))


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    a, b, tx, ty = m
    pts = np.asarray(pts, np.float64)
    return np.stack([a * pts[..., 0] - b * pts[..., 1] + tx, b * pts[..., 0] + a * pts[..., 1] + ty], -1)


def inverse(m: np.ndarray) -> np.ndarray:
    a, b, tx, ty = m
    d = a * a + b * b
    ia, ib = a / d, -b / d
    return np.array([ia, ib, -(ia * tx - ib * ty), -(ib * tx + ia * ty)])


def warp(img: np.ndarray, m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned `size`² crop (float32 0…1, HxWx3) as `align::warp` cuts it, and where each
    crop pixel's source lies inside the photo (bool), for the loss mask."""
    h, w = img.shape[:2]
    img = np.asarray(img, np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    p = apply(inverse(m), np.stack([xs + 0.5, ys + 0.5], -1))
    fx, fy = p[..., 0] - 0.5, p[..., 1] - 0.5
    inside = (fx >= -0.5) & (fx <= w - 0.5) & (fy >= -0.5) & (fy <= h - 0.5)
    x0, y0 = np.floor(fx), np.floor(fy)
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    cx = lambda v: np.clip(v, 0, w - 1)  # noqa: E731
    cy = lambda v: np.clip(v, 0, h - 1)  # noqa: E731
    p00, p10 = img[cy(y0), cx(x0)], img[cy(y0), cx(x0 + 1)]
    p01, p11 = img[cy(y0 + 1), cx(x0)], img[cy(y0 + 1), cx(x0 + 1)]
    top = p00 * (1 - ax) + p10 * ax
    bottom = p01 * (1 - ax) + p11 * ax
    return (top * (1 - ay) + bottom * ay).astype(np.float32), inside


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y in 16…235 from RGB 0…1 (as BasicSR's metrics compute it)."""
    rgb = np.asarray(rgb, np.float64)
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def landmarks(detector: Detector, img: np.ndarray) -> np.ndarray | None:
    """The strongest face's five landmarks on an RGB 0…1 image, or None where YuNet finds none."""
    from face.degrade import to_u8
    faces = detector.detect(to_u8(img))
    return np.asarray(faces[0]["landmarks"], np.float64) if faces else None


def lmd(lm: np.ndarray, lm_gt: np.ndarray) -> float:
    """Landmark distance: the five points' mean distance in % of the ground truth's eye distance."""
    eyes = float(np.linalg.norm(lm_gt[0] - lm_gt[1]))
    return 100.0 * float(np.linalg.norm(lm - lm_gt, axis=1).mean()) / eyes


class PeriodGrid:
    """How strong periodic patterns are in a set of square images, at each of `periods` (issue 29:
    every period the 512² network's strides, upsamplings and shuffle create; `FoldGrid` is the
    256² network's one): their windowed luma spectra are summed, and `ratios()` gives, for each
    period P (in pixels of these `side`² images), the sum at frequency side/P along x and y against
    its 8 neighbours (2 bins away). A photo scores ~1; a visible grid, several times that."""

    def __init__(self, side: int, periods):
        self.side, self.periods, self.sum = side, tuple(periods), 0.0
        self.win = np.outer(np.hanning(side), np.hanning(side))

    def add(self, img: np.ndarray) -> None:
        y = luma(img)
        self.sum = self.sum + np.abs(np.fft.fft2((y - y.mean()) * self.win))

    def ratios(self) -> dict:
        s, n = self.sum, self.side
        out = {}
        for p in self.periods:
            k = n // p
            r = []
            for u, v in ((k, 0), (0, k)):
                nb = [s[(u + du) % n, (v + dv) % n] for du in (-2, 0, 2) for dv in (-2, 0, 2) if du or dv]
                r.append(s[u, v] / np.mean(nb))
            out[p] = float(np.mean(r))
        return out


class FoldGrid(PeriodGrid):
    """How strong a periodic pattern on the face network's 4×4 fold (net.FOLD, PixelShuffle) is in
    a set of square images: `PeriodGrid` at the fold's period, 1/64 of the face's side (4 px of the
    network's 256² output, 8 px once brought to 512²). A photo scores ~1; a visible dot grid over
    the skin, 10× and more."""

    def __init__(self, side: int):
        super().__init__(side, [side // 64])

    def ratio(self) -> float:
        return self.ratios()[self.side // 64]

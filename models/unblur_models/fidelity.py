"""Fidelity of a compressed model against its fp32 original, measured with onnxruntime on dev photos.

Super-resolution and deblurring: PSNR (dB) of the compressed output against the fp32 output, over
all outputs of CROP x CROP crops taken from several photos, both clipped to [0, 1] (CROP is a
multiple of 8, as the deblurring network needs).
Face restoration: PSNR of the compressed output against the fp32 output on every dev cropped face.
Face detection (YuNet): each whole photo letterboxed into 640x640, decoded and NMS'd; boxes of the
two models matched greedily by IoU; mean IoU of matched boxes and the number of unmatched boxes.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

CROP = 96
SR_CROPS_WHOLE = 2        # crops per whole photo
SR_CROPS_FACE = 1         # crops per cropped-face photo
SR_FACE_PHOTOS = 2        # cropped-face photos per dev set
PSNR_CAP_DB = 100.0       # identical outputs report this instead of infinity

YUNET_SIZE = 640
YUNET_STRIDES = (8, 16, 32)
SCORE_THRESHOLD = 0.6
NMS_THRESHOLD = 0.3

PSNR_BAR_DB = 40.0
# a compressed damage detector ships when its masks agree with fp32's on 99.9% of the pixels and
# the damaged pixels overlap by an IoU of 0.9
MASK_AGREE_BAR = 0.999
MASK_IOU_BAR = 0.9
IOU_BAR = 0.95


class FidelityError(Exception):
    pass


def _session(path_or_bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def load_rgb(path: Path) -> np.ndarray:
    """HxWx3 float32 RGB in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        return np.asarray(im, dtype=np.float32) / 255.0


def whole_photos(dev: Path) -> list[Path]:
    return sorted(p for p in Path(dev).glob("*/whole_imgs/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def face_photos(dev: Path) -> list[Path]:
    out = []
    for d in sorted(Path(dev).glob("*/cropped_faces")):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        out.extend(files[:SR_FACE_PHOTOS])
    return out


def dev_fingerprint(dev: Path) -> str:
    """Names and sizes of the photos used, so the report cache notices a changed data set."""
    items = [f"{p.relative_to(dev)}:{p.stat().st_size}" for p in whole_photos(dev) + face_photos(dev)]
    return "%08x" % zlib.crc32("\n".join(items).encode())


def sr_crops(dev: Path) -> list[tuple[str, np.ndarray]]:
    """Deterministic CROP x CROP crops (NCHW float32 RGB [0,1]) from whole photos and cropped faces."""
    dev = Path(dev)
    crops = []
    plan = [(p, SR_CROPS_WHOLE) for p in whole_photos(dev)] + [(p, SR_CROPS_FACE) for p in face_photos(dev)]
    for path, n in plan:
        img = load_rgb(path)
        h, w, _ = img.shape
        if h < CROP or w < CROP:
            continue
        rel = str(path.relative_to(dev))
        rng = np.random.default_rng(zlib.crc32(rel.encode()))
        for k in range(n):
            y = int(rng.integers(0, h - CROP + 1))
            x = int(rng.integers(0, w - CROP + 1))
            c = img[y:y + CROP, x:x + CROP].transpose(2, 0, 1)[None].copy()
            crops.append((f"{rel}@{x},{y}", c))
    return crops


def psnr(mse: float) -> float:
    if mse <= 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(1.0 / mse)))


def sr_outputs(model_path, input_name: str, crops) -> list[np.ndarray]:
    sess = _session(model_path)
    out_name = sess.get_outputs()[0].name
    return [np.clip(sess.run([out_name], {input_name: c})[0], 0.0, 1.0) for _, c in crops]


def compare_sr(ref_outs, test_outs) -> dict:
    se, n, per = 0.0, 0, []
    for a, b in zip(ref_outs, test_outs):
        if a.shape != b.shape:
            raise FidelityError(f"output shape differs: {a.shape} vs {b.shape}")
        d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
        se += float(d.sum())
        n += d.size
        per.append(psnr(float(d.mean())))
    if n == 0:
        raise FidelityError("no SR outputs to compare (no dev photos?)")
    return {"psnr_db": round(psnr(se / n), 2), "psnr_min_db": round(min(per), 2), "crops": len(per)}


# ---------------------------------------------------------------- YuNet

def letterbox_bgr(img_rgb01: np.ndarray, size: int = YUNET_SIZE) -> tuple[np.ndarray, float]:
    """Resize so the longest side is `size`, pad bottom/right with zeros; BGR 0..255 NCHW float32."""
    from PIL import Image

    h, w, _ = img_rgb01.shape
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    im = Image.fromarray(np.clip(img_rgb01 * 255.0 + 0.5, 0, 255).astype(np.uint8)).resize((nw, nh), Image.BILINEAR)
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    canvas[:nh, :nw] = np.asarray(im, dtype=np.float32)
    bgr = canvas[:, :, ::-1]
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None]), s


def yunet_decode(outputs: dict, size: int = YUNET_SIZE, threshold: float = SCORE_THRESHOLD) -> np.ndarray:
    """-> N x 5 array (x0, y0, x1, y1, score) before NMS."""
    boxes = []
    for stride in YUNET_STRIDES:
        cols = size // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0, 1)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score >= threshold)[0]
        row, col = idx // cols, idx % cols
        cx = (col + bbox[idx, 0]) * stride
        cy = (row + bbox[idx, 1]) * stride
        w = np.exp(bbox[idx, 2]) * stride
        h = np.exp(bbox[idx, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score[idx]], axis=1))
    return np.concatenate(boxes, axis=0) if boxes else np.zeros((0, 5), np.float32)


def iou_one_to_many(b: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(b[0], others[:, 0])
    y0 = np.maximum(b[1], others[:, 1])
    x1 = np.minimum(b[2], others[:, 2])
    y1 = np.minimum(b[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda a: np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)  # noqa: E731
    union = area(b) + area(others) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, threshold: float = NMS_THRESHOLD) -> np.ndarray:
    order = np.argsort(-boxes[:, 4], kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        ious = iou_one_to_many(boxes[i], boxes[order[1:]])
        order = order[1:][ious <= threshold]
    return boxes[keep]


def yunet_detect(sess, x: np.ndarray) -> np.ndarray:
    names = [o.name for o in sess.get_outputs()]
    outs = dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))
    return nms(yunet_decode(outs))


def match_boxes(ref: np.ndarray, test: np.ndarray) -> tuple[list[float], int]:
    """Greedy IoU matching; returns matched IoUs and the number of unmatched boxes on both sides."""
    pairs = []
    for i in range(len(ref)):
        if len(test):
            ious = iou_one_to_many(ref[i], test)
            for j in range(len(test)):
                if ious[j] > 0:
                    pairs.append((float(ious[j]), i, j))
    pairs.sort(reverse=True)
    used_r, used_t, matched = set(), set(), []
    for iou, i, j in pairs:
        if i in used_r or j in used_t:
            continue
        used_r.add(i)
        used_t.add(j)
        matched.append(iou)
    unmatched = (len(ref) - len(used_r)) + (len(test) - len(used_t))
    return matched, unmatched


def yunet_inputs(dev: Path) -> list[tuple[str, np.ndarray]]:
    dev = Path(dev)
    return [(str(p.relative_to(dev)), letterbox_bgr(load_rgb(p))[0]) for p in whole_photos(dev)]


def yunet_boxes(model_path, inputs) -> list[np.ndarray]:
    sess = _session(model_path)
    return [yunet_detect(sess, x) for _, x in inputs]


def compare_yunet(ref_boxes, test_boxes) -> dict:
    all_iou, mismatch, faces = [], 0, 0
    for r, t in zip(ref_boxes, test_boxes):
        m, u = match_boxes(r, t)
        all_iou.extend(m)
        mismatch += u
        faces += len(r)
    if faces == 0:
        raise FidelityError("the fp32 detector found no face on any dev photo; IoU is undefined")
    return {"iou": round(float(np.mean(all_iou)) if all_iou else 0.0, 4),
            "count_mismatch": int(mismatch), "faces": int(faces), "photos": len(ref_boxes)}


# ---------------------------------------------------------------- face restoration

def face_inputs(dev: Path, side: int) -> list[tuple[str, np.ndarray]]:
    """Every dev cropped face (aligned 512²) brought to the model's side as the face stage
    feeds it (bilinear), NCHW in −1…1."""
    from PIL import Image

    out = []
    for d in sorted(Path(dev).glob("*/cropped_faces")):
        for p in sorted(q for q in d.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg")):
            with Image.open(p) as im:
                im = im.convert("RGB").resize((side, side), Image.BILINEAR)
            x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
            out.append((str(p.relative_to(dev)), np.ascontiguousarray(x)))
    return out


def face_outputs(model_path, input_name: str, inputs) -> list[np.ndarray]:
    sess = _session(model_path)
    out_name = sess.get_outputs()[0].name
    return [np.clip((sess.run([out_name], {input_name: x})[0] + 1.0) / 2.0, 0.0, 1.0) for _, x in inputs]


def mask_outputs(model_path, input_name: str, crops) -> list[np.ndarray]:
    """The damage detector's mask (logit > 0) on each crop."""
    sess = _session(model_path)
    out_name = sess.get_outputs()[0].name
    return [sess.run([out_name], {input_name: c})[0] > 0 for _, c in crops]


def compare_masks(ref, test) -> dict:
    """How well a compressed detector's masks agree with fp32's: the share of pixels called the
    same, and the IoU of the damaged ones (1 where neither calls any)."""
    same = total = inter = union = 0
    for a, b in zip(ref, test):
        same += int((a == b).sum())
        total += a.size
        inter += int((a & b).sum())
        union += int((a | b).sum())
    if total == 0:
        raise FidelityError("no detector outputs to compare (no dev photos?)")
    return {"agree": round(same / total, 6), "mask_iou": round(inter / union, 4) if union else 1.0,
            "damaged": round(union / total, 6), "crops": len(ref)}


def passes(task: str, metrics: dict) -> bool:
    if task == "face-detection":
        return metrics.get("iou", 0.0) >= IOU_BAR and metrics.get("count_mismatch", 1) == 0
    if task == "damage-detection":
        return metrics.get("agree", 0.0) >= MASK_AGREE_BAR and metrics.get("mask_iou", 0.0) >= MASK_IOU_BAR
    return metrics.get("psnr_db", 0.0) >= PSNR_BAR_DB


def measure(entry: dict, fp32_path: Path, forms: dict, dev: Path) -> dict:
    """forms: {"int8": path, "fp16": path}. Returns {form: metrics}."""
    task = entry["task"]
    if task == "face-detection":
        inputs = yunet_inputs(dev)
        if not inputs:
            raise FidelityError(f"no whole photos under {dev}")
        ref = yunet_boxes(fp32_path, inputs)
        return {f: compare_yunet(ref, yunet_boxes(p, inputs)) for f, p in forms.items()}
    if task in ("super-resolution", "deblur"):
        crops = sr_crops(dev)
        if not crops:
            raise FidelityError(f"no photos to crop under {dev}")
        name = entry["input"]["name"]
        ref = sr_outputs(fp32_path, name, crops)
        return {f: compare_sr(ref, sr_outputs(p, name, crops)) for f, p in forms.items()}
    if task == "damage-detection":
        crops = sr_crops(dev)
        if not crops:
            raise FidelityError(f"no photos to crop under {dev}")
        name = entry["input"]["name"]
        ref = mask_outputs(fp32_path, name, crops)
        return {f: compare_masks(ref, mask_outputs(p, name, crops)) for f, p in forms.items()}
    if task == "face-restoration":
        inputs = face_inputs(dev, entry["input"]["size"][0])
        if not inputs:
            raise FidelityError(f"no cropped faces under {dev}")
        name = entry["input"]["name"]
        ref = face_outputs(fp32_path, name, inputs)
        return {f: compare_sr(ref, face_outputs(p, name, inputs)) for f, p in forms.items()}
    raise FidelityError(f"no fidelity measure for task {task!r}")

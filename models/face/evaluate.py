"""How well a face model restores faces, next to what the product does without one (issue 29).

Held-out faces: FFHQ's `val/` (400), as `prepare512.py` cached them (`models/build/faces512`):
the 512² template face (bicubic-aligned) and the template pixels the photo covers. Never trained
on, never used to choose anything. Each is degraded at the two reference levels
(`degrade.reference`, seed 2·i for x4, 2·i + 1 for x8) and restored to 512² by every method:

  bicubic      PIL bicubic up to 512;
  sr-fallback  what the face stage does without a face model (src/face/restore.rs): the face
               brought to its own resolution in steps of 32 (c = clamp(round(s/32)·32, 32, 256),
               bilinear), realesr-general-x4v3 (fp32) → 4c, Lanczos to 512;
  <model>      each --model (ONNX, or a train512 fp16 generator `.pt`): bilinear to the model's
               input side (the face stage's warp of an aligned face), RGB −1…1 in and out, Lanczos
               to 512 if its output is not 512;
  controls     `controls.py`: the SR fallback, and the model's own L1-only checkpoint (--l1-model),
               each followed by the best unsharp mask and by the best grain, tuned on the selection
               faces (held back from training) for the lowest NIQE at ≤ 1 dB PSNR cost.

Every output is rounded to 8 bits (what the product writes) and measured against the ground truth:
  PSNR@512     BT.601 luma (16…235), over the covered template pixels;
  SSIM@512, PSNR@256, SSIM@256   luma, whole image (@256: both PIL-bicubic down);
  NIQE@512     BasicSR's (niqe.py); the ground truth's own, and its 256² round trip, beside;
  LMD          YuNet's five landmarks against the ground truth's, % of its inter-eye distance;
               an output without a detected face is a miss (counted, left out of the mean);
  centre Lap.  the Laplacian variance of the face's centre (the 256² middle, luma) over the
               ground truth's (mean over faces of each): > 1.3 is grain or halos passed off as detail;
  periods      `common.PeriodGrid` at each of the 512² network's periods (2…32 px) over all the
               method's outputs: a photo scores ~1, a visible grid several times that.
Real blurry faces (`../shared/data/dev/codeformer/cropped_faces`, 512², no ground truth): NIQE and
the period measure of the input and of each method (512 → the method → 512; the controls with their
x4 setting).

The tiers of issue 29 are checked per model and level (`tiers`). Out: markdown (printed, `<out>/eval.md`,
and between `<!-- TAG:start/end -->` in each --report file, TAG `--report-tag`), `<out>/eval.json`, 1:1 grids
(`<out>/grid_val.png`: held-out faces, non-commercial photos of real people, stay in the git-ignored
build folder; with --grid-docs the dev faces' grid for the docs).

    python3 models/face/evaluate.py --model face.onnx [--name NAME] [--l1-model L1] [--limit N]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # numpy's share of the CPUs: the work here is small

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from scipy.ndimage import laplace  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face import controls  # noqa: E402
from face.common import DEV, MODELS_SRC, REPO, Detector, PeriodGrid, landmarks, lmd, luma, sha256_file, write_json  # noqa: E402
from face.degrade import LEVELS, reference, resize, to_face_input, to_u8  # noqa: E402
from face.niqe import niqe  # noqa: E402
from face.prepare512 import OUT as FACES512  # noqa: E402

FACE = 512
SMALL = 256
PERIODS = (2, 4, 8, 16, 32)  # net512.PERIODS (not imported: that would need torch)
DEV_FACES = DEV / "codeformer" / "cropped_faces"
SR_MODEL = MODELS_SRC / "realesr-general-x4v3.onnx"
SR = "sr-fallback"
GRID_VAL = 4
GRID_DEV = 4
CENTRE = slice(128, 384)  # the 256² middle of the 512 template: eyes, nose, mouth
EQUAL_PSNR = 0.1  # dB: "at equal PSNR" in the tiers
PROTOCOL = (
    "FFHQ val/ (prepare512 cache, first N by index), 512² bicubic-aligned ground truth; per level "
    "degrade.reference(gt, level, seed=2*i + (0 for x4, 1 for x8)); every method restores to 512², "
    "rounded to 8 bits. PSNR@512 on BT.601 luma (16-235) over the covered template pixels; "
    "SSIM (BasicSR: 11x11 Gaussian 1.5, valid) and PSNR@256 on luma, whole image. NIQE: BasicSR's "
    "(numpy port) at 512. LMD: YuNet's 5 landmarks, mean distance in % of the ground truth's inter-eye "
    "distance; misses left out. Centre Laplacian variance [128:384]² luma, mean over faces, over the "
    "ground truth's. Periods: PeriodGrid at 2-32 px. Controls tuned on prepare512's selection faces "
    "(train/, held back from training) for the lowest NIQE at <= 1 dB PSNR cost. Dev: CodeFormer's "
    "cropped_faces (real, 512²), NIQE and periods.")


# ------------------------------------------------------------------ networks

class Net:
    """An ONNX image network through onnxruntime: HxWx3 float in, HxWx3 float out (first output)."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.path = Path(path)
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = self.sess.get_inputs()[0]
        self.input = inp.name
        self.output = self.sess.get_outputs()[0].name
        side = inp.shape[2] if len(inp.shape) == 4 else None
        self.side = side if isinstance(side, int) else None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)
        y = self.sess.run([self.output], {self.input: x})[0]
        return y[0].transpose(1, 2, 0)


def onnx_of(path: Path, work: Path) -> Path:
    """The model as ONNX: itself, or a train512 fp16 generator (`.pt`) exported once into `work`."""
    path = Path(path)
    if path.suffix == ".onnx":
        return path
    out = work / "onnx" / f"{path.stem}-{sha256_file(path)[:12]}-shipped.onnx"
    if not out.exists():
        import torch
        from face.net512 import export_onnx, new_generator
        # As it ships: a generator trained with noise inputs keeps them, as their fixed map.
        export_onnx(new_generator(torch.load(path, map_location="cpu")).freeze_noise(), out)
    return out


def quantized(img: np.ndarray) -> np.ndarray:
    """A restored face at 512² (Lanczos if it is not), as the 8-bit image the product writes."""
    img = np.clip(img, 0, 1)
    if img.shape[0] != FACE:
        img = resize(img, FACE, Image.LANCZOS)
    return to_u8(img).astype(np.float32) / 255.0


def sr_crop_side(s: int) -> int:
    """`restore::sr_crop_side` for a face spanning `s` pixels (Rust rounds half away from 0)."""
    return min(max(int(math.floor(s / 32 + 0.5)) * 32, 32), 256)


def bicubic(lq: np.ndarray) -> np.ndarray:
    return quantized(resize(lq, FACE, Image.BICUBIC))


class SrFallback:
    def __init__(self, net: Net):
        self.net = net

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        c = sr_crop_side(lq.shape[0])
        x = lq if c == lq.shape[0] else resize(lq, c, Image.BILINEAR)
        return quantized(self.net(np.clip(x, 0, 1)))


class FaceModel:
    def __init__(self, net: Net):
        self.net = net
        self.side = net.side or SMALL

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        x = to_face_input(lq, self.side) * 2 - 1
        return quantized((self.net(x) + 1) / 2)


class Control:
    """A base method's output followed by a tuned unsharp mask or grain (`controls`)."""

    def __init__(self, base: str, kind: str, settings: dict):
        self.base, self.kind, self.settings = base, kind, settings  # settings: level → setting

    def __call__(self, base_out: np.ndarray, level: str, seed: int) -> np.ndarray:
        return quantized(controls.apply(self.kind, self.settings[level], base_out, seed))


# ------------------------------------------------------------------ metrics

def psnr(y: np.ndarray, y_ref: np.ndarray) -> float:
    mse = float(np.mean((y - y_ref) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def psnr_covered(out: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Luma PSNR over the template pixels the photo covers (the rest is replicated edge)."""
    return psnr(luma(out)[mask], luma(gt)[mask])


def _ssim_window() -> np.ndarray:
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))  # cv2.getGaussianKernel(11, 1.5)
    return g / g.sum()


SSIM_WINDOW = _ssim_window()


def filter_valid(img: np.ndarray) -> np.ndarray:
    """The 11×11 Gaussian filter, valid part only (BasicSR: `filter2D(...)[5:-5, 5:-5]`)."""
    k = SSIM_WINDOW
    n = len(k)
    h, w = img.shape
    rows = sum(k[i] * img[i:h - n + 1 + i] for i in range(n))
    return sum(k[j] * rows[:, j:w - n + 1 + j] for j in range(n))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """BasicSR's `_ssim` on one channel (0…255 scale, float64)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filter_valid(a), filter_valid(b)
    s11 = filter_valid(a * a) - mu1 ** 2
    s22 = filter_valid(b * b) - mu2 ** 2
    s12 = filter_valid(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def centre_lapvar(img: np.ndarray) -> float:
    return float(laplace(luma(img[CENTRE, CENTRE])).var())


class Truth:
    """A ground-truth face with what every comparison needs of it, computed once."""

    def __init__(self, i: int, img: np.ndarray, mask: np.ndarray, detector: Detector):
        self.i, self.img, self.mask = i, img, mask
        self.lm = landmarks(detector, img)
        self.niqe = niqe(img)
        self.small = np.clip(resize(img, SMALL, Image.BICUBIC), 0, 1)
        self.niqe_via256 = niqe(quantized(self.small))  # a perfect 256² model
        self.lapvar = centre_lapvar(img)
        self.y, self.y_small = luma(img), luma(self.small)


def measure(out: np.ndarray, gt: Truth, detector: Detector) -> dict:
    small = np.clip(resize(out, SMALL, Image.BICUBIC), 0, 1)
    y, y_small = luma(out), luma(small)
    m = {"psnr512": psnr(y[gt.mask], gt.y[gt.mask]), "ssim512": ssim(y, gt.y),
         "psnr256": psnr(y_small, gt.y_small), "ssim256": ssim(y_small, gt.y_small),
         "niqe512": niqe(out), "lapvar": centre_lapvar(out), "lmd": None, "lmd_miss": False}
    if gt.lm is not None:
        lm = landmarks(detector, out)
        if lm is None:
            m["lmd_miss"] = True
        else:
            m["lmd"] = lmd(lm, gt.lm)
    return m


# ------------------------------------------------------------------ data

class Faces:
    """The prepare512 cache's faces of one split (uint8 memmaps), as float 0…1 and bool masks."""

    def __init__(self, root: Path, split: str):
        self.target = np.load(root / f"{split}_target.npy", mmap_mode="r")
        self.mask = np.load(root / f"{split}_mask.npy", mmap_mode="r")

    def __len__(self):
        return len(self.target)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.target[i], np.float32) / 255.0, np.asarray(self.mask[i], bool)


def seed(i: int, level: str) -> int:
    return 2 * i + (0 if level == "x4" else 1)


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


# ------------------------------------------------------------------ controls

def tune_controls(faces_root: Path, bases: dict, n: int, cache: Path) -> dict:
    """Per base method (name → (callable, identity)), kind and level: the tuned setting on the
    first `n` selection faces (prepare512's `select`, sorted, as train512 holds them back). Kept in
    `cache` by the base's identity, so that a model's evaluation does not tune the fallback again."""
    index = json.loads((faces_root / "index.json").read_text())
    rows = sorted(index["select"])[:n]
    faces = Faces(faces_root, "train")
    store = json.loads(cache.read_text()) if cache.exists() else {}
    out = {}
    for name, (method, ident) in bases.items():
        for lv in LEVELS:
            keys = {kind: f"{ident}|{lv}|{kind}|n{n}|{controls.KINDS[kind]}" for kind in controls.KINDS}
            if not all(k in store for k in keys.values()):
                t0 = time.time()
                truths, masks, outs, seeds = [], [], [], []
                for r in rows:
                    gt, mask = faces.get(r)
                    truths.append(gt), masks.append(mask), seeds.append(seed(r, lv))
                    outs.append(method(reference(gt, lv, seed(r, lv))))
                for kind, key in keys.items():
                    store[key] = controls.tune(outs, truths, masks, seeds, kind, psnr_covered, niqe)
                write_json(cache, store)
                print(f"  tuned the controls of {name} at {lv} on {len(rows)} faces, {time.time() - t0:.0f}s",
                      file=sys.stderr)
            for kind, key in keys.items():
                out[name, kind, lv] = store[key]
    return out


# ------------------------------------------------------------------ evaluation

def evaluate_val(faces_root: Path, methods: dict, ctrl: dict, detector: Detector, limit: int | None):
    """Per level and method the per-face metrics, the period grids, and 1:1 grid tiles."""
    faces = Faces(faces_root, "val")
    rows = range(min(limit or len(faces), len(faces)))
    names = [*methods, *ctrl]
    per = {lv: {name: [] for name in names} for lv in LEVELS}
    grids = {lv: {name: PeriodGrid(FACE, PERIODS) for name in names} for lv in LEVELS}
    gt_grid = PeriodGrid(FACE, PERIODS)  # the same at both levels: summed once
    gt_stats = {"niqe512": [], "niqe512_via256": [], "lapvar": [], "lmd_misses": 0}
    tiles = []
    for i in rows:
        t0 = time.time()
        img, mask = faces.get(i)
        gt = Truth(i, img, mask, detector)
        gt_stats["niqe512"].append(gt.niqe)
        gt_stats["niqe512_via256"].append(gt.niqe_via256)
        gt_stats["lapvar"].append(gt.lapvar)
        gt_stats["lmd_misses"] += gt.lm is None
        gt_grid.add(img)
        row = {}
        for lv in LEVELS:
            lq = reference(img, lv, seed(i, lv))
            outs = {name: method(lq) for name, method in methods.items()}
            for name, c in ctrl.items():
                outs[name] = c(outs[c.base], lv, seed(i, lv))
            for name, out in outs.items():
                per[lv][name].append(measure(out, gt, detector))
                grids[lv][name].add(out)
            if len(tiles) < GRID_VAL:
                row[lv] = {"LQ": nearest(lq, FACE), **outs, "ground truth": img}
        if row:
            tiles.append(row)
        print(f"  val {i} ({i + 1}/{len(rows)}) {time.time() - t0:.1f}s", file=sys.stderr)
    gt_periods = gt_grid.ratios()
    periods = {lv: {**{name: g.ratios() for name, g in t.items()}, "ground truth": gt_periods} for lv, t in grids.items()}
    return per, periods, gt_stats, tiles, len(rows)


def evaluate_dev(methods: dict, ctrl: dict, limit: int | None):
    """NIQE and periods of each method on the real dev faces (512², the low-quality face itself)."""
    paths = sorted(DEV_FACES.glob("*.png"))
    paths = paths[:limit] if limit else paths
    names = ["input", *methods, *ctrl]
    per = {name: [] for name in names}
    grids = {name: PeriodGrid(FACE, PERIODS) for name in names}
    tiles = []
    for k, p in enumerate(paths):
        t0 = time.time()
        lq = load_rgb(p)
        outs = {"input": lq, **{name: method(lq) for name, method in methods.items()}}
        for name, c in ctrl.items():
            outs[name] = c(outs[c.base], "x4", k)
        for name, out in outs.items():
            per[name].append(niqe(out))
            grids[name].add(out)
        if k < GRID_DEV:
            tiles.append(outs)
        print(f"  dev {p.name} ({k + 1}/{len(paths)}) {time.time() - t0:.1f}s", file=sys.stderr)
    return ({name: mean(v) for name, v in per.items()}, {name: g.ratios() for name, g in grids.items()},
            tiles, len(paths))


def mean(values) -> float | None:
    v = [x for x in values if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else None


def summarise(per_face: list[dict], gt_lapvar: float, periods: dict) -> dict:
    s = {k: mean([m[k] for m in per_face]) for k in ("psnr512", "ssim512", "psnr256", "ssim256", "niqe512", "lmd")}
    s["lmd_misses"] = int(sum(m["lmd_miss"] for m in per_face))
    lv = mean([m["lapvar"] for m in per_face])
    s["lapvar_x_gt"] = None if lv is None or not gt_lapvar else lv / gt_lapvar
    s["periods"] = {str(p): r for p, r in periods.items()}
    return s


# ------------------------------------------------------------------ tiers

def tiers(name: str, levels: dict, gt: dict, dev: dict, dev_periods: dict, control_names: list[str]) -> dict:
    """Issue 29's two tiers for one model, each check with its numbers (True = holds)."""
    out = {}
    for lv, table in levels.items():
        m, sr, bic = table[name], table[SR], table["bicubic"]
        ctl = [table[c] for c in control_names]
        best = min(ctl, key=lambda c: c["niqe512"]) if ctl else None
        worst_period = max(m["periods"].values())
        worst_dev_period = max(dev_periods[name].values())
        t1 = {
            "niqe ≤ sr − 1.0": m["niqe512"] <= sr["niqe512"] - 1.0,
            "psnr ≥ sr − 0.5": m["psnr512"] >= sr["psnr512"] - 0.5,
            "lmd ≤ sr": _le(m["lmd"], sr["lmd"]),
            "below the best control's niqe at equal psnr": best is None or (
                m["niqe512"] < best["niqe512"] and m["psnr512"] >= best["psnr512"] - EQUAL_PSNR),
            "periods ≤ 2.0 (val and dev)": worst_period <= 2.0 and worst_dev_period <= 2.0,
        }
        t2 = {
            "niqe ≤ sr − 2.0": m["niqe512"] <= sr["niqe512"] - 2.0,
            "niqe ≤ gt + 2.0": m["niqe512"] <= gt["niqe512"] + 2.0,
            "psnr ≥ max(bicubic, sr) − 1.0": m["psnr512"] >= max(bic["psnr512"], sr["psnr512"]) - 1.0,
            "lmd ≤ sr × 1.05": _le(m["lmd"], None if sr["lmd"] is None else sr["lmd"] * 1.05),
            "every control +1.0 niqe at equal psnr": all(
                m["niqe512"] <= c["niqe512"] - 1.0 and m["psnr512"] >= c["psnr512"] - EQUAL_PSNR for c in ctl),
            "centre Laplacian var ≤ 1.3 × gt": _le(m["lapvar_x_gt"], 1.3),
            "dev niqe ≤ sr − 2.0": _le(dev[name], None if dev[SR] is None else dev[SR] - 2.0),
        }
        out[lv] = {"tier1": t1, "tier2": t2, "tier1_pass": all(t1.values()), "tier2_pass": all(t2.values())}
    return out


def _le(a, b) -> bool:
    return a is not None and b is not None and a <= b


# ------------------------------------------------------------------ report

def fmt(v, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def level_table(lv: str, table: dict, gt: dict, gt_periods: dict, n: int) -> list[str]:
    p = LEVELS[lv]
    per = " | ".join(f"P{q}" for q in PERIODS)
    lines = [f"### {lv}: {p['side']}² face (blur σ {p['sigma']} at 512, bicubic down, "
             f"noise σ {p['noise']}, JPEG {p['jpeg']}), {n} val/ faces", "",
             f"| method | PSNR@512 | SSIM@512 | PSNR@256 | NIQE@512 | LMD % (misses) | centre Lap. ×gt | {per} |",
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(PERIODS)]
    for name, m in table.items():
        ps = " | ".join(fmt(m["periods"][str(q)], 2) for q in PERIODS)
        lines.append(f"| {name} | {fmt(m['psnr512'], 2)} | {fmt(m['ssim512'], 4)} | {fmt(m['psnr256'], 2)} | "
                     f"{fmt(m['niqe512'], 2)} | {fmt(m['lmd'], 2)} ({m['lmd_misses']}) | {fmt(m['lapvar_x_gt'], 2)} | {ps} |")
    ps = " | ".join(fmt(gt_periods[q], 2) for q in PERIODS)
    lines.append(f"| ground truth | – | – | – | {fmt(gt['niqe512'], 2)} | – | 1.00 | {ps} |")
    lines.append(f"| ground truth at 256² and back | – | – | – | {fmt(gt['niqe512_via256'], 2)} | – | – |"
                 + " – |" * len(PERIODS))
    return lines + [""]


FOOTNOTE = (
    "PSNR@512: BT.601 luma over the template pixels the photo covers; SSIM and @256 on the whole "
    "image (@256: both PIL-bicubic down). NIQE: BasicSR's, lower is more natural. LMD: YuNet's "
    "5 landmarks against the ground truth's, % of its inter-eye distance (misses: no face found, "
    "left out). Centre Lap. ×gt: the Laplacian variance of the face's 256² middle over the ground "
    "truth's (> 1.3: grain or halos passed off as detail). P2…P32: the luma spectrum's peak at that "
    "period over its neighbours, over all of a method's outputs (a photo ~1, a visible grid several "
    "times that). `+usm` / `+grain`: control rows (setting below).")


def dev_table(dev: dict, dev_periods: dict, n: int) -> list[str]:
    lines = [f"### Real blurry faces (CodeFormer's cropped_faces, 512²), {n} faces", "",
             "| method | NIQE@512 | worst period ratio |", "|---|---:|---:|"]
    for name, v in dev.items():
        worst = max(dev_periods[name].items(), key=lambda kv: kv[1])
        lines.append(f"| {name} | {fmt(v, 2)} | {worst[1]:.2f} (P{worst[0]}) |")
    return lines + [""]


def controls_table(tuned: dict, n: int) -> list[str]:
    lines = [f"### Control rows: settings tuned on {n} selection faces (lowest NIQE at ≤ "
             f"{controls.PSNR_COST:g} dB PSNR cost)", "",
             "| base | control | level | setting | base PSNR → PSNR | base NIQE → NIQE |", "|---|---|---|---|---|---|"]
    for (base, kind, lv), t in tuned.items():
        lines.append(f"| {base} | {kind} | {lv} | {controls.describe(kind, t['setting'])} | "
                     f"{t['base_psnr']:.2f} → {t['psnr']:.2f} | {t['base_niqe']:.2f} → {t['niqe']:.2f} |")
    return lines + [""]


def tier_table(all_tiers: dict, levels: dict) -> list[str]:
    lines = ["### Issue 29's tiers", "", "| model | level | tier | check | holds |", "|---|---|---|---|---|"]
    mark = {True: "✓", False: "✗"}
    for name, per_level in all_tiers.items():
        for lv, t in per_level.items():
            for tier in ("tier1", "tier2"):
                for check, ok in t[tier].items():
                    lines.append(f"| {name} | {lv} | {tier[-1]} | {check} | {mark[ok]} |")
                lines.append(f"| {name} | {lv} | {tier[-1]} | **all** | {'**pass**' if t[tier + '_pass'] else 'fail'} |")
    return lines + [""]


# ------------------------------------------------------------------ grids

def nearest(img: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(to_u8(img)).resize((side, side), Image.NEAREST), np.float32) / 255.0


def grid(labels: list[str], rows: list[list[np.ndarray]]) -> Image.Image:
    """The 256² middle of each 512² face at 1:1 (eyes, nose, mouth: where paint shows), in rows
    under a label row."""
    tile, label_h = 256, 20
    canvas = Image.new("RGB", (len(labels) * tile, label_h + len(rows) * tile), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=13)
    except (TypeError, OSError):  # an old Pillow, or one without FreeType
        font = ImageFont.load_default()
    for c, label in enumerate(labels):
        draw.text((c * tile + 4, 2), label, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            canvas.paste(Image.fromarray(to_u8(img[CENTRE, CENTRE])), (c * tile, label_h + r * tile))
    return canvas


def val_grid(tiles: list[dict], lv: str) -> Image.Image:
    cols = list(tiles[0][lv].keys())
    return grid([f"{lv} {c}" for c in cols], [[row[lv][c] for c in cols] for row in tiles])


def dev_grid(tiles: list[dict]) -> Image.Image:
    cols = list(tiles[0].keys())
    return grid(cols, [[row[c] for c in cols] for row in tiles])


# ------------------------------------------------------------------ main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=FACES512, help="prepare512.py's output")
    ap.add_argument("--model", type=Path, action="append", default=[], help="a face model (ONNX or fp16 .pt); repeatable")
    ap.add_argument("--name", action="append", default=[], help="the name of the --model at the same place")
    ap.add_argument("--l1-model", type=Path, help="the models' L1-only checkpoint (ONNX or .pt): a base of the control rows")
    ap.add_argument("--exemplar", action="append", default=[], metavar="NAME=BASE:ALPHA",
                    help="a method scored like a model: BASE (a --model's name, l1-only or sr-fallback) followed "
                         "by exemplar.py's borrowed detail ×ALPHA; repeatable")
    ap.add_argument("--exemplar-dict", type=int, default=300, help="exemplar.py's dictionary faces")
    ap.add_argument("--exemplar-sigma", type=float, default=3.0, help="exemplar.py's detail band (Gaussian σ, px)")
    ap.add_argument("--select-n", type=int, default=32, help="selection faces the controls are tuned on")
    ap.add_argument("--limit", type=int, default=None, help="only the first N val/ faces and N dev faces")
    ap.add_argument("--out", type=Path, default=None, help="default <faces>/eval")
    ap.add_argument("--json", type=Path, default=None, help="default <out>/eval.json")
    ap.add_argument("--grid-docs", type=Path, default=None, help="also write the dev faces' grid here")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--report", type=Path, action="append", default=[],
                    help="replace the lines between <!-- TAG:start --> and <!-- TAG:end --> "
                         "in this file with the tables (the README, the model card); repeatable")
    # Not `face-eval`: those markers hold the 256² tables of v0-v5 (600 faces that are gone), which
    # this evaluation cannot write again.
    ap.add_argument("--report-tag", default="face512-eval",
                    help="TAG of --report's markers: one file can hold the tables of several evaluations")
    args = ap.parse_args(argv)
    if len(args.name) > len(args.model):
        ap.error("more --name than --model")
    args.names = args.name + [p.stem for p in args.model[len(args.name):]]
    reserved = {"bicubic", "input", SR, "l1-only"}
    if len(set(args.names)) != len(args.names) or set(args.names) & reserved or any("+" in n for n in args.names):
        ap.error(f"model names must be distinct, without '+', and not {sorted(reserved)}: {args.names}")
    args.exemplars = []
    for spec in args.exemplar:
        name, _, rest = spec.partition("=")
        base, _, alpha = rest.rpartition(":")
        if not (name and base and alpha) or name in args.names + list(reserved) or "+" in name:
            ap.error(f"--exemplar {spec!r}: NAME=BASE:ALPHA with a new NAME")
        args.exemplars.append((name, base, float(alpha)))
    args.out = args.out or args.faces / "eval"
    args.json = args.json or args.out / "eval.json"
    return args


def shown(p: Path) -> str:
    """A path as the JSON records it: relative to the repository (or its parent) when inside."""
    p = Path(p).resolve()
    for base in (REPO, REPO.parent):
        if p.is_relative_to(base):
            return str(p.relative_to(base))
    return str(p)


def update_report(doc: Path, text: str, tag: str) -> None:
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    s = doc.read_text(encoding="utf-8")
    i, j = s.find(start), s.find(end)
    if i < 0 or j < i:
        print(f"{doc} has no {start} … {end} lines: not updated", file=sys.stderr)
        return
    # Two levels down, under the document's own section.
    body = "\n".join("##" + line if line.startswith("#") else line for line in text.splitlines())
    doc.write_text(s[:i + len(start)] + "\n" + body + "\n" + s[j:], encoding="utf-8")
    print(f"updated the face evaluation in {doc}", file=sys.stderr)


def identity(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.faces / "val_target.npy").exists():
        print(f"no {args.faces / 'val_target.npy'}: run `make face-data` (models/face/prepare512.py) first",
              file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    detector = Detector(threads=args.threads)
    sr = SrFallback(Net(SR_MODEL, args.threads))
    paths = {name: onnx_of(p, args.out) for name, p in zip(args.names, args.model)}
    models = {name: FaceModel(Net(p, args.threads)) for name, p in paths.items()}
    bases = {SR: (sr, "sr:" + identity(SR_MODEL))}
    methods = {"bicubic": bicubic, SR: sr, **models}
    if args.l1_model:
        l1_path = onnx_of(args.l1_model, args.out)
        methods["l1-only"] = FaceModel(Net(l1_path, args.threads))
        bases["l1-only"] = (methods["l1-only"], "model:" + identity(l1_path))

    if args.exemplars:
        from face import exemplar
        prior = exemplar.dictionary(args.faces, args.exemplar_dict, args.exemplar_sigma)
        for name, base, alpha in args.exemplars:
            if base not in methods:
                print(f"--exemplar {name}: no method {base!r} (have {sorted(methods)})", file=sys.stderr)
                return 1
            methods[name] = models[name] = exemplar.WithDetail(methods[base], prior, alpha)
        args.names += [name for name, _, _ in args.exemplars]

    t0 = time.time()
    tuned = tune_controls(args.faces, bases, args.select_n, args.out / "controls.json")
    ctrl = {f"{base}+{kind}": Control(base, kind, {lv: tuned[base, kind, lv]["setting"] for lv in LEVELS})
            for base in bases for kind in controls.KINDS}
    t_tune = time.time() - t0
    t0 = time.time()
    per, periods, gt_stats, tiles, n = evaluate_val(args.faces, methods, ctrl, detector, args.limit)
    t_val = (time.time() - t0) / max(n, 1)
    t0 = time.time()
    dev, dev_periods, dev_tiles, n_dev = evaluate_dev(methods, ctrl, args.limit)
    t_dev = (time.time() - t0) / max(n_dev, 1)

    gt = {k: mean(gt_stats[k]) for k in ("niqe512", "niqe512_via256", "lapvar")}
    levels = {lv: {name: summarise(ms, gt["lapvar"], periods[lv][name]) for name, ms in table.items()}
              for lv, table in per.items()}
    all_tiers = {name: tiers(name, levels, gt, dev, dev_periods, list(ctrl)) for name in models}

    md = [f"## Face restoration: {n} held-out faces (FFHQ val/)", ""]
    for lv in LEVELS:
        md += level_table(lv, levels[lv], gt, periods[lv]["ground truth"], n)
    md += [FOOTNOTE + (f" The ground truth of {gt_stats['lmd_misses']} face(s) had no detected face: no LMD."
                       if gt_stats["lmd_misses"] else ""), ""]
    md += dev_table(dev, dev_periods, n_dev)
    md += controls_table(tuned, args.select_n)
    if all_tiers:
        md += tier_table(all_tiers, levels)
    md += [f"Time: controls tuned in {t_tune:.0f} s (cached by the base's weights); {t_val:.1f} s per "
           f"val/ face (both levels, every method and metric), {t_dev:.1f} s per dev face; "
           f"{args.threads} onnxruntime thread(s)."]
    text = "\n".join(md) + "\n"
    print(text)

    (args.out / "eval.md").write_text(text)
    write_json(args.json, {
        "faces": n,
        "levels": levels,
        "ground_truth": {**gt, "lmd_misses": gt_stats["lmd_misses"],
                         "periods": {lv: {str(q): r for q, r in periods[lv]["ground truth"].items()} for lv in LEVELS}},
        "dev_faces": n_dev,
        "dev_niqe": dev,
        "dev_periods": {name: {str(q): r for q, r in ps.items()} for name, ps in dev_periods.items()},
        "controls": {f"{b}+{k}|{lv}": {kk: v for kk, v in t.items() if kk != "grid"} for (b, k, lv), t in tuned.items()},
        "models": {name: {"path": shown(p), "sha256": sha256_file(p)} for name, p in zip(args.names, args.model)},
        "exemplars": {name: {"base": base, "alpha": alpha, "dict": args.exemplar_dict, "sigma": args.exemplar_sigma}
                      for name, base, alpha in args.exemplars},
        "l1_model": None if not args.l1_model else {"path": shown(args.l1_model), "sha256": sha256_file(args.l1_model)},
        "sr_model": {"path": shown(SR_MODEL), "sha256": sha256_file(SR_MODEL)},
        "tiers": all_tiers,
        "protocol": PROTOCOL,
        "seconds_per_face": {"val": round(t_val, 2), "dev": round(t_dev, 2), "threads": args.threads},
    })
    for doc in args.report:
        update_report(doc, text, args.report_tag)
    for lv in LEVELS:
        if tiles:
            val_grid(tiles, lv).save(args.out / f"grid_val_{lv}.png")
    if dev_tiles:
        dev_grid(dev_tiles).save(args.out / "grid_dev.png")
        if args.grid_docs:  # committed: the input, the fallback and the models only; a JPEG keeps it small
            g = dev_grid([{c: row[c] for c in ("input", SR, *models)} for row in dev_tiles])
            args.grid_docs.parent.mkdir(parents=True, exist_ok=True)
            g.save(args.grid_docs, **({"quality": 90} if args.grid_docs.suffix.lower() in (".jpg", ".jpeg") else {}))
    print(f"wrote {args.out / 'eval.md'}, {args.json}, {args.out}/grid_val_*.png"
          + (f", {args.grid_docs}" if args.grid_docs and dev_tiles else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

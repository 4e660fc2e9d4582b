"""How well a face model restores faces, next to what the product does without one.

Held-out faces (`<faces>/heldout.json`, 512² aligned ground truth cut by prepare.py): each one
is degraded at the two reference levels (`degrade.reference`, seeded by the face's id: seed =
2·id for x4, 2·id + 1 for x8) and restored to 512² by every method:

  bicubic      PIL bicubic up to 512;
  sr-fallback  what the face stage does without a face model (src/face/restore.rs): the face
               brought to its own resolution in steps of 32 (c = clamp(round(s/32)·32, 32, 256),
               bilinear), realesr-general-x4v3 (fp32) → 4c, Lanczos to 512;
  <model>      each --model: bilinear to the model's input side (as the face stage's warp),
               RGB −1…1 in and out, Lanczos to 512 if its output is not 512.

Measured against the ground truth, averaged over the faces:
  PSNR, SSIM   on BT.601 luma (16…235, float, `common.luma`), whole image, at 512 and at 256
               (output and ground truth both brought down with PIL bicubic, which antialiases);
               SSIM as BasicSR's `calculate_ssim` (11×11 Gaussian σ 1.5, valid filtering);
  NIQE         no-reference naturalness (niqe.py, BasicSR's), at 512 only: a 256² image holds
               just 2×2 of NIQE's 96² blocks; the ground truth's own NIQE is given too, and that
               of the ground truth at 256² brought back to 512² (what a perfect 256² model scores);
  LMD          YuNet's five landmarks on the output against those on the ground truth: mean
               distance in % of the ground truth's inter-eye distance; an output on which YuNet
               finds no face is a miss (counted, left out of the mean);
  fold grid    `common.FoldGrid` over all the method's outputs: the spectral peak at the face
               network's 4×4 fold against its neighbours (a photo ~1; v4 drew a dot grid there).

Real blurry faces (`../shared/data/dev/codeformer/cropped_faces`, 512², no ground truth): NIQE
of the input, of sr-fallback (512 → 256 → ×4 → 512) and of each model (512 → 256 → model → 512).

Out: markdown tables (printed, and `<out>/eval.md`), `<out>/eval.json`, the bar each model must
clear against sr-fallback, `<out>/grid_heldout.png` (held-out faces are photos of real people
from a non-commercial dataset: they stay in the git-ignored build folder), and with
--grid-docs a grid of the dev faces for the docs.

    python3 models/face/evaluate.py --model face.onnx [--name NAME] [--limit N]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # numpy's share of the CPUs: the work here is tiny

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import DEV, MODELS_SRC, REPO, WORK, Detector, FoldGrid, landmarks, lmd, luma, sha256_file, write_json  # noqa: E402
from face.degrade import LEVELS, reference, resize, to_face_input, to_u8  # noqa: E402
from face.niqe import niqe  # noqa: E402

FACE = 512
SMALL = 256
DEV_FACES = DEV / "codeformer" / "cropped_faces"
SR_MODEL = MODELS_SRC / "realesr-general-x4v3.onnx"
SR = "sr-fallback"
GRID_HELDOUT = 8
GRID_DEV = 6
TILE = 256
# The bar a face model must clear against sr-fallback, at each level.
BAR_NIQE = 2.0   # NIQE@512 at least this much lower
BAR_LMD = 1.05   # LMD at most this factor of sr-fallback's
BAR_PSNR = 1.0   # PSNR@512 at most this much lower
PROTOCOL = (
    "Held-out faces (first N by id), 512² aligned ground truth; per level "
    "degrade.reference(gt, level, seed=2*id + (0 for x4, 1 for x8)); every method restores to "
    "512². PSNR/SSIM on BT.601 luma (float, 16-235), whole image, at 512 and at 256 (both "
    "PIL-bicubic down); SSIM as BasicSR (11x11 Gaussian 1.5, valid). NIQE: BasicSR's (numpy "
    "port), 8-bit image, at 512 only. LMD: YuNet's 5 landmarks, mean distance in % of the "
    "ground truth's inter-eye distance; outputs without a detected face are misses, left out. "
    "Dev NIQE: CodeFormer's cropped_faces (real, 512²) with the same methods at s=512.")


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


def to_face(img: np.ndarray) -> np.ndarray:
    """A restored face at 512² (Lanczos if it is not), clamped to 0…1."""
    img = np.clip(img, 0, 1)
    if img.shape[0] != FACE:
        img = np.clip(resize(img, FACE, Image.LANCZOS), 0, 1)
    return img.astype(np.float32)


def sr_crop_side(s: int) -> int:
    """`restore::sr_crop_side` for a face spanning `s` pixels (Rust rounds half away from 0)."""
    return min(max(int(math.floor(s / 32 + 0.5)) * 32, 32), 256)


def bicubic(lq: np.ndarray) -> np.ndarray:
    return to_face(resize(lq, FACE, Image.BICUBIC))


class SrFallback:
    def __init__(self, net: Net):
        self.net = net

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        c = sr_crop_side(lq.shape[0])
        x = lq if c == lq.shape[0] else resize(lq, c, Image.BILINEAR)
        return to_face(self.net(np.clip(x, 0, 1)))


class FaceModel:
    def __init__(self, net: Net):
        self.net = net
        self.side = net.side or SMALL

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        x = to_face_input(lq, self.side) * 2 - 1
        return to_face((self.net(x) + 1) / 2)


# ------------------------------------------------------------------ metrics

def psnr(y: np.ndarray, y_ref: np.ndarray) -> float:
    mse = float(np.mean((y - y_ref) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


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


class Truth:
    """A ground-truth face with what every comparison needs of it, computed once."""

    def __init__(self, fid: str, img: np.ndarray, lm: np.ndarray | None, niqe512: float,
                 niqe_via256: float | None = None):
        self.id, self.img, self.lm, self.niqe = fid, img, lm, niqe512
        self.small = np.clip(resize(img, SMALL, Image.BICUBIC), 0, 1)
        # A perfect 256² model: the ground truth at 256², brought to 512² as FaceModel's output is.
        self.niqe_via256 = niqe(to_face(self.small)) if niqe_via256 is None else niqe_via256
        self.y, self.y_small = luma(img), luma(self.small)


def measure(out: np.ndarray, gt: Truth, detector: Detector) -> tuple[dict, np.ndarray]:
    """The metrics of one restored face; and its 256² version (for the grid)."""
    small = np.clip(resize(out, SMALL, Image.BICUBIC), 0, 1)
    y, y_small = luma(out), luma(small)
    m = {"psnr512": psnr(y, gt.y), "ssim512": ssim(y, gt.y),
         "psnr256": psnr(y_small, gt.y_small), "ssim256": ssim(y_small, gt.y_small),
         "niqe512": niqe(out), "lmd": None, "lmd_miss": False}
    if gt.lm is not None:
        lm = landmarks(detector, out)
        if lm is None:
            m["lmd_miss"] = True
        else:
            m["lmd"] = lmd(lm, gt.lm)
    return m, small


# ------------------------------------------------------------------ data

def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


class TruthCache:
    """Ground-truth detections and NIQE, kept in `<out>/gt_cache.json` by the PNG's sha256."""

    def __init__(self, path: Path, detector: Detector):
        self.path, self.detector = path, detector
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def get(self, fid: str, png: Path) -> Truth:
        img = load_rgb(png)
        sha = sha256_file(png)
        e = self.data.get(fid)
        if not e or e.get("sha256") != sha:
            lm = landmarks(self.detector, img)
            e = {"sha256": sha, "landmarks": None if lm is None else lm.tolist(), "niqe512": niqe(img)}
            self.data[fid] = e
        lm = None if e["landmarks"] is None else np.asarray(e["landmarks"], np.float64)
        t = Truth(fid, img, lm, e["niqe512"], e.get("niqe512_via256"))
        e["niqe512_via256"] = t.niqe_via256
        return t

    def save(self) -> None:
        write_json(self.path, self.data)


def seed(fid: str, level: str) -> int:
    return int(fid) * 2 + (0 if level == "x4" else 1)


# ------------------------------------------------------------------ evaluation

def eval_heldout(faces_dir: Path, methods: dict, detector: Detector, cache: TruthCache,
                 limit: int | None):
    """Per level and method, the per-face metrics; the ground truths' NIQE; grid tiles."""
    entries = sorted(json.loads((faces_dir / "heldout.json").read_text()), key=lambda e: e["id"])
    entries = entries[:limit] if limit else entries
    per = {lv: {name: [] for name in methods} for lv in LEVELS}
    grids = {lv: {name: FoldGrid(FACE) for name in methods} for lv in LEVELS}
    gt_niqe, gt_misses, tiles = {"niqe512": [], "niqe512_via256": []}, 0, []
    for k, e in enumerate(entries):
        t0 = time.time()
        gt = cache.get(e["id"], faces_dir / "heldout" / f"{e['id']}.png")
        gt_niqe["niqe512"].append(gt.niqe)
        gt_niqe["niqe512_via256"].append(gt.niqe_via256)
        gt_misses += gt.lm is None
        row = {}
        for lv in LEVELS:
            lq = reference(gt.img, lv, seed(e["id"], lv))
            row[lv] = {"LQ": nearest(lq, TILE)}
            for name, method in methods.items():
                out = method(lq)
                m, small = measure(out, gt, detector)
                per[lv][name].append(m)
                grids[lv][name].add(out)
                if name != "bicubic":
                    row[lv][name] = small
            row[lv]["ground truth"] = gt.small
        if k < GRID_HELDOUT:
            tiles.append(row)
        print(f"  held-out {e['id']} ({k + 1}/{len(entries)}) {time.time() - t0:.1f}s", file=sys.stderr)
    fold = {lv: {name: g.ratio() for name, g in t.items()} for lv, t in grids.items()} if entries else {}
    return per, fold, gt_niqe, gt_misses, tiles, len(entries)


def eval_dev(methods: dict, limit: int | None):
    """NIQE of each method on the real dev faces (512², used as the low-quality face itself)."""
    paths = sorted(DEV_FACES.glob("*.png"))
    paths = paths[:limit] if limit else paths
    per = {name: [] for name in methods}
    tiles = []
    for k, p in enumerate(paths):
        t0 = time.time()
        lq = load_rgb(p)
        row = {}
        for name, method in methods.items():
            out = method(lq)
            per[name].append(niqe(out))
            row[name] = np.clip(resize(out, TILE, Image.BICUBIC), 0, 1)
        if k < GRID_DEV:
            tiles.append(row)
        print(f"  dev {p.name} ({k + 1}/{len(paths)}) {time.time() - t0:.1f}s", file=sys.stderr)
    return per, tiles, len(paths)


def mean(values) -> float | None:
    v = [x for x in values if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else None


def summarise(per_face: list[dict]) -> dict:
    s = {k: mean([m[k] for m in per_face]) for k in ("psnr512", "ssim512", "psnr256", "ssim256", "niqe512", "lmd")}
    s["lmd_misses"] = int(sum(m["lmd_miss"] for m in per_face))
    return s


def bar(levels: dict, models: list[str]) -> dict:
    out = {}
    for name in models:
        out[name] = {}
        for lv, table in levels.items():
            m, sr = table[name], table[SR]
            ok = {
                "niqe": _le(m["niqe512"], _add(sr["niqe512"], -BAR_NIQE)),
                "lmd": _le(m["lmd"], None if sr["lmd"] is None else sr["lmd"] * BAR_LMD),
                "psnr": _le(_add(sr["psnr512"], -BAR_PSNR), m["psnr512"]),
            }
            ok["pass"] = all(ok.values())
            out[name][lv] = ok
    return out


def _add(a, b):
    return None if a is None else a + b


def _le(a, b) -> bool:
    return a is not None and b is not None and a <= b


# ------------------------------------------------------------------ report

def fmt(v, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def level_table(lv: str, table: dict, gt_niqe: dict, n: int) -> list[str]:
    p = LEVELS[lv]
    lines = [f"### {lv}: {p['side']}² face (blur σ {p['sigma']} at 512, bicubic down, "
             f"noise σ {p['noise']}, JPEG {p['jpeg']}), {n} faces", "",
             "| method | PSNR@512 | SSIM@512 | PSNR@256 | SSIM@256 | NIQE@512 | LMD % (misses) | fold grid |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in table.items():
        lines.append(f"| {name} | {fmt(m['psnr512'], 2)} | {fmt(m['ssim512'], 4)} | "
                     f"{fmt(m['psnr256'], 2)} | {fmt(m['ssim256'], 4)} | {fmt(m['niqe512'], 2)} | "
                     f"{fmt(m['lmd'], 2)} ({m['lmd_misses']}) | {fmt(m['fold_grid'], 1)}× |")
    lines.append(f"| ground truth | – | – | – | – | {fmt(gt_niqe['niqe512'], 2)} | – | – |")
    lines.append(f"| ground truth at 256² (a perfect 256² model) | – | – | – | – | "
                 f"{fmt(gt_niqe['niqe512_via256'], 2)} | – | – |")
    return lines + [""]


FOOTNOTE = (
    "PSNR/SSIM: BT.601 luma, whole image; @256: output and ground truth both PIL-bicubic down "
    "to 256². NIQE (BasicSR's; lower is more natural) at 512 only: a 256² image holds only 2×2 "
    "of its 96² blocks. LMD: mean distance of YuNet's 5 landmarks from the ground truth's, in % "
    "of its inter-eye distance; misses: outputs on which YuNet found no face (left out). "
    "Fold grid: the luma spectrum's peak at the face network's 4×4 fold (8 px at 512²) against "
    "its 8 neighbours, over all the method's outputs (a photo scores ~1; a visible dot grid 10× and more). "
    "Ground truth at 256²: the ground truth brought down to 256² and back to 512² as a 256² "
    "model's output is (Lanczos), the NIQE a model that restored every face perfectly at its "
    "own resolution would score.")


def dev_table(dev: dict, n: int) -> list[str]:
    lines = [f"### Real blurry faces (CodeFormer's cropped_faces, 512²), {n} faces", "",
             "| method | NIQE@512 |", "|---|---:|"]
    lines += [f"| {name} | {fmt(v, 2)} |" for name, v in dev.items()]
    return lines + [""]


def bar_table(bars: dict, levels: dict) -> list[str]:
    lines = [f"### Bar against {SR} (NIQE ≤ sr − {BAR_NIQE}, LMD ≤ sr × {BAR_LMD}, "
             f"PSNR@512 ≥ sr − {BAR_PSNR})", "",
             "| model | level | NIQE@512 | LMD % | PSNR@512 | pass |", "|---|---|---|---|---|---|"]
    mark = {True: "✓", False: "✗"}
    for name, per_level in bars.items():
        for lv, ok in per_level.items():
            m, sr = levels[lv][name], levels[lv][SR]
            lmd_lim = None if sr["lmd"] is None else sr["lmd"] * BAR_LMD
            lines.append(
                f"| {name} | {lv} | {fmt(m['niqe512'], 2)} ≤ {fmt(_add(sr['niqe512'], -BAR_NIQE), 2)} "
                f"{mark[ok['niqe']]} | {fmt(m['lmd'], 2)} ≤ {fmt(lmd_lim, 2)} {mark[ok['lmd']]} | "
                f"{fmt(m['psnr512'], 2)} ≥ {fmt(_add(sr['psnr512'], -BAR_PSNR), 2)} {mark[ok['psnr']]} | "
                f"{'**pass**' if ok['pass'] else 'fail'} |")
    return lines + [""]


# ------------------------------------------------------------------ grids

def nearest(img: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(to_u8(img)).resize((side, side), Image.NEAREST), np.float32) / 255.0


def grid(labels: list[str], rows: list[list[np.ndarray]], gap_after: int | None = None) -> Image.Image:
    """Tiles (TILE², float RGB) in rows under a label row; a gap after column `gap_after`."""
    label_h, gap = 20, 8
    cols = len(labels)
    xs = [c * TILE + (gap if gap_after is not None and c > gap_after else 0) for c in range(cols)]
    width = xs[-1] + TILE
    canvas = Image.new("RGB", (width, label_h + len(rows) * TILE), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=13)
    except (TypeError, OSError):  # an old Pillow, or one without FreeType
        font = ImageFont.load_default()
    for x, label in zip(xs, labels):
        draw.text((x + 4, 2), label, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        for x, tile in zip(xs, row):
            canvas.paste(Image.fromarray(to_u8(tile)), (x, label_h + r * TILE))
    return canvas


def heldout_grid(tiles: list[dict]) -> Image.Image:
    cols = list(tiles[0]["x4"].keys())
    labels = [f"{lv} {c}" for lv in LEVELS for c in cols]
    rows = [[row[lv][c] for lv in LEVELS for c in cols] for row in tiles]
    return grid(labels, rows, gap_after=len(cols) - 1)


def dev_grid(tiles: list[dict]) -> Image.Image:
    labels = list(tiles[0].keys())
    return grid(labels, [[row[c] for c in labels] for row in tiles])


# ------------------------------------------------------------------ main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=WORK, help="prepare.py's output (heldout.json, heldout/)")
    ap.add_argument("--model", type=Path, action="append", default=[], help="a face model (ONNX); repeatable")
    ap.add_argument("--name", action="append", default=[], help="the name of the --model at the same place")
    ap.add_argument("--limit", type=int, default=None, help="only the first N held-out faces and N dev faces")
    ap.add_argument("--out", type=Path, default=None, help="default <faces>/eval")
    ap.add_argument("--json", type=Path, default=None, help="default <out>/eval.json")
    ap.add_argument("--grid-docs", type=Path, default=None, help="also write the dev faces' grid here")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--report", type=Path, action="append", default=[],
                    help="replace the lines between <!-- face-eval:start --> and <!-- face-eval:end --> "
                         "in this file with the tables (the README, the model card); repeatable")
    args = ap.parse_args(argv)
    if len(args.name) > len(args.model):
        ap.error("more --name than --model")
    args.names = args.name + [p.stem for p in args.model[len(args.name):]]
    if len(set(args.names)) != len(args.names) or set(args.names) & {"bicubic", "input", SR}:
        ap.error(f"model names must be distinct and not bicubic/input/{SR}: {args.names}")
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


def update_report(doc: Path, text: str) -> None:
    start, end = "<!-- face-eval:start -->", "<!-- face-eval:end -->"
    s = doc.read_text(encoding="utf-8")
    i, j = s.find(start), s.find(end)
    if i < 0 or j < i:
        print(f"{doc} has no {start} … {end} lines: not updated", file=sys.stderr)
        return
    # Two levels down, under the document's own section.
    body = "\n".join("##" + line if line.startswith("#") else line for line in text.splitlines())
    new = s[:i + len(start)] + "\n" + body + "\n" + s[j:]
    doc.write_text(new, encoding="utf-8")
    print(f"updated the face evaluation in {doc}", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.faces / "heldout.json").exists():
        print(f"no {args.faces / 'heldout.json'}: run models/face/prepare.py first", file=sys.stderr)
        return 1
    detector = Detector(threads=args.threads)
    sr = SrFallback(Net(SR_MODEL, args.threads))
    models = {name: FaceModel(Net(path, args.threads)) for name, path in zip(args.names, args.model)}
    cache = TruthCache(args.out / "gt_cache.json", detector)

    t0 = time.time()
    per, fold, gt_niqe, gt_misses, tiles, n = eval_heldout(
        args.faces, {"bicubic": bicubic, SR: sr, **models}, detector, cache, args.limit)
    cache.save()
    t_heldout = (time.time() - t0) / max(n, 1)
    t1 = time.time()
    dev_per, dev_tiles, n_dev = eval_dev({"input": lambda x: x, SR: sr, **models}, args.limit)
    t_dev = (time.time() - t1) / max(n_dev, 1)

    levels = {lv: {name: {**summarise(ms), "fold_grid": fold.get(lv, {}).get(name)} for name, ms in table.items()}
              for lv, table in per.items()}
    dev = {name: mean(v) for name, v in dev_per.items()}
    bars = bar(levels, args.names)
    gt_mean = {k: mean(v) for k, v in gt_niqe.items()}

    md = [f"## Face restoration: {n} held-out faces", ""]
    for lv in LEVELS:
        md += level_table(lv, levels[lv], gt_mean, n)
    md += [FOOTNOTE + (f" The ground truth of {gt_misses} face(s) had no detected face: no LMD." if gt_misses else ""), ""]
    md += dev_table(dev, n_dev)
    if bars:
        md += bar_table(bars, levels)
    md += [f"Time: {t_heldout:.1f} s per held-out face (both levels, all methods, metrics), "
           f"{t_dev:.1f} s per dev face; {args.threads} thread(s)."]
    text = "\n".join(md) + "\n"
    print(text)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.md").write_text(text)
    write_json(args.json, {
        "faces": n,
        "levels": levels,
        "ground_truth_niqe": {**gt_mean, "lmd_gt_misses": gt_misses},
        "dev_faces": n_dev,
        "dev_niqe": dev,
        "models": {name: {"path": shown(p), "sha256": sha256_file(p)} for name, p in zip(args.names, args.model)},
        "sr_model": {"path": shown(SR_MODEL), "sha256": sha256_file(SR_MODEL)},
        "bar": bars,
        "protocol": PROTOCOL,
        "seconds_per_face": {"heldout": round(t_heldout, 2), "dev": round(t_dev, 2), "threads": args.threads},
    })
    for doc in args.report:
        update_report(doc, text)
    if tiles:
        heldout_grid(tiles).save(args.out / "grid_heldout.png")
    if dev_tiles:
        g = dev_grid(dev_tiles)
        g.save(args.out / "grid_dev.png")
        if args.grid_docs:  # committed: a JPEG keeps it small
            args.grid_docs.parent.mkdir(parents=True, exist_ok=True)
            g.save(args.grid_docs, **({"quality": 88} if args.grid_docs.suffix.lower() in (".jpg", ".jpeg") else {}))
    print(f"wrote {args.out / 'eval.md'}, {args.json}, {args.out / 'grid_heldout.png'}"
          + (f", {args.grid_docs}" if args.grid_docs and dev_tiles else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

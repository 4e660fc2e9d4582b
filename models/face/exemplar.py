"""A face prior without training (issue 29, an experiment): detail copied from real faces.

The CPU-trained 512² networks give grain, not detail. This asks whether a nonparametric prior —
the local step of classic face hallucination (Liu, Shum & Freeman 2007; Freeman's example-based
super-resolution) — does better: the template aligns every face, so each 16-px patch of a smooth
restoration looks for its nearest low-frequency neighbour among FFHQ training faces *at the same
place* (± `radius`·4 px), and takes that face's high frequencies there (the luma above a Gaussian
of `sigma` px), overlap-added with a Hann window and scaled by `alpha`.

It is measured against the controls of `evaluate.py` on the selection faces (held back from
training; never `val/`): the same base restoration followed by the tuned-style grain, at each
setting, in one run. The dictionary's faces are drawn from `train/` outside the selection.

    python3 models/face/exemplar.py [--base l1|run13|sr] [--dict 300] [--sigma 3] [--alpha 1 1.5 2]
                                    [--faces 8] [--keys gt|restored] [--out models/build/faces512/exemplar]

Writes `<out>/exemplar.json` (PSNR@512 over the covered pixels and NIQE@512, per method and level)
and `<out>/<tag>_<level>.png` (base / transfer at the largest alpha / grain / ground truth, the
first face: a real person, so the build folder only).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face import common, controls  # noqa: E402
from face import evaluate as ev  # noqa: E402
from face.degrade import LEVELS, reference  # noqa: E402
from face.niqe import niqe  # noqa: E402

CANDIDATES = Path(__file__).resolve().parents[1] / "unblur-face" / "candidates"
BASES = {"l1": CANDIDATES / "unblur-face-512-l1.fp16.pt",
         "run13": CANDIDATES / "unblur-face-512-run13-noise-step970.fp16.pt"}
SIDE, LOW = 512, 128  # the template, and the side the neighbours are compared at (÷4)
WINDOW = 8            # compared window at LOW (32 px of the template)
STEP = 2              # patch step at LOW (8 px): 16-px patches, each pixel in four
PATCH = 16


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma in 0…1 (`common.luma`'s, without its 16…235 studio range)."""
    return ((common.luma(img) - 16.0) / 219.0).astype(np.float32)


class ExemplarPrior:
    """The dictionary: per face, its low frequencies at LOW² (the keys) and its luma above a
    Gaussian of `sigma` px at 512² (the values)."""

    def __init__(self, keys: np.ndarray, values: np.ndarray, sigma: float, radius: int):
        self.sigma, self.radius = sigma, radius
        self.pad = WINDOW // 2 + radius
        p = self.pad
        self.keys = np.pad(keys, ((0, 0), (p, p), (p, p)), mode="edge")
        self.values = np.pad(values, ((0, 0), (4 * p, 4 * p), (4 * p, 4 * p)), mode="edge")
        h = np.hanning(PATCH + 2)[1:-1]
        self.window = np.outer(h, h).astype(np.float32)

    @staticmethod
    def low(y: np.ndarray, sigma: float) -> np.ndarray:
        return gaussian_filter(y, sigma).reshape(LOW, 4, LOW, 4).mean((1, 3))

    def detail(self, base: np.ndarray) -> np.ndarray:
        """The borrowed high frequencies (luma, 512²) for a restored face `base` (512²×3, 0…1)."""
        p, r = self.pad, self.radius
        q = np.pad(self.low(luma(base), self.sigma), p, mode="edge")
        cells = np.arange(0, LOW, STEP)
        # A cell's window starts WINDOW/2 - 1 above and left of it (in the padded grid: + p).
        start = cells + p - WINDOW // 2 + 1
        best = np.full((len(cells), len(cells)), np.inf, np.float32)
        pick = np.zeros((3, len(cells), len(cells)), np.int64)  # face, dy, dx
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                # Every face's key shifted by (dy, dx) against the query, all cells at once: the
                # window sums of the difference and of its square from integral images give the
                # mean-removed squared distance (a patch's brightness is the base's, not the donor's).
                k = self.keys[:, max(dy, 0):, max(dx, 0):]
                k = k[:, :k.shape[1] + min(dy, 0) or None, :k.shape[2] + min(dx, 0) or None]
                qq = q[max(-dy, 0):q.shape[0] - max(dy, 0), max(-dx, 0):q.shape[1] - max(dx, 0)]
                diff = k - qq
                ys, xs = start - max(-dy, 0), start - max(-dx, 0)
                d = self._window_sums(diff ** 2, ys, xs) - self._window_sums(diff, ys, xs) ** 2 / WINDOW ** 2
                j = d.argmin(0)
                dmin = np.take_along_axis(d, j[None], 0)[0]
                better = dmin < best
                best[better] = dmin[better]
                pick[0][better], pick[1][better], pick[2][better] = j[better], dy, dx
        acc = np.zeros(self.values.shape[1:], np.float32)
        wsum = np.zeros_like(acc)
        for a, cy in enumerate(cells):
            for b, cx in enumerate(cells):
                k, dy, dx = pick[:, a, b]
                oy, ox = 4 * (cy + p) - 4, 4 * (cx + p) - 4
                acc[oy:oy + PATCH, ox:ox + PATCH] += self.window * self.values[
                    k, oy + 4 * dy:oy + 4 * dy + PATCH, ox + 4 * dx:ox + 4 * dx + PATCH]
                wsum[oy:oy + PATCH, ox:ox + PATCH] += self.window
        s = 4 * p
        return (acc / np.maximum(wsum, 1e-6))[s:s + SIDE, s:s + SIDE]

    @staticmethod
    def _window_sums(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Sums of `a` (faces × H × W) over the WINDOW² windows starting at rows `ys`, columns `xs`."""
        c = np.zeros((a.shape[0], a.shape[1] + 1, a.shape[2] + 1), np.float64)
        c[:, 1:, 1:] = a.cumsum(1).cumsum(2)
        y0, x0 = ys[:, None], xs[None, :]
        return (c[:, y0 + WINDOW, x0 + WINDOW] - c[:, y0, x0 + WINDOW] - c[:, y0 + WINDOW, x0] + c[:, y0, x0]).astype(np.float32)


def build(faces: ev.Faces, rows: np.ndarray, sigma: float, radius: int, keys: str, base) -> ExemplarPrior:
    k = np.zeros((len(rows), LOW, LOW), np.float32)
    v = np.zeros((len(rows), SIDE, SIDE), np.float16)
    for j, r in enumerate(rows):
        gt, _ = faces.get(int(r))
        y = luma(gt)
        v[j] = y - gaussian_filter(y, sigma)
        # keys "restored": the base's own output on a degraded copy (alternating levels), so that a
        # key is what a query looks like; "gt": the ground truth's low frequencies.
        src = y if keys == "gt" else luma(base(reference(gt, tuple(LEVELS)[j % 2], 100_000 + int(r))))
        k[j] = ExemplarPrior.low(src, sigma)
    return ExemplarPrior(k, v, sigma, radius)


def dictionary_rows(faces_root: Path, n: int) -> np.ndarray:
    """`n` train/ faces outside the selection faces (which choose and tune), seeded."""
    index = json.loads((faces_root / "index.json").read_text())
    pool = np.setdiff1d(np.arange(len(index["train"])), np.array(sorted(index["select"])))
    return np.sort(np.random.default_rng(0).choice(pool, n, replace=False))


def dictionary(faces_root: Path, n: int, sigma: float, radius: int = 2) -> ExemplarPrior:
    """The prior with ground-truth keys, as `evaluate.py --exemplar` scores it."""
    return build(ev.Faces(faces_root, "train"), dictionary_rows(faces_root, n), sigma, radius, "gt", None)


class WithDetail:
    """A restoration method followed by the borrowed detail ×`alpha`, rounded as the product writes."""

    def __init__(self, base, prior: ExemplarPrior, alpha: float):
        self.base, self.prior, self.alpha = base, prior, alpha

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        b = self.base(lq)
        return ev.quantized(b + self.alpha * self.prior.detail(b)[..., None])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", choices=("l1", "run13", "sr"), default="l1")
    ap.add_argument("--dict", type=int, default=300, help="dictionary faces (train/, outside the selection)")
    ap.add_argument("--sigma", type=float, default=3.0)
    ap.add_argument("--radius", type=int, default=2, help="search radius at 128² (×4 px at 512²)")
    ap.add_argument("--alpha", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    ap.add_argument("--grain", type=float, nargs="+", default=[4, 6, 8, 11], help="grain σ (levels), size 0.7")
    ap.add_argument("--faces", type=int, default=8, help="selection faces measured")
    ap.add_argument("--keys", choices=("gt", "restored"), default="gt")
    ap.add_argument("--out", type=Path, default=ev.FACES512 / "exemplar")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    base = (ev.SrFallback(ev.Net(ev.SR_MODEL, 1)) if a.base == "sr"
            else ev.FaceModel(ev.Net(ev.onnx_of(BASES[a.base], ev.FACES512 / "eval"), 1)))
    select = sorted(json.loads((ev.FACES512 / "index.json").read_text())["select"])
    faces = ev.Faces(ev.FACES512, "train")
    rows = dictionary_rows(ev.FACES512, a.dict)
    t0 = time.time()
    prior = build(faces, rows, a.sigma, a.radius, a.keys, base)
    print(f"dictionary: {a.dict} faces, {time.time() - t0:.0f} s", file=sys.stderr)
    tag = f"{a.base}-{a.keys}-d{a.dict}-s{a.sigma:g}-r{a.radius}"
    result = {"tag": tag, "args": {k: str(v) for k, v in vars(a).items()}, "levels": {}}
    for lv in LEVELS:
        scores: dict[str, list] = {}
        t_detail = []
        for n, r in enumerate(select[:a.faces]):
            gt, mask = faces.get(r)
            s = ev.seed(r, lv)
            b = base(reference(gt, lv, s))
            t1 = time.time()
            hf = prior.detail(b)[..., None]
            t_detail.append(time.time() - t1)
            outs = {"base": b, **{f"+detail ×{al:g}": ev.quantized(b + al * hf) for al in a.alpha},
                    **{f"+grain {g:g}/0.7": ev.quantized(controls.grain(b, g, 0.7, s)) for g in a.grain}}
            for name, o in outs.items():
                scores.setdefault(name, []).append((ev.psnr_covered(o, gt, mask), niqe(o)))
            scores.setdefault("ground truth", []).append((float("nan"), niqe(gt)))
            if n == 0:
                pick = [b, outs[f"+detail ×{max(a.alpha):g}"], outs[f"+grain {a.grain[1]:g}/0.7"], gt]
                Image.fromarray(np.concatenate([ev.to_u8(x) for x in pick], 1)).save(a.out / f"{tag}_{lv}.png")
        table = {name: {"psnr512": float(np.mean([v[0] for v in vs])), "niqe512": float(np.mean([v[1] for v in vs]))}
                 for name, vs in scores.items()}
        result["levels"][lv] = table
        result["seconds_per_face"] = round(float(np.mean(t_detail)), 2)
        print(f"\n{tag}, {lv}, {a.faces} selection faces ({np.mean(t_detail):.1f} s per face for the detail)")
        print("| method | PSNR@512 | NIQE@512 |\n|---|---:|---:|")
        for name, m in table.items():
            print(f"| {name} | {m['psnr512']:.2f} | {m['niqe512']:.2f} |")
    runs = json.loads((a.out / "exemplar.json").read_text()) if (a.out / "exemplar.json").exists() else {}
    runs[tag] = result
    (a.out / "exemplar.json").write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The whole-photo stages before the tiles, timed per megapixel natively: the deblurring network
(`unblur-deblur`, on the stage's own 288² tile: 256² owned plus 16 px of context each side),
`auto`'s looks before that network (src/deblur/crisp.rs, periodic.rs; planning the stage, which
takes them), the damage detector (`unblur-repair`, on a 1024×1024 copy as the core runs it: in two bands of 512
rows, each seen with 64 rows of context and the window kept one shape, 1024×640 a run) and the repair fill on a real 1 MP photo with 1 % of it masked, by thin strokes (Telea
alone) and by wide stains (Telea, then the patch fill). Unblur's engine
(tract), one thread, the forms the site ships; the networks' GMAC per megapixel beside them.
The same networks in wasm are `bench/browser.mjs`'s `unblur-deblur` and `unblur-repair` rows;
`--wasm` adds the fill's rows in the page's wasm (bench/fill_wasm.mjs, node, one thread).

    python3 bench/stages.py [--reps 5] [--wasm] [--out bench/out/stages.json]

Needs target/release/unblur-bench-native (cargo build --release --manifest-path
bench/native/Cargo.toml --target-dir target) and the built models (models/build).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.path.join(REPO, "models", "build")
PHOTO = os.path.join(REPO, "..", "shared", "data", "dev", "codeformer", "whole_imgs", "02.png")
TRACT = os.path.join(REPO, "target", "release", "unblur-bench-native")
# (model id, input height, width, owned pixels of one run, GMAC per megapixel of input)
NETS = [("unblur-deblur", 288, 288, 256 * 256, 25.20), ("unblur-repair", 640, 1024, 512 * 1024, 2.87)]


def shipped(mid: str) -> str:
    m = json.load(open(os.path.join(BUILD, "manifest.json")))
    e = next(e for e in m["models"] if e["id"] == mid)
    return os.path.join(BUILD, e["artifacts"][e["ship"]]["file"]), e["ship"]


def photo_1mp() -> np.ndarray:
    im = Image.open(PHOTO).convert("RGB")
    return np.asarray(im.resize((1024, 1024), Image.LANCZOS), np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "stages.json"))
    ap.add_argument("--wasm", action="store_true",
                    help="also the fill in the page's wasm (needs dist/bench-pkg: UNBLUR_BENCH_BUILDS=relaxed bash web/build.sh dev)")
    a = ap.parse_args()
    if not os.path.exists(TRACT):
        sys.exit(f"missing {TRACT}: cargo build --release --manifest-path bench/native/Cargo.toml --target-dir target")
    rgb = photo_1mp()
    rows = []
    env = dict(os.environ, TRACT_DISABLE_DIRECT_SPATIAL="true")  # as the CLI sets it
    with tempfile.TemporaryDirectory() as work:
        for mid, h, w, owned, gmac in NETS:
            model, form = shipped(mid)
            x = rgb[:h, :w].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            tile = os.path.join(work, f"{mid}.f32")
            np.ascontiguousarray(x).astype("<f4").tofile(tile)
            out = subprocess.run([TRACT, model, str(a.reps), f"{tile}:{h}:{w}"], capture_output=True,
                                 text=True, check=True, env=env)
            r = json.loads(out.stdout.splitlines()[-1])
            ms = float(np.median(r["runs_ms"]))
            rows.append({"stage": mid, "form": form, "input": f"{w}×{h}", "ms_per_run": ms,
                         "ms_per_mp": ms / (owned / 1e6), "gmac_per_mp": gmac,
                         "gmac_per_s": gmac * h * w / 1e6 / (ms / 1e3), "plan_ms": r["plan_ms"]})
        photo = os.path.join(work, "photo.png")
        Image.fromarray(rgb).save(photo)
        # `auto`'s looks before the deblur network, on the same 1 MP photo defocused (σ 2 px), so
        # that neither look decides and both run (the crisp edges, then the periodicity).
        soft = os.path.join(work, "soft.png")
        Image.fromarray(np.clip(np.round(gaussian_filter(rgb.astype(np.float32), (2, 2, 0))), 0, 255)
                        .astype(np.uint8)).save(soft)
        out = subprocess.run([TRACT, "--looks", soft, str(a.reps)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.splitlines()[-1])
        assert r["verdict"] is None and r["first_tiles"] > 0, "the looks decided: not the both-looks case"
        rows.append({"stage": "deblur `auto`'s looks (crisp edges, periodicity)", "form": "-", "input": "1024×1024",
                     "ms_per_run": r["median_ms"], "ms_per_mp": r["median_ms"] / (r["pixels"] / 1e6),
                     "gmac_per_mp": None, "gmac_per_s": None, "plan_ms": None, "engine": "native"})
        rng = np.random.default_rng(0)
        m = np.zeros(rgb.shape[:2], bool)
        while m.mean() < 0.01:  # thin random strokes, like scratches
            x0, y0 = rng.integers(0, 1024, 2)
            ang, length = rng.uniform(0, np.pi), rng.integers(40, 300)
            t = np.arange(length)
            xs = np.clip((x0 + t * np.cos(ang)).astype(int), 0, 1023)
            ys = np.clip((y0 + t * np.sin(ang)).astype(int), 0, 1023)
            m[ys, xs] = True
            m[np.clip(ys + 1, 0, 1023), xs] = True
        mask = os.path.join(work, "mask.png")
        Image.fromarray(m.astype(np.uint8) * 255).save(mask)
        # Wide stains besides: discs of radius 8-20 px, where the patch fill runs after Telea.
        stained = np.zeros_like(m)
        yy, xx = np.mgrid[:1024, :1024]
        while stained.mean() < 0.01:
            cx, cy = rng.integers(40, 984, 2)
            stained |= (xx - cx) ** 2 + (yy - cy) ** 2 <= rng.integers(8, 21) ** 2
        stains = os.path.join(work, "stains.png")
        Image.fromarray(stained.astype(np.uint8) * 255).save(stains)
        for label, path in [("repair fill (scratches: Telea)", mask), ("repair fill (stains: Telea, then patches)", stains)]:
            out = subprocess.run([TRACT, "--fill", photo, path, str(a.reps)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.splitlines()[-1])
            rows.append({"stage": label, "form": "-", "input": f"1024×1024, {100 * r['masked'] / r['pixels']:.1f} % masked",
                         "ms_per_run": r["median_ms"], "ms_per_mp": r["median_ms"] / (r["pixels"] / 1e6),
                         "gmac_per_mp": None, "gmac_per_s": None, "plan_ms": None, "engine": "native"})
            if a.wasm:
                # The same fill in the page's wasm (the relaxed bench build, in node's V8).
                out = subprocess.run(["node", "--experimental-wasm-relaxed-simd", os.path.join(HERE, "fill_wasm.mjs"),
                                      photo, path, str(a.reps)], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.splitlines()[-1])
                ms = float(np.median(r["runs_ms"]))
                rows.append({"stage": label.replace("repair fill", "repair fill, wasm"), "form": "-",
                             "input": f"1024×1024, {100 * r['masked'] / r['pixels']:.1f} % masked",
                             "ms_per_run": ms, "ms_per_mp": ms / (r["pixels"] / 1e6),
                             "gmac_per_mp": None, "gmac_per_s": None, "plan_ms": None, "engine": "wasm"})
    print("| stage (native unless said, one thread) | form | input | ms per run | ms per MP | GMAC per MP | GMAC/s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        g = f"{r['gmac_per_mp']:.1f}" if r["gmac_per_mp"] else ""
        s = f"{r['gmac_per_s']:.1f}" if r["gmac_per_s"] else ""
        print(f"| {r['stage']} | {r['form']} | {r['input']} | {r['ms_per_run']:.0f} | {r['ms_per_mp']:.0f} | {g} | {s} |")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump({"rows": rows, "reps": a.reps}, open(a.out, "w"), indent=1)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

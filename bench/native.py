"""Native benchmark: Unblur's engine (tract, one thread) against onnxruntime (PyPI, CPU, 1 and 2
threads) on the same ONNX and the same tiles of a real photo, with FLOP counts from the graph and
a measured matmul peak; then the `unblur` CLI end to end on 3 and 12 megapixel photos.

    python3 bench/native.py [--quick] [--out bench/out/native.json]

Needs `target/release/unblur` (make cli) and `target/release/unblur-bench-native`
(cargo build --release --manifest-path bench/native/Cargo.toml --target-dir target).
Prints progress on stderr; writes JSON.

Also: tract's per-operator profile of one tile (`unblur-bench-native --profile`), and the
product's choices side by side in one run (tile side, tile threads, tract's plan and kernel
knobs), each against its alternative.

The CLI runs tiles (and faces) on one thread per CPU, and turns tract's direct spatial
convolution off (TRACT_DISABLE_DIRECT_SPATIAL as a config default). A photo whose estimated full run (fixed and face cost
of a small photo run to the end + tiles × the measured per-tile time of the threaded CLI) fits in
E2E_FULL_MAX seconds runs to the end; a larger one is run with a time cap (E2E_CAP seconds)
while its memory is sampled from /proc, and its wall time is extrapolated the same way.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PHOTO = os.path.join(REPO, "..", "shared", "data", "dev", "codeformer", "whole_imgs", "02.png")
MODEL = os.path.join(REPO, "models", "build", "realesr-general-x4v3.fp32.onnx")
CLI = os.path.join(REPO, "target", "release", "unblur")
TRACT = os.path.join(REPO, "target", "release", "unblur-bench-native")

sys.path.insert(0, HERE)


def log(*a):
    print("[native]", *a, file=sys.stderr, flush=True)


def tiles(out_dir, sizes):
    from PIL import Image
    import numpy as np

    im = Image.open(PHOTO).convert("RGB")
    paths = {}
    for s in sizes:
        a = np.asarray(im.crop((0, 0, s, s)), dtype=np.float32) / 255.0  # the browser's tile 0
        planar = np.ascontiguousarray(a.transpose(2, 0, 1)[None])
        p = os.path.join(out_dir, f"tile{s}.f32")
        planar.astype("<f4").tofile(p)
        paths[s] = (p, planar)
    return paths


PEAK_CODE = r"""
import json, sys, time
import numpy as np
res = {}
rng = np.random.default_rng(0)
def best(f, reps):
    f(); t = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    return min(t)
for name, (m, k, n) in {"conv-gemm 64x576 @ 576x16384": (64, 576, 16384),
                        "square 2048": (2048, 2048, 2048)}.items():
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    s = best(lambda: a @ b, int(sys.argv[1]))
    res[name] = 2 * m * k * n / s / 1e9
print(json.dumps(res))
"""


def peaks(threads, reps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", PEAK_CODE, str(reps)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_tract(tile_paths, reps):
    specs = [f"{p}:{s}:{s}" for s, (p, _) in sorted(tile_paths.items())]
    out = subprocess.run([TRACT, MODEL, str(reps), *specs], capture_output=True, text=True, check=True)
    return {r["h"]: r for r in map(json.loads, out.stdout.splitlines())}


def run_profile(tile_paths, reps, env=None):
    specs = [f"{p}:{s}:{s}" for s, (p, _) in sorted(tile_paths.items())]
    out = subprocess.run([TRACT, "--profile", MODEL, str(reps), *specs], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **(env or {})))
    return {r["h"]: r for r in map(json.loads, out.stdout.splitlines())}


def run_threads(path, side, tiles, counts):
    out = subprocess.run([TRACT, "--threads", MODEL, str(tiles), *map(str, counts), f"{path}:{side}:{side}"],
                         capture_output=True, text=True, check=True)
    return {r["threads"]: r for r in map(json.loads, out.stdout.splitlines())}


# The product's choices, each against its alternative: (key, choice, product's setting, alternative,
# tile side, tract knobs of the product, knobs of the alternative). Tile sides are compared per
# useful input megapixel (the tile less its overlap), the rest per tile.
KNOB_CHOICES = [
    ("tile_96_vs_64", "tile side", "96²", "64²", (96, 64), {}, {}),
    ("tile_96_vs_128", "tile side", "96²", "128²", (96, 128), {}, {}),
    ("tile_96_vs_192", "tile side", "96²", "192²", (96, 192), {}, {}),
    ("direct_spatial_off_128", "tract's plan at 128² (a --tile 128): im2col + matrix product, not its direct spatial conv",
     "off (the CLI's default)", "tract's default", (128, 128), {"TRACT_DISABLE_DIRECT_SPATIAL": "1"}, {}),
    ("direct_spatial_off_256", "the same at 256² (the largest face crop restored with the SR network)",
     "off (the CLI's default)", "tract's default", (256, 256), {"TRACT_DISABLE_DIRECT_SPATIAL": "1"}, {}),
    ("gemm_family_96", "f32 GEMM kernels at 96²: the family measured at start-up (src/engine/gemm_native.rs) against tract's own choice",
     "measured at start-up", "tract's choice (UNBLUR_GEMM=tract)", (96, 96), {}, {"UNBLUR_GEMM": "tract"}),
]


def choices(paths, rounds, quick):
    """Each choice's two settings alternate within each round (fresh processes, same tile), so
    that background load falls on both alike."""
    res = {}
    reps = 1 if quick else 2
    wanted = KNOB_CHOICES if not quick else [c for c in KNOB_CHOICES if max(c[4]) <= 96]
    runs = {}  # (side, knobs) -> list of ms, shared between choices
    for rnd in range(rounds):
        done = set()
        for _key, _what, _prod, _alt, sides, kp, ka in wanted:
            for side, knobs in ((sides[0], kp), (sides[1], ka)):
                k = (side, tuple(sorted(knobs.items())))
                if k in done:
                    continue
                done.add(k)
                out = subprocess.run([TRACT, MODEL, str(reps), f"{paths[side][0]}:{side}:{side}"], capture_output=True,
                                     text=True, check=True, env=dict(os.environ, **knobs))
                r = json.loads(out.stdout.splitlines()[0])
                runs.setdefault(k, []).extend(r["runs_ms"])
                log(f"choices round {rnd + 1}: {side}² {dict(knobs) or 'default'}: {[round(x) for x in r['runs_ms']]}")
    for key, what, prod, alt, sides, kp, ka in wanted:
        pm = min(runs[(sides[0], tuple(sorted(kp.items())))])
        am = min(runs[(sides[1], tuple(sorted(ka.items())))])
        row = {"choice": what, "product": prod, "alternative": alt, "side": sides[0], "alt_side": sides[1],
               "product_knobs": kp, "alternative_knobs": ka, "product_ms": pm, "alternative_ms": am}
        if sides[0] != sides[1]:
            # ms per useful input megapixel: each tile adds (side − overlap)² new input pixels.
            row["unit"] = "s per useful input MP"
            row["product_value"] = pm / (sides[0] - 16) ** 2 * 1e3
            row["alternative_value"] = am / (sides[1] - 16) ** 2 * 1e3
        else:
            row["unit"] = "ms per tile"
            row["product_value"], row["alternative_value"] = pm, am
        row["product_speedup"] = row["alternative_value"] / row["product_value"]
        res[key] = row
    return res


def ort_session(threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])


def run_ort(sess, planar, reps):
    name = sess.get_inputs()[0].name
    t0 = time.perf_counter()
    out = sess.run(None, {name: planar})[0]
    first = (time.perf_counter() - t0) * 1e3
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, {name: planar})
        runs.append((time.perf_counter() - t0) * 1e3)
    return {"first_ms": first, "runs_ms": runs, "out": out}


# ---------- the CLI end to end ----------


def axis_count(length, tile=96, overlap=16):
    if tile >= length:
        return 1
    overlap = min(overlap, tile // 2)
    return max(2, math.ceil((length - overlap) / (tile - overlap)))


def make_photo(path, megapixels):
    from PIL import Image

    im = Image.open(PHOTO).convert("RGB")
    f = math.sqrt(megapixels * 1e6 / (im.width * im.height))
    im = im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS)
    im.save(path, quality=95)
    return im.size


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cli_run(photo, out_dir, cap=None, extra=()):
    """Runs the CLI under /usr/bin/time -v; with a cap, stops it (SIGTERM) after `cap` seconds.
    Samples the CLI's RSS every 0.25 s."""
    tfile = os.path.join(out_dir, "time.txt")
    cmd = ["/usr/bin/time", "-v", "-o", tfile, CLI, "restore", "--json", "--scale", "2", "--faces", "auto", "-o", out_dir, *extra, photo]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = None
    samples = []
    stopped = False
    while p.poll() is None:
        if child is None:
            try:
                with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                    kids = f.read().split()
                child = int(kids[0]) if kids else None
            except OSError:
                pass
        if child:
            rss = status_kb(child, "VmRSS")
            if rss is not None:
                samples.append((round(time.perf_counter() - t0, 2), rss))
        if cap and not stopped and time.perf_counter() - t0 > cap and child:
            os.kill(child, 15)
            stopped = True
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    out, err = p.communicate()
    info = {}
    with open(tfile) as f:
        for line in f:
            k, _, v = line.strip().rpartition(": ")
            info[k] = v
    res = {
        "wall_s": wall,
        "max_rss_mb": int(info.get("Maximum resident set size (kbytes)", "0")) / 1024,
        "user_s": float(info.get("User time (seconds)", "nan")),
        "capped": stopped,
        "rss_samples_mb": [(t, round(kb / 1024, 1)) for t, kb in samples[:: max(1, len(samples) // 40)]],
        # Halfway through: tiles running, the photo and the canvas allocated, the encode not begun.
        "rss_mid_run_mb": round(min(samples, key=lambda s: abs(s[0] - wall / 2))[1] / 1024, 1) if samples else None,
    }
    if not stopped:
        if p.returncode != 0:
            raise RuntimeError(f"unblur failed: {err[-2000:]}")
        res["json"] = json.loads(out.strip().splitlines()[-1])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, few reps (development)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "native.json"))
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--e2e-cap", type=float, default=float(os.environ.get("E2E_CAP", 45)))
    ap.add_argument("--e2e-full-max", type=float, default=float(os.environ.get("E2E_FULL_MAX", 600)),
                    help="run a photo to the end when its estimated wall time is at most this many seconds")
    ap.add_argument("--no-e2e", action="store_true")
    args = ap.parse_args()
    quick = args.quick
    sizes = [64, 96] if quick else [64, 96, 128]
    rounds = args.rounds or (1 if quick else 2)
    reps = {64: 3, 96: 2, 128: 2} if not quick else {64: 1, 96: 1}
    for exe in (CLI, TRACT):
        if not os.path.exists(exe):
            sys.exit(f"missing {exe}: see the docstring")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    work = tempfile.mkdtemp(prefix="unblur-bench-")

    import flops as fl

    result = {"model": os.path.relpath(MODEL, REPO), "sizes": sizes, "rounds": rounds, "tiles": {},
              "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    paths = tiles(work, sorted(set(sizes) | {64, 96, 128, 192, 256}))
    for s in sizes:
        f = fl.count(MODEL, s, s)
        result["tiles"][s] = {"flops": f["flops"], "other_elements": f["other_elements"], "tract": [], "ort1": [], "ort2": []}
    log("matmul peaks (numpy/OpenBLAS sgemm)")
    result["peak_gflops"] = {"1": peaks(1, 3 if quick else 6), "2": peaks(2, 3 if quick else 6)}
    log(json.dumps(result["peak_gflops"]))

    sessions = {1: ort_session(1), 2: ort_session(2)}
    check = {}
    for rnd in range(rounds):
        # One round: tract (fresh process: load + plan per size), then onnxruntime 1 and 2 threads,
        # size by size, so background load falls on all of them alike.
        for s in sizes:
            tr = run_tract({s: paths[s]}, reps[s])[s]
            result["tiles"][s]["tract"].append(tr)
            log(f"round {rnd + 1} {s}²: tract plan {tr['plan_ms']:.0f} ms, runs {[round(x) for x in tr['runs_ms']]}")
            for th in (1, 2):
                o = run_ort(sessions[th], paths[s][1], reps[s])
                if s == sizes[-1]:
                    check[th] = o["out"]
                result["tiles"][s][f"ort{th}"].append({k: v for k, v in o.items() if k != "out"})
                log(f"round {rnd + 1} {s}²: ort {th}t runs {[round(x) for x in o['runs_ms']]}")
    # Cross-check: tract's output sum against onnxruntime's.
    s = sizes[-1]
    result["check"] = {"size": s, "tract_out_sum": result["tiles"][s]["tract"][-1]["out_sum"], "ort_out_sum": float(check[1].astype("float64").sum())}

    for s in sizes:
        t = result["tiles"][s]
        for k in ("tract", "ort1", "ort2"):
            runs = [x for r in t[k] for x in r["runs_ms"]]
            t[k + "_ms"] = {"median": statistics.median(runs), "min": min(runs), "n": len(runs)}
            t[k + "_gflops"] = t["flops"] / t[k + "_ms"]["min"] / 1e6
        t["tract_plan_ms"] = statistics.median(r["plan_ms"] for r in t["tract"])

    # Where tract's time goes: every node of the optimised plan timed, summed per operator kind.
    prof_sizes = [96] if quick else [96, 128]
    log(f"tract profile at {prof_sizes}")
    if platform.machine() == "x86_64":
        result["gemm"] = json.loads(subprocess.run([TRACT, "--gemm"], capture_output=True, text=True, check=True).stdout)
    result["profile"] = run_profile({s: paths[s] for s in prof_sizes}, 1 if quick else 3)
    for s_, p_ in result["profile"].items():
        log(f"  {s_}²: {p_['plain_ms']:.0f} ms plain, top {[(o['op'], round(o['ms'])) for o in p_['ops'][:4]]}")

    # The product's choices, each against its alternative, side by side.
    result["choices"] = choices(paths, 1 if quick else 2, quick)
    ncpu = os.cpu_count() or 1
    counts = sorted({1, max(2, ncpu)})
    n_tiles = 2 * max(counts) if quick else 4 * max(counts)
    log(f"tile threads {counts}, {n_tiles} tiles of 96² each")
    thr = {}
    for rnd in range(1 if quick else 2):
        # Alternate the order so that neither count always runs first.
        for th, r in run_threads(paths[96][0], 96, n_tiles, counts if rnd % 2 == 0 else counts[::-1]).items():
            thr.setdefault(th, []).append(r)
    result["tile_threads"] = {th: {"ms_per_tile": min(r["ms_per_tile"] for r in rs), "runs": rs} for th, rs in thr.items()}
    hi = max(counts)
    one, many = result["tile_threads"][1]["ms_per_tile"], result["tile_threads"][hi]["ms_per_tile"]
    result["choices"][f"threads_{hi}_vs_1"] = {
        "choice": "tiles on threads (one per CPU, the CLI's default)", "product": f"{hi} threads", "alternative": "1 thread",
        "side": 96, "alt_side": 96, "unit": "ms per tile (wall / tiles)", "product_value": many, "alternative_value": one,
        "product_speedup": one / many}
    for k, c in result["choices"].items():
        log(f"choice {k}: {c['product']} {c['product_value']:.0f} vs {c['alternative']} {c['alternative_value']:.0f} "
            f"({c['unit']}): ×{c['product_speedup']:.2f}")

    if not args.no_e2e:
        result["e2e"] = e2e(work, quick, args.e2e_cap, args.e2e_full_max, result)
    result["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {args.out}")


def e2e(work, quick, cap, full_max, result):
    """The CLI with its default threads (one per CPU) on a small photo run to the end (and once
    more with --threads 1, for the threads row), then on 3 and 12 MP photos: to the end where the
    estimate fits in `full_max` seconds, else capped at `cap` seconds and extrapolated."""
    res = {}
    tt = result["tile_threads"]
    threads = max(tt, key=int)
    tile_s = tt[threads]["ms_per_tile"] / 1e3  # wall per tile with every thread busy
    res["threads"] = threads
    small_mp = 0.05 if quick else 0.2
    photos = [("small", small_mp), ("3MP", 3.0), ("12MP", 12.0)]
    if quick:
        photos = [("small", small_mp), ("1MP", 1.0)]
    fixed = None
    for name, mp in photos:
        path = os.path.join(work, f"photo-{name}.jpg")
        w, h = make_photo(path, mp)
        out_dir = os.path.join(work, f"out-{name}")
        os.makedirs(out_dir, exist_ok=True)
        n_tiles = axis_count(w) * axis_count(h)
        estimate = None if fixed is None else fixed + n_tiles * tile_s
        # A run expected to fit is still stopped at twice the limit (a busy machine), and extrapolated.
        c = None if estimate is None else cap if estimate > full_max else 2 * full_max
        log(f"CLI on {name} ({w}×{h}, {n_tiles} tiles of 96², {threads} threads"
            f"{f', estimated {estimate:.0f} s' if estimate else ''}{f', stopped at {c:.0f} s' if c else ''})")
        r = cli_run(path, out_dir, cap=c)
        r.update({"width": w, "height": h, "megapixels": w * h / 1e6, "tiles": n_tiles, "threads": threads})
        # The two images a job must hold whole: the decoded photo and the 16-bit output canvas.
        ow, oh = round(w * 2), round(h * 2)
        r["image_buffers_mb"] = (w * h + ow * oh) * 6 / 2**20
        if estimate is not None:
            r["estimated_wall_s"] = estimate
        if fixed is None:
            fixed = r["fixed_and_faces_s"] = r["wall_s"] - n_tiles * tile_s
            log(f"CLI on {name} again with --threads 1")
            r1 = cli_run(path, out_dir, extra=("--threads", "1"))
            res["small_1_thread"] = {k: r1[k] for k in ("wall_s", "max_rss_mb", "user_s")}
            result["choices"]["cli_threads"] = {
                "choice": f"a whole CLI job ({name} photo, {n_tiles} tiles, faces): tiles on threads",
                "product": f"{threads} threads", "alternative": "--threads 1", "side": 96, "alt_side": 96,
                "unit": "wall s", "product_value": r["wall_s"], "alternative_value": r1["wall_s"],
                "product_speedup": r1["wall_s"] / r["wall_s"]}
        if r["capped"]:
            r["extrapolated_wall_s"] = fixed + n_tiles * tile_s
        res[name] = r
        log(f"  {r['wall_s']:.1f} s, max RSS {r['max_rss_mb']:.0f} MB{' (capped)' if r['capped'] else ''}")
    res["tile96_s_used"] = tile_s
    return res


if __name__ == "__main__":
    main()

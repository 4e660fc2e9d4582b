"""Native benchmark: Unblur's engine (tract, one thread) against onnxruntime (PyPI, CPU, 1 and 2
threads) on the same ONNX and the same tiles of a real photo, with FLOP counts from the graph and
a measured matmul peak; then the `unblur` CLI end to end on 3 and 12 megapixel photos.

    python3 bench/native.py [--quick] [--out bench/out/native.json]

Needs `target/release/unblur` (make cli) and `target/release/unblur-bench-native`
(cargo build --release --manifest-path bench/native/Cargo.toml --target-dir target).
Prints progress on stderr; writes JSON.

The 12 MP CLI run would take ~15+ minutes on one core, so each large photo is run with a time
cap (E2E_CAP seconds) while its memory is sampled from /proc; its wall time is extrapolated
from the tile count × tract's measured 96² tile time plus the fixed and face costs of a small
photo that is run to the end.
"""

import argparse
import json
import math
import os
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

    result = {"model": os.path.relpath(MODEL, REPO), "sizes": sizes, "rounds": rounds, "tiles": {}}
    paths = tiles(work, sizes)
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

    if not args.no_e2e:
        result["e2e"] = e2e(work, quick, args.e2e_cap, result)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {args.out}")


def e2e(work, quick, cap, result):
    res = {}
    t96 = result["tiles"].get(96, result["tiles"][max(result["tiles"])])
    tile_s = t96["tract_ms"]["median"] / 1e3
    # A small photo, run to the end: its wall time minus its tiles' time is the fixed + faces cost.
    small_mp = 0.05 if quick else 0.2
    photos = [("small", small_mp, None), ("3MP", 3.0, cap), ("12MP", 12.0, cap)]
    if quick:
        photos = [("small", small_mp, None), ("1MP", 1.0, cap)]
    for name, mp, c in photos:
        path = os.path.join(work, f"photo-{name}.jpg")
        w, h = make_photo(path, mp)
        out_dir = os.path.join(work, f"out-{name}")
        os.makedirs(out_dir, exist_ok=True)
        n_tiles = axis_count(w) * axis_count(h)
        log(f"CLI on {name} ({w}×{h}, {n_tiles} tiles of 96²{f', capped at {c:.0f} s' if c else ''})")
        r = cli_run(path, out_dir, cap=c)
        r.update({"width": w, "height": h, "megapixels": w * h / 1e6, "tiles": n_tiles})
        if not c:
            r["fixed_and_faces_s"] = r["wall_s"] - n_tiles * tile_s
        res[name] = r
        log(f"  {r['wall_s']:.1f} s, max RSS {r['max_rss_mb']:.0f} MB{' (capped)' if r['capped'] else ''}")
    fixed = res["small"]["fixed_and_faces_s"]
    for name, r in res.items():
        if r["capped"]:
            # Decode/encode grow with the photo; they are seconds against the tiles' minutes.
            r["extrapolated_wall_s"] = fixed + r["tiles"] * tile_s
    res["tile96_s_used"] = tile_s
    return res


if __name__ == "__main__":
    main()

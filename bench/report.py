"""Merges bench/out/browser.json, native.json, page.json and exported-wasm.json into bench/out/bench.json and
bench/out/bench.md (one markdown table per part, with the machine), and prints the markdown.

    python3 bench/report.py [OUT_DIR]
"""

import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    return " ".join(x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16") if x in fl)
    except OSError:
        pass
    return ""


def fmt(x, nd=0):
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return f"{x:,.{nd}f}"


def choices_md(b, fmt):
    """The product's own choices in wasm, one worker each: what each won."""
    R = b["runners"]
    base = R.get("unblur-1w-fp16")
    rows = [(k, r) for k, r in R.items() if r.get("choice") and "msPerTile" in r]
    if not base or not rows:
        return []
    md = ["", "What the product's own choices won (one worker each, same tiles, same rounds): the shipped engine "
          "(relaxed-SIMD build, Unblur's 4×8 GEMM kernel) against each alternative.", "",
          "| alternative | ms / tile | GFLOP/s | shipped engine is faster by |", "|---|---:|---:|---:|",
          f"| (shipped) {base['label']} | {fmt(base['msPerTile'])} | {fmt(base['gflops'], 1)} | — |"]
    for _, r in rows:
        md.append(f"| {r['label']} | {fmt(r['msPerTile'])} | {fmt(r['gflops'], 1)} | {r['msPerTile'] / base['msPerTile']:.2f}× |")
    return md


def profile_md(b, fmt):
    P = b.get("profile") or {}
    if not P:
        return []
    md = ["", "Where one tile's time goes in wasm (tract's plan timed node by node, `Net.profile`, one run):", ""]
    cols = list(P.items())
    ops = []
    for _, p in cols:
        for o in p["ops"]:
            if o["op"] not in ops:
                ops.append(o["op"])
    md.append("| operator | nodes | " + " | ".join(f"{p['label']}: ms (share)" for _, p in cols) + " |")
    md.append("|---|---:|" + "---:|" * len(cols))
    for op in ops:
        cells, nodes = [], None
        for _, p in cols:
            tot = sum(o["ms"] for o in p["ops"]) or 1
            o = next((o for o in p["ops"] if o["op"] == op), None)
            nodes = nodes or (o and o["nodes"])
            cells.append(f"{fmt(o['ms'], 1)} ({o['ms'] / tot:.0%})" if o else "–")
        if all(c == "–" or c.startswith("0.0 ") or c.startswith("0.") for c in cells):
            continue
        md.append(f"| {op} | {nodes} | " + " | ".join(cells) + " |")
    md.append("| total | | " + " | ".join(fmt(sum(o["ms"] for o in p["ops"]), 0) for _, p in cols) + " |")
    return md


def page_md(p, fmt):
    md = []
    fv = p.get("firstVisit")
    if fv:
        md += ["## The page, as a person meets it (dist/site in headless Chromium)", "",
               f"First visit with an empty profile (disk cache), `?scale=2&faces=on`: the engine was ready {fv['readyMs'] / 1e3:.1f} s after "
               f"opening the page, and the first restored photo ({fv['photo']}, ×2 → {fv['output'][0]}×{fv['output'][1]}, {fv['faces']} faces) "
               f"was done {fv['firstPhotoMs'] / 1e3:.1f} s after opening it (the restoration itself {fv['restoreMs'] / 1e3:.1f} s). "
               f"Engine: {fv['engine']}.", "",
               "| downloaded on the first visit | files | bytes | as sent gzip-compressed |", "|---|---:|---:|---:|"]
        for k, v in fv["byKind"].items():
            n = sum(1 for f in fv["files"] if (f["path"].endswith(".wasm") if k == "wasm" else f["path"].endswith(".onnx") if k == "models" else not f["path"].endswith((".wasm", ".onnx"))))
            md.append(f"| {k} | {n} | {v['bytes'] / 1e6:.2f} MB | {v['gzip'] / 1e6:.2f} MB |")
            if k == "models":
                for f in fv["files"]:
                    if f["path"].endswith(".onnx"):
                        md.append(f"| — {f['path'].split('/')[-1]} | 1 | {f['bytes'] / 1e6:.2f} MB | {f['gzip'] / 1e6:.2f} MB |")
        md.append(f"| **total** | {len(fv['files'])} | {fv['total']['bytes'] / 1e6:.2f} MB | **{fv['total']['gzip'] / 1e6:.2f} MB** |")
        own = fv.get("ownFaceModel")
        if own:
            md.append(f"| with Unblur's own face model ({own['path']}, selectable, not yet the default) | +1 | +{own['bytes'] / 1e6:.2f} MB | "
                      f"**{(fv['total']['gzip'] + own['gzip']) / 1e6:.2f} MB** |")
        md += ["", f"({fv['revalidated']} more requests were revalidations answered 304 with no body: the service worker keeping what the page already has.)", ""]
        later = fv.get("later")
        if later and later["files"]:
            names = ", ".join(f["path"].split("/")[-1].split("?")[0] for f in later["files"])
            md += [f"After the first photo, once idle, the page fetched {len(later['files'])} more files for offline use "
                   f"({later['gzip'] / 1e6:.2f} MB gzip: {names}); it said it works offline "
                   f"{(fv.get('offlineMs') or 0) / 1e3:.1f} s after opening.", ""]
    mid = p.get("mid")
    if mid:
        md += [f"The whole ×4 job on a real photo ({mid['photo']}, faces off, photo chosen → download saved): "
               f"{mid['wallMs'] / 1e3:.1f} s (the restoration {mid['restoreMs'] / 1e3:.1f} s), output {mid['output'][0]}×{mid['output'][1]}, "
               f"the tab's peak RSS {mid['peakRenderer'] / 2 ** 20:,.0f} MiB.", ""]
    big = p.get("big")
    if big:
        mib = 2 ** 20
        md += [f"A {big['input'][0]}×{big['input'][1]} ({big['input'][0] * big['input'][1] / 1e6:.1f} MP) photo at ×2 with faces, through the page's UI:", "",
               "| output | faces | wall (restore click → done) | tab's peak RSS (renderer: page + workers) | whole browser's peak RSS | renderer before the job |",
               "|---|---:|---:|---:|---:|---:|",
               f"| {big['output'][0]}×{big['output'][1]} ({big['output'][0] * big['output'][1] / 1e6:.1f} MP, {big['outputBytes'] / 1e6:.0f} MB PNG) | {big['faces']} | "
               f"{big['restoreMs'] / 6e4:.1f} min | {big['peak']['renderer'] / mib:,.0f} MiB | {big['peak']['total'] / mib:,.0f} MiB | {big['baseline']['renderer'] / mib:,.0f} MiB |", ""]
    return md


# Pixels of the photo one run of a whole-photo network in bench/browser.mjs stands for: the deblur
# tile owns its 256² centre; the detector's 640² window, run as the core runs its bands, owns 512 of
# its rows (64 rows of context above and below).
BROWSER_OWNED = {"unblur-deblur": (256 * 256, "288×288"), "unblur-repair": (512 * 640, "640×640")}


def stages_md(st, browser, sugg):
    """The whole-photo stages (deblurring, damage detection, the repair fill) per megapixel, native
    beside wasm: bench/stages.py's rows, bench/browser.mjs's runs of the same networks in the page's
    worker, and bench/suggestion.mjs's wait for the page's repair suggestion."""
    if not st:
        return []
    md = ["## The whole-photo stages per megapixel (`bench/stages.py`, `bench/browser.mjs`)", "",
          "One thread each, the forms the site ships. Native: Unblur's engine (tract) in `unblur-bench-native`; "
          "wasm: the networks in the page's inference worker in Chromium, the fill in the page's wasm in node "
          "(`bench/fill_wasm.mjs`). Per megapixel of the photo: a network's run counts the pixels it owns "
          "(the deblur tile its 256² centre, the detector's band its rows without their context); the detector "
          "runs on the ≤ 1 MP copy, so its cost per photo is at most one megapixel's.", "",
          "| stage | engine | form | input | ms per run | ms per MP | GMAC per MP of input |", "|---|---|---|---|---:|---:|---:|"]
    for r in st["rows"]:
        g = f"{r['gmac_per_mp']:.2f}" if r.get("gmac_per_mp") else ""
        md.append(f"| {r['stage'].replace(', wasm', '')} | {r.get('engine', 'native')} | {r['form']} | {r['input']} | "
                  f"{r['ms_per_run']:,.0f} | {r['ms_per_mp']:,.0f} | {g} |")
        br = (browser or {}).get("runners", {}).get(r["stage"])
        if br and "msPerRun" in br:
            owned, shape = BROWSER_OWNED[r["stage"]]
            md.append(f"| {r['stage']} | wasm (page worker) | {r['form']} | {shape} | "
                      f"{br['msPerRun']:,.0f} | {br['msPerRun'] / (owned / 1e6):,.0f} | {g} |")
    if sugg:
        med = lambda a: sorted(a)[len(a) // 2]
        rows = sorted(sugg["runs"].items(), key=lambda kv: int(kv[0]))
        md += ["", f"The page's repair suggestion (`bench/suggestion.mjs`): from {sugg['photo']}'s bytes "
               f"({sugg['width']}×{sugg['height']}) to the mask at its size (decode, the ≤ 1 MP copy, the detector's "
               "bands, the mask brought back), median of "
               f"{len(rows[0][1]['ms'])}: " + "; ".join(
                   f"{med(v['ms']):,.0f} ms on {w} inference worker{'s' if int(w) > 1 else ''} "
                   f"({v['bands']} band{'s' if v['bands'] != 1 else ''})"
                   for w, v in rows) + "."]
    return md + [""]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "out")
    b = load(os.path.join(out, "browser.json"))
    n = load(os.path.join(out, "native.json"))
    machine = {
        "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "loadavg_at_report": open("/proc/loadavg").read().split()[:3],
        "chromium": (b or {}).get("chromium"),
    }
    try:
        import onnxruntime

        machine["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        with open(os.path.join(HERE, "..", "node_modules", "onnxruntime-web", "package.json")) as f:
            machine["onnxruntime_web"] = json.load(f)["version"]
    except OSError:
        pass
    md = ["# Unblur benchmark", ""]
    md.append(f"Machine: {machine['nproc']} CPUs (`nproc`), {machine['cpu']} ({machine['cpu_flags']}); "
              f"Chromium {machine['chromium']}; onnxruntime {machine.get('onnxruntime')} (PyPI), "
              f"onnxruntime-web {machine.get('onnxruntime_web')}. Load average when written: {' '.join(machine['loadavg_at_report'])} "
              "(shared machine: compare rows of one run, not across runs).")
    md.append("")
    ratios = {}
    if b:
        R = b["runners"]
        side = b["side"]
        md += [f"## Browser (headless Chromium, wasm), realesr-general-x4v3 on {side}×{side} tiles of a real photo", "",
               "Batches of every runner alternate round by round on the same pages; ms per tile = all batches' wall time / tiles.", "",
               "| runner | tiles | ms / tile (wall) | median run in worker (ms) | output MP/s | GFLOP/s | first run incl. plan (ms) |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        for k, r in R.items():
            if "msPerTile" not in r or r.get("choice"):
                continue
            first = max(r["open"]["firstMs"]) if r["open"].get("firstMs") else None
            md.append(f"| {r['label']} | {r['tiles']} | {fmt(r['msPerTile'])} | {fmt(r['medianRunMs'])} | {fmt(r['outMpps'], 3)} | {fmt(r['gflops'], 1)} | {fmt(first)} |")
        md += choices_md(b, fmt)
        md += profile_md(b, fmt)
        md += ["", "| other networks (Unblur wasm, one worker) | ms per run | GFLOP | GFLOP/s | load (ms) |", "|---|---:|---:|---:|---:|"]
        for k, r in R.items():
            if "msPerRun" not in r:
                continue
            load_ms = r["open"]["loads"][0].get("loadMs") if r["open"].get("loads") else None
            md.append(f"| {r['label']} | {fmt(r['msPerRun'])} | {fmt((r['flops'] or 0) / 1e9, 1)} | {fmt(r['gflops'], 1)} | {fmt(load_ms)} |")
        pool = min((R[k]["msPerTile"] for k in ("unblur-pool-fp32", "unblur-pool-fp16") if k in R), default=None)
        shipped = R.get("unblur-pool-fp16", {}).get("msPerTile")
        st = min((R[k]["msPerTile"] for k in ("ort-st-fp32", "ort-st-fp16") if k in R), default=None)
        mt = R.get("ort-mt-fp32", {}).get("msPerTile")
        if shipped and st:
            ratios["unblur_pool_shipped_vs_best_ort_static"] = st / shipped
        if shipped and mt:
            ratios["unblur_pool_shipped_vs_ort_threaded"] = mt / shipped
        if pool and st:
            ratios["unblur_pool_best_vs_best_ort_static"] = st / pool
        one = R.get("unblur-1w-fp16", {}).get("msPerTile")
        if one and st:
            ratios["unblur_1_worker_vs_ort_static_same_threads"] = st / one
        if one and shipped:
            ratios["pool_speedup_over_1_worker"] = one / shipped
        for key, base in (("relaxed_simd_build_vs_simd128_build", "unblur-1w-simd128"), ("unblur_kernel_vs_tract_kernel", "unblur-1w-tract"),
                          ("shipped_engine_vs_tract_as_shipped", "unblur-1w-simd128-tract")):
            if one and R.get(base, {}).get("msPerTile"):
                ratios[key] = R[base]["msPerTile"] / one
        md += ["", "Ratios (throughput, >1 means Unblur is faster): " + ", ".join(f"{k} = **{v:.2f}×**" for k, v in ratios.items()), ""]
        targets = [("Unblur's pool ≥ 1.5× onnxruntime-web's best on a static host", ratios.get("unblur_pool_shipped_vs_best_ort_static"), 1.5),
                   ("Unblur's pool (static page) ≥ onnxruntime-web with threads (isolated page)", ratios.get("unblur_pool_shipped_vs_ort_threaded"), 1.0)]
        md += ["| target (issue 6) | measured | met |", "|---|---:|:---:|"]
        md += [f"| {t} | {fmt(v, 2)}× | {'yes' if v and v >= bar else 'no'} |" for t, v, bar in targets]
        md.append("")
        if b.get("checks"):
            md.append("Output checks (tile 0, max |Δ| on outputs in 0…1): " + ", ".join(
                f"{k}: {v['maxAbs']:.1e}" if v and "maxAbs" in v else f"{k}: –" for k, v in b["checks"].items() if v is not None))
            md.append("")
    if n:
        la = (f" Load average at the start and end of this part: {' '.join(n['loadavg_start'])} → {' '.join(n['loadavg_end'])}."
              if n.get("loadavg_start") and n.get("loadavg_end") else "")
        md += ["## Native (one process, CPU), realesr-general-x4v3 fp32", "",
               *([la.strip(), ""] if la else []),
               "ms per tile: min (median) over all rounds' runs; GFLOP/s from the min and the graph's conv FLOPs (2·Cin·Cout·k²·H·W).", "",
               "| tile | GFLOP / tile | tract 1 thread ms | tract GFLOP/s | ort 1 thread ms | ort 1t GFLOP/s | ort 2 threads ms | ort 2t GFLOP/s | tract / ort-1t time | tract plan build (ms) |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s, t in n["tiles"].items():
            md.append(f"| {s}² | {t['flops'] / 1e9:.1f} | {fmt(t['tract_ms']['min'])} ({fmt(t['tract_ms']['median'])}) | {fmt(t['tract_gflops'], 1)} | "
                      f"{fmt(t['ort1_ms']['min'])} ({fmt(t['ort1_ms']['median'])}) | {fmt(t['ort1_gflops'], 1)} | {fmt(t['ort2_ms']['min'])} ({fmt(t['ort2_ms']['median'])}) | {fmt(t['ort2_gflops'], 1)} | "
                      f"{t['tract_ms']['min'] / t['ort1_ms']['min']:.2f} | {fmt(t['tract_plan_ms'])} |")
        pk = n.get("peak_gflops", {})
        md += ["", "Measured peaks (numpy/OpenBLAS sgemm, best of runs, GFLOP/s): " +
               "; ".join(f"{th} thread(s): " + ", ".join(f"{k} {v:.0f}" for k, v in d.items()) for th, d in pk.items()), ""]
        big = n["tiles"][max(n["tiles"], key=int)]
        if pk.get("1"):
            p1 = max(pk["1"].values())
            ratios["tract_fraction_of_sgemm_peak_1t"] = big["tract_gflops"] / p1
            ratios["ort1_fraction_of_sgemm_peak_1t"] = big["ort1_gflops"] / p1
            md.append(f"Largest tile: tract reaches {ratios['tract_fraction_of_sgemm_peak_1t']:.0%} and onnxruntime (1 thread) "
                      f"{ratios['ort1_fraction_of_sgemm_peak_1t']:.0%} of the best 1-thread sgemm above; "
                      f"onnxruntime's best (1 thread) is the practical peak: tract is at {big['tract_gflops'] / big['ort1_gflops']:.0%} of it.")
            md.append("")
        prof = n.get("profile")
        if prof:
            md += ["## Where tract's time goes (native, one tile, one thread)", "",
                   "Every node of tract's optimised plan timed with a monotonic clock (`Network::profile`), summed per operator kind; "
                   "median over the runs. `plain` is the same tile without the timing.", ""]
            for s, p in prof.items():
                total = sum(o["ms"] for o in p["ops"]) or 1
                md += [f"{s}² tile: {fmt(p['plain_ms'])} ms plain, {fmt(p['profiled_ms'])} ms profiled.", "",
                       "| operator | nodes | ms | share |", "|---|---:|---:|---:|"]
                rest = [o for o in p["ops"] if o["ms"] / total < 0.005]
                for o in p["ops"]:
                    if o not in rest:
                        md.append(f"| {o['op']} | {o['nodes']} | {fmt(o['ms'], 1)} | {o['ms'] / total:.1%} |")
                if rest:
                    md.append(f"| {len(rest)} others | {sum(o['nodes'] for o in rest)} | {fmt(sum(o['ms'] for o in rest), 1)} | "
                              f"{sum(o['ms'] for o in rest) / total:.1%} |")
                md.append("")
            p96 = prof.get("96") or next(iter(prof.values()))
            by = {o["op"]: o["ms"] for o in p96["ops"]}
            total = sum(by.values()) or 1
            conv = sum(v for k, v in by.items() if k in ("OptMatMul", "DirectSpatialConv", "LazyIm2col", "Im2col", "Pad"))
            prelu = sum(v for k, v in by.items() if k in ("OptMulByScalar", "GT", "Iff", "PReluF32"))
            ratios["tract_profile_conv_share_96"] = conv / total
            ratios["tract_profile_prelu_share_96"] = prelu / total
            how = ("one in-place pass each (vendor/tract-onnx's PReluF32)" if "PReluF32" in by
                   else "which tract splits into a per-channel multiply, a compare and a select")
            line = (f"At 96² the convolutions (matrix products with their padding) take {conv / total:.0%} of the tile and the 33 PReLUs, "
                    f"{how}, {prelu / total:.1%}.")
            p128 = prof.get("128")
            if p128 and p128["ops"] and p128["ops"][0]["op"] == "DirectSpatialConv":
                line += (" At 128² the output rows reach 128 points and tract swaps im2col + matrix product for its direct spatial "
                         f"convolution, {p128['ops'][0]['ms'] / sum(o['ms'] for o in p128['ops']):.0%} of a tile that costs "
                         f"{p128['plain_ms'] / p96['plain_ms']:.1f}× the 96² one for {(128 / 96) ** 2:.2f}× the pixels "
                         "(tract's default, profiled here; the CLI turns it off, see below).")
            md += [line, ""]
        ch = n.get("choices")
        if ch:
            md += ["## What the product's choices won (native, side by side in one run)", "",
                   "Each choice against its alternative, alternating in the same rounds; tract's knobs set through its environment "
                   "variables. Tile sides are compared per useful input megapixel (the tile less its 16-pixel overlap); "
                   "×>1 means the product's setting is faster.", "",
                   "| choice | product | alternative | unit | product | alternative | product's gain |", "|---|---|---|---|---:|---:|---:|"]
            for k, c in ch.items():
                nd = 0 if c["unit"].startswith("ms") else 1
                md.append(f"| {c['choice']} | {c['product']} | {c['alternative']} | {c['unit']} | {fmt(c['product_value'], nd)} | "
                          f"{fmt(c['alternative_value'], nd)} | {c['product_speedup']:.2f}× |")
                ratios[f"choice_{k}"] = c["product_speedup"]
            md.append("")
            t96 = n["tiles"].get("96")
            if t96:
                best = t96["tract_ms"]["min"]
                line = f"tract against onnxruntime (1 thread) at 96²: {best / t96['ort1_ms']['min']:.2f}× its time (aim: 1.2×)"
                ratios["tract_vs_ort1_time_96"] = best / t96["ort1_ms"]["min"]
                g = n.get("gemm")
                if g:
                    line += f"; f32 GEMM family: {g['family']} ({g['why']}"
                    if g.get("tract_ms") is not None:
                        line += f": tract's choice {g['tract_ms']:.1f} ms, AVX2+FMA {g['fma_ms']:.1f} ms on one 64→64 3×3 convolution at 64²"
                    line += ")"
                md += [line + ".", ""]
        e = n.get("e2e")
        if e:
            th = e.get("threads", 1)
            md += [f"## CLI end to end (`unblur restore --scale 2 --faces auto`, tile 96, {th} thread{'s' if th != 1 else ''})", "",
                   "| photo | pixels | tiles | wall (s) | max RSS (MB) | RSS halfway (MB) | photo + canvas (MB) | note |", "|---|---|---:|---:|---:|---:|---:|---|"]
            for k, r in e.items():
                if not isinstance(r, dict) or "tiles" not in r:
                    continue
                note = (f"capped at {r['wall_s']:.0f} s; extrapolated full run ≈ {r['extrapolated_wall_s'] / 60:.1f} min"
                        if r["capped"] else f"ran to the end; {r.get('json', {}).get('faces', '?')} faces")
                mid = r.get("rss_mid_run_mb")
                if mid is None and r.get("rss_samples_mb"):
                    mid = min(r["rss_samples_mb"], key=lambda x: abs(x[0] - r["wall_s"] / 2))[1]
                md.append(f"| {k} | {r['width']}×{r['height']} ({r['megapixels']:.1f} MP) | {r['tiles']} | {r['wall_s']:.1f} | {r['max_rss_mb']:.0f} | "
                          f"{fmt(mid)} | {fmt(r.get('image_buffers_mb'))} | {note} |")
            one = e.get("small_1_thread")
            md += ["", (f"Estimates: small photo's fixed + faces time ({e['small']['fixed_and_faces_s']:.1f} s) + tiles × "
                        f"the threaded wall time per 96² tile ({e['tile96_s_used'] * 1e3:.0f} ms); a photo whose estimate fits runs to the end. "
                        "Photo + canvas: the decoded photo and the 16-bit output canvas, the two images a job holds whole; "
                        "its pages become resident as the tiles reach them. Beyond them the RSS is the networks and the tiles in flight; "
                        "the peak comes at the end (faces, then the 8-bit output and its encoded bytes beside the canvas). "
                        + ("RSS of a capped run is the peak while tiles were running (before the final encode). " if any(
                            isinstance(r, dict) and r.get("capped") for r in e.values()) else "")
                        + (f"The small photo with `--threads 1`: {one['wall_s']:.1f} s, max RSS {one['max_rss_mb']:.0f} MB." if one else "")), ""]
    pg = load(os.path.join(out, "page.json"))
    if pg:
        md += page_md(pg, fmt)
    rep = load(os.path.join(HERE, "..", "models", "build", "report.json"))
    if rep and rep.get("rows"):
        shipped = [r for r in rep["rows"] if r.get("shipped")]
        md += ["## Every shipped form against its fp32 (`models/build.py --report`, the site's models)", "",
               "| model | shipped form | bytes | fidelity vs fp32 |", "|---|---|---:|---|"]
        md += [f"| {r['model']} | {r['form']} | {r['bytes']:,} | {r['metric']} |" for r in shipped]
        md += ["", "PSNR of the shipped form's output against fp32 on 96² crops of the dev photos (bar 40 dB); the detector: "
               "mean IoU of matched faces (bar 0.95). The denoise preset (`-dn50`) is the blend itself, measured as shipped.", ""]
    pvo = load(os.path.join(out, "page_vs_ort.json"))
    if pvo:
        md += ["## The whole ×4 job in the browser against onnxruntime-web (`bench/page_vs_ort.mjs`)", "",
               "Photo dropped → download ready for the page; fetch + session + tiles + PNG for onnxruntime-web running the same network "
               "in fp32 (the page runs its int8 form), each at its tile.", "", pvo["table"], ""]
        ratios["page_job_vs_ort_web_single_thread"] = pvo["ratios"]["vs_ort_single_thread"]
        ratios["page_job_vs_ort_web_threaded"] = pvo["ratios"]["vs_ort_threaded"]
        if "deblur_off_vs_ort_threaded" in pvo["ratios"]:
            ratios["page_job_deblur_off_vs_ort_web_threaded"] = pvo["ratios"]["deblur_off_vs_ort_threaded"]
    x = load(os.path.join(out, "exported-wasm.json"))
    if x and x.get("results"):
        md += ["## Face restorer architectures in Unblur wasm (random weights, `models/export.py --all-random`)", "",
               "One input per architecture, in a fresh worker; the first run includes tract's plan building.", "",
               "| architecture | ONNX (MB) | input | first run (s) | later run (s) | wasm heap (MiB) | rel err vs PyTorch |",
               "|---|---:|---|---:|---:|---:|---:|"]
        for r in x["results"]:
            if r.get("ok") and r.get("onnx_mb") is None:
                continue  # the GEMM kernel check (gemm-kernels) is not an architecture
            again = f"{r['again_s']:.1f}" if r.get("again_s") else "—"
            shape = "×".join(str(v) for v in r.get("input_shape", [])[2:])
            md.append(f"| {r['arch']} | {r['onnx_mb']:.0f} | {shape} | {r['run_s']:.1f} | {again} | {r.get('heap_peak_mib', 0)} | "
                      f"{r['rel_err']:.1e} |" if r.get("ok") else f"| {r['arch']} | — | — | failed | — | — | — |")
        md.append("")
    fc = load(os.path.join(out, "face.json"))
    wasm_pth = {r["arch"][4:]: r for r in (x or {}).get("results", []) if r["arch"].startswith("pth:") and r.get("ok")}
    if (fc and fc.get("published")) or wasm_pth:
        md += ["## Time per face, per published face restorer (one 512² face)", "",
               "Native: `unblur models run` (bench/face.py), one thread. Page: the same .pth converted by the Rust "
               "converter in wasm, in a Web Worker in Chromium (tests/e2e/exported.mjs); the first run includes tract's plan.", "",
               "| model | native: first use, convert + load (s) | native per face (s) | page: convert (s) | page: first face (s) | page: later face (s) | page heap (MiB) |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        native = {r["arch"]: r for r in (fc or {}).get("published", [])}
        for arch, name in (("gfpgan", "GFPGAN v1.4"), ("codeformer", "CodeFormer v0.1.0")):
            n, w = native.get(arch), wasm_pth.get(arch)
            if not (n or w):
                continue
            f = lambda v, d=1: "—" if v is None else f"{v:.{d}f}"
            md.append(f"| {name} | {f(n and n['convert_and_load_ms'] / 1e3)} | {f(n and n['ms'] / 1e3)} | "
                      f"{f(w and w.get('convert_ms', 0) / 1e3)} | {f(w and w['run_s'])} | {f(w and w.get('again_s'))} | "
                      f"{w['heap_peak_mib'] if w else '—'} |")
        md.append("")
    md += stages_md(load(os.path.join(out, "stages.json")), b, load(os.path.join(out, "suggestion.json")))
    fc = load(os.path.join(out, "face.json"))
    if fc:
        md += ["## The face stage natively (`bench/face.py`: one aligned face, one thread)", "",
               "Unblur's face model on its 256² input against the SR fallback on the crop it runs for a face of that size "
               "in the photo; GMAC from the graph.", "", fc["markdown"], ""]
    md_text = "\n".join(md)
    with open(os.path.join(out, "bench.md"), "w") as f:
        f.write(md_text + "\n")
    with open(os.path.join(out, "bench.json"), "w") as f:
        json.dump({"machine": machine, "ratios": ratios, "browser": b, "native": n, "page": pg}, f, indent=1)
    print(md_text)


if __name__ == "__main__":
    main()

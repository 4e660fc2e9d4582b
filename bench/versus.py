#!/usr/bin/env python3
"""One commit against another, side by side in one run (bench/versus.sh builds both).

Each figure is measured on both in alternating order, round by round (base, head; head, base; ...),
so that the machine's drift falls on both alike:
  - the CLI's whole job (`unblur restore`, its default threads) on real photos: wall time (median)
    and peak RSS (/usr/bin/time), and whether the two give the same output bytes;
  - the page (bench/page.mjs, the same script on both sites, in the same Chromium): first visit
    (bytes as a static host sends them, by part; time to the engine ready and to the first restored
    photo) and the whole ×4 job on a real 0.32 MP photo (time, the tab's peak memory); then that job
    alone over more rounds (bench/page_job.mjs).
Writes bench/out/versus.json and bench/out/versus.md and prints the table: every figure with the
head's ratio to the base, marked where the head is more than 5 % worse.

    python3 bench/versus.py --base-tree DIR --base-rev REV --head-tree DIR --head-rev REV
                            [--rounds 3] [--page-rounds 2] [--job-rounds 4]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DEV = Path(os.environ.get("UNBLUR_DEV_DATA", REPO.parent / "shared" / "data" / "dev"))
JOBS = [  # (label, photo, CLI arguments)
    ("CLI: 0.32 MP photo ×4, faces off", DEV / "gfpgan/whole_imgs/Blake_Lively.jpg", ["--scale", "4", "--faces", "off"]),
    ("CLI: 0.32 MP photo ×4, faces on", DEV / "gfpgan/whole_imgs/Blake_Lively.jpg", ["--scale", "4", "--faces", "auto"]),
    ("CLI: 0.78 MP group photo ×2, faces on", DEV / "codeformer/whole_imgs/02.png", ["--scale", "2", "--faces", "auto"]),
]
BAR = 1.05


def log(msg: str) -> None:
    print(f"[versus] {msg}", flush=True)


def cli_job(tree: Path, binary: Path, photo: Path, args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tfile = Path(d) / "time.txt"
        r = subprocess.run(["/usr/bin/time", "-v", "-o", str(tfile), str(binary), "restore", *args,
                            "-o", d, str(photo)], cwd=tree, capture_output=True, text=True,
                           env=dict(os.environ, UNBLUR_MODELS=str(tree / "models" / "build")))
        if r.returncode != 0:
            raise SystemExit(f"{binary} failed on {photo.name}: {r.stderr[-2000:]}")
        t = tfile.read_text()
        wall = t.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split("\n")[0]
        parts = [float(x) for x in wall.split(":")]
        secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
        outs = [p for p in Path(d).iterdir() if p.name != "time.txt"]
        digest = hashlib.sha256(outs[0].read_bytes()).hexdigest() if len(outs) == 1 else None
        return {"s": secs, "rss": rss, "sha256": digest}


def page_run(site: Path, dest: Path) -> dict:
    env = dict(os.environ, UNBLUR_SITE=str(site), BENCH_OUT=str(dest), BENCH_BIG="0", BENCH_MID="1")
    r = subprocess.run(["node", str(REPO / "bench" / "page.mjs")], cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench/page.mjs failed on {site}: {r.stderr[-3000:]}")
    return json.loads(dest.read_text())


def wasm_sizes(site: Path) -> dict:
    out = {}
    for d in ("pkg", "pkg-relaxed"):
        f = site / d / "unblur_web_bg.wasm"
        if f.is_file():
            data = f.read_bytes()
            out[d] = {"bytes": len(data), "gzip": len(gzip.compress(data, 6))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-tree", required=True, type=Path)
    p.add_argument("--base-rev", required=True)
    p.add_argument("--head-tree", required=True, type=Path)
    p.add_argument("--head-rev", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--page-rounds", type=int, default=2)
    p.add_argument("--job-rounds", type=int, default=4)
    a = p.parse_args()
    trees = {"base": a.base_tree.resolve(), "head": a.head_tree.resolve()}
    bins = {w: OUT / "versus" / f"unblur-{w}" for w in trees}
    rows = []  # (figure, unit, lower_is_better, base, head)

    for label, photo, args in JOBS:
        runs = {w: [] for w in trees}
        for r in range(a.rounds):
            for w in (("base", "head") if r % 2 == 0 else ("head", "base")):
                runs[w].append(cli_job(trees[w], bins[w], photo, args))
                log(f"{label} [{w}] {runs[w][-1]['s']:.2f} s, {runs[w][-1]['rss'] / 2**20:.0f} MiB")
        same = {x["sha256"] for w in trees for x in runs[w]}
        rows.append((f"{label}: wall", "s", True, *(statistics.median(x["s"] for x in runs[w]) for w in trees)))
        rows.append((f"{label}: peak RSS", "MiB", True, *(statistics.median(x["rss"] for x in runs[w]) / 2**20 for w in trees)))
        rows.append((f"{label}: same output bytes", "", None, "", "yes" if len(same) == 1 else "no"))

    pages = {w: [] for w in trees}
    for r in range(a.page_rounds):
        for w in (("base", "head") if r % 2 == 0 else ("head", "base")):
            pages[w].append(page_run(trees[w] / "dist" / "site", OUT / "versus" / f"page-{w}-{r}.json"))
            fv, mid = pages[w][-1]["firstVisit"], pages[w][-1]["mid"]
            log(f"page [{w}] first visit {fv['total']['gzip'] / 1e6:.2f} MB gz, photo at {fv['firstPhotoMs']} ms; "
                f"0.32 MP ×4 {mid['wallMs']} ms")

    def med(w, f):
        return statistics.median(f(x) for x in pages[w])

    fv_rows = [("first visit, total (gzip)", "MB", lambda x: x["firstVisit"]["total"]["gzip"] / 1e6)]
    for kind in pages["head"][0]["firstVisit"]["byKind"]:
        fv_rows.append((f"first visit, {kind} (gzip)", "MB",
                        lambda x, k=kind: x["firstVisit"]["byKind"].get(k, {"gzip": 0})["gzip"] / 1e6))
    fv_rows += [("page: engine ready after", "ms", lambda x: x["firstVisit"]["readyMs"]),
                ("page: first restored photo after", "ms", lambda x: x["firstVisit"]["firstPhotoMs"]),
                ("page: 0.32 MP photo ×4, faces off, chosen → download", "ms", lambda x: x["mid"]["wallMs"]),
                ("page: 0.32 MP photo ×4, the tab's peak memory", "MiB", lambda x: x["mid"]["peakRenderer"] / 2**20)]
    for name, unit, f in fv_rows:
        rows.append((name, unit, True, med("base", f), med("head", f)))
    # The job alone, more rounds: page.mjs's one job per round is too few for a 5 % question.
    r = subprocess.run(["node", str(REPO / "bench" / "page_job.mjs"), str(trees["base"] / "dist" / "site"),
                        str(trees["head"] / "dist" / "site"), str(a.job_rounds)], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench/page_job.mjs failed: {r.stderr[-3000:]}")
    job = json.loads(r.stdout)
    rows.append((f"page: 0.32 MP photo ×4, faces off, Restore → done ({a.job_rounds} rounds)", "ms", True,
                 statistics.median(job["a"]), statistics.median(job["b"])))
    rows.append((f"page: opened → engine ready, empty cache ({a.job_rounds} rounds)", "ms", True,
                 statistics.median(job["ready"]["a"]), statistics.median(job["ready"]["b"])))
    sizes = {w: wasm_sizes(trees[w] / "dist" / "site") for w in trees}
    for d in sizes["head"]:
        if d in sizes["base"]:
            rows.append((f"wasm {d}/ (gzip)", "MB", True, sizes["base"][d]["gzip"] / 1e6, sizes["head"][d]["gzip"] / 1e6))

    table = [f"| figure | {a.base_rev} (base) | {a.head_rev} (head) | head / base | within 5 % |",
             "|---|---:|---:|---:|:---:|"]
    worse = []
    for name, unit, lower, b, h in rows:
        if lower is None:
            table.append(f"| {name} | | {h} | | {'✓' if h == 'yes' else '–'} |")
            continue
        ratio = h / b if b else float("nan")
        ok = ratio <= BAR
        if not ok:
            worse.append(name)
        fmt = (lambda v: f"{v:,.0f}") if unit in ("ms", "MiB") else (lambda v: f"{v:,.2f}")
        table.append(f"| {name} ({unit}) | {fmt(b)} | {fmt(h)} | {ratio:.3f} | {'✓' if ok else '✗'} |")
    load = os.getloadavg()
    md = (f"### This checkout against {a.base_rev}, side by side\n\n"
          f"Alternating rounds: CLI {a.rounds} per job, page {a.page_rounds}, page job {a.job_rounds}; medians. Load average when written: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.\n\n" + "\n".join(table) + "\n\n"
          + (f"More than 5 % worse: {', '.join(worse)}.\n" if worse else "No figure more than 5 % worse.\n"))
    print(md)
    (OUT / "versus.md").write_text(md)
    (OUT / "versus.json").write_text(json.dumps(
        {"base": a.base_rev, "head": a.head_rev, "rounds": a.rounds, "page_rounds": a.page_rounds,
         "rows": [dict(zip(("figure", "unit", "lower_is_better", "base", "head"), r)) for r in rows],
         "pages": pages, "wasm": sizes}, indent=1))


if __name__ == "__main__":
    main()

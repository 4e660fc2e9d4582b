#!/usr/bin/env python3
"""A 12-megapixel scan with repair against the same job without it: the CLI's peak memory.

The scan is the cracked dev print `old-photos/scratched_a.png` brought to 12 MP (Lanczos), so its
cracks and spots are 5–20 px wide and the patch fill runs as well as Telea's. Each run is a fresh
`unblur restore` process: `--repair off` (the job as it is without repair), `--repair auto` (the
detector on its ≤ 1 MP copy, then the fill) and `--repair MASK.png` (a user's mask: the detector's
own, saved at the scan's size, dilated by 2 px); its maximum resident set (`wait4`'s ru_maxrss) and
wall time. The same faces, deblur and scale for all.

    python3 bench/repair_memory.py [--scale 1] [--threads 2]

Prints a table, writes bench/out/repair_memory.json. Needs target/release/unblur and the built
models (models/build).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "target" / "release" / "unblur"
SCAN = REPO.parent / "shared" / "data" / "dev" / "old-photos" / "scratched_a.png"
OUT = REPO / "bench" / "out"


def run(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, max RSS in MB and the last line of stderr of one fresh process (stderr to a
    file: a pipe left unread could fill and stall the run)."""
    with tempfile.TemporaryFile() as err:
        started = time.time()
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.time() - started
        err.seek(0)
        said = err.read().decode().strip()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed:\n{said}")
    return wall, usage.ru_maxrss / 1024, said.splitlines()[-1] if said else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="1")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--megapixels", type=float, default=12.0)
    a = ap.parse_args()
    if not CLI.exists():
        sys.exit(f"missing {CLI}: cargo build --release")
    src = Image.open(SCAN).convert("RGB")
    k = (a.megapixels * 1e6 / (src.width * src.height)) ** 0.5
    size = (round(src.width * k), round(src.height * k))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scan = tmp / "scan.png"
        src.resize(size, Image.LANCZOS).save(scan)
        base = [str(CLI), "restore", "--scale", a.scale, "--faces", "auto", "--threads", a.threads,
                "--out", str(tmp / "out")]
        # The user's mask: the detector's call on the scan, as `--repair auto` makes it, widened.
        import cv2  # noqa: E402  (only here: the mask's dilation)
        sys.path.insert(0, str(REPO / "bench"))
        from repair_eval import Detector  # the detector as the core runs it (onnxruntime)
        found = Detector(REPO / "models" / "unblur-repair" / "unblur-repair.onnx")(np.asarray(Image.open(scan)))
        mask = cv2.dilate(found.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
        mask_png = tmp / "mask.png"
        Image.fromarray(mask).save(mask_png)
        for label, repair in [("--repair off", "off"), ("--repair auto", "auto"),
                              ("--repair MASK.png", str(mask_png))]:
            wall, rss, said = run(base + ["--repair", repair, str(scan)])
            rows.append({"run": label, "wall_s": wall, "max_rss_mb": rss, "said": said})
            print(f"{label}: {wall:.1f} s, max RSS {rss:.0f} MB ({said})", file=sys.stderr)
    print(f"\n12 MP scan: {size[0]}×{size[1]} ({size[0] * size[1] / 1e6:.1f} MP), ×{a.scale}, "
          f"{a.threads} threads; mask {100 * float((mask > 0).mean()):.2f} % of the scan\n")
    print("| run | wall (s) | max RSS (MB) | vs --repair off |")
    print("|---|---:|---:|---:|")
    off = rows[0]["max_rss_mb"]
    for r in rows:
        print(f"| {r['run']} | {r['wall_s']:.1f} | {r['max_rss_mb']:.0f} | {r['max_rss_mb'] - off:+.0f} MB |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "repair_memory.json").write_text(json.dumps(
        {"size": size, "scale": a.scale, "threads": a.threads, "rows": rows,
         "mask_fraction": float((mask > 0).mean())}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

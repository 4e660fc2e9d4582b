#!/usr/bin/env python3
"""Packs FFHQ faces for the GPU machine (issue 29; only 64 MiB of working tree travels there, and it
cannot reach PyPI), and unpacks them there into the cache `train512.py` reads.

    python3 models/face/pack.py [--data models/build/faces512] [--out models/build/faces512/pack]
        [--mib 50] [--select 16]
    python3 models/face/pack.py --unpack PACK --out DIR

The pack (git-ignored, under models/build; derived from FFHQ, CC BY-NC-SA, never committed):
`faces/<file>`: each face's source bytes as they are (AVIF, ~44 kB: ~1,190 faces in 50 MiB);
`index.json`: prepare512's fit of each face (the similarity onto the template, landmarks,
coverage), so that unpacking needs no YuNet, only Pillow with AVIF (which `gpu.sh` checks first).
The first `--select` faces are prepare512's selection faces (train512 scores them, never trains
on them); the rest are training faces in a fixed name-hashed order, as many as fit.
Unpacking writes what prepare512 writes for `train/` (photo, bicubic target, coverage mask,
index.json with `select`); `val/` stays behind: it is only for the report.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import write_json  # noqa: E402
from face.prepare512 import OUT, SIDE, coverage, load, warp_hq  # noqa: E402


def odd(r: dict) -> bool:
    """A fit train512 leaves out (rotated or far-off detection, most of the template uncovered)."""
    return abs(r["rot_deg"]) > 12 or r["coverage"] < 0.65


def pack(data: Path, out: Path, mib: float, n_select: int) -> None:
    index = json.loads((data / "index.json").read_text())
    src = Path(index["src"]) / "train"
    rows = index["train"]
    select = sorted(index["select"])[:n_select]
    held = set(index["select"])  # all of them stay out of training, packed or not
    rest = sorted((i for i in range(len(rows)) if i not in held and not odd(rows[i])),
                  key=lambda i: hashlib.sha1(rows[i]["file"].encode()).hexdigest())
    if out.exists():
        shutil.rmtree(out)
    (out / "faces").mkdir(parents=True)
    budget, used, kept = mib * 2 ** 20, 0, []
    for k, i in enumerate([*select, *rest]):
        size = (src / rows[i]["file"]).stat().st_size
        if used + size > budget - 2 ** 20:  # a MiB for the index
            if k < len(select):
                raise SystemExit(f"the selection faces alone exceed {mib} MiB")
            continue
        shutil.copyfile(src / rows[i]["file"], out / "faces" / rows[i]["file"])
        used += size
        kept.append(rows[i])
    write_json(out / "index.json", {"side": SIDE, "faces": kept, "select": len(select)})
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {len(kept)} faces ({len(select)} selection) into {out}: {total / 2 ** 20:.1f} MiB")


def unpack(src: Path, out: Path) -> None:
    index = json.loads((src / "index.json").read_text())
    faces, n_select = index["faces"], index["select"]
    out.mkdir(parents=True, exist_ok=True)
    n = len(faces)
    arrays = {k: np.lib.format.open_memmap(out / f"train_{k}.npy", "w+", np.uint8, shape)
              for k, shape in (("photo", (n, SIDE, SIDE, 3)), ("target", (n, SIDE, SIDE, 3)), ("mask", (n, SIDE, SIDE)))}
    t0 = time.time()
    for i, r in enumerate(faces):
        rgb = load(src / "faces" / r["file"])
        if rgb.shape[:2] != (SIDE, SIDE):
            raise SystemExit(f"{r['file']}: {rgb.shape[1]}x{rgb.shape[0]}, not {SIDE}²")
        m = np.asarray(r["m"], np.float64)
        arrays["photo"][i] = rgb
        arrays["target"][i] = warp_hq(rgb, m)
        arrays["mask"][i] = coverage(m, SIDE, SIDE)
    for a in arrays.values():
        a.flush()
    write_json(out / "index.json", {"side": SIDE, "src": f"pack:{src}", "train": faces, "val": [],
                                    "select": list(range(n_select))})
    print(f"unpacked {n} faces ({n_select} selection) into {out} in {time.time() - t0:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=OUT, help="prepare512.py's output")
    ap.add_argument("--out", type=Path, default=OUT / "pack")
    ap.add_argument("--mib", type=float, default=50.0, help="the pack's size: with the ~12 MiB working tree it must fit the 64 MiB that travels")
    ap.add_argument("--select", type=int, default=16, help="selection faces packed for train512's validation")
    ap.add_argument("--unpack", type=Path, help="a pack folder to expand into --out")
    args = ap.parse_args()
    if args.unpack:
        unpack(args.unpack, args.out)
    else:
        pack(args.data, args.out, args.mib, args.select)
    return 0


if __name__ == "__main__":
    sys.exit(main())

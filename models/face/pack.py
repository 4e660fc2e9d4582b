#!/usr/bin/env python3
"""Packs the sharpest training faces compactly for the GPU machine (only 64 MiB of working tree
travels there), and unpacks them there into the memmaps `train.py` reads.

    python3 models/face/pack.py [--data models/build/faces] [--out models/build/faces/pack] [--n 2400]
    python3 models/face/pack.py --unpack models/build/faces/pack --out /tmp/faces

The pack (git-ignored, under models/build): `faces.bin` (JPEG q92 of each 256² face, one after
another), `masks.bin` (PNG of each valid-pixel mask), `index.json` (offsets), and the first
held-out faces for `train.py`'s learning curve.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import WORK, write_json  # noqa: E402

HELD = 24


def pack(data: Path, out: Path, n: int) -> None:
    index = json.loads((data / "index.json").read_text())
    faces = np.load(data / "train_256.npy", mmap_mode="r")
    masks = np.load(data / "train_mask.npy", mmap_mode="r")
    rows = sorted(index["train"], key=lambda i: -index["rows"][i]["sharpness"])[:n]
    out.mkdir(parents=True, exist_ok=True)
    spans = []
    with open(out / "faces.bin", "wb") as fb, open(out / "masks.bin", "wb") as mb:
        for r in rows:
            a, b = io.BytesIO(), io.BytesIO()
            Image.fromarray(np.asarray(faces[r])).save(a, "JPEG", quality=92)
            Image.fromarray(np.asarray(masks[r]) * 255).convert("1").save(b, "PNG", optimize=True)
            spans.append([fb.tell(), len(a.getvalue()), mb.tell(), len(b.getvalue())])
            fb.write(a.getvalue())
            mb.write(b.getvalue())
    held = json.loads((data / "heldout.json").read_text())[:HELD]
    (out / "heldout").mkdir(exist_ok=True)
    for h in held:
        shutil.copyfile(data / "heldout" / f"{h['id']}.png", out / "heldout" / f"{h['id']}.png")
    write_json(out / "heldout.json", held)
    write_json(out / "index.json", {"spans": spans, "rows": rows})
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {len(rows)} faces into {out} ({size / 2**20:.1f} MiB)")


def unpack(src: Path, out: Path) -> None:
    index = json.loads((src / "index.json").read_text())
    spans = index["spans"]
    out.mkdir(parents=True, exist_ok=True)
    n = len(spans)
    faces = np.lib.format.open_memmap(out / "train_256.npy", "w+", np.uint8, (n, 256, 256, 3))
    masks = np.lib.format.open_memmap(out / "train_mask.npy", "w+", np.uint8, (n, 256, 256))
    fb, mb = (src / "faces.bin").read_bytes(), (src / "masks.bin").read_bytes()
    for i, (fo, fl, mo, ml) in enumerate(spans):
        faces[i] = np.asarray(Image.open(io.BytesIO(fb[fo:fo + fl])).convert("RGB"))
        masks[i] = np.asarray(Image.open(io.BytesIO(mb[mo:mo + ml])).convert("L")) > 127
    faces.flush()
    masks.flush()
    shutil.copytree(src / "heldout", out / "heldout", dirs_exist_ok=True)
    shutil.copyfile(src / "heldout.json", out / "heldout.json")
    rows = [{"src": f"pack:{r}"} for r in index["rows"]]
    write_json(out / "index.json", {"side": 256, "rows": rows, "train": list(range(n)), "heldout": []})
    print(f"unpacked {n} faces into {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=WORK)
    ap.add_argument("--out", type=Path, default=WORK / "pack")
    ap.add_argument("--n", type=int, default=2400)
    ap.add_argument("--unpack", type=Path, help="a pack folder to expand into --out")
    args = ap.parse_args()
    if args.unpack:
        unpack(args.unpack, args.out)
    else:
        pack(args.data, args.out, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())

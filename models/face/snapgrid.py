#!/usr/bin/env python3
"""The 1:1 grid to judge a training snapshot by before any number (issue 29: the GAN's ripples
lower NIQE while the faces get worse): for a few held-back `train/` faces (the checkpoint
selection's, never `val/`), at both reference levels, the 256² window over the eyes and mouth of
bicubic, each generator given, and the ground truth, side by side at 1:1.

    python3 models/face/snapgrid.py GEN.pt [GEN.pt ...] [--faces 3] [--out PNG]

Generators are fp16 state dicts as train512.py saves them (`gen_fp16.pt`, `snapshots/*.pt`,
the committed candidates). The grid shows real people's faces (FFHQ, non-commercial): it goes to
the git-ignored build folder, never to the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.degrade import LEVELS, resize, to_face_input  # noqa: E402
from face.net512 import new_generator  # noqa: E402
from face.prepare512 import OUT as DATA  # noqa: E402
from face.train512 import FACE_CROP, held_back_lq  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gens", nargs="+", type=Path)
    ap.add_argument("--faces", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=DATA / "grids" / "snapgrid.png")
    args = ap.parse_args(argv)
    nets = []
    for path in args.gens:
        nets.append(new_generator(torch.load(path, map_location="cpu")).freeze_noise().eval())  # as it ships
    index = json.loads((args.data / "index.json").read_text())
    rows = sorted(index["select"])[: args.faces]  # the first of the held-back faces, as validation scores
    targets = np.load(args.data / "train_target.npy", mmap_mode="r")
    (cy, cx), c = FACE_CROP, 256
    cut = lambda img: (np.clip(img, 0, 1)[cy:cy + c, cx:cx + c] * 255 + 0.5).astype(np.uint8)  # noqa: E731
    lines = []
    with torch.no_grad():
        for row in rows:
            gt = np.asarray(targets[row], np.float32) / 255.0
            for i, lv in enumerate(LEVELS):
                lq = held_back_lq(gt, row, i)
                x = torch.from_numpy(to_face_input(lq, 256)).permute(2, 0, 1)[None] * 2 - 1
                tiles = [cut(resize(lq, 512))]
                for g in nets:
                    tiles.append(cut((g(x)[0].permute(1, 2, 0).numpy() + 1) / 2))
                tiles.append(cut(gt))
                gap = np.full((c, 4, 3), 255, np.uint8)
                lines.append(np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1))
                lines.append(np.full((4, lines[-1].shape[1], 3), 255, np.uint8))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(lines[:-1], axis=0)).save(args.out)
    print(f"{args.out}: columns bicubic, {', '.join(p.name for p in args.gens)}, ground truth; "
          f"rows {len(rows)} faces × {', '.join(LEVELS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PyTorch's output for one face, from a face-restorer checkpoint loaded through spandrel (as
models/checkpoints.py loads its fixtures): the page test's independent judge of the face the
page restored with the same file.

    python3 tests/face_reference.py --pth FILE.pth --arch gfpgan|codeformer --input IN.bin --out OUT.bin [--fidelity W]

IN.bin: raw f32 LE [1,3,512,512] RGB in -1..1 (the page's network input for that face);
OUT.bin: PyTorch's output, in the same layout.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))

import checkpoints  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pth", required=True)
    p.add_argument("--arch", required=True, choices=sorted(checkpoints.FIDELITIES))
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fidelity", type=float, default=0.5)
    a = p.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(2)
    x = np.fromfile(a.input, dtype="<f4")
    if x.size != 3 * 512 * 512:
        sys.exit(f"{a.input}: {x.size} values, not 3×512×512")
    model = checkpoints.load(Path(a.pth), a.arch)
    y = checkpoints.forward(model, a.arch, torch.from_numpy(x.reshape(1, 3, 512, 512)), a.fidelity)
    y.astype("<f4").tofile(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

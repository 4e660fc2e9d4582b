#!/usr/bin/env python3
"""Random-weight checkpoints in the exact upstream layout of the published face restorers, and
PyTorch's output on each, for the Rust converter's tests (`src/convert/`, `tests/integration/convert.rs`).

    python3 models/checkpoints.py [--out-dir models/build/checkpoints] [--force] [--only gfpgan,codeformer]
    python3 models/checkpoints.py --compare FILE.pth --arch gfpgan|codeformer [--fidelity 0.5] [--unblur BIN]

The real GFPGAN and CodeFormer weights cannot be had on this machine, so each checkpoint is the
architecture's default random state dict (seeded; tensors the default init leaves at zero get small
random values, as `export.py` does), saved with `torch.save` as upstream saved theirs: a zip file
holding a dict `{"params_ema": state_dict}` with upstream's key names and nesting. PyTorch's
reference loads *that file* through spandrel (so spandrel's own detection vouches for the layout)
and runs the architecture's forward: GFPGAN with `randomize_noise=False` (its stored noise),
CodeFormer with `weight=w` for each fidelity in FIDELITIES.

Written to OUT_DIR: ARCH.pth, ARCH.input.bin (raw f32 LE [1,3,512,512] RGB in -1..1: a real dev
face, aligned), ARCH.w{W}.expected.bin (PyTorch's output), ARCH.json (shapes, sha256, fidelities).

--compare is for anyone with the real files (GFPGANv1.4.pth, codeformer.pth): it runs PyTorch
(spandrel) and Unblur (`unblur models run`, which converts the file in Rust) on the same dev face
and prints the relative error and the PSNR of Unblur's stored form (bar: 40 dB). It needs `cargo build --release` first.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FIDELITIES = {"gfpgan": [None], "codeformer": [0.5, 1.0]}
FACE = HERE.parent.parent / "shared" / "data" / "dev" / "codeformer" / "cropped_faces"


def log(msg: str) -> None:
    print(msg, flush=True)


def face_input():
    """One real aligned 512² dev face as [1,3,512,512] RGB in -1..1 (a random image would leave
    the activations far from where real photos put them)."""
    import numpy as np
    import torch
    from PIL import Image

    faces = sorted(p for p in FACE.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    img = Image.open(faces[0]).convert("RGB").resize((512, 512), Image.BICUBIC)
    a = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None]


def forward(model, arch: str, x, w):
    import torch

    with torch.no_grad():
        if arch == "gfpgan":
            y = model(x, return_rgb=False, randomize_noise=False)[0]
        else:
            y = model(x, weight=w)[0]
    return y.float().numpy()


def load(path: Path, arch: str):
    import spandrel

    from unblur_models.export_archs import ARCHS, register_spandrel_extras

    register_spandrel_extras()
    desc = spandrel.ModelLoader().load_from_file(str(path))
    if str(desc.architecture.id) != ARCHS[arch].spandrel_id:
        raise RuntimeError(f"{path} was detected as {desc.architecture.id}, not {arch}")
    model = desc.model.eval()
    return model


def make(arch: str, out_dir: Path) -> dict:
    import torch

    from unblur_models.common import sha256_file

    from unblur_models.export_archs import ARCHS, load_model

    t0 = time.time()
    spec = ARCHS[arch]
    torch.manual_seed(0)
    model = load_model(spec, None, seed=0)  # the seeded random state dict, as export.py makes it
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    del model
    pth = out_dir / f"{arch}.pth"
    torch.save({"params_ema": sd}, pth)  # upstream's layout: the EMA weights under params_ema
    model = load(pth, arch)
    x = face_input()
    x.numpy().astype("<f4").tofile(out_dir / f"{arch}.input.bin")
    refs = {}
    for w in FIDELITIES[arch]:
        y = forward(model, arch, x, w)
        name = f"{arch}.w{w}.expected.bin" if w is not None else f"{arch}.expected.bin"
        y.astype("<f4").tofile(out_dir / name)
        refs["none" if w is None else str(w)] = name
    meta = {"arch": arch, "pth": pth.name, "pth_sha256": sha256_file(pth), "pth_bytes": pth.stat().st_size,
            "tensors": len(sd), "input": f"{arch}.input.bin", "shape": [1, 3, 512, 512], "expected": refs,
            "source": "PyTorch via spandrel, loaded from the .pth", "seconds": round(time.time() - t0, 1)}
    (out_dir / f"{arch}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def compare(pth: Path, arch: str, fidelity: float, unblur: str) -> int:
    import subprocess
    import tempfile

    import numpy as np

    model = load(pth, arch)
    x = face_input()
    ref = forward(model, arch, x, fidelity).ravel()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        x.numpy().astype("<f4").tofile(inp)
        cmd = [unblur, "models", "run", str(pth), "--input", str(inp), "--output", str(out)]
        if arch == "codeformer":
            cmd += ["--fidelity", str(fidelity)]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())
        got = np.fromfile(out, dtype="<f4")
    if got.size != ref.size:
        print(f"sizes differ: unblur {got.size}, pytorch {ref.size}", file=sys.stderr)
        return 1
    rel = float(np.linalg.norm(ref - got) / max(np.linalg.norm(ref), 1e-30))
    a, b = np.clip(ref, -1, 1), np.clip(got, -1, 1)
    mse = float(np.mean(((a - b) / 2) ** 2))
    psnr = 10 * np.log10(1 / max(mse, 1e-20))
    # Unblur runs the stored form (fp16 weights): its bar is 40 dB on the face; the fp32
    # conversion's bar (relative error 1e-3) is checked by tests/integration/convert.rs.
    print(f"{arch} {pth.name}: Unblur's stored form vs PyTorch: relative error {rel:.2e}, "
          f"PSNR {psnr:.1f} dB on the clipped face (bar 40 dB)")
    return 0 if psnr >= 40 else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", default=str(HERE / "build" / "checkpoints"))
    p.add_argument("--only", help="comma-separated: gfpgan,codeformer")
    p.add_argument("--force", action="store_true")
    p.add_argument("--compare", help="a real checkpoint to compare PyTorch and Unblur on")
    p.add_argument("--arch", choices=sorted(FIDELITIES))
    p.add_argument("--fidelity", type=float, default=0.5)
    p.add_argument("--unblur", default=str(HERE.parent / "target" / "release" / "unblur"),
                   help="with --compare: the unblur binary")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if a.compare:
        if not a.arch:
            p.error("--compare needs --arch")
        return compare(Path(a.compare), a.arch, a.fidelity, a.unblur)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp_src = hashlib.sha256((HERE / "checkpoints.py").read_bytes()).hexdigest()
    for arch in (a.only.split(",") if a.only else list(FIDELITIES)):
        meta_path = out / f"{arch}.json"
        if not a.force and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("script") == stamp_src and (out / meta["pth"]).exists():
                log(f"{arch}: up to date")
                continue
        log(f"{arch}: building a random checkpoint in the upstream layout ...")
        meta = make(arch, out)
        meta["script"] = stamp_src
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        log(f"{arch}: {meta['pth_bytes']:,} bytes, {meta['tensors']} tensors, {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Training of Unblur's deblurring network, on the CPU (it also runs on CUDA if there is one).

    python3 models/deblur/train.py --minutes 110 [--resume] [--run-dir models/build/deblur/run]
        [--batch 8] [--crop-min 128] [--crop-max 192] [--lr 1e-3] [--fft-weight 0.05]
        [--threads 2] [--ckpt-minutes 5] [--val-minutes 10] [--steps N]

Data: the permissive photos less the 20 in holdout.txt, decoded once into memory; each sample a
random crop (128–192 px, a multiple of 8, one size per batch) at a random scale 0.5–1, blurred by
a random kernel (blur.py: camera shake, streak, defocus disk, Gaussian) with real context around
the crop, then noise, JPEG; 15% are left sharp with the input as the target. Degradations are
made in the main process (about 60 ms for a batch of 8, a few % of a step).

Loss: Charbonnier + `--fft-weight` × L1 between the FFT magnitudes (as NAFNet / MPRNet).
Adam (β 0.9, 0.9), the learning rate a cosine over the TIME budget (`--minutes` is the whole
run, resumed parts included), a short warm-up. Checkpoint `<run>/ckpt.pt` every `--ckpt-minutes`
and at the end; one JSON line per 50 steps to `<run>/log.jsonl` and a validation line (PSNR of
input and output on 16 blurred and 16 sharp fixed crops of training photos) every `--val-minutes`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblur import blur, data  # noqa: E402
from deblur.net import MIDDLE, DeblurNet, describe, init_from  # noqa: E402


def charbonnier(a, b, eps=1e-3):
    return torch.sqrt((a - b) ** 2 + eps * eps).mean()


def fft_l1(a, b):
    fa = torch.fft.rfft2(a, norm="ortho").abs()
    fb = torch.fft.rfft2(b, norm="ortho").abs()
    return (fa - fb).abs().mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over the batch of per-image PSNR (0…1, clamped output)."""
    mse = ((a.clamp(0, 1) - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def validate(net, val, device) -> dict:
    net.eval()
    out = {}
    for key in ("blur", "sharp", "enl"):
        x = torch.from_numpy(val[f"{key}_x"]).to(device)
        y = torch.from_numpy(val[f"{key}_y"]).to(device)
        pred = torch.cat([net(x[i:i + 4]) for i in range(0, len(x), 4)])
        out[f"{key}_psnr_in"] = round(psnr(x, y), 3)
        out[f"{key}_psnr_out"] = round(psnr(pred, y), 3)
    net.train()
    return out


def lr_at(frac: float, step: int, base: float, warmup: int = 50, floor: float = 1e-6) -> float:
    w = min(1.0, (step + 1) / warmup)
    return w * (floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def save(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def saved_weights(path) -> dict:
    """A network's weights by parameter name: a checkpoint `save` wrote (its "model"), or an
    exported .onnx, whose initializers keep the parameter names (so a run can start from the
    committed model where the git-ignored checkpoint is gone)."""
    path = Path(path)
    if path.suffix != ".onnx":
        return torch.load(path, map_location="cpu", weights_only=False)["model"]
    import onnx
    from onnx import numpy_helper
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(path)).graph.initializer}


def run_args(ap: argparse.ArgumentParser, run_dir: Path, lr: float, val_minutes: float) -> None:
    """The options every CPU training run here takes (this one and models/repair/train.py): the
    time budget and resuming, the batches, the schedule's base, checkpoints and logs, test hooks."""
    ap.add_argument("--minutes", type=float, required=True, help="the whole run's wall budget")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--run-dir", type=Path, default=run_dir)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop-min", type=int, default=128)
    ap.add_argument("--crop-max", type=int, default=192)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-minutes", type=float, default=5)
    ap.add_argument("--val-minutes", type=float, default=val_minutes)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (tests)")
    ap.add_argument("--photos", type=int, default=0, help="use only the first N training photos (tests)")
    ap.add_argument("--seed", type=int, default=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_args(ap, data.WORK / "run", lr=1e-3, val_minutes=10)
    ap.add_argument("--fft-weight", type=float, default=0.05)
    ap.add_argument("--middle", type=int, default=MIDDLE, help="NAF blocks at the bottom level")
    ap.add_argument("--enlarged-p", type=float, default=blur.ENLARGED_P,
                    help="share of enlarged, compressed identity samples (blur.enlarged; v1, v2: 0)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start a fresh run from these weights (a checkpoint or an exported .onnx); "
                         "the blocks they lack start as the identity, so the run starts from their function")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = args.run_dir
    run.mkdir(parents=True, exist_ok=True)
    log_path = run / "log.jsonl"
    ckpt_path = run / "ckpt.pt"

    def log(obj):
        line = json.dumps(obj)
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    ck = None
    if args.resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
    # a resumed run keeps the shape it was started with
    net = DeblurNet(**(ck["config"] if ck else {"middle": args.middle})).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.9))
    step, spent = 0, 0.0
    if ck:
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        step, spent = ck["step"], ck["minutes"]
        log({"event": "resume", "step": step, "minutes": round(spent, 2)})
    elif args.init:
        added = init_from(net, args.init)
        log({"event": "init", "from": str(args.init), "new_tensors": len(added)})

    t0 = time.time()
    names = data.training_photos()
    if args.photos:
        names = names[:args.photos]
    photos = dict(zip(names, data.load_photos(names)))
    val = data.validation_set(photos, crop=160 if not args.photos else 64)
    photo_list = list(photos.values())
    info = describe(net)
    log({"event": "start", "step": step, "minutes": round(spent, 2), "budget_minutes": args.minutes,
         "photos": len(photos), "decode_s": round(time.time() - t0, 1), "device": str(device),
         "threads": torch.get_num_threads(), "batch": args.batch,
         "crop": [args.crop_min, args.crop_max], "lr": args.lr, "fft_weight": args.fft_weight,
         "enlarged_p": args.enlarged_p, **info})

    rng = np.random.default_rng(args.seed * 1_000_003 + step)
    start = time.time() - spent * 60
    last_ckpt = last_val = time.time()
    if step == 0 or not args.resume:
        log({"event": "val", "step": step, "minutes": round(spent, 2), **validate(net, val, device)})
    acc_loss, acc_n, acc_t, acc_samples, acc_data = 0.0, 0, time.time(), 0, 0.0
    crops = list(range(args.crop_min, args.crop_max + 1, 8))

    def checkpoint():
        save(ckpt_path, {"model": net.state_dict(), "optim": opt.state_dict(), "step": step,
                         "minutes": (time.time() - start) / 60, "config": net.config})

    net.train()
    while True:
        minutes = (time.time() - start) / 60
        if minutes >= args.minutes or (args.steps and step >= args.steps):
            break
        lr = lr_at(minutes / args.minutes, step, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        td = time.time()
        crop = crops[int(rng.integers(len(crops)))]
        x, y, _ = data.make_batch(photo_list, rng, args.batch, crop, enlarged_p=args.enlarged_p)
        x = torch.from_numpy(x).to(device)
        y = torch.from_numpy(y).to(device)
        acc_data += time.time() - td
        pred = net(x)
        loss = charbonnier(pred, y) + args.fft_weight * fft_l1(pred, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        step += 1
        acc_loss += loss.item()
        acc_n += 1
        acc_samples += args.batch
        if step % args.log_every == 0:
            dt = time.time() - acc_t
            log({"step": step, "loss": round(acc_loss / acc_n, 5), "lr": round(lr, 7),
                 "samples_per_s": round(acc_samples / dt, 2), "data_frac": round(acc_data / dt, 3),
                 "minutes": round((time.time() - start) / 60, 2)})
            acc_loss, acc_n, acc_t, acc_samples, acc_data = 0.0, 0, time.time(), 0, 0.0
        if time.time() - last_ckpt >= args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
            log({"event": "checkpoint", "step": step, "minutes": round((time.time() - start) / 60, 2)})
        if time.time() - last_val >= args.val_minutes * 60:
            last_val = time.time()
            log({"event": "val", "step": step, "minutes": round((time.time() - start) / 60, 2),
                 **validate(net, val, device)})
    checkpoint()
    log({"event": "val", "step": step, "minutes": round((time.time() - start) / 60, 2),
         **validate(net, val, device)})
    log({"event": "done", "step": step, "minutes": round((time.time() - start) / 60, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

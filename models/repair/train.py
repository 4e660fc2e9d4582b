"""Trains the damage detector (net.py) on the CPU: training photos (the permissive
`../shared/data/photos`, less the 20 held out in `models/deblur/holdout.txt`) aged and damaged by
damage.py's recipe, against the drawn mask.

    python3 models/repair/train.py --minutes 45 [--resume | --init CKPT] [--hard 0.3]
        [--run-dir models/build/repair/run] [--batch 8] [--crop-min 128] [--crop-max 192]
        [--lr 2e-3] [--steps N] [--photos N] [--ridge 0.4]

`--hard F` cuts a share F of the crops around the places where the starting network (`--init`'s)
fired on the clean training photos (hard.py: their ropes, wires and frames), mined once and kept
in `<run>/hard.npz`, which a resumed run reads again.
`--init CKPT` starts from another run's weights (fine-tuning; the optimizer and the budget start
afresh).

Loss: binary cross-entropy (damaged pixels weighted ×`--pos-weight`: they are a few percent of a
patch) plus a soft Dice term over the batch. Adam, the learning rate a cosine over the time budget
(`--minutes`, resumed parts included). A checkpoint `<run>/ckpt.pt` every `--ckpt-minutes`; every
`--val-minutes` the IoU, precision and recall at logit 0 on 32 fixed damaged crops of training
photos, and the fraction of pixels called damage on 16 fixed undamaged ones. Log: `<run>/log.jsonl`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblur import data  # noqa: E402
from deblur.train import lr_at, run_args, save, saved_weights  # noqa: E402
from repair import damage, hard  # noqa: E402
from repair.net import MULTIPLE, DetectNet, gmac_per_mp  # noqa: E402

WORK = data.REPO / "models" / "build" / "repair"


def make_batch(photos, rng, batch: int, crop: int, clean=None, points=None, hard_share: float = 0.0):
    xs, ms = [], []
    for i in range(batch):
        if points is not None and rng.random() < hard_share:
            p = hard.sample(photos, points, rng, crop)
        else:
            p = data.sample_patch(photos[int(rng.integers(len(photos)))], rng, crop)
        x, m = damage.damage(p, rng, None if clean is None else clean[i])
        xs.append(x.transpose(2, 0, 1))
        ms.append(m[None])
    return np.stack(xs), np.stack(ms)


def validation_set(photos, crop: int = 160):
    rng = np.random.default_rng(4321)
    dx, dm = make_batch(photos, rng, 32, crop, clean=[False] * 32)
    cx, _ = make_batch(photos, rng, 16, crop, clean=[True] * 16)
    return {"x": dx, "m": dm, "clean": cx}


def scores(logits: torch.Tensor, m: torch.Tensor) -> dict:
    p = logits > 0
    t = m > 0.5
    tp = float((p & t).sum())
    fp = float((p & ~t).sum())
    fn = float((~p & t).sum())
    return {"iou": round(tp / max(tp + fp + fn, 1), 4), "precision": round(tp / max(tp + fp, 1), 4),
            "recall": round(tp / max(tp + fn, 1), 4)}


@torch.no_grad()
def validate(net, val) -> dict:
    net.eval()
    run = lambda x: torch.cat([net(torch.from_numpy(x[i:i + 8])) for i in range(0, len(x), 8)])
    out = scores(run(val["x"]), torch.from_numpy(val["m"]))
    out["clean_called"] = round(float((run(val["clean"]) > 0).float().mean()), 5)
    if "hard" in val:
        out["hard_called"] = round(float((run(val["hard"]) > 0).float().mean()), 5)
    net.train()
    return out


def loss_fn(logits, m, pos_weight: float):
    bce = F.binary_cross_entropy_with_logits(logits, m, pos_weight=torch.tensor(pos_weight))
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * m).sum() + 1) / (p.sum() + m.sum() + 1)
    return bce + 0.5 * dice


def init_weights(path: Path) -> dict:
    """A starting state dict (`saved_weights`: a checkpoint, or the committed detector's ONNX),
    refused where it is not this detector's."""
    weights = saved_weights(path)
    want = DetectNet().state_dict()
    missing = [k for k in want if k not in weights or weights[k].shape != want[k].shape]
    if missing:
        raise SystemExit(f"{path}: not this detector's export (no {missing[0]} of shape {tuple(want[missing[0]].shape)})")
    return {k: weights[k] for k in want}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run_args(ap, WORK / "run", lr=2e-3, val_minutes=5)
    ap.add_argument("--pos-weight", type=float, default=3.0)
    ap.add_argument("--hard", type=float, default=0.0, help="share of crops cut around mined false alarms")
    ap.add_argument("--init", type=Path, help="start from this checkpoint's weights, or an exported .onnx's "
                    "(models/unblur-repair/unblur-repair.onnx: the shipped detector, on any machine)")
    ap.add_argument("--ridge", type=float, default=damage.RIDGE_P,
                    help="share of damaged crops given a ridge, a real print's fold (damage.py)")
    ap.add_argument("--scene", type=float, default=damage.SCENE_P,
                    help="share of crops given lines of the scene (ropes, wires), never masked")
    ap.add_argument("--scene-width", type=float, nargs=2, default=damage.SCENE_WIDTH)
    ap.add_argument("--scene-sigma", type=float, nargs=2, default=damage.SCENE_SIGMA)
    ap.add_argument("--ridge-step", action="store_true", help="a strong ridge's step masked too (damage.py)")
    ap.add_argument("--sharp-wide", action="store_true", help="creases wider than 2.5 px drawn sharp")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    damage.RIDGE_P, damage.SCENE_P, damage.SHARP_WIDE = args.ridge, args.scene, args.sharp_wide
    damage.RIDGE_STEP = args.ridge_step
    damage.SCENE_WIDTH, damage.SCENE_SIGMA = tuple(args.scene_width), tuple(args.scene_sigma)
    torch.manual_seed(args.seed)
    run = args.run_dir
    run.mkdir(parents=True, exist_ok=True)
    log_path, ckpt_path = run / "log.jsonl", run / "ckpt.pt"

    def log(obj):
        line = json.dumps(obj)
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    net = DetectNet()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    step, spent = 0, 0.0
    if args.resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        step, spent = ck["step"], ck["minutes"]
        log({"event": "resume", "step": step, "minutes": round(spent, 2)})
    elif args.init:
        net.load_state_dict(init_weights(args.init))
        log({"event": "init", "from": str(args.init)})
    names = data.training_photos()
    if args.photos:
        names = names[:args.photos]
    photos = data.load_photos(names)
    val = validation_set(photos, crop=160 if not args.photos else 64)
    log({"event": "start", "step": step, "minutes": round(spent, 2), "budget_minutes": args.minutes,
         "photos": len(photos), "batch": args.batch, "crop": [args.crop_min, args.crop_max],
         "lr": args.lr, "pos_weight": args.pos_weight,
         # the recipe damage.py draws with, read back from it (not the flags that set it)
         "ridge": damage.RIDGE_P, "scene": damage.SCENE_P, "scene_width": list(damage.SCENE_WIDTH),
         "scene_sigma": list(damage.SCENE_SIGMA), "sharp_wide": damage.SHARP_WIDE,
         "ridge_step": damage.RIDGE_STEP, "params": sum(p.numel() for p in net.parameters()),
         "gmac_per_mp": round(gmac_per_mp(net), 3), **net.config})
    rng = np.random.default_rng(args.seed * 1_000_003 + step)
    points = None
    if args.hard > 0:
        mined = run / "hard.npz"
        if mined.is_file():  # a resumed run: the points its starting network gave, not today's
            with np.load(mined) as z:
                points = [z[n] if n in z.files else np.zeros((0, 2), int) for n in names]
        elif step == 0 and args.init:
            t = time.time()
            held = set(hard.calibration(data.training_photos()))  # as --calibrate chooses them
            points = hard.mine(net, photos, np.random.default_rng(args.seed),
                               skip={i for i, n in enumerate(names) if n in held})
            np.savez_compressed(mined, **{n: p for n, p in zip(names, points)})
            log({"event": "mined", "photos_firing": sum(len(p) > 0 for p in points),
                 "points": int(sum(len(p) for p in points)), "seconds": round(time.time() - t, 1)})
        else:
            raise SystemExit("--hard mines what a trained network calls damage: start with --init CKPT")
        if not any(len(p) for p in points):
            raise SystemExit("--hard: the starting network fires nowhere on the training photos")
        # 16 clean crops around what the starting network called damage: the share still called
        val["hard"], _ = make_batch(photos, np.random.default_rng(4322), 16, val["clean"].shape[-1],
                                    clean=[True] * 16, points=points, hard_share=1.0)
    start = time.time() - spent * 60
    last_ckpt = last_val = time.time()
    crops = list(range(args.crop_min, args.crop_max + 1, MULTIPLE))
    acc_loss, acc_n, acc_t = 0.0, 0, time.time()

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
        x, m = make_batch(photos, rng, args.batch, crops[int(rng.integers(len(crops)))], points=points,
                          hard_share=args.hard)
        loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(m), args.pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        acc_loss += loss.item()
        acc_n += 1
        if step % args.log_every == 0:
            dt = time.time() - acc_t
            log({"step": step, "loss": round(acc_loss / acc_n, 5), "lr": round(lr, 7),
                 "samples_per_s": round(acc_n * args.batch / dt, 2),
                 "minutes": round((time.time() - start) / 60, 2)})
            acc_loss, acc_n, acc_t = 0.0, 0, time.time()
        if time.time() - last_ckpt >= args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
        if time.time() - last_val >= args.val_minutes * 60:
            last_val = time.time()
            log({"event": "val", "step": step, "minutes": round((time.time() - start) / 60, 2),
                 **validate(net, val)})
    checkpoint()
    log({"event": "val", "step": step, "minutes": round((time.time() - start) / 60, 2), **validate(net, val)})
    log({"event": "done", "step": step, "minutes": round((time.time() - start) / 60, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Training of Unblur's 256² face restorer, v0–v5 (`make train-face` ran it until issue 29; it now
runs `train512.py`): one script for CPU and CUDA.

    python3 models/face/train.py --minutes 60 [--out models/build/faces/run] [--resume]
        [--batch 8] [--crop 128] [--lr 2e-4] [--gan-start 0.5] [--gan-weight 0.03]
        [--ckpt-minutes 5] [--steps N] [--data models/build/faces] [--workers 1]
        [--ema 0.999] [--val-n 48] [--snapshots]

Each sample: a sharp aligned 256² face (from `prepare.py`), degraded at random (`degrade.py`)
into what the face stage would feed the network for a small, blurry, noisy, compressed face;
a window of `--crop` pixels of both (the network is convolutional; the crops keep the loss on
the face, and a 128² crop costs a quarter of the face). Loss: L1 over the valid pixels of the
target (aligned faces leave parts of the template empty), plus from `--gan-start` (a fraction
of the time budget) a hinge-loss patch discriminator trained from scratch.

A time budget (`--minutes`, the whole run, resumed parts included), checkpoints every
`--ckpt-minutes` (`ckpt.pt`: both networks, optimisers, step, time spent; `gen_fp16.pt`: the
generator alone in fp16), and a held-out PSNR logged at each checkpoint; `--resume` continues
from `ckpt.pt`. At the end the generator is exported to `<out>/face.onnx`. Logs go to stdout
and `<out>/log.jsonl`.

With `--ema D` the generator that is saved, scored and exported is an exponential moving
average of the trained one (decay D per step), as StyleGAN and Real-ESRGAN keep. Measured here it
does not pay on a short CPU GAN run: 1,528 steps after v1 (GAN weight 0.05, then 0.1) the average
scored NIQE 8.96 on the withheld faces where the trained generator itself scored 8.12 (v1: 8.52);
averaging weights that move along the adversarial direction averages the texture away. So it is
off unless asked for.
With `--val-n N` the last N training faces are withheld from this run and score each checkpoint
at both reference levels (PSNR at 256², NIQE and LMD at 512²) instead of the held-out faces, so that a
checkpoint can be chosen without looking at the faces the evaluation reports on; `--snapshots`
keeps each checkpoint's generator as `<out>/snapshots/step<N>.onnx` to choose from.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.common import MODELS_SRC, WORK  # noqa: E402
from face.degrade import LEVELS, random_degrade, reference, to_face_input  # noqa: E402
from face.net import FaceNet, export_onnx, init_from_onnx, init_from_x4v3  # noqa: E402


class Faces(torch.utils.data.Dataset):
    """Degraded/target pairs drawn from the prepared memmaps; a fresh degradation each epoch."""

    def __init__(self, data: Path, crop: int, seed: int, rows: list[int] | None = None):
        index = json.loads((data / "index.json").read_text())
        self.rows = rows if rows is not None else index["train"]
        self.data, self.crop, self.seed = data, crop, seed
        self.faces = self.masks = None
        self.epoch = 0

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        if self.faces is None:  # opened in each worker process
            self.faces = np.load(self.data / "train_256.npy", mmap_mode="r")
            self.masks = np.load(self.data / "train_mask.npy", mmap_mode="r")
        row = self.rows[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        gt = self.faces[row].astype(np.float32) / 255.0
        mask = self.masks[row].astype(np.float32)
        if rng.random() < 0.5:
            gt, mask = gt[:, ::-1], mask[:, ::-1]
        lq, target = random_degrade(np.ascontiguousarray(gt), rng)
        side, c = gt.shape[0], self.crop
        if c < side:  # a window over the face (multiples of the fold, 4)
            y = 4 * int(rng.integers(12, (side - c) // 4 - 3)) if side - c > 64 else 0
            x = 4 * int(rng.integers(10, (side - c) // 4 - 9)) if side - c > 64 else 0
            lq, target, mask = (a[y:y + c, x:x + c] for a in (lq, target, mask))
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1) * 2 - 1  # noqa: E731
        return t(lq), t(target), torch.from_numpy(np.ascontiguousarray(mask))[None]


class PatchD(nn.Module):
    """A small spectral-normalised patch discriminator (pix2pix-style): `downs` stride-2 4×4
    layers, one stride-1, then a 3×3 to the logits; widths ch, 2ch, 4ch at most. Its receptive
    field is 70 px with 3 (the default), 30 with 2, 14 with 1."""

    def __init__(self, ch: int = 48, downs: int = 3):
        super().__init__()
        sn = nn.utils.spectral_norm
        c = [3] + [ch * min(2 ** i, 4) for i in range(downs + 1)]
        layers = []
        for i in range(downs + 1):
            layers += [sn(nn.Conv2d(c[i], c[i + 1], 4, 2 if i < downs else 1, 1)), nn.LeakyReLU(0.2)]
        layers += [sn(nn.Conv2d(c[-1], 1, 3, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x, features: bool = False):
        """The patch logits; with `features`, also each activation on the way (for the feature
        matching loss)."""
        if not features:
            return self.net(x)
        acts = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                acts.append(x)
        return x, acts


def masked_l1(out, target, mask):
    return ((out - target).abs() * mask).sum() / (mask.sum() * 3 + 1e-6)


def fold_grid_loss(out, target, mask):
    """The part of the error that repeats with the network's 4×4 fold (the dot grid v4 drew, see
    `common.FoldGrid`): each of the 16 fold phases' mean error over 8×8 blocks of the fold (32 px),
    less the mean of the 16. Content averages out over a block; a grid does not. Windows start on
    the fold (Faces crops at multiples of 4), so the phases are the network's."""
    e = F.avg_pool2d(F.pixel_unshuffle((out - target) * mask, 4), 8)  # channel c·16 + phase
    e = e.view(e.shape[0], 3, 16, -1)
    return (e - e.mean(2, keepdim=True)).abs().mean()


def restore(net: nn.Module, lq: np.ndarray, device) -> np.ndarray:
    """The network's 256² face (0…1) for a low-quality face, fed as the face stage feeds it."""
    x = torch.from_numpy(to_face_input(lq, 256)).permute(2, 0, 1)[None].to(device) * 2 - 1
    return ((net(x)[0].permute(1, 2, 0).cpu().numpy() + 1) / 2).clip(0, 1)


def psnr01(y: np.ndarray, gt: np.ndarray) -> float:
    return 10 * math.log10(1 / max(float(((y - gt) ** 2).mean()), 1e-10))


def heldout_psnr(net: nn.Module, data: Path, n: int, device) -> float:
    """PSNR (RGB, at 256²) of the network on the first `n` held-out faces at the ×4 reference
    level: a quick learning curve; `evaluate.py` gives the real numbers."""
    from PIL import Image
    held = json.loads((data / "heldout.json").read_text())[:n]
    psnrs = []
    net.eval()
    with torch.no_grad():
        for h in held:
            gt512 = np.asarray(Image.open(data / "heldout" / f"{h['id']}.png"), np.float32) / 255.0
            lq = reference(gt512, "x4", seed=int(h["id"]) * 2)
            y = restore(net, lq, device)
            gt = np.asarray(Image.fromarray((gt512 * 255).round().astype(np.uint8)).resize((256, 256), Image.BICUBIC),
                            np.float32) / 255.0
            psnrs.append(psnr01(y, gt))
    net.train()
    return float(np.mean(psnrs)) if psnrs else float("nan")


def val_metrics(net: nn.Module, data: Path, rows: list[int], device) -> dict:
    """PSNR (RGB, at 256²), NIQE (at 512², the evaluation's resolution) and LMD (YuNet's landmarks
    at 512² against the ground truth's) of the network on withheld training faces, at both
    reference levels. Their ground truth is the 256² face brought to 512² (Lanczos), so the numbers
    rank checkpoints; `evaluate.py` gives the real ones. NIQE alone does not rank them: it scored
    the v2 candidate's GAN speckle as natural texture (see the model card), so PSNR and LMD are
    logged beside it, at ×8 too, where that speckle showed; and so is the fold grid (`FoldGrid`: v4
    drew a dot grid on the network's 4×4 fold that NIQE did not count against it)."""
    from PIL import Image
    from face.common import Detector, FoldGrid, landmarks, lmd
    from face.niqe import niqe
    faces = np.load(data / "train_256.npy", mmap_mode="r")
    detector = Detector()
    up = lambda a, s: np.asarray(Image.fromarray((a.clip(0, 1) * 255).round().astype(np.uint8))  # noqa: E731
                                 .resize((s, s), Image.LANCZOS), np.float32) / 255.0
    names = {"psnr": "_256", "niqe": "_512", "lmd": ""}  # the log's keys: val_<metric>_<level><at>
    m = {(k, lv): [] for lv in LEVELS for k in names}
    grids = {lv: FoldGrid(256) for lv in LEVELS}
    net.eval()
    with torch.no_grad():
        for row in rows:
            gt = np.asarray(faces[row], np.float32) / 255.0
            gt512 = up(gt, 512)
            lm_gt = landmarks(detector, gt512)
            for i, lv in enumerate(LEVELS):
                y = restore(net, reference(gt512, lv, seed=row * 2 + i), device)
                y512 = up(y, 512)
                m["psnr", lv].append(psnr01(y, gt))
                m["niqe", lv].append(niqe(y512))
                grids[lv].add(y)
                lm = landmarks(detector, y512) if lm_gt is not None else None
                if lm is not None:
                    m["lmd", lv].append(lmd(lm, lm_gt))
    net.train()
    out = {f"val_{k}_{lv}{names[k]}": round(float(np.mean(v)), 3) if v else None for (k, lv), v in m.items()}
    return {**out, **{f"val_grid_{lv}": round(g.ratio(), 2) for lv, g in grids.items()}}


def export_cpu(G: nn.Module, args, path: Path) -> Path:
    """Exports a CPU copy of the generator (training goes on with `G` where it is)."""
    g = FaceNet(args.ch, args.body)
    g.load_state_dict({k: v.float().cpu() for k, v in G.state_dict().items()})
    export_onnx(g, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=WORK)
    ap.add_argument("--out", type=Path, default=WORK / "run")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (0: the time budget decides)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--ch", type=int, default=64)
    ap.add_argument("--body", type=int, default=10)
    ap.add_argument("--gan-start", type=float, default=0.5, help="fraction of the budget before the GAN loss starts (≥1: never)")
    ap.add_argument("--gan-weight", type=float, default=0.03)
    ap.add_argument("--fm-weight", type=float, default=0.0,
                    help="feature matching: L1 between the discriminator's activations on output and target")
    ap.add_argument("--r1", type=float, default=0.0,
                    help="R1 penalty weight (gamma) on the discriminator's gradient at real faces, 0: off")
    ap.add_argument("--r1-every", type=int, default=4, help="apply the R1 penalty every N discriminator steps (lazy, scaled by N)")
    ap.add_argument("--d-warmup", type=int, default=0,
                    help="steps after --gan-start in which only the discriminator learns from the GAN loss")
    ap.add_argument("--freeze-g-warmup", action="store_true",
                    help="the generator does not step at all during --d-warmup (from --init-onnx, 300 steps of "
                         "L1 alone smoothed v1's texture away before the GAN began: v3 in the model card)")
    ap.add_argument("--grid-weight", type=float, default=0.0,
                    help="weight of the fold-grid loss (fold_grid_loss: error repeating with the 4×4 fold)")
    ap.add_argument("--init-onnx", type=Path, help="start the generator from an exported FaceNet (e.g. the committed model)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--heldout-n", type=int, default=24)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-init", action="store_true", help="random init instead of realesr-general-x4v3's layers")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--copy-to", type=Path, help="also copy gen_fp16.pt and log.jsonl here at each checkpoint (the GPU run's $OUT)")
    ap.add_argument("--ema", type=float, default=0.0, help="keep, score and export an EMA of the generator (decay per step, e.g. 0.999)")
    ap.add_argument("--val-n", type=int, default=0, help="withhold the last N training faces and score checkpoints on them")
    ap.add_argument("--snapshots", action="store_true", help="export each checkpoint's generator to <out>/snapshots/")
    ap.add_argument("--self-check", type=float, default=0.0,
                    help="after this many seconds, stop with exit 3 unless the L1 loss is falling (the GPU run's guard)")
    args = ap.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    G = FaceNet(args.ch, args.body).to(device)
    D = PatchD().to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.99))
    step, spent, epoch = 0, 0.0, 0
    ema_state = None
    gan_steps = 0  # steps with the GAN loss on (the discriminator's warm-up counts them)
    ckpt = out / "ckpt.pt"
    if args.resume and ckpt.exists():
        s = torch.load(ckpt, map_location=device)
        G.load_state_dict(s["G"]), D.load_state_dict(s["D"])
        opt_g.load_state_dict(s["opt_g"]), opt_d.load_state_dict(s["opt_d"])
        step, spent, epoch = s["step"], s["spent"], s["epoch"]
        gan_steps = s.get("gan_steps", 0)
        ema_state = s.get("G_ema")
        print(f"resumed at step {step}, {spent / 60:.1f} min spent", flush=True)
    elif args.init_onnx:
        n = init_from_onnx(G, args.init_onnx)
        print(f"initialised {n} tensors from {args.init_onnx}", flush=True)
    elif not args.no_init:
        n = init_from_x4v3(G, MODELS_SRC / "realesr-general-x4v3.onnx")
        print(f"initialised {n} layers from realesr-general-x4v3", flush=True)
    # The generator that is kept: G itself, or its moving average.
    G_keep = G
    if args.ema:
        G_keep = copy.deepcopy(G)
        if ema_state is not None:
            G_keep.load_state_dict(ema_state)
        G_keep.requires_grad_(False)
    if args.export_only:
        export_onnx(G_keep.cpu(), out / "face.onnx")
        return 0

    print(f"device {device}, {sum(p.numel() for p in G.parameters())} parameters, "
          f"{G.macs() / 1e9:.2f} GMAC per 256² face", flush=True)
    train_rows = json.loads((args.data / "index.json").read_text())["train"]
    val_rows = train_rows[len(train_rows) - args.val_n:] if args.val_n else []
    ds = Faces(args.data, args.crop, args.seed, rows=train_rows[:len(train_rows) - len(val_rows)])
    budget = args.minutes * 60
    log = open(out / "log.jsonl", "a")

    def save():
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "step": step, "spent": spent, "epoch": epoch,
                    "gan_steps": gan_steps, "G_ema": G_keep.state_dict() if args.ema else None,
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
        torch.save({k: v.half() for k, v in G_keep.state_dict().items()}, out / "gen_fp16.pt")
        if args.copy_to:
            args.copy_to.mkdir(parents=True, exist_ok=True)
            for f in ("gen_fp16.pt", "log.jsonl"):
                shutil.copyfile(out / f, args.copy_to / f)

    t_start = time.time() - spent
    last_ckpt = time.time()
    def fresh_window() -> dict:  # the losses summed between two log lines
        return {"n": 0, "l1": 0.0, "g": 0.0, "d": 0.0, "fm": 0.0, "r1": 0.0, "grid": 0.0, "t": time.time()}

    window = fresh_window()
    losses: list[float] = []  # for the self-check
    t_run = time.time()
    done = False
    while not done:
        ds.epoch = epoch
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, drop_last=True,
                                             num_workers=args.workers, persistent_workers=False,
                                             generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        for lq, target, mask in loader:
            lq, target, mask = lq.to(device), target.to(device), mask.to(device)
            spent = time.time() - t_start
            frac = spent / budget
            lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
            for o in (opt_g, opt_d):
                for g in o.param_groups:
                    g["lr"] = lr
            gan = frac >= args.gan_start
            if gan and not (out / "face_l1.onnx").exists():
                # The L1-only generator, kept beside the GAN-tuned one for the evaluation.
                export_cpu(G_keep, args, out / "face_l1.onnx")
                print(json.dumps({"step": step, "l1_snapshot": str(out / "face_l1.onnx")}), flush=True)
            # The discriminator's warm-up: the generator learns nothing from the GAN loss yet, and
            # with --freeze-g-warmup nothing at all (it is held where it is).
            warming = gan and gan_steps < args.d_warmup
            frozen = warming and args.freeze_g_warmup
            with torch.set_grad_enabled(not frozen):
                outp = G(lq)
            l1 = masked_l1(outp, target, mask)
            loss = l1
            if args.grid_weight:
                l_grid = fold_grid_loss(outp, target, mask)
                loss = loss + args.grid_weight * l_grid
                window["grid"] += float(l_grid.detach())
            if gan:
                # Discriminator on valid regions: invalid pixels of both are set to the target's.
                fake = outp * mask + target * (1 - mask)
                # R1 (Mescheder et al. 2018): a discriminator flat around the real faces gives the
                # generator no reward for specks the faces do not have. It reuses d_real's forward.
                r1_now = args.r1 and gan_steps % args.r1_every == 0
                real = target.detach().requires_grad_(True) if r1_now else target
                d_real, d_fake = D(real), D(fake.detach())
                l_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
                if r1_now:
                    # BasicSR's r1_penalty (gradient of the logits' sum) per patch logit, so gamma keeps
                    # its usual scale; undivided, gamma 1 (~225 per patch) kept D from learning.
                    (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
                    patches = d_real[0].numel()
                    l_r1 = grad.pow(2).flatten(1).sum(1).mean() / patches * (args.r1 / 2) * args.r1_every
                    l_d = l_d + l_r1
                    window["r1"] += float(l_r1.detach())  # lazy: n steps average to the per-step penalty
                opt_d.zero_grad(set_to_none=True)
                l_d.backward()
                opt_d.step()
                gan_steps += 1
                if not warming:  # the generator follows a discriminator that has learnt something
                    if args.fm_weight:
                        logit, acts = D(fake, features=True)
                        with torch.no_grad():
                            _, acts_real = D(target, features=True)
                        l_fm = sum(F.l1_loss(a, r) for a, r in zip(acts, acts_real)) / len(acts)
                        loss = loss + args.fm_weight * l_fm
                        window["fm"] += float(l_fm.detach())
                    else:
                        logit = D(fake)
                    l_g = -logit.mean()
                    loss = loss + args.gan_weight * l_g
                    window["g"] += float(l_g.detach())
                window["d"] += float(l_d.detach())
            if not frozen:
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                opt_g.step()
            if args.ema:
                with torch.no_grad():
                    for p_keep, p in zip(G_keep.parameters(), G.parameters()):
                        p_keep.lerp_(p, 1 - args.ema)
            step += 1
            window["n"] += 1
            window["l1"] += float(l1.detach())
            if step == 1:
                t_run = time.time()  # the self-check's clock starts once data flows
            if args.self_check and losses is not None:
                losses.append(float(l1.detach()))
                if time.time() - t_run >= args.self_check:
                    k = max(len(losses) // 4, 1)
                    first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
                    rate = len(losses) * args.batch / (time.time() - t_run)
                    ok = last < first and len(losses) >= 8
                    print(json.dumps({"self_check": "ok" if ok else "FAILED", "steps": len(losses),
                                      "l1_first": first, "l1_last": last, "samples_s": round(rate, 1)}), flush=True)
                    if not ok:
                        return 3
                    losses = None
            if step % 25 == 0 or step <= 3:
                dt = time.time() - window["t"]
                rec = {"step": step, "min": round(spent / 60, 2), "l1": window["l1"] / window["n"],
                       "gan": window["g"] / window["n"], "d": window["d"] / window["n"],
                       "fm": window["fm"] / window["n"], "r1": window["r1"] / window["n"],
                       "grid": window["grid"] / window["n"], "gan_steps": gan_steps, "lr": lr,
                       "samples_s": round(window["n"] * args.batch / max(dt, 1e-6), 2)}
                print(json.dumps(rec), flush=True)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                window = fresh_window()
            over = spent >= budget or (args.steps and step >= args.steps)
            if over or time.time() - last_ckpt >= args.ckpt_minutes * 60:
                t_pause = time.time()
                save()
                rec = {"step": step, "min": round(spent / 60, 2)}
                if val_rows:
                    rec.update(val_metrics(G_keep, args.data, val_rows, device))
                else:
                    rec["heldout_psnr_x4_256"] = round(heldout_psnr(G_keep, args.data, args.heldout_n, device), 3)
                if args.snapshots:
                    (out / "snapshots").mkdir(exist_ok=True)
                    rec["snapshot"] = str(export_cpu(G_keep, args, out / "snapshots" / f"step{step}.onnx"))
                rec["checkpoint"] = str(ckpt)
                print(json.dumps(rec), flush=True)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                last_ckpt = time.time()
                t_start += last_ckpt - t_pause  # checkpoint and held-out time is not training time
            if over:
                done = True
                break
        epoch += 1
    save()
    export_cpu(G_keep, args, out / "face.onnx")
    print(f"done: {step} steps, {spent / 60:.1f} min; {out / 'face.onnx'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Training of Unblur's 512² face restorer (`make train-face`, issue 29), CPU or CUDA.

    python3 models/face/train512.py --minutes 150 [--recipe texture] [--out models/build/faces512/run] [--resume]
        [--batch 4] [--crop 256] [--gan-start 0.3] [--ckpt-minutes 5] [--val-minutes 15]
        [--val-n 100] [--val-score-n 32] [--lmk-weight 0.3] [--r1-weight 0] [--ema 0] [--ldl-weight 0]
        [--d-texture 0] [--d-downs 2] [--noise] [--threads 2] [--steps N]

Data: `prepare512.py`'s cache (`models/build/faces512`); each sample a sharp FFHQ photo degraded
at random and cut by the product's warp (`data512.py`); the last `--val-n` faces of the
selection list (`index.json`'s `select`, name-hashed) never train and score checkpoints; `val/`
is never touched here. Network: `net512.FaceNet512` (256² in, 512² out), fresh weights.

Each step the encoder sees the whole face; the full-resolution stages and the losses run on a
`--crop`² window of the 512² output (its corner on the network's 32-px period): half the
batches on the window over the eyes and mouth, so that the component discriminator has them,
the others anywhere. Losses: masked L1, the periodic-artifact loss at every period of the
network (`--period-weight`), YuNet's landmark loss (`--lmk-weight`, `yunet_torch`: the product's
face detector, in torch, should read the same five landmarks on the output as on the target; it
sees the window pasted into the target, as the loop's comment explains), and from `--gan-start`
(fraction of the budget) a hinge patch GAN on DiffAugment-ed inputs with feature matching, plus a
component discriminator on the eyes and mouth. The generator at the start of the GAN phase is
kept as `gen_l1_fp16.pt` / `face_l1.onnx` (the evaluation's L1-only control rows). `--ema D` keeps
an exponential moving average of the generator (decay D per step, as Real-ESRGAN keeps one),
saved beside it as `gen_ema_fp16.pt`; `--ldl-weight W` (needs `--ema`) adds LDL's artifact loss in
the GAN phase (`losses512.artifact_map`: L1 weighted by where the generator's residual is busier
than the EMA's), against the ripples the GAN draws along the eyes and lips. `--d-texture σ` makes
the whole-face discriminator judge texture only (`losses512.TextureD`: the image less its
Gaussian blur, through `--d-downs` stride-2 layers), so that it cannot ask for the shape of
features a small generator cannot place.

Every `--ckpt-minutes`: `ckpt.pt` (everything, for `--resume`) and `gen_fp16.pt` (the generator,
fp16, ≤ 2 MB: what is committed under models/unblur-face/candidates/); the first checkpoint after
each `--val-minutes` of training also scores the held-back faces at both reference levels (PSNR
and NIQE at 512², LMD, the periodic measure at each period) and keeps `snapshots/step<N>_fp16.pt`. Checkpoint and
validation time do not count against `--minutes` (the whole run's budget, resumes included), and
on CPU neither does time the shared CPU spent on other work (`Clock`).
Logs: stdout and `<out>/log.jsonl`. At the end `<out>/face.onnx` (checked against torch in
onnxruntime).
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from face.data512 import Faces512  # noqa: E402
from face.losses512 import TextureD, artifact_map, component_patches, diff_augment, period_loss  # noqa: E402
from face.net512 import PERIODS, FaceNet512, export_onnx, fp16_state, load_generator, new_generator  # noqa: E402
from face.prepare512 import OUT as DATA  # noqa: E402
from face.train import PatchD, masked_l1  # noqa: E402
from face.yunet_torch import YuNetLandmarks, landmark_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

FACE_CROP = (192, 128)  # the 256² window over the eyes and mouth in the 512 template


def check_onnx(net: FaceNet512, path: Path, seed: int = 0) -> float:
    """Max |onnxruntime − torch| on a random face (the export's sanity check)."""
    import onnxruntime as ort
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        ref = net.eval()(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": x.numpy()})[0]
    assert out.shape == (1, 3, 512, 512), out.shape
    return float(np.abs(out - ref).max())


def export_checked(G: FaceNet512, path: Path) -> float:
    """G exported as it ships (its noise inputs, if any, as their fixed map) and checked."""
    g = new_generator({k: v.float().cpu() for k, v in G.state_dict().items()}).freeze_noise()
    export_onnx(g, path)
    return check_onnx(g, path)


def held_back_lq(gt: np.ndarray, row: int, level_index: int) -> np.ndarray:
    """A held-back face's low-quality version at the `level_index`-th reference level, seeded by
    its row, as every score and grid of a snapshot sees it (validate, baseline, snapgrid.py)."""
    from face.degrade import LEVELS, reference
    return reference(gt, list(LEVELS)[level_index], seed=row * 2 + level_index)


def validate(G: FaceNet512, data: Path, rows: list[int], device) -> dict:
    """The held-back faces at both reference levels: the aligned 512² target degraded as the
    evaluation degrades it (`degrade.reference`), fed as the face stage feeds it; PSNR (RGB, over
    the covered pixels) and NIQE at 512², YuNet's LMD, and the periodic measure per period
    (`common.PeriodGrid`) beside the ground truth's own."""
    from face.common import Detector, PeriodGrid, landmarks, lmd
    from face.degrade import LEVELS, to_face_input
    from face.niqe import niqe
    targets = np.load(data / "train_target.npy", mmap_mode="r")
    masks = np.load(data / "train_mask.npy", mmap_mode="r")
    det = Detector()
    m = {(k, lv): [] for lv in LEVELS for k in ("psnr", "niqe", "lmd")}
    grids = {lv: PeriodGrid(512, PERIODS) for lv in [*LEVELS, "gt"]}
    G.eval()
    with torch.no_grad():
        for row in rows:
            gt = np.asarray(targets[row], np.float32) / 255.0
            mask = np.asarray(masks[row], bool)
            grids["gt"].add(gt)
            lm_gt = landmarks(det, gt)
            for i, lv in enumerate(LEVELS):
                x = to_face_input(held_back_lq(gt, row, i), 256)
                y = G(torch.from_numpy(x).permute(2, 0, 1)[None].to(device) * 2 - 1)
                y = ((y[0].permute(1, 2, 0).cpu().numpy() + 1) / 2).clip(0, 1)
                mse = float(((y - gt) ** 2)[mask].mean())
                m["psnr", lv].append(10 * math.log10(1 / max(mse, 1e-10)))
                m["niqe", lv].append(niqe(y))
                grids[lv].add(y)
                lm = landmarks(det, y) if lm_gt is not None else None
                if lm is not None:
                    m["lmd", lv].append(lmd(lm, lm_gt))
    G.train()
    rec = {f"val_{k}_{lv}": round(float(np.mean(v)), 3) if v else None for (k, lv), v in m.items()}
    rec.update(baseline(data, tuple(rows)))
    for lv, g in grids.items():
        rec[f"val_period_{lv}"] = {p: round(r, 2) for p, r in g.ratios().items()}
    return rec


@functools.lru_cache(maxsize=1)
def baseline(data: Path, rows: tuple) -> dict:
    """The same faces' ground-truth NIQE and bicubic's PSNR/NIQE at 512² (once per process), to
    read the network's numbers against."""
    from face.degrade import LEVELS, resize
    from face.niqe import niqe
    targets = np.load(data / "train_target.npy", mmap_mode="r")
    masks = np.load(data / "train_mask.npy", mmap_mode="r")
    out = {"gt_niqe": []}
    for row in rows:
        gt = np.asarray(targets[row], np.float32) / 255.0
        out["gt_niqe"].append(niqe(gt))
        for i, lv in enumerate(LEVELS):
            y = resize(held_back_lq(gt, row, i), 512).clip(0, 1)
            mse = float(((y - gt) ** 2)[np.asarray(masks[row], bool)].mean())
            out.setdefault(f"bicubic_psnr_{lv}", []).append(10 * math.log10(1 / max(mse, 1e-10)))
            out.setdefault(f"bicubic_niqe_{lv}", []).append(niqe(y))
    return {f"val_{k}": round(float(np.mean(v)), 3) for k, v in out.items()}


class Clock:
    """The training time the budget counts: per lap, the process's CPU time over its torch
    threads (capped at the wall time), so that minutes in which the shared CPU served other work
    (this runs at nice 19 beside builds and tests) do not use up the budget or move the schedule
    (the learning rate's cosine, the GAN's start). On CUDA, the wall time."""

    def __init__(self, threads: int):
        self.threads = threads
        self.wall, self.cpu = time.time(), time.process_time()

    def lap(self) -> float:
        wall, cpu = time.time(), time.process_time()
        dt = wall - self.wall if self.threads == 1 else min(wall - self.wall, (cpu - self.cpu) / self.threads)
        self.wall, self.cpu = wall, cpu
        return max(dt, 0.0)


class SelfCheck:
    """The GPU run's first seconds (`--self-check S`, `gpu.sh`): after S seconds of steps, at least
    8 steps, every L1 finite, and the last quarter's L1 not above 1.5× the first quarter's (a
    generator that goes on from a candidate need not improve in 30 s, but must not diverge);
    printed as one JSON line with the throughput. Failing it ends the run (exit 3) before the
    device time is spent."""

    def __init__(self, seconds: float):
        self.seconds, self.losses, self.t0, self.done = seconds, [], None, False

    def step(self, l1: float, batch: int) -> bool:
        """Records one step; True when the check has failed."""
        if self.t0 is None:
            self.t0 = time.time()  # from the first step: data loading and warm-up are not judged
        self.losses.append(l1)
        dt = time.time() - self.t0
        if dt < self.seconds:
            return False
        k = max(len(self.losses) // 4, 1)
        first, last = float(np.mean(self.losses[:k])), float(np.mean(self.losses[-k:]))
        ok = len(self.losses) >= 8 and all(math.isfinite(v) for v in self.losses) and last <= 1.5 * first
        print(json.dumps({"self_check": "ok" if ok else "FAILED", "steps": len(self.losses), "l1_first": round(first, 5),
                          "l1_last": round(last, 5), "samples_s": round(len(self.losses) * batch / dt, 2)}), flush=True)
        self.done = True
        return not ok


# Named recipes: a set of defaults `--recipe NAME` puts in place (its starting generator among
# them), each flag given beside it still winning. One place for the recipe the card ranks best,
# so that `make train-face` and `gpu.sh` run the same one. "texture": run 13's, from its generator
# (the card's stopping point 9, the best so far): the GAN from the first step (the generator is
# trained), the texture-only whole-face discriminator, LDL against the EMA, noise inputs, no
# feature matching and no eyes/mouth discriminator (runs 12-19 on what each of those does).
RECIPES = {
    "texture": {"init_gen": ROOT / "models/unblur-face/candidates/unblur-face-512-run13-noise-step970.fp16.pt",
                "gan_start": 0.0, "ema": 0.999, "ldl_weight": 5.0, "fm_weight": 0.0, "comp_weight": 0.0,
                "d_texture": 2.0, "d_downs": 2, "noise": True},
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", choices=sorted(RECIPES),
                    help="start from a named recipe's defaults (RECIPES); flags given beside it win")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=DATA / "run")
    ap.add_argument("--minutes", type=float, default=150.0)
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (0: the budget decides)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256, help="window of the 512² output the losses see (multiple of 32)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--gan-start", type=float, default=0.3, help="fraction of the budget in the L1 phase (≥1: no GAN)")
    ap.add_argument("--gan-weight", type=float, default=0.03)
    ap.add_argument("--comp-weight", type=float, default=0.03, help="the eyes/mouth discriminator's weight")
    ap.add_argument("--fm-weight", type=float, default=0.3)
    ap.add_argument("--r1-weight", type=float, default=0.0,
                    help="R1 penalty on the whole-face discriminator's gradient at real faces (0: off)")
    ap.add_argument("--period-weight", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.0, help="keep an EMA of the generator with this decay (0: none)")
    ap.add_argument("--ldl-weight", type=float, default=0.0,
                    help="LDL's artifact loss in the GAN phase (needs --ema); its L1 is taken in −1…1, "
                         "so a weight counts twice BasicSR's")
    # 0.3: at the start (a fresh generator, FFHQ batches, both kinds of window) the term is ~0.035
    # eye distances against L1's ~0.10, i.e. ~10 % of L1's value, and its gradient on the generator
    # ~0.55× L1's (per unit weight it pulls ~1.9× as hard as L1: it is concentrated on a few
    # features), so it steers the eyes, nose and mouth without outweighing L1.
    ap.add_argument("--lmk-weight", type=float, default=0.3,
                    help="YuNet landmark loss (in eye distances) on the face with the window pasted in (0: off)")
    ap.add_argument("--d-ch", type=int, default=32)
    ap.add_argument("--d-texture", type=float, default=0.0,
                    help="the whole-face discriminator judges texture only: the high-pass image (the "
                         "image less its Gaussian blur of this σ) through --d-downs stride-2 layers "
                         "(losses512.TextureD); 0: the 70-px PatchD")
    ap.add_argument("--d-downs", type=int, default=2, help="TextureD's stride-2 layers (receptive field 14 / 30 px for 1 / 2)")
    ap.add_argument("--noise", action="store_true", help="the generator gets noise inputs at 256² and 512² (net512)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--val-minutes", type=float, default=15.0,
                    help="score the held-back faces at the first checkpoint after this many training minutes")
    ap.add_argument("--val-n", type=int, default=100, help="train/ faces held back (index.json's select list)")
    ap.add_argument("--val-score-n", type=int, default=32, help="how many of them each validation scores")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-gen", type=Path, help="without a ckpt.pt to resume: start the generator from this "
                    "fp16 state dict (a committed candidate under models/unblur-face/candidates/)")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--no-export", action="store_true", help="no face.onnx at the end (the tests' resume check)")
    ap.add_argument("--self-check", type=float, default=0.0,
                    help="after this many seconds of steps, check the run is sane (SelfCheck); exit 3 if not")
    ap.add_argument("--copy-to", type=Path, help="also copy gen_fp16.pt (gen_ema_fp16.pt with --ema) and "
                    "log.jsonl here at each checkpoint")
    args = ap.parse_args(argv)
    if args.recipe:
        ap.set_defaults(**RECIPES[args.recipe])
        args = ap.parse_args(argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    G = FaceNet512(noise=args.noise).to(device)
    D = (TextureD(args.d_ch, args.d_downs, args.d_texture) if args.d_texture else PatchD(args.d_ch)).to(device)
    Dc = PatchD(args.d_ch).to(device)
    yunet = YuNetLandmarks().to(device) if args.lmk_weight > 0 else None  # frozen
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam([*D.parameters(), *Dc.parameters()], lr=args.lr, betas=(0.5, 0.99))
    st = {"step": 0, "spent": 0.0, "epoch": 0, "gan_steps": 0, "ckpts": 0}
    ckpt = out / "ckpt.pt"
    G_ema = None
    if args.ema:
        G_ema = FaceNet512(noise=args.noise).to(device).requires_grad_(False)
    if not 0 <= args.ema < 1:
        raise SystemExit("--ema is a decay per step in [0, 1)")
    if args.ldl_weight and G_ema is None:
        raise SystemExit("--ldl-weight needs --ema (the artifact map compares against the EMA)")
    if args.resume and ckpt.exists():
        s = torch.load(ckpt, map_location=device)
        G.load_state_dict(s["G"]), D.load_state_dict(s["D"]), Dc.load_state_dict(s["Dc"])
        if G_ema is not None:
            G_ema.load_state_dict(s.get("G_ema", s["G"]))
        opt_g.load_state_dict(s["opt_g"]), opt_d.load_state_dict(s["opt_d"])
        st.update(s["state"])
        print(f"resumed at step {st['step']}, {st['spent'] / 60:.1f} min spent", flush=True)
    elif args.init_gen:
        # A committed candidate (fp16 generator) on a machine without ckpt.pt: the generator
        # goes on from it; the discriminators and optimisers start afresh (and warm up again).
        load_generator(G, torch.load(args.init_gen, map_location=device))
        print(f"generator from {args.init_gen}", flush=True)
    if G_ema is not None and not (args.resume and ckpt.exists()):
        G_ema.load_state_dict(G.state_dict())
    if args.export_only:
        print(json.dumps({"onnx": str(out / "face.onnx"), "max_diff": export_checked(G, out / "face.onnx")}))
        return 0
    n_params = sum(p.numel() for p in G.parameters())
    print(f"device {device}, {n_params} parameters ({2 * n_params / 1e6:.2f} MB fp16), "
          f"{G.macs() / 1e9:.2f} GMAC per face, threads {torch.get_num_threads()}", flush=True)

    index = json.loads((args.data / "index.json").read_text())
    n_train = len(index["train"])
    select = sorted(index["select"])[: args.val_n]
    # Odd fits out (a rotated or far-off detection, most of the template outside the photo).
    odd = {i for i, r in enumerate(index["train"]) if abs(r["rot_deg"]) > 12 or r["coverage"] < 0.65}
    train_rows = sorted(set(range(n_train)) - set(select) - odd)
    val_rows = select[: args.val_score_n]
    ds = Faces512(args.data, train_rows, args.seed)
    print(f"{len(train_rows)} training faces ({len(odd)} odd fits left out), {len(select)} held back, "
          f"{len(val_rows)} scored per validation", flush=True)
    budget = args.minutes * 60
    log = open(out / "log.jsonl", "a")

    def emit(rec: dict) -> None:
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()

    def save() -> None:
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "Dc": Dc.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "state": st,
                    **({"G_ema": G_ema.state_dict()} if G_ema is not None else {}),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}},
                   ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
        torch.save(fp16_state(G), out / "gen_fp16.pt")
        if G_ema is not None:
            torch.save(fp16_state(G_ema), out / "gen_ema_fp16.pt")
        if args.copy_to:
            args.copy_to.mkdir(parents=True, exist_ok=True)
            for f in ("gen_fp16.pt", "log.jsonl") + (("gen_ema_fp16.pt",) if G_ema is not None else ()):
                shutil.copyfile(out / f, args.copy_to / f)

    threads = 1 if device.type == "cuda" else torch.get_num_threads()
    clock = Clock(threads)
    last_ckpt = time.time()
    win = {"n": 0, "t": time.time()}
    rng = np.random.default_rng([args.seed, st["step"]])
    check = SelfCheck(args.self_check) if args.self_check else None
    done = False
    while not done:
        ds.epoch = st["epoch"]
        loader = torch.utils.data.DataLoader(
            ds, batch_size=args.batch, shuffle=True, drop_last=True, num_workers=args.workers,
            generator=torch.Generator().manual_seed(args.seed * 1000 + st["epoch"]))
        for x, target, mask, lm in loader:
            x, target, mask = x.to(device), target.to(device), mask.to(device)
            st["spent"] += clock.lap()
            frac = st["spent"] / budget
            lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
            for o in (opt_g, opt_d):
                for g in o.param_groups:
                    g["lr"] = lr
            gan = frac >= args.gan_start
            if gan and not (out / "gen_l1_fp16.pt").exists():
                torch.save(fp16_state(G), out / "gen_l1_fp16.pt")  # the L1-only control
                emit({"step": st["step"], "l1_snapshot": str(out / "gen_l1_fp16.pt"),
                      "onnx_max_diff": export_checked(G, out / "face_l1.onnx")})
            c = args.crop
            if rng.random() < 0.5:
                cy, cx = FACE_CROP if c == 256 else ((512 - c) // 64 * 32,) * 2
            else:
                cy, cx = (32 * int(rng.integers(0, (512 - c) // 32 + 1)) for _ in range(2))
            crop = (cy, cx, c)
            y = G(x, crop=crop)
            t, mk = target[..., cy:cy + c, cx:cx + c], mask[..., cy:cy + c, cx:cx + c]
            l1 = masked_l1(y, t, mk)
            l_per = period_loss(y, t, mk, PERIODS)
            loss = l1 + args.period_weight * l_per
            rec = {"l1": float(l1.detach()), "period": float(l_per.detach())}
            if yunet is not None:
                # YuNet needs the whole face (it is a detector: its anchors see the face at once),
                # but the step has only the window of the 512² output; the generator has no cheaper
                # whole-face RGB (below 512² it holds features, not a picture), and running it on
                # the whole face (crop=None) costs 2.2× the step on CPU (0.81 s against 0.36 s per
                # face, fwd+bwd) where the loss costs ~0.02 s. So the window (covered pixels) is
                # pasted into the target, and YuNet reads that against the target itself: any
                # difference is the window's doing, the gradient reaches the generator through it,
                # and output == target gives 0. On the eyes-and-mouth window the pasted face
                # scores ~85 % of what the whole output face scores (0.041 against 0.048).
                whole = target.clone()
                whole[..., cy:cy + c, cx:cx + c] = y * mk + t * (1 - mk)
                l_lmk = landmark_loss(yunet, whole, target, lm.to(device))
                loss = loss + args.lmk_weight * l_lmk
                rec["lmk"] = float(l_lmk.detach())
            if gan:
                fake = y * mk + t * (1 - mk)  # uncovered pixels: the target's, for both
                if args.comp_weight:
                    fake_c, _ = component_patches(fake, lm, crop)
                    real_c, _ = component_patches(t, lm, crop)
                else:  # no eyes/mouth D: neither its patches nor its forward passes are paid for
                    fake_c = real_c = fake[:0]
                # Discriminators' step (hinge), on augmented inputs. The real faces' augmentation
                # is drawn again for the fakes of the generator's step, so that feature matching
                # compares activations of the same augmentation.
                seed = int(rng.integers(1 << 62))
                same = lambda: torch.Generator(device=t.device).manual_seed(seed)  # noqa: E731
                real_in = diff_augment(t, same())
                if args.r1_weight:
                    real_in = real_in.detach().requires_grad_(True)
                d_real, acts_real = D(real_in, features=True)
                l_d = F.relu(1 - d_real).mean() + F.relu(1 + D(diff_augment(fake.detach()))).mean()
                if args.r1_weight:
                    # R1 (Mescheder et al. 2018): the whole-face D's gradient on real faces kept
                    # small, so that D cannot outrun a generator held to small adversarial weights.
                    (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
                    r1 = grad.pow(2).flatten(1).sum(1).mean()
                    l_d = l_d + args.r1_weight / 2 * r1
                    rec["r1"] = float(r1.detach())
                if len(fake_c):
                    l_d = l_d + F.relu(1 - Dc(diff_augment(real_c))).mean() \
                        + F.relu(1 + Dc(diff_augment(fake_c.detach()))).mean()
                opt_d.zero_grad(set_to_none=True)
                l_d.backward()
                opt_d.step()
                st["gan_steps"] += 1
                # The generator's: fool both, match the features of the real faces.
                logit, acts = D(diff_augment(fake, same()), features=True)
                l_fm = sum(F.l1_loss(a, r.detach()) for a, r in zip(acts, acts_real)) / len(acts)
                l_g = -logit.mean()
                loss = loss + args.gan_weight * l_g + args.fm_weight * l_fm
                rec.update(d=float(l_d.detach()), g=float(l_g.detach()), fm=float(l_fm.detach()))
                if len(fake_c):
                    l_c = -Dc(diff_augment(fake_c)).mean()
                    loss = loss + args.comp_weight * l_c
                    rec["comp"] = float(l_c.detach())
                if args.ldl_weight:
                    with torch.no_grad():
                        y_ema = G_ema(x, crop=crop)
                    w = artifact_map(y, y_ema, t, mk)
                    l_ldl = F.l1_loss(w * y, w * t)
                    loss = loss + args.ldl_weight * l_ldl
                    rec["ldl"] = float(l_ldl.detach())
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            if G_ema is not None:
                with torch.no_grad():
                    for e, g in zip(G_ema.state_dict().values(), G.state_dict().values()):
                        if e.is_floating_point():
                            e.lerp_(g, 1 - args.ema)
                        else:
                            e.copy_(g)
            st["step"] += 1
            win["n"] += 1
            if args.self_check and check is not None:
                if check.step(rec["l1"], args.batch):
                    return 3
                if check.done:
                    check = None
            for k, v in rec.items():
                win[k] = win.get(k, 0.0) + v
            if st["step"] % 10 == 0 or st["step"] <= 3:
                dt = time.time() - win.pop("t")
                n = win.pop("n")
                emit({"step": st["step"], "min": round(st["spent"] / 60, 2), "at": time.strftime("%H:%M:%S"), "lr": round(lr, 7),
                      "gan": gan, **{k: round(v / n, 5) for k, v in win.items()},
                      "samples_s": round(n * args.batch / max(dt, 1e-6), 3)})
                win = {"n": 0, "t": time.time()}
            over = st["spent"] >= budget or (args.steps and st["step"] >= args.steps)
            if over or time.time() - last_ckpt >= args.ckpt_minutes * 60:
                t_pause = time.time()
                st["ckpts"] += 1
                save()
                rec = {"step": st["step"], "min": round(st["spent"] / 60, 2), "checkpoint": str(ckpt)}
                if val_rows and (over or st["spent"] - st.get("val_at", 0.0) >= args.val_minutes * 60):
                    st["val_at"] = st["spent"]
                    rec.update(validate(G, args.data, val_rows, device))
                    (out / "snapshots").mkdir(exist_ok=True)
                    shutil.copyfile(out / "gen_fp16.pt", out / "snapshots" / f"step{st['step']}_fp16.pt")
                    if G_ema is not None:
                        shutil.copyfile(out / "gen_ema_fp16.pt", out / "snapshots" / f"step{st['step']}_ema_fp16.pt")
                    rec["val_s"] = round(time.time() - t_pause, 1)
                emit(rec)
                last_ckpt = time.time()
                clock.lap()  # checkpoints and validation are not training time
            if over:
                done = True
                break
        else:
            st["epoch"] += 1
    if not args.no_export:
        emit({"step": st["step"], "onnx": str(out / "face.onnx"), "onnx_max_diff": export_checked(G, out / "face.onnx")})
    print(f"done: {st['step']} steps, {st['spent'] / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

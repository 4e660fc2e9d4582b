"""The 512² face restorer's tooling (issue 29): data preparation on a few real dev faces, one
training step (with the GAN, a checkpoint and a validation) on CPU, resume, and the network's
ONNX export in onnxruntime (256² in, 512² out, the same values as torch). CI never trains for
real; the FFHQ photos are never used here."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import MODELS, REPO, run

DEV_FACES = REPO.parent / "shared" / "data" / "dev" / "codeformer" / "cropped_faces"
PREPARE = MODELS / "face" / "prepare512.py"
TRAIN = MODELS / "face" / "train512.py"


@pytest.fixture(scope="module")
def tiny512(tmp_path_factory):
    """Five real 512² dev faces prepared as prepare512.py prepares FFHQ (two of them the
    selection faces), one as val/."""
    root = tmp_path_factory.mktemp("faces512")
    files = sorted(DEV_FACES.glob("*.png"))[:6]
    assert len(files) == 6, f"dev faces missing in {DEV_FACES}"
    for i, f in enumerate(files):
        d = root / "src" / ("val" if i == 5 else "train")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, d / f.name)
    r = run([PREPARE, "--src", root / "src", "--out", root / "data", "--val-n", "2", "--workers", "1"], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "data"


def test_prepare_aligns_targets_bicubic_and_masks_the_uncovered_template(tiny512):
    index = json.loads((tiny512 / "index.json").read_text())
    assert len(index["train"]) == 5 and len(index["val"]) == 1 and len(index["select"]) == 2
    targets = np.load(tiny512 / "train_target.npy", mmap_mode="r")
    masks = np.load(tiny512 / "train_mask.npy", mmap_mode="r")
    assert targets.shape == (5, 512, 512, 3) and masks.shape == (5, 512, 512)
    for r in index["train"]:
        assert 0.8 < r["scale"] < 1.4 and 0.5 < r["coverage"] <= 1.0, r
    # The template's landmarks land on the FFHQ template (the fit is the product's).
    from face.common import FFHQ_512
    lm = np.asarray(index["train"][0]["landmarks_512"])
    assert np.abs(lm - FFHQ_512).max() < 20


def test_bicubic_target_warp_uses_the_products_pixel_convention():
    """Pillow's affine transform with bilinear gives the product's warp (`common.warp`) to 8-bit
    rounding, so the bicubic target and the bilinear input are cut at the same place."""
    from face.common import Detector, to_template, warp
    from face.prepare512 import warp_hq
    rgb = np.asarray(Image.open(sorted(DEV_FACES.glob("*.png"))[0]).convert("RGB"))
    m = to_template(Detector().detect(rgb)[0]["landmarks"], 512)
    ours = warp_hq(rgb, m, method=Image.BILINEAR).astype(np.float32) / 255
    ref, inside = warp(rgb, m, 512)
    assert np.abs(ours - ref)[inside].max() <= 1.5 / 255


def test_period_loss_sees_a_grid_at_each_period_and_not_a_smooth_error():
    import torch
    from face.losses512 import period_loss
    from face.net512 import PERIODS
    face = np.asarray(Image.open(sorted(DEV_FACES.glob("*.png"))[0]).convert("RGB").resize((256, 256)), np.float32)
    target = torch.from_numpy(face / 127.5 - 1).permute(2, 0, 1)[None]
    mask = torch.ones(1, 1, 256, 256)
    yy, xx = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    ramp = torch.sin(xx / 20.0)
    assert float(period_loss(target, target, mask, PERIODS)) == 0
    for p in PERIODS:
        grid = ((yy % p == 0) & (xx % p == 0)).float()
        grid = 0.05 * (grid - grid.mean())
        smooth = ramp * grid.abs().mean() / ramp.abs().mean()  # a smooth error of the same size
        on = float(period_loss(target + grid, target, mask, PERIODS))
        off = float(period_loss(target + smooth, target, mask, PERIODS))
        assert on > 3 * off, (p, on, off)


def test_artifact_map_marks_the_gans_ripples_and_not_what_it_got_closer_than_the_ema():
    import torch
    from face.losses512 import artifact_map
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(128.0), indexing="ij")
    target = (torch.sin(xx / 9.0) * 0.5)[None, None].repeat(1, 3, 1, 1)
    ema = target + 0.05  # the slow average: a little off everywhere, smoothly
    ripple = 0.3 * torch.sin(xx * 2.1) * torch.sin(yy * 1.7)
    out = target.clone()
    out[..., :64] += ripple[:, :64]  # the GAN's left half rippled, its right half exact
    mask = torch.ones(1, 1, 64, 128)
    w = artifact_map(out, ema, target, mask)
    assert w.shape == (1, 1, 64, 128)
    assert float(w[..., 4:-4, 4:56].mean()) > 0 and float((w[..., 4:-4, 4:56] > 0).float().mean()) > 0.5
    assert float(w[..., 72:].abs().max()) == 0  # closer than the EMA: detail, not artifact
    assert float(artifact_map(out, ema, target, torch.zeros_like(mask)).abs().max()) == 0  # uncovered: never
    half = mask.clone()
    half[..., :, 96:] = 0  # the template's pixels outside the photo: out of the map, and of its edge
    wh = artifact_map(out, ema, target, half)
    assert float(wh[..., 96:].abs().max()) == 0
    assert torch.allclose(wh[..., 4:-4, 4:56], w[..., 4:-4, 4:56] * (wh[..., 4:-4, 4:56].sum() / w[..., 4:-4, 4:56].sum()))


def test_artifact_map_is_basicsrs_where_the_window_is_covered():
    import torch
    import torch.nn.functional as F
    from face.losses512 import artifact_map

    def basicsr(gt, output, ema, ksize=7):  # BasicSR's get_refined_artifact_map, images in 0…1
        def local(residual):
            pad = (ksize - 1) // 2
            rp = F.pad(residual, pad=[pad, pad, pad, pad], mode="reflect")
            unfolded = rp.unfold(2, ksize, 1).unfold(3, ksize, 1)
            return torch.var(unfolded, dim=(-1, -2), unbiased=True, keepdim=True).squeeze(-1).squeeze(-1)
        r_ema = torch.sum(torch.abs(gt - ema), 1, keepdim=True)
        r_sr = torch.sum(torch.abs(gt - output), 1, keepdim=True)
        w = torch.var(r_sr.clone(), dim=(-1, -2, -3), keepdim=True) ** (1 / 5) * local(r_sr.clone())
        w[r_sr < r_ema] = 0
        return w

    g = torch.Generator().manual_seed(3)
    gt, out, ema = (torch.rand(2, 3, 40, 48, generator=g) for _ in range(3))
    ours = artifact_map(out * 2 - 1, ema * 2 - 1, gt * 2 - 1, torch.ones(2, 1, 40, 48))
    ref = basicsr(gt, out, ema)
    assert (ref > 0).float().mean() > 0.3
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-7), float((ours - ref).abs().max())


def test_texture_discriminator_ignores_shading_and_sees_only_its_window():
    import torch
    from face.losses512 import TextureD, high_pass

    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 96, 96, generator=g) * 2 - 1
    # A smooth ramp of shading is (nearly) gone from the high-pass image; pixel noise is not.
    ramp = torch.linspace(-1, 1, 96).view(1, 1, 1, 96).expand(1, 3, 96, 96)
    assert float(high_pass(ramp, 2.0)[..., 8:-8, 8:-8].abs().max()) < 0.02
    assert float(high_pass(x, 2.0).std()) > 0.4
    for downs, field in ((1, 14), (2, 30)):
        torch.manual_seed(0)
        d = TextureD(8, downs, 2.0).eval()
        x2 = x.clone()
        x2[..., 60, 60] += 1.0  # one pixel changed: only the logits whose field holds it move
        with torch.no_grad():
            a, b = d(x), d(x2)
            shaded = d(x + 0.3 * ramp)
        moved = (a - b).abs()[0, 0] > 1e-7
        ys, xs = torch.nonzero(moved, as_tuple=True)
        stride = 2 ** downs
        assert len(ys) > 0
        # The blur of the high pass reaches 3σ + 1 = 7 px further than the layers' own field.
        span = field + 2 * 7
        assert (int(ys.max() - ys.min()) + 1) * stride <= span + stride, (downs, ys.min(), ys.max())
        inner = slice(16 // stride, -16 // stride)  # away from the reflect-padded border
        assert float((shaded - a)[..., inner, inner].abs().max()) < 0.05 * float(a.abs().max()) + 1e-3


def test_training_runs_a_gan_step_checkpoints_and_validates(tiny512):
    out = tiny512 / "run"
    common = ["--data", tiny512, "--out", out, "--batch", "1", "--workers", "0", "--threads", "2",
              "--gan-start", "0", "--val-n", "2", "--val-score-n", "1", "--val-minutes", "0", "--lmk-weight", "0.3",
              "--r1-weight", "1", "--ema", "0.999", "--ldl-weight", "1", "--d-texture", "2", "--d-downs", "1", "--noise"]
    r = run([TRAIN, *common, "--steps", "1"], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    step = next(rec for rec in log if "l1" in rec)
    assert step["step"] == 1 and np.isfinite(step["l1"]) and step["d"] > 0 and step["period"] > 0, step
    assert 0 <= step["lmk"] < 1, step  # YuNet's landmark loss, in eye distances
    assert np.isfinite(step["r1"]) and step["r1"] > 0, step  # the R1 penalty ran
    assert np.isfinite(step["ldl"]) and step["ldl"] >= 0, step  # LDL's artifact loss ran
    val = next(rec for rec in log if "checkpoint" in rec)
    for lv in ("x4", "x8"):
        assert 10 < val[f"val_psnr_{lv}"] < 60 and 0 < val[f"val_niqe_{lv}"] < 40, val
        assert set(val[f"val_period_{lv}"]) == {"2", "4", "8", "16", "32"}, val
    for f in ("ckpt.pt", "gen_fp16.pt", "gen_l1_fp16.pt", "face_l1.onnx", "face.onnx", "snapshots/step1_fp16.pt",
              "gen_ema_fp16.pt", "snapshots/step1_ema_fp16.pt"):
        assert (out / f).is_file(), f
    assert (out / "gen_fp16.pt").stat().st_size <= 2_000_000
    assert log[-1]["onnx_max_diff"] < 1e-3


def test_training_resumes_from_its_checkpoint(tiny512):
    out = tiny512 / "run_resume"
    common = ["--data", tiny512, "--out", out, "--batch", "1", "--workers", "0", "--threads", "2",
              "--gan-start", "2", "--val-n", "2", "--val-score-n", "0", "--no-export", "--lmk-weight", "0"]
    for steps in (1, 2):
        r = run([TRAIN, *common, "--steps", str(steps), "--resume"], timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step 1" in r.stdout
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 2 and 1 in steps


def test_the_named_recipe_starts_from_its_committed_generator_and_a_flag_beside_it_wins(tiny512):
    # `make train-face` and gpu.sh run `--recipe texture`: its generator must load (noise inputs and
    # all) and its GAN run from the first step; a flag given beside it overrides the recipe's.
    out = tiny512 / "run_recipe"
    r = run([TRAIN, "--data", tiny512, "--out", out, "--recipe", "texture", "--comp-weight", "0.02", "--batch", "1",
             "--workers", "0", "--threads", "2", "--val-n", "2", "--val-score-n", "0", "--no-export",
             "--lmk-weight", "0", "--steps", "1"], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "generator from " in r.stdout and "unblur-face-512-run13-noise-step970.fp16.pt" in r.stdout, r.stdout
    step = next(json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"l1"' in line)
    assert step["gan"] and np.isfinite(step["ldl"]) and step["ldl"] >= 0, step  # the GAN and LDL ran at step 1
    import torch
    from face.losses512 import TextureD
    from face.train import PatchD
    ckpt = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=False)
    # what trained: a generator with noise inputs, its EMA, the texture discriminator (not the 70-px one)
    assert {"noise0", "noise1"} <= set(ckpt["G"]) and "G_ema" in ckpt
    shapes = {k: tuple(v.shape) for k, v in ckpt["D"].items()}
    assert shapes == {k: tuple(v.shape) for k, v in TextureD(32, 2, 2.0).state_dict().items()}
    assert shapes != {k: tuple(v.shape) for k, v in PatchD(32).state_dict().items()}
    assert ckpt["args"]["comp_weight"] == 0.02, ckpt["args"]  # the flag beside the recipe won


def test_network_exports_256_in_512_out_and_onnxruntime_agrees(tmp_path):
    import onnx
    import torch
    from face.net512 import FaceNet512, export_onnx
    from face.train512 import check_onnx
    torch.manual_seed(0)
    net = FaceNet512()
    with torch.no_grad():
        net.head[-1].weight.normal_(0, 0.1)  # a non-trivial residual
    path = tmp_path / "face512.onnx"
    export_onnx(net, path)
    m = onnx.load(str(path))
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(m.graph.input[0]) == [1, 3, 256, 256] and dims(m.graph.output[0]) == [1, 3, 512, 512]
    ops = {n.op_type for n in m.graph.node}
    assert ops <= {"Conv", "PRelu", "Add", "Concat", "Resize", "Constant", "Identity"}, ops
    for n in m.graph.node:
        for a in n.attribute:
            assert a.s != b"pytorch_half_pixel", "tract and the product's converter use half_pixel"
    assert check_onnx(net, path) < 1e-3
    assert net.macs() <= 20e9 and sum(p.numel() for p in net.parameters()) * 2 <= 2e6


def test_noise_inputs_start_at_zero_draw_texture_and_load_without_it():
    """A noiseless checkpoint loads into the noise generator unchanged (its scales start at 0);
    with a scale set, two forwards differ only at full resolution's texture, not in the mean;
    the noiseless form (`FaceNet512()`) drops the scales and gives the original network back."""
    import torch
    from face.net512 import FaceNet512, fp16_state, load_generator, new_generator
    torch.manual_seed(2)
    plain = FaceNet512().eval()
    state = fp16_state(plain)
    noisy = load_generator(FaceNet512(noise=True), state).eval()
    ref = load_generator(FaceNet512(), state).eval()
    assert hasattr(noisy, "noise0") and not hasattr(ref, "noise0")
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(noisy(x), ref(x))
        noisy.noise1.fill_(0.5)
        a, b = noisy(x), noisy(x)
        assert float((a - b).abs().max()) > 1e-4  # a fresh draw each forward
        assert abs(float((a - b).mean())) < 1e-3
        back = load_generator(FaceNet512(), fp16_state(noisy)).eval()
        assert torch.equal(back(x), ref(x))
    assert "noise1" in new_generator(fp16_state(noisy)).state_dict()


def test_frozen_noise_is_one_fixed_map_that_windows_share_and_the_export_keeps_small(tmp_path):
    """The shipped form of the noise inputs: in eval mode the same face gives the same output
    (no random source), a training window sees the whole face's map there, the grain is there
    (not the noiseless network), a checkpoint of it loads anywhere and the seed gives the same
    map back, and the ONNX graph tiles the small maps (onnxruntime agrees) rather than holding
    a 512² constant."""
    import onnx
    import torch
    from face.net512 import FaceNet512, export_onnx, fp16_state, load_generator, new_generator
    from face.train512 import check_onnx
    torch.manual_seed(3)
    state = fp16_state(FaceNet512())
    ref = load_generator(FaceNet512(), state).eval()
    noisy = load_generator(FaceNet512(noise=True), state)
    with torch.no_grad():
        noisy.noise0.fill_(0.3)
        noisy.noise1.fill_(0.3)
    frozen = noisy.freeze_noise(seed=0).eval()
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        a = frozen(x)
        assert torch.equal(a, frozen(x))
        assert float((a - ref(x)).abs().mean()) > 1e-4  # the grain is drawn
        for y0, x0, side in ((64, 96, 128), (192, 128, 256), (32, 224, 288)):
            w = frozen(x, crop=(y0, x0, side))
            assert torch.allclose(w, a[..., y0:y0 + side, x0:x0 + side], atol=1e-5), (y0, x0, side)
        again = new_generator(frozen.state_dict()).freeze_noise(seed=0).eval()
        assert torch.equal(again(x), a)
        other = new_generator(frozen.state_dict()).freeze_noise(seed=1).eval()
        assert not torch.equal(other(x), a)
    path = tmp_path / "noisy.onnx"
    export_onnx(frozen, path)
    assert check_onnx(frozen, path) < 1e-3
    m = onnx.load(str(path))
    assert "Tile" in {n.op_type for n in m.graph.node}
    export_onnx(ref, tmp_path / "plain.onnx")  # the same network without its noise
    extra = path.stat().st_size - (tmp_path / "plain.onnx").stat().st_size
    assert 0 < extra < 250_000, extra  # the four tiles (41,540 floats), not a 512² map (1 MB)


def test_a_pixel_shuffle_checkpoint_loads_as_the_resize_convolution():
    """A generator saved before the last ×2 became a resize-convolution (the committed
    candidates) loads: the conv is its four phases' mean, and with equal phases the 512² stage
    gives exactly what the shuffle gave on a constant feature map (inside the zero padding's border)."""
    import torch
    from face.net512 import FaceNet512, load_generator
    torch.manual_seed(1)
    new = FaceNet512()
    old = {k: v.half() for k, v in new.state_dict().items() if not k.startswith("to512.1.")}
    w, b = new.to512[1].weight.detach(), new.to512[1].bias.detach()
    old["to512.0.weight"] = w.repeat_interleave(4, 0).half()  # PixelShuffle: channel c·4 + phase
    old["to512.0.bias"] = (b.repeat_interleave(4, 0) + torch.tensor([0.3, -0.1, 0.0, -0.2]).repeat(b.numel())).half()
    got = load_generator(FaceNet512(), old)
    assert torch.allclose(got.to512[1].weight, w.half().float())
    assert torch.allclose(got.to512[1].bias, b.half().float() + 0.0, atol=2e-3)  # the phase offsets average out
    f = torch.full((1, new.ch[0], 8, 8), 0.5)
    shuffle = torch.nn.Sequential(torch.nn.Conv2d(new.ch[0], 4 * new.ch[5], 3, 1, 1), torch.nn.PixelShuffle(2))
    with torch.no_grad():
        shuffle[0].weight.copy_(old["to512.0.weight"].float())
        shuffle[0].bias.copy_(got.to512[1].bias.repeat_interleave(4, 0))
        inner = (..., slice(2, -2), slice(2, -2))  # the zero padding's border differs by scale
        assert torch.allclose(got.to512[:2](f)[inner], shuffle(f)[inner], atol=1e-5)


def test_controls_sharpen_and_grain_as_tuned_and_keep_within_the_psnr_cost():
    from face import controls
    flat = np.full((64, 64, 3), 0.5, np.float32)
    assert np.allclose(controls.usm(flat, 1.0, 2.0), flat), "an unsharp mask leaves a flat image alone"
    g = controls.grain(flat, 4, 0.0, seed=1)
    assert abs(float((g - flat)[..., 0].std()) * 255 - 4) < 0.3 and np.array_equal(g[..., 0], g[..., 2])
    rng = np.random.default_rng(0)
    truths = [np.clip(rng.random((96, 96, 3)).astype(np.float32), 0, 1) for _ in range(2)]
    blurred = [controls.usm(t, 1.5, -0.9) for t in truths]  # a negative amount blurs
    masks = [np.ones((96, 96), bool)] * 2

    def psnr(o, t, m):
        return 10 * np.log10(1 / max(float(((o - t) ** 2)[m].mean()), 1e-12))

    t = controls.tune(blurred, truths, masks, [0, 1], "grain", psnr, lambda o: float(-o.std()))
    assert t["setting"] is not None and t["psnr"] >= t["base_psnr"] - controls.PSNR_COST
    # The fake "NIQE" falls with every level of grain: the strongest setting within the cost wins.
    within = [r for r in t["grid"] if r["psnr"] >= t["base_psnr"] - controls.PSNR_COST]
    assert t["niqe"] == min(r["niqe"] for r in within)


def test_evaluation_scores_val_faces_with_controls_and_tiers(tiny512, tmp_path):
    import torch
    from face.net512 import FaceNet512, fp16_state
    torch.manual_seed(0)
    gen = tmp_path / "gen.fp16.pt"
    torch.save(fp16_state(FaceNet512()), gen)
    out = tmp_path / "eval"
    r = run([MODELS / "face" / "evaluate.py", "--faces", tiny512, "--model", gen, "--name", "m",
             "--l1-model", gen, "--limit", "1", "--select-n", "1", "--out", out, "--threads", "2"], timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    ev = json.loads((out / "eval.json").read_text())
    names = {"bicubic", "sr-fallback", "m", "l1-only", "sr-fallback+usm", "sr-fallback+grain",
             "l1-only+usm", "l1-only+grain"}
    for lv in ("x4", "x8"):
        assert set(ev["levels"][lv]) == names
        for name, row in ev["levels"][lv].items():
            assert 10 < row["psnr512"] < 60 and set(row["periods"]) == {"2", "4", "8", "16", "32"}, (name, row)
        # An enlargement of the degraded face has less fine detail in its centre than the photo.
        assert ev["levels"][lv]["bicubic"]["lapvar_x_gt"] < 0.8, ev["levels"][lv]["bicubic"]
        for base in ("sr-fallback", "l1-only"):
            for kind in ("usm", "grain"):
                c = ev["controls"][f"{base}+{kind}|{lv}"]
                assert c["psnr"] >= c["base_psnr"] - 1.0, c
        assert set(ev["tiers"]["m"][lv]) == {"tier1", "tier2", "tier1_pass", "tier2_pass"}
    assert ev["levels"]["x4"]["bicubic"]["psnr512"] > ev["levels"]["x8"]["bicubic"]["psnr512"]
    assert set(ev["dev_niqe"]) == names | {"input"}
    assert (out / "grid_val_x8.png").is_file() and (out / "grid_dev.png").is_file()


def test_exemplar_prior_gives_a_dictionary_face_its_own_detail_back():
    """`exemplar.py`'s nearest-neighbour detail: a face whose low frequencies are in the dictionary
    finds itself at every patch (offset 0) and gets its own high frequencies back, not a
    neighbour's; a shifted copy finds itself at the shift."""
    import sys
    sys.path.insert(0, str(MODELS))
    from scipy.ndimage import gaussian_filter
    from face.exemplar import LOW, SIDE, ExemplarPrior, luma

    rng = np.random.default_rng(3)
    faces = [np.clip(gaussian_filter(rng.random((SIDE, SIDE, 3)), (s, s, 0)) * 4 - 1.5 + 0.5, 0, 1)
             for s in (2.0, 3.0, 4.0)]
    ys = [luma(f) for f in faces]
    sigma = 3.0
    keys = np.stack([ExemplarPrior.low(y, sigma) for y in ys])
    values = np.stack([y - gaussian_filter(y, sigma) for y in ys]).astype(np.float16)
    prior = ExemplarPrior(keys, values, sigma, radius=1)
    base = np.repeat(gaussian_filter(ys[1], sigma)[..., None], 3, 2)
    got = prior.detail(base)
    want = values[1].astype(np.float32)
    inner = slice(16, SIDE - 16)
    assert np.abs(got - want)[inner, inner].max() < 1e-3
    assert np.abs(got - values[0].astype(np.float32))[inner, inner].mean() > 10 * np.abs(got - want)[inner, inner].mean()
    # Shifted by 4 px (one step at LOW²) the same face is found one offset away.
    shifted = np.roll(ys[2], (4, -4), (0, 1))
    got = prior.detail(np.repeat(gaussian_filter(shifted, sigma)[..., None], 3, 2))
    want = np.roll(values[2].astype(np.float32), (4, -4), (0, 1))
    inner = slice(48, SIDE - 48)
    assert np.abs(got - want)[inner, inner].mean() < 0.1 * np.abs(want[inner, inner]).mean()
    assert LOW * 4 == SIDE

"""Unblur's own face model: the committed weights agree with the manifest, the model card and the
last evaluation; the training script runs (one step, and a resumed one) on CPU on a tiny batch;
the reference degradations are deterministic per seed and sized as their levels say. CI never
trains for real."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from conftest import MODELS, REPO, run, source_manifest

from unblur_models.common import sha256_file

FACE_DIR = MODELS / "unblur-face"
WEIGHTS = FACE_DIR / "unblur-face-s.onnx"
TRAIN_PY = MODELS / "face" / "train.py"
DEV_FACES = REPO.parent / "shared" / "data" / "dev" / "codeformer" / "cropped_faces"


def test_weights_card_manifest_and_evaluation_name_the_same_file():
    actual = sha256_file(WEIGHTS)
    entry = next(m for m in source_manifest()["models"] if m["id"] == "unblur-face")
    assert entry["sha256"] == actual, "models/manifest.json names other weights"
    assert entry["bytes"] == WEIGHTS.stat().st_size
    assert entry["source"]["repo"] == str(WEIGHTS.relative_to(REPO))
    card = (FACE_DIR / "MODEL_CARD.md").read_text()
    assert actual in card, "MODEL_CARD.md does not give the weights' sha256"
    ev = json.loads((FACE_DIR / "eval.json").read_text())
    scored = {m["sha256"] for m in ev["models"].values()}
    assert actual in scored, "the last evaluation (eval.json) scored other weights"
    # The card quotes the evaluation's table.
    assert re.search(r"\| unblur-face \|", card), "the card lacks the metrics table"


@pytest.fixture()
def tiny_faces(tmp_path):
    """Four real dev faces as a prepared set (what prepare.py writes), one held out."""
    files = sorted(DEV_FACES.glob("*.png"))[:5]
    assert len(files) == 5, f"dev faces missing in {DEV_FACES}"
    n = 4
    faces = np.lib.format.open_memmap(tmp_path / "train_256.npy", "w+", np.uint8, (n, 256, 256, 3))
    masks = np.lib.format.open_memmap(tmp_path / "train_mask.npy", "w+", np.uint8, (n, 256, 256))
    for i, f in enumerate(files[:n]):
        faces[i] = np.asarray(Image.open(f).convert("RGB").resize((256, 256), Image.BICUBIC))
        masks[i] = 1
    faces.flush()
    masks.flush()
    (tmp_path / "heldout").mkdir()
    Image.open(files[4]).convert("RGB").save(tmp_path / "heldout" / "0000.png")
    (tmp_path / "heldout.json").write_text(json.dumps([{"id": "0000"}]))
    (tmp_path / "index.json").write_text(json.dumps({"rows": [{} for _ in range(n)], "train": list(range(n))}))
    return tmp_path


def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_training_runs_a_step_on_cpu_and_resumes(tiny_faces):
    out = tiny_faces / "run"
    common = ["--data", tiny_faces, "--out", out, "--batch", "2", "--workers", "0", "--heldout-n", "1",
              "--threads", "1", "--gan-start", "0", "--grid-weight", "1"]
    r = run([TRAIN_PY, *common, "--steps", "1"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "ckpt.pt").is_file() and (out / "gen_fp16.pt").is_file() and (out / "face.onnx").is_file()
    first = _log(out)
    assert first[0]["step"] == 1 and np.isfinite(first[0]["l1"]) and first[0]["d"] > 0, first[0]
    assert first[0]["grid"] > 0, first[0]
    assert np.isfinite(first[-1]["heldout_psnr_x4_256"])
    r = run([TRAIN_PY, *common, "--steps", "2", "--resume"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step 1" in r.stdout
    assert _log(out)[-1]["step"] == 2


def test_fold_grid_loss_sees_a_pattern_on_the_fold_and_not_the_face():
    """The fold-grid loss: zero for a perfect output, near zero for a smooth error, and large for
    the same amount of error laid as a pattern on the network's 4×4 fold (v4's dot grid)."""
    import torch
    from face.train import fold_grid_loss

    face = np.asarray(Image.open(sorted(DEV_FACES.glob("*.png"))[0]).convert("RGB").resize((128, 128)), np.float32)
    target = torch.from_numpy(face / 127.5 - 1).permute(2, 0, 1)[None]
    mask = torch.ones(1, 1, 128, 128)
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    grid = 0.05 * ((yy % 4 == 0) & (xx % 4 == 0)).float() - 0.05 / 16  # mean zero, period 4
    ramp = 0.05 * torch.sin(xx / 20.0)  # a smooth error of the same size
    assert float(fold_grid_loss(target, target, mask)) == 0
    on_grid = float(fold_grid_loss(target + grid, target, mask))
    smooth = float(fold_grid_loss(target + ramp, target, mask))
    assert on_grid > 0.004 and smooth < on_grid / 3, (on_grid, smooth)


def test_training_goes_on_from_the_committed_model_with_feature_matching(tiny_faces):
    """`--init-onnx` starts the generator exactly where the committed model is (its export before
    any step gives the committed model's output), and a GAN step with feature matching runs."""
    import onnxruntime as ort

    out = tiny_faces / "run"
    common = ["--data", tiny_faces, "--out", out, "--batch", "2", "--workers", "0", "--heldout-n", "1",
              "--threads", "1", "--init-onnx", WEIGHTS]
    r = run([TRAIN_PY, *common, "--export-only"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    face = np.asarray(Image.open(sorted(DEV_FACES.glob("*.png"))[0]).convert("RGB").resize((256, 256)), np.float32)
    x = (face.transpose(2, 0, 1)[None] / 127.5 - 1).astype(np.float32)
    ys = [ort.InferenceSession(str(p)).run(None, {"input": x})[0] for p in (WEIGHTS, out / "face.onnx")]
    assert np.abs(ys[0] - ys[1]).max() < 1e-4, "the generator did not start from the committed weights"
    # With --freeze-g-warmup the discriminator's warm-up steps leave the generator where it was.
    frozen = tiny_faces / "frozen"
    for steps, same in ((2, True), (3, False)):
        r = run([TRAIN_PY, *common, "--out", frozen, "--steps", str(steps), "--gan-start", "0", "--d-warmup", "2",
                 "--freeze-g-warmup"], timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        y = ort.InferenceSession(str(frozen / "face.onnx")).run(None, {"input": x})[0]
        assert (np.abs(ys[0] - y).max() < 1e-4) == same, (steps, np.abs(ys[0] - y).max())
    r = run([TRAIN_PY, *common, "--steps", "2", "--gan-start", "0", "--d-warmup", "1", "--fm-weight", "1",
             "--r1", "10", "--r1-every", "2"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    steps = [rec for rec in _log(out) if "l1" in rec]
    # Step 1 is the discriminator's warm-up (no generator GAN loss); step 2 adds both. The lazy
    # R1 penalty comes with every 2nd discriminator step, the first included.
    assert steps[0]["step"] == 1 and steps[0]["fm"] == 0 and steps[0]["d"] > 0 and steps[0]["r1"] > 0, steps[0]
    assert steps[1]["step"] == 2 and steps[1]["fm"] > 0 and steps[1]["gan_steps"] == 2, steps[1]
    assert steps[1]["r1"] == 0, steps[1]
    # And it resumes (the checkpoint holds only what torch.load's weights_only accepts).
    r = run([TRAIN_PY, *common, "--steps", "3", "--gan-start", "0", "--d-warmup", "1", "--fm-weight", "1",
             "--resume"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step 2" in r.stdout and _log(out)[-1]["step"] == 3


def test_training_keeps_the_moving_average_and_scores_withheld_faces(tiny_faces):
    """With `--ema` what is saved and exported is the average, not the trained generator: at a
    decay of 1 it never moves, so after GAN steps (and a resume) the export is still the model it
    started from. `--val-n` scores checkpoints on withheld training faces, `--snapshots` keeps
    each checkpoint's generator."""
    import onnxruntime as ort
    import torch

    out = tiny_faces / "run"
    common = ["--data", tiny_faces, "--out", out, "--batch", "2", "--workers", "0", "--threads", "1",
              "--init-onnx", WEIGHTS, "--gan-start", "0", "--fm-weight", "1", "--ema", "1.0", "--val-n", "1",
              "--snapshots"]
    r = run([TRAIN_PY, *common, "--steps", "2"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run([TRAIN_PY, *common, "--steps", "3", "--resume"], timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    face = np.asarray(Image.open(sorted(DEV_FACES.glob("*.png"))[0]).convert("RGB").resize((256, 256)), np.float32)
    x = (face.transpose(2, 0, 1)[None] / 127.5 - 1).astype(np.float32)
    run_ = lambda p: ort.InferenceSession(str(p)).run(None, {"input": x})[0]  # noqa: E731
    ref = run_(WEIGHTS)
    for onnx in (out / "face.onnx", out / "snapshots" / "step3.onnx"):
        assert np.abs(run_(onnx) - ref).max() < 1e-4, f"{onnx.name} is not the moving average"
    checks = [rec for rec in _log(out) if "checkpoint" in rec]
    assert [c["step"] for c in checks] == [2, 3], checks
    for c in checks:
        for lv in ("x4", "x8"):
            assert 10 < c[f"val_psnr_{lv}_256"] < 60 and 0 < c[f"val_niqe_{lv}_512"] < 40, c
            assert 0 <= c[f"val_lmd_{lv}"] < 50, c  # YuNet finds the face on the restored output
            assert 0 < c[f"val_grid_{lv}"] < 1e4, c
        assert "heldout_psnr_x4_256" not in c, "the held-out faces were looked at"
    # And the trained generator itself did move (the test above would pass with no training).
    ckpt = torch.load(out / "ckpt.pt")
    assert any((ckpt["G"][k].float() - v.float()).abs().max() > 0 for k, v in ckpt["G_ema"].items())


def test_reference_levels_are_deterministic_and_sized():
    from face.degrade import LEVELS, reference

    gt = np.asarray(Image.open(sorted(DEV_FACES.glob("*.png"))[0]).convert("RGB"), np.float32) / 255.0
    for level, p in LEVELS.items():
        a, b = reference(gt, level, seed=7), reference(gt, level, seed=7)
        assert a.shape == (p["side"], p["side"], 3)
        assert np.array_equal(a, b), f"{level} is not deterministic for a seed"
        assert not np.array_equal(a, reference(gt, level, seed=8)), "the seed must drive the noise"

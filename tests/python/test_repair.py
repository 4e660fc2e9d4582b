"""Unblur's damage detector's tooling (models/repair): the training recipe draws what its mask
says, the net keeps the photo's size within its budget, the ONNX export matches torch, the
training script runs and resumes on the CPU, and its hard negatives are mined where the net fires.
Fast: a few steps, small crops."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from conftest import MODELS  # noqa: F401  (puts models/ on sys.path)

from repair import damage


def test_damage_is_drawn_where_the_mask_says():
    rng = np.random.default_rng(3)
    flat = np.full((96, 128, 3), 0.5, np.float32)
    for kind in ("crack", "crease", "lint", "dust"):
        layers = [damage._layer(rng, 128, 96, kind) for _ in range(3)]
        assert all(a.shape == (96, 128) and a.min() >= 0 and a.max() <= 1 for a in layers)
        # (a crease near an edge can bend out of the crop: then its layer, and its mask, are empty)
        assert any((a >= damage.MASK_AT).any() for a in layers), kind
    hits = 0
    for seed in range(6):
        x, m = damage.damage(flat, np.random.default_rng(seed), clean=False)
        assert x.shape == flat.shape and m.shape == flat.shape[:2] and m.any()
        # the damage is light or dark against the grey: inside the mask the photo moved more
        moved = np.abs(x - x.mean((0, 1))).max(2)
        hits += moved[m > 0].mean() > moved[m == 0].mean() + 0.05
    assert hits >= 5
    x, m = damage.damage(flat, np.random.default_rng(9), clean=True)
    assert not m.any()


def test_scene_lines_are_drawn_soft_and_never_masked(monkeypatch):
    flat = np.full((96, 128, 3), 0.5, np.float32)
    rng = np.random.default_rng(4)
    soft, sharp = [], []
    for _ in range(20):
        q = damage.scene_lines(flat, rng)
        soft.append(max(np.abs(np.diff(q, axis=a)).max() for a in (0, 1)) / max(np.abs(q - flat).max(), 1e-6))
        a = damage._layer(rng, 128, 96, "crease")  # a drawn crease, as damage() lays it on
        if a.max() > 0.1:
            sharp.append(max(np.abs(np.diff(a, axis=ax)).max() for ax in (0, 1)) / a.max())
    # a scene line's steepest step per pixel, against its contrast, stays under a crease's typical
    assert max(soft) < 0.5 and np.median(soft) < np.median(sharp), (max(soft), np.median(soft), np.median(sharp))
    # drawn by damage() when asked, and never in the mask (the aging and the scan left out): a
    # damaged patch with its scene lines has the mask of the same draw without them (the lines
    # drawn and thrown away, so that both draws take the same random numbers)
    monkeypatch.setattr(damage, "SCENE_P", 1.0)
    monkeypatch.setattr(damage, "age", lambda p, rng: p)
    monkeypatch.setattr(damage, "scan", lambda p, rng: p)
    drawn = damage.scene_lines
    for seed in range(4):
        x, m = damage.damage(flat, np.random.default_rng(seed), clean=False)
        monkeypatch.setattr(damage, "scene_lines", lambda p, rng: (drawn(p, rng), p)[1])
        x0, m0 = damage.damage(flat, np.random.default_rng(seed), clean=False)
        monkeypatch.setattr(damage, "scene_lines", drawn)
        assert m.any() and np.array_equal(m, m0), seed
        assert np.abs(x - x0)[m == 0].max() > 0.05, seed  # the lines are there, outside the mask


def test_a_ridge_shades_its_two_sides_apart_and_masks_only_its_line(monkeypatch):
    flat = np.full((96, 128, 3), 0.5, np.float32)
    found, on_fold = 0, []
    for seed in range(8):
        shade, line, fold = damage._ridge(np.random.default_rng(seed), 128, 96)
        assert shade.shape == line.shape == fold.shape == (96, 128) and 0 <= line.min() and line.max() <= 0.9
        assert 0 < fold.mean() < 0.1
        on_fold.append(float((line * fold).sum() / max(float(line.sum()), 1e-6)))
        # one side brighter, the other darker, both fading away from the line
        assert shade.max() > 0.02 and shade.min() < -0.02 and np.abs(shade).max() <= 0.2 + 1e-6
        found += (line >= damage.MASK_AT).any()
    assert found >= 6  # the line is there (broken, or bent out of the crop, now and then)
    assert np.median(on_fold) > 0.8  # and lies on the fold (RIDGE_STEP's mask)
    # drawn by damage() when asked; the mask holds the light line, not the shading beside it
    monkeypatch.setattr(damage, "RIDGE_P", 1.0)
    monkeypatch.setattr(damage, "age", lambda p, rng: p)
    monkeypatch.setattr(damage, "scan", lambda p, rng: p)
    monkeypatch.setattr(damage, "_layer", lambda rng, w, h, kind: np.zeros((h, w), np.float32))
    monkeypatch.setattr(damage, "_fold", lambda rng, w, h: (np.zeros((h, w), np.float32),) * 2)
    hits = 0
    for seed in range(6):
        x, m = damage.damage(flat, np.random.default_rng(seed), clean=False)
        if m.any():
            hits += 1
            assert x[m > 0].mean() > 0.53  # lighter: the paper showing through the cracked emulsion
            assert np.abs(x - flat)[m == 0].max() > 0.02 and m.mean() < 0.08  # shaded, not masked
    assert hits >= 4


def test_net_keeps_the_size_within_its_budget():
    import torch
    from repair.net import MULTIPLE, DetectNet, gmac_per_mp
    net = DetectNet()
    assert sum(p.numel() for p in net.parameters()) <= 250_000
    # The page's suggestion runs it on a 1 MP copy within 0.5 s on two workers (~10 GMAC/s each,
    # with ~0.15 s of the coordinator's own work): at most ~3.5 GMAC per megapixel.
    assert gmac_per_mp(net) <= 3.5
    with torch.no_grad():
        y = net(torch.rand(1, 3, 3 * MULTIPLE, 5 * MULTIPLE))
    assert y.shape == (1, 1, 3 * MULTIPLE, 5 * MULTIPLE)
    assert float(torch.sigmoid(y).mean()) < 0.1  # starts by calling nothing damage


def test_onnx_export_matches_torch(tmp_path):
    import onnx
    from deblur.export import TOLERANCE, check, export, op_types
    from repair.net import DetectNet
    import torch
    torch.manual_seed(1)
    net = DetectNet().eval()
    out = tmp_path / "repair.onnx"
    export(net, out, producer="test")
    assert check(net, out, 64, 96) <= TOLERANCE
    assert check(net, out, 48, 32, seed=1) <= TOLERANCE  # dynamic H, W
    assert set(op_types(out)) <= {"Conv", "Relu", "Add", "DepthToSpace"}
    m = onnx.load(str(out))
    assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["output"]


def test_training_runs_and_resumes_on_the_cpu(tmp_path):
    train = str(MODELS / "repair" / "train.py")
    common = ["--minutes", "5", "--photos", "2", "--batch", "2", "--crop-min", "64", "--crop-max", "64",
              "--log-every", "1", "--threads", "1", "--run-dir", str(tmp_path)]
    for steps in (1, 2):
        r = subprocess.run([sys.executable, train, *common, "--steps", str(steps), "--resume"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "ckpt.pt").is_file()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e.get("event") == "resume"] == [1]
    assert log[-1]["event"] == "done" and log[-1]["step"] == 2
    assert any(e.get("event") == "val" and "iou" in e for e in log)


def test_a_fine_tune_can_start_from_the_committed_detector_and_an_other_onnx_is_refused(tmp_path):
    # The training checkpoint is git-ignored: on a fresh machine, `--init` reads the shipped
    # detector's weights back from its ONNX, and the network then gives that ONNX's logits.
    import onnxruntime as ort
    import pytest
    import torch
    from repair.net import DetectNet
    from repair.train import init_weights
    shipped = MODELS / "unblur-repair" / "unblur-repair.onnx"
    net = DetectNet().eval()
    net.load_state_dict(init_weights(shipped))
    x = np.random.default_rng(5).random((1, 3, 64, 96), dtype=np.float32)
    want = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()
    with pytest.raises(SystemExit, match="not this detector's export"):
        init_weights(MODELS / "unblur-face" / "unblur-face-s.onnx")


def test_fine_tuning_with_hard_negatives_mines_once_and_resumes_with_the_same_points(tmp_path):
    import torch
    from repair.net import DetectNet
    train = str(MODELS / "repair" / "train.py")
    common = ["--minutes", "5", "--photos", "3", "--batch", "2", "--crop-min", "64", "--crop-max", "64",
              "--log-every", "1", "--threads", "1", "--hard", "0.5", "--run-dir", str(tmp_path / "run"),
              "--ridge", "0.5", "--scene", "0.3", "--scene-width", "2.5", "6", "--sharp-wide"]  # v2's recipe
    r = subprocess.run([sys.executable, train, *common, "--steps", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "--init" in r.stderr  # nothing trained to mine with
    torch.manual_seed(0)
    net = DetectNet()
    torch.nn.init.constant_(net.out[0].bias, 0.0)  # a network that calls some of every photo damage
    torch.save({"model": net.state_dict()}, tmp_path / "start.pt")
    for steps in (1, 2):
        r = subprocess.run([sys.executable, train, *common, "--init", str(tmp_path / "start.pt"), "--resume",
                            "--steps", str(steps)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    mined = [e for e in log if e.get("event") == "mined"]
    assert len(mined) == 1 and mined[0]["points"] > 0  # mined when the run started, read back on resume
    start = [e for e in log if e.get("event") == "start"][0]
    # the recipe damage.py drew with (train.py logs its module's values, which the flags set)
    assert (start["ridge"], start["scene"], start["scene_width"], start["sharp_wide"]) == (0.5, 0.3, [2.5, 6.0], True)
    assert (tmp_path / "run" / "hard.npz").is_file()
    assert any("hard_called" in e for e in log if e.get("event") == "val")
    assert log[-1]["event"] == "done" and log[-1]["step"] == 2


def test_hard_negatives_are_mined_where_the_net_fires_and_cut_around():
    import torch
    from repair import hard

    class Bright(torch.nn.Module):  # "damage" wherever the photo is near white
        def forward(self, x):
            return (x.mean(1, keepdim=True) - 0.9) * 100

    photo = np.full((200, 300, 3), 90, np.uint8)
    photo[120:122, 40:260] = 250  # a thin light line, like a rope
    dark = np.full((200, 300, 3), 90, np.uint8)
    points = hard.mine(Bright(), [photo, dark, photo], np.random.default_rng(0), skip={2})
    assert len(points[1]) == 0 and len(points[2]) == 0  # nothing fires; a skipped photo is not mined
    ys, xs = points[0][:, 0], points[0][:, 1]
    assert len(ys) > 200 and ys.min() >= 119 and ys.max() <= 122 and xs.min() >= 39 and xs.max() <= 260
    rng = np.random.default_rng(1)
    for _ in range(8):  # every hard crop holds some of the line, never the empty photo
        p = hard.sample([photo, dark], points[:2], rng, 64)
        assert p.shape == (64, 64, 3) and p.max() > 0.55  # the background is 0.35

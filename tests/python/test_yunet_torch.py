"""YuNet in torch (`models/face/yunet_torch.py`, issue 29's landmark loss): the converted graph
reads real faces as onnxruntime reads the ONNX, at the product's input (640²) and at the loss's
(160²); the loss is 0 for a perfect output and grows as the face moves or warps; its gradient
reaches the generator through the pasted window, never YuNet's own weights. Like the other face
tests, a missing dev face or model is a failure that says what is missing."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

DEV_FACES = REPO.parent / "shared" / "data" / "dev" / "codeformer" / "cropped_faces"


def dev_faces(n: int) -> list[np.ndarray]:
    files = sorted(DEV_FACES.glob("*.png"))[:n]
    assert len(files) == n, f"dev faces missing in {DEV_FACES}"
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


@pytest.fixture(scope="module")
def yunet():
    from face.common import MODELS_SRC
    from face.yunet_torch import YuNetLandmarks
    assert (MODELS_SRC / "yunet_2023mar.onnx").is_file(), f"YuNet missing in {MODELS_SRC}"
    return YuNetLandmarks()


def to_torch(rgbs):
    import torch
    return torch.from_numpy(np.stack(rgbs).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)


def ort_session(side: int):
    """onnxruntime on YuNet with its input (fixed at 640² in the file) set to `side`²."""
    import onnx
    import onnxruntime as ort
    from face.common import MODELS_SRC
    m = onnx.load(str(MODELS_SRC / "yunet_2023mar.onnx"))
    for d in m.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_value = side
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("side", [640, 160])
def test_torch_yunet_reads_real_faces_as_onnxruntime_does(yunet, side):
    """At 640² the input is the Detector's letterbox of a 512² face; at 160² the loss's own input
    (the face at 128², black around). Raw outputs within 1e-4 (scores) / 1e-3 (regressions), and
    the landmarks of every anchor that finds the face within 0.5 px of YuNet's input."""
    import torch
    from face.common import STRIDES, YUNET_SIZE, decode
    from face.yunet_torch import YuNetLandmarks
    net = yunet if side == yunet.side else YuNetLandmarks(side=side, face=512)
    sess = ort_session(side)
    names = [o.name for o in sess.get_outputs()]
    for rgb in dev_faces(3):
        if side == YUNET_SIZE:
            x = np.zeros((1, 3, side, side), np.float32)
            x[0, :, :512, :512] = rgb[..., ::-1].transpose(2, 0, 1)
            x = torch.from_numpy(x)
        else:  # what forward() feeds the graph
            img = to_torch([rgb])
            x = torch.nn.functional.interpolate((img + 1) * 127.5, size=(net.face,) * 2, mode="bilinear",
                                                antialias=True, align_corners=False).flip(1)
            p = (side - net.face) // 2
            x = torch.nn.functional.pad(x, (p, side - net.face - p) * 2)
        ref = dict(zip(names, sess.run(None, {"input": x.numpy()})))
        with torch.no_grad():
            raw = net.net(x)
            score, lm = net.raw(x)
        for name, r in zip(names, raw):
            tol = 1e-4 if name[:3] in ("cls", "obj") else 1e-3
            assert np.abs(r.numpy() - ref[name]).max() < tol, name
        # Every anchor that finds the face: raw()'s landmarks against onnxruntime's outputs
        # decoded as common.decode decodes them (at 640², common.decode itself).
        ort_score = np.concatenate([np.sqrt(np.clip(ref[f"cls_{s}"], 0, 1) * np.clip(ref[f"obj_{s}"], 0, 1)).ravel()
                                    for s in STRIDES])
        assert np.abs(score[0].numpy() - ort_score).max() < 1e-3  # √ of products near 0: 3e-4 seen
        hits = np.nonzero(ort_score >= 0.5)[0]
        assert len(hits), "YuNet found no face"
        theirs = []
        for s in STRIDES:
            i = np.arange((side // s) ** 2)
            anchor = np.stack([i % (side // s), i // (side // s)], -1)[:, None]
            theirs.append((ref[f"kps_{s}"].reshape(-1, 5, 2) + anchor) * s)
        theirs = np.concatenate(theirs)[hits]
        if side == YUNET_SIZE:
            assert np.abs(theirs - np.asarray([f["landmarks"] for f in decode(ref, 0.5)])).max() < 1e-3
        assert np.abs(lm[0].numpy()[hits] - theirs).max() < 0.5

def test_landmark_loss_is_zero_on_the_target_and_grows_as_the_face_moves_or_warps(yunet):
    import torch
    from face.common import Detector, landmarks
    from face.yunet_torch import landmark_loss
    rgbs = dev_faces(4)
    det = Detector()
    lm = torch.tensor(np.stack([landmarks(det, r / 255.0) for r in rgbs]), dtype=torch.float32)
    t = to_torch(rgbs)
    with torch.no_grad():
        assert float(landmark_loss(yunet, t.clone(), t, lm)) == 0.0
        shifts = [float(landmark_loss(yunet, torch.roll(t, (d, d), (2, 3)), t, lm)) for d in (2, 4, 8, 16)]
        # A 2-px shift at 512² is 1.6 % of the eye distance (~126 px) in x and y: YuNet reads it.
        assert 0.005 < shifts[0] < shifts[1] < shifts[2] < shifts[3], shifts
        assert 0.5 < shifts[2] / (8 / 126) < 1.5, shifts  # the landmarks move with the face
        # A warp that keeps the face's centre: 5 % larger and turned by 3°.
        a = np.deg2rad(3.0)
        theta = torch.tensor([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]], dtype=torch.float32) / 1.05
        grid = torch.nn.functional.affine_grid(theta[None].expand(len(t), 2, 3), list(t.shape), align_corners=False)
        warped = torch.nn.functional.grid_sample(t, grid, padding_mode="border", align_corners=False)
        assert float(landmark_loss(yunet, warped, t, lm)) > 0.01
        # A little noise barely moves YuNet's reading (it is not a pixel loss).
        noisy = t + 0.02 * torch.randn(t.shape, generator=torch.Generator().manual_seed(0))
        assert float(landmark_loss(yunet, noisy, t, lm)) < shifts[0]


def test_landmark_loss_gradient_reaches_the_generator_not_yunet(yunet):
    """As train512 uses it: the generator's window of the 512² output pasted into the target."""
    import torch
    from face.common import FFHQ_512
    from face.net512 import FaceNet512
    from face.yunet_torch import landmark_loss
    torch.manual_seed(0)
    G = FaceNet512()
    with torch.no_grad():
        G.head[-1].weight.normal_(0, 0.1)
    rgbs = dev_faces(2)
    t = to_torch(rgbs)
    x = torch.nn.functional.interpolate(t, size=(256, 256), mode="bilinear", antialias=True, align_corners=False)
    lm = torch.tensor(np.stack([FFHQ_512] * 2), dtype=torch.float32)  # the eye distance
    cy, cx, c = 192, 128, 256
    y = G(x, crop=(cy, cx, c))
    whole = t.clone()
    whole[..., cy:cy + c, cx:cx + c] = y
    loss = landmark_loss(yunet, whole, t, lm)
    assert float(loss.detach()) > 0
    loss.backward()
    for name in ("e0.0.weight", "d1.fuse.0.weight", "head.2.weight"):
        g = dict(G.named_parameters())[name].grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name
    assert all(not p.requires_grad and p.grad is None for p in yunet.parameters())
    yunet.train()
    assert not yunet.training and not yunet.net.training

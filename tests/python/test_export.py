"""models/export.py: every architecture exports with random weights and round-trips (PyTorch vs
onnxruntime, rel err <= 1e-3). Uses the --all-random output (stamped, so cheap when unchanged) and
re-runs onnxruntime on the written test vectors independently of the exporter's own numbers."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from conftest import EXPORT_PY, run

ARCHS = ["gfpgan", "codeformer", "gpen-bfr-512", "restoreformer++", "rrdbnet-x4", "rrdbnet-x2"]
FACE = {"gfpgan", "codeformer", "gpen-bfr-512", "restoreformer++"}
TOL = 1e-3


def test_exporter_knows_every_architecture():
    r = run([EXPORT_PY, "--help"])
    assert r.returncode == 0, r.stderr
    for a in ARCHS:
        assert a in r.stdout


@pytest.mark.parametrize("arch", ARCHS)
def test_random_weights_round_trip(fresh_export, arch):
    summary = json.loads((fresh_export / "summary.json").read_text())
    res = next((r for r in summary["results"] if r["arch"] == arch), None)
    assert res is not None, f"{arch} missing from the exporter summary"
    assert not res.get("error"), f"{arch} failed to export: {res.get('error')}"
    assert res["rel_err"] <= TOL, f"{arch}: exporter reports rel err {res['rel_err']:.3e}"
    assert res["dynamic_conv_weights"] == 0

    meta = json.loads((fresh_export / f"{arch}.json").read_text())
    path = fresh_export / meta["onnx"]
    model = onnx.load(str(path), load_external_data=False)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 13
    in_shape = meta["input"]["shape"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == in_shape, "the input shape must be fixed"
    if arch in FACE:
        assert in_shape == [1, 3, 512, 512] and meta["input"]["range"] == [-1, 1]

    x = np.fromfile(fresh_export / meta["input"]["file"], dtype="<f4").reshape(in_shape)
    expected = np.fromfile(fresh_export / meta["expected"]["file"], dtype="<f4").reshape(meta["expected"]["shape"])
    assert np.isfinite(expected).all() and float(np.abs(expected).max()) > 0, "degenerate reference output"

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    got = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(["output"], {"input": x})[0]
    rel = float(np.linalg.norm((got - expected).ravel()) / np.linalg.norm(expected.ravel()))
    assert rel <= TOL, f"{arch}: onnxruntime vs PyTorch rel err {rel:.3e}"
    scale = {"rrdbnet-x4": 4, "rrdbnet-x2": 2}.get(arch, 1)
    assert list(got.shape) == [1, 3, in_shape[2] * scale, in_shape[3] * scale]


def test_modulated_conv_rewrite_matches_upstream():
    """The constant-weight modulated conv equals the upstream per-sample weight form, for every
    sampling variant, batch > 1 and a non-trivial style (small, fast, independent of --all-random)."""
    import torch

    from unblur_models import export_patches, gpen_arch
    from spandrel.architectures.GFPGAN.__arch.stylegan2_clean_arch import ModulatedConv2d as CleanMC

    torch.manual_seed(0)
    style = torch.randn(2, 16)
    x = torch.randn(2, 8, 12, 12)
    cases = [CleanMC(8, 6, 3, 16, demodulate=True, sample_mode=s) for s in (None, "upsample", "downsample")]
    cases.append(CleanMC(8, 3, 1, 16, demodulate=False))
    for mc in cases:
        ref = mc(x, style)
        export_patches.patch_gfpgan_clean(mc)
        out = mc(x, style)
        assert out.shape == ref.shape
        assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5), mc
    for up, down, demod in ((False, False, True), (True, False, True), (False, True, True), (False, False, False)):
        mc = gpen_arch.ModulatedConv2d(8, 6, 3, 16, demodulate=demod, upsample=up, downsample=down)
        mc.modulation.bias.data.normal_()
        ref = mc(x, style)
        export_patches.patch_gpen(mc)
        out = mc(x, style)
        assert out.shape == ref.shape
        assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5), (up, down, demod)

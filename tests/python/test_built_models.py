"""The built models (models/build, refreshed incrementally by the session fixture): the built
manifest and the fidelity of every shipped quantized artifact."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import source_manifest

from unblur_models import fidelity
from unblur_models.common import sha256_file

SOURCE = source_manifest()["models"]
BUILT_IDS = [m["id"] for m in SOURCE if not m.get("bring_your_own")]


@pytest.fixture(scope="module")
def built(fresh_build):
    return json.loads((fresh_build / "manifest.json").read_text())


@pytest.fixture(scope="module")
def report(fresh_build):
    return json.loads((fresh_build / "report.json").read_text())


def test_manifest_lists_every_model(built):
    assert built["version"] == 1
    ids = [m["id"] for m in built["models"]]
    assert ids == [m["id"] for m in SOURCE], "the built manifest must list every source model, in order"
    for src, m in zip(SOURCE, built["models"]):
        for k, v in src.items():
            assert m[k] == v, f"{src['id']}: source field {k} changed in the built manifest"
        if src.get("bring_your_own"):
            assert m["artifacts"] == {} and m["ship"] is None


@pytest.mark.parametrize("model_id", BUILT_IDS)
def test_shipped_artifact_present_and_correct(built, fresh_build, model_id):
    m = next(e for e in built["models"] if e["id"] == model_id)
    assert set(m["artifacts"]) == {"fp32", "int8", "fp16"}
    assert m["ship"] in m["artifacts"], f"{model_id}: shipped form {m['ship']} has no artifact"
    for form, a in m["artifacts"].items():
        path = fresh_build / a["file"]
        assert path.is_file(), f"{model_id} {form}: {path} missing"
        assert path.stat().st_size == a["bytes"], f"{model_id} {form}: size differs"
        assert sha256_file(path) == a["sha256"], f"{model_id} {form}: sha256 differs"
    assert m["artifacts"]["fp32"]["sha256"] == m["sha256"], "the fp32 artifact is a copy of the source"


def test_exactly_one_default_sr_model(built):
    defaults = [m["id"] for m in built["models"] if m.get("default")]
    assert defaults == ["realesr-general-x4v3"]
    partner = next(m for m in built["models"] if m["id"] == "realesr-general-x4v3")["denoise_partner"]
    ships = {m["id"]: m["ship"] for m in built["models"]}
    assert ships[partner] == ships["realesr-general-x4v3"], "denoise partners must ship the same form"


def _row(report, model_id, form):
    rows = [r for r in report["rows"] if r["model"] == model_id and r["form"] == form]
    assert len(rows) == 1, f"report has {len(rows)} rows for {model_id} {form}"
    return rows[0]


@pytest.mark.parametrize("model_id", BUILT_IDS)
def test_report_measures_every_quantized_form(report, built, model_id):
    m = next(e for e in built["models"] if e["id"] == model_id)
    for form in ("int8", "fp16"):
        r = _row(report, model_id, form)
        assert r["bytes"] == m["artifacts"][form]["bytes"]
        if m["task"] == "face-detection":
            assert r["iou"] is not None and r["count_mismatch"] is not None
        elif m["task"] == "damage-detection":
            assert r["agree"] is not None and r["mask_iou"] is not None
        else:
            assert r["psnr_db"] is not None
        assert r["shipped"] == (m["ship"] == form)


@pytest.mark.parametrize("model_id", BUILT_IDS)
def test_shipped_form_meets_fidelity_bar(report, built, model_id):
    entries = {e["id"]: e for e in built["models"]}
    m = entries[model_id]
    # denoise partners (interpolated at run time) ship the form that passes for both
    group = [model_id] + [x for x in (m.get("denoise_partner"),) if x]
    group += [e["id"] for e in built["models"] if e.get("denoise_partner") == model_id]
    passing = [f for f in ("int8", "fp16")
               if all(fidelity.passes(entries[g]["task"], _row(report, g, f)) for g in group)]
    if not passing:
        assert m["ship"] == "fp32", f"{model_id}: ships {m['ship']} although no compressed form passes"
        return
    assert m["ship"] == min(passing, key=lambda f: sum(_row(report, g, f)["bytes"] for g in group)), \
        f"{model_id}: ships {m['ship']}, not the smallest passing form"
    r = _row(report, model_id, m["ship"])
    if m["task"] == "face-detection":
        assert r["iou"] >= fidelity.IOU_BAR, f"{model_id} {m['ship']}: IoU {r['iou']}"
        assert r["count_mismatch"] == 0, f"{model_id} {m['ship']}: {r['count_mismatch']} faces differ"
    elif m["task"] == "damage-detection":
        assert r["agree"] >= fidelity.MASK_AGREE_BAR and r["mask_iou"] >= fidelity.MASK_IOU_BAR, \
            f"{model_id} {m['ship']}: masks agree {r['agree']}, IoU {r['mask_iou']}"
    else:
        assert r["psnr_db"] >= fidelity.PSNR_BAR_DB, f"{model_id} {m['ship']}: {r['psnr_db']} dB"


def test_fidelity_measure_is_not_vacuous(fresh_build):
    """The PSNR and IoU code must tell a broken model from a good one: a model compared with
    itself is perfect, and a visibly different output is far below the bar."""
    crops = fidelity.sr_crops(fidelity_dev())
    assert len(crops) >= 10, "too few SR crops: are the dev photos there?"
    a = [np.clip(c[1], 0, 1) for c in crops[:4]]
    b = [np.clip(x + 0.05, 0, 1) for x in a]
    assert fidelity.compare_sr(a, a)["psnr_db"] == fidelity.PSNR_CAP_DB
    assert fidelity.compare_sr(a, b)["psnr_db"] < fidelity.PSNR_BAR_DB

    inputs = fidelity.yunet_inputs(fidelity_dev())
    assert len(inputs) >= 5, "too few whole photos: are the dev photos there?"
    ref = fidelity.yunet_boxes(fresh_build / "yunet.fp32.onnx", inputs)
    assert sum(len(r) for r in ref) >= len(inputs), "the detector should find faces on the dev photos"
    same = fidelity.compare_yunet(ref, ref)
    assert same["iou"] == 1.0 and same["count_mismatch"] == 0
    shifted = []
    for r in ref:  # every box moved right by a fifth of its width
        dx = 0.2 * (r[:, 2] - r[:, 0])
        shifted.append(r + np.stack([dx, 0 * dx, dx, 0 * dx, 0 * dx], axis=1))
    assert fidelity.compare_yunet(ref, shifted)["iou"] < fidelity.IOU_BAR
    dropped = [r[1:] for r in ref]
    assert fidelity.compare_yunet(ref, dropped)["count_mismatch"] > 0


def fidelity_dev():
    from unblur_models.common import DEV_DATA

    assert DEV_DATA.is_dir(), f"dev photos not found at {DEV_DATA}"
    return DEV_DATA

"""models/build.py: source checks, --verify, incrementality, artifact shapes, README report."""
from __future__ import annotations

import re
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from conftest import BUILD_PY, run, source_manifest

YUNET = next(m for m in source_manifest()["models"] if m["id"] == "yunet")


def _copy_source(mirror, dest, entry=YUNET):
    dest.mkdir()
    target = dest / entry["source"]["mirror"]
    shutil.copyfile(mirror / entry["source"]["mirror"], target)
    target.chmod(0o644)
    return target


def test_good_source_builds(mirror, tmp_path):
    """Positive control for the test below: the same setup with an intact copy succeeds."""
    _copy_source(mirror, tmp_path / "src")
    r = run([BUILD_PY, "--source", tmp_path / "src", "--out", tmp_path / "out", "--only", "yunet", "--no-fidelity"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "manifest.json").is_file()
    for form in ("fp32", "int8", "fp16"):
        assert (tmp_path / "out" / f"yunet.{form}.onnx").is_file()


def test_wrong_sha256_is_refused(mirror, tmp_path):
    target = _copy_source(mirror, tmp_path / "src")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte altered
    target.write_bytes(bytes(data))
    r = run([BUILD_PY, "--source", tmp_path / "src", "--out", tmp_path / "out", "--only", "yunet", "--no-fidelity"])
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected a one-line message, got:\n{r.stderr}"
    msg = lines[0]
    assert "sha256 mismatch" in msg and str(target) in msg, msg
    assert YUNET["sha256"] in msg, "the message must give the expected hash"
    actual = re.findall(r"\b[0-9a-f]{64}\b", msg)
    assert len(actual) == 2 and actual[0] != actual[1], "the message must give the expected and the actual hash"
    assert not (tmp_path / "out" / "yunet.fp32.onnx").exists(), "nothing may be built from a bad source"
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_source_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run([BUILD_PY, "--source", tmp_path / "empty", "--out", tmp_path / "out", "--only", "yunet", "--no-fidelity"])
    assert r.returncode != 0
    assert "yunet_2023mar.onnx" in r.stderr and "not found" in r.stderr


@pytest.fixture
def small_build(mirror, tmp_path):
    out = tmp_path / "out"
    r = run([BUILD_PY, "--source", mirror, "--out", out, "--only", "yunet", "--no-fidelity"])
    assert r.returncode == 0, r.stderr
    return out


def test_verify_ok_then_missing_then_corrupt(small_build):
    out = small_build
    r = run([BUILD_PY, "--verify", "--out", out])
    assert r.returncode == 0, r.stderr

    int8 = out / "yunet.int8.onnx"
    saved = int8.read_bytes()
    int8.unlink()
    r = run([BUILD_PY, "--verify", "--out", out])
    assert r.returncode != 0
    assert "missing" in r.stderr and "yunet.int8.onnx" in r.stderr, r.stderr
    int8.write_bytes(saved)

    fp16 = out / "yunet.fp16.onnx"
    data = bytearray(fp16.read_bytes())
    data[-10] ^= 0xFF
    fp16.write_bytes(bytes(data))
    r = run([BUILD_PY, "--verify", "--out", out])
    assert r.returncode != 0
    assert "corrupt" in r.stderr and "yunet.fp16.onnx" in r.stderr, r.stderr
    assert "yunet.int8.onnx" not in r.stderr, "only the corrupt file may be reported"


def test_verify_without_manifest_fails(tmp_path):
    r = run([BUILD_PY, "--verify", "--out", tmp_path])
    assert r.returncode != 0 and "manifest" in r.stderr


def test_incremental_build_does_not_rebuild(small_build, mirror):
    out = small_build
    files = sorted(out.glob("yunet.*.onnx"))
    before = {f.name: f.stat().st_mtime_ns for f in files}
    r = run([BUILD_PY, "--source", mirror, "--out", out, "--only", "yunet", "--no-fidelity"])
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout
    assert {f.name: f.stat().st_mtime_ns for f in files} == before
    # a damaged artifact is rebuilt rather than trusted
    (out / "yunet.int8.onnx").write_bytes(b"garbage")
    r = run([BUILD_PY, "--source", mirror, "--out", out, "--only", "yunet", "--no-fidelity"])
    assert r.returncode == 0, r.stderr
    assert run([BUILD_PY, "--verify", "--out", out]).returncode == 0


def _weight_patterns(path):
    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    return m, inits


def test_int8_pattern_is_exact(fresh_build):
    src = source_manifest()["models"]
    for entry in (e for e in src if not e.get("bring_your_own")):
        fp32, _ = _weight_patterns(fresh_build / f"{entry['id']}.fp32.onnx")
        m, inits = _weight_patterns(fresh_build / f"{entry['id']}.int8.onnx")
        opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        assert opset >= 13
        dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
        conv_w = {n.input[1] for n in m.graph.node if n.op_type == "Conv"}
        assert dq, f"{entry['id']}: no weight was quantized"
        # reference values of every original weight (initializers and Constant nodes alike)
        ref = {t.name: numpy_helper.to_array(t) for t in fp32.graph.initializer}
        ref.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in fp32.graph.node
                    if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
        for w in conv_w:
            if ref[w].size >= 1024:
                assert w in dq, f"{entry['id']}: conv weight {w} not quantized"
        for w, node in dq.items():
            q, s, z = (inits[i] for i in node.input)
            assert list(node.input) == [w + "_quant", w + "_scale", w + "_zero_point"]
            assert [a.name for a in node.attribute] == ["axis"] and node.attribute[0].i == 0
            assert q.data_type == TensorProto.INT8 and list(q.dims) == list(ref[w].shape)
            assert s.data_type == TensorProto.FLOAT and list(s.dims) == [ref[w].shape[0]]
            assert z.data_type == TensorProto.INT8 and list(z.dims) == [ref[w].shape[0]]
            assert not numpy_helper.to_array(z).any()
            deq = numpy_helper.to_array(q).astype(np.float32) * numpy_helper.to_array(s).reshape(
                (-1,) + (1,) * (ref[w].ndim - 1))
            step = numpy_helper.to_array(s).reshape((-1,) + (1,) * (ref[w].ndim - 1))
            assert np.all(np.abs(deq - ref[w]) <= 0.5 * step + 1e-7), f"{w}: not a rounding of the weight"
            assert w not in inits, "the float weight must be gone"


def test_fp16_pattern_is_exact(fresh_build):
    src = source_manifest()["models"]
    for entry in (e for e in src if not e.get("bring_your_own")):
        m, inits = _weight_patterns(fresh_build / f"{entry['id']}.fp16.onnx")
        casts = [n for n in m.graph.node if n.op_type == "Cast" and n.input[0] in inits]
        assert casts, f"{entry['id']}: no weight stored as fp16"
        for n in casts:
            t = inits[n.input[0]]
            assert n.input[0] == n.output[0] + "_f16"
            assert t.data_type == TensorProto.FLOAT16
            assert [(a.name, a.i) for a in n.attribute] == [("to", TensorProto.FLOAT)]
        big_float = [t.name for t in m.graph.initializer
                     if t.data_type == TensorProto.FLOAT and int(np.prod(t.dims)) >= 1024]
        assert not big_float, f"{entry['id']}: float initializers left: {big_float[:3]}"


def test_readme_markers(tmp_path):
    import build

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{build.README_START}\nold table\n{build.README_END}\nfooter\n")
    assert build.update_readme(readme, "| new |\n")
    text = readme.read_text()
    assert "old table" not in text and "| new |" in text and text.startswith("intro") and text.endswith("footer\n")

    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers here\n")
    assert not build.update_readme(plain, "| new |\n")
    assert plain.read_text() == "no markers here\n"


def test_without_photos_the_committed_report_decides(mirror, tmp_path, fresh_build):
    """A build that does not measure (a GitHub Pages build has no dev photos) ships what the
    committed models/fidelity.json measured, and only for the very artifacts it measured."""
    import json

    full = {m["id"]: m for m in json.loads((fresh_build / "manifest.json").read_text())["models"]}
    assert full["yunet"]["ship"] != "fp32", "positive control: the measured build ships a compressed form"
    out = tmp_path / "out"
    r = run([BUILD_PY, "--source", mirror, "--out", out, "--only", "yunet", "--no-fidelity"])
    assert r.returncode == 0, r.stderr
    built = {m["id"]: m for m in json.loads((out / "manifest.json").read_text())["models"]}
    assert built["yunet"]["ship"] == full["yunet"]["ship"]
    # A report that measured other artifacts does not apply: fp32, and the log says why.
    report = json.loads((BUILD_PY.parent / "fidelity.json").read_text())
    for form in report["models"]["yunet"]["forms"].values():
        form["sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(report))
    r = run([BUILD_PY, "--source", mirror, "--out", out, "--only", "yunet", "--no-fidelity",
             "--fidelity-report", tmp_path / "other.json"])
    assert r.returncode == 0, r.stderr
    built = {m["id"]: m for m in json.loads((out / "manifest.json").read_text())["models"]}
    assert built["yunet"]["ship"] == "fp32"
    assert "differ from the artifacts the report measured" in r.stdout + r.stderr


def test_pin_writes_an_own_models_sha256_and_size(tmp_path):
    """`--pin ID`: a retrained own model's new file pinned in the manifest in one command."""
    import json

    import build
    from unblur_models.common import BuildError, sha256_file

    manifest = source_manifest()
    own = next(m for m in manifest["models"] if (m.get("source") or {}).get("repo"))
    path = build.REPO_ROOT / own["source"]["repo"]
    own["sha256"], own["bytes"] = "0" * 64, 1
    target = tmp_path / "manifest.json"
    build.pin(target, manifest, [own["id"]])
    pinned = next(m for m in json.loads(target.read_text())["models"] if m["id"] == own["id"])
    assert (pinned["sha256"], pinned["bytes"]) == (sha256_file(path), path.stat().st_size)
    # Everything else is written back as it was.
    original = source_manifest()
    assert [m["id"] for m in json.loads(target.read_text())["models"]] == [m["id"] for m in original["models"]]
    with pytest.raises(BuildError, match="pinned by hand"):
        build.pin(target, manifest, ["yunet"])
    with pytest.raises(BuildError, match="unknown"):
        build.pin(target, manifest, ["no-such-model"])

"""The GitHub Pages build as a fork with no settings runs it (scripts/pages_build.sh, which
.github/workflows/pages.yml calls), against a stand-in for the release host (tests/model_host.py:
GitHub's `/OWNER/REPO/releases/download/TAG/FILE`, redirected to a second origin as GitHub
redirects to its object store).

The stand-in serves release checkpoints rebuilt from the mirror's ONNX with every weight moved off
its fp16 value by up to a fifth of a step, as the real fp32 release holds them; they cannot have
the real files' sha256, so the manifest the build reads pins the stand-ins'. Everything else is the
real thing: the conversion, the sha256 checks, the committed fidelity report, the site.

Run after `web/build.sh dev` (make test-e2e), whose wasm the site step reuses.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("UNBLUR_MODEL_SOURCE", REPO.parent / "shared" / "models"))
SOURCE_MANIFEST = json.loads((REPO / "models" / "manifest.json").read_text())
FIDELITY = json.loads((REPO / "models" / "fidelity.json").read_text())["models"]
RELEASED = [m for m in SOURCE_MANIFEST["models"] if (m.get("source") or {}).get("release")]
sys.path.insert(0, str(REPO / "models"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def release_files(tmp_path_factory) -> Path:
    """Stand-in release checkpoints ({'params': state dict}, fp32 weights near the fp16 ones)."""
    import torch

    from unblur_models import srvgg

    d = tmp_path_factory.mktemp("release")
    rng = np.random.default_rng(1)
    for m in RELEASED:
        onnx_path = MIRROR / m["source"]["mirror"]
        assert onnx_path.is_file(), f"the model mirror lacks {onnx_path} (set UNBLUR_MODEL_SOURCE)"
        sd = {}
        for k, v in srvgg.state_dict_from_onnx(onnx_path).items():
            step = np.spacing(np.abs(v).astype(np.float16)).astype(np.float32)
            moved = v + step * rng.uniform(-0.2, 0.2, v.shape).astype(np.float32)
            sd[k] = torch.from_numpy(np.where(v == 0, v, moved))  # a -0.0 stays -0.0
        assert any(not torch.equal(t, t.half().float()) for t in sd.values())  # really fp32
        torch.save({"params": sd}, d / Path(m["source"]["release"]["url"]).name)
    (d / "yunet_2023mar.onnx").write_bytes((MIRROR / "yunet_2023mar.onnx").read_bytes())
    return d


@pytest.fixture()
def host(release_files, tmp_path):
    """The stand-in host (a fresh one per test, with its own request log)."""
    port, cdn = free_port(), free_port()
    log = tmp_path / "requests.log"
    p = subprocess.Popen([sys.executable, str(REPO / "tests" / "model_host.py"), "--dir", str(release_files),
                          "--port", str(port), "--cdn-port", str(cdn), "--log", str(log)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    yield {"base": f"http://127.0.0.1:{port}", "log": log, "files": release_files}
    p.kill()
    p.wait()


def set_mode(host, mode: str) -> None:
    urllib.request.urlopen(f"{host['base']}/_mode/{mode}").read()


def stand_in_manifest(host, tmp_path) -> Path:
    m = json.loads(json.dumps(SOURCE_MANIFEST))
    for e in m["models"]:
        src = e.get("source") or {}
        if src.get("download"):
            src["download"] = f"{host['base']}/resolve/{src['mirror']}"
        if src.get("release"):
            rel = src["release"]
            assert rel["url"].startswith("https://github.com/")
            rel["url"] = host["base"] + rel["url"][len("https://github.com"):]
            rel["sha256"] = sha(host["files"] / Path(rel["url"]).name)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(m))
    return path


def pages_build(host, tmp_path, timeout=900) -> subprocess.CompletedProcess:
    """scripts/pages_build.sh with a fork's empty settings: no mirror, no dev photos."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("UNBLUR_MODEL_SOURCE", "UNBLUR_DEV_DATA", "UNBLUR_MODEL_MIRROR_DIR",
                        "UNBLUR_MODEL_MIRROR_URL", "UNBLUR_BENCH_BUILDS")}
    env.update(UNBLUR_MODEL_MANIFEST=str(stand_in_manifest(host, tmp_path)),
               UNBLUR_MODELS_BUILD=str(tmp_path / "models"), UNBLUR_SITE=str(tmp_path / "site"),
               UNBLUR_SITE_MODE="dev")
    return subprocess.run(["bash", str(REPO / "scripts" / "pages_build.sh")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def requested(host) -> list[str]:
    return [line.split()[2] for line in host["log"].read_text().splitlines()]


def test_a_fork_with_no_settings_builds_the_site_from_the_pinned_releases(host, tmp_path):
    r = pages_build(host, tmp_path)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    paths = requested(host)
    for m in RELEASED:
        assert m["source"]["release"]["url"][len("https://github.com"):] in paths, paths
    # Each checkpoint, rounded to fp16, converts to the very ONNX the real manifest pins.
    for m in RELEASED:
        assert sha(tmp_path / "models" / "cache" / m["source"]["mirror"]) == m["sha256"], m["id"]
    built = {m["id"]: m for m in json.loads((tmp_path / "models" / "manifest.json").read_text())["models"]}
    shipped = {p.name for p in (tmp_path / "site" / "models").glob("*.onnx")}
    for m in SOURCE_MANIFEST["models"]:
        b = built[m["id"]]
        src = m.get("source") or {}
        if m.get("delivery") in ("first-visit", "own") or src.get("release"):
            # Shipped in a form the committed report measured, byte for byte, not as fp32.
            form = b["ship"]
            assert form in FIDELITY[m["id"]]["forms"], (m["id"], form)
            art = b["artifacts"][form]
            assert art["sha256"] == FIDELITY[m["id"]]["forms"][form]["sha256"], m["id"]
            assert sha(tmp_path / "site" / "models" / art["file"]) == art["sha256"]
        elif m.get("delivery") == "on-demand" and not src.get("download"):
            # No pinned upstream download: left out, so the page does not offer it.
            assert b["ship"] is None and not any(f.startswith(m["id"] + ".") for f in shipped), m["id"]
    assert "left out of this build" in r.stdout
    for f in ("index.html", "sw.js", "pkg/unblur_web_bg.wasm", "models/manifest.json"):
        assert (tmp_path / "site" / f).is_file(), f


@pytest.mark.parametrize("fetched_before", ["nothing", "yunet"])
def test_a_file_that_fails_its_checksum_stops_the_build_and_is_not_kept(host, tmp_path, fetched_before):
    cache = tmp_path / "models" / "cache"
    cache.mkdir(parents=True)
    if fetched_before == "yunet":  # a re-run: the first file to fetch is a release checkpoint
        (cache / "yunet_2023mar.onnx").write_bytes((MIRROR / "yunet_2023mar.onnx").read_bytes())
    set_mode(host, "corrupt")
    r = pages_build(host, tmp_path)
    assert r.returncode != 0
    first = "yunet_2023mar.onnx" if fetched_before == "nothing" else RELEASED[0]["source"]["release"]["url"].rsplit("/", 1)[1]
    assert "sha256 mismatch" in r.stderr and first in r.stderr and "deleted" in r.stderr, r.stderr[-2000:]
    kept = {p.name for p in cache.iterdir()}
    assert kept == ({"yunet_2023mar.onnx"} if fetched_before == "yunet" else set()), kept
    assert not (tmp_path / "models" / "manifest.json").exists() and not (tmp_path / "site").exists()


def test_an_interrupted_download_says_so_and_stores_nothing(host, tmp_path):
    set_mode(host, "halfway")
    r = pages_build(host, tmp_path)
    assert r.returncode != 0
    assert "download of" in r.stderr and "interrupted after" in r.stderr, r.stderr[-2000:]
    cache = tmp_path / "models" / "cache"
    assert not [p for p in cache.iterdir() if p.suffix in (".pth", ".part")], list(cache.iterdir())
    assert not (tmp_path / "site").exists()


def test_a_checkpoint_of_another_network_is_refused_by_name(tmp_path):
    import torch

    from unblur_models import srvgg

    # An ESRGAN (RRDBNet) checkpoint, small: spandrel reads it, the converter refuses it.
    from spandrel.architectures.ESRGAN import ESRGAN

    sd = ESRGAN(num_filters=8, num_blocks=1, scale=4).state_dict()
    torch.save({"params_ema": sd}, tmp_path / "x4plus.pth")
    with pytest.raises(srvgg.ConvertError, match="not Real-ESRGAN's SRVGGNetCompact"):
        srvgg.convert(tmp_path / "x4plus.pth")
    (tmp_path / "junk.pth").write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(srvgg.ConvertError, match="not a checkpoint"):
        srvgg.convert(tmp_path / "junk.pth")


def test_the_pages_workflow_builds_with_the_tested_script():
    wf = (REPO / ".github" / "workflows" / "pages.yml").read_text()
    steps = [l for l in wf.split("jobs:")[1].splitlines() if not l.strip().startswith("#")]
    assert "        run: bash scripts/pages_build.sh" in steps
    # No second way to build inside the workflow: the tested script is the build.
    assert not [l for l in steps if "models/build.py" in l or "web/build.sh" in l]

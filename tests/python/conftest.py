"""Shared fixtures for the model toolchain tests.

These tests never skip: a missing input (the model mirror, the dev photos, torch/spandrel for the
exporter) is a failure with a message saying what is missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
BUILD_PY = MODELS / "build.py"
EXPORT_PY = MODELS / "export.py"
BUILD_DIR = Path(os.environ.get("UNBLUR_MODELS_BUILD", MODELS / "build"))
EXPORT_DIR = BUILD_DIR / "export"

sys.path.insert(0, str(MODELS))


def run(args, timeout=1800):
    """Run a tool with this interpreter; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def source_manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())


@pytest.fixture(scope="session")
def mirror() -> Path:
    import build

    d = build.resolve_source_dir(None)
    assert d is not None and d.is_dir(), (
        "no model source folder: set UNBLUR_MODEL_SOURCE or provide ../shared/models next to the repo")
    return d


@pytest.fixture(scope="session")
def fresh_build(mirror) -> Path:
    """models/build brought up to date (incremental: cheap when nothing changed), report included."""
    r = run([BUILD_PY, "--out", BUILD_DIR, "--report"])
    assert r.returncode == 0, f"build failed:\n{r.stdout}\n{r.stderr}"
    return BUILD_DIR


@pytest.fixture(scope="session")
def fresh_export() -> Path:
    """Every exporter architecture with random weights, checked (reuses the stamp when unchanged)."""
    r = run([EXPORT_PY, "--all-random", "--out-dir", EXPORT_DIR, "--check"], timeout=3600)
    # a non-zero exit is asserted per architecture by the tests, which name the failing one
    summary = EXPORT_DIR / "summary.json"
    assert summary.is_file(), f"exporter wrote no summary:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return EXPORT_DIR

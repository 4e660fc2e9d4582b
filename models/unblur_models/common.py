"""Small shared helpers: paths, hashing, JSON I/O."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent  # <repo>/models
REPO_ROOT = MODELS_DIR.parent
SOURCE_MANIFEST = MODELS_DIR / "manifest.json"
DEFAULT_OUT = MODELS_DIR / "build"
DEV_DATA = REPO_ROOT.parent / "shared" / "data" / "dev"

FORMS = ("fp32", "int8", "fp16")


class BuildError(Exception):
    """An error the build reports as one line and a non-zero exit code."""


def sha256_file(path: os.PathLike | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_hash(paths) -> str:
    """Hash of several files' names and contents (order independent of the caller)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def load_json(path: os.PathLike | str, default=None):
    p = Path(path)
    if not p.exists():
        return default
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: os.PathLike | str, obj) -> None:
    """Write JSON atomically (temp file + rename), pretty-printed, stable key order."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, p)


def load_source_manifest(path: os.PathLike | str = SOURCE_MANIFEST) -> dict:
    m = load_json(path)
    if m is None:
        raise BuildError(f"source manifest not found: {path}")
    ids = [e["id"] for e in m["models"]]
    if len(ids) != len(set(ids)):
        raise BuildError(f"duplicate model ids in {path}")
    return m

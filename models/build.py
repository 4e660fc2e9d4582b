#!/usr/bin/env python3
"""Unblur model build: verify sources, write fp32/int8/fp16 ONNX artifacts, measure fidelity,
write the built manifest read by the Rust CLI and the web page.

    python3 models/build.py [--source DIR | --fetch] [--out models/build] [--only ID,...]
                            [--report] [--readme README.md] [--no-fidelity] [--verify]
                            [--pin ID,...]

Source folder: --source, else $UNBLUR_MODEL_SOURCE, else ../shared/models next to the repo if it
exists. Without one (or with --fetch) each model comes from its pinned upstream file, fetched into
<out>/cache: `source.download` (an ONNX, checked by `sha256`), or `source.release` (a PyTorch
checkpoint from the upstream GitHub release, checked by its own sha256, converted to the ONNX that
`sha256` pins: models/unblur_models/srvgg.py). A model delivered on demand with neither is left
out of the build (the page does not offer it). Nothing built is ever committed.

The fidelity measurement (which needs the dev photos) picks each model's shipped form; its results
are committed data, models/fidelity.json, keyed by the sha256 of each artifact measured. A build
with --no-fidelity (a GitHub Pages build, which has no photos) ships what that report says for
every artifact that is byte for byte the one measured, and fp32 for any other.

Unblur's own models are committed in this repository (`source.repo`), pinned like the others by
the sha256 and size in models/manifest.json, which the build checks. When one is retrained and its
file replaced, `--pin` writes the new file's sha256 and size into models/manifest.json and builds:

    python3 models/build.py --pin unblur-deblur

Only `source.repo` models can be pinned this way: an upstream file is pinned by hand, after
checking it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from unblur_models.common import (  # noqa: E402
    DEFAULT_OUT, DEV_DATA, FORMS, MODELS_DIR, REPO_ROOT, SOURCE_MANIFEST, BuildError, files_hash,
    load_json, load_source_manifest, sha256_file, write_json)

STAMP = ".stamp.json"
FIDELITY_CACHE = ".fidelity-cache.json"
COMMITTED_FIDELITY = Path(__file__).resolve().parent / "fidelity.json"
BUILT_MANIFEST = "manifest.json"
README_START = "<!-- models-report:start -->"
README_END = "<!-- models-report:end -->"
HERE = Path(__file__).resolve().parent
TOOL_FILES = [HERE / "build.py", HERE / "unblur_models" / "common.py", HERE / "unblur_models" / "quantize.py"]
FIDELITY_FILES = [HERE / "unblur_models" / "fidelity.py"]


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ sources

def resolve_source_dir(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    env = os.environ.get("UNBLUR_MODEL_SOURCE")
    if env:
        return Path(env)
    mirror = REPO_ROOT.parent / "shared" / "models"
    return mirror if mirror.is_dir() else None


def download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log(f"  downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=120) as r, open(part, "wb") as f:  # noqa: S310
            shutil.copyfileobj(r, f)
            size, got = r.headers.get("Content-Length"), f.tell()
        # urllib returns a body cut short by a dropped connection without an error.
        if size is not None and got != int(size):
            raise OSError(f"interrupted after {got:,} of {int(size):,} bytes")
    except Exception as e:  # noqa: BLE001
        part.unlink(missing_ok=True)
        raise BuildError(f"download of {url} failed: {e}") from e
    os.replace(part, dest)


def fetch_pinned(url: str, dest: Path, sha256: str) -> None:
    """`dest` holding the file at `url` whose sha256 is pinned: kept if it already matches, else
    downloaded and checked; a download that does not match is deleted."""
    if dest.is_file() and sha256_file(dest) == sha256:
        return
    download(url, dest)
    actual = sha256_file(dest)
    if actual != sha256:
        dest.unlink()
        raise BuildError(f"sha256 mismatch for {url}: expected {sha256}, got {actual} "
                         f"(deleted; the upstream file changed: check it before pinning it again)")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fetch_release(entry: dict, cache_dir: Path) -> tuple[Path, str]:
    """A model's pinned upstream release checkpoint, converted to the ONNX the manifest pins.

    The `.pth` is checked against its own pinned sha256 before it is read. Its conversion
    (models/unblur_models/srvgg.py) is checked against PyTorch and then against the manifest's
    sha256 of the ONNX every measurement was made on; if it is another ONNX (the release's weights
    differ from the ones that file was made from beyond fp16 rounding) the build goes on from it,
    says so, and ships it as fp32, since nothing measured it."""
    from unblur_models import srvgg

    rel = entry["source"]["release"]
    if rel.get("convert") != "srvgg":
        raise BuildError(f"{entry['id']}: unknown release conversion {rel.get('convert')!r}")
    pth = cache_dir / Path(rel["url"]).name
    fetch_pinned(rel["url"], pth, rel["sha256"])
    out = cache_dir / entry["source"]["mirror"]
    try:
        data, model = srvgg.convert(pth)
        err = srvgg.check(data, model)
    except srvgg.ConvertError as e:
        raise BuildError(f"{entry['id']}: {e}") from e
    write_atomic(out, data)
    got = sha256_file(out)
    same = "the ONNX the manifest pins" if got == entry["sha256"] else f"ANOTHER ONNX than the pinned {entry['sha256']}"
    log(f"  {entry['id']}: converted {pth.name} (vs PyTorch {err:.1e}): {same}")
    return out, got


def write_blend(entry: dict, sources: dict, cache_dir: Path) -> tuple[Path | None, str]:
    """A denoise preset: every weight of the model and its partner mixed as the engine mixes them
    at run time (`denoise·model + (1 − denoise)·partner`, in f32), written as an ONNX of its own so
    that the default strength needs one file, and one that compresses as well as it measures."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    blend = entry["source"]["blend"]
    a, b = sources.get(blend["of"], (None, "")), sources.get(blend["partner"], (None, ""))
    if a[0] is None or b[0] is None:
        return None, f"its parts {blend['of']} and {blend['partner']} are not in this build"
    d = np.float32(blend["denoise"])
    model, other = onnx.load(str(a[0])), onnx.load(str(b[0]))
    theirs = {t.name: numpy_helper.to_array(t) for t in other.graph.initializer}
    for t in model.graph.initializer:
        w = numpy_helper.to_array(t)
        if t.data_type == onnx.TensorProto.FLOAT and t.name in theirs and not np.array_equal(w, theirs[t.name]):
            t.CopyFrom(numpy_helper.from_array((d * w + (np.float32(1) - d) * theirs[t.name]).astype(np.float32), t.name))
    out = cache_dir / entry["source"]["mirror"]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, model.SerializeToString())
    actual = sha256_file(out)
    if actual != entry["sha256"]:
        raise BuildError(f"{entry['id']}: the blend of {a[0].name} and {b[0].name} is {actual}, "
                         f"not the pinned {entry['sha256']}")
    return out, actual


def locate_source(entry: dict, source_dir: Path | None, cache_dir: Path) -> tuple[Path | None, str]:
    """Find (or fetch) a model's source file and check it: (path, its sha256). Fetching (no
    source folder), a model with no pinned upstream download is (None, why) if it is fetched
    only on demand, and an error if the page needs it."""
    src = entry.get("source", {})
    mirror = src.get("mirror")
    expected = entry.get("sha256")
    if src.get("repo"):  # the project's own weights, committed in this repository
        path = REPO_ROOT / src["repo"]
        if not path.is_file():
            raise BuildError(f"{entry['id']}: {path} not found (it is committed: is the checkout complete?)")
        actual = sha256_file(path)
        if actual != expected:
            raise BuildError(f"sha256 mismatch for {path}: expected {expected}, got {actual}")
        return path, actual
    if not mirror or not expected:
        raise BuildError(f"{entry['id']}: manifest entry lacks source.mirror or sha256")
    if source_dir is not None:
        path = source_dir / mirror
        if not path.is_file():
            raise BuildError(f"{entry['id']}: source file {path} not found")
    else:
        path = cache_dir / mirror
        if path.is_file() and sha256_file(path) == expected:
            return path, expected
        if src.get("release"):
            return fetch_release(entry, cache_dir)
        if not src.get("download"):
            if entry.get("delivery") == "on-demand":
                return None, f"no pinned upstream download (upstream: {src.get('url')}); a mirror can provide it"
            raise BuildError(f"{entry['id']}: no source folder and no direct download URL "
                             f"(upstream: {src.get('url')}); pass --source DIR or set UNBLUR_MODEL_SOURCE")
        fetch_pinned(src["download"], path, expected)
        return path, expected
    actual = sha256_file(path)
    if actual != expected:
        raise BuildError(f"sha256 mismatch for {path}: expected {expected}, got {actual}")
    return path, actual


# ------------------------------------------------------------------ artifacts

def artifact_name(model_id: str, form: str) -> str:
    return f"{model_id}.{form}.onnx"


def describe(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def validate(path: Path, entry: dict) -> None:
    """onnx.checker plus one onnxruntime run on a small input; raises BuildError."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path), full_check=True)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        size = entry["input"].get("size") or [16, 16]
        x = np.full((1, 3, size[0], size[1]), 0.5 * entry["input"]["range"][1], dtype=np.float32)
        outs = sess.run(None, {entry["input"]["name"]: x})
        if not all(np.isfinite(o).all() for o in outs):
            raise BuildError(f"{path.name}: non-finite output on a constant input")
    except BuildError:
        raise
    except Exception as e:  # noqa: BLE001
        raise BuildError(f"{path.name}: validation failed: {e}") from e


def write_form(form: str, src: Path, dest: Path) -> None:
    import onnx

    from unblur_models.quantize import convert_fp16, quantize_int8

    tmp = dest.with_name(dest.name + ".tmp")
    if form == "fp32":
        shutil.copyfile(src, tmp)
    else:
        model = onnx.load(str(src))
        model = quantize_int8(model) if form == "int8" else convert_fp16(model)
        onnx.save(model, str(tmp))
    os.replace(tmp, dest)


def build_model(entry: dict, src: Path, src_sha: str, out: Path, stamp: dict, tool: str) -> dict:
    mid = entry["id"]
    prev = stamp.get(mid, {})
    if prev.get("source_sha256") == src_sha and prev.get("tool") == tool:
        arts = prev.get("artifacts", {})
        if all(f in arts and (out / arts[f]["file"]).is_file()
               and sha256_file(out / arts[f]["file"]) == arts[f]["sha256"] for f in FORMS):
            log(f"  {mid}: up to date")
            return arts
    arts = {}
    for form in FORMS:
        dest = out / artifact_name(mid, form)
        t = time.time()
        write_form(form, src, dest)
        validate(dest, entry)
        arts[form] = describe(dest)
        log(f"  {mid}: wrote {dest.name} ({arts[form]['bytes']:,} bytes, {time.time() - t:.1f}s)")
    stamp[mid] = {"source_sha256": src_sha, "tool": tool, "artifacts": arts}
    write_json(out / STAMP, stamp)
    return arts


# ------------------------------------------------------------------ fidelity

def measure_fidelity(entry: dict, arts: dict, out: Path, cache: dict, dev: Path) -> dict:
    from unblur_models import fidelity

    key_base = files_hash(FIDELITY_FILES) + ":" + fidelity.dev_fingerprint(dev) + ":" + arts["fp32"]["sha256"]
    mc = cache.setdefault(entry["id"], {})
    result, todo = {}, {}
    for form in FORMS[1:]:
        key = key_base + ":" + arts[form]["sha256"]
        if mc.get(form, {}).get("key") == key:
            result[form] = mc[form]["metrics"]
        else:
            todo[form] = (key, out / arts[form]["file"])
    if todo:
        t = time.time()
        try:
            metrics = fidelity.measure(entry, out / arts["fp32"]["file"], {f: p for f, (_, p) in todo.items()}, dev)
        except fidelity.FidelityError as e:
            raise BuildError(f"{entry['id']}: fidelity: {e}") from e
        for form, (key, _) in todo.items():
            mc[form] = {"key": key, "metrics": metrics[form]}
            result[form] = metrics[form]
        write_json(out / FIDELITY_CACHE, cache)
        log(f"  {entry['id']}: measured {', '.join(todo)} in {time.time() - t:.1f}s")
    else:
        log(f"  {entry['id']}: fidelity cached")
    return result


def record_fidelity(path: Path, arts: dict, metrics: dict) -> None:
    """Writes the measured fidelity as committed data (models not measured this time are kept)."""
    data = load_json(path, {}) or {}
    models = dict(data.get("models", {}))
    for mid, m in metrics.items():
        models[mid] = {"fp32_sha256": arts[mid]["fp32"]["sha256"],
                       "forms": {f: {"sha256": arts[mid][f]["sha256"], **m[f]} for f in sorted(m)}}
    new = {"version": 1,
           "about": "models/build.py's fidelity of each compressed form against fp32 on the dev photos, "
                    "keyed by the artifacts' sha256; builds without the photos (--no-fidelity) ship by it",
           "models": dict(sorted(models.items()))}
    if new != data:
        write_json(path, new)


def committed_fidelity(path: Path, arts: dict) -> dict:
    """The committed report's metrics for every artifact that is the one it measured."""
    data = load_json(path, {}) or {}
    out = {}
    for mid, a in arts.items():
        rec = data.get("models", {}).get(mid)
        if not rec or rec.get("fp32_sha256") != a["fp32"]["sha256"]:
            log(f"  {mid}: not in the committed report (or another fp32): ships fp32")
            continue
        forms = {f: {k: v for k, v in r.items() if k != "sha256"}
                 for f, r in rec["forms"].items() if a.get(f, {}).get("sha256") == r.get("sha256")}
        missing = sorted(set(rec["forms"]) - set(forms))
        if missing:
            log(f"  {mid}: {', '.join(missing)} differ from the artifacts the report measured: not shipped")
        out[mid] = forms
    return out


def choose_ship(entries: dict, arts: dict, metrics: dict) -> dict:
    """Smallest form meeting the bar, else fp32. Denoise partners (weights interpolated at run
    time) get the same form: the smallest one that meets the bar for both."""
    from unblur_models.fidelity import passes

    ship, done = {}, set()
    for mid, entry in entries.items():
        if mid in done or mid not in arts:
            continue
        group = [mid]
        partner = entry.get("denoise_partner")
        if partner and partner in arts:
            group.append(partner)
        for other, e in entries.items():
            if e.get("denoise_partner") == mid and other in arts and other not in group:
                group.append(other)
        best = "fp32"
        if all(m in metrics for m in group):
            ok = [f for f in FORMS[1:]
                  if all(passes(entries[m]["task"], metrics[m].get(f, {})) for m in group)]
            if ok:
                best = min(ok, key=lambda f: sum(arts[m][f]["bytes"] for m in group))
        for m in group:
            ship[m] = best
            done.add(m)
    return ship


# ------------------------------------------------------------------ manifest, report

def built_entry(entry: dict, arts: dict | None, metrics: dict | None, ship: str | None) -> dict:
    e = dict(entry)
    if not arts:
        e["ship"] = None
        e["artifacts"] = {}
        return e
    e["ship"] = ship
    out = {}
    for form in FORMS:
        a = dict(arts[form])
        if metrics and form in metrics:
            a.update({k: v for k, v in metrics[form].items() if k in ("psnr_db", "psnr_min_db", "iou", "count_mismatch", "agree", "mask_iou")})
        out[form] = a
    e["artifacts"] = out
    return e


def metric_text(a: dict) -> str:
    if "psnr_db" in a:
        return f"{a['psnr_db']:.2f} dB (min {a['psnr_min_db']:.2f})" if "psnr_min_db" in a else f"{a['psnr_db']:.2f} dB"
    if "agree" in a:
        return f"mask agrees {100 * a['agree']:.3f} %, damage IoU {a['mask_iou']:.3f}"
    if "iou" in a:
        return f"IoU {a['iou']:.4f}, count mismatch {a.get('count_mismatch', 0)}"
    return "reference"


def report_rows(built: dict) -> list[dict]:
    rows = []
    for e in built["models"]:
        for form, a in e.get("artifacts", {}).items():
            rows.append({"model": e["id"], "form": form, "bytes": a["bytes"],
                         "psnr_db": a.get("psnr_db"), "psnr_min_db": a.get("psnr_min_db"),
                         "iou": a.get("iou"), "count_mismatch": a.get("count_mismatch"),
                         "agree": a.get("agree"), "mask_iou": a.get("mask_iou"),
                         "metric": metric_text(a), "shipped": e.get("ship") == form})
    return rows


def report_markdown(rows: list[dict]) -> str:
    lines = ["| model | form | bytes | fidelity vs fp32 | shipped |", "|---|---|---:|---|:---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['form']} | {r['bytes']:,} | {r['metric']} | {'yes' if r['shipped'] else ''} |")
    lines.append("")
    lines.append("Fidelity: PSNR of the compressed model's output against the fp32 model's on 96x96 crops of the "
                 "dev photos (bar: 40 dB); detector: mean IoU of matched faces on the letterboxed whole photos "
                 "(bar: 0.95 and the same faces). Denoise partners (weights interpolated at run time) ship the same "
                 "form: the smallest that meets the bar for both. Generated by `python3 models/build.py --report`.")
    return "\n".join(lines) + "\n"


def report_table(rows: list[dict]) -> str:
    head = f"{'model':32} {'form':5} {'bytes':>11}  {'fidelity vs fp32':40} shipped"
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r['model']:32} {r['form']:5} {r['bytes']:>11,}  {r['metric']:40} {'yes' if r['shipped'] else ''}")
    return "\n".join(out)


def update_readme(readme: Path, md: str) -> bool:
    if not readme.is_file():
        print(f"error: {readme} not found; not updated", file=sys.stderr)
        return False
    text = readme.read_text(encoding="utf-8")
    i, j = text.find(README_START), text.find(README_END)
    if i < 0 or j < 0 or j < i:
        print(f"error: {readme} lacks the lines {README_START} and {README_END}; not updated", file=sys.stderr)
        return False
    new = text[:i + len(README_START)] + "\n" + md + text[j:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
        log(f"updated the models report in {readme}")
    return True


# ------------------------------------------------------------------ verify

def verify(out: Path) -> int:
    man = load_json(out / BUILT_MANIFEST)
    if man is None:
        print(f"error: no built manifest at {out / BUILT_MANIFEST}", file=sys.stderr)
        return 1
    problems, checked = [], 0
    for e in man.get("models", []):
        arts = e.get("artifacts", {})
        if e.get("ship") and e["ship"] not in arts:
            problems.append(f"{e['id']}: shipped form {e['ship']} has no artifact")
        for form, a in arts.items():
            path = out / a["file"]
            checked += 1
            if not path.is_file():
                problems.append(f"missing: {path} ({e['id']} {form})")
                continue
            actual = sha256_file(path)
            if actual != a["sha256"] or path.stat().st_size != a["bytes"]:
                problems.append(f"corrupt: {path} ({e['id']} {form}): sha256 {actual}, expected {a['sha256']}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"verify: {len(problems)} problem(s) in {out}", file=sys.stderr)
        return 1
    log(f"verify: {checked} artifacts ok in {out}")
    return 0


# ------------------------------------------------------------------ main

def pin(manifest_path: Path, manifest: dict, ids: list[str]) -> None:
    """Writes the sha256 and size of Unblur's own committed files (`source.repo`) for `ids` into
    the source manifest (a retrained model's new file)."""
    entries = {e["id"]: e for e in manifest["models"]}
    for mid in ids:
        e = entries.get(mid)
        if e is None:
            raise BuildError(f"--pin: unknown model id {mid}")
        repo = (e.get("source") or {}).get("repo")
        if not repo:
            raise BuildError(f"--pin: {mid} is not one of Unblur's own committed models (source.repo); "
                             f"an upstream file is pinned by hand")
        path = REPO_ROOT / repo
        if not path.is_file():
            raise BuildError(f"--pin: {path} not found")
        sha, size = sha256_file(path), path.stat().st_size
        if (e.get("sha256"), e.get("bytes")) == (sha, size):
            log(f"pinned {mid}: unchanged ({sha})")
            continue
        log(f"pinned {mid}: sha256 {sha}, {size:,} bytes (was {e.get('sha256')}, {e.get('bytes')})")
        e["sha256"], e["bytes"] = sha, size
    write_json(manifest_path, manifest)


def run(args) -> int:
    out = Path(args.out)
    if args.verify:
        return verify(out)
    t0 = time.time()
    manifest = load_source_manifest(args.manifest)
    if args.pin:
        pin(Path(args.manifest), manifest, args.pin.split(","))
    entries = {e["id"]: e for e in manifest["models"]}
    only = set(args.only.split(",")) if args.only else None
    if only and not only <= set(entries):
        raise BuildError(f"unknown model id(s): {', '.join(sorted(only - set(entries)))}")
    selected = [e for e in manifest["models"] if not e.get("bring_your_own") and (only is None or e["id"] in only)]

    source_dir = None if args.fetch else resolve_source_dir(args.source)
    cache_dir = out / "cache"
    log(f"sources: {source_dir if source_dir else f'pinned upstream files, fetched into {cache_dir}'}")
    blended = [e for e in selected if (e.get("source") or {}).get("blend")]
    parts = {e["source"]["blend"][k] for e in blended for k in ("of", "partner")}
    sources = {e["id"]: locate_source(e, source_dir, cache_dir) for e in manifest["models"]
               if (e in selected and e not in blended) or e["id"] in parts}  # all checked first
    for e in blended:  # then what is made from them
        sources[e["id"]] = write_blend(e, sources, cache_dir)
    for mid, (path, why) in list(sources.items()):
        if path is None:
            log(f"  {mid}: left out of this build: {why}")
            del sources[mid]
    selected = [e for e in selected if e["id"] in sources]

    out.mkdir(parents=True, exist_ok=True)
    stamp = load_json(out / STAMP, {})
    tool = files_hash(TOOL_FILES)
    log("artifacts:")
    arts = {e["id"]: build_model(e, *sources[e["id"]], out, stamp, tool) for e in selected}

    metrics = {}
    committed = Path(args.fidelity_report)
    if not args.no_fidelity:
        dev = Path(args.dev)
        log(f"fidelity (dev photos: {dev}):")
        cache = load_json(out / FIDELITY_CACHE, {})
        for e in selected:
            metrics[e["id"]] = measure_fidelity(e, arts[e["id"]], out, cache, dev)
        record_fidelity(committed, arts, metrics)
    else:
        log(f"fidelity: not measured; shipped forms from the committed report {committed}:")
        metrics = committed_fidelity(committed, arts)

    previous = {e["id"]: e for e in (load_json(out / BUILT_MANIFEST, {}) or {}).get("models", [])}
    ship = choose_ship(entries, arts, metrics)
    models = []
    for mid, e in entries.items():
        if e.get("bring_your_own"):
            models.append(built_entry(e, None, None, None))
        elif mid in arts:
            models.append(built_entry(dict(e, sha256=sources[mid][1]), arts[mid], metrics.get(mid), ship[mid]))
        elif mid in previous and only:  # not selected by --only: keep what an earlier build wrote
            models.append(previous[mid])
        else:  # no source this time (fetched on demand, with no pinned download): not offered
            models.append(built_entry(e, None, None, None))
    built = {"version": 1, "models": models}
    write_json(out / BUILT_MANIFEST, built)

    rows = report_rows(built)
    md = report_markdown(rows)
    write_json(out / "report.json", {"version": 1, "rows": rows})
    (out / "report.md").write_text(md, encoding="utf-8")
    if args.report:
        print(report_table(rows))
    if args.readme:
        update_readme(Path(args.readme), md)
    log(f"built manifest: {out / BUILT_MANIFEST} ({time.time() - t0:.1f}s)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", help="folder holding the upstream model files (default: see above)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="build folder (default: models/build)")
    p.add_argument("--manifest", default=str(SOURCE_MANIFEST), help=argparse.SUPPRESS)
    p.add_argument("--dev", default=os.environ.get("UNBLUR_DEV_DATA", str(DEV_DATA)),
                   help="dev photos for the fidelity report (default: ../shared/data/dev)")
    p.add_argument("--fetch", action="store_true",
                   help="ignore any source folder: fetch each model from its pinned upstream file "
                        "(a release checkpoint is converted); on-demand models without one are left out")
    p.add_argument("--only", help="comma-separated model ids to build (others are kept as built before)")
    p.add_argument("--no-fidelity", action="store_true",
                   help="do not measure fidelity: ship by the committed report (fp32 where it does not apply)")
    p.add_argument("--fidelity-report", default=str(COMMITTED_FIDELITY), help=argparse.SUPPRESS)
    p.add_argument("--report", action="store_true", help="print the report table")
    p.add_argument("--readme", help="replace the models report between the marker lines in this file")
    p.add_argument("--verify", action="store_true", help="check every artifact of the built manifest in --out")
    p.add_argument("--pin", metavar="ID,...",
                   help="first write the sha256 and size of these own models' committed files (source.repo) "
                        "into models/manifest.json: after replacing a retrained model's file")
    args = p.parse_args(argv)
    try:
        return run(args)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The GitHub Pages build of the site, as .github/workflows/pages.yml runs it on a fork with no
# settings at all (tests/pages/test_pages_build.py runs it against a stand-in release host).
#
#   bash scripts/pages_build.sh
#
# Models: from a mirror if one is set (UNBLUR_MODEL_MIRROR_DIR, a folder; UNBLUR_MODEL_MIRROR_URL,
# a URL prefix under which each model's `source.mirror` file name is fetched), else every model
# from its pinned upstream file (models/build.py --fetch: YuNet from OpenCV Zoo, the Real-ESRGAN
# checkpoints from their GitHub release, converted; each checked by sha256). Shipped forms: measured
# when the dev photos are there (UNBLUR_DEV_DATA), else by the committed report models/fidelity.json.
#
# Also read: UNBLUR_SITE_MODE (dist, or dev for a fast wasm), UNBLUR_SITE (the site folder),
# UNBLUR_MODELS_BUILD (the models' build folder), UNBLUR_MODEL_MANIFEST (another source manifest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
models_out="${UNBLUR_MODELS_BUILD:-$root/models/build}"
args=(--out "$models_out")
[[ -n "${UNBLUR_MODEL_MANIFEST:-}" ]] && args+=(--manifest "$UNBLUR_MODEL_MANIFEST")

if [[ -n "${UNBLUR_MODEL_MIRROR_DIR:-}" ]]; then
  args+=(--source "$UNBLUR_MODEL_MIRROR_DIR")
elif [[ -n "${UNBLUR_MODEL_MIRROR_URL:-}" ]]; then
  src="$models_out/mirror"
  mkdir -p "$src"
  python3 - "$UNBLUR_MODEL_MIRROR_URL" "$src" "${UNBLUR_MODEL_MANIFEST:-models/manifest.json}" <<'PY'
import json, sys, urllib.request, pathlib
base, dest, manifest = sys.argv[1].rstrip('/'), pathlib.Path(sys.argv[2]), sys.argv[3]
for m in json.load(open(manifest))['models']:
    name = (m.get('source') or {}).get('mirror')
    if name and not m.get('bring_your_own'):
        print('fetching', name, flush=True)
        urllib.request.urlretrieve(f'{base}/{name}', dest / name)
PY
  args+=(--source "$src")
else
  args+=(--fetch)
fi
if [[ -z "${UNBLUR_DEV_DATA:-}" || ! -d "${UNBLUR_DEV_DATA:-/nonexistent}" ]]; then
  args+=(--no-fidelity)
fi
python3 models/build.py "${args[@]}"
UNBLUR_MODELS_BUILD="$models_out" bash web/build.sh "${UNBLUR_SITE_MODE:-dist}"

#!/usr/bin/env bash
# Assembles Unblur's static site in dist/site: the page (web/*), the wasm (pkg/) and the models
# (models/: the built manifest and each model's shipped artifact, plus denoise partners).
#
#   bash web/build.sh [dev|dist]
#
# dev: the fast wasm profile (no LTO); dist: fat LTO + wasm-opt (if available via npm binaryen).
# Needs: cargo with the wasm32-unknown-unknown target, wasm-bindgen-cli equal to the crate's
# wasm-bindgen version, and a built models/build/manifest.json (python3 models/build.py).
set -euo pipefail
mode="${1:-dev}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "$mode" in
  dev) profile=wasm-dev ;;
  dist) profile=dist ;;
  *) echo "usage: web/build.sh [dev|dist]" >&2; exit 2 ;;
esac
site="${UNBLUR_SITE:-$root/dist/site}"
target="${CARGO_TARGET_DIR:-$root/target-wasm}"
manifest="$root/models/build/manifest.json"
[[ -f "$manifest" ]] || { echo "web/build.sh: $manifest is missing; run: python3 models/build.py" >&2; exit 1; }

echo "web/build.sh: wasm ($profile)" >&2
CARGO_TARGET_DIR="$target" cargo build -p unblur-web --target wasm32-unknown-unknown --profile "$profile"
wasm="$target/wasm32-unknown-unknown/$profile/unblur_web.wasm"

rm -rf "$site.tmp"
mkdir -p "$site.tmp/pkg" "$site.tmp/models"
wasm-bindgen --target web --no-typescript --out-dir "$site.tmp/pkg" "$wasm"
wasm_opt=""
if [[ -x "$root/node_modules/.bin/wasm-opt" ]]; then wasm_opt="$root/node_modules/.bin/wasm-opt"; fi
if [[ "$mode" == dist && -n "$wasm_opt" ]]; then
  echo "web/build.sh: wasm-opt -O3" >&2
  "$wasm_opt" -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    "$site.tmp/pkg/unblur_web_bg.wasm" -o "$site.tmp/pkg/unblur_web_bg.opt.wasm"
  mv "$site.tmp/pkg/unblur_web_bg.opt.wasm" "$site.tmp/pkg/unblur_web_bg.wasm"
fi

# The page.
for f in index.html app.js pool.js worker.js style.css icon.svg app.webmanifest; do
  cp "web/$f" "$site.tmp/$f"
done

# The models: the shipped artifact of every model that has one (sha256-checked on the way).
python3 - "$manifest" "$site.tmp/models" <<'PY'
import hashlib, json, shutil, sys
from pathlib import Path
manifest, out = Path(sys.argv[1]), Path(sys.argv[2])
m = json.loads(manifest.read_text())
ids = {e["id"]: e for e in m["models"]}
ship = [e for e in m["models"] if e.get("ship")]
need = {e["id"] for e in ship} | {e["denoise_partner"] for e in ship if e.get("denoise_partner")}
for mid in sorted(need):
    e = ids[mid]
    a = e["artifacts"][e["ship"]]
    src = manifest.parent / a["file"]
    data = src.read_bytes()
    if hashlib.sha256(data).hexdigest() != a["sha256"]:
        sys.exit(f"web/build.sh: {src} does not match its sha256 in the manifest; rebuild the models")
    shutil.copyfile(src, out / a["file"])
shutil.copyfile(manifest, out / "manifest.json")
PY

# The service worker: a build stamp (hash of everything it serves) names its cache, so a new
# build replaces old caches; it precaches the app shell (not the models: the page caches them
# after checking them).
stamp="$(cd "$site.tmp" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
assets="$(cd "$site.tmp" && { echo ./; find . -type f ! -name '*.onnx' | LC_ALL=C sort; } | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')"
python3 - "web/sw.js" "$site.tmp/sw.js" "$stamp" "$assets" <<'PY'
import sys
src, dst, stamp, assets = sys.argv[1:]
s = open(src).read().replace("'__BUILD__'", repr(stamp)).replace("__ASSETS__", assets)
open(dst, "w").write(s)
PY
echo "$stamp" > "$site.tmp/BUILD"

rm -rf "$site"
mv "$site.tmp" "$site"
raw=$(stat -c %s "$site/pkg/unblur_web_bg.wasm")
gz=$(gzip -9c "$site/pkg/unblur_web_bg.wasm" | wc -c)
echo "web/build.sh: $site (build $stamp; wasm $raw bytes, $gz gzipped)" >&2

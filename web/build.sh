#!/usr/bin/env bash
# Assembles Unblur's static site in dist/site: the page (web/*), the wasm (pkg/) and the models
# (models/: the built manifest and each model's shipped artifact, plus denoise partners).
#
#   bash web/build.sh [dev|dist]
#
# dev: the fast wasm profile (no LTO); dist: fat LTO + wasm-opt (if available via npm binaryen).
# Needs: cargo with the wasm32-unknown-unknown target, wasm-bindgen-cli equal to the crate's
# wasm-bindgen version, and a built models/build/manifest.json (python3 models/build.py; another
# models build folder: UNBLUR_MODELS_BUILD; another site folder: UNBLUR_SITE).
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
manifest="${UNBLUR_MODELS_BUILD:-$root/models/build}/manifest.json"
[[ -f "$manifest" ]] || { echo "web/build.sh: $manifest is missing; run: python3 models/build.py" >&2; exit 1; }

# Two builds of the same engine (web/engine.js picks one at load time): pkg/ with SIMD128, and
# pkg-relaxed/ whose GEMM kernels also use relaxed SIMD. Each is a package of its own (web/wasm,
# web/wasm-relaxed over web/core-relaxed), so each wasm has its own file in the target folder (an
# unchanged one is not relinked: fat LTO takes minutes), and one `cargo build` builds them all:
# tract once, then the single-threaded fat-LTO links side by side on two cores.
# A third package, web/wasm-gpu over web/core-gpu, is the GPU worker's engine (wgpu on WebGPU;
# pkg-gpu/): the page fetches it only where the browser offers a WebGPU adapter. It gets no
# wasm-opt pass: its hot loops are WGSL kernels on the GPU, and wasm-opt costs minutes.
rm -rf "$site.tmp"
mkdir -p "$site.tmp/models"
wasm_opt=""
if [[ "$mode" == dist && -x "$root/node_modules/.bin/wasm-opt" ]]; then wasm_opt="$root/node_modules/.bin/wasm-opt"; fi
opt_pids=()
opt_cache="$target/wasm-opt-cache"
used=()
crate_of() { case "$1" in simd128) echo unblur-web ;; relaxed) echo unblur-web-relaxed ;; gpu) echo unblur-web-gpu ;; *) echo "web/build.sh: unknown build $1" >&2; exit 2 ;; esac; }
dir_of() { case "$1" in simd128) echo pkg ;; relaxed) echo pkg-relaxed ;; gpu) echo pkg-gpu ;; esac; }
wasm_of() { echo "$target/wasm32-unknown-unknown/$profile/$(crate_of "$1" | tr - _).wasm"; }
echo "web/build.sh: wasm ($profile, simd128, relaxed and gpu)" >&2
CARGO_TARGET_DIR="$target" cargo build -p unblur-web -p unblur-web-relaxed -p unblur-web-gpu --target wasm32-unknown-unknown --profile "$profile"
wasm-bindgen --target web --no-typescript --out-name unblur_web_gpu --out-dir "$site.tmp/$(dir_of gpu)" "$(wasm_of gpu)"
for variant in simd128 relaxed; do
  dir=$(dir_of "$variant")
  case "$variant" in simd128) opt_flags=() ;; relaxed) opt_flags=(--enable-relaxed-simd) ;; esac
  wasm-bindgen --target web --no-typescript --out-name unblur_web --out-dir "$site.tmp/$dir" "$(wasm_of "$variant")"
  if [[ -n "$wasm_opt" ]]; then
    # -O1, not -O3: measured on the SIMD128 and relaxed builds in node (bench: the upscaler at 128²,
    # int8 and fp16, the deblur net at 288²), -O1, -O2, -O3 and no pass run the networks within 2 %
    # of each other (tract's hot loops are its own SIMD kernels, already optimised by LLVM), but
    # -O1 takes 66 s where -O3 takes 240 s on 2 cores (one build alone), and it compresses best:
    # 3.39 MB gzip against -O3's 3.53 MB (no pass: 3.69 MB). The minutes were fresh-clone
    # `make serve`'s last step before the page answered.
    # Keyed on its input and flags: an unchanged wasm is not optimised again.
    flags=(-O1 --enable-simd "${opt_flags[@]}" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals)
    key="$( { sha256sum < "$site.tmp/$dir/unblur_web_bg.wasm"; echo "${flags[*]}"; "$wasm_opt" --version; } | sha256sum | cut -c1-32)"
    cached="$opt_cache/$key.wasm"
    used+=("$cached")
    if [[ -f "$cached" ]]; then
      echo "web/build.sh: wasm-opt ($variant): unchanged input, reused" >&2
      cp "$cached" "$site.tmp/$dir/unblur_web_bg.wasm"
    else
      # In the background: the two run side by side (and beside the bench build, if any).
      echo "web/build.sh: wasm-opt -O1 ($variant)" >&2
      ( "$wasm_opt" "${flags[@]}" "$site.tmp/$dir/unblur_web_bg.wasm" -o "$site.tmp/$dir/unblur_web_bg.opt.wasm" &&
        mv "$site.tmp/$dir/unblur_web_bg.opt.wasm" "$site.tmp/$dir/unblur_web_bg.wasm" &&
        mkdir -p "$opt_cache" && cp "$site.tmp/$dir/unblur_web_bg.wasm" "$cached.tmp" && mv "$cached.tmp" "$cached" ) &
      opt_pids+=($!)
    fi
  fi
done
# The benchmarks' and kernel tests' wasm, with the `bench` feature (the profiler, every GEMM kernel
# and the switch between them, the kernel check): beside the site, never in it.
# UNBLUR_BENCH_BUILDS="simd128 relaxed" (make bench) or "relaxed" (make test).
bench_dir="${UNBLUR_BENCH_PKG:-$root/dist/bench-pkg}"
if [[ -n "${UNBLUR_BENCH_BUILDS:-}" ]]; then
  rm -rf "$bench_dir.tmp"
  mkdir -p "$bench_dir.tmp"
  packages=()
  for variant in $UNBLUR_BENCH_BUILDS; do packages+=(-p "$(crate_of "$variant")" --features "$(crate_of "$variant")/bench"); done
  echo "web/build.sh: bench wasm ($profile, $UNBLUR_BENCH_BUILDS)" >&2
  CARGO_TARGET_DIR="$target" cargo build "${packages[@]}" --target wasm32-unknown-unknown --profile "$profile"
  for variant in $UNBLUR_BENCH_BUILDS; do
    wasm-bindgen --target web --no-typescript --out-name unblur_web --out-dir "$bench_dir.tmp/$(dir_of "$variant")" "$(wasm_of "$variant")"
  done
  rm -rf "$bench_dir"
  mv "$bench_dir.tmp" "$bench_dir"
fi
for pid in "${opt_pids[@]}"; do wait "$pid"; done
# Only this build's optimised wasm stay in the cache.
for f in "$opt_cache"/*.wasm; do
  [[ -e "$f" ]] || continue
  [[ " ${used[*]} " == *" $f "* ]] || rm -f "$f"
done

# The page.
for f in index.html app.js engine.js protocol.js bridge.js pool.js models.js worker.js gpu.js gpuworker.js facemodels.js store.js style.css icon.svg app.webmanifest; do
  cp "web/$f" "$site.tmp/$f"
done
mkdir -p "$site.tmp/ui"
cp web/ui/*.js "$site.tmp/ui/"

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
# The catalog's hosts: which URL the page downloads each face model from, and the CSP that lets
# it contact those hosts and no other.
python3 web/catalog.py "$site.tmp"

# The service worker: a build stamp (hash of everything it serves) names its cache, so a new
# build replaces old caches; it precaches the app shell (not the models: the page caches them
# after checking them).
stamp="$(cd "$site.tmp" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
# The wasm builds are left out: the page asks the worker to keep the one it runs (and the GPU
# worker's code, only where there is an adapter: a browser without WebGPU never fetches it).
assets="$(cd "$site.tmp" && { echo ./; find . -type f ! -name '*.onnx' ! -path './pkg/*' ! -path './pkg-relaxed/*' ! -path './pkg-gpu/*' ! -name gpuworker.js | LC_ALL=C sort; } | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')"
python3 - "web/sw.js" "$site.tmp/sw.js" "$stamp" "$assets" <<'PY'
import sys
src, dst, stamp, assets = sys.argv[1:]
s = open(src).read().replace("'__BUILD__'", repr(stamp)).replace("__ASSETS__", assets)
open(dst, "w").write(s)
PY
echo "$stamp" > "$site.tmp/BUILD"

# Minified as served (esbuild, each file on its own: the modules keep their imports): the page's
# JavaScript and CSS are a fifth of what they are as written. In both modes, so that the tests run
# what ships.
esbuild="$root/node_modules/.bin/esbuild"
[[ -x "$esbuild" ]] || { echo "web/build.sh: $esbuild is missing; run: npm ci" >&2; exit 1; }
for dir in "$site.tmp" "$site.tmp/ui" "$site.tmp/pkg" "$site.tmp/pkg-relaxed" "$site.tmp/pkg-gpu"; do
  mapfile -t files < <(find "$dir" -maxdepth 1 \( -name '*.js' -o -name '*.css' \) | LC_ALL=C sort)
  "$esbuild" "${files[@]}" --minify --log-level=warning --allow-overwrite --outdir="$dir"
done

rm -rf "$site"
mv "$site.tmp" "$site"
raw=$(stat -c %s "$site/pkg/unblur_web_bg.wasm")
gz=$(gzip -9c "$site/pkg/unblur_web_bg.wasm" | wc -c)
echo "web/build.sh: $site (build $stamp; wasm $raw bytes, $gz gzipped)" >&2

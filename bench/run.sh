#!/usr/bin/env bash
# `make bench`: the browser and the native benchmarks, then one combined table.
# Writes bench/out/{browser,native,face,bench}.json and bench/out/bench.md.
#   BENCH_QUICK=1 bash bench/run.sh     small sizes, for checking the harness (~3 min)
#   BENCH_SKIP=browser|native|page      skip that part (reports whatever is in bench/out)
#   BENCH_BIG=0                         skip the 12 MP job in the page
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
log() { echo "[bench] $*" >&2; }

[[ -f dist/site/pkg-relaxed/unblur_web_bg.wasm && -f dist/bench-pkg/pkg/unblur_web_bg.wasm ]] || UNBLUR_BENCH_BUILDS="simd128 relaxed" bash web/build.sh dev
[[ -d node_modules/playwright-core ]] || npm ci
[[ -f node_modules/onnxruntime-web/dist/ort.wasm.min.mjs ]] || npm install --no-save onnxruntime-web
[[ -x target/release/unblur ]] || cargo build --release
log "building bench/native (tract timing harness)"
cargo build --release --quiet --manifest-path bench/native/Cargo.toml --target-dir target
log "exporting the 512² face model candidate (timed natively by bench/face.py, in wasm by bench/browser.mjs)"
python3 bench/face.py --export-only

if [[ -n "${BENCH_QUICK:-}" ]]; then
  export BENCH_SIDE=${BENCH_SIDE:-64} BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_POOL_PER_WORKER=${BENCH_POOL_PER_WORKER:-1} \
    BENCH_ORT_TILES=${BENCH_ORT_TILES:-1} BENCH_FACE=${BENCH_FACE:-0} BENCH_YUNET_RUNS=${BENCH_YUNET_RUNS:-1} BENCH_BIG=${BENCH_BIG:-0}
  NATIVE_ARGS=(--quick --e2e-cap 15)
else
  NATIVE_ARGS=()
fi

start=$SECONDS
if [[ "${BENCH_SKIP:-}" != browser ]]; then
  log "browser part"
  node bench/browser.mjs
fi
if [[ "${BENCH_SKIP:-}" != native ]]; then
  log "native part"
  python3 bench/native.py "${NATIVE_ARGS[@]}"
fi
if [[ "${BENCH_SKIP:-}" != native ]]; then
  log "the face stage natively (Unblur's face model, the SR fallback)"
  python3 bench/face.py
fi
if [[ "${BENCH_SKIP:-}" != native ]]; then
  log "the whole-photo stages natively: deblurring, damage detection, the repair fill (per MP)"
  python3 bench/stages.py --wasm
fi
if [[ "${BENCH_SKIP:-}" != browser && -z "${BENCH_QUICK:-}" ]]; then
  log "face restorer architectures in wasm"
  RUNS=2 node tests/e2e/exported.mjs
fi
if [[ "${BENCH_SKIP:-}" != browser && "${BENCH_SKIP:-}" != page ]]; then
  log "the page: first visit, and a 12 MP photo at ×2 (BENCH_BIG=0 skips it; it takes 10-20 min)"
  node bench/page.mjs
  log "the page's repair suggestion: photo bytes -> damage mask, one inference worker and all"
  node bench/suggestion.mjs
fi
if [[ "${BENCH_SKIP:-}" != browser && "${BENCH_SKIP:-}" != page && -z "${BENCH_QUICK:-}" ]]; then
  log "the page's whole ×4 job against onnxruntime-web (single thread and threaded)"
  node bench/page_vs_ort.mjs 2
  log "the ×4 job on the GPU: the page's GPU worker against onnxruntime-web's WebGPU provider (SwiftShader here; ~7 min)"
  BENCH_ORT_TILES=64,128,256 node bench/page_vs_ort_gpu.mjs 1
fi
log "done in $((SECONDS - start)) s"
python3 bench/report.py bench/out

# The README's performance section quotes this run's table.
python3 - README.md bench/out/bench.md <<'PY'
import sys
readme, table = sys.argv[1], open(sys.argv[2]).read()
body = "\n".join(("###" + l[1:]) if l.startswith("#") else l for l in table.splitlines()[1:]).strip()
s = open(readme).read()
a, b = "<!-- bench:start -->", "<!-- bench:end -->"
if a in s and b in s:
    s = s[: s.index(a) + len(a)] + "\n" + body + "\n" + s[s.index(b):]
    open(readme, "w").write(s)
    print("updated the performance section in README.md")
PY

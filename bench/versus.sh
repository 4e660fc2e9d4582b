#!/usr/bin/env bash
# `make bench-versus`: this checkout against an earlier commit (default: 226702a, the commit before
# the one-job refactor of issue 13), side by side in one run: each built the same way (the CLI in
# release, the site with fat LTO + wasm-opt, the models by that commit's own build), then
# bench/versus.py alternates them round by round and writes bench/out/versus.{json,md}.
#
#   bash bench/versus.sh [REV]        VERSUS_SKIP_BUILD=1 measures what is built
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
rev="${1:-226702a}"
out="$repo/bench/out/versus"
wt="$out/base"
log() { echo "[versus] $*" >&2; }
export UNBLUR_MODEL_SOURCE="${UNBLUR_MODEL_SOURCE:-$(cd .. && pwd)/shared/models}"
export UNBLUR_DEV_DATA="${UNBLUR_DEV_DATA:-$(cd .. && pwd)/shared/data/dev}"
mkdir -p "$out"

if [[ -z "${VERSUS_SKIP_BUILD:-}" ]]; then
  if [[ ! -d "$wt" || "$(git -C "$wt" rev-parse HEAD 2>/dev/null)" != "$(git rev-parse "$rev^{commit}")" ]]; then
    git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
    git worktree prune
    git worktree add --detach "$wt" "$rev"
  fi
  # The same target folders: the dependencies (tract above all) are compiled once for both.
  log "base ($rev): CLI, models, site"
  (cd "$wt" && CARGO_TARGET_DIR="$repo/target" cargo build --release --quiet)
  cp "$repo/target/release/unblur" "$out/unblur-base"
  (cd "$wt" && python3 models/build.py)
  [[ -e "$wt/node_modules" ]] || ln -s "$repo/node_modules" "$wt/node_modules"
  (cd "$wt" && CARGO_TARGET_DIR="$repo/target-wasm" bash web/build.sh dist)
  log "head: CLI, models, site"
  cargo build --release --quiet
  cp target/release/unblur "$out/unblur-head"
  python3 models/build.py
  bash web/build.sh dist
fi
python3 bench/versus.py --base-tree "$wt" --base-rev "$(git -C "$wt" rev-parse --short HEAD)"

#!/usr/bin/env bash
# `make bench-versus`: one commit against another (default: this checkout's HEAD against 226702a,
# the commit before the one-job refactor of issue 13), side by side in one run: each checked out
# in its own worktree and built the same way (the CLI in release, the site with fat LTO + wasm-opt,
# the models by that commit's own build), then bench/versus.py alternates them round by round and
# writes bench/out/versus.{json,md}.
#
#   bash bench/versus.sh [BASE [HEAD]]        VERSUS_SKIP_BUILD=1 measures what is built
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
rev="${1:-226702a}"
head="${2:-HEAD}"
out="$repo/bench/out/versus"
log() { echo "[versus] $*" >&2; }
export UNBLUR_MODEL_SOURCE="${UNBLUR_MODEL_SOURCE:-$(cd .. && pwd)/shared/models}"
export UNBLUR_DEV_DATA="${UNBLUR_DEV_DATA:-$(cd .. && pwd)/shared/data/dev}"
mkdir -p "$out"

# Builds commit $1 in worktree $2 (the CLI copied to $3), sharing this checkout's target folders so
# that the dependencies (tract above all) are compiled once for all. A side already built from the
# same commit (its stamp, $2.built) is not built again. Cargo keeps one uplifted binary per name
# for every checkout of the package, so each build first touches its own sources: an untouched
# one could count as fresh and leave another checkout's binary in place.
build() {
  local commit wt="$2"
  commit="$(git rev-parse "$1^{commit}")"
  if [[ "$(cat "$wt.built" 2>/dev/null)" == "$commit" && -x "$3" && -f "$wt/dist/site/pkg/unblur_web_bg.wasm" ]]; then
    log "$1 ($(git -C "$wt" rev-parse --short HEAD)): built before"
    return
  fi
  rm -f "$wt.built"
  if [[ ! -d "$wt" || "$(git -C "$wt" rev-parse HEAD 2>/dev/null)" != "$commit" ]]; then
    git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
    git worktree prune
    git worktree add --detach "$wt" "$commit"
  fi
  log "$1 ($(git -C "$wt" rev-parse --short HEAD)): CLI, models, site"
  touch "$wt/src/lib.rs" "$wt/web/wasm/src/lib.rs"
  (cd "$wt" && CARGO_TARGET_DIR="$repo/target" cargo build --release --quiet)
  cp "$repo/target/release/unblur" "$3"
  (cd "$wt" && python3 models/build.py)
  [[ -e "$wt/node_modules" ]] || ln -s "$repo/node_modules" "$wt/node_modules"
  (cd "$wt" && CARGO_TARGET_DIR="$repo/target-wasm" bash web/build.sh dist)
  echo "$commit" > "$wt.built"
  # This checkout's own binaries were overwritten: its next build must not count them fresh.
  touch "$repo/src/lib.rs" "$repo/web/wasm/src/lib.rs"
}
if [[ -z "${VERSUS_SKIP_BUILD:-}" ]]; then
  build "$rev" "$out/base" "$out/unblur-base"
  build "$head" "$out/head" "$out/unblur-head"
fi
python3 bench/versus.py --base-tree "$out/base" --base-rev "$(git -C "$out/base" rev-parse --short HEAD)" \
  --head-tree "$out/head" --head-rev "$(git -C "$out/head" rev-parse --short HEAD)"

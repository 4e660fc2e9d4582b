#!/usr/bin/env bash
# Installs what building (`serve`) or testing (`test`) needs on a fresh Debian machine.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-serve}
PY=${PY:-python3}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# wasm-bindgen-cli must be exactly the wasm-bindgen crate's version.
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
bindgen=""
if [ "$have" != "$want" ]; then
  # Only the `wasm-bindgen` binary, without the default TLS features (rustls and ring, for the
  # test runner's downloads, which nothing here uses). Its ~3 minutes of compiling overlap the
  # downloads below; it is waited for at the end.
  cargo install -q wasm-bindgen-cli --version "$want" --no-default-features --bin wasm-bindgen &
  bindgen=$!
fi

# Python: the model build tool always; PyTorch + spandrel (the exporter) for tests, and for a
# build with no model mirror (it converts the upstream release checkpoints).
req=models/requirements.txt
[ -d "${UNBLUR_MODEL_SOURCE:-../shared/models}" ] || req=models/requirements-release.txt
[ "$what" = test ] && req=models/requirements-export.txt
stamp=.setup-$what-$(basename "$req" .txt).stamp
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ]; then
  $PY -m pip install -q -r "$req"
  touch "$stamp"
fi

# npm's packages: the page's build needs esbuild (minifying) and binaryen's wasm-opt, the tests
# also TypeScript and playwright-core; one lock file for both.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi
if [ "$what" = test ]; then
  command -v chromium >/dev/null || { $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium; }
  # The GPU engine's tests (src/engine/gpu) need a Vulkan device: where no Vulkan driver (ICD) is
  # installed at all, Mesa's lavapipe, a software one (slow, but the tests' shapes are small).
  compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null \
    || { $SUDO apt-get update -q && $SUDO apt-get install -y -q mesa-vulkan-drivers; }
fi

[ -z "$bindgen" ] || wait "$bindgen"

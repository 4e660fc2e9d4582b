# The two commands of the README: `make serve` builds everything and serves the page,
# `make test` runs every test. Both set up a fresh machine first (scripts/setup.sh).
SHELL := /bin/bash
PY ?= python3
PORT ?= 8080
WASM_TARGET := CARGO_TARGET_DIR=target-wasm cargo
export UNBLUR_MODEL_SOURCE ?= $(abspath ../shared/models)

.PHONY: serve test setup-serve setup-test models cli site site-dev lint test-rust test-py test-export test-e2e bench bench-versus face-data train-face eval-face

serve: setup-serve models
	bash web/build.sh dist
	@echo "Unblur is at http://127.0.0.1:$(PORT)/"
	cd dist/site && $(PY) -m http.server $(PORT) --bind 127.0.0.1

test: setup-test models lint test-export test-rust test-py test-e2e

setup-serve:
	bash scripts/setup.sh serve
setup-test:
	bash scripts/setup.sh test

# Fetch or copy each model, check its sha256, build fp32/int8/fp16 forms and the manifest.
models:
	$(PY) models/build.py --report --readme README.md

cli:
	cargo build --release

lint:
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings
	$(WASM_TARGET) clippy -p unblur --lib --no-default-features --target wasm32-unknown-unknown --profile wasm-dev -- -D warnings
	$(WASM_TARGET) clippy -p unblur-web --target wasm32-unknown-unknown --profile wasm-dev -- -D warnings
	$(WASM_TARGET) clippy -p unblur-web-relaxed --target wasm32-unknown-unknown --profile wasm-dev -- -D warnings
	$(WASM_TARGET) clippy -p unblur-web-relaxed --features bench --target wasm32-unknown-unknown --profile wasm-dev -- -D warnings
	$(WASM_TARGET) clippy -p unblur-web-gpu --target wasm32-unknown-unknown --profile wasm-dev -- -D warnings
	# The page's JavaScript, type-checked against its JSDoc and the worker protocol (web/protocol.js).
	node_modules/.bin/tsc -p web
	node_modules/.bin/tsc -p web/tsconfig.worker.json

test-export:
	$(PY) models/export.py --all-random --out-dir models/build/export --check
	$(PY) models/checkpoints.py --out-dir models/build/checkpoints

test-rust:
	# NODEVICE_SELECT: without a display, Mesa's device-select layer prints an XDG_RUNTIME_DIR error per instance.
	UNBLUR_REQUIRE_GPU=1 NODEVICE_SELECT=1 cargo test --release

test-py:
	$(PY) -m pytest tests/python -q

test-e2e:
	UNBLUR_BENCH_BUILDS=relaxed bash web/build.sh dev
	# The Pages build a fork runs, against a stand-in release host (reuses the wasm just built).
	$(PY) -m pytest tests/pages -q
	node tests/e2e/run.mjs
	node tests/e2e/deblur.mjs
	node tests/e2e/repair.mjs
	node tests/e2e/face_models.mjs
	# The GPU worker on Chromium's SwiftShader adapter, and the CPU where there is none.
	node tests/e2e/gpu.mjs
	# The exporter's GFPGAN and CodeFormer rows are left to `make bench`: the pth: rows run the same
	# architectures in wasm, converted by the product's own converter.
	RUNS=1 ARCHS=gemm-kernels,gpen-bfr-512,restoreformer++,rrdbnet-x4,rrdbnet-x2,pth:gfpgan,pth:codeformer node tests/e2e/exported.mjs

# Speed and memory, side by side in one run (a table, and JSON in bench/out/).
# The shipping site (fat LTO + wasm-opt): what people get is what is measured.
bench: setup-test models
	UNBLUR_BENCH_BUILDS="simd128 relaxed" bash web/build.sh dist
	bash bench/run.sh

# HEAD against an earlier commit (VERSUS_REV, default the commit before issue 13's
# refactor), both built alike, measured side by side in one run: bench/out/versus.md.
VERSUS_REV ?= 226702a
bench-versus: setup-test models
	bash bench/versus.sh $(VERSUS_REV)

# Unblur's own face restorer (models/face/, issue 11). Never part of `make test` or CI: the data
# are photos of real people (../shared/data/faces), everything derived stays in models/build/faces.
# Issue 29: the sharp FFHQ 512² faces (../shared/data/faces/ffhq512, CC BY-NC-SA), cached in
# models/build/faces512: fit the product's similarity on each, bicubic targets at the 512 template.
face-data:
	$(PY) models/face/prepare512.py
# Train the 512²-output U-Net (CPU or CUDA) at nice 19, resuming from the last checkpoint, or where
# there is none (a fresh machine) from FACE_RECIPE's generator (train512.py's RECIPES, or FACE_INIT):
# by default the best so far and its recipe, run 13's (stopping point 9 of the candidates' card;
# on the CPU that recipe has plateaued, run 16).
# FACE_MINUTES is the whole run's budget (its cosine counts from it); log and checkpoints in
# models/build/faces512/run.
FACE_MINUTES ?= 240
FACE_RECIPE ?= texture
train-face:
	nice -n 19 $(PY) models/face/train512.py --minutes $(FACE_MINUTES) --recipe $(FACE_RECIPE) --resume --threads 2 \
		$(if $(FACE_INIT),--init-gen $(FACE_INIT))
# Score the best committed 512² candidate so far (FACE_MODEL: run 13's noise generator, stopping
# point 9 of the candidates' card, scored as it would ship, its noise frozen) with its L1-only checkpoint (FACE_L1,
# the control rows' base), and v5 (the shipped 256² model), against bicubic, the SR fallback and the
# tuned unsharp-mask / grain controls, on FFHQ val/ at both reference levels and on the real dev
# faces; issue 29's tiers checked per model (models/face/evaluate.py). Needs `make face-data`.
FACE_MODEL ?= models/unblur-face/candidates/unblur-face-512-run13-noise-step970.fp16.pt
FACE_L1 ?= $(wildcard models/unblur-face/candidates/unblur-face-512-l1.fp16.pt)
eval-face:
	$(PY) models/face/evaluate.py --model $(FACE_MODEL) --name unblur-face-512 $(if $(FACE_L1),--l1-model $(FACE_L1)) \
		--model models/unblur-face/unblur-face-s.onnx --name v5 \
		--json models/unblur-face/candidates/eval512.json --grid-docs docs/face-grid-512.jpg --threads 2 \
		--report README.md

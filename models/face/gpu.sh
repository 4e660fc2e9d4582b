#!/usr/bin/env bash
# The one prepared command for a lent GPU machine (issue 29: 15 minutes of device time in all, one
# command of at most 10, no PyPI there): unpack the carried face pack, go on training the 512² face
# model for FACE_GPU_MINUTES with FACE_RECIPE from its generator (train512.py's RECIPES: run 13's,
# as `make train-face`, the GAN from the first step; FACE_INIT names another start), check itself
# in its first 30 s (train512 --self-check: exit 3 if it is not sane), and write the generator
# (fp16) and the log to $OUT every minute, the ONNX at the end. Bring the files back under
# models/unblur-face/candidates/ by hand.
#
#   python3 models/face/pack.py                       # here, once: 50 MiB of AVIF + fits (+ ~12 MiB of tree ≤ 64)
#   run(command="OUT=$OUT bash models/face/gpu.sh", carry=["models/build/faces512/pack"], timeout_s=540)
#
# Tested on CPU first: OUT=/tmp/gpu-out FACE_GPU_MINUTES=0.4 FACE_SELF_CHECK=10 bash models/face/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT}"
minutes="${FACE_GPU_MINUTES:-6.5}"
check="${FACE_SELF_CHECK:-30}"
pack="${FACE_PACK:-models/build/faces512/pack}"
work="${TMPDIR:-/tmp}/unblur-faces512"
recipe="${FACE_RECIPE:-texture}"
init=(); [ -n "${FACE_INIT:-}" ] && init=(--init-gen "$FACE_INIT")
mkdir -p "$OUT"

# What this machine has: torch (CUDA or not), Pillow that reads the pack's format, and the
# optional parts (onnx2torch for the landmark loss, onnxruntime for the validation's YuNet).
python3 - "$pack" <<'EOF' || { echo "gpu.sh: this machine cannot run the training (above)" >&2; exit 3; }
import json, sys
from pathlib import Path
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
from PIL import Image, features
pack = Path(sys.argv[1])
first = json.loads((pack / "index.json").read_text())["faces"][0]["file"]
with Image.open(pack / "faces" / first) as im:  # AVIF needs Pillow ≥ 11.3 (or pillow-avif)
    print("Pillow decodes the pack:", first, im.size)
EOF
lmk=0.3
python3 -c "import onnx2torch" 2>/dev/null || { lmk=0; echo "gpu.sh: no onnx2torch here: the landmark loss is off"; }
score=16
python3 -c "import onnxruntime" 2>/dev/null || { score=0; echo "gpu.sh: no onnxruntime here: no validation scoring"; }

python3 models/face/pack.py --unpack "$pack" --out "$work"
batch=32; workers=12
python3 -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { batch=1; workers=0; }
python3 models/face/train512.py --data "$work" --out "$work/run" --copy-to "$OUT" --recipe "$recipe" "${init[@]}" \
  --minutes "$minutes" --batch "$batch" --workers "$workers" --ckpt-minutes 1 \
  --val-minutes 3 --val-n 16 --val-score-n "$score" --lmk-weight "$lmk" --self-check "$check" | tee "$OUT/train.out"
cp "$work/run/face.onnx" "$OUT/face.onnx"
ls -la "$OUT"

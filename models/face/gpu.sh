#!/usr/bin/env bash
# The one prepared command for the GPU machine (an H200, 15 minutes of device time in all, one
# command of at most 10): unpack the carried faces, train for FACE_GPU_MINUTES with the GAN,
# check itself in its first 30 s (loss falling, throughput printed: exit 3 otherwise), and write
# the generator (fp16) and the log to $OUT every minute, the ONNX at the end.
#
#   run(command="bash models/face/gpu.sh", carry=["models/build/faces/pack"], timeout_s=540)
#
# Tested on CPU first with: OUT=/tmp/gpu-out FACE_GPU_MINUTES=0.5 bash models/face/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:?set OUT}"
minutes="${FACE_GPU_MINUTES:-6.5}"
work="${TMPDIR:-/tmp}/unblur-faces"
mkdir -p "$OUT"
check="${FACE_SELF_CHECK:-30}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -m pip install -q onnx onnxruntime pillow 2>/dev/null || true
python3 models/face/pack.py --unpack models/build/faces/pack --out "$work"
batch=32; workers=14; crop=256
python3 -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { batch=4; workers=1; crop=128; }
python3 models/face/train.py --data "$work" --out "$work/run" --copy-to "$OUT" --minutes "$minutes" \
  --batch "$batch" --crop "$crop" --workers "$workers" --ckpt-minutes 1 --gan-start 0.3 --gan-weight 0.05 --fm-weight 0.3 --d-warmup 200 \
  --self-check "$check" --heldout-n 8 | tee "$OUT/train.out"
cp "$work/run/face.onnx" "$OUT/face.onnx"
[ -f "$work/run/face_l1.onnx" ] && cp "$work/run/face_l1.onnx" "$OUT/face_l1.onnx"
ls -la "$OUT"

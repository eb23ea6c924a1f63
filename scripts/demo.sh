#!/usr/bin/env bash
# The README's main job: import the bundled example model, run it on a sample input and compare
# with ONNX Runtime, then `perch demo`: start one local test device (a real sshd), deploy the
# model to it over SSH (pack, sign, upload, install), print the latency table, stop the device.
# Usage: scripts/demo.sh [PERCH_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
PERCH="${1:-.build/release/perch}"
OUT=out/demo
mkdir -p "$OUT"
echo "== perch import examples/tiny-cnn.onnx"
"$PERCH" import examples/tiny-cnn.onnx -o "$OUT/tiny-cnn.perchm"
echo "== perch run (sample input → $OUT/outputs)"
"$PERCH" run "$OUT/tiny-cnn.perchm" --input image=examples/tiny-cnn-input.npy --output-dir "$OUT/outputs"
PY=.venv/bin/python3
[[ -x $PY ]] || PY=python3
"$PY" - "$OUT/outputs/probabilities.npy" examples/tiny-cnn-expected-ort.npy <<'PYEOF'
import sys, numpy as np
y, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
np.set_printoptions(precision=4, suppress=True)
print("probabilities:", y.reshape(-1))
print("top class: %d (p=%.4f); ONNX Runtime agrees: %s, max |diff| %.2e"
      % (int(y.argmax()), float(y.max()), bool(y.argmax() == ref.argmax()), float(np.abs(y - ref).max())))
PYEOF
echo "== perch bench"
"$PERCH" bench "$OUT/tiny-cnn.perchm" --runs 200 --warmup 20
echo "== perch demo (deploy to a local test device over SSH)"
"$PERCH" demo

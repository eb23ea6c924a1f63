#!/usr/bin/env bash
# Wall time of `perch optimize` on a ≈ 10 MB model (MobileNet v1 0.75, 224×224, from
# bench/make_models.py) with 64 calibration samples, the eval set = the calibration set, all cores
# (issue 4's target: ≤ 60 s on 2 cores). Prints the model size, the wall time and the report's
# per-step seconds.
# Usage: bench/optimize_time.sh [PERCH_BINARY] [SAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
PERCH="${1:-.build/release/perch}"
N="${2:-64}"
PY=python3; [ -x .venv/bin/python3 ] && PY=.venv/bin/python3
[ -f bench/models/mobilenet-v1-075.onnx ] || "$PY" bench/make_models.py bench/models >/dev/null
TMP=$(mktemp -d /tmp/perch-optimize-time.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/calib"
"$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(3).random(($N, 1, 3, 224, 224), dtype=np.float32))" "$TMP/calib/input.npy"
t0=$(date +%s.%N)
"$PERCH" optimize bench/models/mobilenet-v1-075.onnx --profile rpi4 --calibration "$TMP/calib" \
  -o "$TMP/m.perchm" --report "$TMP/report.json" --max-accuracy-drop 1 >/dev/null 2>"$TMP/err" || { cat "$TMP/err"; exit 1; }
t1=$(date +%s.%N)
"$PY" - "$t0" "$t1" "$TMP/report.json" bench/models/mobilenet-v1-075.onnx "$N" <<'PY'
import json, os, sys
t0, t1, rep, model, n = float(sys.argv[1]), float(sys.argv[2]), json.load(open(sys.argv[3])), sys.argv[4], sys.argv[5]
steps = ", ".join("%s %.1f s" % (k, v) for k, v in rep.get("step_seconds", {}).items()) if isinstance(rep.get("step_seconds"), dict) \
    else ", ".join("%s %.1f s" % (s["step"], s["seconds"]) for s in rep.get("step_seconds", []))
print("perch optimize: %.1f MB model, %s calibration samples, %d cores: %.1f s wall (target <= 60 s); %s"
      % (os.path.getsize(model) / 1e6, n, os.cpu_count(), t1 - t0, steps))
PY

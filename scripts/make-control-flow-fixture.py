#!/usr/bin/env python3
"""Builds the control-flow fixture (If and Loop with body graphs reading outer values) and ONNX
Runtime's outputs for two inputs.

Writes into examples/control-flow/ (small, committed):
  control-flow.onnx   input x [4, 32]:
                      - a Loop over the rows of x (M = 4): h = tanh(h·W + x[i]), reading W and x
                        from the outer graph; outputs the last h and every h (scan output)
                      - a Loop with M = rows of x whose body does not read its iteration number:
                        acc = 0.5·acc + mean(x) — the kind Perch plans once
                      - an If on sum(x) > 0 (a condition computed from data): 2·h or −h
                      - a Scan over the columns of x from last to first (axis 1, reversed):
                        s = s + column, every 2·s stacked along axis 1
  input-{pos,neg}.npy                 two inputs, one for each If branch
  expected-{pos,neg}-{name}.npy       ONNX Runtime's outputs (h, hs, acc, accs, branch,
                                      scan_sum, scan_seq)

Run: python3 scripts/make-control-flow-fixture.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "examples", "control-flow")
OUTPUTS = ["h", "hs", "acc", "accs", "branch", "scan_sum", "scan_seq"]


def t(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def build(rng):
    n = helper.make_node
    rnn_body = helper.make_graph(
        [
            n("Gather", ["x", "i"], ["xi"], axis=0),
            n("Unsqueeze", ["xi", "axis0"], ["xrow"]),
            n("MatMul", ["h_in", "W"], ["hw"]),
            n("Add", ["hw", "xrow"], ["pre"]),
            n("Tanh", ["pre"], ["h_out"]),
            n("Identity", ["cond_in"], ["cond_out"]),
            n("Identity", ["h_out"], ["h_scan"]),
        ],
        "rnn_body",
        [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("h_in", TensorProto.FLOAT, [1, 32])],
        [vi("cond_out", TensorProto.BOOL, []), vi("h_out", TensorProto.FLOAT, [1, 32]), vi("h_scan", TensorProto.FLOAT, [1, 32])],
        [t("axis0", np.array([0], np.int64))])
    acc_body = helper.make_graph(
        [
            n("Mul", ["acc_in", "half"], ["decayed"]),
            n("Add", ["decayed", "xmean"], ["acc_out"]),
            n("Identity", ["acc_out"], ["acc_scan"]),
        ],
        "acc_body",
        [vi("j", TensorProto.INT64, []), vi("c", TensorProto.BOOL, []), vi("acc_in", TensorProto.FLOAT, [1])],
        [vi("c", TensorProto.BOOL, []), vi("acc_out", TensorProto.FLOAT, [1]), vi("acc_scan", TensorProto.FLOAT, [1])],
        [t("half", np.array([0.5], np.float32))])
    then_branch = helper.make_graph([n("Mul", ["h", "two"], ["doubled"])], "then",
                                    [], [vi("doubled", TensorProto.FLOAT, [1, 32])], [t("two", np.array(2, np.float32))])
    else_branch = helper.make_graph([n("Neg", ["h"], ["negated"])], "else", [], [vi("negated", TensorProto.FLOAT, [1, 32])])
    scan_body = helper.make_graph(
        [n("Add", ["s_in", "column"], ["s_out"]), n("Mul", ["s_out", "two_s"], ["s_scan"])],
        "scan_body",
        [vi("s_in", TensorProto.FLOAT, [4]), vi("column", TensorProto.FLOAT, [4])],
        [vi("s_out", TensorProto.FLOAT, [4]), vi("s_scan", TensorProto.FLOAT, [4])],
        [t("two_s", np.array(2, np.float32))])
    nodes = [
        n("Loop", ["M", "true", "h0"], ["h", "hs"], body=rnn_body),
        n("ReduceMean", ["x"], ["xmean"], keepdims=0, axes=[0, 1]),
        n("Shape", ["x"], ["xshape"]),
        n("Gather", ["xshape", "zero"], ["rows"], axis=0),
        n("Loop", ["rows", "", "acc0"], ["acc", "accs"], body=acc_body),
        n("ReduceSum", ["x"], ["total"], keepdims=0),
        n("Greater", ["total", "zero_f"], ["positive"]),
        n("If", ["positive"], ["branch"], then_branch=then_branch, else_branch=else_branch),
        n("Scan", ["s0", "x"], ["scan_sum", "scan_seq"], body=scan_body, num_scan_inputs=1,
          scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[1]),
    ]
    inits = [
        t("W", (rng.standard_normal((32, 32)) * 0.5).astype(np.float32)),
        t("M", np.array(4, np.int64)),
        t("true", np.array(True)),
        t("h0", np.zeros((1, 32), np.float32)),
        t("acc0", np.zeros(1, np.float32)),
        t("zero", np.array(0, np.int64)),
        t("zero_f", np.array(0, np.float32)),
        t("s0", np.zeros(4, np.float32)),
    ]
    graph = helper.make_graph(
        nodes, "control-flow", [vi("x", TensorProto.FLOAT, [4, 32])],
        [vi("h", TensorProto.FLOAT, [1, 32]), vi("hs", TensorProto.FLOAT, [4, 1, 32]), vi("acc", TensorProto.FLOAT, [1]),
         vi("accs", TensorProto.FLOAT, [4, 1]), vi("branch", TensorProto.FLOAT, [1, 32]),
         vi("scan_sum", TensorProto.FLOAT, [4]), vi("scan_seq", TensorProto.FLOAT, [4, 32])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="perch-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(11)
    model = build(rng)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx.save(model, os.path.join(OUT, "control-flow.onnx"))
    x = rng.standard_normal((4, 32)).astype(np.float32)
    for tag, value in [("pos", np.abs(x)), ("neg", -np.abs(x))]:
        np.save(os.path.join(OUT, "input-" + tag + ".npy"), value)
        for name, out in zip(OUTPUTS, sess.run(OUTPUTS, {"x": value})):
            np.save(os.path.join(OUT, "expected-" + tag + "-" + name + ".npy"), out)
    print("wrote", OUT)


if __name__ == "__main__":
    main()

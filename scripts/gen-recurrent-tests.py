#!/usr/bin/env python3
"""Generates Tests/PerchEngineTests/RecurrentTests.swift: GRU, RNN and LSTM cases whose expected
outputs come from a numpy implementation of the ONNX formulas written here (float64 on float32
inputs), each also checked against ONNX Runtime before it is written.

Inputs are a formula both sides compute exactly (`pattern(count, seed)`: element i is
((7·i + 13·seed) mod 19 − 9) / 12), so only the expected outputs are literals.
Usage: scripts/gen-recurrent-tests.py [OUT.swift]
"""
import sys
import numpy as np
import onnx
from onnx import helper, TensorProto
import onnxruntime as ort

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/PerchEngineTests/RecurrentTests.swift"


def pattern(count, seed):
    i = np.arange(count, dtype=np.int64)
    return (((7 * i + 13 * seed) % 19 - 9) / 12.0).astype(np.float32)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# Alpha / beta use and defaults as RecurrentActivation documents them.
ACTS = {
    "Sigmoid": (0, 0, None, None, lambda x, a, b: sigmoid(x)),
    "Tanh": (0, 0, None, None, lambda x, a, b: np.tanh(x)),
    "Relu": (0, 0, None, None, lambda x, a, b: np.maximum(x, 0)),
    "Softsign": (0, 0, None, None, lambda x, a, b: x / (1 + np.abs(x))),
    "Softplus": (0, 0, None, None, lambda x, a, b: np.log1p(np.exp(x))),
    "LeakyRelu": (1, 0, 0.01, None, lambda x, a, b: np.where(x >= 0, x, a * x)),
    "ThresholdedRelu": (1, 0, 1.0, None, lambda x, a, b: np.where(x >= a, x, 0)),
    "Elu": (1, 0, 1.0, None, lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1))),
    "HardSigmoid": (1, 1, 0.2, 0.5, lambda x, a, b: np.clip(a * x + b, 0, 1)),
    "Affine": (1, 1, 1.0, 0.0, lambda x, a, b: a * x + b),
    "ScaledTanh": (1, 1, 1.0, 1.0, lambda x, a, b: a * np.tanh(b * x)),
}


def activation_funcs(names, alphas, betas):
    alphas, betas = list(alphas or []), list(betas or [])
    out = []
    for n in names:
        na, nb, da, db, fn = ACTS[n]
        a = (alphas.pop(0) if alphas else da) if na else None
        b = (betas.pop(0) if betas else db) if nb else None
        out.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
    return out


GATES = {"GRU": 3, "RNN": 1, "LSTM": 4}
DEFAULT_ACTS = {"GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def inputs_of(c):
    """The op's inputs as float32/int32 arrays, from `pattern` (seeds 1…)."""
    dirs = 2 if c["direction"] == "bidirectional" else 1
    S, B, I, H, g = c["seq"], c["batch"], c["input"], c["hidden"], GATES[c["op"]]
    xs = [S, B, I] if c["layout"] == 0 else [B, S, I]
    ss = [dirs, B, H] if c["layout"] == 0 else [B, dirs, H]
    t = {"X": pattern(np.prod(xs), 1).reshape(xs), "W": pattern(dirs * g * H * I, 2).reshape(dirs, g * H, I),
         "R": pattern(dirs * g * H * H, 3).reshape(dirs, g * H, H)}
    if c.get("bias"): t["B"] = pattern(dirs * 2 * g * H, 4).reshape(dirs, 2 * g * H)
    if c.get("lens") is not None: t["sequence_lens"] = np.array(c["lens"], dtype=np.int32)
    if c.get("h0"): t["initial_h"] = pattern(np.prod(ss), 5).reshape(ss)
    if c.get("c0"): t["initial_c"] = pattern(np.prod(ss), 6).reshape(ss)
    if c.get("peep"): t["P"] = pattern(dirs * 3 * H, 7).reshape(dirs, 3 * H)
    return t


def reference(c, t):
    op, dirs = c["op"], 2 if c["direction"] == "bidirectional" else 1
    S, B, H = c["seq"], c["batch"], c["hidden"]
    f64 = lambda k: t[k].astype(np.float64) if k in t else None
    X = f64("X") if c["layout"] == 0 else f64("X").transpose(1, 0, 2)
    h0 = f64("initial_h"); c0 = f64("initial_c")
    if c["layout"] == 1:
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    names = c.get("activations") or DEFAULT_ACTS[op] * dirs
    if len(names) == len(DEFAULT_ACTS[op]) and dirs == 2: names = names * 2
    acts = activation_funcs(names, c.get("alpha"), c.get("beta"))
    k = len(DEFAULT_ACTS[op])
    clip = c.get("clip")
    cl = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    Y = np.zeros((S, dirs, B, H)); Yh = np.zeros((dirs, B, H)); Yc = np.zeros((dirs, B, H))
    g = GATES[op]
    for d in range(dirs):
        W, R = f64("W")[d], f64("R")[d]
        Bv = f64("B")[d] if "B" in t else np.zeros(2 * g * H)
        Wb, Rb = Bv[:g * H], Bv[g * H:]
        fa = acts[d * k:(d + 1) * k]
        rev = c["direction"] == "reverse" or d == 1
        for b in range(B):
            L = S if "sequence_lens" not in t else int(t["sequence_lens"][b])
            h = h0[d, b].copy() if h0 is not None else np.zeros(H)
            cs = c0[d, b].copy() if c0 is not None else np.zeros(H)
            for step in range(L):
                tt = L - 1 - step if rev else step
                x = X[tt, b]
                if op == "RNN":
                    h = fa[0](cl(x @ W.T + h @ R.T + Wb + Rb))
                elif op == "GRU":
                    Wz, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
                    Rz, Rr, Rh = R[:H], R[H:2 * H], R[2 * H:]
                    z = fa[0](cl(x @ Wz.T + h @ Rz.T + Wb[:H] + Rb[:H]))
                    r = fa[0](cl(x @ Wr.T + h @ Rr.T + Wb[H:2 * H] + Rb[H:2 * H]))
                    if c.get("lbr"):
                        hh = fa[1](cl(x @ Wh.T + r * (h @ Rh.T + Rb[2 * H:]) + Wb[2 * H:]))
                    else:
                        hh = fa[1](cl(x @ Wh.T + (r * h) @ Rh.T + Rb[2 * H:] + Wb[2 * H:]))
                    h = (1 - z) * hh + z * h
                else:
                    P = f64("P")[d] if "P" in t else np.zeros(3 * H)
                    pre = x @ W.T + h @ R.T + Wb + Rb
                    gi, go, gf, gc = pre[:H], pre[H:2 * H], pre[2 * H:3 * H], pre[3 * H:]
                    i = fa[0](cl(gi + P[:H] * cs)); f = fa[0](cl(gf + P[2 * H:] * cs))
                    cs = f * cs + i * fa[1](cl(gc))
                    o = fa[0](cl(go + P[H:2 * H] * cs))
                    h = o * fa[2](cs)
                Y[tt, d, b] = h
            Yh[d, b] = h; Yc[d, b] = cs
    if c["layout"] == 1:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return [Y, Yh, Yc][:3 if op == "LSTM" else 2]


ORDER = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]


def onnx_runtime(c, t):
    """ONNX Runtime's outputs; it runs only layout 0, so layout 1 goes through transposes."""
    if c["layout"] == 1:
        t0 = dict(t)
        for k in ["X", "initial_h", "initial_c"]:
            if k in t0: t0[k] = np.ascontiguousarray(t0[k].transpose(1, 0, 2))
        outs = onnx_runtime(dict(c, layout=0), t0)
        return [outs[0].transpose(2, 0, 1, 3)] + [o.transpose(1, 0, 2) for o in outs[1:]]
    op = c["op"]
    names = ORDER[:8 if op == "LSTM" else 6]
    last = max(i for i, n in enumerate(names) if n in t)
    ins = [n if n in t else "" for n in names[:last + 1]]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    attrs = {"hidden_size": c["hidden"], "direction": c["direction"], "layout": c["layout"]}
    if op == "GRU": attrs["linear_before_reset"] = int(c.get("lbr", 0))
    for k, a in [("activations", "activations"), ("alpha", "activation_alpha"), ("beta", "activation_beta"), ("clip", "clip")]:
        if c.get(k) is not None: attrs[a] = c[k]
    node = helper.make_node(op, ins, outs, **attrs)
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT, list(t[n].shape))
    graph = helper.make_graph([node], "g", [vi(n) for n in ins if n], [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: t[n] for n in ins if n})


CASES = [
    dict(name="GRUForwardBiasLengthsInitialState", op="GRU", seq=3, batch=2, input=2, hidden=3, direction="forward", layout=0,
         bias=True, lens=[3, 2], h0=True),
    dict(name="GRULinearBeforeReset", op="GRU", seq=3, batch=2, input=2, hidden=3, direction="forward", layout=0,
         bias=True, lens=[2, 3], h0=True, lbr=1),
    dict(name="GRUReverseLengths", op="GRU", seq=4, batch=3, input=2, hidden=3, direction="reverse", layout=0,
         bias=True, lens=[4, 1, 3]),
    dict(name="GRUBidirectionalLinearBeforeReset", op="GRU", seq=3, batch=2, input=3, hidden=2, direction="bidirectional",
         layout=0, bias=True, lens=[3, 2], h0=True, lbr=1),
    dict(name="GRUBidirectionalLayout1", op="GRU", seq=3, batch=2, input=2, hidden=3, direction="bidirectional", layout=1,
         bias=True, lens=[1, 3], h0=True),
    dict(name="GRUActivationsAndClip", op="GRU", seq=3, batch=2, input=2, hidden=3, direction="bidirectional", layout=0,
         bias=True, h0=True, activations=["HardSigmoid", "LeakyRelu", "Sigmoid", "ScaledTanh"],
         alpha=[0.3, 0.2, 1.5], beta=[0.4, 0.7], clip=0.9),
    dict(name="RNNForwardBiasLengthsInitialState", op="RNN", seq=3, batch=2, input=3, hidden=4, direction="forward", layout=0,
         bias=True, lens=[3, 1], h0=True),
    dict(name="RNNReverse", op="RNN", seq=4, batch=2, input=2, hidden=3, direction="reverse", layout=0, bias=True, lens=[2, 4]),
    dict(name="RNNBidirectionalLayout1Activations", op="RNN", seq=3, batch=2, input=2, hidden=3, direction="bidirectional",
         layout=1, bias=True, h0=True, lens=[3, 2], activations=["Relu", "Elu"], alpha=[0.5]),
    dict(name="RNNSoftsignSoftplusClip", op="RNN", seq=3, batch=2, input=2, hidden=3, direction="bidirectional", layout=0,
         bias=True, activations=["Softsign", "Softplus"], clip=0.6),
    dict(name="LSTMNonDefaultActivations", op="LSTM", seq=3, batch=2, input=2, hidden=3, direction="bidirectional", layout=0,
         bias=True, h0=True, c0=True, lens=[3, 2], activations=["HardSigmoid", "Affine", "Softsign", "Sigmoid", "Tanh", "Tanh"],
         alpha=[0.25, 0.8], beta=[0.45, 0.1]),
]


def lit(a):
    return "[" + ", ".join(repr(float(np.float32(v))) for v in np.asarray(a).reshape(-1)) + "]"


def swift_case(c, outs):
    dirs = 2 if c["direction"] == "bidirectional" else 1
    g = GATES[c["op"]]
    attrs = ['"hidden_size": .int(%d)' % c["hidden"], '"direction": .string("%s")' % c["direction"], '"layout": .int(%d)' % c["layout"]]
    if c["op"] == "GRU": attrs.append('"linear_before_reset": .int(%d)' % int(c.get("lbr", 0)))
    if c.get("activations"): attrs.append('"activations": .strings([%s])' % ", ".join('"%s"' % a for a in c["activations"]))
    if c.get("alpha"): attrs.append('"activation_alpha": .floats(%s)' % lit(c["alpha"]))
    if c.get("beta"): attrs.append('"activation_beta": .floats(%s)' % lit(c["beta"]))
    if c.get("clip") is not None: attrs.append('"clip": .float(%r)' % float(np.float32(c["clip"])))
    lines = ["    func test%s() throws {" % c["name"]]
    lines.append("        try check(.%s, seq: %d, batch: %d, input: %d, hidden: %d, directions: %d, gates: %d, layout: %d," % (
        c["op"].lower(), c["seq"], c["batch"], c["input"], c["hidden"], dirs, g, c["layout"]))
    lines.append("                  bias: %s, lengths: %s, initialH: %s, initialC: %s," % (
        "true" if c.get("bias") else "false", "[%s]" % ", ".join(map(str, c["lens"])) if c.get("lens") is not None else "nil",
        "true" if c.get("h0") else "false", "true" if c.get("c0") else "false"))
    lines.append("                  attributes: [%s]," % ", ".join(attrs))
    lines.append("                  expected: [")
    for o in outs:
        lines.append("                      %s," % lit(o))
    lines.append("                  ])")
    lines.append("    }")
    return "\n".join(lines)


HEADER = '''// Generated by scripts/gen-recurrent-tests.py — do not edit; rerun the script instead.
import PerchEngine
import PerchGraph
import XCTest

/// GRU, RNN and LSTM against a numpy implementation of the ONNX formulas (each case also checked
/// against ONNX Runtime when generated): linear_before_reset 0 and 1, reverse, bidirectional,
/// layout 1, sequence_lens, initial states, non-default activations with alpha/beta, clip. Every
/// case runs with R a constant (packed once at prepare) and with R known only at run time.
final class RecurrentTests: XCTestCase {
    /// Element i is ((7·i + 13·seed) mod 19 − 9) / 12, as the generator computes it.
    func pattern(_ shape: [Int], _ seed: Int) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<count).map { i in Float(((7 * i + 13 * seed) % 19) - 9) / 12 })
    }

    func check(_ op: OpType, seq: Int, batch: Int, input: Int, hidden: Int, directions dirs: Int, gates: Int, layout: Int,
               bias: Bool, lengths: [Int32]?, initialH: Bool, initialC: Bool, attributes: [String: Attribute],
               expected: [[Float]], file: StaticString = #filePath, line: UInt = #line) throws {
        let state = layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden]
        var inputs: [(String, Tensor)] = [
            ("X", pattern(layout == 0 ? [seq, batch, input] : [batch, seq, input], 1)),
            ("W", pattern([dirs, gates * hidden, input], 2)), ("R", pattern([dirs, gates * hidden, hidden], 3)),
        ]
        let empty = Tensor(shape: [0], values: [Float]())
        inputs.append(bias ? ("B", pattern([dirs, 2 * gates * hidden], 4)) : ("", empty))
        inputs.append(lengths.map { ("L", Tensor(shape: [batch], values: $0)) } ?? ("", empty))
        inputs.append(initialH ? ("H0", pattern(state, 5)) : ("", empty))
        if op == .lstm { inputs.append(initialC ? ("C0", pattern(state, 6)) : ("", empty)) }
        while inputs.last?.0 == "" { inputs.removeLast() }
        let yShape = layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]
        let outputs = op == .lstm ? ["Y", "Yh", "Yc"] : ["Y", "Yh"]
        for constantR in [true, false] {
            var constants = [String: Tensor]()
            for (name, t) in inputs where name == "W" || name == "B" || (constantR && name == "R") { constants[name] = t }
            let got = try runSingleNode(op, inputs: inputs, constants: constants, outputs: outputs, attributes: attributes)
            for (k, values) in expected.enumerated() {
                assertClose(got[k], Tensor(shape: k == 0 ? yShape : state, values: values), rtol: 1e-5, atol: 2e-6, file: file, line: line)
            }
        }
    }
'''


def main():
    body = []
    for c in CASES:
        t = inputs_of(c)
        ref = reference(c, t)
        got = onnx_runtime(c, t)
        for r, o in zip(ref, got):
            assert r.shape == o.shape, (c["name"], r.shape, o.shape)
            err = np.abs(r - o).max()
            assert err < 1e-5, (c["name"], err)
        print("%-40s max |numpy - ORT| %.2g" % (c["name"], max(np.abs(r - o).max() for r, o in zip(ref, got))))
        body.append(swift_case(c, ref))
    with open(OUT, "w") as f:
        f.write(HEADER + "\n" + "\n\n".join(body) + "\n}\n")


main()

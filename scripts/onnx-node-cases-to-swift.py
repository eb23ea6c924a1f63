#!/usr/bin/env python3
"""Turns small ONNX node test cases (testdata/onnx-node/<case>/) into XCTest functions with the
inputs and expected outputs pasted as literals, so the engine's tests carry ONNX's own expected
values without needing the importer or the test data at test time.

Usage: onnx-node-cases-to-swift.py CLASS OPS[,OPS] OUT.swift [--root DIR] [--skip a,b] [--max N]
"""
import argparse, os, sys
import numpy as np
import onnx
from onnx import numpy_helper

SWIFT_OP = {"Conv": ".conv", "ConvTranspose": ".convTranspose", "Gemm": ".gemm", "MatMul": ".matMul",
            "MaxPool": ".maxPool", "AveragePool": ".averagePool", "GlobalAveragePool": ".globalAveragePool",
            "GlobalMaxPool": ".globalMaxPool", "Resize": ".resize", "Upsample": ".resize"}
# Inputs that must be known at prepare time (fed as initializers).
CONSTANT_INPUTS = {"Resize": {1, 2, 3}, "Upsample": {1}}

def num(x, dt):
    if np.issubdtype(dt, np.floating):
        x = np.float32(x) if dt == np.float32 else float(x)
        if np.isnan(x): return ".nan"
        if np.isinf(x): return "-.infinity" if x < 0 else ".infinity"
        s = np.format_float_positional(x, unique=True, trim="-")
        return s
    return str(int(x))

def tensor(a):
    a = np.asarray(a)
    shape = "[" + ", ".join(str(d) for d in a.shape) + "]"
    vals = ", ".join(num(v, a.dtype) for v in a.ravel())
    swift_t = {np.float32: "Float", np.float64: "Double", np.int64: "Int64", np.int32: "Int32",
               np.uint8: "UInt8", np.int8: "Int8"}[a.dtype.type]
    if a.size == 0:
        return f"Tensor(shape: {shape}, values: [] as [{swift_t}])"
    return f"Tensor(shape: {shape}, values: [{vals}] as [{swift_t}])"

def attr(a):
    t = a.type
    if t == onnx.AttributeProto.INT: return f".int({a.i})"
    if t == onnx.AttributeProto.FLOAT: return f".float({num(a.f, np.float32)})"
    if t == onnx.AttributeProto.STRING: return f'.string("{a.s.decode()}")'
    if t == onnx.AttributeProto.INTS: return ".ints([" + ", ".join(str(i) for i in a.ints) + "])"
    if t == onnx.AttributeProto.FLOATS: return ".floats([" + ", ".join(num(f, np.float32) for f in a.floats) + "])"
    raise ValueError(f"attribute type {t}")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cls"); ap.add_argument("ops"); ap.add_argument("out")
    ap.add_argument("--root", default="/work/main/testdata/onnx-node")
    ap.add_argument("--skip", default="")
    ap.add_argument("--max", type=int, default=3000)
    args = ap.parse_args()
    ops = set(args.ops.split(","))
    skip = set(s for s in args.skip.split(",") if s)
    funcs = []
    for case in sorted(os.listdir(args.root)):
        if case in skip: continue
        d = os.path.join(args.root, case)
        mp = os.path.join(d, "model.onnx")
        if not os.path.exists(mp): continue
        m = onnx.load(mp)
        if len(m.graph.node) != 1 or m.graph.node[0].op_type not in ops: continue
        node = m.graph.node[0]
        opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13)
        ds = os.path.join(d, "test_data_set_0")
        ins, outs = [], []
        for i in range(len(m.graph.input)):
            t = onnx.TensorProto(); t.ParseFromString(open(os.path.join(ds, f"input_{i}.pb"), "rb").read())
            ins.append(numpy_helper.to_array(t))
        for i in range(len(m.graph.output)):
            t = onnx.TensorProto(); t.ParseFromString(open(os.path.join(ds, f"output_{i}.pb"), "rb").read())
            outs.append(numpy_helper.to_array(t))
        if sum(a.size for a in ins + outs) > args.max: continue
        graph_inputs = [gi.name for gi in m.graph.input]
        attrs = {a.name: attr(a) for a in node.attribute}
        op = node.op_type
        if op == "Upsample":
            # The importer's rewrite: Resize(X, "", scales) with _upsample=1.
            attrs["_upsample"] = ".int(1)"
            node_inputs = [node.input[0], "", node.input[1]]
        else:
            node_inputs = list(node.input)
        attrs["_opset"] = f".int({opset})"
        consts = CONSTANT_INPUTS.get(op, set()) if op != "Upsample" else set()
        lines = [f"    func test_{case[5:] if case.startswith('test_') else case}() throws {{"]
        lines.append("        // ONNX node test case " + case + " (opset " + str(opset) + ")")
        in_items, const_items = [], []
        for idx, name in enumerate(node_inputs):
            if name == "":
                in_items.append('("", Tensor(dtype: .f32, shape: [0]))')
                continue
            a = ins[graph_inputs.index(name)]
            lines.append(f"        let in{idx} = {tensor(a)}")
            in_items.append(f'("{name}", in{idx})')
            if idx in consts or (op == "Upsample" and idx == 2):
                const_items.append(f'"{name}": in{idx}')
        out_names = [o for o in node.output]
        attr_text = ", ".join(f'"{k}": {v}' for k, v in sorted(attrs.items()))
        const_text = "[" + ", ".join(const_items) + "]" if const_items else "[:]"
        lines.append(f"        let y = try runSingleNode({SWIFT_OP[op]}, inputs: [{', '.join(in_items)}], constants: {const_text},")
        lines.append(f"                                  outputs: [{', '.join(chr(34) + o + chr(34) for o in out_names)}], attributes: [{attr_text}])")
        for i, o in enumerate(outs):
            lines.append(f"        let e{i} = {tensor(o)}")
            if np.issubdtype(o.dtype, np.floating):
                lines.append(f"        assertClose(y[{i}], e{i}, rtol: 1e-4, atol: 1e-4)")
            else:
                lines.append(f"        XCTAssertEqual(y[{i}].shape, e{i}.shape)")
                lines.append(f"        XCTAssertEqual(y[{i}].int64s, e{i}.int64s)")
        lines.append("    }")
        funcs.append("\n".join(lines))
    with open(args.out, "w") as f:
        f.write("// Generated by scripts/onnx-node-cases-to-swift.py from ONNX's node test cases; do not edit.\n")
        f.write("import PerchEngine\nimport PerchGraph\nimport XCTest\n\n")
        f.write(f"final class {args.cls}: XCTestCase {{\n")
        f.write("\n\n".join(funcs))
        f.write("\n}\n")
    print(f"{len(funcs)} cases -> {args.out}")

main()

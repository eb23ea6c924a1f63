import CPerchShims
import PerchGraph

/// Options of a `Session`.
/// The graph pass that turns a QDQ model (as ONNX Runtime's `quantize_static` with
/// `QuantFormat.QDQ` writes it) into Perch's integer execution. Applied by `Session.init` when
/// `SessionOptions.fuseQuantized` is on (the default). Patterns, each replaced by one node that
/// reads the quantized input and writes the quantized output directly:
///
/// - DQ(x) → Conv(DQ(w), [bias]) → [Relu | Clip] → Q  ⇒ QLinearConv (int32 bias, `_qmin`/`_qmax`)
/// - DQ(x) → MatMul(DQ(w)) / Gemm(DQ(w), [bias]) → [Relu | Clip] → Q  ⇒ QLinearMatMul
/// - DQ(a) → MatMul(DQ(b)) → [Relu | Clip] → Q with b computed at run time (attention) ⇒ QLinearMatMul
/// - DQ(a), DQ(b) → Add | Mul → Q  ⇒ QLinearAdd | QLinearMul
/// - DQ(x) → GlobalAveragePool → Q  ⇒ QLinearGlobalAveragePool
/// - DQ(x) → Softmax → Q, uint8 in and out ⇒ QLinearSoftmax (ONNX Runtime fuses exactly these into
///   its table softmax, whose arithmetic the kernel follows; int8 stays float there and here)
/// - DQ(x) → Sigmoid | Tanh | HardSwish | HardSigmoid | Gelu | LeakyRelu | Relu → Q  ⇒ QLinearLookup
/// - DQ(x) → Reshape | Flatten | Transpose | Squeeze | Unsqueeze | MaxPool | Slice | Resize (nearest)
///   → Q with the same scale and zero point ⇒ the op on the quantized tensor
/// - DQ(x₁…xₙ) → Concat → Q ⇒ Concat of the quantized inputs (inputs with another scale first go
///   through an identity QLinearLookup, i.e. are requantized)
///
/// Requirements checked: weights (except that MatMul's) and all scales/zero points are constants, activations are
/// per-tensor, weights per-tensor or per output channel, the float intermediate has no other
/// reader and is not a graph output. Everything else is left as is and runs as fake-quant.
public enum QDQFusion {
    public static func apply(_ graph: inout Graph) {
        let uses = TensorUses(graph)
        let producer = uses.producer, readers = uses.readers
        var fusedOutputs: [String: Int] = [:]
        // Nodes a rewrite needs before the fused node (requantizing Concat inputs).
        var before: [Int: [Node]] = [:]
        for i in 0..<graph.nodes.count {
            var extra = [Node]()
            var result = fuse(graph.nodes[i], graph: &graph, producer: producer, readers: readers, extra: &extra)
            if result == nil { result = fuseElementwiseChain(graph.nodes[i], &graph, producer, readers) }
            if let fused = result {
                graph.nodes[i] = fused
                fusedOutputs[fused.outputs[0]] = i
                if !extra.isEmpty { before[i] = extra }
            }
        }
        if fusedOutputs.isEmpty { return }
        // The QuantizeLinear whose output the fused node now writes goes; the float op and its
        // Relu/Clip become unread and go with the dead nodes.
        var kept = [Node]()
        for (i, node) in graph.nodes.enumerated() {
            if let out = node.outputs.first, let owner = fusedOutputs[out], owner != i { continue }
            if let extra = before[i] { kept += extra }
            kept.append(node)
        }
        graph.nodes = kept
        graph.removeDeadNodes()
    }

    // MARK: Pattern pieces

    struct DQ {
        var input: String
        var scale: String
        var zero: String
        var axis: Int
    }

    /// The DequantizeLinear producing `name`, if its scale and zero point are constants.
    static func dequantized(_ name: String, _ g: Graph, _ producer: [String: Int]) -> DQ? {
        guard let p = producer[name] else { return nil }
        let n = g.nodes[p]
        guard n.op == .dequantizeLinear, n.inputs.count >= 3, let s = g.initializers[n.inputs[1]], let z = g.initializers[n.inputs[2]],
              s.dtype == .f32, z.dtype == .u8 || z.dtype == .i8 || (z.dtype == .i32 && s.count >= 1) else { return nil }
        return DQ(input: n.inputs[0], scale: n.inputs[1], zero: n.inputs[2], axis: n.attributes.int("axis", default: 1))
    }

    /// The only reader of `name`, when it has exactly one and is not a graph output.
    static func soleReader(_ name: String, _ g: Graph, _ readers: [String: Int]) -> Node? {
        guard readers[name] == 1 else { return nil }
        for n in g.nodes where n.inputs.contains(name) { return n }
        return nil
    }

    struct Q {
        var output: String
        var scale: String
        var zero: String
    }

    static func quantizedBy(_ node: Node, _ g: Graph) -> Q? {
        guard node.op == .quantizeLinear, node.inputs.count >= 3, let s = g.initializers[node.inputs[1]], s.count == 1,
              let z = g.initializers[node.inputs[2]], z.dtype == .u8 || z.dtype == .i8 else { return nil }
        return Q(output: node.outputs[0], scale: node.inputs[1], zero: node.inputs[2])
    }

    static func isPerTensor(_ dq: DQ, _ g: Graph) -> Bool {
        g.initializers[dq.scale]!.count == 1 && g.initializers[dq.zero]!.dtype != .i32
    }

    /// The DequantizeLinear and the QuantizeLinear use one scale and zero point (same type): an
    /// op that only moves or selects values (Reshape, MaxPool, Concat, nearest Resize, …) then
    /// commutes with them and can run on the quantized bytes.
    static func sameQuantization(_ x: DQ, _ q: Q, _ g: Graph) -> Bool {
        g.initializers[x.scale] == g.initializers[q.scale] && g.initializers[x.zero]?.bytes == g.initializers[q.zero]?.bytes
            && g.initializers[x.zero]?.dtype == g.initializers[q.zero]?.dtype
    }

    static func scalar(_ name: String, _ g: Graph) -> Double { g.initializers[name]!.doubles[0] }

    /// Follows `name` through an optional Relu/Clip to its QuantizeLinear; returns the Q and the
    /// clamp range the activation adds, in the output's integer domain.
    static func activationThenQ(_ name: String, _ g: Graph, _ readers: [String: Int]) -> (Q, Int, Int)? {
        guard let r = soleReader(name, g, readers) else { return nil }
        if let q = quantizedBy(r, g) { return (q, Int.min, Int.max) }
        guard r.op == .relu || r.op == .clip, let out = r.outputs.first, let next = soleReader(out, g, readers),
              let q = quantizedBy(next, g) else { return nil }
        let s = scalar(q.scale, g)
        let z = Int(scalar(q.zero, g))
        var lo = Double(-Float.greatestFiniteMagnitude)
        var hi = Double(Float.greatestFiniteMagnitude)
        if r.op == .relu {
            lo = 0
        } else {
            if let v = r.input(1) { guard let t = g.initializers[v] else { return nil }; lo = t.doubles[0] }
            if let v = r.input(2) { guard let t = g.initializers[v] else { return nil }; hi = t.doubles[0] }
            if r.inputs.count < 2 {
                lo = Double(r.attributes.float("min", default: -Float.greatestFiniteMagnitude))
                hi = Double(r.attributes.float("max", default: Float.greatestFiniteMagnitude))
            }
        }
        let qlo = lo < -1e30 ? Int.min : z + Int(perch_round_even(lo / s))
        let qhi = hi > 1e30 ? Int.max : z + Int(perch_round_even(hi / s))
        return (q, qlo, qhi)
    }

    static func fresh(_ base: String, _ g: Graph) -> String {
        var name = base
        var k = 0
        while g.initializers[name] != nil {
            k += 1
            name = base + "_" + String(k)
        }
        return name
    }

    // MARK: Rewrites

    static func fuse(_ node: Node, graph g: inout Graph, producer: [String: Int], readers: [String: Int],
                     extra: inout [Node]) -> Node? {
        guard let out = node.outputs.first, !out.isEmpty else { return nil }
        var attrs = Attributes()
        if let o = node.attributes["_opset"] { attrs["_opset"] = o }
        switch node.op {
        case .conv, .matMul, .gemm:
            return fuseLinear(node, &g, producer, readers)
        case .add, .mul:
            guard node.inputs.count == 2, let a = dequantized(node.inputs[0], g, producer), let b = dequantized(node.inputs[1], g, producer),
                  isPerTensor(a, g), isPerTensor(b, g), let r = soleReader(out, g, readers), let q = quantizedBy(r, g) else { return nil }
            return Node(name: node.name, op: node.op == .add ? .qLinearAdd : .qLinearMul,
                        inputs: [a.input, a.scale, a.zero, b.input, b.scale, b.zero, q.scale, q.zero], outputs: [q.output], attributes: attrs)
        case .globalAveragePool:
            guard let x = dequantized(node.inputs[0], g, producer), isPerTensor(x, g), let r = soleReader(out, g, readers),
                  let q = quantizedBy(r, g) else { return nil }
            return Node(name: node.name, op: .qLinearGlobalAveragePool, inputs: [x.input, x.scale, x.zero, q.scale, q.zero],
                        outputs: [q.output], attributes: attrs)
        case .softmax:
            guard let x = dequantized(node.inputs[0], g, producer), isPerTensor(x, g), g.initializers[x.zero]!.dtype == .u8,
                  let r = soleReader(out, g, readers), let q = quantizedBy(r, g), g.initializers[q.zero]!.dtype == .u8 else { return nil }
            if let axis = node.attributes["axis"] { attrs["axis"] = axis }
            attrs["opset"] = .int(node.attributes.int("_opset", default: 13))
            return Node(name: node.name, op: .qLinearSoftmax, inputs: [x.input, x.scale, x.zero, q.scale, q.zero], outputs: [q.output],
                        attributes: attrs)
        case .sigmoid, .tanh, .hardSwish, .hardSigmoid, .gelu, .leakyRelu, .relu:
            guard let x = dequantized(node.inputs[0], g, producer), isPerTensor(x, g), let r = soleReader(out, g, readers),
                  let q = quantizedBy(r, g) else { return nil }
            attrs["function"] = .string(node.op.rawValue)
            for key in ["alpha", "beta", "approximate"] { if let v = node.attributes[key] { attrs[key] = v } }
            return Node(name: node.name, op: .qLinearLookup, inputs: [x.input, x.scale, x.zero, q.scale, q.zero],
                        outputs: [q.output], attributes: attrs)
        case .reshape, .flatten, .transpose, .squeeze, .unsqueeze, .maxPool, .resize, .slice:
            if node.op == .maxPool && node.outputs.count > 1 && !node.outputs[1].isEmpty { return nil }
            if node.op == .resize && node.attributes.string("mode", default: "nearest") != "nearest" { return nil }
            guard let x = dequantized(node.inputs[0], g, producer), isPerTensor(x, g), let r = soleReader(out, g, readers),
                  let q = quantizedBy(r, g), sameQuantization(x, q, g) else { return nil }
            var n = node
            n.inputs[0] = x.input
            n.outputs = [q.output]
            return n
        case .concat:
            // Inputs quantized with another scale are first requantized to the output's by a
            // 256-entry table (QLinearLookup of the identity: exactly DQ → Q).
            guard !node.inputs.isEmpty, let r = soleReader(out, g, readers), let q = quantizedBy(r, g) else { return nil }
            var n = node
            var requantized = [Node]()
            for (i, name) in node.inputs.enumerated() {
                guard let x = dequantized(name, g, producer), isPerTensor(x, g) else { return nil }
                if sameQuantization(x, q, g) {
                    n.inputs[i] = x.input
                } else {
                    var la = Attributes()
                    if let o = node.attributes["_opset"] { la["_opset"] = o }
                    la["function"] = .string("Identity")
                    var rq = q.output + "_requantized_" + String(i)
                    while producer[rq] != nil || g.initializers[rq] != nil { rq += "_" }
                    requantized.append(Node(name: node.name + "_requantize_" + String(i), op: .qLinearLookup,
                                            inputs: [x.input, x.scale, x.zero, q.scale, q.zero], outputs: [rq], attributes: la))
                    n.inputs[i] = rq
                }
            }
            extra += requantized
            n.outputs = [q.output]
            return n
        default:
            return nil
        }
    }

    /// One step of an elementwise chain: a unary op, or a binary op with a scalar float constant.
    enum ChainStep {
        case unary(OpType)
        case binary(OpType, Float, constantFirst: Bool)
    }

    static let chainUnary: Set<OpType> = [.erf, .tanh, .sigmoid, .relu, .exp, .neg, .abs]
    static let chainBinary: Set<OpType> = [.add, .sub, .mul, .div]

    static func chainStep(_ n: Node, from input: String, _ g: Graph) -> ChainStep? {
        if chainUnary.contains(n.op) { return n.inputs.count == 1 && n.inputs[0] == input ? .unary(n.op) : nil }
        guard chainBinary.contains(n.op), n.inputs.count == 2 else { return nil }
        let constantFirst = n.inputs[1] == input
        let other = constantFirst ? n.inputs[0] : n.inputs[1]
        guard other != input, let c = g.initializers[other], c.dtype == .f32, c.count == 1 else { return nil }
        return .binary(n.op, c.floats[0], constantFirst: constantFirst)
    }

    /// DQ(x) → (unary op | op with a scalar constant)+ → Q, e.g. GELU's x/√2 → Erf: every input code
    /// goes through the float ops once at load time into a 256-entry table (QLinearLookup with the
    /// table as input 5), computed in float32 as the float kernels and fake-quant would.
    static func fuseElementwiseChain(_ node: Node, _ g: inout Graph, _ producer: [String: Int], _ readers: [String: Int]) -> Node? {
        guard !node.inputs.isEmpty, node.outputs.count == 1 else { return nil }
        var x: DQ? = nil
        for name in node.inputs where x == nil {
            if let d = dequantized(name, g, producer), isPerTensor(d, g), g.initializers[d.input] == nil { x = d }
        }
        guard let dq = x, let first = node.inputs.firstIndex(where: { dequantized($0, g, producer)?.input == dq.input }),
              let step0 = chainStep(node, from: node.inputs[first], g) else { return nil }
        var steps = [step0]
        var current = node
        var q: Q? = nil
        while steps.count <= 8 {
            guard let r = soleReader(current.outputs[0], g, readers) else { return nil }
            if let qq = quantizedBy(r, g) {
                q = qq
                break
            }
            guard r.outputs.count == 1, let st = chainStep(r, from: current.outputs[0], g) else { return nil }
            steps.append(st)
            current = r
        }
        guard let quant = q else { return nil }
        let xs = Float(scalar(dq.scale, g)), xz = Float(scalar(dq.zero, g))
        let ys = Float(scalar(quant.scale, g)), yz = Float(scalar(quant.zero, g))
        let inSigned = g.initializers[dq.zero]!.dtype == .i8
        let outSigned = g.initializers[quant.zero]!.dtype == .i8
        let lo: Float = outSigned ? -128 : 0, hi: Float = outSigned ? 127 : 255
        var table = [UInt8](repeating: 0, count: 256)
        for byte in 0..<256 {
            let code = inSigned ? Float(Int8(truncatingIfNeeded: byte)) : Float(byte)
            var v = (code - xz) * xs
            for st in steps {
                switch st {
                case .unary(let op):
                    switch op {
                    case .erf: v = perch_erff(v)
                    case .tanh: v = perch_tanhf(v)
                    case .sigmoid: v = v >= 0 ? 1 / (1 + perch_expf(-v)) : perch_expf(v) / (1 + perch_expf(v))
                    case .relu: v = v > 0 ? v : 0
                    case .exp: v = perch_expf(v)
                    case .neg: v = -v
                    default: v = v < 0 ? -v : v
                    }
                case .binary(let op, let c, let constantFirst):
                    switch op {
                    case .add: v = v + c
                    case .sub: v = constantFirst ? c - v : v - c
                    case .mul: v = v * c
                    default: v = constantFirst ? c / v : v / c
                    }
                }
            }
            var r = perch_roundf_even(v / ys) + yz
            r = r != r ? yz : (r < lo ? lo : (r > hi ? hi : r))
            table[byte] = UInt8(truncatingIfNeeded: Int32(r))
        }
        let tname = fresh(quant.output + "_table", g)
        g.initializers[tname] = Tensor(dtype: .u8, shape: [256], bytes: table)
        var attrs = Attributes()
        if let o = node.attributes["_opset"] { attrs["_opset"] = o }
        attrs["function"] = .string("Table")
        return Node(name: node.name, op: .qLinearLookup, inputs: [dq.input, dq.scale, dq.zero, quant.scale, quant.zero, tname],
                    outputs: [quant.output], attributes: attrs)
    }

    /// Conv / MatMul / Gemm with a per-channel int8 weight constant behind a DequantizeLinear, or
    /// a MatMul of two per-tensor activations (attention's Q·Kᵀ and P·V; B packed at run time).
    static func fuseLinear(_ node: Node, _ g: inout Graph, _ producer: [String: Int], _ readers: [String: Int]) -> Node? {
        if node.op == .matMul, node.inputs.count == 2, let x = dequantized(node.inputs[0], g, producer), isPerTensor(x, g),
           let y = dequantized(node.inputs[1], g, producer), g.initializers[y.input] == nil, isPerTensor(y, g),
           let (q, qlo, qhi) = activationThenQ(node.outputs[0], g, readers) {
            var attrs = Attributes()
            if let o = node.attributes["_opset"] { attrs["_opset"] = o }
            if qlo != Int.min { attrs["_qmin"] = .int(qlo) }
            if qhi != Int.max { attrs["_qmax"] = .int(qhi) }
            return Node(name: node.name, op: .qLinearMatMul, inputs: [x.input, x.scale, x.zero, y.input, y.scale, y.zero, q.scale, q.zero],
                        outputs: [q.output], attributes: attrs)
        }
        guard node.inputs.count >= 2, let x = dequantized(node.inputs[0], g, producer), isPerTensor(x, g),
              let w = dequantized(node.inputs[1], g, producer), let wq = g.initializers[w.input], wq.dtype == .i8 || wq.dtype == .u8,
              let (q, qlo, qhi) = activationThenQ(node.outputs[0], g, readers) else { return nil }
        let ws = g.initializers[w.scale]!.floats
        let wz = g.initializers[w.zero]!
        guard wz.dtype == wq.dtype else { return nil }
        let xs = scalar(x.scale, g)
        var attrs = Attributes()
        if let o = node.attributes["_opset"] { attrs["_opset"] = o }
        if qlo != Int.min { attrs["_qmin"] = .int(qlo) }
        if qhi != Int.max { attrs["_qmax"] = .int(qhi) }
        var weightName = w.input
        let channels: Int
        if node.op == .conv {
            guard wq.rank >= 3, ws.count == 1 || (ws.count == wq.shape[0] && (w.axis == 0)) else { return nil }
            channels = wq.shape[0]
            for key in ["group", "pads", "strides", "dilations", "auto_pad", "kernel_shape"] {
                if let v = node.attributes[key] { attrs[key] = v }
            }
        } else {
            guard wq.rank == 2 else { return nil }
            var transB = false
            if node.op == .gemm {
                guard node.attributes.float("alpha", default: 1) == 1, node.attributes.float("beta", default: 1) == 1,
                      node.attributes.int("transA", default: 0) == 0 else { return nil }
                transB = node.attributes.int("transB", default: 0) != 0
            }
            let nAxis = transB ? 0 : 1
            guard ws.count == 1 || (ws.count == wq.shape[nAxis] && (w.axis == nAxis || w.axis == nAxis - 2)) else { return nil }
            channels = wq.shape[nAxis]
            if transB {
                // QLinearMatMul wants B as [K, N]: transpose the int8 constant once.
                let n = wq.shape[0], k = wq.shape[1]
                var bytes = [UInt8](repeating: 0, count: n * k)
                for j in 0..<n { for i in 0..<k { bytes[i * n + j] = wq.bytes[j * k + i] } }
                weightName = fresh(w.input + "_kn", g)
                g.initializers[weightName] = Tensor(dtype: wq.dtype, shape: [k, n], bytes: bytes)
            }
        }
        if ws.count == 1 && wz.count != 1 { return nil }
        var inputs = [x.input, x.scale, x.zero, weightName, w.scale, w.zero, q.scale, q.zero]
        if let biasName = node.input(2) {
            // Bias: DQ(int32) with scale xs·ws (taken as is), or a float constant quantized here.
            var values = [Int32](repeating: 0, count: channels)
            if let bdq = dequantized(biasName, g, producer), let bq = g.initializers[bdq.input], bq.dtype == .i32, bq.count == channels {
                let bs = g.initializers[bdq.scale]!.floats
                for c in 0..<channels {
                    let expected = xs * Double(ws.count == 1 ? ws[0] : ws[c])
                    let actual = Double(bs.count == 1 ? bs[0] : bs[c])
                    let raw = bq.int64s[c]
                    values[c] = abs(actual - expected) <= 1e-6 * expected
                        ? Int32(truncatingIfNeeded: raw)
                        : Int32(clamping: Int64(perch_round_even(Double(raw) * actual / expected)))
                }
            } else if let bf = g.initializers[biasName], bf.dtype == .f32, bf.count == channels {
                let b = bf.doubles
                for c in 0..<channels {
                    values[c] = Int32(clamping: Int64(perch_round_even(b[c] / (xs * Double(ws.count == 1 ? ws[0] : ws[c])))))
                }
            } else {
                return nil
            }
            let bname = fresh(node.outputs[0] + "_bias_i32", g)
            g.initializers[bname] = Tensor(shape: [channels], values: values)
            inputs.append(bname)
        }
        return Node(name: node.name, op: node.op == .conv ? .qLinearConv : .qLinearMatMul, inputs: inputs, outputs: [q.output], attributes: attrs)
    }
}

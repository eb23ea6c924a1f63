import PerchGraph

/// Replaces HardSwish written out as elementwise nodes with one HardSwish node
/// (`x · max(0, min(1, x/6 + 1/2))`, ONNX opset 14).
///
/// Paddle2ONNX spells it Add 3 → Clip [0, 6] → Mul by x → Div by 6 (PP-OCR's detectors and
/// recognizers, PP-LCNet, Paddle's MobileNetV3): four passes over an activation after almost
/// every conv — 18 ms of PP-OCRv4's text detector's 104 on 640×640, a fifth of it, against one
/// pass for the fused node. Also taken: the Div (or a Mul by 1/6) before the Mul by x, and
/// `Mul(x, HardSigmoid(x))` with alpha 1/6 and beta 0.5 (older PyTorch exports). Only chains
/// whose intermediate values have no other reader and are not graph outputs, with float32 scalar
/// constants (within 1e-4) that are not runtime inputs. The fused node computes the same function;
/// its float rounding differs from the chain's in the last bits.
public struct HardSwishFusion: GraphPass {
    public init() {}
    public var name: String { "hardswish-fusion" }

    public func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        var i = 0
        while i < graph.nodes.count {
            defer { i += 1 }
            let op = graph.nodes[i].op
            guard op == .clip || op == .hardSigmoid, let (x, last) = match(graph, gate: i) else { continue }
            var node = Node(name: graph.nodes[last].name, op: .hardSwish, inputs: [x], outputs: graph.nodes[last].outputs)
            if let opset = graph.nodes[last].attributes["_opset"] { node.attributes["_opset"] = opset }
            graph.nodes[last] = node
            graph.removeDeadNodes()
            fused += 1
            i = -1  // indices moved: scan again from the start
        }
        return fused
    }

    /// The chain's input x and the index of its last node, when node `g` (the Clip or the
    /// HardSigmoid) is the gate of one.
    func match(_ graph: Graph, gate g: Int) -> (String, Int)? {
        let producers = GraphEditing.producers(graph)
        let consumers = GraphEditing.consumers(graph)
        func onlyReader(_ value: String) -> Int? {
            guard let r = consumers[value], r.count == 1, !GraphEditing.isGraphOutput(graph, value) else { return nil }
            return r[0]
        }
        func constant(_ name: String) -> Float? {
            guard let t = graph.initializers[name], t.dtype == .f32, t.count == 1,
                  !graph.runtimeInputs.contains(where: { $0.name == name }) else { return nil }
            return GraphEditing.floats(t)[0]
        }
        func near(_ v: Float?, _ want: Float) -> Bool { v.map { abs($0 - want) <= 1e-4 * max(1, abs(want)) } ?? false }
        /// The operand of binary node `n` other than `value`, with `value` as one input.
        func other(_ n: Node, _ value: String) -> String? {
            guard n.inputs.count == 2 else { return nil }
            if n.inputs[0] == value { return n.inputs[1] }
            if n.inputs[1] == value { return n.inputs[0] }
            return nil
        }
        /// Whether node `n` divides `value` by 6 or multiplies it by 1/6.
        func isSixth(_ n: Node, of value: String) -> Bool {
            if n.op == .div { return n.inputs.count == 2 && n.inputs[0] == value && near(constant(n.inputs[1]), 6) }
            if n.op == .mul { return near(other(n, value).flatMap(constant), 1.0 / 6.0) }
            return false
        }
        let gate = graph.nodes[g]
        guard gate.outputs.count == 1, !gate.outputs[0].isEmpty, let gateIn = gate.input(0) else { return nil }
        let x: String
        var gated = gate.outputs[0]  // x's factor: clip(x + 3, 0, 6), later / 6
        var sixthApplied = false
        if gate.op == .hardSigmoid {
            guard near(gate.attributes.float("alpha", default: 0.2), 1.0 / 6.0), near(gate.attributes.float("beta", default: 0.5), 0.5)
            else { return nil }
            x = gateIn
            sixthApplied = true
        } else {
            // clip(x + 3, 0, 6), the bounds as opset-11 inputs or older attributes.
            var lo = gate.attributes.float("min", default: -Float.infinity)
            var hi = gate.attributes.float("max", default: Float.infinity)
            if let name = gate.input(1) { guard let v = constant(name) else { return nil }; lo = v }
            if let name = gate.input(2) { guard let v = constant(name) else { return nil }; hi = v }
            guard lo == 0, near(hi, 6), let a = producers[gateIn], onlyReader(gateIn) == g, graph.nodes[a].op == .add else { return nil }
            let add = graph.nodes[a]
            guard add.inputs.count == 2 else { return nil }
            if near(constant(add.inputs[1]), 3) {
                x = add.inputs[0]
            } else if near(constant(add.inputs[0]), 3) {
                x = add.inputs[1]
            } else {
                return nil
            }
        }
        // Optionally / 6 before the product with x.
        guard var next = onlyReader(gated) else { return nil }
        if !sixthApplied && isSixth(graph.nodes[next], of: gated) {
            gated = graph.nodes[next].outputs[0]
            sixthApplied = true
            guard let n = onlyReader(gated) else { return nil }
            next = n
        }
        // · x.
        let mul = graph.nodes[next]
        guard mul.op == .mul, other(mul, gated) == x, mul.outputs.count == 1 else { return nil }
        if sixthApplied { return (x, next) }
        // Then / 6.
        guard let d = onlyReader(mul.outputs[0]), isSixth(graph.nodes[d], of: mul.outputs[0]) else { return nil }
        return (x, d)
    }
}

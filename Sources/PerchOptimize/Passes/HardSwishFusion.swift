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
        ActivationChain.fuse(&graph, into: .hardSwish, starts: { $0.op == .clip || $0.op == .hardSigmoid }, match: match)
    }

    /// The chain's input x and the index of its last node, when node `g` (the Clip or the
    /// HardSigmoid) is the gate of one.
    func match(_ c: ActivationChain, gate g: Int) -> (input: String, last: Int)? {
        let graph = c.graph
        func near(_ v: Float?, _ want: Float) -> Bool { ActivationChain.near(v, want) }
        /// Whether node `n` divides `value` by 6 or multiplies it by 1/6.
        func isSixth(_ n: Node, of value: String) -> Bool {
            if n.op == .div { return n.inputs.count == 2 && n.inputs[0] == value && near(c.constant(n.inputs[1]), 6) }
            if n.op == .mul { return near(c.other(n, value).flatMap(c.constant), 1.0 / 6.0) }
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
            if let name = gate.input(1) { guard let v = c.constant(name) else { return nil }; lo = v }
            if let name = gate.input(2) { guard let v = c.constant(name) else { return nil }; hi = v }
            guard lo == 0, near(hi, 6), let a = c.producers[gateIn], c.onlyReader(gateIn) == g, graph.nodes[a].op == .add else { return nil }
            let add = graph.nodes[a]
            guard add.inputs.count == 2 else { return nil }
            if near(c.constant(add.inputs[1]), 3) {
                x = add.inputs[0]
            } else if near(c.constant(add.inputs[0]), 3) {
                x = add.inputs[1]
            } else {
                return nil
            }
        }
        // Optionally / 6 before the product with x.
        guard var next = c.onlyReader(gated) else { return nil }
        if !sixthApplied && isSixth(graph.nodes[next], of: gated) {
            gated = graph.nodes[next].outputs[0]
            sixthApplied = true
            guard let n = c.onlyReader(gated) else { return nil }
            next = n
        }
        // · x.
        let mul = graph.nodes[next]
        guard mul.op == .mul, c.other(mul, gated) == x, mul.outputs.count == 1 else { return nil }
        if sixthApplied { return (x, next) }
        // Then / 6.
        guard let d = c.onlyReader(mul.outputs[0]), isSixth(graph.nodes[d], of: mul.outputs[0]) else { return nil }
        return (x, d)
    }
}

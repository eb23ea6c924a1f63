import PerchGraph

/// Replaces the erf form of GELU that exporters write as five elementwise nodes,
/// `0.5·x·(1 + erf(x/√2))`, with one Gelu node (ONNX opset 20's `approximate = "none"`).
///
/// PyTorch and TensorFlow exports before opset 20 spell it Div (or Mul by 1/√2) → Erf → Add 1 →
/// Mul by x → Mul by 0.5, or with the 0.5 applied to x first; run node by node that is five
/// passes over the FFN's widest activation (a transformer encoder's GELU cost more than its
/// Softmax and LayerNorms together). ONNX Runtime fuses the same chain at session start. Only
/// chains whose intermediate values have no other reader and are not graph outputs, with float32
/// scalar constants (√2 or 1/√2, 1, 0.5 within 1e-4) that are not runtime inputs.
public struct GeluFusion: GraphPass {
    public init() {}
    public var name: String { "gelu-fusion" }

    public func run(_ graph: inout Graph) throws -> Int {
        ActivationChain.fuse(&graph, into: .gelu, starts: { $0.op == .erf }, match: match)
    }

    /// The chain's input x and the index of its last node, when node `e` (an Erf) is the middle of one.
    func match(_ c: ActivationChain, erf e: Int) -> (input: String, last: Int)? {
        let graph = c.graph
        func near(_ v: Float?, _ want: Float) -> Bool { ActivationChain.near(v, want) }
        // x / √2 or x · (1/√2) feeds the Erf.
        let erfNode = graph.nodes[e]
        guard erfNode.inputs.count == 1, let s = c.producers[erfNode.inputs[0]], c.onlyReader(erfNode.inputs[0]) == e else { return nil }
        let scale = graph.nodes[s]
        let x: String
        if scale.op == .div, scale.inputs.count == 2, near(c.constant(scale.inputs[1]), 1.4142135) {
            x = scale.inputs[0]
        } else if scale.op == .mul, scale.inputs.count == 2,
                  let k = scale.inputs.firstIndex(where: { near(c.constant($0), 0.70710678) }) {
            x = scale.inputs[1 - k]
        } else {
            return nil
        }
        // erf(…) + 1.
        guard let a = c.onlyReader(erfNode.outputs[0]), graph.nodes[a].op == .add,
              let one = c.other(graph.nodes[a], erfNode.outputs[0]), near(c.constant(one), 1),
              let m = c.onlyReader(graph.nodes[a].outputs[0]), graph.nodes[m].op == .mul,
              let factor = c.other(graph.nodes[m], graph.nodes[a].outputs[0]) else { return nil }
        // (1 + erf) · x, then · 0.5.
        if factor == x {
            guard let h = c.onlyReader(graph.nodes[m].outputs[0]), graph.nodes[h].op == .mul,
                  let k = c.other(graph.nodes[h], graph.nodes[m].outputs[0]), near(c.constant(k), 0.5) else { return nil }
            return (x, h)
        }
        // (1 + erf) · (x · 0.5).
        guard let p = c.producers[factor], graph.nodes[p].op == .mul, c.onlyReader(factor) == m,
              let k = c.other(graph.nodes[p], x), near(c.constant(k), 0.5) else { return nil }
        return (x, m)
    }
}

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
        var fused = 0
        var i = 0
        while i < graph.nodes.count {
            defer { i += 1 }
            guard graph.nodes[i].op == .erf, let (x, last) = match(graph, erf: i) else { continue }
            var gelu = Node(name: graph.nodes[last].name, op: .gelu, inputs: [x], outputs: graph.nodes[last].outputs)
            if let opset = graph.nodes[last].attributes["_opset"] { gelu.attributes["_opset"] = opset }
            graph.nodes[last] = gelu
            graph.removeDeadNodes()
            fused += 1
            i = -1  // indices moved: scan again from the start
        }
        return fused
    }

    /// The chain's input x and the index of its last node, when node `e` (an Erf) is the middle of one.
    func match(_ graph: Graph, erf e: Int) -> (String, Int)? {
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
        // x / √2 or x · (1/√2) feeds the Erf.
        let erfNode = graph.nodes[e]
        guard erfNode.inputs.count == 1, let s = producers[erfNode.inputs[0]], onlyReader(erfNode.inputs[0]) == e else { return nil }
        let scale = graph.nodes[s]
        let x: String
        if scale.op == .div, scale.inputs.count == 2, near(constant(scale.inputs[1]), 1.4142135) {
            x = scale.inputs[0]
        } else if scale.op == .mul, scale.inputs.count == 2,
                  let k = scale.inputs.firstIndex(where: { near(constant($0), 0.70710678) }) {
            x = scale.inputs[1 - k]
        } else {
            return nil
        }
        // erf(…) + 1.
        guard let a = onlyReader(erfNode.outputs[0]), graph.nodes[a].op == .add,
              let one = other(graph.nodes[a], erfNode.outputs[0]), near(constant(one), 1),
              let m = onlyReader(graph.nodes[a].outputs[0]), graph.nodes[m].op == .mul,
              let factor = other(graph.nodes[m], graph.nodes[a].outputs[0]) else { return nil }
        // (1 + erf) · x, then · 0.5.
        if factor == x {
            guard let h = onlyReader(graph.nodes[m].outputs[0]), graph.nodes[h].op == .mul,
                  let c = other(graph.nodes[h], graph.nodes[m].outputs[0]), near(constant(c), 0.5) else { return nil }
            return (x, h)
        }
        // (1 + erf) · (x · 0.5).
        guard let p = producers[factor], graph.nodes[p].op == .mul, onlyReader(factor) == m,
              let c = other(graph.nodes[p], x), near(constant(c), 0.5) else { return nil }
        return (x, m)
    }
}

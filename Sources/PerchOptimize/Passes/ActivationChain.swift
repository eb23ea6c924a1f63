import PerchGraph

/// What the passes that fuse an activation written out as elementwise nodes (`GeluFusion`,
/// `HardSwishFusion`) ask of the graph while matching a chain: who reads a value, which scalar a
/// constant holds, the other operand of a binary node. Built once per match attempt.
struct ActivationChain {
    let graph: Graph
    let producers: [String: Int]
    let consumers: [String: [Int]]

    init(_ graph: Graph) {
        self.graph = graph
        producers = GraphEditing.producers(graph)
        consumers = GraphEditing.consumers(graph)
    }

    /// The one node reading `value`, when it has one reader and is not a graph output (so the
    /// chain may swallow it).
    func onlyReader(_ value: String) -> Int? {
        guard let r = consumers[value], r.count == 1, !GraphEditing.isGraphOutput(graph, value) else { return nil }
        return r[0]
    }

    /// A float32 scalar initializer's value (not a runtime input).
    func constant(_ name: String) -> Float? {
        guard let t = graph.initializers[name], t.dtype == .f32, t.count == 1,
              !graph.runtimeInputs.contains(where: { $0.name == name }) else { return nil }
        return GraphEditing.floats(t)[0]
    }

    /// Whether `v` is `want` within 1e-4 (relative above 1).
    static func near(_ v: Float?, _ want: Float) -> Bool { v.map { abs($0 - want) <= 1e-4 * max(1, abs(want)) } ?? false }

    /// The operand of binary node `n` other than `value`, when `value` is one of its inputs.
    func other(_ n: Node, _ value: String) -> String? {
        guard n.inputs.count == 2 else { return nil }
        if n.inputs[0] == value { return n.inputs[1] }
        if n.inputs[1] == value { return n.inputs[0] }
        return nil
    }

    /// Replaces every chain `match` finds from a node `starts` accepts with one `op` node of the
    /// chain's input, named and placed as the chain's last node; returns how many it replaced.
    static func fuse(_ graph: inout Graph, into op: OpType, starts: (Node) -> Bool,
                     match: (ActivationChain, Int) -> (input: String, last: Int)?) -> Int {
        var fused = 0
        var i = 0
        while i < graph.nodes.count {
            defer { i += 1 }
            guard starts(graph.nodes[i]), let (x, last) = match(ActivationChain(graph), i) else { continue }
            var node = Node(name: graph.nodes[last].name, op: op, inputs: [x], outputs: graph.nodes[last].outputs)
            if let opset = graph.nodes[last].attributes["_opset"] { node.attributes["_opset"] = opset }
            graph.nodes[last] = node
            graph.removeDeadNodes()
            fused += 1
            i = -1  // indices moved: scan again from the start
        }
        return fused
    }
}

import PerchGraph

/// Who writes and who reads each tensor of a graph, for the fusion passes: `producer[name]` is
/// the index of the node that writes it, `readers[name]` the number of node inputs that read it
/// plus 100 for a graph output — so "one reader and not a graph output" is `readers[name] == 1`.
struct TensorUses {
    var producer: [String: Int] = [:]
    var readers: [String: Int] = [:]

    init(_ graph: Graph) {
        for (i, node) in graph.nodes.enumerated() {
            for out in node.outputs where !out.isEmpty { producer[out] = i }
            for input in node.inputs where !input.isEmpty { readers[input, default: 0] += 1 }
        }
        for output in graph.outputs { readers[output.name, default: 0] += 100 }
    }
}

extension Graph {
    /// Drops the nodes whose `removed` flag is set, keeping the others in order.
    mutating func removeNodes(_ removed: [Bool]) {
        if !removed.contains(true) { return }
        var kept = [Node]()
        for (i, node) in nodes.enumerated() where !removed[i] { kept.append(node) }
        nodes = kept
    }
}

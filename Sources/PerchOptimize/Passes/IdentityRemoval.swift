import PerchGraph

/// Removes Identity and inference-mode Dropout nodes (no training_mode input, or a constant false
/// one) by rewiring their readers to their input.
///
/// When the node's output is a graph output, the producer of its input is renamed instead, so
/// graph output names never change; a graph input passed straight to an output keeps its node.
public struct IdentityRemoval: GraphPass {
    public init() {}
    public var name: String { "identity-removal" }

    public func run(_ graph: inout Graph) throws -> Int {
        var removed = 0
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            guard node.op == .identity || node.op == .dropout, let input = node.input(0),
                  let output = node.outputs.first, !output.isEmpty
            else { i += 1; continue }
            // A Dropout is the identity only in inference: its training_mode input (opset 12+), when
            // given, must be a constant false.
            if node.op == .dropout, let mode = node.input(2) {
                guard let t = graph.initializers[mode], !graph.runtimeInputs.contains(where: { $0.name == mode }),
                      t.int64s.allSatisfy({ $0 == 0 }) else { i += 1; continue }
            }
            // Dropout's mask output must be unread.
            if node.outputs.count > 1 {
                let mask = node.outputs[1]
                if !mask.isEmpty && (GraphEditing.consumers(graph)[mask] != nil || GraphEditing.isGraphOutput(graph, mask)) {
                    i += 1
                    continue
                }
            }
            if GraphEditing.isGraphOutput(graph, output) {
                let producers = GraphEditing.producers(graph)
                guard let p = producers[input], !GraphEditing.isGraphOutput(graph, input) else { i += 1; continue }
                // The producer now writes `output`; everyone who read `input` reads `output`.
                for k in graph.nodes[p].outputs.indices where graph.nodes[p].outputs[k] == input {
                    graph.nodes[p].outputs[k] = output
                }
                graph.nodes.remove(at: i)
                GraphEditing.rewire(&graph, from: input, to: output)
            } else {
                graph.nodes.remove(at: i)
                GraphEditing.rewire(&graph, from: output, to: input)
            }
            removed += 1
        }
        return removed
    }
}

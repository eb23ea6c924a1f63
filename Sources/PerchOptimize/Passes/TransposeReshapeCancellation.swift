import PerchGraph

/// Cancels data movement that composes to less:
/// - `Transpose(p2) ∘ Transpose(p1)` becomes one Transpose with the composed permutation, or
///   nothing when that is the identity;
/// - `Reshape(s2) ∘ Reshape(s1)` becomes `Reshape(s2)` when `s2` is a constant without `0`
///   entries (a `0` would copy a dimension of the intermediate shape);
/// - `Reshape ∘ Flatten` likewise becomes the outer Reshape.
///
/// The inner node must have no other reader, and must not produce a graph output.
public struct TransposeReshapeCancellation: GraphPass {
    public init() {}
    public var name: String { "transpose-reshape-cancellation" }

    public func run(_ graph: inout Graph) throws -> Int {
        var changes = 0
        var progress = true
        while progress {
            progress = false
            let consumers = GraphEditing.consumers(graph)
            let producers = GraphEditing.producers(graph)
            for (i, outer) in graph.nodes.enumerated() {
                guard outer.op == .transpose || outer.op == .reshape, let mid = outer.input(0),
                      let p = producers[mid], consumers[mid]?.count == 1, !GraphEditing.isGraphOutput(graph, mid)
                else { continue }
                let inner = graph.nodes[p]
                guard let source = inner.input(0) else { continue }
                if outer.op == .transpose && inner.op == .transpose {
                    guard let p1 = inner.attributes.ints("perm"), let p2 = outer.attributes.ints("perm"),
                          p1.count == p2.count else { continue }
                    let composed = p2.map { p1[$0] }
                    if composed == Array(0..<composed.count) {
                        // Both go: readers of the outer output read the source.
                        let out = outer.outputs[0]
                        if GraphEditing.isGraphOutput(graph, out) {
                            graph.nodes[i].op = .identity
                            graph.nodes[i].attributes["perm"] = nil
                            graph.nodes[i].inputs = [source]
                        } else {
                            graph.nodes.remove(at: i)
                            GraphEditing.rewire(&graph, from: out, to: source)
                        }
                    } else {
                        graph.nodes[i].attributes["perm"] = .ints(composed)
                        graph.nodes[i].inputs[0] = source
                    }
                } else if outer.op == .reshape && (inner.op == .reshape || inner.op == .flatten) {
                    guard let shapeName = outer.input(1), let shape = graph.initializers[shapeName],
                          !shape.ints.contains(0) else { continue }
                    graph.nodes[i].inputs[0] = source
                } else {
                    continue
                }
                graph.removeDeadNodes()
                changes += 1
                progress = true
                break
            }
        }
        return changes
    }
}

/// Body graphs of control-flow nodes (If's branches, Loop's body) and the outer values they read.
///
/// ONNX lets a body read any value of the enclosing graphs by name. Perch makes those reads
/// explicit at import: they are appended to the node's inputs, and the attribute `_captures`
/// lists the names the body uses for them, in the same order. Every graph pass then sees the
/// dependency (topological order, dead-node removal, arena lifetimes), and a pass that renames
/// the outer value changes only the node's input, not the body.
public enum BodyGraphs {
    /// Values read by `graph`'s nodes that `graph` does not define (its inputs, initializers or
    /// node outputs), in first-read order: what the graph captures from the enclosing scope.
    public static func freeValues(of graph: Graph) -> [String] {
        var defined = Set<String>()
        for input in graph.inputs { defined.insert(input.name) }
        for key in graph.initializers.keys { defined.insert(key) }
        for node in graph.nodes { for out in node.outputs where !out.isEmpty { defined.insert(out) } }
        var free = [String]()
        var seen = Set<String>()
        for node in graph.nodes {
            for name in node.inputs where !name.isEmpty && !defined.contains(name) && seen.insert(name).inserted {
                free.append(name)
            }
        }
        for output in graph.outputs where !defined.contains(output.name) && seen.insert(output.name).inserted {
            free.append(output.name)
        }
        return free
    }

    /// Appends the outer values `node`'s body graphs read to its inputs and records their names
    /// in `_captures` (the importer calls this once per control-flow node).
    public static func captureFreeValues(_ node: inout Node) {
        var captures = [String]()
        var seen = Set<String>()
        for key in node.attributes.values.keys.sorted() {
            guard case .graph(let body)? = node.attributes[key] else { continue }
            for name in freeValues(of: body) where seen.insert(name).inserted { captures.append(name) }
        }
        guard !captures.isEmpty else { return }
        node.inputs += captures
        node.attributes["_captures"] = .strings(captures)
    }

    /// The body-side names of the captured values; they are the last `count` inputs of `node`.
    public static func captures(of node: Node) -> [String] {
        if case .strings(let names)? = node.attributes["_captures"] { return names }
        return []
    }
}

import PerchEngine
import PerchGraph

/// A rewrite of the graph that keeps every graph output's value (to float rounding).
///
/// `run` returns how many rewrites it made (0 = the graph is unchanged), for the report.
public protocol GraphPass: Sendable {
    var name: String { get }
    func run(_ graph: inout Graph) throws -> Int
}

/// The simplification passes in the order `perch optimize` applies them.
public enum Simplifier {
    public static var defaultPasses: [any GraphPass] { [
        IdentityRemoval(), ConstantFolding(), BatchNormFolding(), ChannelAffineFolding(), HardSwishFusion(),
        TransposeReshapeCancellation(), DeadNodeRemoval(),
    ] }

    /// Runs `passes` until none changes anything (at most 4 rounds); returns rewrites per pass name.
    public static func simplify(_ graph: inout Graph, passes: [any GraphPass] = defaultPasses) throws -> [(String, Int)] {
        var totals: [(String, Int)] = passes.map { ($0.name, 0) }
        for _ in 0..<4 {
            var changed = 0
            for (i, pass) in passes.enumerated() {
                let n = try pass.run(&graph)
                totals[i].1 += n
                changed += n
            }
            try graph.validate()
            if changed == 0 { break }
        }
        return totals
    }
}

/// Helpers shared by the passes.
enum GraphEditing {
    /// Node indices reading each value.
    static func consumers(_ graph: Graph) -> [String: [Int]] {
        var map: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { map[input, default: []].append(i) }
        }
        return map
    }

    static func producers(_ graph: Graph) -> [String: Int] {
        var map: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for out in node.outputs where !out.isEmpty { map[out] = i }
        }
        return map
    }

    static func isGraphOutput(_ graph: Graph, _ name: String) -> Bool {
        graph.outputs.contains { $0.name == name }
    }

    /// Whether a layer's output `value` can be folded into the node that reads it: that node is
    /// its only reader and it is not a graph output.
    static func hasOneReader(_ graph: Graph, _ value: String) -> Bool {
        consumers(graph)[value]?.count == 1 && !isGraphOutput(graph, value)
    }

    /// Puts `layer` at node `p`, writing what node `i` (now folded into it) wrote, and removes
    /// node `i`.
    static func absorb(_ graph: inout Graph, node i: Int, into p: Int, as layer: Node) {
        var layer = layer
        layer.outputs[0] = graph.nodes[i].outputs[0]
        graph.nodes[p] = layer
        graph.nodes.remove(at: i)
    }

    /// Replaces every read of `old` with `new`.
    static func rewire(_ graph: inout Graph, from old: String, to new: String) {
        for i in graph.nodes.indices {
            for j in graph.nodes[i].inputs.indices where graph.nodes[i].inputs[j] == old {
                graph.nodes[i].inputs[j] = new
            }
        }
    }

    /// A value name not used in the graph yet, derived from `base`.
    static func freshName(_ graph: Graph, _ base: String, taken: inout Set<String>) -> String {
        if taken.isEmpty {
            for n in graph.nodes { for o in n.outputs { taken.insert(o) }; for i in n.inputs { taken.insert(i) } }
            for k in graph.initializers.keys { taken.insert(k) }
            for i in graph.inputs { taken.insert(i.name) }
        }
        var name = base
        var k = 1
        while taken.contains(name) {
            name = base + "_" + String(k)
            k += 1
        }
        taken.insert(name)
        return name
    }

    /// The default-domain opset the importer recorded on the nodes (17 when none did).
    static func opset(_ graph: Graph) -> Int {
        for n in graph.nodes where n.attributes.has("_opset") { return n.attributes.int("_opset", default: 17) }
        return 17
    }

    static func floats(_ t: Tensor) -> [Float] {
        if t.dtype == .f32 { return t.withUnsafeBufferPointer(of: Float.self) { Array($0) } }
        return t.floats
    }
}

/// Removes nodes that reach no graph output, and initializers nothing reads.
public struct DeadNodeRemoval: GraphPass {
    public init() {}
    public var name: String { "dead-node-removal" }
    public func run(_ graph: inout Graph) throws -> Int {
        let before = graph.nodes.count + graph.initializers.count
        graph.removeDeadNodes()
        return before - graph.nodes.count - graph.initializers.count
    }
}

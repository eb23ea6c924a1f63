import PerchEngine
import PerchGraph

/// Replaces every node whose inputs are all constants by its result, computed with the engine's
/// own kernels (a one-node `Session`), so folded values are exactly what the device would compute.
public struct ConstantFolding: GraphPass {
    /// Results larger than this stay as nodes (folding would bloat the file).
    public var maxElements: Int
    /// When set, only nodes of these ops are folded (model loading folds ConstantOfShape alone, so
    /// weights a model builds that way become initializers other passes can rewrite).
    public var onlyOps: Set<OpType>?

    public init(maxElements: Int = 4 << 20, onlyOps: Set<OpType>? = nil) {
        self.maxElements = maxElements
        self.onlyOps = onlyOps
    }
    public var name: String { "constant-folding" }

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var kept = [Node]()
        let runtime = Set(graph.runtimeInputs.map { $0.name })
        for node in graph.nodes {
            let constantInputs = node.inputs.allSatisfy { $0.isEmpty || (graph.initializers[$0] != nil && !runtime.contains($0)) }
            guard constantInputs, node.op != .quantizeLinear, node.op != .dequantizeLinear, onlyOps?.contains(node.op) ?? true,
                  let results = evaluate(node, graph.initializers)
            else {
                kept.append(node)
                continue
            }
            for (name, value) in results { graph.initializers[name] = value }
            folded += 1
        }
        graph.nodes = kept
        return folded
    }

    func evaluate(_ node: Node, _ initializers: [String: Tensor]) -> [(String, Tensor)]? {
        var inits: [String: Tensor] = [:]
        for input in node.inputs where !input.isEmpty { inits[input] = initializers[input] }
        let outs = node.outputs.filter { !$0.isEmpty }
        guard !outs.isEmpty else { return nil }
        let sub = Graph(
            name: "fold", nodes: [node], inputs: [],
            outputs: outs.map { ValueInfo(name: $0, type: TensorType(dtype: .f32, dims: [])) }, initializers: inits
        )
        guard let session = try? Session(graph: sub), (try? session.prepare(feeds: [:])) != nil else { return nil }
        var results = [(String, Tensor)]()
        for out in outs {
            guard let t = session.output(out), t.count <= maxElements else { return nil }
            results.append((out, t))
        }
        return results
    }
}

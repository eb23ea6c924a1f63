import PerchGraph

/// The graph pass that hands fp16 Conv weights to the Conv as fp16 on CPUs with fp16 arithmetic
/// (`HalfGEMM.available`; applied by `Session.init`). `perch optimize` writes an fp16 layer as an
/// fp16 initializer widened by `Cast(to: FLOAT)` — valid ONNX, since Conv's operands share one
/// type. Elsewhere that Cast folds into an fp32 constant at prepare time; here the Conv reads the
/// fp16 initializer itself, so the weights stay half the size in memory and feed the fp16 GEMM.
enum HalfWeights {
    static func apply(_ graph: inout Graph) {
        var readers: [String: [(node: Int, input: Int)]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for (j, input) in node.inputs.enumerated() where !input.isEmpty { readers[input, default: []].append((i, j)) }
        }
        var outputs = Set<String>()
        for o in graph.outputs { outputs.insert(o.name) }
        var changed = false
        for node in graph.nodes where node.op == .cast && node.inputs.count == 1 && node.outputs.count == 1 {
            let source = node.inputs[0], widened = node.outputs[0]
            guard node.attributes.int("to", default: 0) == 1, graph.initializers[source]?.dtype == .f16,
                  !outputs.contains(widened), let uses = readers[widened], !uses.isEmpty,
                  uses.allSatisfy({ graph.nodes[$0.node].op == .conv && $0.input == 1 }) else { continue }
            for use in uses { graph.nodes[use.node].inputs[1] = source }
            changed = true
        }
        if changed { graph.removeDeadNodes() }
    }
}

import PerchGraph

/// Folds a quantized SiLU — `QLinearMul(x, QLinearLookup(x))`, what `QDQFusion` makes of a QDQ
/// model's Sigmoid → Mul by its own input (YOLO-style detectors, EfficientNets) — into one
/// `QLinearLookup` whose 256-entry table is the pair's result for every code of x. The table is
/// computed by running the two nodes themselves on the 256 codes, so the fused node gives the
/// pair's bits exactly; one lookup per element replaces a lookup, a product and a
/// requantization (the Mul was an eighth of a SiLU detector's int8 time).
///
/// Only when the lookup reads the same tensor with the same scale and zero point as the Mul's
/// other operand, its output has no other reader and is not a graph output, and every scale,
/// zero point and table is an initializer.
public enum QLookupMulFusion {
    public static func apply(_ graph: inout Graph) {
        let uses = TensorUses(graph)
        let readers = uses.readers, producer = uses.producer
        var removed = [Bool](repeating: false, count: graph.nodes.count)
        for i in 0..<graph.nodes.count {
            let mul = graph.nodes[i]
            guard mul.op == .qLinearMul, mul.inputs.count == 8, mul.outputs.count == 1 else { continue }
            for k in [0, 3] {
                let o = 3 - k
                guard let l = producer[mul.inputs[k]], !removed[l], graph.nodes[l].op == .qLinearLookup, readers[mul.inputs[k]] == 1,
                      graph.nodes[l].inputs.first == mul.inputs[o],
                      sameValue(graph, graph.nodes[l].inputs[1], mul.inputs[o + 1]), sameValue(graph, graph.nodes[l].inputs[2], mul.inputs[o + 2]),
                      let zero = graph.initializers[mul.inputs[o + 2]], zero.dtype == .u8 || zero.dtype == .i8,
                      let table = composedTable(graph, lookup: graph.nodes[l], mul: mul, operand: k) else { continue }
                let lookup = graph.nodes[l]
                let tname = QDQFusion.fresh(lookup.outputs[0] + "_silu_table", graph)
                graph.initializers[tname] = table
                var attrs = Attributes()
                if let opset = mul.attributes["_opset"] { attrs["_opset"] = opset }
                attrs["function"] = .string("Table")
                graph.nodes[i] = Node(name: mul.name, op: .qLinearLookup,
                                      inputs: [mul.inputs[o], lookup.inputs[1], lookup.inputs[2], mul.inputs[6], mul.inputs[7], tname],
                                      outputs: mul.outputs, attributes: attrs)
                removed[l] = true
                break
            }
        }
        graph.removeNodes(removed)
    }

    /// Both names are initializers with the same type, shape and bytes (or the same name).
    static func sameValue(_ g: Graph, _ a: String, _ b: String) -> Bool {
        if a == b { return !a.isEmpty }
        guard let x = g.initializers[a], let y = g.initializers[b] else { return false }
        return x.dtype == y.dtype && x.shape == y.shape && x.bytes == y.bytes
    }

    /// The Mul's output for every input byte 0…255, from a two-node session over those codes.
    static func composedTable(_ g: Graph, lookup: Node, mul: Node, operand k: Int) -> Tensor? {
        let xType = g.initializers[mul.inputs[3 - k + 2]]!.dtype
        var l = lookup, m = mul
        l.inputs[0] = "x"
        l.outputs = ["s"]
        m.inputs[3 - k] = "x"
        m.inputs[k] = "s"
        m.outputs = ["y"]
        var mini = Graph(name: "silu_table", nodes: [l, m], inputs: [ValueInfo(name: "x", type: TensorType(dtype: xType, shape: [256]))],
                         outputs: [ValueInfo(name: "y", type: TensorType(dtype: xType, dims: []))])
        for name in l.inputs.dropFirst() + m.inputs where !name.isEmpty && name != "x" && name != "s" {
            guard let t = g.initializers[name] else { return nil }
            mini.initializers[name] = t
        }
        let codes = Tensor(dtype: xType, shape: [256], bytes: (0..<256).map { UInt8($0) })
        guard let session = try? Session(graph: mini, options: SessionOptions(threads: 1, fuseQuantized: false)),
              let out = try? session.run(["x": codes]), let y = out["y"], y.bytes.count == 256 else { return nil }
        return Tensor(dtype: .u8, shape: [256], bytes: y.bytes)
    }
}

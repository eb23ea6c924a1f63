import PerchGraph

/// The graph pass that runs a float16 (or bfloat16) model in float32 (applied by `Session.init`
/// and `perch optimize`). Models exported with `.half()` compute in float16 end to end; Perch's
/// float kernels are float32 (fp16 weights aside), so the model is widened: its half-precision
/// constants become float32, Casts to half become Casts to float32, a half graph input is cast
/// to float32 where it enters and a half output is cast back where it leaves. The caller still
/// feeds and reads float16; results carry float32 rounding inside (closer to the real-valued
/// model than float16 arithmetic, within float16's precision of it).
///
/// Models that only store some weights as float16 and widen them with `Cast(to: FLOAT)` — what
/// `perch optimize` writes for fp16 layers — compute in float32 already and are left alone.
public enum HalfModels {
    static let onnxFloat = 1

    static func isHalf(_ d: DType) -> Bool { d == .f16 || d == .bf16 }

    static func isHalfCode(_ code: Int) -> Bool { code == 10 || code == 16 }

    /// Operators that only move or select elements: they run on half-precision values as they
    /// are, so a model that merely reshapes or gathers float16 data is not widened.
    static let movesOnly: Set<OpType> = [
        .identity, .reshape, .flatten, .squeeze, .unsqueeze, .transpose, .concat, .split, .slice, .gather,
        .expand, .tile, .shape, .size,
    ]

    /// True when some node computes on a half-precision value (not a Cast, not an operator that
    /// only moves elements): a half input or constant, the result of a Cast to half, or data
    /// moved from those.
    public static func computesInHalf(_ graph: Graph) -> Bool {
        var half = Set<String>()
        for input in graph.runtimeInputs where isHalf(input.type.dtype) { half.insert(input.name) }
        for (name, t) in graph.initializers where isHalf(t.dtype) { half.insert(name) }
        for node in graph.nodes {
            let readsHalf = node.inputs.contains { half.contains($0) }
            switch node.op {
            case .cast:
                if isHalfCode(node.attributes.int("to", default: 0)) { for out in node.outputs { half.insert(out) } }
            case .castLike:
                if node.inputs.count > 1 && half.contains(node.inputs[1]) { for out in node.outputs { half.insert(out) } }
            case let op where movesOnly.contains(op):
                if readsHalf && op != .shape && op != .size { for out in node.outputs { half.insert(out) } }
            default:
                if readsHalf { return true }
            }
        }
        return false
    }

    /// Widens `graph` if it computes in half precision; returns whether it did.
    @discardableResult
    public static func widen(_ graph: inout Graph) -> Bool {
        guard computesInHalf(graph) else { return false }
        widenConstantsAndCasts(&graph)
        let opset = graph.nodes.first.map { $0.attributes.int("_opset", default: 13) } ?? 13
        func rename(_ old: String, _ new: String) {
            for i in graph.nodes.indices {
                for j in graph.nodes[i].inputs.indices where graph.nodes[i].inputs[j] == old { graph.nodes[i].inputs[j] = new }
            }
        }
        var entry = [Node]()
        for input in graph.runtimeInputs where isHalf(input.type.dtype) {
            let wide = input.name + "::f32"
            rename(input.name, wide)
            entry.append(Node(name: input.name + "::widen", op: .cast, inputs: [input.name], outputs: [wide],
                              attributes: Attributes(["to": .int(onnxFloat), "_opset": .int(opset)])))
        }
        var exit = [Node]()
        let inputNames = Set(graph.inputs.map { $0.name })
        for output in graph.outputs where isHalf(output.type.dtype) && !inputNames.contains(output.name) && graph.initializers[output.name] == nil {
            let wide = output.name + "::f32"
            for i in graph.nodes.indices {
                for j in graph.nodes[i].outputs.indices where graph.nodes[i].outputs[j] == output.name { graph.nodes[i].outputs[j] = wide }
            }
            rename(output.name, wide)
            exit.append(Node(name: output.name + "::narrow", op: .cast, inputs: [wide], outputs: [output.name],
                             attributes: Attributes(["to": .int(output.type.dtype == .bf16 ? 16 : 10), "_opset": .int(opset)])))
        }
        graph.nodes = entry + graph.nodes + exit
        return true
    }

    /// Half constants read by anything but a Cast become float32; Casts, ConstantOfShape and
    /// EyeLike producing half produce float32. Body graphs (If/Loop/Scan) likewise.
    static func widenConstantsAndCasts(_ graph: inout Graph) {
        var readOnlyByCast = [String: Bool]()
        for node in graph.nodes {
            for name in node.inputs where !name.isEmpty {
                readOnlyByCast[name] = (readOnlyByCast[name] ?? true) && node.op == .cast
            }
        }
        for (name, t) in graph.initializers where isHalf(t.dtype) && !(readOnlyByCast[name] ?? false) {
            graph.initializers[name] = widened(t)
        }
        for i in graph.nodes.indices {
            var node = graph.nodes[i]
            switch node.op {
            case .cast, .eyeLike:
                let key = node.op == .cast ? "to" : "dtype"
                if isHalfCode(node.attributes.int(key, default: 0)) { node.attributes[key] = .int(onnxFloat) }
            case .constantOfShape:
                if let v = node.attributes.tensor("value"), isHalf(v.dtype) { node.attributes["value"] = .tensor(widened(v)) }
            default:
                break
            }
            for (key, value) in node.attributes.values {
                if case .graph(var body) = value {
                    widenConstantsAndCasts(&body)
                    node.attributes[key] = .graph(body)
                }
            }
            graph.nodes[i] = node
        }
    }

    static func widened(_ t: Tensor) -> Tensor {
        var out = Tensor(dtype: .f32, shape: t.shape)
        t.bytes.withUnsafeBytes { src in
            out.bytes.withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for i in 0..<t.count { writeElementFromDouble(d, .f32, i, readElementAsDouble(s, t.dtype, i)) }
            }
        }
        return out
    }
}

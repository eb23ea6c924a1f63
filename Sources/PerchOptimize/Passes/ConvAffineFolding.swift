import PerchGraph

/// Folds a per-output-channel Mul or Add of a constant into the Conv that feeds it:
/// `(W∗x + b)·s` becomes `(s·W)∗x + s·b`, and `(W∗x + b) + a` becomes `W∗x + (b + a)`.
///
/// Caffe2 exports (GoogLeNet-v2 among the ONNX model zoo's classics) write a BatchNorm's affine
/// part as a Mul and an Add of `[C, 1, 1]` constants after the Conv; ONNX Runtime folds them at
/// session start (its Conv+Mul and Conv+Add fusions), and run as layers they are two passes over
/// every activation and keep the Relu that follows from fusing into the Conv. Only when the
/// Conv's output has that one reader, is not a graph output, and the constant is float32 and
/// broadcasts along the channel axis alone (a scalar, `[C, 1, 1]`, `[1, C, 1, 1]`, …). New weight
/// tensors get new names, so weights shared with another layer are untouched.
public struct ConvAffineFolding: GraphPass {
    public init() {}
    public var name: String { "conv-affine-folding" }

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var taken = Set<String>()
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            i += 1
            guard node.op == .mul || node.op == .add, node.inputs.count == 2, node.outputs.count == 1 else { continue }
            let producers = GraphEditing.producers(graph)
            // Which input is the Conv's output and which the constant.
            var pick: (conv: Int, x: String, c: Tensor)?
            for (k, name) in node.inputs.enumerated() {
                let other = node.inputs[1 - k]
                if let p = producers[name], graph.nodes[p].op == .conv, let t = graph.initializers[other], t.dtype == .f32,
                   !graph.runtimeInputs.contains(where: { $0.name == other }) {
                    pick = (p, name, t)
                    break
                }
            }
            guard let (p, x, constant) = pick else { continue }
            let consumers = GraphEditing.consumers(graph)
            guard consumers[x]?.count == 1, !GraphEditing.isGraphOutput(graph, x) else { continue }
            var conv = graph.nodes[p]
            guard let wName = conv.input(1), let w = graph.initializers[wName], w.dtype == .f32, w.rank >= 3 else { continue }
            let channels = w.shape[0]
            guard let perChannel = Self.channelValues(constant, channels: channels, outputRank: w.rank) else { continue }
            var bias = [Float](repeating: 0, count: channels)
            if let bName = conv.input(2) {
                guard let b = graph.initializers[bName], b.dtype == .f32, b.count == channels else { continue }
                bias = GraphEditing.floats(b)
            }
            if node.op == .mul {
                var newW = GraphEditing.floats(w)
                let inner = newW.count / channels
                for idx in 0..<newW.count { newW[idx] *= perChannel[idx / inner] }
                for c in 0..<channels { bias[c] *= perChannel[c] }
                let newWName = GraphEditing.freshName(graph, wName + "_mulfold", taken: &taken)
                graph.initializers[newWName] = Tensor(shape: w.shape, values: newW)
                conv.inputs[1] = newWName
            } else {
                for c in 0..<channels { bias[c] += perChannel[c] }
            }
            let newBName = GraphEditing.freshName(graph, (conv.name.isEmpty ? wName : conv.name) + "_affine_bias", taken: &taken)
            graph.initializers[newBName] = Tensor(shape: [channels], values: bias)
            while conv.inputs.count <= 2 { conv.inputs.append("") }
            conv.inputs[2] = newBName
            conv.outputs[0] = node.outputs[0]
            graph.nodes[p] = conv
            graph.nodes.remove(at: i - 1)
            i -= 1
            folded += 1
        }
        if folded > 0 { graph.removeDeadNodes() }
        return folded
    }

    /// The constant's value per output channel when, broadcast against a Conv output of rank
    /// `outputRank` (`[N, C, spatial…]`), it varies along the channel axis only; nil otherwise.
    static func channelValues(_ t: Tensor, channels: Int, outputRank: Int) -> [Float]? {
        guard t.rank <= outputRank else { return nil }
        let values = GraphEditing.floats(t)
        if values.count == 1 { return [Float](repeating: values[0], count: channels) }
        // Right-aligned: the constant's axis that meets the channel axis (1) holds C, all others 1.
        let channelAxis = t.rank - (outputRank - 1)
        guard channelAxis >= 0, t.shape[channelAxis] == channels else { return nil }
        for (axis, d) in t.shape.enumerated() where axis != channelAxis && d != 1 { return nil }
        return values
    }
}

import PerchGraph

/// Folds a per-channel Mul or Add of a constant into the Conv or inference BatchNormalization
/// that feeds it: `(W∗x + b)·s` becomes `(s·W)∗x + s·b` and `(W∗x + b) + a` becomes
/// `W∗x + (b + a)`; after a BatchNormalization, its scale and bias take `s` and `a` the same way.
///
/// Caffe2 exports (GoogLeNet-v2 and DenseNet-121 among the ONNX model zoo's classics) write a
/// BatchNorm's affine part as a Mul and an Add of `[C, 1, 1]` constants after it; ONNX Runtime
/// folds them at session start (its Conv+Mul and Conv+Add fusions), and run as layers they are
/// two passes over every activation and keep the Relu that follows from fusing into the layer.
/// Only when the layer's output has that one reader, is not a graph output, and the constant is
/// float32 and provably broadcasts along the channel axis alone (a one-element tensor, or
/// `[C, 1, …]` / `[1, C, 1, …]` against an output whose rank is known: a Conv's is its weights'
/// rank). New tensors get new names, so parameters shared with another layer are untouched.
public struct ChannelAffineFolding: GraphPass {
    public init() {}
    public var name: String { "channel-affine-folding" }

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var taken = Set<String>()
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            i += 1
            guard node.op == .mul || node.op == .add, node.inputs.count == 2, node.outputs.count == 1 else { continue }
            let producers = GraphEditing.producers(graph)
            let runtime = Set(graph.runtimeInputs.map(\.name))
            // Which input is the layer's output and which the constant.
            var pick: (layer: Int, x: String, c: Tensor)?
            for (k, name) in node.inputs.enumerated() {
                let other = node.inputs[1 - k]
                if let p = producers[name], graph.nodes[p].op == .conv || graph.nodes[p].op == .batchNormalization,
                   let t = graph.initializers[other], t.dtype == .f32, !runtime.contains(other) {
                    pick = (p, name, t)
                    break
                }
            }
            guard let (p, x, constant) = pick else { continue }
            guard GraphEditing.hasOneReader(graph, x) else { continue }
            let layer = graph.nodes[p]
            let rewritten = layer.op == .conv
                ? foldIntoConv(layer, node.op, constant, &graph, &taken)
                : foldIntoBatchNorm(layer, node.op, constant, &graph, &taken, producers: producers)
            guard let done = rewritten else { continue }
            GraphEditing.absorb(&graph, node: i - 1, into: p, as: done)
            i -= 1
            folded += 1
        }
        if folded > 0 { graph.removeDeadNodes() }
        return folded
    }

    func foldIntoConv(_ layer: Node, _ op: OpType, _ constant: Tensor, _ graph: inout Graph, _ taken: inout Set<String>) -> Node? {
        var conv = layer
        guard let wName = conv.input(1), let w = graph.initializers[wName], w.dtype == .f32, w.rank >= 3 else { return nil }
        let channels = w.shape[0]
        guard let perChannel = Self.channelValues(constant, channels: channels, outputRank: w.rank) else { return nil }
        var bias = [Float](repeating: 0, count: channels)
        if let bName = conv.input(2) {
            guard let b = graph.initializers[bName], b.dtype == .f32, b.count == channels else { return nil }
            bias = GraphEditing.floats(b)
        }
        if op == .mul {
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
        return conv
    }

    func foldIntoBatchNorm(_ layer: Node, _ op: OpType, _ constant: Tensor, _ graph: inout Graph, _ taken: inout Set<String>,
                           producers: [String: Int]) -> Node? {
        var bn = layer
        guard bn.attributes.int("training_mode", default: 0) == 0, bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }),
              let sName = bn.input(1), let bName = bn.input(2), let s = graph.initializers[sName], let b = graph.initializers[bName],
              s.dtype == .f32, b.dtype == .f32, s.count == b.count, let x = bn.input(0) else { return nil }
        let channels = s.count
        var perChannel: [Float]?
        if constant.count == 1 && constant.rank <= 1 {
            // A scalar or [1] keeps the (rank ≥ 1) output's shape whatever its rank.
            perChannel = [Float](repeating: GraphEditing.floats(constant)[0], count: channels)
        } else if let rank = Self.knownRank(x, graph, producers, depth: 0) {
            perChannel = Self.channelValues(constant, channels: channels, outputRank: rank)
        }
        guard let perChannel else { return nil }
        var scale = GraphEditing.floats(s), bias = GraphEditing.floats(b)
        if op == .mul {
            for c in 0..<channels { scale[c] *= perChannel[c]; bias[c] *= perChannel[c] }
            let newS = GraphEditing.freshName(graph, sName + "_mulfold", taken: &taken)
            graph.initializers[newS] = Tensor(shape: s.shape, values: scale)
            bn.inputs[1] = newS
        } else {
            for c in 0..<channels { bias[c] += perChannel[c] }
        }
        let newB = GraphEditing.freshName(graph, bName + "_affine", taken: &taken)
        graph.initializers[newB] = Tensor(shape: b.shape, values: bias)
        bn.inputs[2] = newB
        return bn
    }

    /// The rank of `value` when the graph fixes it: a declared input's, a Conv's (its weights'),
    /// or one carried through ops whose output has their first input's rank.
    static func knownRank(_ value: String, _ graph: Graph, _ producers: [String: Int], depth: Int) -> Int? {
        if let input = graph.inputs.first(where: { $0.name == value }) {
            return input.type.dims.isEmpty ? nil : input.type.dims.count
        }
        guard depth < 64, let p = producers[value] else { return nil }
        let node = graph.nodes[p]
        switch node.op {
        case .conv:
            guard let w = node.input(1).flatMap({ graph.initializers[$0] }) else { return nil }
            return w.rank
        case .batchNormalization, .relu, .clip, .maxPool, .averagePool, .lrn, .dropout, .identity, .concat, .sigmoid, .tanh:
            guard let x = node.input(0) else { return nil }
            return knownRank(x, graph, producers, depth: depth + 1)
        default:
            return nil
        }
    }

    /// The constant's value per output channel when, broadcast against a layer output of rank
    /// `outputRank` (`[N, C, spatial…]`), it varies along the channel axis only; nil otherwise.
    static func channelValues(_ t: Tensor, channels: Int, outputRank: Int) -> [Float]? {
        guard t.rank <= outputRank, outputRank >= 2 else { return nil }
        let values = GraphEditing.floats(t)
        if values.count == 1 { return [Float](repeating: values[0], count: channels) }
        // Right-aligned: the constant's axis that meets the channel axis (1) holds C, all others 1.
        let channelAxis = t.rank - (outputRank - 1)
        guard channelAxis >= 0, t.shape[channelAxis] == channels else { return nil }
        for (axis, d) in t.shape.enumerated() where axis != channelAxis && d != 1 { return nil }
        return values
    }
}

import CPerchShims
import PerchGraph

/// Folds an inference BatchNormalization into the Conv, ConvTranspose (group 1) or Gemm that
/// produces its input: `y = s·(Wx + b − mean) + beta` with `s = gamma / sqrt(var + eps)` becomes a
/// layer with weights `s·W` (per output channel) and bias `s·(b − mean) + beta`.
///
/// Only when the layer's output is read by the BatchNormalization alone and every parameter is a
/// constant. New weight tensors get new names, so weights shared with another layer are untouched.
public struct BatchNormFolding: GraphPass {
    public init() {}
    public var name: String { "batchnorm-folding" }

    public func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var taken = Set<String>()
        var i = 0
        while i < graph.nodes.count {
            let bn = graph.nodes[i]
            i += 1
            guard bn.op == .batchNormalization, let x = bn.input(0), bn.outputs.count >= 1,
                  bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }),
                  bn.attributes.int("training_mode", default: 0) == 0
            else { continue }
            guard GraphEditing.hasOneReader(graph, x), let p = GraphEditing.producers(graph)[x] else { continue }
            var params = [[Float]]()
            for k in 1...4 {
                guard let name = bn.input(k), let t = graph.initializers[name] else { break }
                params.append(GraphEditing.floats(t))
            }
            guard params.count == 4 else { continue }
            let eps = bn.attributes.float("epsilon", default: 1e-5)
            let channels = params[0].count
            guard params.allSatisfy({ $0.count == channels }) else { continue }
            var s = [Float](repeating: 0, count: channels)
            for c in 0..<channels { s[c] = params[0][c] / perch_sqrtf(params[3][c] + eps) }

            var layer = graph.nodes[p]
            guard let wName = layer.input(1), let w = graph.initializers[wName], w.dtype == .f32 else { continue }
            // Which axis of W is the output channel.
            let axis: Int
            switch layer.op {
            case .conv:
                axis = 0
            case .convTranspose:
                guard layer.attributes.int("group", default: 1) == 1 else { continue }
                axis = 1
            case .gemm:
                guard w.rank == 2 else { continue }
                axis = layer.attributes.int("transB", default: 0) != 0 ? 0 : 1
            default:
                continue
            }
            guard w.rank >= 2, w.shape[axis] == channels else { continue }
            // Gemm bias C must be absent, scalar or [N]; it is scaled by its own `beta`.
            var bias = [Float](repeating: 0, count: channels)
            let biasIndex = 2
            if let bName = layer.input(biasIndex) {
                guard let b = graph.initializers[bName] else { continue }
                let values = GraphEditing.floats(b)
                let scale = layer.op == .gemm ? layer.attributes.float("beta", default: 1) : 1
                if values.count == channels {
                    for c in 0..<channels { bias[c] = values[c] * scale }
                } else if values.count == 1 {
                    for c in 0..<channels { bias[c] = values[0] * scale }
                } else {
                    continue
                }
            }
            var newW = GraphEditing.floats(w)
            let inner = elementCount(Array(w.shape[(axis + 1)...]))
            for idx in 0..<newW.count { newW[idx] *= s[(idx / inner) % channels] }
            for c in 0..<channels { bias[c] = s[c] * (bias[c] - params[2][c]) + params[1][c] }

            let newWName = GraphEditing.freshName(graph, wName + "_bnfold", taken: &taken)
            let newBName = GraphEditing.freshName(graph, (layer.name.isEmpty ? wName : layer.name) + "_bnfold_bias", taken: &taken)
            graph.initializers[newWName] = Tensor(shape: w.shape, values: newW)
            graph.initializers[newBName] = Tensor(shape: [channels], values: bias)
            layer.inputs[1] = newWName
            while layer.inputs.count <= biasIndex { layer.inputs.append("") }
            layer.inputs[biasIndex] = newBName
            if layer.op == .gemm { layer.attributes["beta"] = .float(1) }
            GraphEditing.absorb(&graph, node: i - 1, into: p, as: layer)
            i -= 1
            folded += 1
        }
        if folded > 0 { graph.removeDeadNodes() }
        return folded
    }
}

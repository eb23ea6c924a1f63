import Foundation
import PerchGraph

/// The number format one layer computes in.
public enum Precision: String, Sendable, CaseIterable, Comparable {
    case int8, fp16, fp32

    public static func < (a: Precision, b: Precision) -> Bool {
        let order: [Precision] = [.int8, .fp16, .fp32]
        return order.firstIndex(of: a)! < order.firstIndex(of: b)!
    }
}

/// A layer the optimizer can put in another precision: a Conv, Gemm or MatMul with constant weights.
public struct QuantizableLayer: Sendable, Equatable {
    /// The layer's node name (its op and output when unnamed): the key of precision plans.
    public var name: String
    public var op: OpType
    public var input: String
    public var weight: String
    public var output: String
    /// The axis of the weight tensor that indexes output channels.
    public var channelAxis: Int
    public var weightCount: Int
    /// Multiply-accumulates per inference (filled in after calibration, when shapes are known).
    public var macs: Int = 0
}

/// Rewrites an fp32 graph into the QDQ form that ONNX Runtime's `quantize_static` (QDQ format,
/// per-channel) produces, layer by layer:
/// - int8 layer: weights as an int8 initializer (symmetric, per output channel) + DequantizeLinear;
///   bias as int32 with scale `s_x·s_w[c]` + DequantizeLinear; the activation input and output
///   wrapped in QuantizeLinear → DequantizeLinear with per-tensor uint8 scale/zero point;
/// - fp16 layer: weights as an f16 initializer + Cast to f32 (and, when the CPU computes in fp16,
///   the activation input rounded through fp16 so the measured accuracy is the device's);
/// - fp32 layer: unchanged.
/// Graph outputs stay fp32.
public enum Quantizer {
    public static func layers(_ graph: Graph) -> [QuantizableLayer] {
        var result = [QuantizableLayer]()
        for node in graph.nodes {
            guard let x = node.input(0), let w = node.input(1), let wt = graph.initializers[w], wt.dtype == .f32,
                  let y = node.outputs.first, !y.isEmpty else { continue }
            let axis: Int
            switch node.op {
            case .conv:
                guard wt.rank >= 3 else { continue }
                axis = 0
            case .gemm:
                guard wt.rank == 2, node.attributes.float("alpha", default: 1) == 1 else { continue }
                axis = node.attributes.int("transB", default: 0) != 0 ? 0 : 1
            case .matMul:
                guard wt.rank == 2 else { continue }
                axis = 1
            default:
                continue
            }
            result.append(QuantizableLayer(
                name: node.name.isEmpty ? node.displayName : node.name, op: node.op, input: x, weight: w, output: y,
                channelAxis: axis, weightCount: wt.count))
        }
        return result
    }

    /// Activation tensors whose ranges calibration must provide for `layers`.
    public static func activations(_ layers: [QuantizableLayer]) -> [String] {
        var seen = Set<String>()
        var out = [String]()
        for l in layers {
            for t in [l.input, l.output] where seen.insert(t).inserted { out.append(t) }
        }
        return out
    }

    /// Symmetric per-channel int8 weights: `scale[c] = max|W_c| / 127`.
    /// `minScales` (one per channel, optional) floors the scales: see `biasScaleFloor`.
    public static func quantizeWeights(_ w: Tensor, axis: Int, minScales: [Float]? = nil) -> (q: [Int8], scales: [Float]) {
        let values = GraphEditing.floats(w)
        let channels = w.shape[axis]
        let inner = elementCount(Array(w.shape[(axis + 1)...]))
        var maxAbs = [Float](repeating: 0, count: channels)
        for (i, v) in values.enumerated() {
            let c = (i / inner) % channels
            maxAbs[c] = Swift.max(maxAbs[c], Swift.abs(v))
        }
        var scales = maxAbs.map { $0 > 0 ? $0 / 127 : 1 }
        if let minScales, minScales.count == channels {
            for c in 0..<channels where maxAbs[c] > 0 && minScales[c] > scales[c] { scales[c] = minScales[c] }
        }
        var q = [Int8](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            let r = (v / scales[(i / inner) % channels]).rounded(.toNearestOrEven)
            q[i] = Int8(Swift.max(-127, Swift.min(127, r)))
        }
        return (q, scales)
    }

    /// The expected change of each output channel when `node` computes with the dequantized
    /// weights instead of `weights`, given the mean of each input channel: Conv (any group count;
    /// padding is ignored) and Gemm with `transA = 0`. nil when the shapes do not line up.
    static func weightRoundingShift(_ node: Node, weights w: Tensor, quantized q: [Int8], scales: [Float], axis: Int,
                                    inputMeans means: [Float]) -> [Float]? {
        let values = GraphEditing.floats(w)
        switch node.op {
        case .conv:
            let oc = w.shape[0], icPerGroup = w.shape[1]
            let group = node.attributes.int("group", default: 1)
            guard group > 0, oc % group == 0, means.count == icPerGroup * group else { return nil }
            let kernel = elementCount(Array(w.shape[2...]))
            var shift = [Float](repeating: 0, count: oc)
            for o in 0..<oc {
                let g = o / (oc / group)
                var acc = 0.0
                for icl in 0..<icPerGroup {
                    let m = Double(means[g * icPerGroup + icl])
                    let base = (o * icPerGroup + icl) * kernel
                    var e = 0.0
                    for k in 0..<kernel { e += Double(Float(q[base + k]) * scales[o] - values[base + k]) }
                    acc += e * m
                }
                shift[o] = Float(acc)
            }
            return shift
        case .gemm:
            guard node.attributes.int("transA", default: 0) == 0, node.attributes.float("beta", default: 1) == 1, w.rank == 2 else { return nil }
            let transB = node.attributes.int("transB", default: 0) != 0
            let n = transB ? w.shape[0] : w.shape[1], k = transB ? w.shape[1] : w.shape[0]
            guard means.count == k else { return nil }
            var shift = [Float](repeating: 0, count: n)
            for j in 0..<n {
                var acc = 0.0
                for i in 0..<k {
                    let idx = transB ? j * k + i : i * n + j
                    acc += Double(Float(q[idx]) * scales[j] - values[idx]) * Double(means[i])
                }
                shift[j] = Float(acc)
            }
            return shift
        default:
            return nil
        }
    }

    /// The values of `node`'s bias when it runs as int32 with scale s_x·s_w (Conv, and Gemm with a
    /// [N] bias and beta 1): a float32 initializer of one value per output channel; else nil.
    static func int32Bias(_ node: Node, in g: Graph, channels: Int) -> [Float]? {
        guard let b = node.input(2), let bt = g.initializers[b], bt.dtype == .f32, bt.count == channels,
              node.op != .gemm || node.attributes.float("beta", default: 1) == 1 else { return nil }
        return GraphEditing.floats(bt)
    }

    /// The smallest weight scale per output channel at which the int32 bias (scale s_x·s_w) holds
    /// the channel's bias with room for the accumulated products: |b| / (s_x·s_w) ≤ 2^30. A filter
    /// whose weights are all but zero (pruned, or scaled away by a folded BatchNorm) would
    /// otherwise get a scale near zero and a bias clamped to a tiny fraction of itself — that
    /// channel's output silently wrong. ONNX Runtime's quantizer raises such weight scales the
    /// same way. For ordinary channels the floor is far below max|w| / 127 and changes nothing.
    static func biasScaleFloor(bias: [Float], inputScale sx: Float) -> [Float] {
        bias.map { b in
            let floor = Double(Swift.abs(b)) / (Double(sx) * 1_073_741_824)
            return floor.isFinite ? Float(floor) : 0
        }
    }

    /// Per-tensor uint8 parameters for a real range containing 0 (as ONNX Runtime computes them).
    public static func activationParameters(_ lo: Float, _ hi: Float) -> (scale: Float, zeroPoint: UInt8) {
        let rmin = Swift.min(lo, 0)
        let rmax = Swift.max(hi, 0)
        var scale = (rmax - rmin) / 255
        if scale <= 0 || !scale.isFinite { scale = 1 }
        let zp = Swift.max(0, Swift.min(255, (-rmin / scale).rounded(.toNearestOrEven)))
        return (scale, UInt8(zp))
    }

    /// Returns `graph` with each named layer in its precision (layers not named stay fp32).
    /// A layer planned int8 whose activations have no range stays fp32.
    /// `inputMeans` (layer name → mean of each input channel over the calibration set) turns on
    /// bias correction for those int8 layers: the bias absorbs the expected output shift that
    /// rounding the weights causes, `(W_q − W)·E[x]` per output channel (Nagel et al., 2019).
    public static func apply(
        _ graph: Graph, layers: [QuantizableLayer], plan: [String: Precision], ranges: [String: (Float, Float)],
        fp16Compute: Bool, inputMeans: [String: [Float]] = [:]
    ) -> Graph {
        var g = graph
        var taken = Set<String>()
        let opset = Swift.max(13, GraphEditing.opset(graph))
        let attrs = Attributes(["_opset": .int(opset)])
        var qdqOf: [String: String] = [:]  // activation → its DequantizeLinear output
        var outputRewire: [String: String] = [:]
        var newNodes = [Node]()
        let byOutput = Dictionary(layers.map { ($0.output, $0) }, uniquingKeysWith: { a, _ in a })

        func qdq(_ x: String, into nodes: inout [Node]) -> String? {
            if let d = qdqOf[x] { return d }
            guard let (lo, hi) = ranges[x] else { return nil }
            let (scale, zp) = activationParameters(lo, hi)
            let sName = GraphEditing.freshName(g, x + "_scale", taken: &taken)
            let zName = GraphEditing.freshName(g, x + "_zero_point", taken: &taken)
            let qName = GraphEditing.freshName(g, x + "_QuantizeLinear_Output", taken: &taken)
            let dName = GraphEditing.freshName(g, x + "_DequantizeLinear_Output", taken: &taken)
            g.initializers[sName] = Tensor(shape: [], values: [scale])
            g.initializers[zName] = Tensor(shape: [], values: [zp])
            nodes.append(Node(name: x + "_QuantizeLinear", op: .quantizeLinear, inputs: [x, sName, zName], outputs: [qName], attributes: attrs))
            nodes.append(Node(name: x + "_DequantizeLinear", op: .dequantizeLinear, inputs: [qName, sName, zName], outputs: [dName], attributes: attrs))
            qdqOf[x] = dName
            return dName
        }

        for var node in g.nodes {
            guard let y = node.outputs.first, let layer = byOutput[y], node.input(1) == layer.weight,
                  let precision = plan[layer.name], precision != .fp32, let w = g.initializers[layer.weight]
            else {
                newNodes.append(node)
                continue
            }
            switch precision {
            case .int8:
                guard ranges[layer.input] != nil else {
                    newNodes.append(node)
                    continue
                }
                let xq = qdq(layer.input, into: &newNodes)!
                node.inputs[0] = xq
                let sx = activationParameters(ranges[layer.input]!.0, ranges[layer.input]!.1).scale
                let (q, scales) = quantizeWeights(w, axis: layer.channelAxis,
                                                  minScales: int32Bias(node, in: g, channels: w.shape[layer.channelAxis])
                                                      .map { biasScaleFloor(bias: $0, inputScale: sx) })
                let wq = GraphEditing.freshName(g, layer.weight + "_quantized", taken: &taken)
                let ws = GraphEditing.freshName(g, layer.weight + "_scale", taken: &taken)
                let wz = GraphEditing.freshName(g, layer.weight + "_zero_point", taken: &taken)
                let wd = GraphEditing.freshName(g, layer.weight + "_DequantizeLinear_Output", taken: &taken)
                g.initializers[wq] = Tensor(shape: w.shape, values: q)
                g.initializers[ws] = Tensor(shape: [scales.count], values: scales)
                g.initializers[wz] = Tensor(shape: [scales.count], values: [Int8](repeating: 0, count: scales.count))
                newNodes.append(Node(name: layer.weight + "_DequantizeLinear", op: .dequantizeLinear, inputs: [wq, ws, wz], outputs: [wd],
                                     attributes: Attributes(["_opset": .int(opset), "axis": .int(layer.channelAxis)])))
                node.inputs[1] = wd
                if let means = inputMeans[layer.name],
                   let shift = weightRoundingShift(node, weights: w, quantized: q, scales: scales, axis: layer.channelAxis, inputMeans: means) {
                    let old = node.input(2).flatMap { g.initializers[$0] }
                    if old == nil || (old!.dtype == .f32 && old!.count == shift.count) {
                        let base = old.map { GraphEditing.floats($0) } ?? [Float](repeating: 0, count: shift.count)
                        let corrected = GraphEditing.freshName(g, (node.input(2) ?? layer.weight) + "_bias_corrected", taken: &taken)
                        g.initializers[corrected] = Tensor(shape: [shift.count], values: zip(base, shift).map { $0 - $1 })
                        if node.inputs.count > 2 { node.inputs[2] = corrected } else { node.inputs.append(corrected) }
                    }
                }
                // Bias: int32 with scale s_x·s_w[c] (the bias corrected above, if it was).
                if let b = node.input(2), let bv = int32Bias(node, in: g, channels: scales.count) {
                    var bs = [Float](repeating: 1, count: bv.count)
                    var bq = [Int32](repeating: 0, count: bv.count)
                    for c in 0..<bv.count {
                        let s = sx * scales[c]
                        bs[c] = s > 0 ? s : 1
                        // Clamped in Double: a filter whose weights are all but zero (pruned, or
                        // scaled away by a folded BatchNorm) has a scale near zero and a bias far
                        // beyond Int32 over it, and Float(Int32.max) rounds up to 2^31, which
                        // Int32() traps on.
                        let r = Double((bv[c] / bs[c]).rounded(.toNearestOrEven))
                        bq[c] = r.isNaN ? 0 : Int32(Swift.max(-2_147_483_647, Swift.min(2_147_483_647, r)))
                    }
                    let bqn = GraphEditing.freshName(g, b + "_quantized", taken: &taken)
                    let bsn = GraphEditing.freshName(g, b + "_quantized_scale", taken: &taken)
                    let bzn = GraphEditing.freshName(g, b + "_quantized_zero_point", taken: &taken)
                    let bdn = GraphEditing.freshName(g, b + "_DequantizeLinear_Output", taken: &taken)
                    g.initializers[bqn] = Tensor(shape: g.initializers[b]!.shape, values: bq)  // int32Bias found it
                    g.initializers[bsn] = Tensor(shape: [bs.count], values: bs)
                    g.initializers[bzn] = Tensor(shape: [bs.count], values: [Int32](repeating: 0, count: bs.count))
                    newNodes.append(Node(name: b + "_DequantizeLinear", op: .dequantizeLinear, inputs: [bqn, bsn, bzn], outputs: [bdn],
                                         attributes: Attributes(["_opset": .int(opset), "axis": .int(0)])))
                    node.inputs[2] = bdn
                }
                newNodes.append(node)
                if !GraphEditing.isGraphOutput(g, y), ranges[y] != nil {
                    let d = qdq(y, into: &newNodes)!
                    outputRewire[y] = d
                }
            case .fp16:
                if fp16Compute {
                    let h = GraphEditing.freshName(g, layer.input + "_fp16", taken: &taken)
                    let back = GraphEditing.freshName(g, layer.input + "_fp16_f32", taken: &taken)
                    newNodes.append(Node(name: h, op: .cast, inputs: [layer.input], outputs: [h], attributes: Attributes(["_opset": .int(opset), "to": .int(10)])))
                    newNodes.append(Node(name: back, op: .cast, inputs: [h], outputs: [back], attributes: Attributes(["_opset": .int(opset), "to": .int(1)])))
                    node.inputs[0] = back
                }
                let half = GraphEditing.floats(w).map { HalfConversion.fromFloat($0) }
                let wh = GraphEditing.freshName(g, layer.weight + "_fp16", taken: &taken)
                let wc = GraphEditing.freshName(g, layer.weight + "_fp16_cast", taken: &taken)
                g.initializers[wh] = Tensor(dtype: .f16, shape: w.shape, bytes: half.withUnsafeBytes { [UInt8]($0) })
                newNodes.append(Node(name: wc, op: .cast, inputs: [wh], outputs: [wc], attributes: Attributes(["_opset": .int(opset), "to": .int(1)])))
                node.inputs[1] = wc
                newNodes.append(node)
            case .fp32:
                newNodes.append(node)
            }
        }
        // Readers of an int8 layer's output read its dequantized value (what an int8 kernel emits).
        for i in newNodes.indices where newNodes[i].op != .quantizeLinear {
            for j in newNodes[i].inputs.indices {
                if let r = outputRewire[newNodes[i].inputs[j]] { newNodes[i].inputs[j] = r }
            }
        }
        g.nodes = newNodes
        g.removeDeadNodes()
        try? g.validate()
        return g
    }
}

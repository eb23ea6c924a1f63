import PerchGraph

import CPerchShims

/// Folds a float Relu or Clip (constant bounds) into the Conv or inference BatchNormalization
/// that feeds it, as ONNX Runtime's Conv+activation fusion does: the layer gets the internal
/// attributes `_clamp_min`/`_clamp_max` and clamps each output tile in the GEMM micro-kernel's
/// epilogue while it is in registers (depthwise: each channel while it is in cache; BatchNorm:
/// each value as it is written), instead of a separate pass over the whole activation. Only when
/// the layer's output has that one reader and is not a graph output. The clamp is the Clip
/// kernel's expression, so results are unchanged.
///
/// It also folds SiLU written out as `Mul(x, Sigmoid(x))` (YOLO-style detectors and EfficientNets
/// have one after almost every Conv) into the Sigmoid, as `_times_input` = 1: one pass over the
/// activation instead of two, and one tensor fewer in the arena. Only when the Sigmoid's output
/// has that one reader and is not a graph output.
public enum ActivationFusion {
    public static func apply(_ graph: inout Graph) {
        let uses = TensorUses(graph)
        let readers = uses.readers, producer = uses.producer
        var removed = [Bool](repeating: false, count: graph.nodes.count)
        for i in 0..<graph.nodes.count {
            let act = graph.nodes[i]
            guard act.op == .relu || act.op == .clip, let x = act.input(0), readers[x] == 1, let p = producer[x],
                  graph.nodes[p].op == .conv || isInferenceBatchNorm(graph.nodes[p]), graph.nodes[p].attributes["_clamp_min"] == nil,
                  act.outputs.count == 1, !act.outputs[0].isEmpty,
                  let (lo, hi) = bounds(act, graph) else { continue }
            var conv = graph.nodes[p]
            conv.attributes.values["_clamp_min"] = .float(lo)
            conv.attributes.values["_clamp_max"] = .float(hi)
            conv.outputs[0] = act.outputs[0]
            graph.nodes[p] = conv
            removed[i] = true
        }
        for i in 0..<graph.nodes.count where !removed[i] {
            let mul = graph.nodes[i]
            guard mul.op == .mul, mul.inputs.count == 2, mul.outputs.count == 1 else { continue }
            for k in 0..<2 {
                guard let p = producer[mul.inputs[k]], !removed[p], graph.nodes[p].op == .sigmoid, readers[mul.inputs[k]] == 1,
                      graph.nodes[p].input(0) == mul.inputs[1 - k], graph.nodes[p].outputs.count == 1,
                      graph.nodes[p].attributes["_times_input"] == nil else { continue }
                var sigmoid = graph.nodes[p]
                sigmoid.attributes.values["_times_input"] = .int(1)
                sigmoid.outputs[0] = mul.outputs[0]
                graph.nodes[p] = sigmoid
                removed[i] = true
                break
            }
        }
        graph.removeNodes(removed)
    }

    /// A BatchNormalization with one output (inference): its kernel clamps each result.
    static func isInferenceBatchNorm(_ node: Node) -> Bool {
        node.op == .batchNormalization && node.attributes.int("training_mode", default: 0) == 0
            && node.outputs.dropFirst().allSatisfy { $0.isEmpty }
    }

    /// Relu's [0, ∞), or Clip's bounds when they are attributes (opset < 11) or float32 constants.
    static func bounds(_ node: Node, _ graph: Graph) -> (Float, Float)? {
        if node.op == .relu { return (0, Float.infinity) }
        var lo = node.attributes.float("min", default: -Float.infinity)
        var hi = node.attributes.float("max", default: Float.infinity)
        for (k, isMin) in [(1, true), (2, false)] {
            guard let name = node.input(k) else { continue }
            guard let t = graph.initializers[name], t.dtype == .f32, t.count == 1 else { return nil }
            let v = t.withUnsafeBufferPointer(of: Float.self) { $0[0] }
            if isMin { lo = v } else { hi = v }
        }
        return (lo, hi)
    }
}

/// Clamps `count` floats in place with the Clip kernel's expression (NaN passes through).
@inline(__always)
func clampInPlace(_ y: UnsafeMutablePointer<Float>, _ count: Int, _ lo: Float, _ hi: Float) {
    perch_clamp_f32(y, count, lo, hi)
}

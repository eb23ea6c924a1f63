import PerchGraph

/// com.microsoft quantized operators that ONNX Runtime's QOperator format writes (and the ONNX
/// model zoo's `-int8` models contain) for which Perch has no fused kernel of its own. Each is
/// imported as its QDQ equivalent — DequantizeLinear → the float operator → QuantizeLinear —
/// which `QDQFusion` then runs on the integers where it can (Concat without requantization
/// when scales agree, by a 256-entry table when not) and in float32 where not.
extension GraphConverter {
    static let expandedMicrosoftOps: Set<String> = ["QLinearConcat", "QLinearAveragePool", "QLinearReduceMean"]

    /// Appends the QDQ form of `proto` to `graph`.
    mutating func expandMicrosoftQuantized(_ proto: Onnx_NodeProto, attributes: Attributes, into graph: inout Graph) throws(ONNXImportError) {
        let base = proto.name.isEmpty ? (proto.output.first ?? "qlinear") : proto.name
        var plain = attributes
        plain["channels_last"] = nil
        func node(_ suffix: String, _ op: OpType, _ inputs: [String], _ output: String, _ attrs: Attributes) {
            var a = attrs
            a["_opset"] = .int(opset)
            graph.nodes.append(Node(name: base + suffix, op: op, inputs: inputs, outputs: [output], attributes: a))
        }
        func invalid(_ reason: String) -> ONNXImportError {
            .invalidGraph(path: path, error: .invalidNode(node: base, op: proto.opType, reason: reason))
        }
        let ins = proto.input
        guard let out = proto.output.first else { throw invalid("has no output") }
        switch proto.opType {
        case "QLinearConcat":
            // Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input.
            guard ins.count >= 5, (ins.count - 2) % 3 == 0 else { throw invalid("takes Y_scale, Y_zero_point and a (X, scale, zero point) triple per input") }
            var floats = [String]()
            for k in 0..<(ins.count - 2) / 3 {
                let x = base + "::x" + String(k)
                node("::dq" + String(k), .dequantizeLinear, [ins[2 + 3 * k], ins[3 + 3 * k], ins[4 + 3 * k]], x, Attributes())
                floats.append(x)
            }
            node("::concat", .concat, floats, base + "::y", plain)
            node("::q", .quantizeLinear, [base + "::y", ins[0], ins[1]], out, Attributes())
        case "QLinearAveragePool", "QLinearReduceMean":
            // X, x_scale, x_zero_point, y_scale, y_zero_point.
            guard ins.count == 5 else { throw invalid("takes X, x_scale, x_zero_point, y_scale, y_zero_point") }
            node("::dq", .dequantizeLinear, [ins[0], ins[1], ins[2]], base + "::x", Attributes())
            var x = base + "::x"
            let channelsLast = attributes.int("channels_last", default: 0) != 0
            if channelsLast {
                node("::nchw", .transpose, [x], base + "::xt", Attributes(["perm": .ints([0, 3, 1, 2])]))
                x = base + "::xt"
            }
            let y = base + "::y"
            if proto.opType == "QLinearAveragePool" {
                node("::pool", .averagePool, [x], channelsLast ? base + "::yt" : y, plain)
                if channelsLast { node("::nhwc", .transpose, [base + "::yt"], y, Attributes(["perm": .ints([0, 2, 3, 1])])) }
            } else if opset >= 18, let axes = attributes.ints("axes") {
                // ReduceMean takes its axes as an input from opset 18.
                let axesName = base + "::axes"
                graph.initializers[axesName] = Tensor(shape: [axes.count], values: axes.map { Int64($0) })
                var a = plain
                a["axes"] = nil
                node("::mean", .reduceMean, [x, axesName], y, a)
            } else {
                node("::mean", .reduceMean, [x], y, plain)
            }
            node("::q", .quantizeLinear, [y, ins[3], ins[4]], out, Attributes())
        default:
            throw invalid("is not a QOperator Perch expands")
        }
    }
}

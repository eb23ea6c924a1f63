import PerchGraph

/// com.microsoft quantized operators that ONNX Runtime's QOperator format writes (and the ONNX
/// model zoo's `-int8` models contain) for which Perch has no fused kernel of its own. Each is
/// imported as its QDQ equivalent — DequantizeLinear → the float operator → QuantizeLinear —
/// which `QDQFusion` then runs on the integers where it can (Concat without requantization
/// when scales agree, by a 256-entry table when not) and in float32 where not.
/// `DynamicQuantizeLSTM` (what `quantize_dynamic` makes of an LSTM) becomes an LSTM whose W is
/// the dequantized int8 one, folded to a constant when the session prepares, and whose R stays
/// in 8 bits with its scale and zero point as two more inputs (see `RecurrentQuantizedR`).
extension GraphConverter {
    static let expandedMicrosoftOps: Set<String> = ["QLinearConcat", "QLinearAveragePool", "QLinearReduceMean", "DynamicQuantizeLSTM"]

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
        case "DynamicQuantizeLSTM":
            // X, W, R, B, sequence_lens, initial_h, initial_c, P, W_scale, W_zero_point, R_scale,
            // R_zero_point; W is [directions, input, 4·hidden] (ONNX's LSTM: [directions,
            // 4·hidden, input]), its scale and zero point per direction or per direction and gate
            // column.
            guard ins.count >= 12 else { throw invalid("takes 12 inputs (X … R_zero_point)") }
            func dequantized(_ q: String, _ scale: String, _ zero: String, _ tag: String) -> String {
                // Per direction [D] → [D, 1, 1]; per column [D, 4H] → [D, 1, 4H].
                let perColumn = (graph.initializers[scale]?.rank ?? 1) == 2
                let shapeName = base + "::" + tag + "_shape"
                graph.initializers[shapeName] = Tensor(shape: [3], values: perColumn ? [Int64(0), 1, -1] : [Int64(-1), 1, 1])
                let f = Attributes(["to": .int(1)])
                node("::" + tag + "_f", .cast, [q], base + "::" + tag + "_f", f)
                node("::" + tag + "_zr", .reshape, [zero, shapeName], base + "::" + tag + "_zr", Attributes())
                node("::" + tag + "_zf", .cast, [base + "::" + tag + "_zr"], base + "::" + tag + "_zf", f)
                node("::" + tag + "_sr", .reshape, [scale, shapeName], base + "::" + tag + "_sr", Attributes())
                node("::" + tag + "_c", .sub, [base + "::" + tag + "_f", base + "::" + tag + "_zf"], base + "::" + tag + "_c", Attributes())
                node("::" + tag + "_d", .mul, [base + "::" + tag + "_c", base + "::" + tag + "_sr"], base + "::" + tag + "_d", Attributes())
                node("::" + tag + "_t", .transpose, [base + "::" + tag + "_d"], base + "::" + tag, Attributes(["perm": .ints([0, 2, 1])]))
                return base + "::" + tag
            }
            let w = dequantized(ins[1], ins[8], ins[9], "W")
            // R stays 8-bit: its codes transposed to ONNX's [directions, 4·hidden, hidden], scale
            // and zero point as the LSTM's inputs 8 and 9 (the engine's RecurrentQuantizedR).
            let r = base + "::R_codes"
            node("::R_t", .transpose, [ins[2]], r, Attributes(["perm": .ints([0, 2, 1])]))
            var lstmInputs = [ins[0], w, r]
            lstmInputs += ins[3..<8]
            lstmInputs += [ins[10], ins[11]]
            var a = attributes
            a["_opset"] = .int(opset)
            graph.nodes.append(Node(name: base, op: .lstm, inputs: lstmInputs, outputs: proto.output, attributes: a))
        default:
            throw invalid("is not a QOperator Perch expands")
        }
    }
}

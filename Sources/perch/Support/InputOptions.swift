import ArgumentParser
import Foundation
import PerchEngine
import PerchGraph

/// `--input NAME=FILE.npy` options shared by `run` and `bench`.
struct InputOptions: ParsableArguments {
    @Option(name: .customLong("input"), help: ArgumentHelp(
        "An input tensor as NAME=FILE.npy (repeat for each input); a single-input model also takes just FILE.npy.",
        valueName: "NAME=FILE"))
    var inputs: [String] = []

    /// Reads the files and checks them against the model's declared inputs, naming the file in
    /// every error.
    func feeds(for session: Session) throws -> [String: Tensor] {
        let declared = session.inputs
        var feeds: [String: Tensor] = [:]
        for spec in inputs {
            var name: String
            var path: String
            if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
                name = String(spec[..<eq])
                path = String(spec[spec.index(after: eq)...])
            } else if declared.count == 1 {
                name = declared[0].name
                path = spec
            } else {
                throw CLIError(.badInput, "input '" + spec + "' has no NAME= and the model has " + String(declared.count) + " inputs",
                               hint: "write --input NAME=FILE.npy with NAME one of: " + declared.map(\.name).joined(separator: ", "))
            }
            guard let info = declared.first(where: { $0.name == name }) else {
                throw CLIError(.badInput, "the model has no input named '" + name + "'",
                               hint: "inputs are: " + declared.map(\.name).joined(separator: ", "))
            }
            var tensor = try TensorFiles.read(path)
            if let carrier = info.type.dtype.npyCarrier, tensor.dtype == carrier {
                // NumPy has no bfloat16/float8/int4: their bits arrive in the carrier type.
                tensor.dtype = info.type.dtype
            }
            if tensor.dtype != info.type.dtype {
                throw CLIError(.badInput, "input '" + name + "' from '" + path + "' is " + tensor.dtype.name + ", the model expects " + info.type.dtype.name,
                               hint: "convert it, e.g. numpy's astype(np." + info.type.dtype.name + ")")
            }
            let dims = info.type.dims
            var shapeOK = dims.isEmpty || dims.count == tensor.shape.count
            if shapeOK && !dims.isEmpty {
                for (i, d) in dims.enumerated() {
                    if case .fixed(let v) = d, v > 0, v != tensor.shape[i] { shapeOK = false }
                }
            }
            if !shapeOK {
                throw CLIError(.badInput, "input '" + name + "' from '" + path + "' has shape " + shapeText(tensor.shape) + ", the model expects " + declaredText(dims),
                               hint: "reshape the array to the declared shape")
            }
            feeds[name] = tensor
        }
        return feeds
    }

    func declaredText(_ dims: [Dim]) -> String {
        "[" + dims.map { d -> String in
            switch d {
            case .fixed(let v): return v > 0 ? String(v) : "?"
            case .symbolic(let s): return s
            }
        }.joined(separator: ", ") + "]"
    }

    /// Deterministic inputs for inputs not given: `arange(n)/n` for floats (as ONNX's test runner
    /// makes them), zeros otherwise; symbolic dimensions as `TensorType.exampleShape` makes them.
    static func synthesized(for info: ValueInfo) -> Tensor {
        let shape = info.type.exampleShape()
        var t = Tensor(dtype: info.type.dtype, shape: shape)
        if info.type.dtype.isFloatingPoint {
            let n = t.count
            t.bytes.withUnsafeMutableBytes { raw in
                for i in 0..<n { writeElementFromDouble(raw.baseAddress!, t.dtype, i, Double(Float(Double(i) / Double(n)))) }
            }
        }
        return t
    }
}

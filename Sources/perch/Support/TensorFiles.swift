import Foundation
import PerchGraph

/// `.npy` files on disk, and the tensor-name-to-file-name rule of CONTRACTS.md.
enum TensorFiles {
    static func read(_ path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(.badInput, "input file '" + path + "' does not exist or is not readable", hint: "check the path")
        }
        do {
            return try NPY.decode([UInt8](data), what: "'" + path + "'")
        } catch {
            throw CLIError(.badInput, error.description, hint: "save the tensor with numpy.save")
        }
    }

    static func write(_ tensor: Tensor, to path: String) throws {
        let data = Data(NPY.encode(tensor))
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw CLIError(.badInput, "cannot write '" + path + "'", hint: "check that the directory exists and is writable")
        }
    }

    /// `gpu_0/data_0` → `gpu_0_data_0`: every character outside `[A-Za-z0-9._-]` becomes `_`.
    static func fileName(forTensor name: String) -> String {
        var out = ""
        for scalar in name.unicodeScalars {
            let v = scalar.value
            let ok = (v >= 48 && v <= 57) || (v >= 65 && v <= 90) || (v >= 97 && v <= 122) || v == 46 || v == 95 || v == 45
            out.unicodeScalars.append(ok ? scalar : "_")
        }
        return out
    }
}

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
}

import Foundation
import PerchGraph
import PerchONNX

/// Loads a model given on the command line: an ONNX file or a `.perchm` file, told apart by
/// content (the `.perchm` magic), not by extension.
enum ModelLoading {
    static func load(_ path: String) throws -> Graph {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError(.badInput, "model '" + path + "' does not exist", hint: "check the path")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(.badInput, "model '" + path + "' is not readable", hint: "check its permissions")
        }
        let bytes = [UInt8](data)
        if bytes.count >= 8 && Array(bytes[0..<8]) == PerchModelFile.magic {
            do {
                return try PerchModelFile.decode(bytes)
            } catch {
                throw CLIError(.badInput, "'" + path + "': " + error.description, hint: "re-create it with 'perch import'")
            }
        }
        let base = (path as NSString).deletingLastPathComponent
        return try ONNXImporter.importModel(data: data, path: path, baseDirectory: base.isEmpty ? "." : base)
    }

    /// The model's display name: its graph name, else the file name without extension.
    static func displayName(_ graph: Graph, path: String) -> String {
        let file = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return file.isEmpty ? graph.name : file
    }
}

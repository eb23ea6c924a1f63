import Foundation
import PerchGraph
import PerchONNX
import PerchOptimize

/// Loads a model given on the command line: an ONNX file or a `.perchm` file, told apart by
/// content (the `.perchm` magic), not by extension. ONNX models get BatchNorm folding.
enum ModelLoading {
    /// `foldBatchNorm: false` keeps the graph as exported (`perch optimize` folds and reports it).
    static func load(_ path: String, foldBatchNorm: Bool = true) throws -> Graph {
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
        var graph = try ONNXImporter.importModel(data: data, path: path, baseDirectory: base.isEmpty ? "." : base)
        // Inference BatchNormalization after a Conv/Gemm with constant parameters is folded into
        // its weights, as ONNX Runtime does at session start: exports from training frameworks
        // keep BN as a separate pass over every activation. Weights a model builds with
        // ConstantOfShape (the ONNX light models) are made initializers first, or their BNs stayed
        // (6% of ResNet-50's fp32 time, on one thread even with two). A per-channel Mul or Add of
        // a constant after a Conv (Caffe2's BatchNorm export) folds the same way; its constant
        // is often an Unsqueeze or Reshape of an initializer, so those are folded first too.
        let batchNorm = graph.nodes.contains { $0.op == .batchNormalization }
        let affine = graph.nodes.contains { $0.op == .mul || $0.op == .add } && graph.nodes.contains { $0.op == .conv }
        if foldBatchNorm && (batchNorm || affine) {
            _ = try Simplifier.simplify(&graph, passes: [ConstantFolding(onlyOps: [.constantOfShape, .unsqueeze, .reshape]), BatchNormFolding(),
                                                         ChannelAffineFolding(), DeadNodeRemoval()])
        }
        // GELU written out as Div → Erf → Add → Mul → Mul runs as one Gelu node (ONNX Runtime's
        // Gelu fusion): five passes over the FFN activation become one.
        if foldBatchNorm && graph.nodes.contains(where: { $0.op == .erf }) {
            _ = try GeluFusion().run(&graph)
        }
        // HardSwish written out as Add → Clip → Mul → Div (Paddle exports) runs as one node.
        if foldBatchNorm && graph.nodes.contains(where: { $0.op == .clip || $0.op == .hardSigmoid }) {
            _ = try HardSwishFusion().run(&graph)
        }
        return graph
    }

    /// The model's display name: its graph name, else the file name without extension.
    static func displayName(_ graph: Graph, path: String) -> String {
        let file = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return file.isEmpty ? graph.name : file
    }
}

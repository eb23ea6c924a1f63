import ArgumentParser
import Foundation
import PerchEngine
import PerchGraph

/// `perch import MODEL.onnx -o M.perchm`
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert an ONNX model to a Perch model (.perchm, fp32), checking that Perch can run it.",
        discussion: """
            Reads the ONNX file (external data files are resolved beside it), checks every operator, \
            infers all shapes by preparing the model once with its declared input shapes (symbolic \
            dimensions such as batch are bound to 1 for the check), and writes a .perchm file whose \
            weights are 64-byte aligned for mmap on the device.
            """
    )

    @Argument(help: "The ONNX model to import.")
    var model: String

    @Option(name: .shortAndLong, help: "Where to write the .perchm file.")
    var output: String

    @Flag(help: "Print a JSON summary on stdout.")
    var json = false

    func run() throws {
        let graph = try ModelLoading.load(model)
        // Preparing proves every op can run and every shape resolves.
        let session = try Session(graph: graph)
        var feeds: [String: Tensor] = [:]
        for input in session.inputs {
            feeds[input.name] = Tensor(dtype: input.type.dtype, shape: input.type.exampleShape())
        }
        try session.prepare(feeds: feeds)
        let bytes = PerchModelFile.encode(session.graph)
        guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
            throw CLIError(.badInput, "cannot write '" + output + "'", hint: "check that the directory exists and is writable")
        }
        if json {
            print(JSONValue.object([
                ("model", .string(model)), ("output", .string(output)), ("nodes", .int(session.graph.nodes.count)),
                ("weights_bytes", .int(session.graph.weightsBytes)), ("file_bytes", .int(bytes.count)),
                ("arena_bytes", .int(session.memory.arenaBytes)),
            ]).text)
        } else {
            print("imported " + model + " → " + output + ": " + String(session.graph.nodes.count) + " nodes, "
                + String(session.graph.weightsBytes) + " bytes of weights, arena " + String(session.memory.arenaBytes) + " bytes")
        }
    }
}

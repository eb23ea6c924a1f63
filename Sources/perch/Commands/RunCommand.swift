import ArgumentParser
import Foundation
import PerchEngine
import PerchGraph

/// `perch run MODEL --input NAME=FILE.npy … --output-dir DIR`
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on the host and write each output as .npy.",
        discussion: """
            MODEL is an .onnx or .perchm file. Each graph output is written to DIR as \
            <name>.npy, with characters outside [A-Za-z0-9._-] in the name replaced by '_'.
            """
    )

    @Argument(help: "The model (.onnx or .perchm).")
    var model: String

    @OptionGroup var inputOptions: InputOptions

    @Option(help: "Directory for the output .npy files (created if missing).")
    var outputDir: String

    @Option(help: "Worker threads.")
    var threads = 1

    @Flag(help: "Print a JSON summary on stdout.")
    var json = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let graph = try ModelLoading.load(model)
        let session = try Session(graph: graph, options: SessionOptions(threads: threads))
        let feeds = try inputOptions.feeds(for: session)
        for input in session.inputs where feeds[input.name] == nil {
            throw CLIError(.badInput, "input '" + input.name + "' is missing", hint: "pass --input " + input.name + "=FILE.npy")
        }
        let outputs = try session.run(feeds)
        do {
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        } catch {
            throw CLIError(.badInput, "cannot create output directory '" + outputDir + "'", hint: "check the path and permissions")
        }
        var written = [JSONValue]()
        for info in session.outputs {
            guard let tensor = outputs[info.name] else { continue }
            let path = outputDir + "/" + NPY.fileName(forTensor: info.name) + ".npy"
            try TensorFiles.write(tensor, to: path)
            written.append(.object([("name", .string(info.name)), ("file", .string(path)), ("dtype", .string(tensor.dtype.name)),
                                    ("shape", .array(tensor.shape.map { .int($0) }))]))
            if !json { print(info.name + " " + tensor.dtype.name + shapeText(tensor.shape) + " → " + path) }
        }
        if json { print(JSONValue.object([("outputs", .array(written))]).text) }
    }
}

import Crypto
import Foundation
import PerchBundle
import PerchGraph

/// Small models and bundles for the bundle and agent tests (ops that the engine runs: Add, Relu).
enum Fixtures {
    /// y = relu(x + w), x and w of `elements` floats; `seed` changes w so versions differ in content.
    static func model(seed: Float, elements: Int = 16) -> [UInt8] {
        var w = [Float](repeating: 0, count: elements)
        for i in 0..<elements { w[i] = seed + Float(i % 7) * 0.25 - 0.5 }
        let graph = Graph(
            name: "tiny",
            nodes: [
                Node(name: "add", op: .add, inputs: ["x", "w"], outputs: ["s"]),
                Node(name: "relu", op: .relu, inputs: ["s"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, elements]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, elements]))],
            initializers: ["w": Tensor(shape: [1, elements], values: w)])
        return PerchModelFile.encode(graph)
    }

    static func tempDirectory(_ tag: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("perch-" + tag + "-" + UUID().uuidString).path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ bytes: [UInt8], _ path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static var hostISA: String {
        #if arch(arm64)
        return "aarch64"
        #else
        return "x86_64"
        #endif
    }

    /// Packs a model file written under `dir` into a bundle (bytes).
    static func bundle(dir: String, name: String = "tiny", version: String, seed: Float, elements: Int = 16,
                       key: Curve25519.Signing.PrivateKey?, evalDir: String? = nil) throws -> [UInt8] {
        let modelPath = dir + "/" + name + "-" + version + "-" + String(seed) + ".perchm"
        write(model(seed: seed, elements: elements), modelPath)
        return try BundlePacker.pack(.init(
            modelPath: modelPath, modelName: name, modelVersion: version, profile: "test-device", targetISA: hostISA,
            engineVersion: "0.1.0", evalDirectory: evalDir, signingKey: key, created: "2026-01-01T00:00:00Z"))
    }

    /// The entries of a bundle (all regular files), to rebuild tampered variants.
    static func entries(_ bundle: [UInt8]) throws -> [(String, [UInt8])] {
        try BundleArchive.readEntries(bundle).map { ($0.name, $0.bytes) }
    }
}

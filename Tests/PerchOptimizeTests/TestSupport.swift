import Foundation
import PerchEngine
import PerchGraph
import PerchONNX
import XCTest

@testable import PerchOptimize

enum Fixtures {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { repo.appendingPathComponent(relative).path }

    static func onnx(_ relative: String) throws -> Graph {
        let p = path(relative)
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        return try ONNXImporter.importModel(data: data, path: p, baseDirectory: (p as NSString).deletingLastPathComponent)
    }

    static func npy(_ relative: String) throws -> Tensor {
        try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: path(relative)))), what: relative)
    }

    static func tinyCNNInput() throws -> [String: Tensor] { ["image": try npy("examples/tiny-cnn-input.npy")] }

    /// Runs `graph` and returns its outputs.
    static func run(_ graph: Graph, _ feeds: [String: Tensor]) throws -> [String: Tensor] {
        try Session(graph: graph).run(feeds)
    }

    static func assertClose(_ a: Tensor, _ b: Tensor, tolerance: Float, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, file: file, line: line)
        let x = a.floats, y = b.floats
        var worst: Float = 0
        for i in 0..<min(x.count, y.count) { worst = max(worst, abs(x[i] - y[i])) }
        XCTAssertLessThanOrEqual(worst, tolerance, "max abs difference", file: file, line: line)
    }

    /// Same outputs before and after `transform` on `feeds`, within `tolerance`.
    static func assertPreserves(_ graph: Graph, _ feeds: [String: Tensor], tolerance: Float = 1e-5,
                                file: StaticString = #filePath, line: UInt = #line, _ transform: (inout Graph) throws -> Void) throws {
        let before = try run(graph, feeds)
        var g = graph
        try transform(&g)
        try g.validate()
        let after = try run(g, feeds)
        for (name, t) in before { assertClose(t, after[name]!, tolerance: tolerance, file: file, line: line) }
    }

    static func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var s = seed | 1
        let values: [Float] = (0..<elementCount(shape)).map { _ in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return Float(s >> 40) / Float(1 << 24) * 2 - 1
        }
        return Tensor(shape: shape, values: values)
    }
}

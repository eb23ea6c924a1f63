import Foundation
import PerchEngine
import PerchGraph
@testable import PerchONNX
import XCTest

/// A model exported in float16 end to end (scripts/make-fp16-fixture.py) runs widened to
/// float32 (`HalfModels`) and matches ONNX Runtime's float16 result to float16 precision; the
/// caller still feeds and reads float16.
final class HalfModelTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/fp16").path

    func load(_ name: String) throws -> Tensor {
        try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.root + "/" + name))), what: name)
    }

    func testFloat16ModelMatchesONNXRuntime() throws {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/tiny-cnn-fp16.onnx")
        XCTAssertTrue(HalfModels.computesInHalf(graph))
        let session = try Session(graph: graph)
        let x = try load("tiny-cnn-fp16-input.npy")
        XCTAssertEqual(x.dtype, .f16)
        let got = try XCTUnwrap(try session.run([graph.inputs[0].name: x])[graph.outputs[0].name])
        let want = try load("tiny-cnn-fp16-expected-ort.npy")
        XCTAssertEqual(got.dtype, .f16)
        XCTAssertEqual(got.shape, want.shape)
        // Probabilities around 0.1: float16's spacing there is 2^-14·… ≈ 6e-5; allow a few steps.
        for (a, b) in zip(got.doubles, want.doubles) { XCTAssertEqual(a, b, accuracy: 3e-4) }
    }

    /// `perch optimize` stores fp16 layers as float16 weights widened by Cast(to: FLOAT): such a
    /// model computes in float32 and is left as it is (its weights stay half the size).
    func testFloat16WeightsBehindACastAreLeftAlone() {
        var g = Graph(
            name: "fp16-weights",
            nodes: [
                Node(name: "widen", op: .cast, inputs: ["w16"], outputs: ["w"], attributes: Attributes(["to": .int(1)])),
                Node(name: "mm", op: .matMul, inputs: ["x", "w"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 2]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, 2]))],
            initializers: ["w16": Tensor(dtype: .f16, shape: [2, 2])])
        XCTAssertFalse(HalfModels.computesInHalf(g))
        let before = g
        XCTAssertFalse(HalfModels.widen(&g))
        XCTAssertEqual(g, before)
    }
}

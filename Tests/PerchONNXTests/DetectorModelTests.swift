import Foundation
import PerchEngine
import PerchGraph
@testable import PerchONNX
import XCTest

/// A detector whose graph ends in NonMaxSuppression over boxes decoded from the image, then
/// Gather/TopK/NonZero on the selection (scripts/make-detector-fixture.py): every output's shape
/// depends on values, so the session runs that tail as a `ValueDependentStage`. Compared with
/// ONNX Runtime's outputs on the same input.
final class DetectorModelTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/detector").path

    func load(_ name: String) throws -> Tensor {
        try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.root + "/" + name))), what: name)
    }

    func check(threads: Int) throws {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/tiny-detector.onnx")
        let session = try Session(graph: graph, options: SessionOptions(threads: threads))
        let image = try load("tiny-detector-input.npy")
        // Twice: the second run reuses the stage's plan (same values).
        for _ in 0..<2 {
            let out = try session.run(["image": image])
            let classes = try load("tiny-detector-expected-classes.npy")
            XCTAssertEqual(out["out_classes"]?.shape, classes.shape)
            XCTAssertEqual(out["out_classes"]?.int64s, classes.int64s)
            let confident = try load("tiny-detector-expected-confident.npy")
            XCTAssertEqual(out["confident"]?.shape, confident.shape)
            XCTAssertEqual(out["confident"]?.int64s, confident.int64s)
            for name in ["boxes", "scores"] {
                let want = try load("tiny-detector-expected-" + name + ".npy")
                let got = try XCTUnwrap(out["out_" + name])
                XCTAssertEqual(got.shape, want.shape, name)
                for (a, b) in zip(got.doubles, want.doubles) {
                    XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b)), name)
                }
            }
        }
        // Another image: a new selection, planned again.
        let other = Tensor(shape: image.shape, values: image.floats.map { -$0 })
        let out = try session.run(["image": other])
        XCTAssertEqual(out["out_boxes"]?.shape.count, 2)
        XCTAssertEqual(out["out_boxes"]?.shape[0], out["out_scores"]?.shape[0])
        XCTAssertEqual(out["out_scores"]?.floats, out["out_scores"]?.floats.sorted(by: >))
    }

    func testDetectorMatchesONNXRuntime() throws {
        try check(threads: 1)
    }

    func testDetectorMatchesONNXRuntimeOnTwoThreads() throws {
        try check(threads: 2)
    }
}

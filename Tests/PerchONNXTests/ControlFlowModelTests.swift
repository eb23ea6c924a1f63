import Foundation
import PerchEngine
import PerchGraph
@testable import PerchONNX
import XCTest

/// If, Loop and Scan with body graphs that read outer values (scripts/make-control-flow-fixture.py),
/// compared with ONNX Runtime's outputs for two inputs (one per If branch).
final class ControlFlowModelTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/control-flow").path
    static let outputs = ["h", "hs", "acc", "accs", "branch", "scan_sum", "scan_seq"]

    func load(_ name: String) throws -> Tensor {
        try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.root + "/" + name))), what: name)
    }

    func check(_ graph: Graph, threads: Int = 1) throws {
        let session = try Session(graph: graph, options: SessionOptions(threads: threads))
        for tag in ["pos", "neg", "pos"] {
            let out = try session.run(["x": try load("input-" + tag + ".npy")])
            for name in Self.outputs {
                let want = try load("expected-" + tag + "-" + name + ".npy")
                let got = try XCTUnwrap(out[name], name)
                XCTAssertEqual(got.shape, want.shape, tag + " " + name)
                for (a, b) in zip(got.doubles, want.doubles) { XCTAssertEqual(a, b, accuracy: 1e-5, tag + " " + name) }
            }
        }
    }

    func testImportCapturesOuterValuesAsInputs() throws {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/control-flow.onnx")
        let loops = graph.nodes.filter { $0.op == .loop }
        XCTAssertEqual(loops.count, 2)
        // The RNN body reads x and W from the outer graph; the accumulator reads xmean.
        XCTAssertEqual(loops[0].inputs, ["M", "true", "h0", "x", "W"])
        XCTAssertEqual(BodyGraphs.captures(of: loops[0]), ["x", "W"])
        XCTAssertEqual(loops[1].inputs, ["rows", "", "acc0", "xmean"])
        let branch = try XCTUnwrap(graph.nodes.first { $0.op == .if })
        XCTAssertEqual(branch.inputs, ["positive", "h"])
    }

    func testMatchesONNXRuntime() throws {
        try check(try ONNXImporter.importModel(atPath: Self.root + "/control-flow.onnx"))
    }

    func testMatchesONNXRuntimeOnTwoThreads() throws {
        try check(try ONNXImporter.importModel(atPath: Self.root + "/control-flow.onnx"), threads: 2)
    }

    func testBodyGraphsSurviveThePerchModelFile() throws {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/control-flow.onnx")
        let file = PerchModelFile.encode(graph)
        XCTAssertEqual(file[8], 2, "a file with body graphs is format version 2")
        let decoded = try PerchModelFile.decode(file)
        XCTAssertEqual(decoded, graph)
        try check(decoded)
    }

    /// Both Loops have a fixed trip count (a constant, a shape) and bodies whose shapes do not
    /// depend on values, so they are planned once with the model and run without allocating;
    /// the If's condition comes from data, so it waits for a value-dependent stage.
    func testFixedTripLoopsAreStepsAndTheDataDependentIfWaits() throws {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/control-flow.onnx")
        let session = try Session(graph: graph)
        try session.prepare(feeds: ["x": try load("input-pos.npy")])
        let steps = (0..<session.stepCount).map { session.stepNode($0) }
        XCTAssertEqual(steps.filter { $0.op == .loop }.map { $0.outputs }, [["h", "hs"], ["acc", "accs"]])
        XCTAssertEqual(steps.filter { $0.op == .scan }.count, 1)
        XCTAssertFalse(steps.contains { $0.op == .if })
    }
}

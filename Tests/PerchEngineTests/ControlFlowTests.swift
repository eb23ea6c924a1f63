import PerchEngine
import PerchGraph
import XCTest

/// Loop and If run on graphs built here; ONNX-imported models are in PerchONNXTests
/// (ControlFlowModelTests).
final class ControlFlowTests: XCTestCase {
    /// A while loop: no trip count, the body's condition is `acc < limit` with `limit` the sum
    /// of a 100-element input. The iteration count, and so the scan output's length, depends on
    /// the input's values: the Loop runs in a value-dependent stage, evaluated while planning it.
    func whileLoop() -> Graph {
        let body = Graph(
            name: "body",
            nodes: [
                Node(name: "inc", op: .add, inputs: ["acc_in", "step"], outputs: ["acc_out"]),
                Node(name: "test", op: .less, inputs: ["acc_out", "limit"], outputs: ["cond_out"]),
                Node(name: "copy", op: .identity, inputs: ["acc_out"], outputs: ["acc_scan"]),
            ],
            inputs: [
                ValueInfo(name: "i", type: TensorType(dtype: .i64, shape: [])),
                ValueInfo(name: "cond_in", type: TensorType(dtype: .bool, shape: [])),
                ValueInfo(name: "acc_in", type: TensorType(dtype: .f32, shape: [])),
            ],
            outputs: [
                ValueInfo(name: "cond_out", type: TensorType(dtype: .bool, shape: [])),
                ValueInfo(name: "acc_out", type: TensorType(dtype: .f32, shape: [])),
                ValueInfo(name: "acc_scan", type: TensorType(dtype: .f32, shape: [])),
            ],
            initializers: ["step": Tensor(shape: [], values: [Float(1.5)])])
        var loop = Node(name: "while", op: .loop, inputs: ["", "go", "zero"], outputs: ["final", "steps"],
                        attributes: Attributes(["body": .graph(body)]))
        BodyGraphs.captureFreeValues(&loop)
        return Graph(
            name: "while",
            nodes: [Node(name: "sum", op: .reduceSum, inputs: ["x"], outputs: ["limit"], attributes: Attributes(["keepdims": .int(0)])), loop],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [100]))],
            outputs: [ValueInfo(name: "final", type: TensorType(dtype: .f32, dims: [])), ValueInfo(name: "steps", type: TensorType(dtype: .f32, dims: []))],
            initializers: ["go": Tensor(shape: [], values: [true]), "zero": Tensor(shape: [], values: [Float(0)])])
    }

    func testWhileLoopRunsUntilItsConditionTurnsFalse() throws {
        let g = whileLoop()
        XCTAssertEqual(g.nodes[1].inputs, ["", "go", "zero", "limit"])
        let session = try Session(graph: g)
        // limit 5: 1.5, 3, 4.5 are < 5 (continue), 6 is not (stop after that iteration).
        var out = try session.run(["x": Tensor(shape: [100], values: [Float](repeating: 0.05, count: 100))])
        XCTAssertEqual(out["final"]?.floats.first ?? 0, 6, accuracy: 1e-6)
        XCTAssertEqual(out["steps"]?.floats, [1.5, 3, 4.5, 6])
        // limit 1: one iteration.
        out = try session.run(["x": Tensor(shape: [100], values: [Float](repeating: 0.01, count: 100))])
        XCTAssertEqual(out["steps"]?.shape, [1])
    }

    func testIfWithoutItsBranchesIsAClearError() {
        let g = Graph(
            name: "bad-if",
            nodes: [Node(name: "if", op: .if, inputs: ["c"], outputs: ["y"])],
            inputs: [ValueInfo(name: "c", type: TensorType(dtype: .bool, shape: []))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: []))])
        XCTAssertThrowsError(try Session(graph: g).run(["c": Tensor(shape: [], values: [true])])) { error in
            guard case .invalidNode(_, "If", let reason)? = error as? EngineError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("then_branch"), reason)
        }
    }
}

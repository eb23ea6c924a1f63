import PerchEngine
import PerchGraph
import XCTest

/// Models whose tail can be planned only once values computed while running exist: the
/// session defers those nodes to a `ValueDependentStage` and plans them after its steps.
final class ValueDependentStageTests: XCTestCase {
    /// A detector's tail: boxes and scores computed from the inputs, NonMaxSuppression over all
    /// 100 boxes, then the selected boxes gathered from a tensor computed before the NMS.
    func detector() -> Graph {
        Graph(
            name: "detector-tail",
            nodes: [
                Node(name: "boxes", op: .abs, inputs: ["raw"], outputs: ["boxes"]),
                Node(name: "scores", op: .sigmoid, inputs: ["logits"], outputs: ["scores"]),
                Node(name: "flat", op: .reshape, inputs: ["boxes", "shape2d"], outputs: ["flat"]),
                Node(name: "nms", op: .nonMaxSuppression, inputs: ["boxes", "scores", "max", "iou", "threshold"], outputs: ["selected"]),
                Node(name: "boxIndex", op: .gather, inputs: ["selected", "two"], outputs: ["boxIndex"], attributes: Attributes(["axis": .int(1)])),
                Node(name: "picked", op: .gather, inputs: ["flat", "boxIndex"], outputs: ["picked"], attributes: Attributes(["axis": .int(0)])),
                Node(name: "count", op: .shape, inputs: ["selected"], outputs: ["count"]),
            ],
            inputs: [
                ValueInfo(name: "raw", type: TensorType(dtype: .f32, shape: [1, 100, 4])),
                ValueInfo(name: "logits", type: TensorType(dtype: .f32, shape: [1, 1, 100])),
            ],
            outputs: [
                ValueInfo(name: "picked", type: TensorType(dtype: .f32, dims: [])),
                ValueInfo(name: "count", type: TensorType(dtype: .i64, dims: [])),
                ValueInfo(name: "scores", type: TensorType(dtype: .f32, dims: [])),
            ],
            initializers: [
                "shape2d": Tensor(shape: [2], values: [Int64(100), 4]),
                "max": Tensor(shape: [1], values: [Int64(5)]),
                "iou": Tensor(shape: [1], values: [Float(0.5)]),
                "threshold": Tensor(shape: [1], values: [Float(0.5)]),
                "two": Tensor(shape: [], values: [Int64(2)]),
            ])
    }

    /// Box i is [10i, 0, 10i + 5, 5] (no two overlap) except box 98, a copy of box 99.
    func rawBoxes() -> Tensor {
        var v = [Float]()
        for i in 0..<100 {
            let y = Float(i == 98 ? 99 : i) * 10
            v += [y, 0, y + 5, 5]
        }
        return Tensor(shape: [1, 100, 4], values: v)
    }

    func logits(_ f: (Int) -> Float) -> Tensor {
        Tensor(shape: [1, 1, 100], values: (0..<100).map(f))
    }

    func expectedBoxes(_ indices: [Int]) -> [Float] {
        indices.flatMap { i -> [Float] in
            let y = Float(i == 98 ? 99 : i) * 10
            return [y, 0, y + 5, 5]
        }
    }

    func testDetectorTailRunsAfterTheSteps() throws {
        let session = try Session(graph: detector())
        // Rising scores: the five best are 99…95, and 98 (a copy of 99) is suppressed.
        var out = try session.run(["raw": rawBoxes(), "logits": logits { (Float($0) - 49.5) / 10 }])
        XCTAssertEqual(out["count"]?.int64s, [5, 3])
        XCTAssertEqual(out["picked"]?.shape, [5, 4])
        XCTAssertEqual(out["picked"]?.floats, expectedBoxes([99, 97, 96, 95, 94]))
        XCTAssertEqual(out["scores"]?.shape, [1, 1, 100])
        // New values re-plan the stage: falling scores select 0…4.
        out = try session.run(["raw": rawBoxes(), "logits": logits { (49.5 - Float($0)) / 10 }])
        XCTAssertEqual(out["picked"]?.floats, expectedBoxes([0, 1, 2, 3, 4]))
        // Nothing over the threshold: empty outputs, not an error.
        out = try session.run(["raw": rawBoxes(), "logits": logits { _ in -3 }])
        XCTAssertEqual(out["count"]?.int64s, [0, 3])
        XCTAssertEqual(out["picked"]?.shape, [0, 4])
        // The same values again through bind/execute.
        try session.bind(["raw": rawBoxes(), "logits": logits { (Float($0) - 49.5) / 10 }])
        try session.execute()
        try session.execute()
        XCTAssertEqual(session.output("picked")?.floats, expectedBoxes([99, 97, 96, 95, 94]))
    }

    func testTheDeferredPartStartsAtTheValueDependentNode() throws {
        let session = try Session(graph: detector())
        try session.prepare(feeds: ["raw": rawBoxes(), "logits": logits { Float($0) }])
        // Abs, Sigmoid and Reshape are steps; NMS, the Gathers and Shape wait.
        XCTAssertEqual((0..<session.stepCount).map { session.stepNode($0).name }, ["boxes", "scores", "flat"])
    }

    /// NMS → Slice-like Gather → NonZero: the second value-dependent node is planned by a stage
    /// of the stage.
    func testAStageCanEndInAnotherStage() throws {
        var g = detector()
        g.nodes.append(Node(name: "big", op: .greater, inputs: ["picked", "fifty"], outputs: ["big"]))
        g.nodes.append(Node(name: "nz", op: .nonZero, inputs: ["big"], outputs: ["where"]))
        g.initializers["fifty"] = Tensor(shape: [], values: [Float(950)])
        g.outputs.append(ValueInfo(name: "where", type: TensorType(dtype: .i64, dims: [])))
        let session = try Session(graph: g)
        let out = try session.run(["raw": rawBoxes(), "logits": logits { (Float($0) - 49.5) / 10 }])
        // Picked rows 99, 97, 96 have y1 and y2 over 950; row 95 only y2 = 955; row 94 none.
        XCTAssertEqual(out["where"]?.shape, [2, 7])
        XCTAssertEqual(out["where"]?.int64s, [0, 0, 1, 1, 2, 2, 3, 0, 2, 0, 2, 0, 2, 2])
    }

    func testAComputedShapeThatDoesNotFitFailsWhenRunning() throws {
        // Reshape to [count, 3] where count is the number of selected boxes times 2: the stage
        // plans it only when running, and the mismatch is an error from `run`, not a crash.
        var g = detector()
        g.nodes.append(Node(name: "double", op: .mul, inputs: ["count", "twos"], outputs: ["doubled"]))
        g.nodes.append(Node(name: "bad", op: .reshape, inputs: ["selected", "doubled"], outputs: ["bad"]))
        g.initializers["twos"] = Tensor(shape: [2], values: [Int64(2), 1])
        g.outputs.append(ValueInfo(name: "bad", type: TensorType(dtype: .i64, dims: [])))
        let session = try Session(graph: g)
        XCTAssertThrowsError(try session.run(["raw": rawBoxes(), "logits": logits { (Float($0) - 49.5) / 10 }])) { error in
            guard case .invalidNode(_, "Reshape", _)? = error as? EngineError else { return XCTFail("\(error)") }
        }
    }
}

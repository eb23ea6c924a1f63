import PerchEngine
import PerchGraph
import XCTest

final class SessionTests: XCTestCase {
    /// A chain long enough that the planner could reuse the input's slot for a later value; the
    /// input must survive so that `execute` can repeat without a new `bind` (what `bench` does).
    func testRepeatedExecuteWithoutRebindGivesSameOutputs() throws {
        let graph = Graph(
            name: "chain",
            nodes: [
                Node(name: "a", op: .relu, inputs: ["x"], outputs: ["a"]),
                Node(name: "b", op: .neg, inputs: ["a"], outputs: ["b"]),
                Node(name: "c", op: .abs, inputs: ["b"], outputs: ["c"]),
                Node(name: "d", op: .add, inputs: ["c", "c"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [4]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [4]))])
        let session = try Session(graph: graph)
        try session.bind(["x": Tensor(shape: [4], values: [Float(-1), 2, -3, 4])])
        try session.execute()
        XCTAssertEqual(session.output("y")?.floats, [0, 4, 0, 8])
        try session.execute()
        try session.execute()
        XCTAssertEqual(session.output("y")?.floats, [0, 4, 0, 8])
    }

    func testShapesAreReplannedForNewInputShapes() throws {
        let graph = Graph(
            nodes: [Node(name: "r", op: .relu, inputs: ["x"], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, dims: [.symbolic("batch"), .fixed(2)]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: [.symbolic("batch"), .fixed(2)]))])
        let session = try Session(graph: graph)
        XCTAssertEqual(try session.run(["x": Tensor(shape: [1, 2], values: [Float(-1), 1])])["y"]?.floats, [0, 1])
        let y = try session.run(["x": Tensor(shape: [3, 2], values: [Float(-1), 1, 2, -2, 3, 3])])["y"]!
        XCTAssertEqual(y.shape, [3, 2])
        XCTAssertEqual(y.floats, [0, 1, 2, 0, 3, 3])
        XCTAssertThrowsError(try session.run(["x": Tensor(shape: [2, 3], values: [Float](repeating: 0, count: 6))]))
    }
}

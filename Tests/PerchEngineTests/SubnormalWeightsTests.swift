@testable import PerchEngine
import PerchGraph
import XCTest

final class SubnormalWeightsTests: XCTestCase {
    /// Subnormal weights of a Conv and of a MatMul read as zero: an output channel whose weights
    /// are all subnormal comes out exactly 0 (it would be a subnormal sum, 8·10⁻⁴⁰, otherwise), and
    /// the other channels are the ones of the same model with those weights written as zeros.
    func testSubnormalWeightsReadAsZero() throws {
        let tiny: Float = 1e-40
        XCTAssertTrue(tiny.isSubnormal)
        // Conv 4→3, 1×1: channel 0 all subnormal, channel 1 mixed, channel 2 normal.
        let w: [Float] = [tiny, tiny, tiny, tiny, 0.5, -tiny, 0.25, tiny, 1, 2, 3, 4]
        let wm: [Float] = [tiny, 1.5, -0.5, tiny, -tiny, 2]  // MatMul B, 3×2: column 0 subnormal but for one value
        func model(_ w: [Float], _ wm: [Float]) -> Graph {
            var g = Graph(name: "subnormal")
            g.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 4, 2, 3]))]
            g.initializers = ["w": Tensor(shape: [3, 4, 1, 1], values: w), "wm": Tensor(shape: [3, 2], values: wm)]
            g.nodes = [Node(name: "c", op: .conv, inputs: ["x", "w"], outputs: ["y"]),
                       Node(name: "t", op: .transpose, inputs: ["y"], outputs: ["yt"], attributes: Attributes(["perm": .ints([0, 2, 3, 1])])),
                       Node(name: "m", op: .matMul, inputs: ["yt", "wm"], outputs: ["z"])]
            g.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: [])), ValueInfo(name: "z", type: TensorType(dtype: .f32, dims: []))]
            return g
        }
        let x = Tensor(shape: [1, 4, 2, 3], values: (0..<24).map { Float($0 % 5) + 2 })
        let got = try Session(graph: model(w, wm)).run(["x": x])
        let zeroed = try Session(graph: model(w.map { $0.isSubnormal ? 0 : $0 }, wm.map { $0.isSubnormal ? 0 : $0 })).run(["x": x])
        let y = try XCTUnwrap(got["y"]).floats, z = try XCTUnwrap(got["z"]).floats
        XCTAssertEqual(Array(y[0..<6]), [Float](repeating: 0, count: 6), "an all-subnormal channel")
        XCTAssertEqual(y, try XCTUnwrap(zeroed["y"]).floats)
        XCTAssertEqual(z, try XCTUnwrap(zeroed["z"]).floats)
        XCTAssertFalse(y.contains { $0.isSubnormal } || z.contains { $0.isSubnormal })
    }
}

@testable import PerchEngine
import PerchGraph
import XCTest

/// The pass that gives Conv its fp16 weights directly (applied on CPUs with fp16 arithmetic; the
/// fp16 GEMM itself is checked on an emulated aarch64 device by scripts/test-cross.sh).
final class HalfWeightsTests: XCTestCase {
    func half(_ shape: [Int], _ values: [Float]) -> Tensor {
        var t = Tensor(dtype: .f16, shape: shape)
        t.bytes.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: HalfConversion.fromFloat(v), toByteOffset: 2 * i, as: UInt16.self) }
        }
        return t
    }

    func testConvReadsFP16WeightsAndResultsStayTheSame() throws {
        var rng = TestRandom(seed: 41)
        var g = Graph(name: "fp16")
        g.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 3, 6, 7]))]
        g.initializers = ["wh": half([4, 3, 3, 3], rng.floats(108)), "mh": half([7, 5], rng.floats(35))]
        let cast: (String, String) -> Node = { Node(name: $1, op: .cast, inputs: [$0], outputs: [$1], attributes: Attributes(["to": .int(1)])) }
        g.nodes = [
            cast("wh", "w"), cast("mh", "m"),
            Node(name: "c", op: .conv, inputs: ["x", "w"], outputs: ["c"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])),
            Node(name: "mm", op: .matMul, inputs: ["c", "m"], outputs: ["y"]),
        ]
        g.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: []))]
        let x = floats([1, 3, 6, 7], rng.floats(126))
        let before = try Session(graph: g).run(["x": x])["y"]!
        var h = g
        HalfWeights.apply(&h)
        // The Conv reads the fp16 initializer; the MatMul's Cast stays (only Conv takes fp16 weights).
        XCTAssertEqual(h.nodes.first { $0.op == .conv }?.inputs[1], "wh")
        XCTAssertEqual(h.nodes.filter { $0.op == .cast }.map(\.inputs[0]), ["mh"])
        // fp32 compute from fp16 storage gives the same numbers as the folded fp32 weights.
        let after = try Session(graph: h).run(["x": x])["y"]!
        XCTAssertEqual(after.shape, before.shape)
        assertClose(after, before, rtol: 1e-6, atol: 1e-6)
        // A widened weight that is also a graph output is left alone.
        var o = g
        o.outputs.append(ValueInfo(name: "w", type: TensorType(dtype: .f32, dims: [])))
        HalfWeights.apply(&o)
        XCTAssertEqual(o.nodes.first { $0.op == .conv }?.inputs[1], "w")
    }
}

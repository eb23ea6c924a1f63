import PerchEngine
import PerchGraph
import XCTest

/// Conv + Relu/Clip fusion: the fused Conv gives the bits of the Conv followed by the separate
/// activation, for the depthwise, im2col and 1×1 paths; it is skipped when the Conv's output has
/// another reader or is a graph output.
final class ActivationFusionTests: XCTestCase {
    func conv(_ name: String, _ x: String, _ w: String, _ y: String, group: Int = 1, pads: Int = 1) -> Node {
        Node(name: name, op: .conv, inputs: [x, w, w + "_b"], outputs: [y],
             attributes: Attributes(["_opset": .int(13), "group": .int(group), "pads": .ints([pads, pads, pads, pads])]))
    }

    func graph(activation: Node?) -> Graph {
        var rng = TestRandom(seed: 3)
        var nodes = [
            conv("dw", "x", "w1", "a", group: 4),      // depthwise 3×3
            conv("full", "a", "w2", "b"),              // im2col 3×3
            conv("pw", "b", "w3", "c", pads: 0),       // 1×1
        ]
        if var act = activation {
            act.inputs[0] = "c"
            act.outputs = ["y"]
            nodes.append(act)
        }
        var g = Graph(name: "fusion", nodes: nodes,
                      inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 4, 9, 23]))],
                      outputs: [ValueInfo(name: activation == nil ? "c" : "y", type: TensorType(dtype: .f32, dims: []))])
        for (w, shape) in [("w1", [4, 1, 3, 3]), ("w2", [6, 4, 3, 3]), ("w3", [5, 6, 1, 1])] {
            g.initializers[w] = Tensor(shape: shape, values: rng.floats(elementCount(shape)).map { $0 * 2 })
            g.initializers[w + "_b"] = Tensor(shape: [shape[0]], values: rng.floats(shape[0]))
        }
        return g
    }

    func testFusedConvMatchesSeparateActivation() throws {
        var rng = TestRandom(seed: 4)
        let x = Tensor(shape: [1, 4, 9, 23], values: rng.floats(4 * 9 * 23).map { $0 * 3 })
        let plain = try Session(graph: graph(activation: nil)).run(["x": x])["c"]!.floats
        var g = graph(activation: nil)
        g.initializers["lo"] = Tensor(shape: [], values: [Float(-0.25)])
        g.initializers["hi"] = Tensor(shape: [], values: [Float(0.5)])
        let cases: [(Node, (Float) -> Float)] = [
            (Node(name: "relu", op: .relu, inputs: ["c"], outputs: ["y"]), { $0 < 0 ? 0 : $0 }),
            (Node(name: "clip", op: .clip, inputs: ["c", "lo", "hi"], outputs: ["y"], attributes: Attributes(["_opset": .int(13)])),
             { $0 < -0.25 ? -0.25 : ($0 > 0.5 ? 0.5 : $0) }),
            (Node(name: "clip6", op: .clip, inputs: ["c"], outputs: ["y"], attributes: Attributes(["_opset": .int(6), "min": .float(0), "max": .float(6)])),
             { $0 < 0 ? 0 : ($0 > 6 ? 6 : $0) }),
        ]
        for (act, f) in cases {
            var fg = graph(activation: act)
            fg.initializers["lo"] = g.initializers["lo"]
            fg.initializers["hi"] = g.initializers["hi"]
            let session = try Session(graph: fg)
            XCTAssertFalse(session.graph.nodes.contains { $0.op == act.op }, "\(act.op) fused")
            let y = try session.run(["x": x])["y"]!.floats
            XCTAssertEqual(y, plain.map(f), "\(act.name)")
        }
    }

    func testNotFusedWhenTheConvOutputIsReadElsewhere() throws {
        var g = graph(activation: Node(name: "relu", op: .relu, inputs: ["c"], outputs: ["y"]))
        g.outputs.append(ValueInfo(name: "c", type: TensorType(dtype: .f32, dims: [])))
        let session = try Session(graph: g)
        XCTAssertTrue(session.graph.nodes.contains { $0.op == .relu })
        var rng = TestRandom(seed: 4)
        let x = Tensor(shape: [1, 4, 9, 23], values: rng.floats(4 * 9 * 23).map { $0 * 3 })
        let out = try session.run(["x": x])
        XCTAssertEqual(out["y"]!.floats, out["c"]!.floats.map { $0 < 0 ? 0 : $0 })
        XCTAssertTrue(out["c"]!.floats.contains { $0 < 0 }, "the raw conv output is kept")
    }
}

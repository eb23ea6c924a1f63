import CPerchShims
import Foundation
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

    /// SiLU written out as Mul(x, Sigmoid(x)) — either operand order — runs as one Sigmoid with
    /// `_times_input`: x·sigmoid(x) with the kernel's bits (f32) or within 1e-15 (f64, the generic
    /// path). Not fused when the Sigmoid's output is also a graph output.
    func testSiLUFusesIntoTheSigmoid() throws {
        var rng = TestRandom(seed: 12)
        let values = rng.floats(2 * 3 * 40).map { $0 * 9 }
        for dtype in [DType.f32, .f64] {
            for swapped in [false, true] {
                let g = Graph(name: "silu", nodes: [
                    Node(name: "s", op: .sigmoid, inputs: ["x"], outputs: ["s"]),
                    Node(name: "m", op: .mul, inputs: swapped ? ["s", "x"] : ["x", "s"], outputs: ["y"]),
                ], inputs: [ValueInfo(name: "x", type: TensorType(dtype: dtype, shape: [2, 3, 40]))],
                    outputs: [ValueInfo(name: "y", type: TensorType(dtype: dtype, dims: []))])
                let session = try Session(graph: g)
                XCTAssertEqual(session.graph.nodes.map(\.op), [.sigmoid], "\(dtype) swapped \(swapped)")
                let x = dtype == .f32 ? Tensor(shape: [2, 3, 40], values: values) : Tensor(shape: [2, 3, 40], values: values.map { Double($0) })
                let y = try session.run(["x": x])["y"]!
                if dtype == .f32 {
                    var want = [Float](repeating: 0, count: values.count)
                    perch_sigmoid_tanh_f32_scalar(values, values.count, FloatCurve.silu.rawValue, &want)
                    XCTAssertEqual(y.floats.map(\.bitPattern), want.map(\.bitPattern))
                } else {
                    for (got, v) in zip(y.doubles, values) {
                        let d = Double(v)
                        XCTAssertEqual(got, d / (1 + Foundation.exp(-d)), accuracy: 1e-15 * max(1, abs(d)))
                    }
                }
            }
        }
        let kept = Graph(name: "silu", nodes: [
            Node(name: "s", op: .sigmoid, inputs: ["x"], outputs: ["s"]),
            Node(name: "m", op: .mul, inputs: ["x", "s"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [4]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: [])), ValueInfo(name: "s", type: TensorType(dtype: .f32, dims: []))])
        let session = try Session(graph: kept)
        XCTAssertEqual(session.graph.nodes.map(\.op), [.sigmoid, .mul])
        let out = try session.run(["x": Tensor(shape: [4], values: [Float(-2), 0, 1, 3])])
        XCTAssertEqual(out["y"]!.floats, zip([Float(-2), 0, 1, 3], out["s"]!.floats).map { $0 * $1 })
    }

    /// An inference BatchNormalization (DenseNet's, after each Concat) takes the Relu after it:
    /// the same bits as BN then Relu, for f32 (the affine kernel) and f64 (the generic path).
    func testBatchNormTakesTheRelu() throws {
        var rng = TestRandom(seed: 8)
        for dtype in [DType.f32, .f64] {
            func tensor(_ shape: [Int], _ v: [Float]) -> Tensor {
                dtype == .f32 ? Tensor(shape: shape, values: v) : Tensor(shape: shape, values: v.map { Double($0) })
            }
            var g = Graph(name: "bn", nodes: [
                Node(name: "bn", op: .batchNormalization, inputs: ["x", "s", "b", "m", "v"], outputs: ["n"]),
                Node(name: "relu", op: .relu, inputs: ["n"], outputs: ["y"]),
            ], inputs: [ValueInfo(name: "x", type: TensorType(dtype: dtype, shape: [2, 3, 5, 7]))],
                outputs: [ValueInfo(name: "y", type: TensorType(dtype: dtype, dims: []))])
            for (name, v) in [("s", rng.floats(3)), ("b", rng.floats(3)), ("m", rng.floats(3)), ("v", rng.floats(3).map { abs($0) + 0.1 })] {
                g.initializers[name] = tensor([3], v)
            }
            let x = tensor([2, 3, 5, 7], rng.floats(210).map { $0 * 3 })
            let fused = try Session(graph: g)
            XCTAssertFalse(fused.graph.nodes.contains { $0.op == .relu }, "\(dtype): Relu fused")
            var plain = g
            plain.outputs = [ValueInfo(name: "n", type: TensorType(dtype: dtype, dims: []))]
            plain.nodes.removeLast()
            let n = try Session(graph: plain).run(["x": x])["n"]!.doubles
            let y = try fused.run(["x": x])["y"]!.doubles
            XCTAssertEqual(y, n.map { $0 < 0 ? 0 : $0 }, "\(dtype)")
            XCTAssertTrue(n.contains { $0 < 0 } && n.contains { $0 > 0 })
        }
    }

    /// The AVX-512 per-channel affine against the scalar one, bit for bit, with and without a clamp,
    /// NaN included, at lengths around a vector.
    func testAffineKernelAVX512MatchesScalar() throws {
        #if arch(x86_64)
        guard VectorISA.best().avx512 else { throw XCTSkip("no AVX-512 on this CPU") }
        var rng = TestRandom(seed: 9)
        for n in [1, 15, 16, 17, 49, 196, 3136] {
            var x = rng.floats(n).map { $0 * 4 }
            x[n / 2] = .nan
            for clamp in [Int32(0), 1] {
                var a = [Float](repeating: 7, count: n), b = a
                perch_affine_f32_avx512(x, n, 1.7, -0.3, clamp, 0, 6, &a)
                perch_affine_f32_scalar(x, n, 1.7, -0.3, clamp, 0, 6, &b)
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "n \(n) clamp \(clamp)")
            }
        }
        #else
        throw XCTSkip("x86-64 only")
        #endif
    }
}

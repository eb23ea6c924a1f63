import PerchEngine
import PerchGraph
import XCTest

@testable import PerchOptimize

/// Bias correction: with inputs whose channels have large means and weights whose rounding error
/// does not average out (an outlier per channel makes the int8 step coarse), the int8 model's
/// per-channel mean output error shrinks to a fraction of the uncorrected one.
final class BiasCorrectionTests: XCTestCase {
    /// A deterministic pseudo-random value in [-1, 1).
    func noise(_ i: Int) -> Float { Float((i &* 2_654_435_761) % 1000) / 500 - 1 }

    /// x [1, C, 6, 6] → depthwise 3×3 Conv (bias) → Flatten → Gemm (transB = 1, no bias) → y.
    func model(channels c: Int, features n: Int) -> Graph {
        var dw = [Float](), gw = [Float]()
        for o in 0..<c {
            for k in 0..<9 { dw.append(k == 0 ? 3 : 0.173 + 0.011 * Float(o) + 0.01 * noise(o * 9 + k)) }
        }
        for j in 0..<n {
            for i in 0..<(c * 16) { gw.append(i == j ? 1.5 : 0.0137 + 0.002 * noise(j * 1000 + i)) }
        }
        let opset = Attributes(["_opset": .int(13)])
        return Graph(
            name: "bc",
            nodes: [
                Node(name: "dw", op: .conv, inputs: ["x", "dw_w", "dw_b"], outputs: ["h"],
                     attributes: Attributes(["_opset": .int(13), "group": .int(c), "kernel_shape": .ints([3, 3])])),
                Node(name: "flat", op: .flatten, inputs: ["h"], outputs: ["f"], attributes: opset),
                Node(name: "fc", op: .gemm, inputs: ["f", "fc_w"], outputs: ["y"], attributes: Attributes(["_opset": .int(13), "transB": .int(1)])),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, c, 6, 6]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, n]))],
            initializers: ["dw_w": Tensor(shape: [c, 1, 3, 3], values: dw), "dw_b": Tensor(shape: [c], values: [Float](repeating: 0.1, count: c)),
                           "fc_w": Tensor(shape: [n, c * 16], values: gw)])
    }

    func testCorrectionRemovesTheMeanShift() throws {
        let c = 8, n = 5
        let g = model(channels: c, features: n)
        let samples: [[String: Tensor]] = (0..<16).map { s in
            ["x": Tensor(shape: [1, c, 6, 6], values: (0..<(c * 36)).map { i in 2 + 0.5 * Float(i / 36) + 0.3 * noise(s * 7919 + i) })]
        }
        let data = Dataset(samples: samples)
        let layers = Quantizer.layers(g)
        XCTAssertEqual(layers.map(\.op), [.conv, .gemm])
        let stats = try Calibrator.collect(g, tensors: Quantizer.activations(layers), dataset: data)
        let ranges = stats.mapValues { Calibrator.range($0, method: .minmax) }
        let plan = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, Precision.int8) })
        var means: [String: [Float]] = [:]
        for l in layers { means[l.name] = l.op == .conv ? stats[l.input]!.axis1Means : stats[l.input]!.lastAxisMeans }
        XCTAssertEqual(means["dw"]?.count, c)
        XCTAssertEqual(means["fc"]?.count, c * 16)
        // The depthwise input's channel means are what the samples were built with (2 + 0.5·c).
        for ch in 0..<c { XCTAssertEqual(means["dw"]![ch], 2 + 0.5 * Float(ch), accuracy: 0.02) }

        let plain = Quantizer.apply(g, layers: layers, plan: plan, ranges: ranges, fp16Compute: false)
        let corrected = Quantizer.apply(g, layers: layers, plan: plan, ranges: ranges, fp16Compute: false, inputMeans: means)
        // The Gemm had no bias: correction gave it one.
        XCTAssertEqual(corrected.nodes.first { $0.op == .gemm }?.inputs.count, 3)

        func meanError(_ q: Graph) throws -> [Double] {
            let ref = try Session(graph: g), cand = try Session(graph: q)
            var err = [Double](repeating: 0, count: n)
            for s in samples {
                let a = try ref.run(s)["y"]!, b = try cand.run(s)["y"]!
                let av = a.withUnsafeBufferPointer(of: Float.self) { Array($0) }
                let bv = b.withUnsafeBufferPointer(of: Float.self) { Array($0) }
                for j in 0..<n { err[j] += Double(bv[j] - av[j]) / Double(samples.count) }
            }
            return err
        }
        let before = try meanError(plain).map { abs($0) }.reduce(0, +)
        let after = try meanError(corrected).map { abs($0) }.reduce(0, +)
        XCTAssertGreaterThan(before, 0.05, "the fixture must have a visible shift to correct")
        XCTAssertLessThan(after, 0.35 * before, "mean |error| per output: \(before) → \(after)")
    }

    /// The shift formula against a hand computation: Gemm transB = 0, W [2, 2].
    func testShiftOfAGemm() {
        let w = Tensor(shape: [2, 2], values: [1, 0.3, -2, 0.2] as [Float])
        let (q, scales) = Quantizer.quantizeWeights(w, axis: 1)
        let node = Node(name: "fc", op: .gemm, inputs: ["x", "w"], outputs: ["y"])
        let shift = Quantizer.weightRoundingShift(node, weights: w, quantized: q, scales: scales, axis: 1, inputMeans: [2, -1])!
        let dq: [Float] = (0..<4).map { Float(q[$0]) * scales[$0 % 2] }
        XCTAssertEqual(shift[0], (dq[0] - 1) * 2 + (dq[2] + 2) * -1, accuracy: 1e-6)
        XCTAssertEqual(shift[1], (dq[1] - 0.3) * 2 + (dq[3] - 0.2) * -1, accuracy: 1e-6)
        XCTAssertNil(Quantizer.weightRoundingShift(node, weights: w, quantized: q, scales: scales, axis: 1, inputMeans: [1, 2, 3]))
    }
}

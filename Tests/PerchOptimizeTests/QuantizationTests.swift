import PerchEngine
import PerchGraph
import PerchProfiles
import XCTest

@testable import PerchOptimize

final class QuantizationTests: XCTestCase {
    func testPerChannelSymmetricWeights() {
        let w = Tensor(shape: [2, 3], values: [1, -2, 0.5, 0.1, 0.2, -0.4] as [Float])
        let (q, scales) = Quantizer.quantizeWeights(w, axis: 0)
        XCTAssertEqual(scales[0], 2 / 127, accuracy: 1e-9)
        XCTAssertEqual(scales[1], 0.4 / 127, accuracy: 1e-9)
        // 1/(2/127) = 63.5 → 64 (to even), 0.5·63.5 = 31.75 → 32.
        XCTAssertEqual(q, [64, -127, 32, 32, 64, -127])
        // Axis 1 (Gemm with transB = 0): columns are channels.
        let (q1, s1) = Quantizer.quantizeWeights(Tensor(shape: [2, 2], values: [1, 4, -2, 2] as [Float]), axis: 1)
        XCTAssertEqual(s1, [2 / 127, 4 / 127])
        XCTAssertEqual(q1, [64, 127, -127, 64])
    }

    func testActivationParametersMatchONNXRuntime() {
        // ORT: scale = (max(rmax,0) − min(rmin,0)) / 255, zero point = round(−rmin / scale).
        let (s, z) = Quantizer.activationParameters(-1, 3)
        XCTAssertEqual(s, 4 / 255, accuracy: 1e-9)
        XCTAssertEqual(z, 64)
        let (s2, z2) = Quantizer.activationParameters(0.5, 6)
        XCTAssertEqual(s2, 6 / 255, accuracy: 1e-9)
        XCTAssertEqual(z2, 0)
    }

    func testCalibrationMethodsClipOutliers() {
        var stats = ActivationStats()
        var values = [Float]()
        for i in 0..<20000 { values.append(sinf(Float(i) * 0.37)) }
        values.append(100)
        stats.values = values
        stats.min = -1
        stats.max = 100
        XCTAssertEqual(Calibrator.range(stats, method: .minmax).1, 100)
        // Percentile and entropy (whose smallest candidate is 128 of 2048 bins, 6.25) clip the outlier.
        for (method, limit) in [(CalibrationMethod.percentile, Float(1.01)), (.entropy, 6.4)] {
            let (lo, hi) = Calibrator.range(stats, method: method)
            XCTAssertLessThan(hi, limit, method.rawValue)
            XCTAssertGreaterThan(hi, 0.9, method.rawValue)
            XCTAssertGreaterThanOrEqual(lo, -1, method.rawValue)
        }
        // MSE weighs the error of every value: one outlier in 20001 is worth keeping.
        XCTAssertGreaterThan(Calibrator.range(stats, method: .mse).1, 50)
        // Laplace tails (b = 1, max ≈ 9.9): the MSE-optimal 8-bit clip is inside the largest value,
        // near Banner et al.'s 9.89·b minus the sparse tail.
        var tails = ActivationStats()
        tails.values = (1..<20000).map { i in -logf(Float(i) / 20000) * (i % 2 == 0 ? 1 : -1) }
        tails.min = tails.values.min()!
        tails.max = tails.values.max()!
        let (_, hi) = Calibrator.range(tails, method: .mse)
        XCTAssertLessThan(hi, 0.95 * -tails.min)  // |min| ≈ 9.90 is the largest magnitude
        XCTAssertGreaterThan(hi, 7)
    }

    /// `graph` (tiny-cnn, possibly edited) simplified, calibrated on tiny-cnn's sample input (min/max)
    /// and quantized with every layer int8; with that input.
    func quantizedTinyCNN(_ graph: Graph) throws -> (simplified: Graph, quantized: Graph, feeds: [String: Tensor]) {
        var g = graph
        _ = try Simplifier.simplify(&g)
        let feeds = try Fixtures.tinyCNNInput()
        let layers = Quantizer.layers(g)
        let stats = try Calibrator.collect(g, tensors: Quantizer.activations(layers), dataset: Dataset(samples: [feeds]))
        let ranges = stats.mapValues { Calibrator.range($0, method: .minmax) }
        let plan = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, Precision.int8) })
        return (g, Quantizer.apply(g, layers: layers, plan: plan, ranges: ranges, fp16Compute: false), feeds)
    }

    /// All-int8 tiny-cnn is the QDQ form ORT's quantize_static (per_channel) writes, and close to fp32.
    func testTinyCNNQDQGraph() throws {
        let (g, q, feeds) = try quantizedTinyCNN(try Fixtures.onnx("examples/tiny-cnn.onnx"))
        XCTAssertEqual(Quantizer.layers(g).count, 8)

        var producer: [String: Node] = [:]
        for n in q.nodes { for o in n.outputs { producer[o] = n } }
        for node in q.nodes where node.op == .conv || node.op == .gemm {
            let wdq = try XCTUnwrap(producer[node.inputs[1]], node.displayName)
            XCTAssertEqual(wdq.op, .dequantizeLinear)
            XCTAssertEqual(q.initializers[wdq.inputs[0]]?.dtype, .i8)
            XCTAssertEqual(q.initializers[wdq.inputs[1]]?.shape, [q.initializers[wdq.inputs[0]]!.shape[wdq.attributes.int("axis", default: 1)]])
            XCTAssertEqual(q.initializers[wdq.inputs[2]]?.dtype, .i8)
            let xdq = try XCTUnwrap(producer[node.inputs[0]])
            XCTAssertEqual(xdq.op, .dequantizeLinear)
            XCTAssertEqual(producer[xdq.inputs[0]]?.op, .quantizeLinear)
            XCTAssertEqual(q.initializers[xdq.inputs[2]]?.dtype, .u8)
            if let b = node.input(2) {
                let bdq = try XCTUnwrap(producer[b])
                XCTAssertEqual(q.initializers[bdq.inputs[0]]?.dtype, .i32)
            }
        }
        // No fp32 weights of quantized layers remain.
        XCTAssertNil(q.initializers["fc_w"])
        let ref = try Fixtures.run(g, feeds)["probabilities"]!
        let out = try Fixtures.run(q, feeds)["probabilities"]!
        let a = Evaluator.compare(reference: [[ref]], candidate: [[out]], labels: nil)
        XCTAssertGreaterThan(a.cosine, 0.999)
        XCTAssertEqual(a.top1Agreement, 1)
        // Encodes as .perchm and decodes to the same graph.
        XCTAssertEqual(try PerchModelFile.decode(PerchModelFile.encode(q)).initializers.count, q.initializers.count)
    }

    /// A filter whose weights are all but zero (here BatchNorm's gamma of 1e-9, folded into the
    /// stem) must keep its bias: with the weight scale from max|w| alone, the bias over s_x·s_w
    /// was far beyond Int32 (it trapped converting 2^31, then clamped to ~1e-4 of itself). The
    /// weight scale is raised until the int32 bias holds it, so every dequantized bias equals the
    /// float one, and the model runs.
    func testNearZeroFilterKeepsItsBias() throws {
        var g = try Fixtures.onnx("examples/tiny-cnn.onnx")
        var gamma = try XCTUnwrap(g.initializers["stem_gamma"]).floats
        gamma[0] = 1e-9
        g.initializers["stem_gamma"] = Tensor(shape: [gamma.count], values: gamma)
        let (simplified, q, feeds) = try quantizedTinyCNN(g)
        g = simplified
        var producer: [String: Node] = [:]
        for n in q.nodes { for o in n.outputs { producer[o] = n } }
        var checked = 0
        for node in q.nodes where node.op == .conv {
            guard let b = node.input(2), let dq = producer[b], dq.op == .dequantizeLinear,
                  let original = g.nodes.first(where: { $0.name == node.name })?.input(2).flatMap({ g.initializers[$0] })
            else { continue }
            let bq = try XCTUnwrap(q.initializers[dq.inputs[0]]).doubles, bs = try XCTUnwrap(q.initializers[dq.inputs[1]]).doubles
            for (c, want) in original.doubles.enumerated() {
                XCTAssertEqual(bq[c] * bs[c], want, accuracy: 1e-4 * Swift.max(1, abs(want)), "\(node.name) channel \(c)")
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
        let out = try XCTUnwrap(try Fixtures.run(q, feeds)["probabilities"])
        XCTAssertTrue(out.floats.allSatisfy { $0.isFinite })
    }

    func testFP16LayersStoreHalfWeights() throws {
        var g = try Fixtures.onnx("examples/tiny-cnn.onnx")
        _ = try Simplifier.simplify(&g)
        let layers = Quantizer.layers(g)
        let plan = Dictionary(uniqueKeysWithValues: layers.map { ($0.name, Precision.fp16) })
        let h = Quantizer.apply(g, layers: layers, plan: plan, ranges: [:], fp16Compute: true)
        XCTAssertEqual(h.initializers.values.filter { $0.dtype == .f16 }.count, 8)
        XCTAssertLessThan(h.weightsBytes, g.weightsBytes * 6 / 10)
        let feeds = try Fixtures.tinyCNNInput()
        Fixtures.assertClose(try Fixtures.run(g, feeds)["probabilities"]!, try Fixtures.run(h, feeds)["probabilities"]!, tolerance: 2e-3)
    }
}

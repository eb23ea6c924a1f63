import PerchEngine
import PerchGraph
import PerchProfiles
import XCTest
@testable import PerchOptimize

/// The optimizer's QDQ output run with the engine's integer kernels (QDQ fusion on) must agree
/// with the same graph run as fake-quant in fp32 (fusion off) to one quantization step. Guards
/// the case that once went wrong: a Conv with one input channel and group 1 (digits' first
/// layer) was taken for a depthwise conv by the int8 path.
final class QDQFusionAgreementTests: XCTestCase {
    func testFusedIntegerKernelsMatchFakeQuantOnDigits() throws {
        let graph = try Fixtures.onnx("examples/digits/digits-cnn.onnx")
        let profile = try ProfileLoader(searchPaths: [Fixtures.path("device-profiles")]).load(name: "rpi4")
        var o = try OptimizerTests.digitsOptions(budget: 100)
        o.eval = Dataset(samples: Array(o.eval!.samples.prefix(5)))
        o.labels = Array(o.labels!.prefix(5))
        let g = try Optimizer(profile: profile, options: o).run(graph).graph
        let x = o.eval!.samples[0]
        for probe in ["conv_QuantizeLinear_Output", "fc1_QuantizeLinear_Output"] {
            var h = g
            h.outputs = [ValueInfo(name: probe, type: TensorType(dtype: .u8, dims: []))]
            let fused = try Session(graph: h, options: SessionOptions(fuseQuantized: true)).run(x)[probe]!.int64s
            let fake = try Session(graph: h, options: SessionOptions(fuseQuantized: false)).run(x)[probe]!.int64s
            XCTAssertEqual(fused.count, fake.count)
            var worst: Int64 = 0
            for i in 0..<fused.count { worst = max(worst, abs(fused[i] - fake[i])) }
            XCTAssertLessThanOrEqual(worst, 1, probe)
        }
    }
}

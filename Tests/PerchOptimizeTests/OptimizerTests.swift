import PerchEngine
import PerchGraph
import PerchProfiles
import XCTest

@testable import PerchOptimize

/// End to end on the digits CNN (examples/digits/train_digits.py): held-out top-1 with labels.
final class OptimizerTests: XCTestCase {
    static func digitsOptions(budget: Double) throws -> OptimizeOptions {
        let inputs = [ValueInfo(name: "image", type: TensorType(dtype: .f32, dims: [.symbolic("batch"), .fixed(1), .fixed(8), .fixed(8)]))]
        var o = OptimizeOptions()
        o.calibration = try Dataset.load(Fixtures.path("examples/digits/calibration"), inputs: inputs)
        o.eval = try Dataset.load(Fixtures.path("examples/digits/eval"), inputs: inputs)
        o.labels = try Dataset.loadLabels(Fixtures.path("examples/digits/eval-labels.npy"))
        o.maxAccuracyDrop = budget
        return o
    }

    func testDigitsInt8KeepsAccuracyAndShrinksFile() throws {
        let graph = try Fixtures.onnx("examples/digits/digits-cnn.onnx")
        let profile = try ProfileLoader(searchPaths: [Fixtures.path("device-profiles")]).load(name: "rpi4")
        let result = try Optimizer(profile: profile, options: try Self.digitsOptions(budget: 0.5)).run(graph)
        let r = result.report
        XCTAssertEqual(r.calibrationSamples, 64)
        XCTAssertEqual(r.evalSamples, 400)
        let fp32 = try XCTUnwrap(r.fp32Accuracy)
        let opt = try XCTUnwrap(r.optimizedAccuracy)
        XCTAssertGreaterThan(fp32, 0.95)
        XCTAssertLessThanOrEqual(100 * (fp32 - opt), 0.5)
        // The whole .perchm, headers included (the model's weights are ~1 MB fp32).
        let before = PerchModelFile.encode(graph).count
        let after = PerchModelFile.encode(result.graph).count
        XCTAssertLessThanOrEqual(Double(after), 0.27 * Double(before), "file " + String(after) + " of " + String(before))
        XCTAssertTrue(r.layers.allSatisfy { $0.precision == .int8 })
        XCTAssertLessThanOrEqual(r.peakBytes, profile.memoryBudgetBytes)
    }

    func testTooLittleMemoryFailsWithNumbers() throws {
        let graph = try Fixtures.onnx("examples/digits/digits-cnn.onnx")
        let tiny = DeviceProfile(name: "tiny", cpu: .init(isa: .aarch64, features: [.neon]), memory: .init(ramMB: 1, modelShare: 0.1))
        var options = OptimizeOptions()
        options.syntheticSamples = 1
        XCTAssertThrowsError(try Optimizer(profile: tiny, options: options).run(graph)) { error in
            guard case .doesNotFit(let what, let hint) = error as? OptimizeError else { return XCTFail(String(describing: error)) }
            XCTAssertTrue(what.contains("over by"), what)
            XCTAssertTrue(what.contains("0.10 MiB"), what)  // 1 MiB × 0.1
            XCTAssertTrue(hint.contains("ram_mb ≥"), hint)
        }
    }

    func testIntegerOnlyAcceleratorGetsInt8OrAnError() throws {
        let graph = try Fixtures.onnx("examples/digits/digits-cnn.onnx")
        let npu = DeviceProfile(
            name: "npu", cpu: .init(isa: .aarch64, features: [.neon]), memory: .init(ramMB: 1024),
            accelerator: .init(kind: .npu, dtypes: [.int8]))
        XCTAssertEqual(CostModel(profile: npu).allowed, [.int8])
        var options = try Self.digitsOptions(budget: -1)  // unmeetable
        options.eval = Dataset(samples: Array(options.eval!.samples.prefix(20)))
        options.labels = Array(options.labels!.prefix(20))
        XCTAssertThrowsError(try Optimizer(profile: npu, options: options).run(graph)) { error in
            guard case .accuracyBudget(let what, _) = error as? OptimizeError else { return XCTFail(String(describing: error)) }
            XCTAssertTrue(what.contains("int8 only"), what)
        }
    }

    func testFP16ComputeOnlyWhereTheCPUHasIt() throws {
        let loader = ProfileLoader(searchPaths: [Fixtures.path("device-profiles")])
        XCTAssertEqual(CostModel(profile: try loader.load(name: "rpi5")).allowed, [.int8, .fp16, .fp32])
        XCTAssertEqual(CostModel(profile: try loader.load(name: "rpi4")).allowed, [.int8, .fp32])
    }

    /// Calibrating on images scaled to 30% clips every real activation: pure int8 misses a tight
    /// budget, and promoting the most sensitive layers (to fp32 on rpi4) meets it.
    func testMixedPrecisionMeetsABudgetPureInt8Misses() throws {
        let graph = try Fixtures.onnx("examples/digits/digits-cnn.onnx")
        let profile = try ProfileLoader(searchPaths: [Fixtures.path("device-profiles")]).load(name: "rpi4")
        var options = try Self.digitsOptions(budget: 0.5)
        options.calibration = Dataset(samples: options.calibration!.samples.map { feeds in
            feeds.mapValues { t in Tensor(shape: t.shape, values: t.floats.map { $0 * 0.3 }) }
        })
        options.eval = Dataset(samples: Array(options.eval!.samples.prefix(200)))
        options.labels = Array(options.labels!.prefix(200))
        let r = try Optimizer(profile: profile, options: options).run(graph).report
        XCTAssertGreaterThan(try XCTUnwrap(r.pureInt8Drop), 0.5)
        XCTAssertLessThanOrEqual(r.dropPoints, 0.5)
        XCTAssertTrue(r.layers.contains { $0.precision == .fp32 })
        XCTAssertTrue(r.layers.allSatisfy { $0.precision != .fp16 })  // rpi4 has no fp16 arithmetic
        XCTAssertLessThan(r.estimatedCost, r.estimatedCostFP32, r.layers.map { $0.name + " " + $0.precision.rawValue + " " + String($0.drop) }.joined(separator: ", "))
    }
}

/// The quantizer never does worse than plain min/max ranges without bias correction: a clipping
/// method or the bias correction stays only when it raises agreement with fp32.
final class OptimizerFidelityTests: XCTestCase {
    func run(_ method: CalibrationMethod, biasCorrection: Bool) throws -> OptimizationReport {
        let graph = try Fixtures.onnx("examples/tiny-cnn.onnx")
        let profile = try ProfileLoader(searchPaths: [Fixtures.path("device-profiles")]).load(name: "coral-dev-board")
        var o = OptimizeOptions()
        o.method = method
        o.biasCorrection = biasCorrection
        o.syntheticSamples = 8
        o.maxAccuracyDrop = 100
        o.sensitivitySamples = 2
        return try Optimizer(profile: profile, options: o).run(graph).report
    }

    func testNeverBelowPlainMinMax() throws {
        let plain = try run(.minmax, biasCorrection: false)
        XCTAssertEqual(plain.biasCorrection, "off")
        XCTAssertEqual(plain.methodUsed, .minmax)
        let base = try XCTUnwrap(plain.agreement?.cosine)
        for method in CalibrationMethod.allCases {
            let r = try run(method, biasCorrection: true)
            let cos = try XCTUnwrap(r.agreement?.cosine)
            XCTAssertGreaterThanOrEqual(cos, base - 1e-12, method.rawValue)
            XCTAssertTrue(["applied", "not kept"].contains(r.biasCorrection), r.biasCorrection)
            if r.methodUsed != method { XCTAssertTrue(r.warnings.contains { $0.contains("minmax ranges were used") }, "\(r.warnings)") }
        }
    }
}

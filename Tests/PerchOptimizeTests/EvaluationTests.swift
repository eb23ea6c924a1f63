import PerchGraph
import PerchProfiles
@testable import PerchOptimize
import XCTest

/// How an optimized model is compared with fp32: element-wise closeness, and agreement of the
/// model's decisions (class per row, or the boxes a NonMaxSuppression selects).
final class EvaluationTests: XCTestCase {
    func testTop1AgreementIsPerRowOfTheLastAxis() {
        // A recognizer's [steps, 1, classes]: step 2 changes its class, steps 0, 1 and 3 do not.
        let ref = Tensor(shape: [4, 1, 3], values: [Float(0.9), 0.1, 0, 0, 1, 0, 0.2, 0.3, 0.5, 1, 0, 0])
        let cand = Tensor(shape: [4, 1, 3], values: [Float(0.8), 0.1, 0, 0, 0.9, 0, 0.2, 0.6, 0.5, 1, 0, 0])
        let a = Evaluator.compare(reference: [[ref]], candidate: [[cand]], labels: nil)
        XCTAssertEqual(a.top1Agreement, 0.75, accuracy: 1e-12)
        // A classifier's [1, classes] is one decision per sample, as before.
        let c1 = Tensor(shape: [1, 3], values: [Float(0.1), 0.7, 0.2])
        let c2 = Tensor(shape: [1, 3], values: [Float(0.1), 0.2, 0.7])
        XCTAssertEqual(Evaluator.compare(reference: [[c1], [c1]], candidate: [[c1], [c2]], labels: nil).top1Agreement, 0.5, accuracy: 1e-12)
    }

    func testDenseMapsAreComparedPixelByPixel() {
        // A text detector's [1, 1, H, W] probability map: the pixels above 0.5, as sets. fp32 has
        // 3 text pixels, the candidate 2 of them and one more: 2 of 4. The values differ
        // everywhere, the arg-max along W of every row too, and that does not count.
        let ref = Tensor(shape: [1, 1, 2, 3], values: [Float(0.9), 0.8, 0.1, 0.2, 0.7, 0.0])
        let cand = Tensor(shape: [1, 1, 2, 3], values: [Float(0.7), 0.95, 0.6, 0.1, 0.4, 0.3])
        XCTAssertEqual(Evaluator.compare(reference: [[ref]], candidate: [[cand]], labels: nil).top1Agreement, 0.5, accuracy: 1e-12)
        let same = Tensor(shape: [1, 1, 2, 3], values: [Float(0.6), 0.99, 0.2, 0.3, 0.51, 0.45])
        XCTAssertEqual(Evaluator.compare(reference: [[ref]], candidate: [[same]], labels: nil).top1Agreement, 1, accuracy: 1e-12)
        // Logits (values outside [0, 1]) split at 0; no text in either: agreement.
        let l1 = Tensor(shape: [1, 1, 1, 2], values: [Float(-3), 2])
        let l2 = Tensor(shape: [1, 1, 1, 2], values: [Float(1), 1])
        XCTAssertEqual(Evaluator.compare(reference: [[l1]], candidate: [[l2]], labels: nil).top1Agreement, 0.5, accuracy: 1e-12)
        let empty = Tensor(shape: [1, 1, 1, 2], values: [Float(0.1), 0.2])
        XCTAssertEqual(Evaluator.compare(reference: [[empty]], candidate: [[empty]], labels: nil).top1Agreement, 1)
        // A segmenter's [1, 3, 1, 2]: the class of each pixel (pixel 0: 2 vs 2, pixel 1: 0 vs 1).
        let s1 = Tensor(shape: [1, 3, 1, 2], values: [Float(0), 5, 1, 1, 2, 0])
        let s2 = Tensor(shape: [1, 3, 1, 2], values: [Float(0), 1, 1, 2, 3, 0])
        XCTAssertEqual(Evaluator.compare(reference: [[s1]], candidate: [[s2]], labels: nil).top1Agreement, 0.5, accuracy: 1e-12)
        // A classifier's [1, classes, 1, 1] is one decision over the classes, not one per class.
        let k1 = Tensor(shape: [1, 3, 1, 1], values: [Float(0.1), 0.7, 0.2])
        let k2 = Tensor(shape: [1, 3, 1, 1], values: [Float(0.1), 0.2, 0.7])
        XCTAssertEqual(Evaluator.compare(reference: [[k1]], candidate: [[k2]], labels: nil).top1Agreement, 0, accuracy: 1e-12)
    }

    func testSelectionsAreComparedAsSetsOfBoxes() {
        let dense = Tensor(shape: [2], values: [Float(1), 2])
        // fp32 selects boxes 3, 7, 9 of class 0; the candidate 7, 3, 5: 2 in common of 4.
        let ref = Tensor(shape: [3, 3], values: [Int64(0), 0, 3, 0, 0, 7, 0, 0, 9])
        let cand = Tensor(shape: [3, 3], values: [Int64(0), 0, 7, 0, 0, 3, 0, 0, 5])
        let a = Evaluator.compare(reference: [[dense, ref]], candidate: [[dense, cand]], labels: nil, selections: 1)
        XCTAssertEqual(a.top1Agreement, 0.5, accuracy: 1e-12)
        XCTAssertEqual(a.cosine, 1, accuracy: 1e-12)
        // Nothing selected by either: full agreement.
        let none = Tensor(dtype: .i64, shape: [0, 3])
        XCTAssertEqual(Evaluator.compare(reference: [[dense, none]], candidate: [[dense, none]], labels: nil, selections: 1).top1Agreement, 1)
    }
}

/// A detector ending in NonMaxSuppression (examples/detector): its outputs change shape with the
/// selection, so the optimizer compares the boxes and scores the NMS reads, and judges int8 by
/// how many of fp32's selected boxes it keeps.
final class DetectorOptimizationTests: XCTestCase {
    func testDetectorIsJudgedByItsSelections() throws {
        let graph = try Fixtures.onnx("examples/detector/tiny-detector.onnx")
        let image = try Fixtures.npy("examples/detector/tiny-detector-input.npy")
        let profile = try ProfileLoader(searchPaths: [Fixtures.path("device-profiles")]).load(name: "rpi4")
        var options = OptimizeOptions()
        var samples = [[String: Tensor]]()
        for k in 0..<4 {
            // The fixture's image and scaled copies of it (brighter and darker scenes).
            let scale = Float(k + 1) / 2
            samples.append(["image": Tensor(shape: image.shape, values: image.floats.map { $0 * scale })])
        }
        options.calibration = Dataset(samples: samples)
        options.maxAccuracyDrop = 100
        let report = try Optimizer(profile: profile, options: options).run(graph).report
        XCTAssertEqual(report.compared.selections, ["selected"])
        XCTAssertTrue(report.compared.beforeValueDependentPart)
        XCTAssertEqual(Array(report.compared.dense.prefix(2)), ["boxes", "scores"])
        // With a 100-point budget every layer is int8; the selections then mostly agree.
        XCTAssertTrue(report.layers.allSatisfy { $0.precision == .int8 })
        let agreement = try XCTUnwrap(report.agreement)
        XCTAssertGreaterThan(agreement.cosine, 0.999)
        XCTAssertGreaterThan(agreement.top1Agreement, 0.5)
        XCTAssertLessThan(agreement.top1Agreement, 1.0001)
    }
}

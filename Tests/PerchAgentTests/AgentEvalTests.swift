import Foundation
import PerchGraph
import XCTest

/// `bench`'s eval agreement (Sources/perch-agent/Eval.swift): the bundle's eval inputs run on the
/// device and are compared with its reference outputs; references here are computed from the
/// model's formula y = relu(x + w), then some are altered on purpose.
final class AgentEvalTests: AgentTestCase {
    /// Samples of x, stacked on a new first axis: shape `[count] + shape`.
    func inputs(_ count: Int, shape: [Int]) -> [[Float]] {
        let n = shape.reduce(1, *)
        return (0..<count).map { s in (0..<n).map { i in Float((i * 7 + s * 13) % 11) * 0.1 - 0.4 } }
    }

    func reference(_ x: [Float], seed: Float) -> [Float] {
        let w = Self.weights(seed: seed, elements: x.count)
        return zip(x, w).map { max(0, $0 + $1) }
    }

    /// Writes an eval directory: inputs/x.npy and outputs/y.npy, stacked (or one sample as is).
    func evalDir(_ name: String, shape: [Int], xs: [[Float]], ys: [[Float]], stacked: Bool = true) -> String {
        let d = dir + "/" + name
        try? FileManager.default.createDirectory(atPath: d + "/inputs", withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: d + "/outputs", withIntermediateDirectories: true)
        let lead = stacked ? [xs.count] : []
        write(NPY.encode(Tensor(shape: lead + shape, values: xs.flatMap { $0 })), d + "/inputs/x.npy")
        write(NPY.encode(Tensor(shape: lead + shape, values: ys.flatMap { $0 })), d + "/outputs/y.npy")
        return d
    }

    func bench() throws -> [String: Any] {
        let r = try agent(["bench", "--runs", "2", "--warmup", "0"])
        XCTAssertEqual(r.status, 0, r.err)
        return try XCTUnwrap(r.json, r.out)
    }

    /// Classifier-shaped output `[1, 16]`: top-1 decides. 4 stacked samples; the second bundle's
    /// references move the top-1 of one sample, and scale the others (top-1 unchanged: still agree).
    func testTop1AgreementOfStackedSamples() throws {
        let shape = [1, 16]
        let xs = inputs(4, shape: shape)
        let good = xs.map { reference($0, seed: 1) }
        try agent(["install", try bundle("1.0.0", seed: 1, evalDirectory: evalDir("good", shape: shape, xs: xs, ys: good))])
            .expectOK()
        var j = try bench()
        XCTAssertEqual(j["eval_samples"] as? Int, 4)
        XCTAssertEqual(j["eval_agreed"] as? Int, 4)
        XCTAssertEqual(j["eval_agreement"] as? Double, 1.0)

        var bad = xs.map { reference($0, seed: 2).map { $0 * 3 } }
        let top = bad[2].indices.max { bad[2][$0] < bad[2][$1] }!
        bad[2][(top + 1) % 16] = bad[2][top] + 1
        try agent(["install", try bundle("2.0.0", seed: 2, evalDirectory: evalDir("bad", shape: shape, xs: xs, ys: bad))])
            .expectOK()
        j = try bench()
        XCTAssertEqual(j["eval_samples"] as? Int, 4)
        XCTAssertEqual(j["eval_agreed"] as? Int, 3)
        XCTAssertEqual(j["eval_agreement"] as? Double, 0.75)
    }

    /// Any other output shape (`[4, 4]`): max |difference| ≤ 1e-4 + 1% of max |reference|. One
    /// unstacked sample: off by 0.5% of the peak agrees, off by 2% does not.
    func testToleranceAgreementOfOneSample() throws {
        let shape = [4, 4]
        let x = inputs(1, shape: shape)[0]
        let y = reference(x, seed: 1)
        let peak = y.map(abs).max()!
        var near = y, far = y
        near[5] += 0.005 * peak
        far[5] += 0.02 * peak
        try agent(["install", try bundle("1.0.0", seed: 1, shape: shape,
                                         evalDirectory: evalDir("near", shape: shape, xs: [x], ys: [near], stacked: false))]).expectOK()
        var j = try bench()
        XCTAssertEqual(j["eval_samples"] as? Int, 1)
        XCTAssertEqual(j["eval_agreement"] as? Double, 1.0)
        try agent(["install", try bundle("2.0.0", seed: 1, shape: shape,
                                         evalDirectory: evalDir("far", shape: shape, xs: [x], ys: [far], stacked: false))]).expectOK()
        j = try bench()
        XCTAssertEqual(j["eval_samples"] as? Int, 1)
        XCTAssertEqual(j["eval_agreement"] as? Double, 0.0)
    }

    /// No reference outputs: nothing measured (no eval fields). References that do not fit the
    /// model: bench still runs and says why in `eval_error`.
    func testNoReferencesAndMisfitReferences() throws {
        try agent(["install", try bundle("1.0.0")]).expectOK()
        var j = try bench()
        XCTAssertNil(j["eval_agreement"])
        XCTAssertNil(j["eval_error"])

        let shape = [1, 16]
        let xs = inputs(3, shape: shape)
        let d = evalDir("misfit", shape: shape, xs: xs, ys: xs.map { reference($0, seed: 2) })
        // Only 2 reference samples for 3 inputs.
        write(NPY.encode(Tensor(shape: [2] + shape, values: xs.prefix(2).flatMap { reference($0, seed: 2) })), d + "/outputs/y.npy")
        try agent(["install", try bundle("2.0.0", evalDirectory: d)]).expectOK()
        j = try bench()
        XCTAssertNil(j["eval_agreement"])
        XCTAssertTrue((j["eval_error"] as? String ?? "").contains("sample"), "\(j)")
    }
}

extension AgentTestCase.Result {
    func expectOK(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, 0, err, file: file, line: line)
    }
}

import Foundation
import XCTest

/// `perch optimize` as a user runs it: files written, report contents, exit codes, messages.
final class OptimizeCLITests: XCTestCase {
    static let repoRoot = PerchCLI.repoRoot

    var work: URL!

    override func setUpWithError() throws {
        work = try PerchCLI.temporaryDirectory("perch-optimize-cli")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    func perch(_ args: String...) throws -> PerchCLI.Result { try PerchCLI.run(args) }

    func testOptimizeTinyCNNWritesModelAndReport() throws {
        let model = work.appendingPathComponent("tiny.perchm").path
        let report = work.appendingPathComponent("report.json").path
        let r = try perch("optimize", "examples/tiny-cnn.onnx", "--profile", "rpi5", "--calibration", "examples/tiny-cnn-input.npy",
                          "--method", "entropy", "-o", model, "--report", report)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("optimized tiny-cnn for rpi5"), r.stdout)
        XCTAssertTrue(r.stdout.contains("batchnorm-folding ×4"), r.stdout)
        // Not a terminal: plain progress lines, no carriage returns.
        XCTAssertTrue(r.stderr.contains("calibrate: 1/1"), r.stderr)
        XCTAssertFalse(r.stderr.contains("\r"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        XCTAssertEqual(json["method"] as? String, "entropy")
        XCTAssertEqual((json["layers"] as? [[String: Any]])?.count, 8)
        XCTAssertNotNil((json["memory"] as? [String: Any])?["peak_bytes"])
        XCTAssertNotNil((json["step_seconds"] as? [String: Any])?["calibrate"])
        // The written model runs.
        let run = try perch("run", model, "--input", "image=examples/tiny-cnn-input.npy", "--output-dir", work.path)
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    func testTooLittleMemoryExits2WithNumbers() throws {
        let profile = work.appendingPathComponent("small.yaml").path
        try "name: small\ncpu:\n  isa: aarch64\n  features: [neon]\nmemory:\n  ram_mb: 1\n  model_share: 0.05\n".write(toFile: profile, atomically: true, encoding: .utf8)
        let r = try perch("optimize", "examples/tiny-cnn.onnx", "--profile", profile, "-o", work.appendingPathComponent("x.perchm").path)
        XCTAssertEqual(r.status, 2, r.stderr)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("perch: error: model needs "), last)
        XCTAssertTrue(last.contains("allows 0.05 MiB (ram_mb 1 × model_share 0.05): over by"), last)
        XCTAssertTrue(last.contains("— use a device with memory.ram_mb ≥ 2"), last)
    }

    func testBadMethodExits2() throws {
        let r = try perch("optimize", "examples/tiny-cnn.onnx", "--profile", "rpi4", "--method", "magic", "-o", work.appendingPathComponent("x.perchm").path)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "perch: error: unknown --method 'magic' — use minmax, percentile, entropy or mse\n")
    }
}

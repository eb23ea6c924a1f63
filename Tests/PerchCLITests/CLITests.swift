import Foundation
import XCTest

/// Runs the built `perch` binary as a user would and checks exit codes, messages and files.
final class CLITests: XCTestCase {
    static let repoRoot = PerchCLI.repoRoot

    var work: URL!

    override func setUpWithError() throws {
        work = try PerchCLI.temporaryDirectory("perch-cli")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    typealias Result = PerchCLI.Result

    func perch(_ args: String...) throws -> Result { try PerchCLI.run(args) }

    func perch(_ args: [String]) throws -> Result { try PerchCLI.run(args) }

    func assertBadInput(_ r: Result, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("perch: error: "), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(mentions), "should mention \(mentions): \(r.stderr)", file: file, line: line)
    }

    func example(_ name: String) -> String { Self.repoRoot.appendingPathComponent("examples/" + name).path }

    func testImportRunMatchesONNXRuntime() throws {
        let model = work.appendingPathComponent("m.perchm").path
        let imp = try perch("import", example("tiny-cnn.onnx"), "-o", model)
        XCTAssertEqual(imp.status, 0, imp.stderr)
        let outDir = work.appendingPathComponent("out").path
        let run = try perch("run", model, "--input", "image=" + example("tiny-cnn-input.npy"), "--output-dir", outDir)
        XCTAssertEqual(run.status, 0, run.stderr)
        let y = try npyFloats(outDir + "/probabilities.npy")
        let ref = try npyFloats(example("tiny-cnn-expected-ort.npy"))
        XCTAssertEqual(y.count, 10)
        for (a, e) in zip(y, ref) { XCTAssertEqual(a, e, accuracy: 1e-5 + 1e-4 * abs(e)) }
    }

    /// The hidden GEMM micro-benchmark times both kernels (bench/run.py reports them against peak).
    func testBenchGemmReportsFP32AndInt8() throws {
        let r = try perch("bench-gemm", "--m", "30", "--n", "40", "--k", "70", "--runs", "2", "--json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        let fp32 = try XCTUnwrap(json["fp32"] as? [String: Any]), int8 = try XCTUnwrap(json["int8"] as? [String: Any], r.stdout)
        XCTAssertGreaterThan(fp32["gflops"] as? Double ?? 0, 0)
        XCTAssertGreaterThan(int8["gops"] as? Double ?? 0, 0)
        XCTAssertFalse((int8["kernel"] as? String ?? "").isEmpty)
        // The measured 1-core peak the report divides by (register-only FMA chains; in a debug
        // build the C is unoptimized, under 1 GFLOP/s on a loaded AVX2 machine).
        let peak = try XCTUnwrap(json["measured_peak"] as? [String: Any], r.stdout)
        #if arch(x86_64) || arch(arm64)
        XCTAssertGreaterThan(peak["fp32_gflops"] as? Double ?? 0, 0)
        #endif
    }

    func testBenchJSONHasContractFields() throws {
        let r = try perch("bench", example("tiny-cnn.onnx"), "--runs", "5", "--warmup", "1", "--json")
        XCTAssertEqual(r.status, 0, r.stderr)
        guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else { return }
        for key in ["model", "threads", "runs", "warmup", "latency_ms", "init_ms", "peak_memory_bytes", "arena_bytes", "weights_bytes", "isa", "engine_version"] {
            XCTAssertNotNil(json[key], key)
        }
        guard let latency = json["latency_ms"] as? [String: Double] else { return XCTFail("latency_ms") }
        for key in ["min", "p50", "p90", "p99", "mean", "std"] { XCTAssertNotNil(latency[key], key) }
        XCTAssertLessThanOrEqual(latency["min"] ?? 1, latency["p50"] ?? 0)
        XCTAssertLessThanOrEqual(latency["p50"] ?? 1, latency["p99"] ?? 0)
        XCTAssertEqual(json["runs"] as? Int, 5)
        XCTAssertGreaterThan(json["arena_bytes"] as? Int ?? 0, 0)
    }

    func testBenchProfileCoversEveryLayer() throws {
        let r = try perch("bench", example("tiny-cnn.onnx"), "--runs", "4", "--warmup", "1", "--profile", "--json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        let profile = try XCTUnwrap(json["profile"] as? [String: Any], r.stdout)
        let layers = try XCTUnwrap(profile["layers"] as? [[String: Any]])
        let byOp = try XCTUnwrap(profile["by_op"] as? [[String: Any]])
        XCTAssertFalse(layers.isEmpty)
        // The per-op sums partition the layers: counts add up, and times add up to the total.
        XCTAssertEqual(byOp.reduce(0) { $0 + ($1["layers"] as? Int ?? 0) }, layers.count)
        let total = try XCTUnwrap(profile["total_ms"] as? Double)
        XCTAssertEqual(byOp.reduce(0) { $0 + ($1["ms"] as? Double ?? 0) }, total, accuracy: 1e-6 + total * 1e-4)  // JSON keeps ~6 digits
        XCTAssertEqual(Set(layers.compactMap { $0["op"] as? String }), Set(byOp.compactMap { $0["op"] as? String }))
        XCTAssertTrue(layers.contains { ($0["op"] as? String) == "Conv" }, r.stdout)
        // Each layer's fastest run ≤ its median ≤ its slowest, and the mean lies within them.
        for layer in layers {
            let lo = try XCTUnwrap(layer["min_ms"] as? Double), mid = try XCTUnwrap(layer["p50_ms"] as? Double)
            let mean = try XCTUnwrap(layer["ms"] as? Double)
            XCTAssertLessThanOrEqual(lo, mid * (1 + 1e-5), "\(layer)")
            XCTAssertLessThanOrEqual(lo, mean * (1 + 1e-5), "\(layer)")
        }
        let text = try perch("bench", example("tiny-cnn.onnx"), "--runs", "2", "--warmup", "0", "--profile")
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("slowest layers:"), text.stdout)
    }

    func testTruncatedModel() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: example("tiny-cnn.onnx")))
        let path = work.appendingPathComponent("truncated.onnx").path
        FileManager.default.createFile(atPath: path, contents: data.prefix(data.count / 2))
        assertBadInput(try perch("run", path, "--input", example("tiny-cnn-input.npy"), "--output-dir", work.path), mentions: "truncated.onnx")
    }

    func testRandomBytes() throws {
        let path = work.appendingPathComponent("random.onnx").path
        var rng = SystemRandomNumberGenerator()
        FileManager.default.createFile(atPath: path, contents: Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        assertBadInput(try perch("import", path, "-o", work.appendingPathComponent("x.perchm").path), mentions: "random.onnx")
    }

    func testUnknownOperator() throws {
        let path = work.appendingPathComponent("unknown-op.onnx").path
        try writeModel(path, op: "NoSuchOp", opset: 17)
        let r = try perch("import", path, "-o", work.appendingPathComponent("x.perchm").path)
        assertBadInput(r, mentions: "NoSuchOp")
        XCTAssertTrue(r.stderr.contains("unknown-op.onnx"))
    }

    func testOpsetOutOfRange() throws {
        let path = work.appendingPathComponent("future.onnx").path
        try writeModel(path, op: "Relu", opset: 99)
        assertBadInput(try perch("import", path, "-o", work.appendingPathComponent("x.perchm").path), mentions: "opset 99")
    }

    func testInputOfWrongShapeAndDtype() throws {
        let wrongShape = work.appendingPathComponent("wrong-shape.npy").path
        try writeNPY(wrongShape, descr: "<f4", shape: [1, 3, 16, 16], bytes: 4 * 3 * 16 * 16)
        assertBadInput(try perch("run", example("tiny-cnn.onnx"), "--input", "image=" + wrongShape, "--output-dir", work.path), mentions: "wrong-shape.npy")
        let wrongType = work.appendingPathComponent("wrong-type.npy").path
        try writeNPY(wrongType, descr: "<i8", shape: [1, 3, 32, 32], bytes: 8 * 3 * 32 * 32)
        let r = try perch("run", example("tiny-cnn.onnx"), "--input", "image=" + wrongType, "--output-dir", work.path)
        assertBadInput(r, mentions: "wrong-type.npy")
        XCTAssertTrue(r.stderr.contains("int64"), r.stderr)
    }

    func testHelpExitsZeroForRootAndCommandGroups() throws {
        for args in [["--help"], ["profile"], ["keys", "--help"], ["help", "deploy"]] {
            let r = try perch(args)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE:"), "\(args): \(r.stdout)")
            XCTAssertTrue(r.stderr.isEmpty, "\(args): \(r.stderr)")
        }
    }

    func testMissingFileAndBadFlagAndJSONError() throws {
        assertBadInput(try perch("run", "/nonexistent/model.onnx", "--output-dir", work.path), mentions: "/nonexistent/model.onnx")
        XCTAssertEqual(try perch("bench", example("tiny-cnn.onnx"), "--runs", "zero").status, 2)
        let r = try perch("bench", "/nonexistent.onnx", "--json")
        XCTAssertEqual(r.status, 2)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: Any]]
        XCTAssertEqual(json?["error"]?["code"] as? Int, 2)
    }

    // MARK: helpers

    func writeModel(_ path: String, op: String, opset: Int) throws {
        // A one-node model, written with a Python-free minimal protobuf encoder.
        func varint(_ v: Int) -> [UInt8] {
            var x = UInt64(v), out = [UInt8]()
            while x >= 0x80 { out.append(UInt8(x & 0x7F) | 0x80); x >>= 7 }
            return out + [UInt8(x)]
        }
        func field(_ n: Int, _ payload: [UInt8]) -> [UInt8] { varint(n << 3 | 2) + varint(payload.count) + payload }
        func str(_ n: Int, _ s: String) -> [UInt8] { field(n, Array(s.utf8)) }
        func intField(_ n: Int, _ v: Int) -> [UInt8] { varint(n << 3) + varint(v) }
        let dim = field(1, intField(1, 4))  // Dimension{dim_value: 4}
        let tensorType = field(1, intField(1, 1) + field(2, dim))  // TypeProto.tensor_type{elem_type, shape}
        func valueInfo(_ name: String) -> [UInt8] { str(1, name) + field(2, tensorType) }
        let node = str(1, "x") + str(2, "y") + str(3, "n0") + str(4, op)
        let graph = field(1, node) + str(2, "g") + field(11, valueInfo("x")) + field(12, valueInfo("y"))
        let model = intField(1, 8) + field(7, graph) + field(8, intField(2, opset))
        FileManager.default.createFile(atPath: path, contents: Data(model))
    }

    func writeNPY(_ path: String, descr: String, shape: [Int], bytes: Int) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", ")),), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(Data(header.utf8))
        data.append(Data(count: bytes))
        FileManager.default.createFile(atPath: path, contents: data)
    }

    func npyFloats(_ path: String) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let body = data.dropFirst(10 + headerLength)
        return body.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}

import Crypto
import Foundation
import PerchBundle
import PerchGraph
import XCTest

/// Runs the built `perch-agent` binary as a device would (a subprocess), with its own state dir.
class AgentTestCase: XCTestCase {
    struct Result {
        var status: Int32
        var killed: Bool
        var out: String
        var err: String

        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] }
    }

    /// Beside the test bundle (any scratch path), else `.build/debug`, else $PERCH_AGENT_BIN.
    static let agentBinary: String = {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let beside = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("perch-agent").path
            if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let local = root.appendingPathComponent(".build/debug/perch-agent").path
        if FileManager.default.isExecutableFile(atPath: local) { return local }
        return ProcessInfo.processInfo.environment["PERCH_AGENT_BIN"] ?? local
    }()

    var dir = ""
    var state = ""
    let key = Curve25519.Signing.PrivateKey()

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("perch-agent-" + UUID().uuidString).path
        state = dir + "/state"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pub = dir + "/signer.pub"
        write(Array(("perch-ed25519 " + key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8), pub)
        let r = try agent(["trust", pub])
        XCTAssertEqual(r.status, 0, r.err)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func write(_ bytes: [UInt8], _ path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    /// Starts the agent; the caller waits (or kills).
    func start(_ args: [String], env: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.agentBinary)
        p.arguments = ["--state", state] + args
        var e = ProcessInfo.processInfo.environment
        e["PERCH_AGENT_CRASH_AT"] = nil
        e["PERCH_AGENT_PAUSE_AT"] = nil
        e["PERCH_AGENT_FAKE_FREE_BYTES"] = nil
        for (k, v) in env { e[k] = v }
        p.environment = e
        let o = Pipe(), r = Pipe()
        p.standardOutput = o
        p.standardError = r
        try p.run()
        return (p, o, r)
    }

    func finish(_ run: (Process, Pipe, Pipe)) -> Result {
        let od = run.1.fileHandleForReading.readDataToEndOfFile()
        let rd = run.2.fileHandleForReading.readDataToEndOfFile()
        run.0.waitUntilExit()
        return Result(status: run.0.terminationStatus, killed: run.0.terminationReason == .uncaughtSignal,
                      out: String(decoding: od, as: UTF8.self), err: String(decoding: rd, as: UTF8.self))
    }

    func agent(_ args: [String], env: [String: String] = [:]) throws -> Result {
        finish(try start(args, env: env))
    }

    static var hostISA: String {
        #if arch(arm64)
        return "aarch64"
        #else
        return "x86_64"
        #endif
    }

    /// The weights of `model(seed:elements:)`.
    static func weights(seed: Float, elements: Int) -> [Float] {
        (0..<elements).map { seed + Float($0 % 7) * 0.25 - 0.5 }
    }

    /// y = relu(x + w) over `elements` floats (shape `[1, elements]`, or `shape`); `seed` changes
    /// w so versions differ in content.
    func model(seed: Float, elements: Int, shape: [Int]? = nil) -> [UInt8] {
        let w = Self.weights(seed: seed, elements: elements)
        let shape = shape ?? [1, elements]
        let graph = Graph(
            name: "tiny",
            nodes: [
                Node(name: "add", op: .add, inputs: ["x", "w"], outputs: ["s"]),
                Node(name: "relu", op: .relu, inputs: ["s"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: shape))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: shape))],
            initializers: ["w": Tensor(shape: shape, values: w)])
        return PerchModelFile.encode(graph)
    }

    /// Packs a bundle file and returns its path. `seed` defaults to the version's major number;
    /// `shape` (default `[1, elements]`) and `evalDirectory` (inputs/, outputs/) as in `perch pack`.
    @discardableResult
    func bundle(_ version: String, seed: Float? = nil, elements: Int = 16, shape: [Int]? = nil, name: String = "tiny",
                evalDirectory: String? = nil, signedBy: Curve25519.Signing.PrivateKey?? = .none) throws -> String {
        let s = seed ?? Float(version.split(separator: ".").first.flatMap { Int($0) } ?? 1)
        let modelPath = dir + "/" + name + "-" + version + "-" + String(s) + ".perchm"
        write(model(seed: s, elements: elements, shape: shape), modelPath)
        let signer: Curve25519.Signing.PrivateKey? = signedBy ?? key
        let bytes = try BundlePacker.pack(.init(
            modelPath: modelPath, modelName: name, modelVersion: version, profile: "test-device", targetISA: Self.hostISA,
            engineVersion: "0.1.0", evalDirectory: evalDirectory, signingKey: signer, created: "2026-01-01T00:00:00Z"))
        let path = dir + "/" + name + "-" + version + "-" + String(s) + (signer == nil ? "-unsigned" : "") + ".perch"
        write(bytes, path)
        return path
    }

    /// Rebuilds a bundle with `transform` applied to its (name, bytes) entries; regular files only.
    func tampered(_ path: String, _ transform: (inout [ArchiveEntry]) -> Void) throws -> String {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var entries = try BundleArchive.readEntries(original).map { ArchiveEntry($0.name, .file($0.bytes)) }
        transform(&entries)
        let out = dir + "/tampered-" + UUID().uuidString + ".perch"
        write(try BundleArchive.write(entries), out)
        return out
    }

    func activeVersion(file: StaticString = #filePath, line: UInt = #line) -> String? {
        guard let r = try? agent(["status"]), r.status == 0, let j = r.json else {
            XCTFail("status failed", file: file, line: line)
            return nil
        }
        return (j["active"] as? [String: Any])?["version"] as? String
    }

    /// `status` shows `version` active and `bench` runs it.
    func assertActiveAndRuns(_ version: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(activeVersion(file: file, line: line), version, "active version", file: file, line: line)
        guard let b = try? agent(["bench", "--runs", "3", "--warmup", "1"]) else { return XCTFail("bench did not start", file: file, line: line) }
        XCTAssertEqual(b.status, 0, "bench: " + b.err, file: file, line: line)
        XCTAssertEqual(b.json?["version"] as? String, version, "bench ran the active version", file: file, line: line)
    }

    /// A refusal: the exit code, one stderr line `perch-agent: error: …` naming the problem, JSON error on stdout.
    func assertRefused(_ r: Result, code: Int32 = 4, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, code, r.err, file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "one line: " + r.err, file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("perch-agent: error: "), r.err, file: file, line: line)
        XCTAssertTrue(r.err.contains(mentions), "should mention '" + mentions + "': " + r.err, file: file, line: line)
        let err = r.json?["error"] as? [String: Any]
        XCTAssertEqual(err?["code"] as? Int, Int(code), r.out, file: file, line: line)
    }

    func stagingIsEmpty() -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: state + "/staging")) ?? []).isEmpty
    }
}

import Foundation
import XCTest

/// `perch keys generate`, `perch pack`, `perch verify` as a user runs them.
final class CLIBundleTests: XCTestCase {
    /// The built `perch` next to the test bundle (any scratch path), else `.build/debug`.
    static var perchBinary: String {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let beside = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("perch").path
            if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/perch").path
    }

    func perch(_ args: [String], env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.perchBinary)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let o = Pipe(), r = Pipe()
        p.standardOutput = o
        p.standardError = r
        try p.run()
        let od = o.fileHandleForReading.readDataToEndOfFile()
        let rd = r.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: rd, as: UTF8.self))
    }

    func testKeysPackVerify() throws {
        let dir = Fixtures.tempDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(try perch(["keys", "generate", dir + "/k"]).status, 0)
        XCTAssertEqual(try perch(["keys", "generate", dir + "/other"]).status, 0)
        let model = dir + "/tiny.perchm"
        Fixtures.write(Fixtures.model(seed: 1), model)
        let profile = "x86-avx2-minipc"
        let pack = try perch(["pack", model, "--profile", profile, "--sign-key", dir + "/k/perch-signing.key", "-o", dir + "/b.perch", "--model-version", "2.1.0"])
        XCTAssertEqual(pack.status, 0, pack.err)
        let pack2 = try perch(["pack", model, "--profile", profile, "--sign-key", dir + "/k/perch-signing.key", "-o", dir + "/b2.perch", "--model-version", "2.1.0"])
        XCTAssertEqual(pack2.status, 0, pack2.err)
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/b.perch"), FileManager.default.contents(atPath: dir + "/b2.perch"), "packing twice gives identical bytes")

        let ok = try perch(["verify", dir + "/b.perch", "--trusted-key", dir + "/k/perch-signing.pub", "--json"])
        XCTAssertEqual(ok.status, 0, ok.err)
        let json = try JSONSerialization.jsonObject(with: Data(ok.out.utf8)) as? [String: Any]
        XCTAssertEqual(json?["version"] as? String, "2.1.0")
        XCTAssertEqual(json?["profile"] as? String, "x86-avx2-minipc")
        XCTAssertEqual(json?["target_isa"] as? String, "x86_64")

        let bad = try perch(["verify", dir + "/b.perch", "--trusted-key", dir + "/other/perch-signing.pub"])
        XCTAssertEqual(bad.status, 4)
        XCTAssertTrue(bad.err.hasPrefix("perch: error: signature check failed"), bad.err)
        XCTAssertEqual(bad.err.split(separator: "\n").count, 1)

        var bytes = [UInt8](FileManager.default.contents(atPath: dir + "/b.perch")!)
        bytes = Array(bytes[0..<(bytes.count - 40)])
        Fixtures.write(bytes, dir + "/cut.perch")
        let cut = try perch(["verify", dir + "/cut.perch", "--trusted-key", dir + "/k/perch-signing.pub", "--json"])
        XCTAssertEqual(cut.status, 4, cut.err)
        XCTAssertTrue(cut.out.contains("\"code\": 4"), cut.out)

        let missingKey = try perch(["pack", model, "--profile", profile, "-o", dir + "/c.perch"])
        XCTAssertEqual(missingKey.status, 2)
        Fixtures.write(Array("not a model".utf8), dir + "/junk.perchm")
        let notModel = try perch(["pack", dir + "/junk.perchm", "--profile", profile, "--unsigned", "-o", dir + "/c.perch"])
        XCTAssertEqual(notModel.status, 2, notModel.err)
        XCTAssertTrue(notModel.err.contains("not a valid .perchm"), notModel.err)
        let noProfile = try perch(["pack", model, "--profile", "no-such-board", "--unsigned", "-o", dir + "/c.perch"])
        XCTAssertEqual(noProfile.status, 2, noProfile.err)
    }
}

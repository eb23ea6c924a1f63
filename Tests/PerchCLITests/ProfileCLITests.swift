import Foundation
import XCTest

/// `perch profile validate` / `show` as a user runs them: output, exit codes, message format.
final class ProfileCLITests: XCTestCase {
    static let repoRoot = PerchCLI.repoRoot

    var work: URL!

    override func setUpWithError() throws {
        work = try PerchCLI.temporaryDirectory("perch-profile-cli")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    func perch(_ args: String...) throws -> PerchCLI.Result { try PerchCLI.run(args) }

    func testValidateBundledProfiles() throws {
        let r = try perch("profile", "validate", "device-profiles/rpi4.yaml", "device-profiles/raspberry-pi-base.yaml", "coral-dev-board")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
            ok device-profiles/rpi4.yaml (rpi4)
            ok device-profiles/raspberry-pi-base.yaml (raspberry-pi-base, abstract base)
            ok \(Self.repoRoot.path)/device-profiles/coral-dev-board.yaml (coral-dev-board)

            """)
        XCTAssertEqual(r.stderr, "")
    }

    func testValidateReportsEachProblemThenOneErrorLine() throws {
        let bad = work.appendingPathComponent("bad.yaml").path
        try "name: bad\ncpu:\n  isa: armv7\n  features: [dotprod]\nmemory:\n  ram_mb: 0\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try perch("profile", "validate", bad, "device-profiles/rpi5.yaml")
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "ok device-profiles/rpi5.yaml (rpi5)\n")
        XCTAssertEqual(r.stderr.split(separator: "\n").map(String.init), [
            bad + ":4:14: cpu feature 'dotprod' does not exist on armv7 (armv7 features: neon, vfpv4)",
            bad + ":6:11: memory.ram_mb must be greater than 0, found 0",
            "perch: error: 2 problems in 1 of 2 profile file(s) — fix the lines above; device-profiles/README.md describes the schema",
        ])
    }

    func testShowJSON() throws {
        let r = try perch("profile", "show", "rpi5", "--json")
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["name"] as? String, "rpi5")
        let cpu = try XCTUnwrap(object["cpu"] as? [String: Any])
        XCTAssertEqual(cpu["features"] as? [String], ["neon", "dotprod", "fp16"])
        XCTAssertEqual(cpu["cores"] as? Int, 4, "inherited from raspberry-pi-base")
        XCTAssertEqual((object["memory"] as? [String: Any])?["ram_mb"] as? Int, 8192)
    }

    func testShowHostAndUnknownName() throws {
        let host = try perch("profile", "show", "host")
        XCTAssertEqual(host.status, 0, host.stderr)
        XCTAssertTrue(host.stdout.hasPrefix("name: host\n"), host.stdout)
        XCTAssertTrue(host.stdout.contains("# memory budget for one model: "), host.stdout)

        let r = try perch("profile", "show", "rpi6", "--json")
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("perch: error: no profile named 'rpi6'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("did you mean 'rpi4'?"), r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("{\"error\": {\"code\": 2, "), r.stdout)
    }
}

import Foundation
import XCTest

/// `perch profile probe` against a real sshd test device: the profile it writes validates and
/// names this machine's ISA, core count and RAM (the test devices run on this machine).
extension DeployEndToEndTests {
    func testProfileProbeWritesAValidProfile() throws {
        let file = Self.state + "/probed.yaml"
        let r = Self.perch(["profile", "probe"] + inv + ["--device", "dev1", "-o", file])
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.contains("name: probed-dev1"), text)
        let validate = Self.perch(["profile", "validate", file])
        XCTAssertEqual(validate.status, 0, validate.stdout + validate.stderr)
        let probed = Self.perch(["profile", "show", file, "--json"]).json
        let host = Self.perch(["profile", "show", "host", "--json"]).json
        let cpu = try XCTUnwrap(probed["cpu"] as? [String: Any]), hostCPU = try XCTUnwrap(host["cpu"] as? [String: Any])
        XCTAssertEqual(cpu["isa"] as? String, hostCPU["isa"] as? String)
        XCTAssertEqual(cpu["cores"] as? Int, hostCPU["cores"] as? Int)
        XCTAssertEqual(cpu["features"] as? [String], hostCPU["features"] as? [String])
        let ram = (probed["memory"] as? [String: Any])?["ram_mb"] as? Int
        XCTAssertEqual(ram, (host["memory"] as? [String: Any])?["ram_mb"] as? Int)
    }

    func testProfileProbeOfAnUnreachableHostIsExit3() {
        let r = Self.perch(["profile", "probe", "--host", "root@127.0.0.1:1", "--connect-timeout", "2"])
        XCTAssertEqual(r.status, 3, r.stderr)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("perch: error: cannot reach 127.0.0.1 port 1"), r.stderr)
    }
}

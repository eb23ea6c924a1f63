import Foundation
import XCTest

/// `perch testfleet up --emulate aarch64` and `perch deploy` to that device end to end: real sshd,
/// the cross-built aarch64 agent (perch agent build, cached) run by qemu-aarch64-static as the
/// device's agent launcher. The device starts without an agent, so deploy must pick the aarch64
/// binary by the profile's ISA, upload it, check it, and then install and bench the model.
final class EmulatedDeviceTests: XCTestCase {
    nonisolated(unsafe) static var state = ""
    nonisolated(unsafe) static var up: DeployEndToEndTests.Run?

    static var perch: String { DeployEndToEndTests.perch }
    /// Runs perch with this fleet's config home (signing key) and without an ssh-agent.
    static func perch(_ args: [String]) -> DeployEndToEndTests.Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: perch)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e["XDG_CONFIG_HOME"] = state + "/config"
        e.removeValue(forKey: "SSH_AUTH_SOCK")
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let t0 = Date()
        try! p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return .init(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                     stderr: String(decoding: r, as: UTF8.self), seconds: Date().timeIntervalSince(t0))
    }

    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-aarch64-static")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/aarch64-linux-gnu-gcc")
    }

    override class func setUp() {
        guard available else { return }
        state = NSTemporaryDirectory() + "perch-emu-\(getpid())"
        up = perch(["testfleet", "up", "--emulate", "aarch64", "--no-agent", "--state", state, "--json"])
    }

    override class func tearDown() {
        guard !state.isEmpty else { return }
        _ = perch(["testfleet", "down", "--state", state])
        try? FileManager.default.removeItem(atPath: state)
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(Self.available, "needs openssh-server, qemu-user-static and gcc-aarch64-linux-gnu (scripts/bootstrap.sh)")
        XCTAssertEqual(Self.up?.status, 0, Self.up?.stderr ?? "")
    }

    var inv: [String] { ["--inventory", Self.state + "/fleet.yaml", "--device", "dev1"] }

    func sha256(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return String(text.split(separator: " ")[0])
    }

    func testDeployPicksTheAarch64AgentAndRunsItUnderQemu() throws {
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(Self.up!.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.first?["isa"] as? String, "aarch64")
        let device = Self.state + "/devices/dev1/home"
        XCTAssertFalse(FileManager.default.fileExists(atPath: device + "/bin/perch-agent"), "started with --no-agent")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: device + "/bin/perch-agent-launcher"))

        let first = Self.perch(["deploy", DeployEndToEndTests.model] + inv + ["--runs", "5", "--warmup", "1", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let j = first.json
        XCTAssertEqual(j["isa"] as? String, "aarch64")
        XCTAssertTrue((j["isa_features"] as? String ?? "").hasPrefix("aarch64+neon"), "\(j)")
        XCTAssertEqual(j["agent_upgraded"] as? Bool, true)
        XCTAssertEqual(j["installed"] as? Bool, true)
        XCTAssertEqual(j["profile"] as? String, "rpi4")

        // What the device got is the cross-built agent: a static aarch64 ELF with the cache's hash.
        let build = Self.perch(["agent", "build", "--isa", "aarch64", "--json"])
        XCTAssertEqual(build.status, 0, build.stderr)
        XCTAssertEqual(build.json["cached"] as? Bool, true, "the deploy built it; asking again must hit the cache")
        let remote = try sha256(device + "/bin/perch-agent")
        XCTAssertEqual(remote, build.json["sha256"] as? String)
        let head = try XCTUnwrap(FileManager.default.contents(atPath: device + "/bin/perch-agent")).prefix(20)
        XCTAssertEqual(Array(head.prefix(4)), [0x7f, 0x45, 0x4c, 0x46])
        XCTAssertEqual(UInt16(head[18]) | UInt16(head[19]) << 8, 183, "e_machine must be aarch64")
        XCTAssertFalse(FileManager.default.fileExists(atPath: device + "/bin/perch-agent.new"))

        // Again: the agent is current, the bundle is there: nothing is uploaded.
        let second = Self.perch(["deploy", DeployEndToEndTests.model] + inv + ["--runs", "3", "--warmup", "1", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(second.json["agent_upgraded"] as? Bool, false)
        XCTAssertEqual(second.json["upload_skipped"] as? Bool, true)

        // A profile that says x86_64 for this device contradicts what its agent reports.
        let wrong = Self.perch(["deploy", DeployEndToEndTests.model] + inv + ["--profile", "x86-avx2-minipc", "--runs", "1"])
        XCTAssertEqual(wrong.status, 2, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("reports ISA aarch64"), wrong.stderr)
    }
}

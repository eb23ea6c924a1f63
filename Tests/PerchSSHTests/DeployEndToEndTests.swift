import Foundation
import PerchFleet
import XCTest

/// End to end over real OpenSSH sshd devices from `perch testfleet up` (network namespaces as
/// root, else loopback ports): deploy, redeploy, host key and client key refusals, unreachable
/// hosts, and an upload cut by killing the sshd session process, then resumed.
final class DeployEndToEndTests: XCTestCase {
    nonisolated(unsafe) static var state = ""
    nonisolated(unsafe) static var upOK = false

    static var binDir: URL {
        let b = Bundle(for: DeployEndToEndTests.self).bundleURL
        for dir in [b, b.deletingLastPathComponent(), URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        where FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("perch").path) { return dir }
        return URL(fileURLWithPath: repo + "/.build/debug")
    }
    static var perch: String { binDir.appendingPathComponent("perch").path }
    static var repo: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
    static var model: String { repo + "/examples/tiny-cnn.onnx" }

    struct Run { var status: Int32; var stdout: String; var stderr: String; var seconds: Double
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:] }
    }

    @discardableResult
    static func perch(_ args: [String], env: [String: String] = [:], wait: Bool = true, started: ((Process) -> Void)? = nil) -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: perch)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e["XDG_CONFIG_HOME"] = state + "/config"
        e.removeValue(forKey: "SSH_AUTH_SOCK")
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let t0 = Date()
        try! p.run()
        started?(p)
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: r, as: UTF8.self),
                   seconds: Date().timeIntervalSince(t0))
    }

    override class func setUp() {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else { return }
        state = NSTemporaryDirectory() + "perch-e2e-\(getpid())"
        let r = perch(["testfleet", "up", "--devices", "3", "--state", state, "--json"])
        upOK = r.status == 0
        if !upOK { print("testfleet up failed: \(r.stderr)") }
    }

    override class func tearDown() {
        guard !state.isEmpty else { return }
        perch(["testfleet", "down", "--state", state])
        try? FileManager.default.removeItem(atPath: state)
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"), "OpenSSH sshd is not installed (apt-get install openssh-server)")
        XCTAssertTrue(Self.upOK, "perch testfleet up failed")
    }

    var inv: [String] { ["--inventory", Self.state + "/fleet.yaml"] }

    func device(_ name: String) -> (host: String, port: Int) {
        let d = try! Inventory.load(Self.state + "/fleet.yaml").device(named: name)
        return (d.host, d.port)
    }

    func testDeployThenRedeploySendsNothing() throws {
        let first = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--runs", "5", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let j1 = first.json
        XCTAssertEqual(j1["installed"] as? Bool, true)
        XCTAssertEqual(j1["model"] as? String, "tiny-cnn")
        XCTAssertEqual(j1["uploaded_bytes"] as? Int, j1["bundle_bytes"] as? Int)
        XCTAssertGreaterThan((j1["latency_ms"] as? [String: Any])?["p50"] as? Double ?? 0, 0)
        let second = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--runs", "5", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        let j2 = second.json
        XCTAssertEqual(j2["uploaded_bytes"] as? Int, 0)
        XCTAssertEqual(j2["upload_skipped"] as? Bool, true)
        XCTAssertEqual(j2["installed"] as? Bool, false)
        let deploySeconds = j2["deploy_seconds"] as? Double ?? 99
        print("redeploy: deploy phase \(deploySeconds) s (connect, probe, nothing sent), whole command \(second.seconds) s incl. bench")
        XCTAssertLessThan(deploySeconds, 1.0)
        // Exactly one version on the device.
        let versions = try FileManager.default.contentsOfDirectory(atPath: Self.state + "/devices/dev1/home/state/versions")
        XCTAssertEqual(versions.filter { !$0.hasPrefix(".") }, ["tiny-cnn-1.0.0"])
    }

    /// `perch upload` alone: a fresh upload creates the directory and renames into place with the
    /// mode; the same file again sends nothing; a changed file of the same size, then of another
    /// size, replaces the old one.
    func testUploadSkipsUnchangedAndReplacesChanged() throws {
        let dir = Self.state + "/up-src"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let remote = Self.state + "/devices/dev1/home/up/nested/file.bin"
        func upload(_ content: [UInt8]) throws -> [String: Any] {
            let local = dir + "/file.bin"
            try Data(content).write(to: URL(fileURLWithPath: local))
            let r = Self.perch(["upload", local] + inv + ["--device", "dev1", "--remote", remote, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: remote)), Data(content))
            XCTAssertFalse(FileManager.default.fileExists(atPath: remote + ".part"))
            let perms = try FileManager.default.attributesOfItem(atPath: remote)[.posixPermissions] as? Int
            XCTAssertEqual(perms, 0o644)
            return r.json
        }
        let a = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let first = try upload(a)
        XCTAssertEqual(first["bytes_sent"] as? Int, a.count)
        XCTAssertEqual(first["unchanged"] as? Bool, false)
        let again = try upload(a)
        XCTAssertEqual(again["bytes_sent"] as? Int, 0)
        XCTAssertEqual(again["unchanged"] as? Bool, true)
        var b = a
        b[123_456] ^= 0xFF
        let sameSize = try upload(b)
        XCTAssertEqual(sameSize["bytes_sent"] as? Int, b.count)
        XCTAssertEqual(sameSize["unchanged"] as? Bool, false)
        let other = try upload(Array(a.prefix(1000)))
        XCTAssertEqual(other["bytes_sent"] as? Int, 1000)
    }

    func testUnknownAndChangedHostKeysRefused() throws {
        let fp = try hostFingerprint("dev1")
        let empty = Self.state + "/empty_known_hosts"
        FileManager.default.createFile(atPath: empty, contents: Data())
        let r = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--known-hosts", empty])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("not known") && r.stderr.contains(fp), r.stderr)

        // A different key recorded for the host: refused even with --accept-new.
        let (host, port) = device("dev1")
        let other = try String(contentsOfFile: Self.state + "/devices/dev2/ssh_host_ed25519_key.pub", encoding: .utf8)
        let name = port == 22 ? host : "[\(host)]:\(port)"
        let changed = Self.state + "/changed_known_hosts"
        try (name + " " + other.split(separator: " ").prefix(2).joined(separator: " ") + "\n").write(toFile: changed, atomically: true, encoding: .utf8)
        let c = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--known-hosts", changed, "--accept-new"])
        XCTAssertEqual(c.status, 3, c.stderr)
        XCTAssertTrue(c.stderr.contains("HAS CHANGED") && c.stderr.contains(fp), c.stderr)

        // --accept-new records an unknown key, and the next run matches it.
        let fresh = Self.state + "/fresh_known_hosts"
        let a = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--known-hosts", fresh, "--accept-new", "--runs", "2"])
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(try String(contentsOfFile: fresh, encoding: .utf8).contains("ssh-ed25519"))
        let b = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--known-hosts", fresh, "--runs", "2"])
        XCTAssertEqual(b.status, 0, b.stderr)
    }

    func testWrongClientKeyRefused() throws {
        let key = Self.state + "/other_key"
        if !FileManager.default.fileExists(atPath: key) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
            p.arguments = ["-q", "-t", "ed25519", "-N", "", "-f", key]
            try p.run()
            p.waitUntilExit()
        }
        let r = Self.perch(["deploy", Self.model] + inv + ["--device", "dev1", "--identity", key])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("authentication as") && r.stderr.contains(key), r.stderr)
    }

    func testUnreachableFailsWithinTimeout() throws {
        // Refused (nothing listens on port 1): three attempts with backoff, well under 10 s.
        let r = Self.perch(["deploy", Self.model, "--host", "127.0.0.1:1", "--profile", "host", "--known-hosts", Self.state + "/known_hosts"])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot reach 127.0.0.1 port 1"), r.stderr)
        XCTAssertLessThan(r.seconds, 10)

        // A port that accepts but never speaks SSH: the handshake times out, no hang.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) + getsockname(s, $0, &len) } }
        listen(s, 4)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let t = Self.perch(["deploy", Self.model, "--host", "127.0.0.1:\(port)", "--profile", "host", "--connect-timeout", "1", "--attempts", "2",
                            "--known-hosts", Self.state + "/known_hosts"])
        XCTAssertEqual(t.status, 3, t.stderr)
        XCTAssertTrue(t.stderr.contains("no SSH handshake within 1 s"), t.stderr)
        XCTAssertLessThan(t.seconds, 6)
    }

    func testUploadCutByKillingSessionThenResumed() throws {
        let part = Self.state + "/devices/dev2/home/incoming/tiny-cnn-1.0.0.perch.part"
        // Slow upload (test hook), one attempt, and kill the sshd session process mid-way.
        var killed: [Int32] = []
        let cut = Self.perch(["deploy", Self.model] + inv + ["--device", "dev2", "--attempts", "1", "--runs", "2"],
                             env: ["PERCH_SSH_TEST_RATE": "4000"]) { _ in
            for _ in 0..<200 {
                if let a = try? FileManager.default.attributesOfItem(atPath: part), (a[.size] as? Int ?? 0) >= 4096 { break }
                usleep(20_000)
            }
            killed = Self.sessionProcesses()
            for pid in killed { kill(pid, SIGKILL) }
        }
        XCTAssertFalse(killed.isEmpty, "no sshd session process to kill")
        XCTAssertEqual(cut.status, 3, cut.stderr + cut.stdout)
        let partial = (try FileManager.default.attributesOfItem(atPath: part)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(partial, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.state + "/devices/dev2/home/state/active"), "nothing may be installed yet")

        let resumed = Self.perch(["deploy", Self.model] + inv + ["--device", "dev2", "--runs", "2", "--json"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let j = resumed.json
        print("cut after \(partial) bytes; resumed upload sent \(j["uploaded_bytes"] ?? "?") of \(j["bundle_bytes"] ?? "?") bytes")
        XCTAssertEqual(j["resumed_from"] as? Int, partial)
        XCTAssertEqual((j["uploaded_bytes"] as? Int ?? 0) + partial, j["bundle_bytes"] as? Int)
        XCTAssertEqual(j["installed"] as? Bool, true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: part))
        let versions = try FileManager.default.contentsOfDirectory(atPath: Self.state + "/devices/dev2/home/state/versions")
        XCTAssertEqual(versions.filter { !$0.hasPrefix(".") }, ["tiny-cnn-1.0.0"])
    }

    /// 20% of the device's outgoing packets dropped by nftables inside its network namespace
    /// (this kernel has no netem): the deploy still completes.
    func testDeployCompletesWithTwentyPercentPacketLoss() throws {
        let (host, _) = device("dev3")
        let octets = host.split(separator: ".")
        try XCTSkipUnless(octets.count == 4 && octets[0] == "10", "devices are on loopback (not root): no namespace link to degrade")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft"), "nftables is not installed")
        let ns = "perch-tf" + octets[2]
        let rules = Self.state + "/loss.nft"
        try "table inet perch_loss {\n  chain out {\n    type filter hook output priority 0;\n    numgen random mod 100 < 20 counter drop\n  }\n}\n"
            .write(toFile: rules, atomically: true, encoding: .utf8)
        XCTAssertEqual(Self.shell(["ip", "netns", "exec", ns, "nft", "-f", rules]), 0, "nft rule")
        defer { _ = Self.shell(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "perch_loss"]) }
        let r = Self.perch(["deploy", Self.model] + inv + ["--device", "dev3", "--runs", "3", "--json"])
        print("deploy over a link dropping 20% of packets: exit \(r.status) in \(String(format: "%.1f", r.seconds)) s")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.json["installed"] as? Bool, true)
        // The rule's counter shows packets were really dropped.
        let listed = Self.output(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "perch_loss"])
        let dropped = listed.components(separatedBy: "counter packets ").dropFirst().first.flatMap { Int($0.split(separator: " ")[0]) } ?? 0
        print("packets dropped on the device's link: \(dropped)")
        XCTAssertGreaterThan(dropped, 0, listed)
    }

    // MARK: helpers

    static func output(_ args: [String]) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try? p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: d, as: UTF8.self)
    }

    @discardableResult
    static func shell(_ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        try? p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    static func sessionProcesses() -> [Int32] {
        let text = (try? String(contentsOfFile: state + "/testfleet.state", encoding: .utf8)) ?? ""
        let listeners = text.split(separator: "\n").filter { $0.hasPrefix("pid ") }.compactMap { Int32($0.dropFirst(4)) }
        var out: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, let ppid = Int32(fields[1]), listeners.contains(ppid) { out.append(pid) }
        }
        return out
    }

    func hostFingerprint(_ dev: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        p.arguments = ["-l", "-E", "sha256", "-f", Self.state + "/devices/\(dev)/ssh_host_ed25519_key.pub"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(String(decoding: d, as: UTF8.self).split(separator: " ")[1])
    }
}

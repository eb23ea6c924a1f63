import Foundation
import XCTest

/// `perch rollout` against a real test fleet: `perch testfleet up` (OpenSSH sshd per device, in
/// network namespaces as root), the real perch-agent, libssh2. What a device runs is read from
/// the agent's own state on disk afterwards, not from the rollout's report.
///
/// The fleet is mixed: dev1…dev7 are of this machine's ISA, dev8 is an emulated aarch64 device
/// (`--emulate aarch64 --emulated 1`: profile rpi4, the cross-built aarch64 perch-agent from
/// `perch agent build`'s cache — built first if the cache lacks it — run by qemu-aarch64-static).
/// Every version is packed twice (host ISA and aarch64) and rolled out with both bundles. Each
/// bundle carries an eval set whose reference outputs come from ONNX Runtime.
final class RolloutEndToEndTests: XCTestCase {
    var dir = ""
    var perch = ""

    /// mk.py LAYERS MODEL.onnx EVALDIR [wrong]: an MLP, and EVALDIR/inputs/x.npy (4 samples
    /// stacked) with ONNX Runtime's outputs in EVALDIR/outputs/ ("wrong": each sample's top-1
    /// moved to another class, so no sample agrees).
    static let modelScript = """
        import os, sys, numpy as np, onnx, onnxruntime as ort
        from onnx import helper, TensorProto, numpy_helper
        layers, out, evaldir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        wrong = len(sys.argv) > 4 and sys.argv[4] == "wrong"
        rng = np.random.default_rng(0)
        nodes, inits, prev = [], [], "x"
        for i in range(layers):
            inits.append(numpy_helper.from_array((rng.standard_normal((256, 256)) * 0.088).astype(np.float32), f"w{i}"))
            nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
            prev = f"r{i}"
        g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 256])], inits)
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), out)
        xs = np.random.default_rng(1).standard_normal((4, 1, 256)).astype(np.float32)
        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        ys = np.stack([sess.run(None, {"x": x})[0] for x in xs])
        for y in ys:  # top-1 must be clear, or float differences between engines could flip it
            top2 = np.sort(y.ravel())[-2:]
            assert top2[1] - top2[0] > 1e-3 * max(top2[1], 1e-6), top2
        if wrong:
            for y in ys:
                k = int(y.argmax())
                y[0, (k + 1) % 256] = y[0, k] + 1
        os.makedirs(evaldir + "/inputs", exist_ok=True)
        os.makedirs(evaldir + "/outputs", exist_ok=True)
        np.save(evaldir + "/inputs/x.npy", xs)
        np.save(evaldir + f"/outputs/{prev}.npy", ys)
        """

    /// The emulated device.
    static let emulated = "dev8"

    @discardableResult
    func run(_ args: [String], env: [String: String] = [:], expect: Int32? = 0) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0].hasPrefix("/") ? args[0] : "/usr/bin/env")
        p.arguments = args[0].hasPrefix("/") ? Array(args.dropFirst()) : args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = ProcessInfo.processInfo.environment.merging(["CI": "true"].merging(env) { $1 }) { $1 }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o
        p.standardError = e
        try p.run()
        let errData = e.fileHandleForReading.readDataToEndOfFile()
        let outData = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let r = (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
        if let expect { XCTAssertEqual(r.0, expect, "\(args.joined(separator: " "))\n\(r.2)") }
        return r
    }

    override func setUpWithError() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            throw XCTSkip("needs root and OpenSSH sshd for the test fleet")
        }
        // The test bundle runs from the build's products directory, beside perch and perch-agent.
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        perch = exe.deletingLastPathComponent().appendingPathComponent("perch").path
        guard FileManager.default.isExecutableFile(atPath: perch) else { throw XCTSkip("no perch binary at \(perch)") }
        dir = NSTemporaryDirectory() + "perch-rollout-e2e-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // The emulated device is part of the acceptance test: its tools are installed by
        // scripts/bootstrap.sh, so missing ones fail the test rather than skip it.
        for tool in ["/usr/bin/qemu-aarch64-static", "/usr/bin/aarch64-linux-gnu-gcc"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw Missing(what: "\(tool) (the fleet's emulated aarch64 device needs qemu-user-static and gcc-aarch64-linux-gnu: run scripts/bootstrap.sh)")
        }
        try Self.modelScript.write(toFile: dir + "/mk.py", atomically: true, encoding: .utf8)
        // He-scaled weights (0.088 ≈ √(2/256)) keep activations alive through deep ReLU stacks.
        // The slow model does 12× the work: the "regressed" one. The regression gate allows 6×, far
        // from both 1× and 16×, because benches share 2 cores with the other devices of a wave (and
        // with whatever else runs on the machine). Rollouts bench 60 runs: with 20, the p90 of the
        // fast model (~0.2 ms a run) was the 18th sample, and two preempted runs on a loaded CI
        // machine once made a good bundle look 6.6× slower (1.517 vs 0.228 ms) and roll back.
        // The bootstrap's venv (numpy, onnx, onnxruntime) as `make unit` passes it; python3 otherwise.
        let python = ProcessInfo.processInfo.environment["PERCH_PYTHON"] ?? "python3"
        try run([python, "mk.py", "4", "fast.onnx", "eval-fast"])
        try run([python, "mk.py", "48", "slow.onnx", "eval-slow"])
        try run([python, "mk.py", "4", "fast.onnx", "eval-wrong", "wrong"])
        try run([perch, "keys", "generate", "keys"])
        try run([perch, "import", "fast.onnx", "-o", "fast.perchm"])
        try run([perch, "import", "slow.onnx", "-o", "slow.perchm"])
        for (m, v, eval) in [("fast", "1.0.0", "eval-fast"), ("fast", "1.1.0", "eval-fast"), ("slow", "1.2.0", "eval-slow"), ("fast", "1.3.0", "eval-wrong")] {
            for (profile, suffix) in [("host", ""), ("rpi4", "-aarch64")] {
                try run([perch, "pack", m + ".perchm", "--profile", profile, "--sign-key", "keys/perch-signing.key", "--eval-dir", eval,
                         "--name", "mlp", "--model-version", v, "-o", "mlp-\(v)\(suffix).perch"])
            }
        }
        // Builds the aarch64 agent when `perch agent build`'s cache has none for these sources.
        let up = try run([perch, "testfleet", "up", "--devices", "8", "--emulate", "aarch64", "--emulated", "1", "--state", "tf", "--json"])
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(up.out.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.map { $0["isa"] as? String }, Array(repeating: "x86_64", count: 7) + ["aarch64"])
    }

    struct Missing: Error, CustomStringConvertible {
        var what: String
        var description: String { "missing " + what }
    }

    override func tearDownWithError() throws {
        guard !dir.isEmpty else { return }
        _ = try? run([perch, "testfleet", "down", "--state", "tf"], expect: nil)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// The fleet's inventory with a policy: canary 1, a wave of 3, then the last 4.
    /// The latency gate compares a bench taken alone with one taken while other devices of the
    /// wave run on the same shared cores, so tests that are not about it leave it off.
    /// `evalGate` adds `min_eval_agreement: 1.0`; `first` moves that device to the front (the canary).
    func writeInventory(maxFailurePercent: Double, maxParallel: Int = 4, regressionGate: Bool = true,
                        evalGate: Bool = false, first: String? = nil) throws {
        let fleet = try String(contentsOfFile: dir + "/tf/fleet.yaml", encoding: .utf8)
        var devices = String(fleet[fleet.range(of: "devices:")!.lowerBound...])
        if let first {
            // Device entries are "  - name: devN" blocks; put `first`'s block right after "devices:".
            var blocks = devices.components(separatedBy: "\n  - ")
            let head = blocks.removeFirst()
            let i = try XCTUnwrap(blocks.firstIndex { $0.hasPrefix("name: \"\(first)\"") || $0.hasPrefix("name: \(first)\n") })
            blocks.insert(blocks.remove(at: i).trimmingCharacters(in: .newlines), at: 0)
            devices = ([head] + blocks.map { $0.trimmingCharacters(in: .newlines) }).joined(separator: "\n  - ") + "\n"
        }
        try """
            policy:
              canary: 1
              waves: [3]
              max_parallel: \(maxParallel)
              max_failure_percent: \(maxFailurePercent)
              health_timeout: 120
              on_failure: rollback
              gates:
            \(regressionGate ? "    max_latency_regression: 5.0" : "    latency_budget: true")
            \(evalGate ? "    min_eval_agreement: 1.0" : "")
            \(devices)
            """.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
    }

    func rollout(_ version: String, expect: Int32?, extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
        try run([perch, "rollout", "fleet.yaml", "--bundle", "mlp-\(version).perch", "--bundle", "mlp-\(version)-aarch64.perch",
                 "--public-key", "keys/perch-signing.pub",
                 "--runs", "60", "--warmup", "5", "--json", "r.json", "--junit", "r.xml"] + extra, expect: expect)
    }

    /// What each device's agent says is active, read from its state directory.
    func activeVersions() throws -> [String] {
        try (1...8).map { i in
            let r = try run([perch + "-agent", "--state", dir + "/tf/devices/dev\(i)/home/state", "status"])
            let o = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
            return ((o?["active"] as? [String: Any])?["version"] as? String) ?? "none"
        }
    }

    func report() throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r.json"))) as? [String: Any])
    }

    /// The report's devices by name.
    func reportDevices() throws -> [String: [String: Any]] {
        let devices = try XCTUnwrap(try report()["devices"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: devices.map { ($0["name"] as! String, $0) })
    }

    /// Good versions reach every device (dev8's agent, under qemu, reports aarch64 and agrees
    /// with ONNX Runtime on every eval sample); a latency regression on the aarch64 canary halts
    /// and rolls it back; a bundle whose reference outputs disagree fails the eval gate on a
    /// host canary; after each halt every device is on 1.1.0.
    func testGoodBundleReachesAllAndRegressedCanaryHaltsWithEveryDeviceOnItsPreviousVersion() throws {
        try writeInventory(maxFailurePercent: 20, evalGate: true)
        try rollout("1.0.0", expect: 0)
        XCTAssertEqual(try activeVersions(), Array(repeating: "1.0.0", count: 8))
        try rollout("1.1.0", expect: 0)
        XCTAssertEqual(try activeVersions(), Array(repeating: "1.1.0", count: 8))
        let good = try report()
        XCTAssertEqual(good["outcome"] as? String, "completed")
        XCTAssertEqual((good["devices"] as? [[String: Any]])?.compactMap { $0["previous_version"] as? String },
                       Array(repeating: "mlp 1.0.0", count: 8))
        for (name, d) in try reportDevices() {
            let isa = d["isa"] as? String ?? ""
            XCTAssertTrue(isa.hasPrefix(name == Self.emulated ? "aarch64" : "x86_64"), "\(name): \(isa)")
            XCTAssertEqual(d["eval_agreement"] as? Double, 1.0, name)
            XCTAssertGreaterThan(d["p90_after_ms"] as? Double ?? 0, 0, name)
            let gates = (d["gates"] as? [[String: Any]]) ?? []
            XCTAssertEqual(gates.filter { $0["passed"] as? Bool == true }.compactMap { $0["name"] as? String }.filter { $0 != "latency_budget" },
                           ["latency_regression", "eval_agreement"], "\(name): \(d)")
            XCTAssertTrue(gates.allSatisfy { $0["passed"] as? Bool == true }, "\(name): \(d)")
        }
        // The emulated device runs the aarch64 agent (through its qemu launcher) and the aarch64 bundle.
        let home = dir + "/tf/devices/" + Self.emulated + "/home"
        let agent = try XCTUnwrap(FileManager.default.contents(atPath: home + "/bin/perch-agent"))
        XCTAssertEqual(UInt16(agent[18]) | UInt16(agent[19]) << 8, 183, "e_machine must be aarch64")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: home + "/bin/perch-agent-launcher"))
        let manifest = try String(contentsOfFile: home + "/state/versions/mlp-1.1.0/manifest.json", encoding: .utf8)
        XCTAssertTrue(manifest.contains("\"target_isa\":\"aarch64\""), manifest)

        // 12× the work on the aarch64 canary: its p90 (measured under qemu) fails the regression gate.
        try writeInventory(maxFailurePercent: 20, evalGate: true, first: Self.emulated)
        let r = try rollout("1.2.0", expect: 1)
        XCTAssertTrue(r.err.contains("halting: 1 of 1 device(s) failed after canary"), r.err)
        XCTAssertTrue(r.err.contains("\(Self.emulated): rolled back to mlp 1.1.0"), r.err)
        XCTAssertEqual(try activeVersions(), Array(repeating: "1.1.0", count: 8))
        let bad = try report()
        XCTAssertEqual(bad["outcome"] as? String, "halted")
        let devices = try XCTUnwrap(bad["devices"] as? [[String: Any]])
        XCTAssertEqual(devices[0]["name"] as? String, Self.emulated)
        XCTAssertEqual(devices[0]["status"] as? String, "rolled_back")
        XCTAssertEqual(devices[0]["failure"] as? String, "gate")
        XCTAssertTrue((devices[0]["isa"] as? String ?? "").hasPrefix("aarch64"), "\(devices[0])")
        let before = try XCTUnwrap(devices[0]["p90_before_ms"] as? Double), after = try XCTUnwrap(devices[0]["p90_after_ms"] as? Double)
        XCTAssertGreaterThan(after, 6 * before)
        XCTAssertEqual(devices.dropFirst().map { $0["status"] as? String }, Array(repeating: "pending", count: 7))
        let junit = try String(contentsOfFile: dir + "/r.xml", encoding: .utf8)
        XCTAssertTrue(junit.contains("<failure type=\"gate\" message=\"gate failed: "), junit)
        XCTAssertTrue(junit.contains("latency_regression (p90"), junit)

        // Same model, same speed, but reference outputs that no sample agrees with: the eval gate fails.
        try writeInventory(maxFailurePercent: 20, evalGate: true)
        let e = try rollout("1.3.0", expect: 1)
        XCTAssertTrue(e.err.contains("halting: 1 of 1 device(s) failed after canary"), e.err)
        XCTAssertEqual(try activeVersions(), Array(repeating: "1.1.0", count: 8))
        let canary = try XCTUnwrap(try reportDevices()["dev1"])
        XCTAssertEqual(canary["status"] as? String, "rolled_back")
        XCTAssertEqual(canary["eval_agreement"] as? Double, 0)
        let gates = try XCTUnwrap(canary["gates"] as? [[String: Any]])
        XCTAssertEqual(gates.first { $0["name"] as? String == "eval_agreement" }?["passed"] as? Bool, false, "\(gates)")
        XCTAssertEqual(gates.first { $0["name"] as? String == "latency_regression" }?["passed"] as? Bool, true, "\(gates)")
        XCTAssertTrue(try String(contentsOfFile: dir + "/r.xml", encoding: .utf8).contains("gate failed: eval_agreement (agreement 0 &lt; 1)"))
    }

    func testUnreachableDeviceInAWaveCountsAgainstTheThreshold() throws {
        try writeInventory(maxFailurePercent: 10, regressionGate: false)
        try rollout("1.0.0", expect: 0)
        // dev6 (last wave) goes away: its sshd stops.
        let pid = try String(contentsOfFile: dir + "/tf/devices/dev6/sshd.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(kill(pid_t(pid)!, SIGTERM), 0)
        usleep(300_000)
        let r = try rollout("1.1.0", expect: 3)  // 1 of 8 = 12.5% > 10%, and no gate failed: exit 3
        let rep = try report()
        let devices = try XCTUnwrap(rep["devices"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: devices.map { ($0["name"] as! String, $0) })
        XCTAssertEqual(byName["dev6"]?["failure"] as? String, "unreachable")
        // The others of its wave finished installing (then went back with the rest).
        for n in ["dev5", "dev7", "dev8"] {
            XCTAssertEqual(byName[n]?["new_version"] as? String, "mlp 1.1.0", n)
            XCTAssertEqual(byName[n]?["status"] as? String, "rolled_back", n)
            XCTAssertTrue(r.err.contains("\(n): installed mlp 1.1.0"), r.err)
        }
        XCTAssertTrue((byName[Self.emulated]?["isa"] as? String ?? "").hasPrefix("aarch64"), "\(byName[Self.emulated] ?? [:])")
        var active = try activeVersions()
        active.remove(at: 5)
        XCTAssertEqual(active, Array(repeating: "1.0.0", count: 7))
        XCTAssertTrue(r.err.contains("halting: 1 of 8 device(s) failed after wave 2"), r.err)
    }

    func testInterruptMidWaveThenResume() throws {
        try writeInventory(maxFailurePercent: 0, maxParallel: 2, regressionGate: false)
        try rollout("1.0.0", expect: 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: perch)
        p.arguments = ["rollout", "fleet.yaml", "--bundle", "mlp-1.1.0.perch", "--bundle", "mlp-1.1.0-aarch64.perch",
                       "--public-key", "keys/perch-signing.pub",
                       "--runs", "8", "--warmup", "2"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = ProcessInfo.processInfo.environment.merging(["CI": "true"]) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        // Wait until wave 1 has a device installed, then interrupt.
        let statePath = dir + "/fleet.rollout.json"
        var installed = 0
        for _ in 0..<600 where installed < 2 {
            usleep(50_000)
            if let d = FileManager.default.contents(atPath: statePath),
               let s = try? JSONSerialization.jsonObject(with: d) as? [String: Any], s["bundle"] as? String == "mlp 1.1.0",
               let devs = s["devices"] as? [String: [String: Any]] {
                installed = devs.values.filter { $0["status"] as? String == "installed" }.count
            }
        }
        kill(p.processIdentifier, SIGINT)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130, log)
        let state = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as? [String: Any])
        let devs = try XCTUnwrap(state["devices"] as? [String: [String: Any]])
        XCTAssertFalse(devs.values.contains { $0["status"] as? String == "installing" }, "\(devs)")
        let done = devs.filter { $0.value["status"] as? String == "installed" }.keys.sorted()
        XCTAssertGreaterThanOrEqual(done.count, 2)
        XCTAssertLessThan(done.count, 8, "interrupted too late to test anything")
        // No device is half-installed: each agent has exactly one of the two versions active and
        // an empty staging area.
        for (i, v) in try activeVersions().enumerated() {
            XCTAssertEqual(v, done.contains("dev\(i + 1)") ? "1.1.0" : "1.0.0", "dev\(i + 1)")
            let staging = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/tf/devices/dev\(i + 1)/home/state/staging")) ?? []
            XCTAssertEqual(staging, [], "dev\(i + 1)")
        }
        // Re-running resumes: devices done before are not started again.
        let r = try rollout("1.1.0", expect: 0)
        for n in done { XCTAssertFalse(r.err.contains("\(n): starting"), r.err) }
        XCTAssertEqual(try activeVersions(), Array(repeating: "1.1.0", count: 8))
    }
}

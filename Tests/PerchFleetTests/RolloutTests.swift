import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PerchFleet
import XCTest

/// A fleet in memory: what each device runs, how fast, whether it answers. Stands in for
/// SSHDeviceOperations only in these unit tests of the rollout logic above it.
final class FakeFleet: @unchecked Sendable {
    let lock = NSLock()
    var active: [String: ActiveVersion] = [:]
    var p90: [String: [String: Double]] = [:]  // device → version → p90
    var unreachable: Set<String> = []
    var agreement: [String: Double] = [:]  // device → eval agreement of the new version (none: not measured)
    var installs: [String] = []
    var rollbacks: [String] = []
    var running = 0
    var maxRunning = 0
    var onInstall: (String) -> Void = { _ in }

    let old = ActiveVersion(name: "m", version: "1.0.0")
    let new = ActiveVersion(name: "m", version: "1.1.0")

    init(devices: [String], oldP90: Double = 10, newP90: Double = 10) {
        for d in devices {
            active[d] = old
            p90[d] = ["1.0.0": oldP90, "1.1.0": newP90]
        }
    }

    func check(_ d: FleetDevice) throws {
        if lock.withLock({ unreachable.contains(d.name) }) {
            throw DeviceOperationError(.unreachable, "\(d.name): connection refused")
        }
    }

    var operations: DeviceOperations {
        DeviceOperations(
            status: { d in try self.check(d); return self.lock.withLock { self.active[d.name] } },
            bench: { d in try self.check(d); return self.lock.withLock { self.p90[d.name]![self.active[d.name]!.version]! } },
            install: { d in
                try self.check(d)
                self.lock.withLock { self.running += 1; self.maxRunning = max(self.maxRunning, self.running) }
                usleep(2000)
                self.onInstall(d.name)
                return self.lock.withLock {
                    self.running -= 1
                    self.installs.append(d.name)
                    self.active[d.name] = self.new
                    return InstallOutcome(version: self.new, p90: self.p90[d.name]!["1.1.0"]!,
                                          evalAgreement: self.agreement[d.name], isa: "x86_64+fake")
                }
            },
            rollback: { d, previous in
                try self.check(d)
                return self.lock.withLock {
                    self.rollbacks.append(d.name)
                    self.active[d.name] = previous
                    return previous
                }
            })
    }
}

final class RolloutTests: XCTestCase {
    let names = (1...8).map { "dev\($0)" }
    var tmp = ""

    override func setUp() {
        tmp = NSTemporaryDirectory() + "perch-rollout-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: tmp) }

    func inventory(_ change: (inout RolloutPolicy) -> Void = { _ in }) -> Inventory {
        var p = RolloutPolicy()
        p.canary = .count(1)
        p.waves = [.count(3)]
        p.maxParallel = 3
        p.maxFailurePercent = 20
        p.gates.maxLatencyRegression = 0.5
        change(&p)
        return Inventory(devices: names.map { FleetDevice(name: $0, host: "h", user: "u", isa: "x86_64", profile: "host") }, policy: p)
    }

    func rollout(_ inv: Inventory, _ fake: FakeFleet, state: String? = nil) throws -> Rollout {
        try Rollout(inventory: inv, stages: RolloutPlanner.stages(devices: inv.devices.map(\.name), policy: inv.policy),
                    bundle: fake.new, bundleSHA256: "abc", shard: .all, operations: fake.operations,
                    budgets: Dictionary(uniqueKeysWithValues: names.map { ($0, 50.0) }), statePath: state)
    }

    func testGoodBundleReachesAllWithBoundedParallelism() throws {
        let fake = FakeFleet(devices: names, newP90: 12)
        let r = try rollout(inventory(), fake)
        XCTAssertEqual(r.run(), .completed)
        XCTAssertEqual(Set(fake.active.values), [fake.new])
        XCTAssertLessThanOrEqual(fake.maxRunning, 3)
        XCTAssertEqual(fake.installs.first, "dev1")  // the canary first
        for n in names {
            let rec = r.state.devices[n]!
            XCTAssertEqual(rec.status, .installed)
            XCTAssertEqual(rec.previousVersion, "m 1.0.0")
            XCTAssertEqual(rec.p90Before, 10)
            XCTAssertEqual(rec.p90After, 12)
        }
        XCTAssertEqual(r.state.phase, .completed)
    }

    func testCanaryRegressionHaltsAndEveryDeviceKeepsItsVersion() throws {
        let fake = FakeFleet(devices: names, newP90: 40)  // 4× slower: fails max_latency_regression 0.5
        let r = try rollout(inventory(), fake)
        let outcome = r.run()
        guard case .halted(let reason, true) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertTrue(reason.contains("after canary"), reason)
        XCTAssertEqual(fake.installs, ["dev1"])
        XCTAssertEqual(fake.rollbacks, ["dev1"])
        XCTAssertEqual(Set(fake.active.values), [fake.old])
        XCTAssertEqual(r.state.devices["dev1"]?.status, .rolledBack)
        XCTAssertEqual(r.state.devices["dev1"]?.failure, .gate)
        XCTAssertEqual(r.state.devices["dev2"]?.status, .pending)
    }

    func testUnreachableBelowThresholdContinues() throws {
        let fake = FakeFleet(devices: names)
        fake.unreachable = ["dev3"]
        let r = try rollout(inventory(), fake)  // 1 of 4 attempted after wave 1 = 25% > 20% …
        let outcome = r.run()
        // … so it halts after wave 1 with exit 3 (no gate failed) and rolls back the updated ones,
        // but every device of wave 1 finished its install first.
        XCTAssertEqual(outcome.exitCode, 3)
        XCTAssertEqual(Set(fake.installs), ["dev1", "dev2", "dev4"])
        XCTAssertEqual(Set(fake.rollbacks), ["dev1", "dev2", "dev4"])
        XCTAssertEqual(Set(fake.active.values), [fake.old])
        XCTAssertEqual(r.state.devices["dev3"]?.failure, .unreachable)

        let fake2 = FakeFleet(devices: names)
        fake2.unreachable = ["dev3"]
        let r2 = try rollout(inventory { $0.maxFailurePercent = 30 }, fake2)
        XCTAssertEqual(r2.run(), .completed)
        XCTAssertEqual(fake2.installs.count, 7)
        XCTAssertEqual(r2.state.devices["dev3"]?.status, .failed)
    }

    func testOnFailureHaltLeavesDevicesAlone() throws {
        let fake = FakeFleet(devices: names, newP90: 40)
        let r = try rollout(inventory { $0.onFailure = .halt }, fake)
        XCTAssertEqual(r.run().exitCode, 1)
        XCTAssertEqual(fake.rollbacks, [])
        XCTAssertEqual(fake.active["dev1"], fake.new)
        XCTAssertEqual(r.state.devices["dev1"]?.status, .failed)
    }

    func testInterruptSavesStateAndResumeFinishes() throws {
        let state = tmp + "/fleet.rollout.json"
        let fake = FakeFleet(devices: names)
        var r: Rollout! = try rollout(inventory { $0.maxParallel = 2 }, fake, state: state)
        let stopper = r!
        fake.onInstall = { name in if name == "dev3" { stopper.requestStop() } }
        XCTAssertEqual(r.run(), .interrupted)
        let saved = try XCTUnwrap(RolloutState.load(state))
        XCTAssertEqual(saved.phase, .running)
        let done = saved.devices.filter { $0.value.status == .installed }.keys.sorted()
        XCTAssertFalse(saved.devices.values.contains { $0.status == .installing })
        XCTAssertLessThan(done.count, 8)
        XCTAssertTrue(done.contains("dev3"))

        fake.onInstall = { _ in }
        let before = fake.installs.count
        r = try rollout(inventory { $0.maxParallel = 2 }, fake, state: state)
        XCTAssertEqual(r.run(), .completed)
        XCTAssertEqual(fake.installs.count - before, 8 - done.count, "installed devices are not touched again")
        XCTAssertEqual(Set(fake.active.values), [fake.new])
        XCTAssertEqual(try RolloutState.load(state)?.phase, .completed)
    }

    func testStateOfAnotherUnfinishedRolloutIsRefused() throws {
        let state = tmp + "/s.json"
        var s = RolloutState(bundleSHA256: "other", bundle: "m 0.9.0", shard: "1/1")
        s.phase = .running
        try s.save(state)
        XCTAssertThrowsError(try rollout(inventory(), FakeFleet(devices: names), state: state))
    }

    func testReports() throws {
        let fake = FakeFleet(devices: names, newP90: 40)
        let inv = inventory()
        let r = try rollout(inv, fake)
        let outcome = r.run()
        let report = RolloutReport(inventory: inv, stages: r.stages, state: r.state, outcome: outcome, seconds: 1.5)

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        XCTAssertEqual(json["outcome"] as? String, "halted")
        XCTAssertEqual(json["exit_code"] as? Int, 1)
        let devices = try XCTUnwrap(json["devices"] as? [[String: Any]])
        XCTAssertEqual(devices.count, 8)
        XCTAssertEqual(devices[0]["name"] as? String, "dev1")
        XCTAssertEqual(devices[0]["status"] as? String, "rolled_back")
        XCTAssertEqual(devices[0]["previous_version"] as? String, "m 1.0.0")
        XCTAssertEqual(devices[0]["new_version"] as? String, "m 1.1.0")
        XCTAssertEqual(devices[0]["p90_before_ms"] as? Double, 10)
        XCTAssertEqual(devices[0]["p90_after_ms"] as? Double, 40)
        XCTAssertEqual((devices[0]["gates"] as? [[String: Any]])?.map { $0["passed"] as? Bool }, [true, false])

        // JUnit: well-formed XML, one testcase per device, the canary's failure carries the reason.
        let doc = try XMLDocument(xmlString: report.junit())
        let cases = try doc.nodes(forXPath: "//testcase")
        XCTAssertEqual(cases.count, 8)
        let failures = try doc.nodes(forXPath: "//testcase[@name='dev1']/failure")
        XCTAssertEqual(failures.count, 1)
        let message = (failures[0] as? XMLElement)?.attribute(forName: "message")?.stringValue ?? ""
        XCTAssertTrue(message.contains("latency_regression"), message)
        XCTAssertEqual(try doc.nodes(forXPath: "//testcase/skipped").count, 7)
        XCTAssertEqual((try doc.nodes(forXPath: "/testsuites").first as? XMLElement)?.attribute(forName: "failures")?.stringValue, "1")

        let md = report.markdown()
        XCTAssertTrue(md.contains("| dev1 | x86_64+fake | canary | m 1.0.0 | m 1.1.0 | 10.0 ms | 40.0 ms | – | ✅ latency_budget<br>❌ latency_regression | rolled back to m 1.0.0 |"), md)
    }

    /// min_eval_agreement: the canary's new version agrees on 50% of the eval samples (< 90%), so
    /// it fails that gate, goes back, and the rollout halts; reports carry the measured agreement.
    func testEvalAgreementBelowMinimumFailsTheGateAndRollsBack() throws {
        let fake = FakeFleet(devices: names)
        for n in names { fake.agreement[n] = 1 }
        fake.agreement["dev1"] = 0.5
        let inv = inventory { $0.gates.minEvalAgreement = 0.9 }
        let r = try rollout(inv, fake)
        let outcome = r.run()
        XCTAssertEqual(outcome.exitCode, 1)
        XCTAssertEqual(fake.installs, ["dev1"])
        XCTAssertEqual(fake.rollbacks, ["dev1"])
        XCTAssertEqual(fake.active["dev1"], fake.old)
        let rec = try XCTUnwrap(r.state.devices["dev1"])
        XCTAssertEqual(rec.failure, .gate)
        XCTAssertEqual(rec.evalAgreement, 0.5)
        XCTAssertEqual(rec.gates.first { $0.name == "eval_agreement" }, GateResult(name: "eval_agreement", passed: false, detail: "agreement 0.5 < 0.9"))

        let report = RolloutReport(inventory: inv, stages: r.stages, state: r.state, outcome: outcome, seconds: 1)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let dev1 = try XCTUnwrap((json["devices"] as? [[String: Any]])?.first)
        XCTAssertEqual(dev1["eval_agreement"] as? Double, 0.5)
        XCTAssertEqual(dev1["isa"] as? String, "x86_64+fake")
        XCTAssertTrue(report.junit().contains("gate eval_agreement: FAIL — agreement 0.5 &lt; 0.9"), report.junit())
        XCTAssertTrue(report.markdown().contains("| 0.5 | ✅ latency_budget<br>✅ latency_regression<br>❌ eval_agreement |"), report.markdown())

        // Agreement at the minimum passes.
        let ok = FakeFleet(devices: names)
        for n in names { ok.agreement[n] = 0.9 }
        let r2 = try rollout(inv, ok)
        XCTAssertEqual(r2.run(), .completed)
        XCTAssertEqual(r2.state.devices["dev8"]?.evalAgreement, 0.9)
    }
}

import PerchFleet
import XCTest

final class InventoryTests: XCTestCase {
    func diagnostics(_ yaml: String) -> [String] {
        do {
            _ = try Inventory.parse(yaml, file: "f.yaml")
            return []
        } catch FleetError.invalid(let d) {
            return d.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    func testFullInventoryParses() throws {
        let inv = try Inventory.parse("""
            ssh:
              identity: keys/id_ed25519
              known_hosts: /etc/perch/known_hosts
              user: pi
            policy:
              canary: "10%"
              waves: [2, "50%"]
              max_parallel: 8
              max_failure_percent: 12.5
              health_timeout: 90
              on_failure: halt
              gates:
                latency_budget: false
                max_latency_regression: 0.2
                min_eval_agreement: 0.98
            devices:
              - name: cam-1
                host: 10.0.0.1
                port: 2222
                profile: rpi4
                group: north
                labels: {site: lab, floor: 2}
              - name: cam-2
                host: 10.0.0.2
                user: root
                identity: other_key
            """, file: "/srv/deploy/fleet.yaml")
        XCTAssertEqual(inv.devices.count, 2)
        let a = inv.devices[0], b = inv.devices[1]
        XCTAssertEqual(a.port, 2222)
        XCTAssertEqual(a.user, "pi")
        XCTAssertEqual(a.profile, "rpi4")
        XCTAssertEqual(a.group, "north")
        XCTAssertEqual(a.labels, ["site": "lab", "floor": "2"])
        XCTAssertEqual(a.identity, "/srv/deploy/keys/id_ed25519")
        XCTAssertEqual(a.knownHosts, "/etc/perch/known_hosts")
        XCTAssertEqual(b.port, 22)
        XCTAssertEqual(b.user, "root")
        XCTAssertEqual(b.identity, "/srv/deploy/other_key")
        XCTAssertEqual(b.profile, "host")
        let p = inv.policy
        XCTAssertEqual(p.canary, .percent(10))
        XCTAssertEqual(p.waves, [.count(2), .percent(50)])
        XCTAssertEqual(p.maxParallel, 8)
        XCTAssertEqual(p.maxFailurePercent, 12.5)
        XCTAssertEqual(p.healthTimeout, 90)
        XCTAssertEqual(p.onFailure, .halt)
        XCTAssertFalse(p.gates.latencyBudget)
        XCTAssertEqual(p.gates.maxLatencyRegression, 0.2)
        XCTAssertEqual(p.gates.minEvalAgreement, 0.98)
    }

    func testDefaultsWithoutPolicy() throws {
        let inv = try Inventory.parse("devices:\n  - {name: a, host: h}\n", file: "f.yaml")
        XCTAssertEqual(inv.policy, RolloutPolicy())
        XCTAssertEqual(inv.policy.canary, .count(1))
        XCTAssertEqual(inv.policy.maxFailurePercent, 0)
        XCTAssertEqual(inv.policy.onFailure, .rollback)
    }

    func testErrorsCarryLineAndColumn() {
        XCTAssertEqual(diagnostics("""
            policy:
              canary: "150%"
              waves: 3
              max_parallel: 0
              on_failure: retry
              gates:
                max_latency_regression: fast
              speed: 1
            devices:
              - name: a
                host: h
                port: 70000
              - name: a
                host: h2
                labels: [x]
              - host: h3
            """), [
            "f.yaml:2:11: 'canary' must be a percentage in (0, 100], found '150%'",
            "f.yaml:3:10: 'waves' must be a list of device counts or percentages, found integer 3",
            "f.yaml:4:17: 'max_parallel' must be in 1…1024, found 0",
            "f.yaml:5:15: 'on_failure' must be rollback or halt, found 'retry'",
            "f.yaml:7:29: 'max_latency_regression' must be a number, found string 'fast'",
            "f.yaml:8:3: unknown key 'speed' in 'policy' (allowed: canary, waves, max_parallel, max_failure_percent, gates, health_timeout, on_failure)",
            "f.yaml:12:11: 'port' must be in 1…65535, found 70000",
            "f.yaml:13:11: device name 'a' is used twice (first at line 10)",
            "f.yaml:15:13: 'labels' must be a mapping of names to values, found a list",
            "f.yaml:16:5: a device needs a 'name'",
        ])
    }

    func testSyntaxErrorAndMissingDevices() {
        XCTAssertEqual(diagnostics("devices: [a, b\n"), ["f.yaml:2:1: YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'"])
        XCTAssertEqual(diagnostics("ssh: {}\n"), ["f.yaml:1:1: the inventory needs a 'devices:' list"])
        XCTAssertEqual(diagnostics("devices: []\n"), ["f.yaml:1:10: 'devices' is empty; list at least one device"])
    }

    /// The writer (used by `perch testfleet up`) and the reader are one schema.
    func testYAMLRoundTrip() throws {
        var p = RolloutPolicy()
        p.canary = .percent(12.5)
        p.waves = [.count(3), .percent(50)]
        p.maxParallel = 16
        p.maxFailurePercent = 20
        p.gates.maxLatencyRegression = 0.25
        p.onFailure = .halt
        let inv = Inventory(devices: [
            FleetDevice(name: "dev1", host: "10.213.1.2", port: 22, user: "root", isa: "x86_64", profile: "host",
                        identity: "/tmp/x/id_ed25519", knownHosts: "/tmp/x/known_hosts", labels: ["a": "b: c"], group: "g\"1"),
        ], policy: p)
        let back = try Inventory.parse(inv.yaml, file: "/tmp/x/fleet.yaml")
        XCTAssertEqual(back.devices, inv.devices)
        XCTAssertEqual(back.policy, p)
    }
}

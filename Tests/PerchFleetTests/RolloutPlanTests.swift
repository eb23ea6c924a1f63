import PerchFleet
import XCTest

final class RolloutPlanTests: XCTestCase {
    func testCountsAndPercents() {
        XCTAssertEqual(DeviceCount.percent(10).resolve(total: 4), 1)
        XCTAssertEqual(DeviceCount.percent(25).resolve(total: 10), 3)
        XCTAssertEqual(DeviceCount.percent(100).resolve(total: 7), 7)
        XCTAssertEqual(DeviceCount.count(5).resolve(total: 3), 3)
        XCTAssertEqual(DeviceCount.percent(50).resolve(total: 0), 0)
    }

    func testStages() {
        var p = RolloutPolicy()
        p.canary = .count(1)
        p.waves = [.count(2), .percent(50)]
        let names = (1...10).map { "d\($0)" }
        let stages = RolloutPlanner.stages(devices: names, policy: p)
        XCTAssertEqual(stages.map(\.name), ["canary", "wave 1", "wave 2", "wave 3"])
        XCTAssertEqual(stages.map(\.devices), [["d1"], ["d2", "d3"], ["d4", "d5", "d6", "d7", "d8"], ["d9", "d10"]])
        // Waves larger than what is left take the rest; empty stages vanish.
        p.waves = [.percent(100), .count(3)]
        XCTAssertEqual(RolloutPlanner.stages(devices: names, policy: p).map(\.devices.count), [1, 9])
    }

    func testShardingIsDeterministicDisjointAndComplete() throws {
        // FNV-1a 64 reference values (computed independently in Python).
        XCTAssertEqual(Shard.stableHash(""), 0xcbf29ce484222325)
        XCTAssertEqual(Shard.stableHash("dev1"), 0xa5f555674285a957)
        let names = (1...64).map { "dev\($0)" }
        var seen: [String] = []
        for i in 1...4 {
            let s = try Shard.parse("\(i)/4")
            let part = names.filter { s.contains($0) }
            XCTAssertFalse(part.isEmpty)
            XCTAssertEqual(part, names.filter { s.contains($0) })
            seen += part
        }
        XCTAssertEqual(seen.sorted(), names.sorted())
        XCTAssertThrowsError(try Shard.parse("0/4"))
        XCTAssertThrowsError(try Shard.parse("5/4"))
        XCTAssertThrowsError(try Shard.parse("x"))
    }

    func testGates() {
        var g = RolloutGates()
        g.maxLatencyRegression = 0.1
        var r = Gates.evaluate(g, p90After: 10.9, p90Before: 10, budgetMS: 20, agreement: nil)
        XCTAssertEqual(r.map(\.name), ["latency_budget", "latency_regression"])
        XCTAssertEqual(r.map(\.passed), [true, true])
        r = Gates.evaluate(g, p90After: 11.1, p90Before: 10, budgetMS: 20, agreement: nil)
        XCTAssertEqual(r.map(\.passed), [true, false])
        XCTAssertEqual(r[1].detail, "p90 11.1 ms > 1.1× previous 10.0 ms = 11.0 ms")
        r = Gates.evaluate(g, p90After: 25, p90Before: nil, budgetMS: 20, agreement: nil)
        XCTAssertEqual(r.map(\.passed), [false])
        g.latencyBudget = false
        g.minEvalAgreement = 0.99
        r = Gates.evaluate(g, p90After: 5, p90Before: 5, budgetMS: 1, agreement: 0.98)
        XCTAssertEqual(r.map(\.name), ["latency_regression", "eval_agreement"])
        XCTAssertEqual(r.map(\.passed), [true, false])
        XCTAssertEqual(Gates.evaluate(g, p90After: 5, p90Before: nil, budgetMS: nil, agreement: nil).map(\.passed), [false])
    }
}

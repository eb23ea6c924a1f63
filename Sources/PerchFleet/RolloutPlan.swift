/// `--shard i/N`: the devices whose stable name hash falls in shard i of N (1-based), so N CI
/// matrix jobs each roll out a disjoint part of the fleet, and every run picks the same part.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public static let all = Shard(index: 1, count: 1)

    /// Parses `i/N` with 1 ≤ i ≤ N.
    public static func parse(_ text: String) throws -> Shard {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(i) else {
            throw FleetError.badInput("--shard '\(text)' is not i/N with 1 ≤ i ≤ N", hint: "pass e.g. --shard 1/4 (CI: the matrix index starting at 1, and the matrix size)")
        }
        return Shard(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// 64-bit FNV-1a of the name's UTF-8 bytes: the same on every machine and Swift version
    /// (unlike `Hasher`, which is seeded per process).
    public static func stableHash(_ name: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    public func contains(_ name: String) -> Bool {
        count == 1 || Int(Shard.stableHash(name) % UInt64(count)) == index - 1
    }
}

/// One step of a rollout: the devices that are updated together before the failure threshold is
/// checked again.
public struct RolloutStage: Sendable, Equatable {
    public var name: String
    public var devices: [String]
    public init(name: String, devices: [String]) {
        self.name = name
        self.devices = devices
    }
}

public enum RolloutPlanner {
    /// The stages for `devices` (already sharded), in inventory order: the canary first, then
    /// each listed wave, then one last wave with whatever is left. Counts and percentages are of
    /// `devices.count`; a wave never takes more than what is left; empty stages are dropped.
    public static func stages(devices: [String], policy: RolloutPolicy) -> [RolloutStage] {
        let total = devices.count
        var rest = devices[...]
        var stages: [RolloutStage] = []
        func take(_ n: Int, _ name: String) {
            let k = min(n, rest.count)
            guard k > 0 else { return }
            stages.append(RolloutStage(name: name, devices: Array(rest.prefix(k))))
            rest = rest.dropFirst(k)
        }
        take(policy.canary.resolve(total: total), "canary")
        for (i, w) in policy.waves.enumerated() { take(w.resolve(total: total), "wave \(i + 1)") }
        take(rest.count, "wave \(policy.waves.count + 1)")
        return stages
    }

    /// The plan as `--dry-run` prints it.
    public static func describe(stages: [RolloutStage], inventory: Inventory, shard: Shard, bundle: String) -> String {
        let p = inventory.policy
        let total = stages.reduce(0) { $0 + $1.devices.count }
        var out = "rollout plan: \(bundle) to \(total) of \(inventory.devices.count) device(s)"
        out += shard.count > 1 ? " (shard \(shard))\n" : "\n"
        var gates = [String]()
        if p.gates.latencyBudget { gates.append("p90 ≤ profile budget") }
        if let r = p.gates.maxLatencyRegression { gates.append("p90 ≤ \(fmt(1 + r))× previous p90") }
        if let a = p.gates.minEvalAgreement { gates.append("eval agreement ≥ \(fmt(a))") }
        out += "policy: max_parallel \(p.maxParallel), halt when failed/attempted > \(fmt(p.maxFailurePercent))%, "
        out += "on_failure \(p.onFailure.rawValue), health_timeout \(fmt(p.healthTimeout)) s\n"
        out += "gates: " + (gates.isEmpty ? "none" : gates.joined(separator: ", ")) + "\n"
        for s in stages {
            out += "\(s.name) (\(s.devices.count)): " + s.devices.joined(separator: ", ") + "\n"
        }
        return out
    }
}

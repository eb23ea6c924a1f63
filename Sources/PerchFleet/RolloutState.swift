import Foundation

/// Where one device stands in a rollout.
public enum DeviceRolloutStatus: String, Codable, Sendable {
    case pending, installing, installed, failed
    case rolledBack = "rolled_back"
}

/// Why a device failed: a gate (the new version is worse), the network (unreachable, auth, host
/// key) or the device (agent refused, busy, full disk).
public enum FailureKind: String, Codable, Sendable {
    case gate, unreachable, device
}

/// One gate's verdict on one device.
public struct GateResult: Codable, Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var detail: String
    public init(name: String, passed: Bool, detail: String) {
        self.name = name
        self.passed = passed
        self.detail = detail
    }
}

public struct DeviceRecord: Codable, Sendable, Equatable {
    public var status: DeviceRolloutStatus = .pending
    public var stage: String = ""
    /// The version active before this rollout touched the device (`name version`).
    public var previousVersion: String?
    public var p90Before: Double?
    public var newVersion: String?
    public var p90After: Double?
    /// Share (0…1) of the bundle's eval samples the new version agreed on, as the device measured it.
    public var evalAgreement: Double?
    /// The ISA (and features) the device's agent reported, e.g. `aarch64+neon+fp16`.
    public var isa: String?
    public var gates: [GateResult] = []
    public var failure: FailureKind?
    public var reason: String?
    /// What the rollout did: installed, rolled back, left as is, skipped.
    public var action: String?
    public init() {}
}

/// The rollout's progress, saved after every device step so an interrupted rollout resumes:
/// devices `installed` are not touched again, `installing` ones are re-checked and finished.
public struct RolloutState: Codable, Sendable, Equatable {
    public enum Phase: String, Codable, Sendable { case running, completed, halted }
    public var bundleSHA256: String
    public var bundle: String
    public var shard: String
    public var phase: Phase = .running
    public var haltReason: String?
    public var devices: [String: DeviceRecord] = [:]

    public init(bundleSHA256: String, bundle: String, shard: String) {
        self.bundleSHA256 = bundleSHA256
        self.bundle = bundle
        self.shard = shard
    }

    public static func load(_ path: String) throws -> RolloutState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(RolloutState.self, from: data) } catch {
            throw FleetError.badInput("rollout state '\(path)' is unreadable: \(error)", hint: "delete it to start the rollout over")
        }
    }

    /// Atomic: writes a temporary file and renames it over the state.
    public func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(self)
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data), rename(tmp, path) == 0 else {
            throw FleetError.system("cannot write rollout state '\(path)'", hint: "check that its directory is writable")
        }
    }

    /// The default state file: beside the inventory, named after it and the shard.
    public static func defaultPath(inventory: String, shard: Shard) -> String {
        let base = (inventory as NSString).deletingPathExtension
        return base + (shard.count > 1 ? ".shard-\(shard.index)-of-\(shard.count)" : "") + ".rollout.json"
    }
}

public enum Gates {
    /// The gates of `policy` for one device. `budgetMS` is the device profile's
    /// `budgets.latency_ms`; `p90Before` the previous version's p90 on the device (nil: the device
    /// had no version, nothing to compare); `agreement` the eval agreement the device measured.
    public static func evaluate(_ g: RolloutGates, p90After: Double, p90Before: Double?, budgetMS: Double?,
                                agreement: Double?) -> [GateResult] {
        var out: [GateResult] = []
        if g.latencyBudget, let b = budgetMS {
            out.append(GateResult(name: "latency_budget", passed: p90After <= b,
                                  detail: "p90 \(ms(p90After)) ms \(p90After <= b ? "≤" : ">") budget \(ms(b)) ms"))
        }
        if let x = g.maxLatencyRegression, let before = p90Before {
            let limit = (1 + x) * before
            out.append(GateResult(name: "latency_regression", passed: p90After <= limit,
                                  detail: "p90 \(ms(p90After)) ms \(p90After <= limit ? "≤" : ">") \(fmt(1 + x))× previous \(ms(before)) ms = \(ms(limit)) ms"))
        }
        if let min = g.minEvalAgreement {
            if let a = agreement {
                out.append(GateResult(name: "eval_agreement", passed: a >= min, detail: "agreement \(fmt(a)) \(a >= min ? "≥" : "<") \(fmt(min))"))
            } else {
                out.append(GateResult(name: "eval_agreement", passed: false, detail: "not measured (the bundle has no eval set or the agent does not report it)"))
            }
        }
        return out
    }

    static func ms(_ v: Double) -> String { String(format: v < 10 ? "%.3f" : "%.1f", v) }
}

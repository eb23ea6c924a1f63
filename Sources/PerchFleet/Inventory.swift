import Foundation
import PerchProfiles

/// One device of an inventory: how to reach it and what it is.
public struct FleetDevice: Sendable, Equatable {
    public var name: String
    public var host: String
    public var port: Int
    public var user: String
    public var isa: String
    public var profile: String
    /// Private key to log in with (absolute path), if not the user's default.
    public var identity: String?
    /// known_hosts file holding the device's host key, if not ~/.ssh/known_hosts.
    public var knownHosts: String?
    /// Free-form `key: value` labels (selection, reports).
    public var labels: [String: String]
    /// Group name (reports; devices of one group are listed together).
    public var group: String?

    public init(name: String, host: String, port: Int = 22, user: String, isa: String, profile: String,
                identity: String? = nil, knownHosts: String? = nil, labels: [String: String] = [:], group: String? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.user = user
        self.isa = isa
        self.profile = profile
        self.identity = identity
        self.knownHosts = knownHosts
        self.labels = labels
        self.group = group
    }
}

/// Errors of PerchFleet; the CLI maps `.badInput` and `.invalid` to exit 2 and `.system` to 3.
public enum FleetError: Error, CustomStringConvertible {
    case badInput(String, hint: String)
    case system(String, hint: String)
    /// The inventory has problems; every one is listed, in file order.
    case invalid([InventoryDiagnostic])

    public var description: String {
        switch self {
        case let .badInput(s, _), let .system(s, _): return s
        case let .invalid(d):
            return (d.count == 1 ? "1 problem" : "\(d.count) problems") + " in inventory \(d.first?.file ?? "")"
        }
    }

    public var hint: String {
        switch self {
        case let .badInput(_, h), let .system(_, h): return h
        case .invalid: return "fix the lines above; deploy/README.md describes the schema"
        }
    }
}

/// A count of devices or a percentage of the (sharded) fleet: `2` or `"25%"`.
public enum DeviceCount: Sendable, Equatable, CustomStringConvertible {
    case count(Int)
    case percent(Double)

    /// Devices this stands for out of `total`: a percentage rounds up, and is at least 1 when
    /// `total > 0`, so "10%" of 4 devices still makes a canary of one.
    public func resolve(total: Int) -> Int {
        switch self {
        case .count(let n): return min(n, total)
        case .percent(let p): return total == 0 ? 0 : min(total, max(1, Int((p * Double(total) / 100).rounded(.up))))
        }
    }

    public var description: String {
        switch self {
        case .count(let n): return String(n)
        case .percent(let p): return (p == p.rounded() ? String(Int(p)) : String(p)) + "%"
        }
    }
}

/// Gates a device must pass after the new version is installed and benchmarked on it.
public struct RolloutGates: Sendable, Equatable {
    /// p90 ≤ the device profile's `budgets.latency_ms` (when the profile sets one).
    public var latencyBudget = true
    /// p90 ≤ (1 + x) × the previous version's p90 on the same device; nil: not checked.
    public var maxLatencyRegression: Double?
    /// Share (0…1) of the bundle's eval samples whose outputs must agree with the references;
    /// nil: not checked.
    public var minEvalAgreement: Double?
    public init() {}
}

public enum OnFailure: String, Sendable, Equatable { case rollback, halt }

/// How a rollout proceeds: canary, waves, parallelism, when to stop, what to do then.
public struct RolloutPolicy: Sendable, Equatable {
    public var canary: DeviceCount = .count(1)
    /// Wave sizes after the canary; devices left after the last one form one more wave.
    public var waves: [DeviceCount] = []
    public var maxParallel = 4
    /// The rollout halts (after the current stage) when failed / attempted devices exceeds this.
    public var maxFailurePercent: Double = 0
    public var gates = RolloutGates()
    /// Seconds one device may take from connect to a finished benchmark.
    public var healthTimeout: Double = 300
    public var onFailure: OnFailure = .rollback
    public init() {}
}

/// An inventory file (YAML; schema in deploy/README.md): `devices:`, optional `ssh:` defaults and
/// a rollout `policy:`. Relative `identity` and `known_hosts` paths are relative to the file.
/// `perch testfleet up` writes one.
public struct Inventory: Sendable {
    public var devices: [FleetDevice]
    public var policy: RolloutPolicy
    /// The file it came from (absolute), if any.
    public var path: String?

    public init(devices: [FleetDevice], policy: RolloutPolicy = RolloutPolicy(), path: String? = nil) {
        self.devices = devices
        self.policy = policy
        self.path = path
    }

    public static func load(_ path: String) throws -> Inventory {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FleetError.badInput("inventory '\(path)' does not exist or is not readable", hint: "check the path, or create one with 'perch testfleet up'")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Parses and validates; throws `.invalid` with every problem found.
    public static func parse(_ text: String, file: String) throws -> Inventory {
        var p = InventoryParser(file: file)
        let inv = p.parse(text)
        if !p.diagnostics.isEmpty { throw FleetError.invalid(p.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }) }
        return inv!
    }

    public func device(named name: String) throws -> FleetDevice {
        guard let d = devices.first(where: { $0.name == name }) else {
            throw FleetError.badInput("no device named '\(name)' in the inventory (it has: \(devices.map(\.name).joined(separator: ", ")))", hint: "pass one of those names to --device")
        }
        return d
    }

    /// The inventory as YAML in the schema `load` reads (policy included).
    public var yaml: String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        let p = policy
        func c(_ n: DeviceCount) -> String { if case .count(let k) = n { return String(k) }; return q(n.description) }
        var out = "# Perch inventory (deploy/README.md): devices and the rollout policy for 'perch rollout'.\n"
        out += "policy:\n  canary: \(c(p.canary))\n"
        out += "  waves: [" + p.waves.map(c).joined(separator: ", ") + "]\n"
        out += "  max_parallel: \(p.maxParallel)\n  max_failure_percent: \(p.maxFailurePercent)\n"
        out += "  health_timeout: \(p.healthTimeout)\n  on_failure: \(p.onFailure.rawValue)\n"
        out += "  gates:\n    latency_budget: \(p.gates.latencyBudget)\n"
        if let r = p.gates.maxLatencyRegression { out += "    max_latency_regression: \(r)\n" }
        if let a = p.gates.minEvalAgreement { out += "    min_eval_agreement: \(a)\n" }
        out += "devices:\n"
        for d in devices {
            out += "  - name: \(q(d.name))\n    host: \(q(d.host))\n    port: \(d.port)\n    user: \(q(d.user))\n    isa: \(d.isa)\n    profile: \(q(d.profile))\n"
            if let g = d.group { out += "    group: \(q(g))\n" }
            if !d.labels.isEmpty {
                out += "    labels: {" + d.labels.sorted { $0.key < $1.key }.map { q($0.key) + ": " + q($0.value) }.joined(separator: ", ") + "}\n"
            }
            if let i = d.identity { out += "    identity: \(q(i))\n" }
            if let k = d.knownHosts { out += "    known_hosts: \(q(k))\n" }
        }
        return out
    }
}

/// Validation of the inventory schema, collecting every problem with its position.
struct InventoryParser {
    let file: String
    var diagnostics: [InventoryDiagnostic] = []
    init(file: String) { self.file = file }

    mutating func error(_ node: LocatedYAML, _ message: String) {
        diagnostics.append(InventoryDiagnostic(file: file, line: node.location.line, column: node.location.column, message: message))
    }
    mutating func error(_ e: LocatedYAML.Entry, _ message: String) {
        diagnostics.append(InventoryDiagnostic(file: file, line: e.keyLocation.line, column: e.keyLocation.column, message: message))
    }

    /// Checks that `node` is a mapping with only `allowed` keys; returns its entries.
    mutating func mapping(_ node: LocatedYAML, _ what: String, allowed: [String]) -> [LocatedYAML.Entry] {
        guard case .mapping(let entries, _) = node else {
            error(node, "\(what) must be a mapping, found \(node.kindDescription)")
            return []
        }
        for e in entries where !allowed.contains(e.key) {
            error(e, "unknown key '\(e.key)' in \(what) (allowed: \(allowed.joined(separator: ", ")))")
        }
        return entries.filter { allowed.contains($0.key) }
    }

    mutating func string(_ node: LocatedYAML, _ key: String) -> String? {
        switch node {
        case .scalar(let s, .string, _), .scalar(let s, .integer, _), .scalar(let s, .float, _):
            if s.isEmpty { error(node, "'\(key)' must not be empty"); return nil }
            return s
        default:
            error(node, "'\(key)' must be a string, found \(node.kindDescription)")
            return nil
        }
    }

    mutating func number(_ node: LocatedYAML, _ key: String, _ range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let s, let k, _) = node, k == .integer || k == .float, let v = Double(s) else {
            error(node, "'\(key)' must be a number, found \(node.kindDescription)")
            return nil
        }
        guard range.contains(v) else {
            error(node, "'\(key)' must be in \(fmt(range.lowerBound))…\(fmt(range.upperBound)), found \(s)")
            return nil
        }
        return v
    }

    mutating func integer(_ node: LocatedYAML, _ key: String, _ range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let s, .integer, _) = node, let v = Int(s) else {
            error(node, "'\(key)' must be an integer, found \(node.kindDescription)")
            return nil
        }
        guard range.contains(v) else {
            error(node, "'\(key)' must be in \(range.lowerBound)…\(range.upperBound), found \(s)")
            return nil
        }
        return v
    }

    mutating func bool(_ node: LocatedYAML, _ key: String) -> Bool? {
        guard case .scalar(let s, .boolean, _) = node else {
            error(node, "'\(key)' must be true or false, found \(node.kindDescription)")
            return nil
        }
        return ["true", "yes", "on"].contains(s.lowercased())
    }

    /// `3` (devices) or `"25%"` (of the fleet).
    mutating func count(_ node: LocatedYAML, _ key: String) -> DeviceCount? {
        if case .scalar(let s, .integer, _) = node, let n = Int(s) {
            if n < 1 { error(node, "'\(key)' must be at least 1 device, found \(s)"); return nil }
            return .count(n)
        }
        if case .scalar(let s, .string, _) = node, s.hasSuffix("%"),
           let p = Double(s.dropLast().trimmingCharacters(in: .whitespaces)) {
            if !(p > 0 && p <= 100) { error(node, "'\(key)' must be a percentage in (0, 100], found '\(s)'"); return nil }
            return .percent(p)
        }
        error(node, "'\(key)' must be a device count (e.g. 2) or a percentage (e.g. \"25%\"), found \(node.kindDescription)")
        return nil
    }

    func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        if p.hasPrefix("~") { return (p as NSString).expandingTildeInPath }
        let dir = (file as NSString).deletingLastPathComponent
        let base = dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + (dir.isEmpty ? "" : "/" + dir)
        return (base as NSString).appendingPathComponent(p)
    }

    mutating func parse(_ text: String) -> Inventory? {
        guard let root = LocatedYAML.parse(text, file: file, diagnostics: &diagnostics) else {
            if diagnostics.isEmpty {
                diagnostics.append(InventoryDiagnostic(file: file, line: 1, column: 1, message: "the inventory is empty; it needs a 'devices:' list"))
            }
            return nil
        }
        var policy = RolloutPolicy()
        var sshIdentity: String?, sshKnownHosts: String?, sshUser: String?
        var devicesNode: LocatedYAML?
        for e in mapping(root, "the inventory", allowed: ["devices", "ssh", "policy"]) {
            switch e.key {
            case "devices": devicesNode = e.value
            case "ssh":
                for s in mapping(e.value, "'ssh'", allowed: ["identity", "known_hosts", "user"]) {
                    switch s.key {
                    case "identity": sshIdentity = string(s.value, "identity").map(absolute)
                    case "known_hosts": sshKnownHosts = string(s.value, "known_hosts").map(absolute)
                    default: sshUser = string(s.value, "user")
                    }
                }
            default: parsePolicy(e.value, into: &policy)
            }
        }
        guard let devicesNode else {
            if case .mapping = root { error(root, "the inventory needs a 'devices:' list") }
            return nil
        }
        guard case .sequence(let items, _) = devicesNode else {
            error(devicesNode, "'devices' must be a list, found \(devicesNode.kindDescription)")
            return nil
        }
        if items.isEmpty { error(devicesNode, "'devices' is empty; list at least one device") }
        var devices: [FleetDevice] = []
        var seen: [String: Int] = [:]
        let allowed = ["name", "host", "port", "user", "profile", "labels", "group", "isa", "identity", "known_hosts"]
        for item in items {
            var name: String?, host: String?, port = 22, user: String?, profile = "host", isa = "x86_64"
            var identity = sshIdentity, knownHosts = sshKnownHosts, group: String?
            var labels: [String: String] = [:]
            let entries = mapping(item, "a device", allowed: allowed)
            for e in entries {
                switch e.key {
                case "name":
                    name = string(e.value, "name")
                    if let n = name {
                        if let first = seen[n] { error(e.value, "device name '\(n)' is used twice (first at line \(first))") }
                        else { seen[n] = e.value.location.line }
                    }
                case "host": host = string(e.value, "host")
                case "port": port = integer(e.value, "port", 1...65535) ?? port
                case "user": user = string(e.value, "user")
                case "profile": profile = string(e.value, "profile") ?? profile
                case "isa": isa = string(e.value, "isa") ?? isa
                case "group": group = string(e.value, "group")
                case "identity": identity = string(e.value, "identity").map(absolute)
                case "known_hosts": knownHosts = string(e.value, "known_hosts").map(absolute)
                default:
                    if case .mapping(let ls, _) = e.value {
                        for l in ls { if let v = string(l.value, l.key) { labels[l.key] = v } }
                    } else {
                        error(e.value, "'labels' must be a mapping of names to values, found \(e.value.kindDescription)")
                    }
                }
            }
            if case .mapping = item {
                if name == nil && !entries.contains(where: { $0.key == "name" }) { error(item, "a device needs a 'name'") }
                if host == nil && !entries.contains(where: { $0.key == "host" }) { error(item, "a device needs a 'host'") }
            }
            guard let name, let host else { continue }
            devices.append(FleetDevice(
                name: name, host: host, port: port,
                user: user ?? sshUser ?? ProcessInfo.processInfo.environment["USER"] ?? "root",
                isa: isa, profile: profile, identity: identity, knownHosts: knownHosts, labels: labels, group: group))
        }
        return Inventory(devices: devices, policy: policy, path: absolute(file))
    }

    mutating func parsePolicy(_ node: LocatedYAML, into p: inout RolloutPolicy) {
        let keys = ["canary", "waves", "max_parallel", "max_failure_percent", "gates", "health_timeout", "on_failure"]
        for e in mapping(node, "'policy'", allowed: keys) {
            switch e.key {
            case "canary": p.canary = count(e.value, "canary") ?? p.canary
            case "waves":
                guard case .sequence(let items, _) = e.value else {
                    error(e.value, "'waves' must be a list of device counts or percentages, found \(e.value.kindDescription)")
                    continue
                }
                p.waves = items.compactMap { count($0, "waves") }
            case "max_parallel": p.maxParallel = integer(e.value, "max_parallel", 1...1024) ?? p.maxParallel
            case "max_failure_percent": p.maxFailurePercent = number(e.value, "max_failure_percent", 0...100) ?? p.maxFailurePercent
            case "health_timeout": p.healthTimeout = number(e.value, "health_timeout", 1...86400) ?? p.healthTimeout
            case "on_failure":
                if let s = string(e.value, "on_failure") {
                    if let v = OnFailure(rawValue: s) { p.onFailure = v }
                    else { error(e.value, "'on_failure' must be rollback or halt, found '\(s)'") }
                }
            default:
                for g in mapping(e.value, "'gates'", allowed: ["latency_budget", "max_latency_regression", "min_eval_agreement"]) {
                    switch g.key {
                    case "latency_budget": p.gates.latencyBudget = bool(g.value, "latency_budget") ?? true
                    case "max_latency_regression": p.gates.maxLatencyRegression = number(g.value, "max_latency_regression", 0...1000)
                    default: p.gates.minEvalAgreement = number(g.value, "min_eval_agreement", 0...1)
                    }
                }
            }
        }
    }
}

func fmt(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }

import Foundation
import Yams

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

    public init(name: String, host: String, port: Int = 22, user: String, isa: String, profile: String,
                identity: String? = nil, knownHosts: String? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.user = user
        self.isa = isa
        self.profile = profile
        self.identity = identity
        self.knownHosts = knownHosts
    }
}

/// Errors of PerchFleet; the CLI maps `.badInput` to exit 2 and `.system` to 3.
public enum FleetError: Error, CustomStringConvertible {
    case badInput(String, hint: String)
    case system(String, hint: String)

    public var description: String {
        switch self {
        case let .badInput(s, _), let .system(s, _): return s
        }
    }

    public var hint: String {
        switch self {
        case let .badInput(_, h), let .system(_, h): return h
        }
    }
}

/// An inventory file (YAML): `devices:` — a list of `name, host, port, user, isa, profile,
/// identity, known_hosts`. Relative `identity` and `known_hosts` paths are relative to the file.
public struct Inventory: Sendable {
    public var devices: [FleetDevice]

    public init(devices: [FleetDevice]) { self.devices = devices }

    public static func load(_ path: String) throws -> Inventory {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FleetError.badInput("inventory '\(path)' does not exist or is not readable", hint: "check the path, or create one with 'perch testfleet up'")
        }
        let base = ((path as NSString).deletingLastPathComponent as NSString)
        let node: Any?
        do { node = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) } catch {
            throw FleetError.badInput("inventory '\(path)' is not valid YAML: \(error)", hint: "fix the file")
        }
        guard let root = node as? [String: Any], let list = root["devices"] as? [[String: Any]] else {
            throw FleetError.badInput("inventory '\(path)' has no 'devices:' list", hint: "see 'perch testfleet up' for an example")
        }
        func absolute(_ p: String?) -> String? {
            guard let p, !p.isEmpty else { return nil }
            return p.hasPrefix("/") || p.hasPrefix("~") ? (p as NSString).expandingTildeInPath : base.appendingPathComponent(p)
        }
        var devices: [FleetDevice] = []
        for (i, d) in list.enumerated() {
            guard let name = d["name"] as? String, let host = d["host"] as? String else {
                throw FleetError.badInput("inventory '\(path)': device \(i + 1) needs 'name' and 'host'", hint: "fix the file")
            }
            devices.append(FleetDevice(
                name: name, host: host, port: (d["port"] as? Int) ?? 22,
                user: (d["user"] as? String) ?? ProcessInfo.processInfo.environment["USER"] ?? "root",
                isa: (d["isa"] as? String) ?? "x86_64", profile: (d["profile"] as? String) ?? "host",
                identity: absolute(d["identity"] as? String), knownHosts: absolute(d["known_hosts"] as? String)))
        }
        return Inventory(devices: devices)
    }

    public func device(named name: String) throws -> FleetDevice {
        guard let d = devices.first(where: { $0.name == name }) else {
            throw FleetError.badInput("no device named '\(name)' in the inventory (it has: \(devices.map(\.name).joined(separator: ", ")))", hint: "pass one of those names to --device")
        }
        return d
    }

    public var yaml: String {
        var out = "# Perch inventory: one entry per device (perch deploy --inventory F --device NAME).\ndevices:\n"
        for d in devices {
            out += "  - name: \(d.name)\n    host: \"\(d.host)\"\n    port: \(d.port)\n    user: \(d.user)\n    isa: \(d.isa)\n    profile: \(d.profile)\n"
            if let i = d.identity { out += "    identity: \"\(i)\"\n" }
            if let k = d.knownHosts { out += "    known_hosts: \"\(k)\"\n" }
        }
        return out
    }
}

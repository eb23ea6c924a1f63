import Foundation
import PerchSSH

/// The real device operations: SSH (PerchSSH, libssh2) to each device's `perch-agent`. Install
/// goes through `Deployer` (agent check, trust, resumable upload, install unless already active,
/// bench), so a resumed rollout never installs twice. The agent's install lock keeps two rollouts
/// (or a rollout and a `perch deploy`) from touching one device at once: the loser gets the
/// agent's "busy" refusal and counts that device as failed.
public enum SSHDeviceOperations {
    public struct Config: Sendable {
        public var bundlePath: String
        public var bundle: ActiveVersion
        public var publicKeyPath: String
        /// `perch-agent` binaries by ISA; a device gets the one for its ISA.
        public var agentBinaries: [String: String]
        /// Device name → the ISA its profile declares (`cpu.isa`): picks its agent binary, and its
        /// agent must report it. A device missing here takes `uname -m` (wrong under qemu-user).
        public var deviceISA: [String: String] = [:]
        /// Bundles by target ISA for a fleet of several ISAs (same model version); a device whose
        /// ISA has none here gets `bundlePath`.
        public var bundleByISA: [String: String] = [:]
        public var runs = 50
        public var warmup = 5
        public var healthTimeout: Double = 300
        public var connectTimeout: Double = 10
        public var attempts = 2

        public init(bundlePath: String, bundle: ActiveVersion, publicKeyPath: String, agentBinaries: [String: String]) {
            self.bundlePath = bundlePath
            self.bundle = bundle
            self.publicKeyPath = publicKeyPath
            self.agentBinaries = agentBinaries
        }
    }

    /// Runs the device's agent: through its launcher when it has one (`PERCH_AGENT_LAUNCHER`, e.g.
    /// qemu-user on an emulated device), as `Deployer` does.
    static let agentPrefix = #"PH="${PERCH_HOME:-$HOME/.perch}"; ${PERCH_AGENT_LAUNCHER:-} "$PH/bin/perch-agent" --state "${PERCH_AGENT_STATE:-$PH/state}" "#

    static func target(_ d: FleetDevice, _ c: Config) -> (SSHTarget, SSHOptions) {
        var o = SSHOptions(knownHostsPath: d.knownHosts)
        o.identityFiles = [d.identity].compactMap { $0 }
        o.connectTimeout = c.connectTimeout
        o.attempts = c.attempts
        o.hostKeyPolicy = .strict
        return (SSHTarget(user: d.user, host: d.host, port: d.port), o)
    }

    /// Classifies transport and agent errors for the failure threshold.
    public static func classify(_ error: Error) -> DeviceOperationError {
        if let e = error as? DeviceOperationError { return e }
        if let e = error as? SSHError {
            switch e {
            case .remoteCommand, .sftp, .hashMismatch, .badInput: return DeviceOperationError(.device, e.description)
            default: return DeviceOperationError(.unreachable, e.description)
            }
        }
        return DeviceOperationError(.device, String(describing: error))
    }

    /// Runs `perch-agent ARGS` and returns its JSON object; non-zero exit is a device failure
    /// carrying the agent's message.
    static func agent(_ d: FleetDevice, _ c: Config, _ args: String, timeout: Double) throws -> [String: Any] {
        let (t, o) = target(d, c)
        let client = SSHClient(target: t, options: o)
        defer { client.close() }
        do {
            let r = try client.perform { s throws(SSHError) in try s.exec(agentPrefix + args, timeout: timeout) }
            let obj = (try? JSONSerialization.jsonObject(with: Data(r.stdout))) as? [String: Any]
            guard r.status == 0, let obj else {
                let msg = ((obj?["error"] as? [String: Any])?["message"] as? String) ?? r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                throw DeviceOperationError(.device, "perch-agent \(args.split(separator: " ").first ?? "") exited \(r.status): \(msg)")
            }
            return obj
        } catch {
            throw classify(error)
        }
    }

    static func version(_ o: Any?) -> ActiveVersion? {
        guard let a = o as? [String: Any], let n = a["name"] as? String, let v = a["version"] as? String else { return nil }
        return ActiveVersion(name: n, version: v)
    }

    static func p90(_ bench: [String: Any]) throws -> Double {
        guard let l = bench["latency_ms"] as? [String: Any], let p = (l["p90"] as? NSNumber)?.doubleValue else {
            throw DeviceOperationError(.device, "the agent's bench JSON has no latency_ms.p90")
        }
        return p
    }

    public static func make(_ c: Config) -> DeviceOperations {
        DeviceOperations(
            status: { d in version(try agent(d, c, "status", timeout: 30)["active"]) },
            bench: { d in try p90(agent(d, c, "bench --runs \(c.runs) --warmup \(c.warmup)", timeout: c.healthTimeout)) },
            install: { d in
                let (t, o) = target(d, c)
                let bundlePath = c.deviceISA[d.name].flatMap { c.bundleByISA[$0] } ?? c.bundlePath
                var r = Deployer.Request(deviceName: d.name, target: t, ssh: o, bundlePath: bundlePath, modelName: c.bundle.name,
                                         modelVersion: c.bundle.version, publicKeyPath: c.publicKeyPath, agentBinaries: c.agentBinaries)
                r.profileISA = c.deviceISA[d.name]
                r.runs = c.runs
                r.warmup = c.warmup
                r.benchTimeout = c.healthTimeout
                do {
                    let rep = try Deployer().deploy(r)
                    return InstallOutcome(version: c.bundle, p90: try p90(rep.bench),
                                          evalAgreement: (rep.bench["eval_agreement"] as? NSNumber)?.doubleValue,
                                          isa: rep.bench["isa"] as? String)
                } catch let e as AgentFailure {
                    throw DeviceOperationError(.device, e.description)
                } catch {
                    throw classify(error)
                }
            },
            rollback: { d, previous in
                let to = previous.map { " --to " + shellQuote($0.version) } ?? ""
                return version(try agent(d, c, "rollback" + to, timeout: 60)["to"])
            })
    }
}

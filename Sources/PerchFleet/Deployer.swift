import Foundation
import PerchSSH

/// A refusal or failure reported by `perch-agent` on the device (its exit code follows
/// CONTRACTS.md: 2 bad input, 3 device problem, 4 integrity refusal, 70 internal).
public struct AgentFailure: Error, CustomStringConvertible {
    public var command: String
    public var code: Int32
    public var message: String
    public var description: String { "the device's agent refused '\(command)': \(message)" }
}

/// One deploy: agent check/upgrade, trust, upload, install, bench. Every step talks to the device
/// through `SSHClient`, so transient network trouble is retried and uploads resume.
public final class Deployer {
    public struct Request {
        public var deviceName: String
        public var target: SSHTarget
        public var ssh: SSHOptions
        public var bundlePath: String
        public var modelName: String
        public var modelVersion: String
        /// The signer's public key (`perch-ed25519 …`), trusted on the device before install.
        public var publicKeyPath: String
        /// `perch-agent` binaries by ISA (`x86_64`, `aarch64`, `armv7`).
        public var agentBinaries: [String: String]
        public var runs = 100
        public var warmup = 10
        public var benchTimeout: Double = 600

        public init(deviceName: String, target: SSHTarget, ssh: SSHOptions, bundlePath: String, modelName: String,
                    modelVersion: String, publicKeyPath: String, agentBinaries: [String: String]) {
            self.deviceName = deviceName
            self.target = target
            self.ssh = ssh
            self.bundlePath = bundlePath
            self.modelName = modelName
            self.modelVersion = modelVersion
            self.publicKeyPath = publicKeyPath
            self.agentBinaries = agentBinaries
        }
    }

    public struct Report {
        public var device: String
        public var isa: String
        public var agentVersion: String
        public var agentUpgraded: Bool
        public var upload: UploadResult
        public var installed: Bool
        /// The agent's bench JSON (CONTRACTS.md), parsed.
        public var bench: [String: Any]
        /// Connect, agent check, upload and install — everything but the benchmark.
        public var deploySeconds: Double
        public var seconds: Double
    }

    public var log: (String) -> Void
    public var progress: ((Int, Int) -> Void)?

    public init(log: @escaping (String) -> Void = { _ in }) { self.log = log }

    public func deploy(_ r: Request) throws -> Report {
        let start = Date()
        let client = SSHClient(target: r.target, options: r.ssh, log: log)
        defer { client.close() }
        let q = shellQuote
        let log = self.log

        let keyName = (r.publicKeyPath as NSString).lastPathComponent
        let bundleName = r.modelName + "-" + r.modelVersion + ".perch"
        guard let bundleSHA = sha256Hex(ofFile: r.bundlePath), let keySHA = sha256Hex(ofFile: r.publicKeyPath) else {
            throw FleetError.badInput("cannot read '\(r.bundlePath)' or '\(r.publicKeyPath)'", hint: "check the paths")
        }

        // One round trip: where Perch lives on the device, its ISA, the agent's version and hash,
        // what the device already has of this key and bundle, and the active version.
        let probeScript = """
            PH="${PERCH_HOME:-$HOME/.perch}"; A="$PH/bin/perch-agent"; S="${PERCH_AGENT_STATE:-$PH/state}"
            printf 'home %s\\nstate %s\\narch %s\\n' "$PH" "$S" "$(uname -m)"
            printf 'key_sha %s\\n' "$(sha256sum -- "$PH/keys/\(keyName)" 2>/dev/null | cut -d' ' -f1)"
            printf 'bundle_sha %s\\n' "$(sha256sum -- "$PH/incoming/\(bundleName)" 2>/dev/null | cut -d' ' -f1)"
            if [ -x "$A" ]; then
              printf 'agent %s\\n' "$("$A" version 2>/dev/null | tr -d '\\n')"
              printf 'agent_sha %s\\n' "$(sha256sum -- "$A" | cut -d' ' -f1)"
              printf 'status %s\\n' "$("$A" --state "$S" status 2>/dev/null | tr -d '\\n')"
            fi
            """
        let probe = try client.perform { s throws(SSHError) in try s.run(probeScript) }
        var facts: [String: String] = [:]
        for line in probe.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { facts[parts[0]] = parts[1] }
        }
        guard let home = facts["home"], let stateDir = facts["state"], let arch = facts["arch"] else {
            throw SSHError.remoteCommand(command: "probe", status: 0, stderr: "unexpected answer: " + probe)
        }
        let isa = Deployer.isa(uname: arch)
        let agentPath = home + "/bin/perch-agent"
        let agent = q(agentPath) + " --state " + q(stateDir)

        // The agent: install or upgrade it from the local binary for the device's ISA.
        var agentVersion = Deployer.jsonField(facts["agent"] ?? "", "agent_version") ?? ""
        var upgraded = false
        if let localAgent = r.agentBinaries[isa] {
            let localSHA = sha256Hex(ofFile: localAgent)
            let localVersion = Deployer.localAgentVersion(localAgent)
            let remoteNewer = !agentVersion.isEmpty && localVersion != nil && Deployer.compareVersions(agentVersion, localVersion!) > 0
            if facts["agent_sha"] != localSHA && !remoteNewer {
                log(agentVersion.isEmpty ? "installing perch-agent on \(r.deviceName)" : "upgrading perch-agent \(agentVersion) on \(r.deviceName)")
                _ = try client.perform { s throws(SSHError) in try s.upload(localAgent, to: agentPath, mode: 0o755) }
                let v = try client.perform { s throws(SSHError) in try s.run(q(agentPath) + " version") }
                agentVersion = Deployer.jsonField(v, "agent_version") ?? "?"
                upgraded = true
            }
        } else if agentVersion.isEmpty {
            throw SSHError.badInput("the device is \(isa) and has no perch-agent, and there is no perch-agent binary for \(isa) here — build one with 'perch agent build --isa \(isa)' and put it beside perch as perch-agent-\(isa)")
        }

        // Trust the signer, upload the bundle, install unless it is already the active version.
        let keyRemote = home + "/keys/" + keyName
        let bundleRemote = home + "/incoming/" + bundleName
        let active = Deployer.activeVersion(facts["status"] ?? "")
        let upToDate = !upgraded && facts["key_sha"] == keySHA && facts["bundle_sha"] == bundleSHA
            && active?.name == r.modelName && active?.version == r.modelVersion
        var upload = UploadResult(bytesSent: 0, size: (try? FileManager.default.attributesOfItem(atPath: r.bundlePath)[.size] as? Int) ?? 0,
                                  unchanged: true, resumedFrom: 0, sha256: bundleSHA, seconds: 0)
        var installed = false
        if !upToDate {
            if facts["key_sha"] != keySHA {
                _ = try client.perform { s throws(SSHError) in try s.upload(r.publicKeyPath, to: keyRemote) }
            }
            upload = try client.perform { s throws(SSHError) in try s.upload(r.bundlePath, to: bundleRemote, progress: self.progress) }
            let install: ExecResult? = try client.perform { s throws(SSHError) -> ExecResult? in
                // Checked on every attempt, so a retry after a lost connection never installs twice.
                let status = try s.exec(agent + " trust " + q(keyRemote) + " >/dev/null && " + agent + " status")
                let now = Deployer.activeVersion(status.stdoutText)
                if status.status == 0, now?.name == r.modelName, now?.version == r.modelVersion, upload.unchanged { return nil }
                return try s.exec(agent + " install " + q(bundleRemote), timeout: 300)
            }
            if let result = install, result.status != 0 {
                throw AgentFailure(command: "install", code: result.status,
                                   message: Deployer.jsonField(result.stdoutText, "message") ?? result.stderr)
            }
            installed = install != nil
        }
        let deploySeconds = Date().timeIntervalSince(start)
        let benchOut = try client.perform { s throws(SSHError) in
            try s.exec(agent + " bench --runs \(r.runs) --warmup \(r.warmup)", timeout: r.benchTimeout)
        }
        guard benchOut.status == 0,
              let bench = try? JSONSerialization.jsonObject(with: Data(benchOut.stdout)) as? [String: Any] else {
            throw AgentFailure(command: "bench", code: benchOut.status, message: Deployer.jsonField(benchOut.stdoutText, "message") ?? benchOut.stderr)
        }
        return Report(device: r.deviceName, isa: isa, agentVersion: agentVersion, agentUpgraded: upgraded, upload: upload,
                      installed: installed, bench: bench, deploySeconds: deploySeconds, seconds: Date().timeIntervalSince(start))
    }

    // MARK: helpers

    public static func isa(uname: String) -> String {
        switch uname {
        case "aarch64", "arm64": return "aarch64"
        case let m where m.hasPrefix("armv7") || m.hasPrefix("armv8l"): return "armv7"
        case "x86_64", "amd64": return "x86_64"
        default: return uname
        }
    }

    static func sha256(ofFile path: String) throws -> String {
        let r = TestFleet.run(["sha256sum", "--", path])
        guard r.status == 0, let h = r.output.split(separator: " ").first else {
            throw FleetError.badInput("cannot read '\(path)'", hint: "check the path")
        }
        return String(h)
    }

    static func localAgentVersion(_ path: String) -> String? {
        jsonField(TestFleet.run([path, "version"]).output, "agent_version")
    }

    static func jsonField(_ text: String, _ key: String) -> String? {
        guard let d = text.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return nil }
        if let v = o[key] as? String { return v }
        if let e = o["error"] as? [String: Any], let v = e[key] as? String { return v }
        return nil
    }

    static func activeVersion(_ statusJSON: String) -> (name: String, version: String)? {
        guard let d = statusJSON.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
              let a = o["active"] as? [String: Any], let n = a["name"] as? String, let v = a["version"] as? String else { return nil }
        return (n, v)
    }

    static func compareVersions(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let p = i < x.count ? x[i] : 0, q = i < y.count ? y[i] : 0
            if p != q { return p < q ? -1 : 1 }
        }
        return 0
    }
}

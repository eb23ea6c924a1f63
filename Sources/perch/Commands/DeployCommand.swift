import ArgumentParser
import Crypto
import Foundation
import PerchAgentBuild
import PerchBundle
import PerchEngine
import PerchFleet
import PerchGraph
import PerchProfiles
import PerchSSH

/// `perch deploy MODEL.onnx|B.perch --host [user@]host[:port] --profile P`
struct DeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Pack, push, install and benchmark a model on one device over SSH.",
        discussion: """
            Given an ONNX model it imports and packs it (signed with ~/.config/perch/perch-signing.key, \
            made on first use, or --sign-key). On the device it installs or upgrades perch-agent \
            (from the binaries beside perch), trusts the signing key, uploads the bundle (skipped when \
            unchanged, resumed after a dropped connection), installs it and benchmarks it. \
            Exit 1 when the p90 latency misses the profile's budgets.latency_ms; exit 3 for network, \
            authentication and host key problems.
            """
    )

    @Argument(help: "An ONNX model or a bundle (.perch).") var model: String
    @OptionGroup var target: DeviceOptions
    @Option(help: "Model version for the bundle (dot-separated integers).") var modelVersion = "1.0.0"
    @Option(help: "Timed runs of the benchmark on the device.") var runs = 100
    @Option(help: "Warm-up runs.") var warmup = 10
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let report = try DeployFlow.run(model: model, options: target, modelVersion: modelVersion, runs: runs, warmup: warmup, json: json)
        if !report.withinBudget { throw ExitCode(1) }
    }
}

/// Where and how to reach a device, and what to deploy with: deploy and demo.
struct DeviceOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Device profile: a bundled name, 'host', or a YAML file (default: the inventory's).") var profile: String?
    @Option(help: "Bundle signing key (default: ~/.config/perch/perch-signing.key, created on first use).") var signKey: String?

    func validate() throws {
        if connection.host != nil && profile == nil { throw ValidationError("--host needs --profile") }
    }
}

struct DeployOutcome {
    var withinBudget: Bool
}

enum DeployFlow {
    static func run(model: String, options o: DeviceOptions, modelVersion: String, runs: Int, warmup: Int, json: Bool) throws -> DeployOutcome {
        // The device.
        let device = try o.connection.resolve()
        let (name, target, ssh) = (device.name, device.target, device.ssh)
        let profile = try ProfileLoader().load(nameOrFile: o.profile ?? device.inventoryProfile ?? "host")

        // The bundle.
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("perch-deploy-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let key = try SigningKey.load(o.signKey)
        let publicPath = work + "/perch-" + key.id + ".pub"
        try key.publicLine.write(toFile: publicPath, atomically: true, encoding: .utf8)
        var bundlePath = model
        var modelName: String
        var version = modelVersion
        let bytes = [UInt8](FileManager.default.contents(atPath: model) ?? Data())
        if bytes.isEmpty { throw CLIError(.badInput, "model '\(model)' does not exist or is empty", hint: "check the path") }
        if model.hasSuffix(".perch") {
            let verified = try BundleVerifier.verify(bytes, trustedKeys: [key.secret.publicKey])
            modelName = verified.manifest.modelName
            version = verified.manifest.modelVersion
        } else {
            let graph = try ModelLoading.load(model)
            let session = try Session(graph: graph)
            var feeds: [String: Tensor] = [:]
            for input in session.inputs { feeds[input.name] = Tensor(dtype: input.type.dtype, shape: input.type.exampleShape()) }
            try session.prepare(feeds: feeds)
            modelName = ModelLoading.displayName(graph, path: model)
            let perchm = work + "/" + modelName + ".perchm"
            FileManager.default.createFile(atPath: perchm, contents: Data(PerchModelFile.encode(session.graph)))
            // `created` from the source model, so the same model packs to the same bytes.
            let packed = try BundlePacker.pack(.init(
                modelPath: perchm, modelName: modelName, modelVersion: modelVersion, profile: profile.name,
                targetISA: profile.cpu.isa.rawValue, engineVersion: Perch.version, signingKey: key.secret,
                created: try BundlePacker.createdTime(modelPath: model)))
            bundlePath = work + "/" + modelName + ".perch"
            FileManager.default.createFile(atPath: bundlePath, contents: Data(packed))
        }
        let bundleSize = (try? FileManager.default.attributesOfItem(atPath: bundlePath)[.size] as? Int) ?? 0

        var request = Deployer.Request(deviceName: name, target: target, ssh: ssh, bundlePath: bundlePath, modelName: modelName,
                                       modelVersion: version, publicKeyPath: publicPath, agentBinaries: AgentBinaries.all)
        request.runs = runs
        request.profileISA = profile.cpu.isa.rawValue
        // No agent beside perch for the device's ISA: cross-build one (cached) when the sources are here.
        request.agentProvider = { isa in
            guard let target = AgentISA(name: isa), target != AgentISA.host, AgentBuilder.findSources() != nil else { return nil }
            return try AgentBinaries.crossBuilt(target)
        }
        request.warmup = warmup
        let deployer = Deployer(log: { status($0) })
        if isatty(2) != 0 {
            deployer.progress = { sent, total in
                let pct = total > 0 ? sent * 100 / total : 100
                let bar = String(repeating: "#", count: pct / 5) + String(repeating: ".", count: 20 - pct / 5)
                FileHandle.standardError.write(Data("\rupload [\(bar)] \(pct)% of \(formatBytes(total))\(sent == total ? "\n" : "")".utf8))
            }
        }
        let r = try deployer.deploy(request)

        // The table.
        let lat = r.bench["latency_ms"] as? [String: Any] ?? [:]
        func ms(_ k: String) -> Double { (lat[k] as? NSNumber)?.doubleValue ?? .nan }
        let peak = (r.bench["peak_memory_bytes"] as? NSNumber)?.intValue ?? 0
        let budget = profile.budgets.latencyMS
        let within = budget.map { ms("p90") <= $0 } ?? true
        if json {
            print(JSONValue.object([
                ("device", .string(name)), ("host", .string(target.description)), ("isa", .string(r.isa)),
                ("isa_features", .string(r.bench["isa"] as? String ?? r.isa)), ("model", .string(modelName)),
                ("version", .string(version)), ("precision", .string("fp32")), ("profile", .string(profile.name)),
                ("bundle_bytes", .int(bundleSize)), ("uploaded_bytes", .int(r.upload.bytesSent)),
                ("upload_skipped", .bool(r.upload.unchanged)), ("resumed_from", .int(r.upload.resumedFrom)),
                ("installed", .bool(r.installed)), ("agent_version", .string(r.agentVersion)), ("agent_upgraded", .bool(r.agentUpgraded)),
                ("runs", .int(runs)),
                ("latency_ms", .object([("p50", .double(ms("p50"))), ("p90", .double(ms("p90"))), ("p99", .double(ms("p99")))])),
                ("peak_memory_bytes", .int(peak)), ("budget_ms", budget.map { .double($0) } ?? .null),
                ("within_budget", .bool(within)), ("deploy_seconds", .double(r.deploySeconds)), ("seconds", .double(r.seconds)),
            ]).text)
        } else {
            let budgetText = budget.map { (within ? "ok ≤ " : "MISSED > ") + fmt($0) + " ms" } ?? "no budget"
            let rows = [
                ["device", "ISA", "model", "precision", "size", "p50", "p90", "p99", "peak memory", "budget (p90)"],
                [name, r.isa, modelName + " " + version, "fp32", formatBytes(bundleSize), fmt(ms("p50")) + " ms",
                 fmt(ms("p90")) + " ms", fmt(ms("p99")) + " ms", formatBytes(peak), budgetText],
            ]
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
            for row in rows {
                print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
            let up = r.upload.unchanged ? "bundle unchanged on the device, nothing sent"
                : "sent \(formatBytes(r.upload.bytesSent))" + (r.upload.resumedFrom > 0 ? " (resumed at \(formatBytes(r.upload.resumedFrom)))" : "")
            status("\(up); \(r.installed ? "installed" : "already active"); deploy \(String(format: "%.2f", r.deploySeconds)) s, with bench \(String(format: "%.2f", r.seconds)) s")
        }
        return DeployOutcome(withinBudget: within)
    }

    static func fmt(_ v: Double) -> String { v.isFinite ? String(format: v < 10 ? "%.3f" : "%.1f", v) : "-" }
}

func formatBytes(_ n: Int) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1 << 20 { return String(format: "%.1f KiB", Double(n) / 1024) }
    return String(format: "%.1f MiB", Double(n) / 1048576)
}

/// The user's bundle signing key: --sign-key, else ~/.config/perch/perch-signing.key, which is
/// generated (and announced) on first use.
struct SigningKey {
    var secret: Curve25519.Signing.PrivateKey
    var publicLine: String { BundleKeys.publicPrefix + " " + secret.publicKey.rawRepresentation.base64EncodedString() + "\n" }
    /// Short name for the key on devices: hex of the first 8 bytes of the public key.
    var id: String { secret.publicKey.rawRepresentation.prefix(8).map { String(format: "%02x", $0) }.joined() }

    static func load(_ path: String?) throws -> SigningKey {
        if let p = path { return SigningKey(secret: try BundleKeys.loadSecret(p)) }
        let env = ProcessInfo.processInfo.environment
        let config = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.config")
        let dir = config + "/perch"
        let file = dir + "/" + BundleKeys.secretFileName
        if !FileManager.default.fileExists(atPath: file) {
            try BundleKeys.generate(in: dir)
            status("perch: generated a bundle signing key in \(dir) (keep \(BundleKeys.secretFileName) secret; devices trust \(BundleKeys.publicFileName))")
        }
        return SigningKey(secret: try BundleKeys.loadSecret(file))
    }
}

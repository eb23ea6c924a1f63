import ArgumentParser
import Crypto
import Foundation
import PerchAgentBuild
import PerchBundle
import PerchFleet
import PerchProfiles

/// `perch rollout deploy/FLEET.yaml --bundle B.perch`
struct RolloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Roll a bundle out to a fleet: canary, then waves, with gates and automatic rollback.",
        discussion: """
            Stages come from the inventory's policy (deploy/README.md). Each device: status, a bench of \
            the previous version, upload + install + bench of the new one, then the gates. When failed / \
            attempted devices exceed max_failure_percent after a stage, the rollout halts and (on_failure: \
            rollback) every updated device goes back to its previous version. Progress is saved in a state \
            file; re-running the same command resumes. SIGINT/SIGTERM: no new devices start, in-flight ones \
            finish, the state is saved. Exit codes: 0 completed, 1 halted (a gate failed), 3 halted by \
            unreachable or failing devices only, 2 bad input, 130 interrupted.
            """
    )

    @Argument(help: "The inventory (deploy/*.yaml).") var inventory: String
    @Option(help: "The signed bundle to roll out. A fleet of several ISAs takes one per ISA (repeat --bundle; same model name and version): each device gets the bundle whose target ISA is its profile's cpu.isa.")
    var bundle: [String] = []
    @Option(help: "Only this part of the fleet: i/N (1-based; for CI matrix jobs).") var shard: String?
    @Flag(help: "Print the plan and exit.") var dryRun = false
    @Option(help: "Rollout state file (default: beside the inventory, INVENTORY[.shard-i-of-N].rollout.json).") var state: String?
    @Option(name: .customLong("public-key"), help: "The signer's public key (perch-signing.pub); verified locally, trusted on devices (default: the one beside ~/.config/perch/perch-signing.key).") var publicKey: String?
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write a JUnit XML report here (one test case per device).") var junit: String?
    @Option(help: "Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY; appended to).") var summary: String?
    @Option(help: "Timed runs of each benchmark on the device.") var runs = 50
    @Option(help: "Warm-up runs.") var warmup = 5

    func run() throws {
        let inv = try Inventory.load(inventory)
        let shard = try shard.map(Shard.parse) ?? .all
        let devices = inv.devices.filter { shard.contains($0.name) }
        let stages = RolloutPlanner.stages(devices: devices.map(\.name), policy: inv.policy)

        // The bundle: verified with the signer's key, which devices will trust.
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("perch-rollout-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let keyPath: String
        let key: Curve25519.Signing.PublicKey
        if let p = publicKey {
            keyPath = p
            key = try BundleKeys.loadPublic(p)
        } else {
            let signing = try SigningKey.load(nil)
            keyPath = work + "/perch-" + signing.id + ".pub"
            try signing.publicLine.write(toFile: keyPath, atomically: true, encoding: .utf8)
            key = signing.secret.publicKey
        }
        guard !bundle.isEmpty else { throw CLIError(.badInput, "no --bundle given", hint: "pass the signed bundle: --bundle B.perch") }
        var first: ActiveVersion?
        var bundleByISA: [String: String] = [:]
        var shas: [String] = []
        for path in bundle {
            guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
                throw CLIError(.badInput, "bundle '\(path)' does not exist or is empty", hint: "make one with 'perch pack'")
            }
            let verified = try BundleVerifier.verify([UInt8](data), trustedKeys: [key])
            let version = ActiveVersion(name: verified.manifest.modelName, version: verified.manifest.modelVersion)
            if let t = first, t != version {
                throw CLIError(.badInput, "bundle '\(path)' is \(version), another --bundle is \(t)", hint: "roll out one model version at a time (one bundle per ISA)")
            }
            let isa = verified.manifest.targetISA
            if let other = bundleByISA[isa] {
                throw CLIError(.badInput, "bundles '\(other)' and '\(path)' are both for \(isa)", hint: "pass one bundle per ISA")
            }
            first = version
            bundleByISA[isa] = path
            shas.append(SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined())
        }
        let target = first!
        // The state belongs to this set of bundles (one bundle: its own SHA-256, as before).
        let sha = shas.count == 1 ? shas[0]
            : SHA256.hash(data: Data(shas.sorted().joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()

        if dryRun {
            print(RolloutPlanner.describe(stages: stages, inventory: inv, shard: shard, bundle: target.description), terminator: "")
            return
        }
        if devices.isEmpty { throw CLIError(.badInput, "shard \(shard) of the inventory has no devices", hint: "use fewer shards") }

        // Latency budgets from each device's profile.
        var budgets: [String: Double] = [:]
        var profiles: [String: DeviceProfile] = [:]
        let loader = ProfileLoader()
        let base = ((inv.path ?? inventory) as NSString).deletingLastPathComponent
        for d in devices {
            if profiles[d.profile] == nil {
                let rel = base + "/" + d.profile
                let arg = !d.profile.hasPrefix("/") && (d.profile.hasSuffix(".yaml") || d.profile.hasSuffix(".yml")) && FileManager.default.fileExists(atPath: rel) ? rel : d.profile
                profiles[d.profile] = try loader.load(nameOrFile: arg)
            }
            if let b = profiles[d.profile]?.budgets.latencyMS { budgets[d.name] = b }
        }

        // Each device's agent binary by its profile's ISA: beside perch, else cross-built (`perch
        // agent build`, cached) once here, before any device starts.
        var agents = AgentBinaries.all
        var deviceISA: [String: String] = [:]
        for d in devices { if let isa = profiles[d.profile]?.cpu.isa.rawValue { deviceISA[d.name] = isa } }
        if bundleByISA.count > 1 || deviceISA.values.contains(where: { $0 != bundleByISA.keys.first }) {
            let missing = devices.filter { bundleByISA[deviceISA[$0.name] ?? ""] == nil }
            if !missing.isEmpty {
                let isas = Set(missing.compactMap { deviceISA[$0.name] }).sorted().joined(separator: ", ")
                throw CLIError(.badInput, "no bundle for \(isas) (device(s) \(missing.prefix(4).map(\.name).joined(separator: ", "))\(missing.count > 4 ? ", …" : ""))",
                               hint: "pack one with 'perch pack --profile <their profile>' (or --isa) and add --bundle for it")
            }
        }
        for isaName in Set(deviceISA.values).sorted() where agents[isaName] == nil {
            guard let isa = AgentISA(name: isaName) else { continue }
            do { agents[isaName] = try AgentBinaries.crossBuilt(isa) } catch {
                // Devices that already run a current agent do not need one; the others fail with
                // the deploy's message naming what to build.
                status("perch: warning: no \(isaName) perch-agent to install on devices that lack one: \(error)")
            }
        }
        var config = SSHDeviceOperations.Config(bundlePath: bundle[0], bundle: target, publicKeyPath: keyPath, agentBinaries: agents)
        config.deviceISA = deviceISA
        config.bundleByISA = bundleByISA
        config.runs = runs
        config.warmup = warmup
        config.healthTimeout = inv.policy.healthTimeout
        let statePath = state ?? RolloutState.defaultPath(inventory: inventory, shard: shard)
        let rollout = try Rollout(inventory: inv, stages: stages, bundle: target, bundleSHA256: sha, shard: shard,
                                  operations: SSHDeviceOperations.make(config), budgets: budgets, statePath: statePath)
        let live = isatty(2) != 0 && ProcessInfo.processInfo.environment["CI"] != "true"
        let printer = ProgressPrinter(live: live, total: devices.count)
        rollout.log = { printer.line($0) }
        rollout.progress = { printer.update($0) }

        // SIGINT/SIGTERM: stop starting devices; in-flight ones finish; state is saved.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                printer.line("received \(sig == SIGINT ? "SIGINT" : "SIGTERM"): finishing in-flight devices, then saving state")
                rollout.requestStop()
            }
            s.resume()
            sources.append(s)
        }
        let start = Date()
        printer.line("rollout of \(target) to \(devices.count) device(s) in \(stages.count) stage(s); state: \(statePath)")
        let outcome = rollout.run()
        printer.finish()
        let report = RolloutReport(inventory: inv, stages: stages, state: rollout.state, outcome: outcome, seconds: Date().timeIntervalSince(start))
        if let j = json { try report.json().write(toFile: j, atomically: true, encoding: .utf8) }
        if let j = junit { try report.junit().write(toFile: j, atomically: true, encoding: .utf8) }
        if let s = summary {
            let text = report.markdown()
            if let h = FileHandle(forWritingAtPath: s) {
                h.seekToEndOfFile()
                h.write(Data(text.utf8))
                try? h.close()
            } else {
                try text.write(toFile: s, atomically: true, encoding: .utf8)
            }
        }
        _ = sources
        switch outcome {
        case .completed:
            let failed = rollout.state.devices.values.filter { $0.failure != nil }.count
            status("rollout completed: \(devices.count - failed) of \(devices.count) device(s) on \(target)" + (failed > 0 ? ", \(failed) failed (within max_failure_percent)" : ""))
        case .halted(let reason, _):
            status("perch: error: rollout halted: \(reason) — see the report; fix the bundle or the devices, then delete \(statePath) to try again")
        case .interrupted:
            status("perch: rollout interrupted; state saved in \(statePath) — re-run the same command to resume")
        }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

/// Live progress on a terminal (one status line redrawn under the log), plain log lines in CI.
final class ProgressPrinter: @unchecked Sendable {
    let live: Bool
    let total: Int
    private let lock = NSLock()
    private var statusLine = ""

    init(live: Bool, total: Int) {
        self.live = live
        self.total = total
    }

    func line(_ s: String) {
        lock.withLock {
            let stamp = ISO8601DateFormatter().string(from: Date())
            let text = live ? "\r\u{1B}[2K" + s + "\n" + statusLine : "[\(stamp)] " + s + "\n"
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    func update(_ state: RolloutState) {
        guard live else { return }
        var c: [DeviceRolloutStatus: Int] = [:]
        for r in state.devices.values { c[r.status, default: 0] += 1 }
        let done = (c[.installed] ?? 0) + (c[.failed] ?? 0) + (c[.rolledBack] ?? 0)
        let width = 24
        let filled = total == 0 ? width : done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        lock.withLock {
            statusLine = "[\(bar)] \(done)/\(total)  installing \(c[.installing] ?? 0)  installed \(c[.installed] ?? 0)  failed \(c[.failed] ?? 0)  rolled back \(c[.rolledBack] ?? 0)"
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + statusLine).utf8))
        }
    }

    func finish() {
        guard live else { return }
        lock.withLock { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

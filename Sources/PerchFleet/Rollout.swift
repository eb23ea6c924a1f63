import Foundation

/// The version a device runs, as its agent reports it.
public struct ActiveVersion: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var version: String
    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }
    public var description: String { name + " " + version }

    /// Reads `description` back (`name version`).
    public init?(parsing text: String) {
        guard let space = text.lastIndex(of: " ") else { return nil }
        self.init(name: String(text[..<space]), version: String(text[text.index(after: space)...]))
    }
}

/// What installing (and benchmarking) the new version on one device gave.
public struct InstallOutcome: Sendable, Equatable {
    public var version: ActiveVersion
    public var p90: Double
    /// Share of eval samples that agreed with the references, when measured (the agent's bench
    /// `eval_agreement`; nil when the bundle has no reference outputs).
    public var evalAgreement: Double?
    /// The ISA (and features) the device's agent reported while benchmarking, e.g. `aarch64+neon`.
    public var isa: String?
    public init(version: ActiveVersion, p90: Double, evalAgreement: Double? = nil, isa: String? = nil) {
        self.version = version
        self.p90 = p90
        self.evalAgreement = evalAgreement
        self.isa = isa
    }
}

/// An error of a device operation, classified for the failure threshold and the exit code.
public struct DeviceOperationError: Error, CustomStringConvertible, Sendable {
    public var kind: FailureKind
    public var message: String
    public init(_ kind: FailureKind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// What a rollout does to one device. The real ones talk SSH to `perch-agent`
/// (`SSHDeviceOperations`); unit tests of the planner and gates pass fakes. Each closure may be
/// called from several threads at once (for different devices). Errors that are not a
/// `DeviceOperationError` count as `.device` failures.
public struct DeviceOperations: Sendable {
    /// The active version (nil: none installed).
    public var status: @Sendable (FleetDevice) throws -> ActiveVersion?
    /// p90 latency (ms) of the active version.
    public var bench: @Sendable (FleetDevice) throws -> Double
    /// Upload and install the bundle (a no-op when it is already active), then benchmark it.
    public var install: @Sendable (FleetDevice) throws -> InstallOutcome
    /// Switch back to `previous` (the version active before the rollout; nil: the agent's
    /// next older one); returns what is active afterwards.
    public var rollback: @Sendable (FleetDevice, ActiveVersion?) throws -> ActiveVersion?

    public init(status: @escaping @Sendable (FleetDevice) throws -> ActiveVersion?,
                bench: @escaping @Sendable (FleetDevice) throws -> Double,
                install: @escaping @Sendable (FleetDevice) throws -> InstallOutcome,
                rollback: @escaping @Sendable (FleetDevice, ActiveVersion?) throws -> ActiveVersion?) {
        self.status = status
        self.bench = bench
        self.install = install
        self.rollback = rollback
    }
}

/// How a rollout ended.
public enum RolloutOutcome: Sendable, Equatable {
    /// Every stage ran; failures stayed within the threshold.
    case completed
    /// The failure threshold was crossed; `byGates` false when every counted failure was a device
    /// or network problem (exit 3), true otherwise (exit 1).
    case halted(reason: String, byGates: Bool)
    /// SIGINT/SIGTERM: no new device was started, in-flight ones finished, the state was saved.
    case interrupted

    /// CONTRACTS.md: 0 completed · 1 halted by gates · 3 halted by unreachable/failing devices ·
    /// 130 interrupted (state saved; re-run to resume).
    public var exitCode: Int32 {
        switch self {
        case .completed: return 0
        case .halted(_, let byGates): return byGates ? 1 : 3
        case .interrupted: return 130
        }
    }
}

/// Runs a planned rollout stage by stage with at most `policy.maxParallel` devices at a time,
/// saving `state` after every device step. Thread-safe: `requestStop` may be called from a
/// signal handler's queue.
public final class Rollout: @unchecked Sendable {
    public let inventory: Inventory
    public let stages: [RolloutStage]
    public let bundle: ActiveVersion
    public let operations: DeviceOperations
    /// Profile latency budget (ms) per device name.
    public let budgets: [String: Double]
    public let statePath: String?
    /// One line per event (device started, installed, failed, stage done, halt, rollback).
    public var log: @Sendable (String) -> Void = { _ in }
    /// Called after every device step with the current state (for a live progress line).
    public var progress: @Sendable (RolloutState) -> Void = { _ in }

    private let lock = NSLock()
    private var _state: RolloutState
    private var stopRequested = false

    public var state: RolloutState { lock.withLock { _state } }

    public init(inventory: Inventory, stages: [RolloutStage], bundle: ActiveVersion, bundleSHA256: String, shard: Shard,
                operations: DeviceOperations, budgets: [String: Double], statePath: String?) throws {
        self.inventory = inventory
        self.stages = stages
        self.bundle = bundle
        self.operations = operations
        self.budgets = budgets
        self.statePath = statePath
        var s = RolloutState(bundleSHA256: bundleSHA256, bundle: bundle.description, shard: shard.description)
        if let p = statePath, let old = try RolloutState.load(p) {
            if old.bundleSHA256 == bundleSHA256 && old.shard == shard.description {
                s = old
            } else if old.phase == .running {
                throw FleetError.badInput("rollout state '\(p)' belongs to an unfinished rollout of \(old.bundle) (shard \(old.shard))",
                                          hint: "re-run that rollout to finish it, pass another --state, or delete the file to abandon it")
            }
        }
        for st in stages {
            for d in st.devices where s.devices[d] == nil {
                var r = DeviceRecord()
                r.stage = st.name
                s.devices[d] = r
            }
        }
        _state = s
    }

    /// Stop starting devices; in-flight ones finish. Safe from any thread.
    public func requestStop() { lock.withLock { stopRequested = true } }
    var stopping: Bool { lock.withLock { stopRequested } }

    private func update(_ name: String, _ change: (inout DeviceRecord) -> Void) {
        let snapshot: RolloutState = lock.withLock {
            change(&_state.devices[name, default: DeviceRecord()])
            return _state
        }
        persist(snapshot)
        progress(snapshot)
    }

    private func persist(_ s: RolloutState) {
        guard let p = statePath else { return }
        lock.withLock { try? s.save(p) }
    }

    public func run() -> RolloutOutcome {
        let initial = state
        if initial.phase == .halted {
            log("this rollout halted earlier: \(initial.haltReason ?? "")")
            return .halted(reason: initial.haltReason ?? "halted", byGates: haltedByGates(initial))
        }
        let byName = Dictionary(uniqueKeysWithValues: inventory.devices.map { ($0.name, $0) })
        for stage in stages {
            let todo = stage.devices.filter { [.pending, .installing].contains(state.devices[$0]?.status ?? .pending) }
            if todo.isEmpty { continue }
            if stopping { break }
            log("\(stage.name): \(todo.count) device(s)" + (todo.count < stage.devices.count ? " (\(stage.devices.count - todo.count) done before)" : ""))
            runParallel(todo.compactMap { byName[$0] })
            if stopping { break }
            let s = state
            let (failed, attempted) = failureCounts(s)
            let pct = attempted == 0 ? 0 : Double(failed) * 100 / Double(attempted)
            log("\(stage.name) done: \(failed) of \(attempted) attempted device(s) failed (\(fmt((pct * 10).rounded() / 10))%, limit \(fmt(inventory.policy.maxFailurePercent))%)")
            if failed > 0 && pct > inventory.policy.maxFailurePercent {
                let reason = "\(failed) of \(attempted) device(s) failed after \(stage.name) (\(fmt((pct * 10).rounded() / 10))% > max_failure_percent \(fmt(inventory.policy.maxFailurePercent)))"
                log("halting: " + reason)
                if inventory.policy.onFailure == .rollback { rollbackUpdated(byName) }
                let snapshot: RolloutState = lock.withLock {
                    _state.phase = .halted
                    _state.haltReason = reason
                    for (n, r) in _state.devices where r.status == .pending { _state.devices[n]!.action = "not started (halted)" }
                    return _state
                }
                persist(snapshot)
                return .halted(reason: reason, byGates: haltedByGates(snapshot))
            }
        }
        if stopping {
            persist(state)
            log("interrupted: in-flight devices finished, state saved; re-run the same command to resume")
            return .interrupted
        }
        let snapshot: RolloutState = lock.withLock { _state.phase = .completed; return _state }
        persist(snapshot)
        return .completed
    }

    func failureCounts(_ s: RolloutState) -> (failed: Int, attempted: Int) {
        var failed = 0, attempted = 0
        for r in s.devices.values {
            switch r.status {
            case .pending, .installing: continue
            case .installed: attempted += 1
            case .failed: attempted += 1; failed += 1
            case .rolledBack: attempted += 1; if r.failure != nil { failed += 1 }
            }
        }
        return (failed, attempted)
    }

    func haltedByGates(_ s: RolloutState) -> Bool {
        s.devices.values.contains { $0.failure == .gate }
    }

    /// Bounded parallelism: `maxParallel` workers take devices in order until none are left or
    /// a stop was requested.
    private func runParallel(_ devices: [FleetDevice]) {
        let next = Counter()
        let group = DispatchGroup()
        for _ in 0..<min(inventory.policy.maxParallel, devices.count) {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while !stopping, let i = next.take(below: devices.count) {
                    runDevice(devices[i])
                }
            }
        }
        group.wait()
    }

    private func classify(_ error: Error) -> (FailureKind, String) {
        if let e = error as? DeviceOperationError { return (e.kind, e.message) }
        return (.device, String(describing: error))
    }

    private func runDevice(_ d: FleetDevice) {
        let record = state.devices[d.name] ?? DeviceRecord()
        update(d.name) { $0.status = .installing }
        log("\(d.name): starting")
        do {
            let active = try operations.status(d)
            var previous = record.previousVersion
            var before = record.p90Before
            if previous == nil, let a = active, a != bundle {
                previous = a.description
                before = try operations.bench(d)
            }
            update(d.name) { $0.previousVersion = previous; $0.p90Before = before }
            let outcome = try operations.install(d)
            let gates = Gates.evaluate(inventory.policy.gates, p90After: outcome.p90, p90Before: before,
                                       budgetMS: budgets[d.name], agreement: outcome.evalAgreement)
            let failedGates = gates.filter { !$0.passed }
            if failedGates.isEmpty {
                update(d.name) {
                    $0.status = .installed
                    $0.newVersion = outcome.version.description
                    $0.p90After = outcome.p90
                    $0.evalAgreement = outcome.evalAgreement
                    $0.isa = outcome.isa ?? $0.isa
                    $0.gates = gates
                    $0.action = "installed"
                }
                log("\(d.name): installed \(outcome.version) p90 \(Gates.ms(outcome.p90)) ms" + (before.map { " (was \(Gates.ms($0)) ms)" } ?? "")
                    + (outcome.evalAgreement.map { ", eval agreement \(fmt($0))" } ?? "") + (outcome.isa.map { " [\($0)]" } ?? ""))
                return
            }
            let reason = "gate failed: " + failedGates.map { "\($0.name) (\($0.detail))" }.joined(separator: "; ")
            update(d.name) {
                $0.status = .failed
                $0.failure = .gate
                $0.reason = reason
                $0.newVersion = outcome.version.description
                $0.p90After = outcome.p90
                $0.evalAgreement = outcome.evalAgreement
                $0.isa = outcome.isa ?? $0.isa
                $0.gates = gates
                $0.action = "left on the new version (on_failure: halt)"
            }
            log("\(d.name): " + reason)
            if inventory.policy.onFailure == .rollback && previous != nil { rollbackDevice(d) }
        } catch {
            let (kind, message) = classify(error)
            update(d.name) {
                $0.status = .failed
                $0.failure = kind
                $0.reason = (kind == .unreachable ? "unreachable: " : "device problem: ") + message
                $0.action = "untouched"
            }
            log("\(d.name): failed: \(message)")
        }
    }

    private func rollbackDevice(_ d: FleetDevice) {
        do {
            let previous = state.devices[d.name]?.previousVersion.flatMap(ActiveVersion.init(parsing:))
            let now = try operations.rollback(d, previous)
            update(d.name) {
                $0.status = .rolledBack
                $0.action = "rolled back to \(now?.description ?? "no version")"
            }
            log("\(d.name): rolled back to \(now?.description ?? "no version")")
        } catch {
            let (_, message) = classify(error)
            update(d.name) {
                if $0.failure == nil { $0.status = .failed; $0.failure = .device }
                $0.action = "rollback failed: \(message)"
            }
            log("\(d.name): rollback failed: \(message)")
        }
    }

    /// Every device that runs the new version (installed, or failed a gate under halt) goes back.
    private func rollbackUpdated(_ byName: [String: FleetDevice]) {
        let targets = state.devices.filter { _, r in
            r.status == .installed || (r.status == .failed && r.failure == .gate)
        }.keys.sorted().compactMap { byName[$0] }
        .filter { state.devices[$0.name]?.previousVersion != nil }
        guard !targets.isEmpty else { return }
        log("rolling back \(targets.count) updated device(s)")
        let next = Counter()
        let group = DispatchGroup()
        for _ in 0..<min(inventory.policy.maxParallel, targets.count) {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while let i = next.take(below: targets.count) { rollbackDevice(targets[i]) }
            }
        }
        group.wait()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below n: Int) -> Int? {
        lock.withLock {
            guard value < n else { return nil }
            value += 1
            return value - 1
        }
    }
}

import Foundation

/// The reports of one rollout: JSON (`--json`), JUnit XML (`--junit`, one test case per device)
/// and Markdown (`--summary`, for `$GITHUB_STEP_SUMMARY`). All are built from the saved state,
/// so a resumed rollout reports every device, not only the ones of the last run.
public struct RolloutReport {
    public var inventory: Inventory
    public var stages: [RolloutStage]
    public var state: RolloutState
    public var outcome: RolloutOutcome
    public var seconds: Double

    public init(inventory: Inventory, stages: [RolloutStage], state: RolloutState, outcome: RolloutOutcome, seconds: Double) {
        self.inventory = inventory
        self.stages = stages
        self.state = state
        self.outcome = outcome
        self.seconds = seconds
    }

    /// Devices in plan order with their stage.
    var rows: [(device: FleetDevice, record: DeviceRecord)] {
        let byName = Dictionary(uniqueKeysWithValues: inventory.devices.map { ($0.name, $0) })
        return stages.flatMap { $0.devices }.compactMap { n in byName[n].map { ($0, state.devices[n] ?? DeviceRecord()) } }
    }

    var outcomeName: String {
        switch outcome {
        case .completed: return "completed"
        case .halted: return "halted"
        case .interrupted: return "interrupted"
        }
    }

    var counts: [String: Int] {
        var c: [String: Int] = [:]
        for r in rows { c[r.record.status.rawValue, default: 0] += 1 }
        return c
    }

    public func json() throws -> String {
        func num(_ v: Double?) -> Any { v.map { ($0 * 1000).rounded() / 1000 } ?? NSNull() }
        let devices: [[String: Any]] = rows.map { d, r in
            [
                "name": d.name, "host": d.host, "port": d.port, "group": d.group ?? NSNull(), "labels": d.labels,
                "stage": r.stage, "status": r.status.rawValue,
                "previous_version": r.previousVersion ?? NSNull(), "new_version": r.newVersion ?? NSNull(),
                "p90_before_ms": num(r.p90Before), "p90_after_ms": num(r.p90After),
                "eval_agreement": num(r.evalAgreement), "isa": r.isa ?? NSNull(),
                "gates": r.gates.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] },
                "failure": r.failure?.rawValue ?? NSNull(), "reason": r.reason ?? NSNull(), "action": r.action ?? NSNull(),
            ]
        }
        var halt: Any = NSNull()
        if case .halted(let reason, _) = outcome { halt = reason }
        let obj: [String: Any] = [
            "bundle": state.bundle, "bundle_sha256": state.bundleSHA256, "shard": state.shard,
            "outcome": outcomeName, "halt_reason": halt, "exit_code": Int(outcome.exitCode),
            "seconds": (seconds * 100).rounded() / 100, "counts": counts,
            "stages": stages.map { ["name": $0.name, "devices": $0.devices] },
            "devices": devices,
        ]
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func xml(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&apos;"
            default:
                if c.value < 0x20 && c != "\n" && c != "\t" { o += " " } else { o.unicodeScalars.append(c) }
            }
        }
        return o
    }

    /// JUnit XML: one `<testsuite>` per stage, one `<testcase>` per device; a failed device has a
    /// `<failure>` with the reason, a device the rollout never reached is `<skipped>`.
    public func junit() -> String {
        let x = RolloutReport.xml
        let all = rows
        let failures = all.filter { $0.record.failure != nil }.count
        let skipped = all.filter { [.pending, .installing].contains($0.record.status) }.count
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"perch rollout \(x(state.bundle))\" tests=\"\(all.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\" time=\"\(String(format: "%.2f", seconds))\">\n"
        for st in stages {
            let rs = all.filter { $0.record.stage == st.name }
            out += "  <testsuite name=\"\(x(st.name))\" tests=\"\(rs.count)\" failures=\"\(rs.filter { $0.record.failure != nil }.count)\" skipped=\"\(rs.filter { [.pending, .installing].contains($0.record.status) }.count)\">\n"
            for (d, r) in rs {
                out += "    <testcase classname=\"rollout.\(x(st.name.replacingOccurrences(of: " ", with: "_")))\" name=\"\(x(d.name))\">\n"
                if let f = r.failure {
                    out += "      <failure type=\"\(f.rawValue)\" message=\"\(x(r.reason ?? f.rawValue))\">\(x(detailText(r)))</failure>\n"
                } else if r.status == .pending || r.status == .installing {
                    out += "      <skipped message=\"\(x(r.action ?? "not reached"))\"/>\n"
                }
                out += "      <system-out>\(x(detailText(r)))</system-out>\n    </testcase>\n"
            }
            out += "  </testsuite>\n"
        }
        return out + "</testsuites>\n"
    }

    func detailText(_ r: DeviceRecord) -> String {
        var lines = ["status: \(r.status.rawValue)", "previous: \(r.previousVersion ?? "-") p90 \(msText(r.p90Before))",
                     "new: \(r.newVersion ?? "-") p90 \(msText(r.p90After))"]
        if let isa = r.isa { lines.append("isa: \(isa)") }
        if let a = r.evalAgreement { lines.append("eval agreement: \(fmt(a))") }
        lines += r.gates.map { "gate \($0.name): \($0.passed ? "pass" : "FAIL") — \($0.detail)" }
        if let a = r.action { lines.append("action: \(a)") }
        return lines.joined(separator: "\n")
    }

    func msText(_ v: Double?) -> String { v.map { Gates.ms($0) + " ms" } ?? "-" }

    /// Markdown for `$GITHUB_STEP_SUMMARY` (and GitLab job logs).
    public func markdown() -> String {
        let icon: String
        switch outcome {
        case .completed: icon = "✅"
        case .halted: icon = "🛑"
        case .interrupted: icon = "⏸️"
        }
        var out = "## \(icon) perch rollout: \(state.bundle) — \(outcomeName)\n\n"
        if case .halted(let reason, _) = outcome { out += "**Halted:** \(reason)\n\n" }
        out += "Shard \(state.shard) · \(rows.count) device(s) · " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: " · ")
        out += " · \(String(format: "%.1f", seconds)) s\n\n"
        out += "| device | isa | stage | old version | new version | p90 before | p90 after | eval agreement | gates | action |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|\n"
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        for (d, r) in rows {
            let gates = r.gates.isEmpty ? (r.reason.map { "❌ " + $0 } ?? "–")
                : r.gates.map { ($0.passed ? "✅ " : "❌ ") + $0.name }.joined(separator: "<br>")
            out += "| \(cell(d.name)) | \(cell(r.isa ?? "–")) | \(cell(r.stage)) | \(cell(r.previousVersion ?? "–")) | \(cell(r.newVersion ?? "–")) | "
            out += "\(msText(r.p90Before)) | \(msText(r.p90After)) | \(r.evalAgreement.map(fmt) ?? "–") | \(cell(gates)) | \(cell(r.action ?? r.status.rawValue)) |\n"
        }
        return out
    }
}

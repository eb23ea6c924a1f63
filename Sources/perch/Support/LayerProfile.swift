import Foundation
import PerchEngine

/// Where a model's time goes: each executed layer's mean time per run, grouped by op type.
/// Layers are the session's steps, after QDQ fusion (a fused int8 Conv shows as its own op).
struct LayerProfile {
    struct Layer {
        var name: String
        var op: String
        var ms: Double
    }

    var layers: [Layer] = []

    init(session: Session, nanoseconds: [UInt64], runs: Int) {
        guard nanoseconds.count == session.stepCount, runs > 0 else { return }
        layers = nanoseconds.indices.map { i in
            let node = session.stepNode(i)
            return Layer(name: node.name, op: node.op.rawValue, ms: Double(nanoseconds[i]) / 1e6 / Double(runs))
        }
    }

    var totalMs: Double { layers.reduce(0) { $0 + $1.ms } }

    /// (op type, ms per run, layer count), slowest first.
    var byOp: [(op: String, ms: Double, count: Int)] {
        var sums: [String: (Double, Int)] = [:]
        for l in layers { sums[l.op, default: (0, 0)].0 += l.ms; sums[l.op, default: (0, 0)].1 += 1 }
        return sums.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.ms > $1.ms }
    }

    var json: JSONValue {
        .object([
            ("total_ms", .double(totalMs)),
            ("by_op", .array(byOp.map { .object([("op", .string($0.op)), ("ms", .double($0.ms)), ("layers", .int($0.count))]) })),
            ("layers", .array(layers.map { .object([("name", .string($0.name)), ("op", .string($0.op)), ("ms", .double($0.ms))]) })),
        ])
    }

    func table(top: Int) -> String {
        let total = max(totalMs, 1e-12)
        var lines = [String(format: "per layer (mean of profiled runs): %.3f ms in %d layers", totalMs, layers.count)]
        for o in byOp {
            let padded = o.op.count < 22 ? o.op + String(repeating: " ", count: 22 - o.op.count) : o.op
            lines.append("  " + padded + String(format: " %8.3f ms %5.1f%%  (%d)", o.ms, 100 * o.ms / total, o.count))
        }
        lines.append("slowest layers:")
        for l in layers.sorted(by: { $0.ms > $1.ms }).prefix(top) {
            lines.append(String(format: "  %8.3f ms %5.1f%%  ", l.ms, 100 * l.ms / total) + l.op + " " + l.name)
        }
        return lines.joined(separator: "\n")
    }
}

import Foundation
import PerchEngine

/// Where a model's time goes: each executed layer's mean time per run (and its fastest and
/// median run), grouped by op type.
/// Layers are the session's steps, after QDQ fusion (a fused int8 Conv shows as its own op).
struct LayerProfile {
    struct Layer {
        var name: String
        var op: String
        /// Mean over the profiled runs (what the op totals add up).
        var ms: Double
        /// Fastest and median run: on a shared machine a layer's mean carries other tenants'
        /// stalls; these two compare layers, and engines, more steadily.
        var minMs: Double
        var medianMs: Double
    }

    var layers: [Layer] = []

    /// `runs`: one array per profiled run of each session step's nanoseconds.
    init(session: Session, runs: [[UInt64]]) {
        guard let first = runs.first, first.count == session.stepCount else { return }
        layers = first.indices.map { i in
            let node = session.stepNode(i)
            let times = runs.map { Double($0[i]) / 1e6 }.sorted()
            return Layer(name: node.name, op: node.op.rawValue, ms: times.reduce(0, +) / Double(times.count),
                         minMs: times[0], medianMs: times[times.count / 2])
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
            ("layers", .array(layers.map {
                .object([("name", .string($0.name)), ("op", .string($0.op)), ("ms", .double($0.ms)), ("min_ms", .double($0.minMs)),
                         ("p50_ms", .double($0.medianMs))])
            })),
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

import CPerchShims
import PerchGraph

/// GroupNormalization, MeanVarianceNormalization and LpNormalization: normalizations by
/// statistics computed over a group of elements at run time (sums in Double).
public enum MomentNormalizationOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .groupNormalization: return try prepareGroupNormalization(ctx)
        case .meanVarianceNormalization: return try prepareMeanVarianceNormalization(ctx)
        case .lpNormalization: return try prepareLpNormalization(ctx)
        default: throw ctx.unsupported("not a moment normalization")
        }
    }

    /// GroupNormalization(X [N, C, …], scale, bias) with `num_groups` G and `epsilon` (1e-5):
    /// channels split into G groups; each (n, group) normalized by its mean and biased variance,
    /// then `scale` and `bias` applied. Opset 18 gives scale and bias per group ([G]), opset 21
    /// per channel ([C]); the shapes tell which (when C = G both mean the same).
    static func prepareGroupNormalization(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let scale = try ctx.input(1)
        let bias = try ctx.input(2)
        guard x.dtype.isFloatingPoint && scale.dtype.isFloatingPoint && bias.dtype.isFloatingPoint else {
            throw ctx.unsupported("input type " + x.dtype.name)
        }
        guard x.rank >= 2 else { throw ctx.invalid("input must have rank >= 2, got " + String(x.rank)) }
        let groups = ctx.attributes.int("num_groups", default: 0)
        let channels = x.shape[1]
        guard groups >= 1 && channels % groups == 0 else {
            throw ctx.invalid("num_groups " + String(groups) + " must be positive and divide the " + String(channels) + " channels")
        }
        guard (scale.count == channels || scale.count == groups) && bias.count == scale.count else {
            throw ctx.invalid("scale and bias must both have " + String(channels) + " (channels) or " + String(groups)
                + " (groups) elements, got " + String(scale.count) + " and " + String(bias.count))
        }
        let perChannel = scale.count == channels
        let epsilon = Double(ctx.attributes.float("epsilon", default: 1e-5))
        let batch = x.shape[0]
        let spatial = product(x.shape[2...])
        let perGroup = channels / groups
        let size = perGroup * spatial
        return PreparedOp(outputs: [x]) { args in
            let tx = args.input(0), ts = args.input(1), tb = args.input(2), ty = args.output(0)
            if size == 0 { return }
            for ng in 0..<(batch * groups) {
                let base = ng * size
                var sum = 0.0
                for i in 0..<size { sum += tx.double(base + i) }
                let mean = sum / Double(size)
                var sq = 0.0
                for i in 0..<size {
                    let d = tx.double(base + i) - mean
                    sq += d * d
                }
                let inv = 1 / perch_sqrt(sq / Double(size) + epsilon)
                let g = ng % groups
                for k in 0..<perGroup {
                    let p = perChannel ? g * perGroup + k : g
                    let a = ts.double(p) * inv, b = tb.double(p) - mean * a
                    let row = base + k * spatial
                    for i in 0..<spatial { ty.setDouble(row + i, tx.double(row + i) * a + b) }
                }
            }
        }
    }

    /// MeanVarianceNormalization over `axes` (default [0, 2, 3]), as ONNX's function body:
    /// `(X - E[X]) / (sqrt(E[X²] - E[X]²) + 1e-9)`.
    static func prepareMeanVarianceNormalization(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let rawAxes = ctx.attributes.ints("axes") ?? [0, 2, 3]
        var reduced = [Bool](repeating: false, count: x.rank)
        for a in rawAxes {
            guard let axis = normalizedAxis(a, rank: x.rank) else {
                throw ctx.invalid("axis " + String(a) + " is out of range for rank " + String(x.rank))
            }
            reduced[axis] = true
        }
        // Group id of an element: its coordinates along the kept axes, row-major.
        let rank = x.rank
        let strides = contiguousStrides(x.shape)
        var groupStrides = [Int](repeating: 0, count: rank)
        var groups = 1
        for d in stride(from: rank - 1, through: 0, by: -1) where !reduced[d] {
            groupStrides[d] = groups
            groups *= x.shape[d]
        }
        let count = x.count
        let perGroup = groups == 0 ? 0 : count / groups
        let shape = x.shape
        return PreparedOp(outputs: [x], scratchBytes: groups * 16) { args in
            let tx = args.input(0), ty = args.output(0)
            if count == 0 { return }
            let sums = args.scratch!.assumingMemoryBound(to: Double.self)
            let sqs = sums + groups
            for g in 0..<groups {
                sums[g] = 0
                sqs[g] = 0
            }
            @inline(__always) func group(_ i: Int) -> Int {
                var g = 0
                for d in 0..<rank where !reduced[d] { g += ((i / strides[d]) % shape[d]) * groupStrides[d] }
                return g
            }
            for i in 0..<count {
                let v = tx.double(i), g = group(i)
                sums[g] += v
                sqs[g] += v * v
            }
            for g in 0..<groups {
                let mean = sums[g] / Double(perGroup)
                let variance = sqs[g] / Double(perGroup) - mean * mean
                sums[g] = mean
                sqs[g] = perch_sqrt(variance > 0 ? variance : 0) + 1e-9
            }
            for i in 0..<count {
                let g = group(i)
                ty.setDouble(i, (tx.double(i) - sums[g]) / sqs[g])
            }
        }
    }

    /// LpNormalization along `axis` (default -1) with `p` 1 or 2 (default 2): `x / ||x||_p`; a
    /// zero norm gives zeros.
    static func prepareLpNormalization(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let raw = ctx.attributes.int("axis", default: -1)
        guard x.rank >= 1, let axis = normalizedAxis(raw, rank: x.rank) else {
            throw ctx.invalid("axis " + String(raw) + " is out of range for rank " + String(x.rank))
        }
        let p = ctx.attributes.int("p", default: 2)
        guard p == 1 || p == 2 else { throw ctx.invalid("p must be 1 or 2, got " + String(p)) }
        let outer = product(x.shape[0..<axis]), n = x.shape[axis], inner = product(x.shape[(axis + 1)...])
        return PreparedOp(outputs: [x]) { args in
            let tx = args.input(0), ty = args.output(0)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * n * inner + j
                    var norm = 0.0
                    for k in 0..<n {
                        let v = tx.double(base + k * inner)
                        norm += p == 1 ? (v < 0 ? -v : v) : v * v
                    }
                    if p == 2 { norm = perch_sqrt(norm) }
                    for k in 0..<n {
                        let i = base + k * inner
                        ty.setDouble(i, norm == 0 ? 0 : tx.double(i) / norm)
                    }
                }
            }
        }
    }
}

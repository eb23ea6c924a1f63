import CPerchShims
import PerchGraph

/// Prepares Softmax and LogSoftmax.
///
/// Opset ≥ 13 normalizes over the one axis `axis` (default -1). Before 13 the input is coerced
/// to 2-D `[prod(dims[:axis]), prod(dims[axis:])]` (axis default 1) and each row is normalized.
/// The node does not carry its opset: the importer stores it as the Int attribute `_opset`.
public enum SoftmaxOperator {
    /// The slices Softmax, LogSoftmax and Hardmax normalize, as (outer, n, inner): slice `o·inner + i`
    /// is elements `(o·n + k)·inner + i` for k < n. Opset ≥ 13: the one axis `axis` (default -1);
    /// before 13, `[prod(dims[:axis]), prod(dims[axis:])]` rows (axis default 1, may equal rank).
    static func rows(_ ctx: OpContext, _ x: TensorDesc) throws(EngineError) -> (Int, Int, Int) {
        let opset = ctx.attributes.int("_opset", default: 13)
        let rank = x.rank
        if rank == 0 { return (1, 1, 1) }
        let raw = ctx.attributes.int("axis", default: opset >= 13 ? -1 : 1)
        // Before 13 axis may equal rank (then each element is its own row).
        let axis = raw < 0 ? raw + rank : raw
        guard axis >= 0 && (axis < rank || (opset < 13 && axis == rank)) else {
            throw ctx.invalid("axis " + String(raw) + " is out of range for rank " + String(rank))
        }
        if opset >= 13 { return (product(x.shape[0..<axis]), x.shape[axis], product(x.shape[(axis + 1)...])) }
        return (product(x.shape[0..<axis]), product(x.shape[axis...]), 1)
    }

    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let isLog = ctx.node.op == .logSoftmax
        let (outer, n, inner) = try rows(ctx, x)
        if x.dtype == .f32 && inner == 1 && !isLog && n >= 16 {
            // Contiguous rows (attention): the vectorized exp of CPerchElementwise.h, rows split
            // between threads from 8K elements (~0.8 ns each on a Zen 3 core: 4 heads of 64×64
            // took 13 µs on one thread).
            let vector = VectorISA.best()
            return PreparedOp(outputs: [x]) { args in
                let px = args.input(0).pointer(as: Float.self), py = args.output(0).pointer(as: Float.self)
                let parts = outer * n >= 1 << 13 ? Swift.min(args.threads, outer) : 1
                args.parallelFor(parts) { p in
                    for o in splitRange(outer, parts: parts, part: p) { vector.softmaxRow(px + o * n, py + o * n, n) }
                }
            }
        }
        if x.dtype == .f32 && inner > 1 && !isLog {
            // A non-last axis (YOLOv8's DFL: 16 bins × 8400 positions): down the columns of each
            // [n, inner] slab, 8 at a time, in blocks of columns split between threads.
            let vector = VectorISA.best()
            let blockColumns = 256, blocks = (inner + blockColumns - 1) / blockColumns
            return PreparedOp(outputs: [x]) { args in
                if n == 0 || outer == 0 { return }
                let px = args.input(0).pointer(as: Float.self), py = args.output(0).pointer(as: Float.self)
                let items = outer * blocks
                let parts = outer * n * inner >= 1 << 13 ? Swift.min(args.threads, items) : 1
                args.parallelFor(parts) { p in
                    for item in splitRange(items, parts: parts, part: p) {
                        let o = item / blocks, j0 = (item % blocks) * blockColumns
                        let base = o * n * inner + j0
                        vector.softmaxColumns(px + base, py + base, n, Swift.min(blockColumns, inner - j0), inner)
                    }
                }
            }
        }
        if x.dtype == .f32 {
            return PreparedOp(outputs: [x]) { args in
                softmaxF32(args.input(0).pointer(as: Float.self), args.output(0).pointer(as: Float.self), outer, n, inner, isLog)
            }
        }
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * n * inner + j
                    var m = -Double.infinity
                    for k in 0..<n { m = Swift.max(m, src.double(base + k * inner)) }
                    var sum = 0.0
                    for k in 0..<n { sum += perch_exp(src.double(base + k * inner) - m) }
                    let logSum = perch_log(sum)
                    for k in 0..<n {
                        let v = src.double(base + k * inner) - m
                        dst.setDouble(base + k * inner, isLog ? v - logSum : perch_exp(v) / sum)
                    }
                }
            }
        }
    }

    static func softmaxF32(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ outer: Int, _ n: Int, _ inner: Int, _ isLog: Bool) {
        for o in 0..<outer {
            for j in 0..<inner {
                let px = x + o * n * inner + j
                let py = y + o * n * inner + j
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, px[k * inner]) }
                var sum: Float = 0
                if isLog {
                    for k in 0..<n { sum += perch_expf(px[k * inner] - m) }
                    let shift = m + perch_logf(sum)
                    for k in 0..<n { py[k * inner] = px[k * inner] - shift }
                } else {
                    for k in 0..<n {
                        let e = perch_expf(px[k * inner] - m)
                        py[k * inner] = e
                        sum += e
                    }
                    let r = 1 / sum
                    for k in 0..<n { py[k * inner] *= r }
                }
            }
        }
    }
}

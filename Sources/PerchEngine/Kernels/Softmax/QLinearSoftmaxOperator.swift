import CPerchShims
import PerchGraph

/// QLinearSoftmax (com.microsoft): softmax of 8-bit codes through a 256-entry exp table, in the
/// arithmetic of ONNX Runtime's CPU kernel. The QDQ pass turns uint8 DQ → Softmax → Q into this op
/// because ORT does the same: a QDQ transformer's attention probabilities then come out as the
/// bytes ORT writes, where exact float softmax differed by a step on some and the difference grew
/// to 4–5 steps at the encoder's output.
///
/// Per row of D codes along the axis, m = max code:
/// - e(d) = Float(exp((−d + s) · x_scale)) for d = m − x in 0...255, s = max(0, ln(FLT_MAX / D) − 5) / x_scale
///   (the shift keeps Σe below FLT_MAX while using its range);
/// - Σ = the row's e values added in order in float;
/// - y = round_half_even(e · ⌊1 / y_scale⌋ / Σ) + y_zero_point, saturated.
/// Inputs X, x_scale, x_zero_point, y_scale, y_zero_point; attributes `axis` and `opset` (ORT's:
/// before 13 the input is coerced to 2-D at `axis`, default 1; from 13 one axis, default −1).
/// The zero points do not enter the arithmetic (softmax is shift-invariant). int8 outputs are
/// saturated to −128...127 (ORT's kernel wraps codes above 127).
enum QLinearSoftmaxOperator {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype == .u8 || x.dtype == .i8 else { throw ctx.unsupported("input of type " + x.dtype.name) }
        let px = try QuantParams(ctx, scale: 1, zero: 2, dtypeIfNoZero: x.dtype)
        let py = try QuantParams(ctx, scale: 3, zero: 4, dtypeIfNoZero: x.dtype)
        guard px.isPerTensor, py.isPerTensor else { throw ctx.unsupported("per-channel scales") }
        guard px.dtype == x.dtype, py.dtype == .u8 || py.dtype == .i8 else { throw ctx.invalid("zero point types do not match the data") }
        let opset = ctx.attributes.int("opset", default: ctx.attributes.int("_opset", default: 13))
        let rank = x.rank
        var (outer, n, inner) = (1, 1, 1)
        if rank > 0 {
            let raw = ctx.attributes.int("axis", default: opset >= 13 ? -1 : 1)
            let axis = raw < 0 ? raw + rank : raw
            guard axis >= 0 && axis < rank else {
                throw ctx.invalid("axis " + String(raw) + " is out of range for rank " + String(rank))
            }
            if opset >= 13 {
                (outer, n, inner) = (product(x.shape[0..<axis]), x.shape[axis], product(x.shape[(axis + 1)...]))
            } else {
                (outer, n, inner) = (product(x.shape[0..<axis]), product(x.shape[axis...]), 1)
            }
        }
        guard px.scale(0) > 0, px.scale(0).isFinite, py.scale(0) > 0, py.scale(0).isFinite else {
            throw ctx.invalid("scales must be positive and finite")
        }
        let table = expTable(xScale: px.scale(0), length: n)
        let yScale = perch_floorf(1 / py.scale(0))
        let (lo, hi) = quantizedRange(py.dtype)
        let zy = py.zero(0)
        let signedIn = x.dtype == .i8
        let rows = outer * inner
        let slot = MemoryPlannerAlign.up(n * 4)
        // Rows split between threads from 4K codes (about 7 µs: the in-order float sum runs ~1.7 ns
        // per code; an encoder's 4 heads × 64 × 64 probabilities took 28 µs on one thread).
        let maxParts = rows * n >= 1 << 12 ? Swift.min(ctx.threads, rows) : 1
        return PreparedOp(outputs: [TensorDesc(dtype: py.dtype, shape: x.shape)], scratchBytes: slot * maxParts) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let parts = Swift.min(args.threads, maxParts)
            table.withUnsafeBufferPointer { t in
                args.parallelFor(parts) { p in
                    let tmp = (args.scratch! + p * slot).assumingMemoryBound(to: Float.self)
                    for row in splitRange(rows, parts: parts, part: p) {
                        let base = (row / inner) * n * inner + row % inner
                        if inner == 1 {
                            perch_qsoftmax_row(src + base, n, signedIn ? 0x80 : 0, t.baseAddress!, yScale, Float(zy), Float(lo), Float(hi),
                                               tmp, dst + base)
                        } else {
                            softmaxRow(src + base, dst + base, n, stride: inner, signed: signedIn, table: t.baseAddress!, yScale: yScale,
                                       zero: zy, lo: lo, hi: hi)
                        }
                    }
                }
            }
        }
    }

    /// e(d) for d = max − x in 0...255 (see the type's documentation).
    static func expTable(xScale: Float, length: Int) -> [Float] {
        let range = Double(Float.greatestFiniteMagnitude / Float(Swift.max(length, 1)))
        let shift = Swift.max(0, perch_log(range) - 5) / Double(xScale)
        return (0..<256).map { d in Float(perch_exp((Double(255 - d) - 255 + shift) * Double(xScale))) }
    }

    /// One row of `n` codes `stride` bytes apart (the reference of perch_qsoftmax_row, which takes
    /// contiguous rows).
    static func softmaxRow(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<UInt8>, _ n: Int, stride: Int, signed: Bool,
                           table: UnsafePointer<Float>, yScale: Float, zero: Int32, lo: Int32, hi: Int32) {
        // Codes as order-preserving unsigned values (int8 flipped by 0x80), so d = max − x.
        let flip: UInt8 = signed ? 0x80 : 0
        var m: UInt8 = 0
        for i in 0..<n { m = Swift.max(m, x[i * stride] ^ flip) }
        var sum: Float = 0
        for i in 0..<n { sum += table[Int(m - (x[i * stride] ^ flip))] }
        for i in 0..<n {
            let e = table[Int(m - (x[i * stride] ^ flip))]
            // In float until clamped: ⌊1 / y_scale⌋ can exceed Int32 for a tiny y_scale.
            var q = perch_roundf_even(e * yScale / sum) + Float(zero)
            q = q < Float(lo) ? Float(lo) : (q > Float(hi) ? Float(hi) : q)
            y[i * stride] = UInt8(truncatingIfNeeded: Int32(q))
        }
    }
}

import CPerchShims
import PerchGraph

/// Sin, Cos, Round (half to even), Sign, Mod, IsNaN, IsInf, Shrink, Celu and ThresholdedRelu.
extension ElementwiseOperator {
    public static func prepareMath(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .sin: return try preparedFloatMap(ctx, SinMap())
        case .cos: return try preparedFloatMap(ctx, CosMap())
        case .round: return try preparedFloatMap(ctx, RoundEvenMap())
        case .sign: return try prepareSign(ctx)
        case .mod: return try prepareMod(ctx)
        case .isNaN, .isInf: return try prepareIsNaNOrInf(ctx)
        case .shrink: return try prepareShrink(ctx)
        case .celu: return try preparedFloatMap(ctx, CeluMap(alpha: ctx.attributes.float("alpha", default: 1)))
        case .thresholdedRelu: return try preparedFloatMap(ctx, ThresholdedReluMap(alpha: ctx.attributes.float("alpha", default: 1)))
        default: throw ctx.unsupported("not a math operator")
        }
    }

    /// Sign: -1, 0 or 1 in the input's type (NaN stays NaN); integers exact through Int64.
    static func prepareSign(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        if x.dtype.isFloatingPoint { return try preparedFloatMap(ctx, SignMap()) }
        guard x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let n = x.count
        let unsigned64 = x.dtype == .u64
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            for i in 0..<n {
                let v = src.int64(i)
                dst.setInt64(i, v == 0 ? 0 : (unsigned64 || v > 0 ? 1 : -1))
            }
        }
    }

    /// Mod with broadcasting. `fmod = 0` (integers): the result takes the divisor's sign, like
    /// Python's `%`; `fmod = 1`: C `fmod`, the dividend's sign. ONNX requires `fmod = 1` for
    /// floating types; `fmod = 0` on floats is computed the Python way too. A zero integer
    /// divisor gives 0 instead of trapping.
    static func prepareMod(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let a = try ctx.input(0)
        let b = try ctx.input(1)
        guard a.dtype == b.dtype else { throw ctx.invalid("input types differ: " + a.dtype.name + " vs " + b.dtype.name) }
        guard a.dtype.isFloatingPoint || a.dtype.isInteger else { throw ctx.unsupported("input type " + a.dtype.name) }
        let fmod = ctx.attributes.int("fmod", default: 0) != 0
        guard let shape = BroadcastPlan.broadcastShape([a.shape, b.shape]) else {
            throw ctx.invalid("shapes " + shapeText(a.shape) + " and " + shapeText(b.shape) + " do not broadcast")
        }
        let plan = BroadcastPlan(shapes: [a.shape, b.shape], to: shape)
        let out = TensorDesc(dtype: a.dtype, shape: shape)
        let outer = plan.outer, inner = plan.inner
        let offA = plan.rowOffsets[0], offB = plan.rowOffsets[1]
        let sA = plan.innerStrides[0], sB = plan.innerStrides[1]
        if a.dtype == .f32 {
            return PreparedOp(outputs: [out]) { args in
                let pa = args.input(0).pointer(as: Float.self)
                let pb = args.input(1).pointer(as: Float.self)
                let py = args.output(0).pointer(as: Float.self)
                for o in 0..<outer {
                    let ra = pa + offA[o], rb = pb + offB[o], ry = py + o * inner
                    for i in 0..<inner {
                        let x = ra[i * sA], y = rb[i * sB]
                        var r = perch_fmodf(x, y)
                        if !fmod && r != 0 && (r < 0) != (y < 0) { r += y }
                        ry[i] = r
                    }
                }
            }
        }
        let isFloat = a.dtype.isFloatingPoint
        let unsigned64 = a.dtype == .u64
        return PreparedOp(outputs: [out]) { args in
            let ta = args.input(0), tb = args.input(1), ty = args.output(0)
            for o in 0..<outer {
                let ra = offA[o], rb = offB[o], ry = o * inner
                for i in 0..<inner {
                    if isFloat {
                        let x = ta.double(ra + i * sA), y = tb.double(rb + i * sB)
                        var r = perch_fmod(x, y)
                        if !fmod && r != 0 && (r < 0) != (y < 0) { r += y }
                        ty.setDouble(ry + i, r)
                    } else {
                        ty.setInt64(ry + i, integerMod(ta.int64(ra + i * sA), tb.int64(rb + i * sB), fmod: fmod, unsigned64: unsigned64))
                    }
                }
            }
        }
    }

    /// IsNaN, and IsInf with `detect_negative` / `detect_positive` (both default 1): bool output.
    static func prepareIsNaNOrInf(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let isNaN = ctx.node.op == .isNaN
        let negative = ctx.attributes.int("detect_negative", default: 1) != 0
        let positive = ctx.attributes.int("detect_positive", default: 1) != 0
        let n = x.count
        let isF32 = x.dtype == .f32
        return PreparedOp(outputs: [TensorDesc(dtype: .bool, shape: x.shape)]) { args in
            let src = args.input(0)
            let px = src.pointer(as: Float.self)
            let py = args.output(0).pointer(as: UInt8.self)
            for i in 0..<n {
                let v = isF32 ? Double(px[i]) : src.double(i)
                let hit = isNaN ? v != v : ((positive && v == Double.infinity) || (negative && v == -Double.infinity))
                py[i] = hit ? 1 : 0
            }
        }
    }

    /// Shrink: `x + bias` below `-lambd`, `x - bias` above `lambd`, 0 between (defaults 0.5, 0);
    /// integer inputs go through Double and truncate back.
    static func prepareShrink(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let lambd = ctx.attributes.float("lambd", default: 0.5)
        let bias = ctx.attributes.float("bias", default: 0)
        if x.dtype.isFloatingPoint { return try preparedFloatMap(ctx, ShrinkMap(lambd: lambd, bias: bias)) }
        guard x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let n = x.count
        let m = ShrinkMap(lambd: lambd, bias: bias)
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0), dst = args.output(0)
            for i in 0..<n { dst.setDouble(i, m.apply(src.double(i))) }
        }
    }

    @inline(__always)
    static func integerMod(_ x: Int64, _ y: Int64, fmod: Bool, unsigned64: Bool) -> Int64 {
        if y == 0 { return 0 }
        if unsigned64 { return Int64(bitPattern: UInt64(bitPattern: x) % UInt64(bitPattern: y)) }
        if y == -1 { return 0 }
        var r = x % y
        if !fmod && r != 0 && (r < 0) != (y < 0) { r += y }
        return r
    }
}

struct SinMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_sinf(x) }
    func apply(_ x: Double) -> Double { perch_sin(x) }
}

struct CosMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_cosf(x) }
    func apply(_ x: Double) -> Double { perch_cos(x) }
}

/// Round half to even (the current rounding mode, which is round-to-nearest-even by default).
struct RoundEvenMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_roundf_even(x) }
    func apply(_ x: Double) -> Double { perch_round_even(x) }
}

struct SignMap: FloatMap {
    func apply(_ x: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : x) }
    func apply(_ x: Double) -> Double { x > 0 ? 1 : (x < 0 ? -1 : x) }
}

struct ShrinkMap: FloatMap {
    let lambd: Float
    let bias: Float
    func apply(_ x: Float) -> Float { x < -lambd ? x + bias : (x > lambd ? x - bias : 0) }
    func apply(_ x: Double) -> Double {
        let l = Double(lambd), b = Double(bias)
        return x < -l ? x + b : (x > l ? x - b : 0)
    }
}

/// Celu: `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`.
struct CeluMap: FloatMap {
    let alpha: Float
    func apply(_ x: Float) -> Float { x > 0 ? x : alpha * (perch_expf(x / alpha) - 1) }
    func apply(_ x: Double) -> Double {
        let a = Double(alpha)
        return x > 0 ? x : a * (perch_exp(x / a) - 1)
    }
}

struct ThresholdedReluMap: FloatMap {
    let alpha: Float
    func apply(_ x: Float) -> Float { x > alpha ? x : 0 }
    func apply(_ x: Double) -> Double { x > Double(alpha) ? x : 0 }
}

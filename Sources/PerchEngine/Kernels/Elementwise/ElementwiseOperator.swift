import CPerchShims
import PerchGraph

/// Prepares elementwise arithmetic, comparison, logic and `Where`, with NumPy broadcasting.
///
/// fp32 arithmetic runs typed row loops over a `BroadcastPlan`; every other dtype runs a generic
/// per-element path (Double for floating types, Int64 for integers so int64 stays exact).
public enum ElementwiseOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .sqrt: return try preparedFloatMap(ctx, SqrtMap())
        case .exp: return try preparedFloatMap(ctx, ExpMap())
        case .log: return try preparedFloatMap(ctx, LogMap())
        case .reciprocal: return try preparedFloatMap(ctx, ReciprocalMap())
        case .floor: return try preparedFloatMap(ctx, FloorMap())
        case .ceil: return try preparedFloatMap(ctx, CeilMap())
        case .neg, .abs: return try prepareSignOp(ctx)
        case .not: return try prepareNot(ctx)
        case .where: return try prepareWhere(ctx)
        default: return try prepareBroadcasting(ctx)
        }
    }

    static func prepareSignOp(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let isNeg = ctx.node.op == .neg
        if x.dtype.isFloatingPoint {
            return isNeg ? try preparedFloatMap(ctx, NegMap()) : try preparedFloatMap(ctx, AbsMap())
        }
        guard x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let n = x.count
        let unsigned = x.dtype == .u64
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            for i in 0..<n {
                let v = src.int64(i)
                dst.setInt64(i, isNeg ? 0 &- v : (unsigned || v >= 0 ? v : 0 &- v))
            }
        }
    }

    static func prepareNot(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype == .bool else { throw ctx.invalid("Not needs a bool input, got " + x.dtype.name) }
        let n = x.count
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0).pointer(as: UInt8.self)
            let dst = args.output(0).pointer(as: UInt8.self)
            for i in 0..<n { dst[i] = src[i] != 0 ? 0 : 1 }
        }
    }

    static func prepareWhere(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let c = try ctx.input(0)
        let x = try ctx.input(1)
        let y = try ctx.input(2)
        guard c.dtype == .bool else { throw ctx.invalid("condition must be bool, got " + c.dtype.name) }
        guard x.dtype == y.dtype else { throw ctx.invalid("X and Y types differ: " + x.dtype.name + " vs " + y.dtype.name) }
        guard let shape = BroadcastPlan.broadcastShape([c.shape, x.shape, y.shape]) else {
            throw ctx.invalid("shapes " + shapeText(c.shape) + ", " + shapeText(x.shape) + ", " + shapeText(y.shape) + " do not broadcast")
        }
        let plan = BroadcastPlan(shapes: [c.shape, x.shape, y.shape], to: shape)
        let size = x.dtype.byteSize
        let outer = plan.outer
        let inner = plan.inner
        let offC = plan.rowOffsets[0], offX = plan.rowOffsets[1], offY = plan.rowOffsets[2]
        let sC = plan.innerStrides[0], sX = plan.innerStrides[1], sY = plan.innerStrides[2]
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            let cp = args.input(0).pointer(as: UInt8.self)
            let xp = UnsafeRawPointer(args.input(1).data)
            let yp = UnsafeRawPointer(args.input(2).data)
            let out = args.output(0).data
            if size == 4 {
                let xf = xp.assumingMemoryBound(to: UInt32.self)
                let yf = yp.assumingMemoryBound(to: UInt32.self)
                let of = out.assumingMemoryBound(to: UInt32.self)
                for o in 0..<outer {
                    let c0 = offC[o], x0 = offX[o], y0 = offY[o], r = o * inner
                    for i in 0..<inner {
                        of[r + i] = cp[c0 + i * sC] != 0 ? xf[x0 + i * sX] : yf[y0 + i * sY]
                    }
                }
                return
            }
            for o in 0..<outer {
                let c0 = offC[o], x0 = offX[o], y0 = offY[o], r = o * inner
                for i in 0..<inner {
                    let src = cp[c0 + i * sC] != 0 ? xp + (x0 + i * sX) * size : yp + (y0 + i * sY) * size
                    (out + (r + i) * size).copyMemory(from: src, byteCount: size)
                }
            }
        }
    }

    static func isComparison(_ op: OpType) -> Bool {
        switch op {
        case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual: return true
        default: return false
        }
    }

    static func isLogical(_ op: OpType) -> Bool {
        op == .and || op == .or || op == .xor
    }

    static func prepareBroadcasting(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let op = ctx.node.op
        let variadic = op == .sum || op == .mean || op == .min || op == .max
        var descs = [TensorDesc]()
        for i in 0..<ctx.inputCount { descs.append(try ctx.input(i)) }
        if descs.isEmpty || (!variadic && descs.count != 2) {
            throw ctx.invalid("expects " + (variadic ? "at least 1 input" : "2 inputs") + ", got " + String(descs.count))
        }
        let dtype = descs[0].dtype
        if op != .pow {
            for d in descs where d.dtype != dtype {
                throw ctx.invalid("input types differ: " + dtype.name + " vs " + d.dtype.name)
            }
        }
        if isLogical(op) && dtype != .bool { throw ctx.invalid("needs bool inputs, got " + dtype.name) }
        if !isLogical(op) && dtype == .bool && op != .equal { throw ctx.unsupported("bool inputs") }
        if (op == .mean || op == .pow) && !dtype.isFloatingPoint && !dtype.isInteger {
            throw ctx.unsupported("input type " + dtype.name)
        }
        guard let shape = BroadcastPlan.broadcastShape(descs.map { $0.shape }) else {
            var s = "input shapes"
            for d in descs { s += " " + shapeText(d.shape) }
            throw ctx.invalid(s + " do not broadcast")
        }
        let outType: DType = isComparison(op) || isLogical(op) ? .bool : dtype
        let out = TensorDesc(dtype: outType, shape: shape)
        let plan = BroadcastPlan(shapes: descs.map { $0.shape }, to: shape)
        let allF32 = descs.allSatisfy { $0.dtype == .f32 }
        if allF32 {
            switch op {
            case .add: return f32Binary(plan, out, AddF32.self)
            case .sub: return f32Binary(plan, out, SubF32.self)
            case .mul: return f32Binary(plan, out, MulF32.self)
            case .div: return f32Binary(plan, out, DivF32.self)
            case .pow: return f32Binary(plan, out, PowF32.self)
            case .sum: return f32Variadic(plan, out, AddF32.self, scale: 1)
            case .mean: return f32Variadic(plan, out, AddF32.self, scale: 1 / Float(descs.count))
            case .min: return f32Variadic(plan, out, MinF32.self, scale: 1)
            case .max: return f32Variadic(plan, out, MaxF32.self, scale: 1)
            default: break
            }
        }
        if isComparison(op), descs.count == 2, let typed = TypedComparison.prepare(op, plan, out, dtype) { return typed }
        if descs.count == 2, descs[1].dtype == dtype, let typed = TypedIntegerArithmetic.prepare(op, plan, out, dtype) { return typed }
        return genericBroadcast(op, plan, out, descs)
    }

    // MARK: fp32 row loops

    static func f32Binary<Op: F32BinaryOp>(_ plan: BroadcastPlan, _ out: TensorDesc, _: Op.Type) -> PreparedOp {
        let outer = plan.outer
        let inner = plan.inner
        let offA = plan.rowOffsets[0], offB = plan.rowOffsets[1]
        let sA = plan.innerStrides[0], sB = plan.innerStrides[1]
        return PreparedOp(outputs: [out]) { args in
            let a = args.input(0).pointer(as: Float.self), b = args.input(1).pointer(as: Float.self)
            let y = args.output(0).pointer(as: Float.self)
            parallelElementwise(args, outer * inner, minimum: f32SplitElements, grain: f32SplitElements / 2) { r in
                rowsF32(Op.self, a, offA, sA, b, offB, sB, y, outer, inner, range: r)
            }
        }
    }

    /// Elements from which fp32 elementwise ops split across threads (~0.3 ns each on a Zen 3
    /// core: a text detector's 96×160×160 Adds and HardSwishes took 0.7–0.9 ms each on one thread
    /// of two).
    static let f32SplitElements = 1 << 15

    static func f32Variadic<Op: F32BinaryOp>(_ plan: BroadcastPlan, _ out: TensorDesc, _: Op.Type, scale: Float) -> PreparedOp {
        let outer = plan.outer
        let inner = plan.inner
        let offsets = plan.rowOffsets
        let strides = plan.innerStrides
        let rows = plan.outputRowOffsets
        let n = offsets.count
        return PreparedOp(outputs: [out]) { args in
            let y = args.output(0).pointer(as: Float.self)
            parallelElementwise(args, outer * inner, minimum: f32SplitElements, grain: f32SplitElements / 2) { r in
                if n == 1 {
                    let x = args.input(0).pointer(as: Float.self)
                    rowsF32(MulF32.self, x, offsets[0], strides[0], x, offsets[0], 0, y, outer, inner, scalarB: 1, range: r)
                    return
                }
                rowsF32(Op.self, args.input(0).pointer(as: Float.self), offsets[0], strides[0],
                        args.input(1).pointer(as: Float.self), offsets[1], strides[1], y, outer, inner, range: r)
                var k = 2
                while k < n {
                    rowsF32(Op.self, y, rows, 1, args.input(k).pointer(as: Float.self), offsets[k], strides[k], y, outer, inner, range: r)
                    k += 1
                }
                if scale != 1 {
                    for i in r { y[i] *= scale }
                }
            }
        }
    }

    // MARK: generic path

    static func genericBroadcast(_ op: OpType, _ plan: BroadcastPlan, _ out: TensorDesc, _ descs: [TensorDesc]) -> PreparedOp {
        let outer = plan.outer
        let inner = plan.inner
        let offsets = plan.rowOffsets
        let strides = plan.innerStrides
        let n = descs.count
        let inType = descs[0].dtype
        let useDouble = inType.isFloatingPoint
        let unsigned64 = inType == .u64
        // Pow's exponent may have another type: an integer base with a float exponent goes
        // through Double and truncates back; a float base always computes in Double.
        let powMixed = op == .pow && !inType.isFloatingPoint && descs[1].dtype.isFloatingPoint
        return PreparedOp(outputs: [out]) { args in
            let y = args.output(0)
            for o in 0..<outer {
                for i in 0..<inner {
                    let index = o * inner + i
                    if useDouble || powMixed {
                        var acc = args.input(0).double(offsets[0][o] + i * strides[0])
                        var k = 1
                        while k < n {
                            let b = args.input(k).double(offsets[k][o] + i * strides[k])
                            if let c = compareDouble(op, acc, b) {
                                y.setInt64(index, c ? 1 : 0)
                                break
                            }
                            acc = combineDouble(op, acc, b)
                            k += 1
                        }
                        if k < n { continue }
                        if op == .mean { acc /= Double(n) }
                        if powMixed {
                            y.setInt64(index, saturatingInt64(acc))
                        } else {
                            y.setDouble(index, acc)
                        }
                    } else {
                        var acc = args.input(0).int64(offsets[0][o] + i * strides[0])
                        var k = 1
                        while k < n {
                            let b = args.input(k).int64(offsets[k][o] + i * strides[k])
                            if let c = compareInt(op, acc, b, unsigned64) {
                                acc = c ? 1 : 0
                                k = n + 1
                                break
                            }
                            acc = combineInt(op, acc, b, unsigned64)
                            k += 1
                        }
                        if op == .mean && k == n { acc /= Int64(n) }
                        y.setInt64(index, acc)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func compareDouble(_ op: OpType, _ a: Double, _ b: Double) -> Bool? {
        switch op {
        case .equal: return a == b
        case .less: return a < b
        case .greater: return a > b
        case .lessOrEqual: return a <= b
        case .greaterOrEqual: return a >= b
        default: return nil
        }
    }

    @inline(__always)
    static func combineDouble(_ op: OpType, _ a: Double, _ b: Double) -> Double {
        switch op {
        case .add, .sum, .mean: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .pow: return perch_pow(a, b)
        case .min: return a != a || a < b ? a : b
        case .max: return a != a || a > b ? a : b
        default: return 0
        }
    }

    @inline(__always)
    static func compareInt(_ op: OpType, _ a: Int64, _ b: Int64, _ unsigned: Bool) -> Bool? {
        if unsigned {
            let ua = UInt64(bitPattern: a), ub = UInt64(bitPattern: b)
            switch op {
            case .equal: return ua == ub
            case .less: return ua < ub
            case .greater: return ua > ub
            case .lessOrEqual: return ua <= ub
            case .greaterOrEqual: return ua >= ub
            default: return nil
            }
        }
        switch op {
        case .equal: return a == b
        case .less: return a < b
        case .greater: return a > b
        case .lessOrEqual: return a <= b
        case .greaterOrEqual: return a >= b
        default: return nil
        }
    }

    @inline(__always)
    static func combineInt(_ op: OpType, _ a: Int64, _ b: Int64, _ unsigned: Bool) -> Int64 {
        switch op {
        case .add, .sum, .mean: return a &+ b
        case .sub: return a &- b
        case .mul: return a &* b
        case .div:
            // C-style truncation; division by zero gives 0 rather than trapping.
            if b == 0 { return 0 }
            if unsigned { return Int64(bitPattern: UInt64(bitPattern: a) / UInt64(bitPattern: b)) }
            let r = a.dividedReportingOverflow(by: b)
            return r.overflow ? a : r.partialValue
        case .pow: return integerPower(a, b)
        case .min:
            if unsigned { return UInt64(bitPattern: a) < UInt64(bitPattern: b) ? a : b }
            return a < b ? a : b
        case .max:
            if unsigned { return UInt64(bitPattern: a) > UInt64(bitPattern: b) ? a : b }
            return a > b ? a : b
        case .and: return (a != 0 && b != 0) ? 1 : 0
        case .or: return (a != 0 || b != 0) ? 1 : 0
        case .xor: return ((a != 0) != (b != 0)) ? 1 : 0
        default: return 0
        }
    }

    /// Exact integer power with wrapping; negative exponents give 0 except for bases 1 and -1.
    static func integerPower(_ base: Int64, _ exponent: Int64) -> Int64 {
        if exponent < 0 {
            if base == 1 { return 1 }
            if base == -1 { return exponent & 1 == 0 ? 1 : -1 }
            return 0
        }
        var result: Int64 = 1
        var b = base
        var e = exponent
        while e > 0 {
            if e & 1 == 1 { result = result &* b }
            b = b &* b
            e >>= 1
        }
        return result
    }
}

// MARK: fp32 binary ops

protocol F32BinaryOp {
    static func apply(_ a: Float, _ b: Float) -> Float
}

struct AddF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
struct SubF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
struct MulF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
struct DivF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
struct PowF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { perch_powf(a, b) } }
struct MinF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a != a || a < b ? a : b } }
struct MaxF32: F32BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a != a || a > b ? a : b } }

/// `y[row] = Op(a[row], b[row])` over broadcast rows, for the output elements in `range` (all by
/// default; rows cut at its ends); `y` may alias `a` when `a` walks with the output. When
/// `scalarB` is given it replaces `b`'s values.
@inline(__always)
func rowsF32<Op: F32BinaryOp>(
    _: Op.Type, _ a: UnsafeMutablePointer<Float>, _ offA: [Int], _ sA: Int,
    _ b: UnsafeMutablePointer<Float>, _ offB: [Int], _ sB: Int,
    _ y: UnsafeMutablePointer<Float>, _ outer: Int, _ inner: Int, scalarB: Float? = nil, range: Range<Int>? = nil
) {
    forEachRowSpan(inner: inner, range ?? 0..<(outer * inner)) { o, lo, hi in
        let pa = a + offA[o]
        let pb = b + offB[o]
        let py = y + o * inner
        if let s = scalarB {
            if sA == 1 {
                for i in lo..<hi { py[i] = Op.apply(pa[i], s) }
            } else {
                let v = Op.apply(pa[0], s)
                for i in lo..<hi { py[i] = v }
            }
        } else if sA == 1 && sB == 1 {
            for i in lo..<hi { py[i] = Op.apply(pa[i], pb[i]) }
        } else if sA == 0 && sB == 1 {
            let va = pa[0]
            for i in lo..<hi { py[i] = Op.apply(va, pb[i]) }
        } else if sA == 1 && sB == 0 {
            let vb = pb[0]
            for i in lo..<hi { py[i] = Op.apply(pa[i], vb) }
        } else {
            for i in lo..<hi { py[i] = Op.apply(pa[i * sA], pb[i * sB]) }
        }
    }
}

// MARK: unary maps

struct SqrtMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_sqrtf(x) }
    func apply(_ x: Double) -> Double { perch_sqrt(x) }
}

struct ExpMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_expf(x) }
    func apply(_ x: Double) -> Double { perch_exp(x) }
}

struct LogMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_logf(x) }
    func apply(_ x: Double) -> Double { perch_log(x) }
}

struct ReciprocalMap: FloatMap {
    func apply(_ x: Float) -> Float { 1 / x }
    func apply(_ x: Double) -> Double { 1 / x }
}

struct FloorMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_floorf(x) }
    func apply(_ x: Double) -> Double { perch_floor(x) }
}

struct CeilMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_ceilf(x) }
    func apply(_ x: Double) -> Double { perch_ceil(x) }
}

struct NegMap: FloatMap {
    func apply(_ x: Float) -> Float { -x }
    func apply(_ x: Double) -> Double { -x }
}

struct AbsMap: FloatMap {
    func apply(_ x: Float) -> Float { x < 0 ? -x : x }
    func apply(_ x: Double) -> Double { x < 0 ? -x : x }
}

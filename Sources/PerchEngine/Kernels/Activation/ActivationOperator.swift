import CPerchShims
import PerchGraph

/// Prepares pointwise activations. fp32 runs a specialized loop per activation; f64/f16/bf16 go
/// through Double; Relu and Clip also take integer tensors (computed in Int64).
public enum ActivationOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let a = ctx.attributes
        switch ctx.node.op {
        case .relu:
            let x = try ctx.input(0)
            if x.dtype.isInteger { return integerClamp(x, lo: 0, hi: nil) }
            return try preparedFloatMap(ctx, ReluMap())
        case .leakyRelu: return try preparedFloatMap(ctx, LeakyReluMap(alpha: a.float("alpha", default: 0.01)))
        case .clip: return try prepareClip(ctx)
        case .sigmoid:
            // `_times_input`: ActivationFusion folded the Mul of a SiLU (x·sigmoid(x)) in here.
            let silu = a.int("_times_input", default: 0) != 0
            if let op = try curveF32(ctx, silu ? .silu : .sigmoid) { return op }
            return silu ? try preparedFloatMap(ctx, SiluMap()) : try preparedFloatMap(ctx, SigmoidMap())
        case .hardSigmoid:
            return try preparedFloatMap(ctx, HardSigmoidMap(alpha: a.float("alpha", default: 0.2), beta: a.float("beta", default: 0.5)))
        case .hardSwish: return try preparedFloatMap(ctx, HardSigmoidMap(alpha: 1.0 / 6.0, beta: 0.5, timesX: true))
        case .tanh:
            if let op = try curveF32(ctx, .tanh) { return op }
            return try preparedFloatMap(ctx, TanhMap())
        case .erf:
            if let op = try erfGeluF32(ctx, gelu: false) { return op }
            return try preparedFloatMap(ctx, ErfMap())
        case .gelu:
            let approximate = a.string("approximate", default: "none")
            switch approximate {
            case "none":
                if let op = try erfGeluF32(ctx, gelu: true) { return op }
                return try preparedFloatMap(ctx, GeluMap(tanhApproximation: false))
            case "tanh": return try preparedFloatMap(ctx, GeluMap(tanhApproximation: true))
            default: throw ctx.invalid("approximate must be \"none\" or \"tanh\", got \"" + approximate + "\"")
            }
        case .elu: return try preparedFloatMap(ctx, EluMap(alpha: a.float("alpha", default: 1.0)))
        case .selu:
            return try preparedFloatMap(ctx, SeluMap(alpha: a.float("alpha", default: 1.67326319217681884765625),
                                                     gamma: a.float("gamma", default: 1.05070102214813232421875)))
        case .softplus: return try preparedFloatMap(ctx, SoftplusMap())
        case .softsign: return try preparedFloatMap(ctx, SoftsignMap())
        case .mish: return try preparedFloatMap(ctx, MishMap())
        default: throw ctx.unsupported("not an activation")
        }
    }

    /// float32 Erf and GELU (erf form) through the vectorized C kernels (CPerchErfGelu.h), split
    /// across threads from 16K elements (~0.55 ns each on a Zen 3 core: a 64×512 encoder FFN's GELU
    /// took 18 µs on one thread); nil for other types.
    static func erfGeluF32(_ ctx: OpContext, gelu: Bool) throws(EngineError) -> PreparedOp? {
        let x = try ctx.input(0)
        guard x.dtype == .f32 else { return nil }
        let n = x.count, vector = VectorISA.best()
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0).pointer(as: Float.self), dst = args.output(0).pointer(as: Float.self)
            parallelElementwise(args, n, minimum: 1 << 14, grain: 1 << 13) { r in
                vector.erfGelu(src + r.lowerBound, r.count, gelu: gelu, dst + r.lowerBound)
            }
        }
    }

    /// float32 Sigmoid, Tanh and SiLU through the vectorized C kernels (CPerchSigmoidTanh.h), split
    /// across threads from 8K elements (about 0.2 ns per element per core on AVX-512, 0.6 on a
    /// Zen 3's AVX2: a YOLO's 32×32×32 SiLUs took 20 µs each on one thread under a 64K bar); nil
    /// for other types.
    static func curveF32(_ ctx: OpContext, _ curve: FloatCurve) throws(EngineError) -> PreparedOp? {
        let x = try ctx.input(0)
        guard x.dtype == .f32 else { return nil }
        let n = x.count, vector = VectorISA.best()
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0).pointer(as: Float.self), dst = args.output(0).pointer(as: Float.self)
            parallelElementwise(args, n, minimum: 1 << 13, grain: 1 << 12) { r in
                vector.sigmoidTanh(src + r.lowerBound, r.count, curve, dst + r.lowerBound)
            }
        }
    }

    static func integerClamp(_ x: TensorDesc, lo: Int64?, hi: Int64?) -> PreparedOp {
        let n = x.count
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            for i in 0..<n {
                var v = src.int64(i)
                if let l = lo, v < l { v = l }
                if let h = hi, v > h { v = h }
                dst.setInt64(i, v)
            }
        }
    }

    /// Clip: bounds are attributes `min`/`max` before opset 11 and optional inputs 1 and 2 from
    /// opset 11 on (read at run time, so they need not be constants). Absent bounds do not clamp.
    static func prepareClip(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let n = x.count
        let a = ctx.attributes
        let attrMin: Float? = a.has("min") ? a.float("min", default: 0) : nil
        let attrMax: Float? = a.has("max") ? a.float("max", default: 0) : nil
        let hasMin = ctx.has(1)
        let hasMax = ctx.has(2)
        for i in 1..<3 where ctx.has(i) {
            let d = try ctx.input(i)
            if d.count != 1 { throw ctx.invalid("min/max must be scalars, got shape " + shapeText(d.shape)) }
            if d.dtype != x.dtype { throw ctx.invalid("min/max type " + d.dtype.name + " differs from input " + x.dtype.name) }
        }
        if x.dtype.isInteger {
            return PreparedOp(outputs: [x]) { args in
                let lo: Int64 = hasMin ? args.input(1).int64(0) : (attrMin.map { Int64($0) } ?? Int64.min)
                let hi: Int64 = hasMax ? args.input(2).int64(0) : (attrMax.map { Int64($0) } ?? Int64.max)
                let src = args.input(0)
                let dst = args.output(0)
                for i in 0..<n {
                    let v = src.int64(i)
                    dst.setInt64(i, v < lo ? lo : (v > hi ? hi : v))
                }
            }
        }
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        if x.dtype == .f32 {
            return PreparedOp(outputs: [x]) { args in
                let lo: Float = hasMin ? args.input(1).pointer(as: Float.self)[0] : (attrMin ?? -Float.infinity)
                let hi: Float = hasMax ? args.input(2).pointer(as: Float.self)[0] : (attrMax ?? Float.infinity)
                let src = args.input(0).pointer(as: Float.self)
                let dst = args.output(0).pointer(as: Float.self)
                for i in 0..<n {
                    let v = src[i]
                    dst[i] = v < lo ? lo : (v > hi ? hi : v)
                }
            }
        }
        return PreparedOp(outputs: [x]) { args in
            let lo: Double = hasMin ? args.input(1).double(0) : (attrMin.map { Double($0) } ?? -Double.infinity)
            let hi: Double = hasMax ? args.input(2).double(0) : (attrMax.map { Double($0) } ?? Double.infinity)
            let src = args.input(0)
            let dst = args.output(0)
            for i in 0..<n {
                let v = src.double(i)
                dst.setDouble(i, v < lo ? lo : (v > hi ? hi : v))
            }
        }
    }
}

struct ReluMap: FloatMap {
    func apply(_ x: Float) -> Float { x > 0 ? x : 0 }
    func apply(_ x: Double) -> Double { x > 0 ? x : 0 }
}

struct LeakyReluMap: FloatMap {
    let alpha: Float
    func apply(_ x: Float) -> Float { x >= 0 ? x : x * alpha }
    func apply(_ x: Double) -> Double { x >= 0 ? x : x * Double(alpha) }
}

struct SigmoidMap: FloatMap {
    // Written so that neither branch overflows exp for large |x|.
    func apply(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + perch_expf(-x)) }
        let e = perch_expf(x)
        return e / (1 + e)
    }
    func apply(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + perch_exp(-x)) }
        let e = perch_exp(x)
        return e / (1 + e)
    }
}

/// x·sigmoid(x): a Sigmoid with its Mul folded in (`_times_input`), for f64/f16/bf16.
struct SiluMap: FloatMap {
    func apply(_ x: Float) -> Float { x * SigmoidMap().apply(x) }
    func apply(_ x: Double) -> Double { x * SigmoidMap().apply(x) }
}

/// max(0, min(1, alpha*x + beta)), times x for HardSwish.
struct HardSigmoidMap: FloatMap {
    let alpha: Float
    let beta: Float
    var timesX = false
    func apply(_ x: Float) -> Float {
        var v = alpha * x + beta
        v = v < 0 ? 0 : (v > 1 ? 1 : v)
        return timesX ? x * v : v
    }
    func apply(_ x: Double) -> Double {
        var v = Double(alpha) * x + Double(beta)
        v = v < 0 ? 0 : (v > 1 ? 1 : v)
        return timesX ? x * v : v
    }
}

struct TanhMap: FloatMap {
    func apply(_ x: Float) -> Float { perch_tanhf(x) }
    func apply(_ x: Double) -> Double { perch_tanh(x) }
}

struct ErfMap: FloatMap {
    func apply(_ x: Float) -> Float { erfApproximation(x) }
    func apply(_ x: Double) -> Double { perch_erf(x) }
}

struct GeluMap: FloatMap {
    let tanhApproximation: Bool
    func apply(_ x: Float) -> Float {
        if tanhApproximation {
            let inner: Float = 0.7978845608028654 * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + perch_tanhf(inner))
        }
        return 0.5 * x * (1 + erfApproximation(x * 0.7071067811865476))
    }
    func apply(_ x: Double) -> Double {
        if tanhApproximation {
            return 0.5 * x * (1 + perch_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
        }
        return 0.5 * x * (1 + perch_erf(x * 0.7071067811865476))
    }
}

struct SeluMap: FloatMap {
    let alpha: Float
    let gamma: Float
    func apply(_ x: Float) -> Float { x > 0 ? gamma * x : gamma * alpha * (perch_expf(x) - 1) }
    func apply(_ x: Double) -> Double { x > 0 ? Double(gamma) * x : Double(gamma) * Double(alpha) * (perch_exp(x) - 1) }
}

/// log(1 + e^x), computed without overflow for large x.
struct SoftplusMap: FloatMap {
    func apply(_ x: Float) -> Float { x > 20 ? x : perch_logf(1 + perch_expf(x)) }
    func apply(_ x: Double) -> Double { x > 40 ? x : perch_log(1 + perch_exp(x)) }
}

struct SoftsignMap: FloatMap {
    func apply(_ x: Float) -> Float { x / (1 + (x < 0 ? -x : x)) }
    func apply(_ x: Double) -> Double { x / (1 + (x < 0 ? -x : x)) }
}

struct EluMap: FloatMap {
    let alpha: Float
    func apply(_ x: Float) -> Float { x >= 0 ? x : alpha * (perch_expf(x) - 1) }
    func apply(_ x: Double) -> Double { x >= 0 ? x : Double(alpha) * (perch_exp(x) - 1) }
}

/// Mish: `x * tanh(softplus(x))`.
struct MishMap: FloatMap {
    func apply(_ x: Float) -> Float { x * perch_tanhf(SoftplusMap().apply(x)) }
    func apply(_ x: Double) -> Double { x * perch_tanh(SoftplusMap().apply(x)) }
}

import CPerchShims
import PerchGraph

/// Tan and the inverse and hyperbolic trigonometric functions (Acos, Acosh, Asin, Asinh, Atan,
/// Atanh, Cosh, Sinh): libm per element, floating-point types. Arguments outside a function's
/// domain give NaN, as in NumPy and ONNX Runtime.
extension ElementwiseOperator {
    public static func prepareTrig(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .tan: return try preparedFloatMap(ctx, TrigMap(kind: .tan))
        case .acos: return try preparedFloatMap(ctx, TrigMap(kind: .acos))
        case .asin: return try preparedFloatMap(ctx, TrigMap(kind: .asin))
        case .atan: return try preparedFloatMap(ctx, TrigMap(kind: .atan))
        case .acosh: return try preparedFloatMap(ctx, TrigMap(kind: .acosh))
        case .asinh: return try preparedFloatMap(ctx, TrigMap(kind: .asinh))
        case .atanh: return try preparedFloatMap(ctx, TrigMap(kind: .atanh))
        case .cosh: return try preparedFloatMap(ctx, TrigMap(kind: .cosh))
        case .sinh: return try preparedFloatMap(ctx, TrigMap(kind: .sinh))
        default: throw ctx.unsupported("not a trigonometric operator")
        }
    }
}

/// One of the libm functions, chosen by `kind` (a constant of the loop, so the optimizer can
/// unswitch it; these ops are rarely hot).
struct TrigMap: FloatMap {
    enum Kind { case tan, acos, asin, atan, acosh, asinh, atanh, cosh, sinh }
    let kind: Kind

    func apply(_ x: Float) -> Float {
        switch kind {
        case .tan: return perch_tanf(x)
        case .acos: return perch_acosf(x)
        case .asin: return perch_asinf(x)
        case .atan: return perch_atanf(x)
        case .acosh: return perch_acoshf(x)
        case .asinh: return perch_asinhf(x)
        case .atanh: return perch_atanhf(x)
        case .cosh: return perch_coshf(x)
        case .sinh: return perch_sinhf(x)
        }
    }

    func apply(_ x: Double) -> Double {
        switch kind {
        case .tan: return perch_tan(x)
        case .acos: return perch_acos(x)
        case .asin: return perch_asin(x)
        case .atan: return perch_atan(x)
        case .acosh: return perch_acosh(x)
        case .asinh: return perch_asinh(x)
        case .atanh: return perch_atanh(x)
        case .cosh: return perch_cosh(x)
        case .sinh: return perch_sinh(x)
        }
    }
}

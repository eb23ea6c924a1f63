import PerchGraph

/// Fixed-point requantization, as gemmlowp and TensorFlow Lite define it: a real multiplier
/// `scale_in * scale_w / scale_out` becomes an int32 multiplier in [2^30, 2^31) and a power-of-two
/// shift, and an int32 accumulator is rescaled with integer arithmetic only. Every ISA runs this
/// same code on the int32 results of its GEMM, so quantized outputs are bit-exact across ISAs.
public struct QuantizedMultiplier: Sendable, Equatable {
    /// Q31 multiplier; 0 when the real multiplier is 0.
    public var multiplier: Int32
    /// Positive: shift left before multiplying; negative: rounding shift right after.
    public var shift: Int32

    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    /// TFLite's `QuantizeMultiplier`: frexp, round the mantissa to Q31, fix the 2^31 overflow.
    /// Multipliers too small to represent (shift < -31) become 0.
    public init(_ real: Double) {
        guard real > 0, real.isFinite else {
            self.init(multiplier: 0, shift: 0)
            return
        }
        // frexp without libm: real = m * 2^e, m in [0.5, 1).
        var e: Int32 = 0
        var m = real
        while m >= 1 { m *= 0.5; e += 1 }
        while m < 0.5 { m *= 2; e -= 1 }
        var q = Int64((m * 2147483648.0).rounded(.toNearestOrAwayFromZero))
        if q == 2147483648 {
            q /= 2
            e += 1
        }
        if e < -31 {
            self.init(multiplier: 0, shift: 0)
            return
        }
        if e > 30 { e = 30; q = Int64(Int32.max) }
        self.init(multiplier: Int32(q), shift: e)
    }
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: round(a * b / 2^31), saturating the single
/// overflow case (INT32_MIN * INT32_MIN).
@inline(__always)
public func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
    if a == Int32.min && b == Int32.min { return Int32.max }
    let ab = Int64(a) * Int64(b)
    let nudge: Int64 = ab >= 0 ? (1 << 30) : (1 - (1 << 30))
    // Division truncates toward zero, as C's int64 division in gemmlowp.
    return Int32(truncatingIfNeeded: (ab + nudge) / (1 << 31))
}

/// gemmlowp's `RoundingDivideByPOT`: x / 2^exponent rounded to nearest, ties away from zero.
@inline(__always)
public func roundingDivideByPOT(_ x: Int32, _ exponent: Int32) -> Int32 {
    if exponent <= 0 { return x }
    let mask: Int32 = Int32(truncatingIfNeeded: (Int64(1) << Int64(exponent)) - 1)
    let remainder = x & mask
    let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
    return (x >> exponent) + (remainder > threshold ? 1 : 0)
}

/// TFLite's `MultiplyByQuantizedMultiplier`.
@inline(__always)
public func multiplyByQuantizedMultiplier(_ x: Int32, _ q: QuantizedMultiplier) -> Int32 {
    let left: Int32 = q.shift > 0 ? q.shift : 0
    let right: Int32 = q.shift > 0 ? 0 : -q.shift
    // Saturate the left shift as TFLite does (a multiplication that overflows int32 clamps).
    let shifted = Int64(x) << Int64(left)
    let clamped = Int32(clamping: shifted)
    return roundingDivideByPOT(saturatingRoundingDoublingHighMul(clamped, q.multiplier), right)
}

/// Requantizes one accumulator to the output's integer range [lo, hi] (which already includes a
/// fused ReLU / Clip): `clamp(zeroPoint + acc * multiplier, lo, hi)`.
@inline(__always)
public func requantize(_ acc: Int32, _ q: QuantizedMultiplier, zeroPoint: Int32, lo: Int32, hi: Int32) -> Int32 {
    let v = multiplyByQuantizedMultiplier(acc, q) &+ zeroPoint
    return v < lo ? lo : (v > hi ? hi : v)
}

/// The integer range of a quantized activation type (int8 or uint8).
@inline(__always)
public func quantizedRange(_ dtype: DType) -> (Int32, Int32) {
    dtype == .i8 ? (-128, 127) : (0, 255)
}

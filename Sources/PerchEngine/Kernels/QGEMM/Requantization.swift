import PerchGraph

/// Fixed-point requantization as TensorFlow Lite defines it: a real multiplier
/// `scale_in * scale_w / scale_out` becomes an int32 multiplier in [2^30, 2^31) and a power-of-two
/// shift, and an int32 accumulator is rescaled with integer arithmetic only. Every ISA runs this
/// same code on the int32 results of its GEMM, so quantized outputs are bit-exact across ISAs.
public struct QuantizedMultiplier: Sendable, Equatable {
    /// Q31 multiplier; 0 when the real multiplier is 0.
    public var multiplier: Int32
    /// Positive: shift left before multiplying; negative: rounding shift right after.
    public var shift: Int32

    /// A multiplier below 1 (a right shift of 0…31 bits), as every scale ratio of a convolution
    /// quantized from float is: the per-lane SIMD requantizations take only these.
    public var isRightShift: Bool { shift <= 0 && shift >= -31 }

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

/// TFLite's `MultiplyByQuantizedMultiplier` in its single-rounding form (TFLITE_SINGLE_ROUNDING):
/// a positive shift first shifts `x` left (saturating); then x·multiplier, exact in 64 bits, is
/// divided by 2^(31 + right) rounding half up. One rounding, where gemmlowp's doubling high
/// multiply followed by a rounding divide rounded twice: values within 2^−(right+1) of a half step
/// went the other way, a step from ONNX Runtime's float requantization on ~0.5% of outputs.
@inline(__always)
public func multiplyByQuantizedMultiplier(_ x: Int32, _ q: QuantizedMultiplier) -> Int32 {
    let left: Int32 = q.shift > 0 ? q.shift : 0
    let right: Int32 = q.shift > 0 ? 0 : -q.shift
    let shifted = Int32(clamping: Int64(x) << Int64(left))
    let t = Int64(shifted) * Int64(q.multiplier) + (Int64(1) << Int64(30 + right))
    return Int32(truncatingIfNeeded: t >> Int64(31 + right))  // |t| < 2^62: the quotient fits
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

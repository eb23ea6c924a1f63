import CPerchShims

/// Which SIMD paths the elementwise kernels of CPerchElementwise.h take on this CPU. Follows the
/// int8 GEMM's choice (`Int8GEMM.bestISA()`, so `PERCH_INT8_ISA=scalar` forces the scalar
/// references everywhere and `avx2` the AVX2 kernels); the AVX-512 byte lookup additionally
/// needs VBMI (without it, AVX-512 machines take the AVX2 lookup).
public struct VectorISA: Sendable, Equatable {
    /// AVX-512 F/BW/VL/DQ (with VNNI, as the int8 GEMM detects it).
    public var avx512: Bool
    /// vpermt2b for 256-byte tables.
    public var avx512vbmi: Bool
    /// AVX2 + FMA (used where `avx512` is off).
    public var avx2: Bool
    public var neon: Bool

    public static let scalar = VectorISA(avx512: false, avx512vbmi: false, avx2: false, neon: false)

    public init(avx512: Bool, avx512vbmi: Bool, avx2: Bool, neon: Bool) {
        self.avx512 = avx512
        self.avx512vbmi = avx512vbmi
        self.avx2 = avx2
        self.neon = neon
    }

    /// The best paths for this CPU (detected once per call; call at prepare time).
    public static func best() -> VectorISA {
        switch Int8GEMM.bestISA() {
        case .avx512vnni: return VectorISA(avx512: true, avx512vbmi: perch_cpu_avx512vbmi() != 0, avx2: true, neon: false)
        case .avx2: return VectorISA(avx512: false, avx512vbmi: false, avx2: true, neon: false)
        case .neon, .neondot, .i8mm: return VectorISA(avx512: false, avx512vbmi: false, avx2: false, neon: true)
        default: return .scalar
        }
    }

    /// dst[i] = erf(src[i]), or GELU (erf form) with `gelu` (see CPerchErfGelu.h); dst may be src.
    @inline(__always)
    public func erfGelu(_ src: UnsafePointer<Float>, _ n: Int, gelu: Bool, _ dst: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        if avx512 { perch_erf_gelu_f32_avx512(src, n, gelu ? 1 : 0, dst); return }
        if avx2 { perch_erf_gelu_f32_avx2(src, n, gelu ? 1 : 0, dst); return }
        #endif
        perch_erf_gelu_f32_scalar(src, n, gelu ? 1 : 0, dst)
    }

    /// dst[i] = sigmoid, tanh or SiLU of src[i] (see CPerchSigmoidTanh.h: bit-identical on every
    /// path); dst may be src.
    @inline(__always)
    public func sigmoidTanh(_ src: UnsafePointer<Float>, _ n: Int, _ function: FloatCurve, _ dst: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        if avx512 { perch_sigmoid_tanh_f32_avx512(src, n, function.rawValue, dst); return }
        if avx2 { perch_sigmoid_tanh_f32_avx2(src, n, function.rawValue, dst); return }
        #elseif arch(arm64)
        if neon { perch_sigmoid_tanh_f32_neon(src, n, function.rawValue, dst); return }
        #endif
        perch_sigmoid_tanh_f32_scalar(src, n, function.rawValue, dst)
    }

    /// dst[i] = table[src[i]] for a 256-entry table.
    @inline(__always)
    public func lookup(_ src: UnsafePointer<UInt8>, _ n: Int, _ table: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if avx512vbmi { perch_lut8_avx512vbmi(src, n, table, dst); return }
        if avx2 { perch_lut8_avx2(src, n, table, dst); return }
        #elseif arch(arm64)
        if neon { perch_lut8_neon(src, n, table, dst); return }
        #endif
        perch_lut8_scalar(src, n, table, dst)
    }

    /// Per-tensor QuantizeLinear float32 → 8-bit codes (see perch_quantize_f32_8bit).
    @inline(__always)
    public func quantize(_ src: UnsafePointer<Float>, _ n: Int, scale: Float, zero: Float, lo: Float, hi: Float,
                         _ dst: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if avx512 { perch_quantize_f32_8bit_avx512(src, n, scale, zero, lo, hi, dst); return }
        if avx2 { perch_quantize_f32_8bit_avx2(src, n, scale, zero, lo, hi, dst); return }
        #endif
        perch_quantize_f32_8bit(src, n, scale, zero, lo, hi, dst)
    }

    /// Per-tensor DequantizeLinear 8-bit codes → float32.
    @inline(__always)
    public func dequantize(_ src: UnsafePointer<UInt8>, signed: Bool, _ n: Int, zero: Int32, scale: Float,
                           _ dst: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        if avx512 { perch_dequantize_8bit_f32_avx512(src, signed ? 1 : 0, n, zero, scale, dst); return }
        if avx2 { perch_dequantize_8bit_f32_avx2(src, signed ? 1 : 0, n, zero, scale, dst); return }
        #endif
        perch_dequantize_8bit_f32_scalar(src, signed ? 1 : 0, n, zero, scale, dst)
    }

    /// QLinearMul of two same-length 8-bit runs (see perch_qmul_scalar).
    @inline(__always)
    public func qmul(_ a: UnsafePointer<UInt8>, aSigned: Bool, za: Int32, _ b: UnsafePointer<UInt8>, bSigned: Bool, zb: Int32,
                     _ n: Int, _ q: QuantizedMultiplier, zy: Int32, lo: Int32, hi: Int32, _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if avx512 {
            perch_qmul_avx512(a, aSigned ? 1 : 0, za, b, bSigned ? 1 : 0, zb, n, q.multiplier, q.shift, zy, lo, hi, out)
            return
        }
        if avx2 {
            perch_qmul_avx2(a, aSigned ? 1 : 0, za, b, bSigned ? 1 : 0, zb, n, q.multiplier, q.shift, zy, lo, hi, out)
            return
        }
        #endif
        perch_qmul_scalar(a, aSigned ? 1 : 0, za, b, bSigned ? 1 : 0, zb, n, q.multiplier, q.shift, zy, lo, hi, out)
    }

    /// out[i] = requant(acc[i] + add) with one fixed-point multiplier (perch_qrequant_row_*).
    @inline(__always)
    public func requantRow(_ acc: UnsafePointer<Int32>, _ n: Int, add: Int32, _ q: QuantizedMultiplier, zp: Int32, lo: Int32, hi: Int32,
                           _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if avx512 { perch_qrequant_row_avx512(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out); return }
        if avx2 { perch_qrequant_row_avx2(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out); return }
        #endif
        perch_qrequant_row_scalar(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out)
    }

    /// Softmax of one contiguous row of n ≥ 1 floats.
    @inline(__always)
    public func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        #if arch(x86_64)
        if avx512 { perch_softmax_row_f32_avx512(x, y, n); return }
        if avx2 { perch_softmax_row_f32_avx2(x, y, n); return }
        #endif
        perch_softmax_row_f32_scalar(x, y, n)
    }

    /// Softmax down `cols` columns of `n` rows `ld` floats apart (see perch_softmax_columns_f32_scalar).
    @inline(__always)
    public func softmaxColumns(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ cols: Int, _ ld: Int) {
        #if arch(x86_64)
        if avx2 { perch_softmax_columns_f32_avx2(x, y, n, cols, ld); return }
        #endif
        perch_softmax_columns_f32_scalar(x, y, n, cols, ld)
    }

    /// LayerNormalization of one row with per-element scale and optional bias; returns (mean, inv).
    @inline(__always)
    public func layerNormRow(_ x: UnsafePointer<Float>, _ n: Int, scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                             epsilon: Float, _ y: UnsafeMutablePointer<Float>) -> (Float, Float) {
        var mean: Float = 0, inv: Float = 0
        #if arch(x86_64)
        if avx512 {
            perch_layernorm_row_f32_avx512(x, n, scale, bias, epsilon, y, &mean, &inv)
            return (mean, inv)
        }
        if avx2 {
            perch_layernorm_row_f32_avx2(x, n, scale, bias, epsilon, y, &mean, &inv)
            return (mean, inv)
        }
        #endif
        perch_layernorm_row_f32_scalar(x, n, scale, bias, epsilon, y, &mean, &inv)
        return (mean, inv)
    }
}

/// The functions of `VectorISA.sigmoidTanh` (raw values are CPerchSigmoidTanh.h's PERCH_ACT_*).
public enum FloatCurve: Int32, Sendable {
    case sigmoid = 0
    case tanh = 1
    /// x·sigmoid(x) (Swish with α = 1): a Sigmoid and the Mul by its own input, fused.
    case silu = 2
}

/// Runs `body(range)` over `0..<n` split into up to `args.threads` parts (bounds multiples of
/// 64, each at least `grain` elements) when n is at least `minimum`, else once over everything on
/// the calling thread. The SIMD kernels above take well under a nanosecond per element, so waking
/// a worker (microseconds, and far more when the cores are shared) pays only for large tensors;
/// slower bodies pass smaller bounds.
@inline(__always)
func parallelElementwise(_ args: KernelArgs, _ n: Int, minimum: Int = 1 << 18, grain: Int = 1 << 17, _ body: (Range<Int>) -> Void) {
    let parts = n >= minimum ? Swift.min(args.threads, n / grain) : 1
    if parts <= 1 {
        body(0..<n)
        return
    }
    args.parallelFor(parts) { i in body(splitRange(n, parts: parts, part: i, align: 64)) }
}

/// `parallelElementwise` for byte lookups, split from 32K elements: a SIMD lookup costs a fraction
/// of a nanosecond per byte, so the 256K default left most of YOLO's 53 SiLU tables on one thread
/// (2 threads: min latency 3.34 → 3.25 ms on Zen 3).
@inline(__always)
func parallelLookup(_ args: KernelArgs, _ n: Int, _ body: (Range<Int>) -> Void) {
    parallelElementwise(args, n, minimum: 1 << 15, grain: 1 << 14, body)
}

import CPerchShims
import PerchGraph

/// The int8 GEMM code paths. Each computes C[m][n] = Σ_k A[m][k]·B[n][k] (A uint8, B int8, C int32)
/// exactly, so they agree bit for bit; `scalar` is the reference the others are tested against.
public enum Int8ISA: Int, Sendable, CaseIterable {
    case scalar = 0
    case avx2
    case avx512vnni
    case neon
    case neondot
    /// aarch64 with i8mm (USDOT: uint8 × int8 directly); implies dotprod.
    case i8mm

    public var name: String {
        switch self {
        case .scalar: return "scalar"
        case .avx2: return "avx2"
        case .avx512vnni: return "avx512vnni"
        case .neon: return "neon"
        case .neondot: return "neondot"
        case .i8mm: return "i8mm"
        }
    }
}

public enum Int8GEMM {
    /// Rows of A and B must be padded with zeros to a multiple of this for the SIMD paths.
    public static let kAlign = 64

    /// Paths this CPU can run (detected at run time; compiled in by architecture).
    public static func availableISAs() -> [Int8ISA] {
        let f = Int(perch_cpu_features())
        var out: [Int8ISA] = [.scalar]
        #if arch(x86_64)
        if f & Int(PERCH_CPU_AVX2) != 0 { out.append(.avx2) }
        if f & Int(PERCH_CPU_AVX512VNNI) != 0 { out.append(.avx512vnni) }
        #elseif arch(arm64)
        if f & Int(PERCH_CPU_NEON) != 0 { out.append(.neon) }
        if f & Int(PERCH_CPU_DOTPROD) != 0 { out.append(.neondot) }
        if f & Int(PERCH_CPU_DOTPROD) != 0 && f & Int(PERCH_CPU_I8MM) != 0 { out.append(.i8mm) }
        #endif
        return out
    }

    /// The fastest path this CPU can run.
    /// `PERCH_INT8_ISA=scalar|avx2|avx512vnni|neon|neondot|i8mm` picks another available path (diagnostics, comparisons).
    public static func bestISA() -> Int8ISA {
        let available = availableISAs()
        if let e = getenv("PERCH_INT8_ISA") {
            let name = String(cString: e)
            for isa in available where isa.name == name { return isa }
        }
        return available.last ?? .scalar
    }

    public static func paddedK(_ k: Int) -> Int { (k + kAlign - 1) / kAlign * kAlign }

    /// Columns between the K4 rows of a row-major B of `columns` columns, as QLinearMatMul packs
    /// its weights (`gemmRowMajor`'s `ldb`).
    public static func rowMajorStride(columns: Int) -> Int { QLinearLayer.rowMajorStride(columns: columns, block: 32) }

    /// C (M×N, row stride ldc) = A (M×4·k4, uint8, stride lda) · B, with B in the K4 layout
    /// QLinearMatMul and small-map 1×1 convs pack their weights in: for each group of 4 k, `ldb`
    /// (`rowMajorStride`) columns of 4 int8 values (B[4·k4 + i][j] at `b[(k4·ldb + j)·4 + i]`),
    /// zero padded. The engine's int8 GEMM as those layers run it (before requantization);
    /// exposed for the GEMM benchmark.
    public static func gemmRowMajor(_ isa: Int8ISA, m: Int, n: Int, k4: Int, a: UnsafePointer<UInt8>, lda: Int,
                                    b: UnsafePointer<Int8>, ldb: Int, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        QConvISA.from(isa).gemmRowMajor(m: m, n: n, k4: k4, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
    }

    /// C (M×N, row stride ldc) = A (M×K, stride lda) · Bᵀ (N×K, stride ldb). For SIMD paths K must
    /// be a multiple of `kAlign` (pad rows with zeros). Touches only rows 0..<M of C, so row
    /// ranges can be given to different threads by offsetting A and C.
    @inline(__always)
    public static func gemm(_ isa: Int8ISA, m: Int, n: Int, k: Int,
                            a: UnsafePointer<UInt8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
                            c: UnsafeMutablePointer<Int32>, ldc: Int) {
        switch isa {
        #if arch(x86_64)
        case .avx2: perch_qgemm_u8i8_avx2(m, n, k, a, lda, b, ldb, c, ldc)
        case .avx512vnni: perch_qgemm_u8i8_avx512vnni(m, n, k, a, lda, b, ldb, c, ldc)
        #elseif arch(arm64)
        case .neon: perch_qgemm_u8i8_neon(m, n, k, a, lda, b, ldb, c, ldc)
        case .neondot, .i8mm: perch_qgemm_u8i8_neondot(m, n, k, a, lda, b, ldb, c, ldc)
        #endif
        default: perch_qgemm_u8i8_scalar(m, n, k, a, lda, b, ldb, c, ldc)
        }
    }
}

/// Weights and output parameters of one quantized linear layer (MatMul, Gemm, Conv group),
/// prepared once: int8 weights transposed to N×Kp rows padded with zeros, the zero-point terms
/// folded into a per-column constant, and one fixed-point multiplier per output column.
///
/// With activations a (zero point za) and weights w (per-column zero point zw):
///   Σ(a−za)(w−zw) = Σ a·w − za·Σw − zw·Σa + K·za·zw
/// The first term is the GEMM; `columnTerm` holds bias − za·Σw + K·za·zw; the zw·Σa term is
/// only computed when some zw ≠ 0 (uint8 weights).
struct QLinearLayer {
    var n: Int
    var k: Int
    var kp: Int
    var weights: [Int8]
    var columnTerm: [Int32]
    var weightZero: [Int32]
    var needsRowSums: Bool
    var multipliers: [QuantizedMultiplier]
    var outZero: Int32
    var lo: Int32
    var hi: Int32
    /// When true the output is the int32 accumulator itself (MatMulInteger, ConvInteger).
    var int32Output: Bool
    var isa: Int8ISA

    /// Row-major form (MatMul, small-map 1×1 Conv): weights as [K4][ldb][4] (ldb = N rounded up to
    /// the kernel's column block, zero padded) and the multipliers as separate arrays; empty until
    /// `packRowMajor`.
    var packedB: [Int8] = []
    var ldb = 0
    var mults: [Int32] = []
    var shifts: [Int32] = []
    var rightShifts: [Int32] = []
    var allRightShifts = true

    /// Columns between the K4 rows of a row-major B: `columns` rounded up to the kernels' `block`,
    /// plus one 64-byte line (16 columns). Without it a power-of-two width (256 columns: 1 KB
    /// rows) put all the K4 rows a column block reads into a few of L1's 64 sets, so they were
    /// fetched from L2 again for every block of rows of A.
    static func rowMajorStride(columns: Int, block: Int) -> Int {
        (columns + block - 1) / block * block + 16
    }

    /// `columnBlock`: columns the kernel reads per step (32 for the row-major GEMMs, 64 for
    /// perch_qconv_k4t_*).
    mutating func packRowMajor(columnBlock: Int = 32) {
        let k4 = (k + 3) / 4
        ldb = Self.rowMajorStride(columns: n, block: columnBlock)
        packedB = [Int8](repeating: 0, count: k4 * ldb * 4)
        for j in 0..<n { for i in 0..<k { packedB[((i / 4) * ldb + j) * 4 + i % 4] = weights[j * kp + i] } }
        mults = multipliers.map { $0.multiplier }
        shifts = multipliers.map { $0.shift }
        rightShifts = shifts.map { -$0 }
        allRightShifts = shifts.allSatisfy { $0 <= 0 }
    }

    /// B in panels of `PERCH_GEMV_PANEL` columns (perch_qgemv_panels_avx2) instead of
    /// `packedB`, for AVX2 layers that multiply only a few rows (a classifier's GEMV, bound by
    /// streaming B). Column ranges given to `runRowMajor` must then start at a panel boundary.
    var panelB: [Int8] = []

    /// Packs `panelB` and drops `packedB` (one copy of the weights).
    mutating func packPanels() {
        let k4 = (k + 3) / 4, w = Int(PERCH_GEMV_PANEL)
        let panels = (n + w - 1) / w
        panelB = [Int8](repeating: 0, count: panels * w * k4 * 4)
        for j in 0..<n {
            let base = (j / w) * w * k4 * 4 + (j % w) * 4
            for i in 0..<k { panelB[base + (i / 4) * w * 4 + i % 4] = weights[j * kp + i] }
        }
        packedB = []
    }

    /// Rows 0..<m of A (uint8, stride lda ≥ 4·⌈K/4⌉, zero padded) through the row-major kernel
    /// into `acc` (m×n), then requantized row by row into `out` (m×n bytes, row-major), or with
    /// `int32Output` stored as m×n int32 sums.
    @inline(__always)
    /// `columns` (default: all) selects output columns, so threads can split a single row's
    /// columns (a classifier's GEMV); a range should start at a multiple of 64, or of the panel
    /// width with `panelB`.
    func runRowMajor(m: Int, a: UnsafePointer<UInt8>, lda: Int, rowSums: UnsafePointer<Int32>, acc: UnsafeMutablePointer<Int32>,
                     out: UnsafeMutablePointer<UInt8>, isa: QConvISA, columns: Range<Int>? = nil) {
        let cols = columns ?? 0..<n
        let c0 = cols.lowerBound, cn = cols.count
        if !panelB.isEmpty {
            #if arch(x86_64)
            let k4 = (k + 3) / 4
            panelB.withUnsafeBufferPointer { b in perch_qgemv_panels_avx2(m, cn, k4, a, lda, b.baseAddress! + c0 * k4 * 4, acc + c0, n) }
            #endif
        } else {
            packedB.withUnsafeBufferPointer { b in
                isa.gemmRowMajor(m: m, n: cn, k4: (k + 3) / 4, a: a, lda: lda, b: b.baseAddress! + c0 * 4, ldb: ldb, c: acc + c0, ldc: n)
            }
        }
        if needsRowSums {
            weightZero.withUnsafeBufferPointer { wz in
                for i in 0..<m {
                    let rs = rowSums[i]
                    let row = acc + i * n
                    for j in cols { row[j] = row[j] &- wz[j] &* rs }
                }
            }
        }
        if int32Output {
            // MatMulInteger: the sums themselves, plus the zero-point terms.
            let out32 = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Int32.self)
            columnTerm.withUnsafeBufferPointer { ct in
                for i in 0..<m {
                    let row = acc + i * n, y = out32 + i * n
                    for j in cols { y[j] = row[j] &+ ct[j] }
                }
            }
            return
        }
        columnTerm.withUnsafeBufferPointer { ct in mults.withUnsafeBufferPointer { mu in shifts.withUnsafeBufferPointer { sh in
            rightShifts.withUnsafeBufferPointer { rs in
                for i in 0..<m {
                    isa.requantColumns(acc + i * n + c0, cn, add: ct.baseAddress! + c0, mult: mu.baseAddress! + c0, shift: sh.baseAddress! + c0,
                                       rightShift: rs.baseAddress! + c0, allRight: allRightShifts, zp: outZero, lo: lo, hi: hi,
                                       out + i * n + c0)
                }
            }
        } } }
    }

    /// `weight(n, k)` returns the weight as stored (int8 or uint8 value), `weightZero(n)` its zero
    /// point; int8 activations are shifted to uint8 by the caller (za passed here already shifted).
    init(n: Int, k: Int, weight: (Int, Int) -> Int32, weightZero wz: (Int) -> Int32, weightsAreU8: Bool,
         activationZero za: Int32, bias: (Int) -> Int32, multiplier: (Int) -> Double,
         outZero: Int32, lo: Int32, hi: Int32, int32Output: Bool, isa: Int8ISA) {
        self.n = n
        self.k = k
        kp = Int8GEMM.paddedK(k)
        weights = [Int8](repeating: 0, count: n * kp)
        columnTerm = [Int32](repeating: 0, count: n)
        weightZero = [Int32](repeating: 0, count: n)
        multipliers = [QuantizedMultiplier](repeating: QuantizedMultiplier(multiplier: 0, shift: 0), count: n)
        var rowSums = false
        let offset: Int32 = weightsAreU8 ? 128 : 0
        for j in 0..<n {
            var sum: Int32 = 0
            for i in 0..<k {
                let w = weight(j, i) - offset
                weights[j * kp + i] = Int8(truncatingIfNeeded: w)
                sum &+= w
            }
            let z = wz(j) - offset
            weightZero[j] = z
            if z != 0 { rowSums = true }
            columnTerm[j] = bias(j) &- za &* sum &+ Int32(k) &* za &* z
            multipliers[j] = QuantizedMultiplier(multiplier(j))
        }
        needsRowSums = rowSums
        self.outZero = outZero
        self.lo = lo
        self.hi = hi
        self.int32Output = int32Output
        self.isa = isa
    }

    /// Runs rows 0..<m of A (uint8, stride kp, zero padded) into `acc` (m×n int32 scratch), then
    /// writes output element (row i, column j) at `out + i*rowStride + j*colStride` (elements).
    /// `rowSums` (m values) is read only when `needsRowSums`.
    @inline(__always)
    func run(m: Int, a: UnsafePointer<UInt8>, rowSums: UnsafePointer<Int32>?, acc: UnsafeMutablePointer<Int32>,
             out: UnsafeMutableRawPointer, rowStride: Int, colStride: Int) {
        weights.withUnsafeBufferPointer { w in
            Int8GEMM.gemm(isa, m: m, n: n, k: kp, a: a, lda: kp, b: w.baseAddress!, ldb: kp, c: acc, ldc: n)
        }
        columnTerm.withUnsafeBufferPointer { ct in
            weightZero.withUnsafeBufferPointer { wz in
                multipliers.withUnsafeBufferPointer { mu in
                    if int32Output {
                        let o = out.assumingMemoryBound(to: Int32.self)
                        for i in 0..<m {
                            let rs = needsRowSums ? rowSums![i] : 0
                            for j in 0..<n {
                                o[i * rowStride + j * colStride] = acc[i * n + j] &+ ct[j] &- wz[j] &* rs
                            }
                        }
                        return
                    }
                    let o = out.assumingMemoryBound(to: UInt8.self)
                    for i in 0..<m {
                        let rs = needsRowSums ? rowSums![i] : 0
                        for j in 0..<n {
                            let v = acc[i * n + j] &+ ct[j] &- wz[j] &* rs
                            let q = requantize(v, mu[j], zeroPoint: outZero, lo: lo, hi: hi)
                            o[i * rowStride + j * colStride] = UInt8(truncatingIfNeeded: q)
                        }
                    }
                }
            }
        }
    }
}

/// Reads quantization parameters (scale, zero point) that must be constants.
struct QuantParams {
    var scales: [Float]
    var zeros: [Int32]
    var dtype: DType

    init(_ ctx: OpContext, scale: Int, zero: Int, dtypeIfNoZero: DType) throws(EngineError) {
        let s = try ctx.requiredValue(scale)
        scales = s.floats
        guard !scales.isEmpty else { throw ctx.invalid("empty scale") }
        if ctx.has(zero) {
            let z = try ctx.requiredValue(zero)
            zeros = z.int64s.map { Int32(truncatingIfNeeded: $0) }
            dtype = z.dtype
            guard zeros.count == scales.count else { throw ctx.invalid("zero point and scale sizes differ") }
        } else {
            zeros = [Int32](repeating: 0, count: scales.count)
            dtype = dtypeIfNoZero
        }
    }

    func scale(_ i: Int) -> Float { scales.count == 1 ? scales[0] : scales[i] }
    func zero(_ i: Int) -> Int32 { zeros.count == 1 ? zeros[0] : zeros[i] }
    var isPerTensor: Bool { scales.count == 1 }
}

/// Copies `count` activations to uint8, flipping int8 to uint8 (x + 128) so every GEMM takes u8.
@inline(__always)
func loadActivations(_ src: UnsafeRawPointer, isI8: Bool, count: Int, to dst: UnsafeMutablePointer<UInt8>) {
    let s = src.assumingMemoryBound(to: UInt8.self)
    if isI8 {
        for i in 0..<count { dst[i] = s[i] ^ 0x80 }
    } else {
        dst.update(from: s, count: count)
    }
}

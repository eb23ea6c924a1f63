import CPerchShims
import PerchGraph

/// Prepares the quantized dense ops: QLinearMatMul, MatMulInteger and com.microsoft's QGemm.
/// The weight operand (B) is a constant, packed once (QLinearMatMul with a run-time B:
/// QLinearMatMulDynamic). A is processed in blocks of
/// `QGemmOperator.rowBlock` rows (pack → int8 GEMM → requantize), so the row range is the unit
/// a thread pool can split.
///
/// Perch extensions used by the QDQ fusion pass: QLinearMatMul may take an int32 bias as input 8
/// (scale a_scale·b_scale, zero point 0), and attributes `_qmin`/`_qmax` clamp the quantized
/// output (a fused Relu or Clip).
public enum QGemmOperator {
    static let rowBlock = 64

    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .matMulInteger:
            return try prepareLinear(ctx, a: 0, aScale: nil, aZero: 2, b: 1, bScale: nil, bZero: 3, bias: nil,
                                     yScale: nil, yZero: nil, transB: false)
        case .qGemm:
            guard ctx.attributes.int("transA", default: 0) == 0 else { throw ctx.unsupported("transA=1") }
            guard ctx.attributes.float("alpha", default: 1) == 1 else { throw ctx.unsupported("alpha other than 1") }
            guard ctx.has(7) else { throw ctx.unsupported("float output (no y_scale)") }
            return try prepareLinear(ctx, a: 0, aScale: 1, aZero: 2, b: 3, bScale: 4, bZero: 5, bias: 6,
                                     yScale: 7, yZero: 8, transB: ctx.attributes.int("transB", default: 0) != 0)
        default:  // QLinearMatMul
            let bRank = try ctx.input(3).rank
            if ctx.value(3) == nil || bRank != 2 { return try QLinearMatMulDynamic.prepare(ctx) }
            return try prepareLinear(ctx, a: 0, aScale: 1, aZero: 2, b: 3, bScale: 4, bZero: 5, bias: 8,
                                     yScale: 6, yZero: 7, transB: false)
        }
    }

    /// Output range with a fused activation (`_qmin`/`_qmax`) intersected with the type's range.
    static func outputRange(_ ctx: OpContext, _ dtype: DType) -> (Int32, Int32) {
        var (lo, hi) = quantizedRange(dtype)
        lo = Swift.max(lo, Int32(ctx.attributes.int("_qmin", default: Int(lo))))
        hi = Swift.min(hi, Int32(ctx.attributes.int("_qmax", default: Int(hi))))
        return (lo, hi)
    }

    static func prepareLinear(_ ctx: OpContext, a ai: Int, aScale: Int?, aZero: Int, b bi: Int, bScale: Int?, bZero: Int,
                              bias: Int?, yScale: Int?, yZero: Int?, transB: Bool) throws(EngineError) -> PreparedOp {
        let a = try ctx.input(ai)
        let b = try ctx.input(bi)
        guard a.dtype == .u8 || a.dtype == .i8 else { throw ctx.unsupported("A of type " + a.dtype.name) }
        guard b.dtype == .u8 || b.dtype == .i8 else { throw ctx.unsupported("B of type " + b.dtype.name) }
        guard a.rank >= 1, b.rank == 2 else { throw ctx.unsupported("B of rank " + String(b.rank) + " (a 2-D constant is implemented)") }
        guard let bValue = ctx.value(bi) else { throw ctx.unsupported("B computed at run time (a constant weight is implemented)") }
        let k = transB ? b.shape[1] : b.shape[0]
        let n = transB ? b.shape[0] : b.shape[1]
        let aK = a.shape[a.rank - 1]
        guard aK == k else { throw ctx.invalid("A " + shapeText(a.shape) + " and B " + shapeText(b.shape) + " do not multiply") }
        let aIsI8 = a.dtype == .i8
        // MatMulInteger's a_zero_point computed at run time (a DynamicQuantizeLinear's, in models
        // from ONNX Runtime's quantize_dynamic): the product is computed for zero point 0 and
        // each output then loses z·Σₖ(B[k][j] − b_zero[j]).
        var runtimeZero = false
        var za: Int32 = 0
        var sa: Double = 1
        if let s = aScale {
            let p = try QuantParams(ctx, scale: s, zero: aZero, dtypeIfNoZero: a.dtype)
            guard p.isPerTensor else { throw ctx.unsupported("per-channel activation scale") }
            za = p.zero(0)
            sa = Double(p.scale(0))
        } else if ctx.has(aZero) {
            guard try ctx.input(aZero).count == 1 else { throw ctx.unsupported("per-row a_zero_point") }
            if let z = ctx.value(aZero) { za = Int32(truncatingIfNeeded: z.int64s[0]) } else { runtimeZero = true }
        }
        if aIsI8 { za += 128 }
        var wScales = [Float](repeating: 1, count: 1)
        var wZeros = [Int32](repeating: 0, count: 1)
        if let s = bScale {
            let p = try QuantParams(ctx, scale: s, zero: bZero, dtypeIfNoZero: b.dtype)
            wScales = p.scales
            wZeros = p.zeros
        } else if ctx.has(bZero) {
            wZeros = try ctx.requiredValue(bZero).int64s.map { Int32(truncatingIfNeeded: $0) }
        }
        guard wScales.count == 1 || wScales.count == n, wZeros.count == 1 || wZeros.count == n else {
            throw ctx.invalid("B's scale/zero point must have 1 or N=" + String(n) + " values")
        }
        var outType = DType.i32
        var sy: Double = 1
        var zy: Int32 = 0
        if let ys = yScale, let yz = yZero {
            let p = try QuantParams(ctx, scale: ys, zero: yz, dtypeIfNoZero: .u8)
            guard p.isPerTensor else { throw ctx.unsupported("per-channel output scale") }
            outType = p.dtype
            sy = Double(p.scale(0))
            zy = p.zero(0)
            guard outType == .u8 || outType == .i8 else { throw ctx.unsupported("output type " + outType.name) }
        }
        var biasValues: [Int32]? = nil
        if let bIdx = bias, ctx.has(bIdx) {
            let bv = try ctx.requiredValue(bIdx)
            guard bv.count == n else { throw ctx.invalid("bias must have N=" + String(n) + " values") }
            biasValues = bv.int64s.map { Int32(truncatingIfNeeded: $0) }
        }
        let (lo, hi) = outType == .i32 ? (Int32.min, Int32.max) : outputRange(ctx, outType)
        let raw = bValue.bytes
        let bIsU8 = b.dtype == .u8
        guard !runtimeZero || outType == .i32 else { throw ctx.unsupported("a run-time a_zero_point with a quantized output") }
        var zeroColumnSums = [Int32]()
        if runtimeZero {
            zeroColumnSums = [Int32](repeating: 0, count: n)
            for j in 0..<n {
                let zw = wZeros.count == 1 ? wZeros[0] : wZeros[j]
                var sum: Int32 = 0
                for i in 0..<k {
                    let idx = transB ? j * k + i : i * n + j
                    sum &+= (bIsU8 ? Int32(raw[idx]) : Int32(Int8(bitPattern: raw[idx]))) &- zw
                }
                zeroColumnSums[j] = sum
            }
        }
        var layer = QLinearLayer(
            n: n, k: k,
            weight: { j, i in
                let idx = transB ? j * k + i : i * n + j
                return bIsU8 ? Int32(raw[idx]) : Int32(Int8(bitPattern: raw[idx]))
            },
            weightZero: { j in wZeros.count == 1 ? wZeros[0] : wZeros[j] }, weightsAreU8: bIsU8,
            activationZero: za, bias: { j in biasValues?[j] ?? 0 },
            multiplier: { j in sa * Double(wScales.count == 1 ? wScales[0] : wScales[j]) / sy },
            outZero: zy, lo: lo, hi: hi, int32Output: outType == .i32, isa: Int8GEMM.bestISA())
        // Row-major K4 kernels (VNNI, AVX2, NEON, dotprod), bytes or MatMulInteger's int32 sums;
        // scalar keeps Int8GEMM's dot-product path.
        let qisa = QConvISA.from(layer.isa)
        let rowMajor = n > 0 && k > 0 && qisa != .scalar
        var outShape = a.shape
        outShape[outShape.count - 1] = n
        let rows = a.count / Swift.max(k, 1)
        if rowMajor { layer.packRowMajor() }
        // AVX2 with fewer rows than its kernel's tile (perch_qgemm_rm_w16_avx2 takes 4+): B in
        // contiguous column panels, which the GEMV streams.
        let panels = rowMajor && qisa == .avx2 && rows < 4
        if panels { layer.packPanels() }
        // Row blocks are split over the pool's threads, one scratch slot each, from about 8 µs of
        // work (512K MACs; the pool's workers spin between jobs of one run, see ThreadPool.spins).
        // A transformer's 64×128 by 128×128 projections (1M MACs, 18 µs on a Zen 3 core) ran on
        // one thread under the earlier 2M bar.
        // A few rows against large weights (a classifier's GEMV: 1×1280 by 1280×1000) is bound by
        // streaming the weights: threads split the columns, each core reading its share.
        let splitColumns = rowMajor && ctx.threads > 1 && rows < 4 * ctx.threads && n >= 128 * ctx.threads && n * layer.kp >= 1 << 18
        let threads = rows * n * layer.kp >= 1 << 19 || splitColumns ? ctx.threads : 1
        // With threads, blocks small enough that every thread gets rows (multiples of the VNNI
        // kernel's 4-row tile).
        let block = threads > 1 ? Swift.max(4, Swift.min(rowBlock, ((rows + threads - 1) / threads + 3) / 4 * 4)) : rowBlock
        let kp = layer.kp
        let packBytes = block * kp
        let accOffset = MemoryPlannerAlign.up(packBytes)
        let sumOffset = accOffset + block * n * 4
        let slot = MemoryPlannerAlign.up(sumOffset + block * 4)
        let outBytes = outType.byteSize
        let blocks = (rows + block - 1) / block
        return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: outShape)], scratchBytes: slot * threads) { args in
            let src = UnsafeRawPointer(args.input(ai).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data
            let parts = splitColumns ? Swift.min(args.threads, threads) : Swift.max(1, Swift.min(args.threads, threads, blocks))
            args.parallelFor(parts) { t in
            let s = args.scratch! + t * slot
            let pack = s.assumingMemoryBound(to: UInt8.self)
            let acc = (s + accOffset).assumingMemoryBound(to: Int32.self)
            let sums = (s + sumOffset).assumingMemoryBound(to: Int32.self)
            let columns = splitColumns ? splitRange(n, parts: parts, part: t, align: panels ? Int(PERCH_GEMV_PANEL) : 64) : 0..<n
            for bi in splitColumns ? 0..<blocks : splitRange(blocks, parts: parts, part: t) where !columns.isEmpty {
                let r0 = bi * block
                let m = Swift.min(block, rows - r0)
                packRows(src + r0 * k, rows: m, k: k, kp: kp, flip: aIsI8, rowSums: layer.needsRowSums ? sums : nil, into: pack)
                if rowMajor {
                    layer.runRowMajor(m: m, a: pack, lda: kp, rowSums: sums, acc: acc,
                                      out: (dst + r0 * n * outBytes).assumingMemoryBound(to: UInt8.self), isa: qisa, columns: columns)
                } else {
                    layer.run(m: m, a: pack, rowSums: sums, acc: acc, out: dst + r0 * n * outBytes, rowStride: n, colStride: 1)
                }
            }
            }
            if runtimeZero {
                let z = Int32(truncatingIfNeeded: args.input(aZero).int64(0)), out = dst.assumingMemoryBound(to: Int32.self)
                if z != 0 {
                    for r in 0..<rows { for j in 0..<n { out[r * n + j] &-= z &* zeroColumnSums[j] } }
                }
            }
        }
    }

    /// Copies `rows` rows of K activations into a zero-padded Kp-stride block, flipping int8 to
    /// uint8, and optionally sums each row (for uint8 weights with a zero point).
    @inline(__always)
    static func packRows(_ src: UnsafePointer<UInt8>, rows: Int, k: Int, kp: Int, flip: Bool,
                         rowSums: UnsafeMutablePointer<Int32>?, into dst: UnsafeMutablePointer<UInt8>) {
        for r in 0..<rows {
            let d = dst + r * kp
            loadActivations(UnsafeRawPointer(src + r * k), isI8: flip, count: k, to: d)
            if kp > k { (d + k).initialize(repeating: 0, count: kp - k) }
            if let sums = rowSums {
                var s: Int32 = 0
                for i in 0..<k { s &+= Int32(d[i]) }
                sums[r] = s
            }
        }
    }
}

enum MemoryPlannerAlign {
    static func up(_ x: Int) -> Int { (x + 63) / 64 * 64 }
}

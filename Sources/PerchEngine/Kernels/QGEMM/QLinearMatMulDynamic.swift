import CPerchShims
import PerchGraph

/// QLinearMatMul whose B is computed at run time (attention's Q·Kᵀ and P·V after the QDQ fusion):
/// A [..., M, K] × B [..., K, N] with per-tensor scales and zero points, batch dims equal or one
/// side's batch a single matrix. Per matrix: A rows are packed as uint8 (int8 flipped by +128), B
/// as int8 (uint8 shifted by −128) in the row-major kernels' K4 layout, both zero padded, and
/// with a′, b′ and their shifted zero points
///   Σ(a−za)(b−zb) = Σ a′b′ − zb′·Σa′ − za′·Σb′ + K·za′·zb′
/// exactly in int32, requantized with TFLite's fixed-point multiplier sa·sb/sy like the
/// constant-weight path.
enum QLinearMatMulDynamic {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let a = try ctx.input(0)
        let b = try ctx.input(3)
        guard a.dtype == .u8 || a.dtype == .i8 else { throw ctx.unsupported("A of type " + a.dtype.name) }
        guard b.dtype == .u8 || b.dtype == .i8 else { throw ctx.unsupported("B of type " + b.dtype.name) }
        guard a.rank >= 2, b.rank >= 2 else { throw ctx.unsupported("a run-time B with A or B of rank 1") }
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let n = b.shape[b.rank - 1]
        guard b.shape[b.rank - 2] == k else {
            throw ctx.invalid("A " + shapeText(a.shape) + " and B " + shapeText(b.shape) + " do not multiply")
        }
        let aBatchShape = Array(a.shape[0..<(a.rank - 2)]), bBatchShape = Array(b.shape[0..<(b.rank - 2)])
        let aBatch = product(aBatchShape[...]), bBatch = product(bBatchShape[...])
        guard let batchShape = BroadcastPlan.broadcastShape([aBatchShape, bBatchShape]) else {
            throw ctx.invalid("batch dims of A " + shapeText(a.shape) + " and B " + shapeText(b.shape) + " do not broadcast")
        }
        let batch = product(batchShape[...])
        guard (aBatch == batch || aBatch == 1) && (bBatch == batch || bBatch == 1) else {
            throw ctx.unsupported("batch dims broadcast within A and B")
        }
        let pa = try QuantParams(ctx, scale: 1, zero: 2, dtypeIfNoZero: a.dtype)
        let pb = try QuantParams(ctx, scale: 4, zero: 5, dtypeIfNoZero: b.dtype)
        let py = try QuantParams(ctx, scale: 6, zero: 7, dtypeIfNoZero: .u8)
        guard pa.isPerTensor, pb.isPerTensor, py.isPerTensor else { throw ctx.unsupported("per-channel scales with a run-time B") }
        guard !ctx.has(8) else { throw ctx.unsupported("bias with a run-time B") }
        let outType = py.dtype
        guard outType == .u8 || outType == .i8 else { throw ctx.unsupported("output type " + outType.name) }
        let (lo, hi) = QGemmOperator.outputRange(ctx, outType)
        let aI8 = a.dtype == .i8, bU8 = b.dtype == .u8
        let za = pa.zero(0) + (aI8 ? 128 : 0), zb = pb.zero(0) - (bU8 ? 128 : 0)
        let zy = py.zero(0)
        let q = QuantizedMultiplier(Double(pa.scale(0)) * Double(pb.scale(0)) / Double(py.scale(0)))
        let isa = Int8GEMM.bestISA()
        // B in the row-major kernels' K4 layout (perch_interleave4: no transpose), columns padded
        // to 32 and one cache line.
        let qisa = QConvISA.from(isa)
        let k4 = (k + 3) / 4
        let ldb = QLinearLayer.rowMajorStride(columns: n, block: 32)
        let kp = 4 * k4
        let vector = VectorISA.best()
        let constant = Int32(truncatingIfNeeded: k) &* za &* zb
        // Scratch: packed A (m×kp), packed B, accumulators (m×n), row and column sums.
        let aBytes = MemoryPlannerAlign.up(m * kp), bBytes = MemoryPlannerAlign.up(k4 * ldb * 4)
        let accBytes = MemoryPlannerAlign.up(m * n * 4), sumBytes = MemoryPlannerAlign.up(m * 4)
        let slot = aBytes + bBytes + accBytes + sumBytes + MemoryPlannerAlign.up(n * 4)
        // Matrices (attention heads) are split over the threads from about 2^18 MACs in all, each
        // thread with its own scratch slot.
        let threads = batch > 1 && batch * m * n * k >= 1 << 18 ? Swift.min(ctx.threads, batch) : 1
        return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: batchShape + [m, n])], scratchBytes: slot * threads) { args in
            let pA = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let pB = UnsafeRawPointer(args.input(3).data).assumingMemoryBound(to: UInt8.self)
            let out = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let parts = Swift.max(1, Swift.min(args.threads, threads))
            args.parallelFor(parts) { t in
                let s = args.scratch! + t * slot
                let packA = s.assumingMemoryBound(to: UInt8.self)
                let packB = (s + aBytes).assumingMemoryBound(to: Int8.self)
                let acc = (s + aBytes + bBytes).assumingMemoryBound(to: Int32.self)
                let rowSums = (s + aBytes + bBytes + accBytes).assumingMemoryBound(to: Int32.self)
                let colSums = (s + aBytes + bBytes + accBytes + sumBytes).assumingMemoryBound(to: Int32.self)
                let flip: UInt8 = bU8 ? 0x80 : 0
                let mine = splitRange(batch, parts: parts, part: t)
                for bi in mine {
                    let srcA = pA + (aBatch == 1 ? 0 : bi * m * k)
                    let srcB = pB + (bBatch == 1 ? 0 : bi * k * n)
                    if bi == mine.lowerBound || aBatch != 1 {
                        for r in 0..<m {
                            let d = packA + r * kp
                            loadActivations(UnsafeRawPointer(srcA + r * k), isI8: aI8, count: k, to: d)
                            if kp > k { (d + k).initialize(repeating: 0, count: kp - k) }
                            var sum: Int32 = 0
                            for i in 0..<k { sum &+= Int32(d[i]) }
                            rowSums[r] = sum
                        }
                    }
                    if bi == mine.lowerBound || bBatch != 1 {
                        for j in 0..<n { colSums[j] = 0 }
                        for i in 0..<k {
                            let row = srcB + i * n
                            for j in 0..<n { colSums[j] &+= Int32(Int8(bitPattern: row[j] ^ flip)) }
                        }
                        perch_interleave4(srcB, n, k, n, ldb, flip, UnsafeMutableRawPointer(packB).assumingMemoryBound(to: UInt8.self))
                    }
                    qisa.gemmRowMajor(m: m, n: n, k4: k4, a: packA, lda: kp, b: packB, ldb: ldb, c: acc, ldc: n)
                    let dst = out + bi * m * n
                    for r in 0..<m {
                        let row = acc + r * n
                        for j in 0..<n { row[j] = row[j] &- za &* colSums[j] }
                        vector.requantRow(row, n, add: constant &- zb &* rowSums[r], q, zp: zy, lo: lo, hi: hi, dst + r * n)
                    }
                }
            }
        }
    }
}

import PerchGraph

/// Prepares Gemm and MatMul. fp32 runs on the packed `sgemm`; other numeric types take a generic
/// slow path (Double for floats, Int64 for integers so integer products stay exact).
public enum GemmOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .gemm: return try prepareGemm(ctx)
        default: return try prepareMatMul(ctx)
        }
    }

    static func checkNumeric(_ ctx: OpContext, _ dt: DType) throws(EngineError) {
        if dt == .bool { throw ctx.unsupported("element type bool") }
    }

    // MARK: Gemm

    static func prepareGemm(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let ad = try ctx.input(0)
        let bd = try ctx.input(1)
        try checkNumeric(ctx, ad.dtype)
        guard ad.dtype == bd.dtype else { throw ctx.invalid("A and B must have the same element type") }
        guard ad.rank == 2, bd.rank == 2 else {
            throw ctx.invalid("A and B must be 2-D, got " + shapeText(ad.shape) + " and " + shapeText(bd.shape))
        }
        let transA = ctx.attributes.int("transA", default: 0) != 0
        let transB = ctx.attributes.int("transB", default: 0) != 0
        let alpha = ctx.attributes.float("alpha", default: 1)
        let beta = ctx.attributes.float("beta", default: 1)
        let m = transA ? ad.shape[1] : ad.shape[0]
        let k = transA ? ad.shape[0] : ad.shape[1]
        let kb = transB ? bd.shape[1] : bd.shape[0]
        let n = transB ? bd.shape[0] : bd.shape[1]
        guard k == kb else {
            throw ctx.invalid("inner dimensions differ: A " + shapeText(ad.shape) + ", B " + shapeText(bd.shape))
        }
        // C broadcasts unidirectionally to [M, N]: per-element strides (0 on broadcast axes).
        var hasC = false
        var cRowStride = 0
        var cColStride = 0
        if ctx.has(2) {
            let cd = try ctx.input(2)
            guard cd.dtype == ad.dtype else { throw ctx.invalid("C must have the element type of A") }
            guard cd.rank <= 2 else { throw ctx.invalid("C must have rank at most 2") }
            let cs = [Int](repeating: 1, count: 2 - cd.rank) + cd.shape
            guard cs[0] == 1 || cs[0] == m, cs[1] == 1 || cs[1] == n else {
                throw ctx.invalid("C of shape " + shapeText(cd.shape) + " does not broadcast to [" + String(m) + ", " + String(n) + "]")
            }
            hasC = true
            cColStride = cs[1] == 1 ? 0 : 1
            cRowStride = cs[0] == 1 ? 0 : cs[1]
        }
        let aRow = transA ? 1 : k
        let aCol = transA ? m : 1
        let bRow = transB ? 1 : n
        let bCol = transB ? k : 1
        let out = TensorDesc(dtype: ad.dtype, shape: [m, n])
        let useC = hasC && beta != 0
        if ad.dtype == .f32 {
            let slots = ctx.threads
            let ws = sgemmParallelWorkspaceCount(m: m, n: n, k: k, slots: slots)
            // A constant B (the usual weight) is packed once here instead of on every run.
            let weights = packedWeightsB(ctx.value(1), k: k, n: n, rowStride: bRow, colStride: bCol)
            return PreparedOp(outputs: [out], scratchBytes: ws * 4) { args in
                let a = UnsafePointer(args.input(0).pointer(as: Float.self))
                let b = UnsafePointer(args.input(1).pointer(as: Float.self))
                let y = args.output(0).pointer(as: Float.self)
                if useC {
                    let c = args.input(2).pointer(as: Float.self)
                    for i in 0..<m {
                        for j in 0..<n { y[i * n + j] = beta * c[i * cRowStride + j * cColStride] }
                    }
                }
                let wsp = args.scratch?.assumingMemoryBound(to: Float.self) ?? y
                guard let weights else {
                    sgemmParallel(args, slots: slots, m: m, n: n, k: k, alpha: alpha, a: a, aRowStride: aRow, aColStride: aCol,
                                  b: b, bRowStride: bRow, bColStride: bCol, c: y, ldc: n, accumulate: useC, workspace: wsp)
                    return
                }
                weights.withUnsafeBufferPointer { pb in
                    sgemmParallel(args, slots: slots, m: m, n: n, k: k, alpha: alpha, a: a, aRowStride: aRow, aColStride: aCol,
                                  b: b, bRowStride: bRow, bColStride: bCol, c: y, ldc: n, accumulate: useC, workspace: wsp,
                                  packed: SGEMMPrepacked(b: pb.baseAddress, n: n))
                }
            }
        }
        let integer = ad.dtype.isInteger
        let alphaD = Double(alpha)
        let betaD = Double(beta)
        let alphaI = Int64(alpha)
        let betaI = Int64(beta)
        return PreparedOp(outputs: [out]) { args in
            let a = args.input(0)
            let b = args.input(1)
            let y = args.output(0)
            for i in 0..<m {
                for j in 0..<n {
                    if integer {
                        var s: Int64 = 0
                        for p in 0..<k { s &+= a.int64(i * aRow + p * aCol) &* b.int64(p * bRow + j * bCol) }
                        var v = alphaI &* s
                        if useC { v &+= betaI &* args.input(2).int64(i * cRowStride + j * cColStride) }
                        y.setInt64(i * n + j, v)
                    } else {
                        var s: Double = 0
                        for p in 0..<k { s += a.double(i * aRow + p * aCol) * b.double(p * bRow + j * bCol) }
                        var v = alphaD * s
                        if useC { v += betaD * args.input(2).double(i * cRowStride + j * cColStride) }
                        y.setDouble(i * n + j, v)
                    }
                }
            }
        }
    }

    // MARK: MatMul

    static func prepareMatMul(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let ad = try ctx.input(0)
        let bd = try ctx.input(1)
        try checkNumeric(ctx, ad.dtype)
        guard ad.dtype == bd.dtype else { throw ctx.invalid("A and B must have the same element type") }
        guard ad.rank >= 1, bd.rank >= 1 else { throw ctx.invalid("MatMul inputs must have rank >= 1") }
        // numpy: a 1-D A is [1, K] (the 1 dropped after), a 1-D B is [K, 1] (the 1 dropped after).
        let aShape = ad.rank == 1 ? [1, ad.shape[0]] : ad.shape
        let bShape = bd.rank == 1 ? [bd.shape[0], 1] : bd.shape
        let m = aShape[aShape.count - 2]
        let k = aShape[aShape.count - 1]
        let n = bShape[bShape.count - 1]
        guard bShape[bShape.count - 2] == k else {
            throw ctx.invalid("inner dimensions differ: A " + shapeText(ad.shape) + ", B " + shapeText(bd.shape))
        }
        let aBatch = Array(aShape.dropLast(2))
        let bBatch = Array(bShape.dropLast(2))
        let rank = max(aBatch.count, bBatch.count)
        let aB = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
        let bB = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
        var batch = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            if aB[i] == bB[i] || bB[i] == 1 { batch[i] = aB[i] } else if aB[i] == 1 { batch[i] = bB[i] } else {
                throw ctx.invalid("batch dimensions do not broadcast: " + shapeText(ad.shape) + " and " + shapeText(bd.shape))
            }
        }
        var outShape = batch
        if ad.rank != 1 { outShape.append(m) }
        if bd.rank != 1 { outShape.append(n) }
        let out = TensorDesc(dtype: ad.dtype, shape: outShape)
        // Matrix offsets (in elements) of A and B for each output batch.
        let batchCount = elementCount(batch)
        var aOff = [Int](repeating: 0, count: batchCount)
        var bOff = [Int](repeating: 0, count: batchCount)
        var idx = [Int](repeating: 0, count: rank)
        for bi in 0..<batchCount {
            var ao = 0, bo = 0, aS = 1, bS = 1
            var i = rank - 1
            while i >= 0 {
                ao += (aB[i] == 1 ? 0 : idx[i]) * aS
                bo += (bB[i] == 1 ? 0 : idx[i]) * bS
                aS *= aB[i]
                bS *= bB[i]
                i -= 1
            }
            aOff[bi] = ao * m * k
            bOff[bi] = bo * k * n
            i = rank - 1
            while i >= 0 {
                idx[i] += 1
                if idx[i] < batch[i] { break }
                idx[i] = 0
                i -= 1
            }
        }
        // B shared by every batch and A contiguous: one GEMM with M' = batch * M.
        let foldBatch = elementCount(bB) == 1 && elementCount(aB) == batchCount
        if ad.dtype == .f32 {
            let mm = foldBatch ? batchCount * m : m
            let slots = ctx.threads
            let ws = sgemmParallelWorkspaceCount(m: mm, n: n, k: k, slots: slots)
            // B shared by the whole batch and constant: packed once here.
            let weights = foldBatch && bd.rank == 2 ? packedWeightsB(ctx.value(1), k: k, n: n, rowStride: n, colStride: 1) : nil
            return PreparedOp(outputs: [out], scratchBytes: ws * 4) { args in
                let a = UnsafePointer(args.input(0).pointer(as: Float.self))
                let b = UnsafePointer(args.input(1).pointer(as: Float.self))
                let y = args.output(0).pointer(as: Float.self)
                let wsp = args.scratch?.assumingMemoryBound(to: Float.self) ?? y
                if let weights {
                    weights.withUnsafeBufferPointer { pb in
                        sgemmParallel(args, slots: slots, m: mm, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1,
                                      c: y, ldc: n, accumulate: false, workspace: wsp, packed: SGEMMPrepacked(b: pb.baseAddress, n: n))
                    }
                    return
                }
                if foldBatch {
                    sgemmParallel(args, slots: slots, m: mm, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1,
                          c: y, ldc: n, accumulate: false, workspace: wsp)
                    return
                }
                // Batches each too small to split (attention heads: 64×32 by 32×64, 131K MACs)
                // but large together run side by side, one workspace slot per thread; each is the
                // same single-threaded sgemm either way.
                let slot = sgemmWorkspaceCount(m: m, n: n, k: k)
                let byBatch = batchCount > 1 && m * n * k < sgemmSplitMACs && batchCount * m * n * k >= sgemmSplitMACs / 2
                let parts = byBatch ? Swift.min(args.threads, slots, batchCount) : 1
                if parts > 1 {
                    args.parallelFor(parts) { p in
                        for bi in splitRange(batchCount, parts: parts, part: p) {
                            sgemm(m: m, n: n, k: k, a: a + aOff[bi], aRowStride: k, aColStride: 1, b: b + bOff[bi], bRowStride: n, bColStride: 1,
                                  c: y + bi * m * n, ldc: n, accumulate: false, workspace: wsp + p * slot)
                        }
                    }
                    return
                }
                for bi in 0..<batchCount {
                    sgemmParallel(args, slots: slots, m: m, n: n, k: k, a: a + aOff[bi], aRowStride: k, aColStride: 1,
                          b: b + bOff[bi], bRowStride: n, bColStride: 1,
                          c: y + bi * m * n, ldc: n, accumulate: false, workspace: wsp)
                }
            }
        }
        let integer = ad.dtype.isInteger
        return PreparedOp(outputs: [out]) { args in
            let a = args.input(0)
            let b = args.input(1)
            let y = args.output(0)
            for bi in 0..<batchCount {
                let ao = aOff[bi], bo = bOff[bi], yo = bi * m * n
                for i in 0..<m {
                    for j in 0..<n {
                        if integer {
                            var s: Int64 = 0
                            for p in 0..<k { s &+= a.int64(ao + i * k + p) &* b.int64(bo + p * n + j) }
                            y.setInt64(yo + i * n + j, s)
                        } else {
                            var s: Double = 0
                            for p in 0..<k { s += a.double(ao + i * k + p) * b.double(bo + p * n + j) }
                            y.setDouble(yo + i * n + j, s)
                        }
                    }
                }
            }
        }
    }
}

/// A constant float32 weight operand B (k×n with the given strides) packed once at prepare, or
/// nil when B is only known at run time (or not float32, or empty).
func packedWeightsB(_ value: Tensor?, k: Int, n: Int, rowStride: Int, colStride: Int) -> [Float]? {
    guard let w = value, w.dtype == .f32, w.count == k * n, k > 0, n > 0 else { return nil }
    var packed = [Float](repeating: 0, count: sgemmPackedBCount(k: k, n: n))
    w.withUnsafeBufferPointer(of: Float.self) { src in
        packed.withUnsafeMutableBufferPointer { dst in
            sgemmPackB(k: k, n: n, b: src.baseAddress!, bRowStride: rowStride, bColStride: colStride, into: dst.baseAddress!)
        }
    }
    return packed
}

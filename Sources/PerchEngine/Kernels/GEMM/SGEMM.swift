import CPerchShims

/// Packed, cache-blocked fp32 matrix multiply, shared by Gemm, MatMul, Conv and ConvTranspose.
///
/// Computes `C = alpha * op(A) * op(B) + (accumulate ? C : 0)` where
/// - `op(A)` is m×k, element (i, p) at `a[i * aRowStride + p * aColStride]` (so a transposed A is
///   just swapped strides),
/// - `op(B)` is k×n, element (p, j) at `b[p * bRowStride + j * bColStride]`,
/// - `C` is m×n row-major with row stride `ldc` (unit column stride).
///
/// `workspace` must hold `sgemmWorkspaceCount(m:n:k:)` floats; it is used to pack panels of A
/// (6 rows) and B (16 columns) for the 6×16 micro-kernels of CPerchSGEMM.h (AVX-512, AVX2+FMA,
/// NEON or the scalar reference; `variant` defaults to the fastest this CPU runs). Does not
/// allocate.
///
/// Fused epilogue: `bias` (m floats) is C's starting value per row when not `accumulate` (no
/// separate fill pass), and `clamp` clamps the final C to [lo, hi] with Clip's expression, applied
/// while each tile is still in registers (a Conv's folded Relu/Clip).
///
/// `implicitB`: B is a convolution's im2col matrix read from the (padded) input as it is packed
/// (`perch_conv_im2col`), columns from `implicitColumn0`; `b` and its strides are then unused.
public func sgemm(
    m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    accumulate: Bool,
    workspace: UnsafeMutablePointer<Float>,
    packed: SGEMMPrepacked = SGEMMPrepacked(),
    bias: UnsafePointer<Float>? = nil,
    clamp: (Float, Float)? = nil,
    implicitB: UnsafePointer<perch_conv_im2col>? = nil,
    implicitColumn0: Int = 0,
    variant: Int32 = perch_sgemm_best()
) {
    if m <= 0 || n <= 0 { return }
    if k <= 0 {
        for i in 0..<m {
            let row = c + i * ldc
            if !accumulate { row.update(repeating: bias?[i] ?? 0, count: n) }
            if let (lo, hi) = clamp { perch_clamp_f32(row, n, lo, hi) }
        }
        return
    }
    var ep = perch_sgemm_epilogue(bias: nil, clamp: clamp == nil ? 0 : 1, lo: clamp?.0 ?? 0, hi: clamp?.1 ?? 0)
    let kcMax = SGEMMBlocking.kc(k)
    let mcMax = SGEMMBlocking.mc(m)
    let ncMax = SGEMMBlocking.nc(n)
    let packA = workspace
    let packB = workspace + mcMax * kcMax
    let mr = SGEMMBlocking.mr
    let nr = SGEMMBlocking.nr
    var jc = 0
    while jc < n {
        let nc = min(ncMax, n - jc)
        let ncPanels = (nc + nr - 1) / nr
        var pc = 0
        while pc < k {
            let kc = min(kcMax, k - pc)
            // Packs B[pc..<pc+kc, j0..<j0+cols] into one column panel of nr, zero-padded.
            func packPanel(_ j0: Int, _ cols: Int, _ dst: UnsafeMutablePointer<Float>) {
                if let implicitB {
                    perch_sgemm_pack_b_conv(kc, pc, implicitColumn0 + j0, cols, implicitB, dst)
                } else if bColStride == 1 {
                    perch_sgemm_pack_b_rows(kc, cols, b + pc * bRowStride + j0, bRowStride, dst)
                } else if bRowStride == 1 {
                    // Transposed B: walk each source column contiguously.
                    for j in 0..<nr {
                        if j < cols {
                            let src = b + pc + (j0 + j) * bColStride
                            for p in 0..<kc { dst[p * nr + j] = src[p] }
                        } else {
                            for p in 0..<kc { dst[p * nr + j] = 0 }
                        }
                    }
                } else {
                    for p in 0..<kc {
                        let row = dst + p * nr
                        let src = b + (pc + p) * bRowStride + j0 * bColStride
                        for j in 0..<cols { row[j] = src[j * bColStride] }
                        var j = cols
                        while j < nr { row[j] = 0; j += 1 }
                    }
                }
            }
            // A prepacked (a layer's constant weights) and B not: nothing is packed per block of
            // rows, so each B panel is packed just before its use and runs against all of A while
            // it is in L1. Packing the whole block of up to `ncBlock` columns first left it in L2
            // for the kernels to fetch again, which cost as much as the multiply when A is short
            // (a 1×1 conv to 24 channels: 0.35 → 0.27 ms in a C loop). Only while A's block
            // (m × kc floats, read once per panel) stays within L2's share. Same kernels, same
            // order of sums per element, so the same bits.
            let streamB = packed.a != nil && packed.b == nil && m * kc <= SGEMMBlocking.streamedAFloats
            for panel in 0..<ncPanels where packed.b == nil && !streamB {
                let j0 = jc + panel * nr
                packPanel(j0, min(nr, n - j0), packB + panel * kc * nr)
            }
            let add: Int32 = accumulate || pc > 0 ? 1 : 0
            let biasHere = add == 0 ? bias : nil
            let epilogue = biasHere != nil || (clamp != nil && pc + kc == k)
            ep.clamp = clamp != nil && pc + kc == k ? 1 : 0
            if m == 1 && packed.a == nil && aColStride == 1 && alpha == 1 {
                // One row: the GEMV kernel reads A in place (CPerchSGEMV.h), same bits as the tile.
                let bp = packed.b.map { $0 + pc * packed.bColumns + (packed.bColumn0 + jc) * kc } ?? UnsafePointer(packB)
                let start: Float = epilogue ? biasHere?[0] ?? 0 : 0
                perch_sgemv_panels(variant, kc, a + pc, bp, nc, c + jc, add, start, ep.clamp, ep.lo, ep.hi)
                pc += kc
                continue
            }
            if streamB, let pa = packed.a {
                let ap = pa + pc * packed.aRows + packed.aRow0 * kc
                let mPanels = (m + mr - 1) / mr
                for jp in 0..<ncPanels {
                    let j0 = jc + jp * nr
                    let cols = min(nr, n - j0)
                    packPanel(j0, cols, packB)
                    perch_sgemm_column(variant, kc, ap, mPanels, m, packB, c + j0, ldc, cols, add,
                                       epilogue ? biasHere : nil, epilogue ? ep.clamp : 0, ep.lo, ep.hi, nil)
                }
                pc += kc
                continue
            }
            var ic = 0
            while ic < m {
                let mc = min(mcMax, m - ic)
                let mcPanels = (mc + mr - 1) / mr
                // Pack alpha * A[ic..<ic+mc, pc..<pc+kc] into row panels of mr, zero-padded.
                for panel in 0..<mcPanels where packed.a == nil {
                    let i0 = ic + panel * mr
                    let rows = min(mr, m - i0)
                    let dst = packA + panel * kc * mr
                    if aColStride == 1 && alpha == 1 && rows == mr {
                        let s0 = a + i0 * aRowStride + pc
                        let s1 = s0 + aRowStride, s2 = s1 + aRowStride, s3 = s2 + aRowStride
                        let s4 = s3 + aRowStride, s5 = s4 + aRowStride
                        var d = dst
                        for p in 0..<kc {
                            d[0] = s0[p]; d[1] = s1[p]; d[2] = s2[p]; d[3] = s3[p]; d[4] = s4[p]; d[5] = s5[p]
                            d += mr
                        }
                        continue
                    }
                    for r in 0..<mr {
                        if r < rows {
                            let src = a + (i0 + r) * aRowStride + pc * aColStride
                            if alpha == 1 {
                                for p in 0..<kc { dst[p * mr + r] = src[p * aColStride] }
                            } else {
                                for p in 0..<kc { dst[p * mr + r] = alpha * src[p * aColStride] }
                            }
                        } else {
                            for p in 0..<kc { dst[p * mr + r] = 0 }
                        }
                    }
                }
                for jp in 0..<ncPanels {
                    let j0 = jc + jp * nr
                    let cols = min(nr, n - j0)
                    let bp = packed.b.map { $0 + pc * packed.bColumns + (packed.bColumn0 + j0) * kc } ?? UnsafePointer(packB + jp * kc * nr)
                    // Row panels are consecutive (6·kc floats apart) in both A layouts.
                    let ap = packed.a.map { $0 + pc * packed.aRows + (packed.aRow0 + ic) * kc } ?? UnsafePointer(packA)
                    // The next panel follows this one in both B layouts (kc·nr floats on).
                    perch_sgemm_column(variant, kc, ap, mcPanels, mc, bp, c + ic * ldc + j0, ldc, cols, add,
                                       epilogue ? biasHere.map { $0 + ic } : nil, epilogue ? ep.clamp : 0, ep.lo, ep.hi,
                                       jp + 1 < ncPanels ? bp + kc * nr : nil)
                }
                ic += mc
            }
            pc += kc
        }
        jc += nc
    }
}

/// Operands of `sgemm` packed ahead of time (constant weights: a Conv's W as A, a Gemm's or
/// MatMul's weight as B), so a run does not repack them: packing a weight panel costs as much
/// memory traffic as the multiply when the other side is thin (a 1-row FC input, a 5×5 feature
/// map). Layout, for the whole matrix: for each k block of `SGEMMBlocking.kc(k)` rows starting
/// at `pc`, every panel of `mr` rows of A (`nr` columns of B) in order, zero-padded — A's panel
/// of rows `i0…` at `pc · aRows + i0 · kc`, B's panel of columns `j0…` at `pc · bColumns + j0 · kc`.
/// `aRow0` / `bColumn0` say where a sub-problem (a thread's block) starts in the packed matrix.
/// A prepacked A carries its own alpha (`sgemmPackA`'s); `sgemm`'s alpha then is not applied.
public struct SGEMMPrepacked {
    public var a: UnsafePointer<Float>?
    /// Rows of packed A, rounded up to `mr`.
    public var aRows = 0
    public var aRow0 = 0
    public var b: UnsafePointer<Float>?
    /// Columns of packed B, rounded up to `nr`.
    public var bColumns = 0
    public var bColumn0 = 0

    public init(a: UnsafePointer<Float>? = nil, m: Int = 0, b: UnsafePointer<Float>? = nil, n: Int = 0) {
        self.a = a
        self.aRows = (m + SGEMMBlocking.mr - 1) / SGEMMBlocking.mr * SGEMMBlocking.mr
        self.b = b
        self.bColumns = (n + SGEMMBlocking.nr - 1) / SGEMMBlocking.nr * SGEMMBlocking.nr
    }

    /// The same operands for the sub-problem starting at row `i` (a multiple of `mr`).
    public func rows(from i: Int) -> SGEMMPrepacked {
        var p = self
        p.aRow0 += i
        return p
    }

    /// The same operands for the sub-problem starting at column `j` (a multiple of `nr`).
    public func columns(from j: Int) -> SGEMMPrepacked {
        var p = self
        p.bColumn0 += j
        return p
    }
}

/// Floats `sgemmPackA` writes for an m×k A.
public func sgemmPackedACount(m: Int, k: Int) -> Int {
    (m + SGEMMBlocking.mr - 1) / SGEMMBlocking.mr * SGEMMBlocking.mr * Swift.max(k, 0)
}

/// Floats `sgemmPackB` writes for a k×n B.
public func sgemmPackedBCount(k: Int, n: Int) -> Int {
    (n + SGEMMBlocking.nr - 1) / SGEMMBlocking.nr * SGEMMBlocking.nr * Swift.max(k, 0)
}

/// Packs alpha·op(A) (m×k, strides as for `sgemm`) in `SGEMMPrepacked`'s layout.
public func sgemmPackA(m: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
                       into dst: UnsafeMutablePointer<Float>) {
    let mr = SGEMMBlocking.mr
    let rowsPadded = (m + mr - 1) / mr * mr
    let kcMax = SGEMMBlocking.kc(k)
    var pc = 0
    while pc < k {
        let kc = Swift.min(kcMax, k - pc)
        var i0 = 0
        while i0 < rowsPadded {
            let panel = dst + pc * rowsPadded + i0 * kc
            for p in 0..<kc {
                for r in 0..<mr {
                    panel[p * mr + r] = i0 + r < m ? alpha * a[(i0 + r) * aRowStride + (pc + p) * aColStride] : 0
                }
            }
            i0 += mr
        }
        pc += kc
    }
}

/// Packs op(B) (k×n, strides as for `sgemm`) in `SGEMMPrepacked`'s layout.
public func sgemmPackB(k: Int, n: Int, b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
                       into dst: UnsafeMutablePointer<Float>) {
    let nr = SGEMMBlocking.nr
    let colsPadded = (n + nr - 1) / nr * nr
    let kcMax = SGEMMBlocking.kc(k)
    var pc = 0
    while pc < k {
        let kc = Swift.min(kcMax, k - pc)
        var j0 = 0
        while j0 < colsPadded {
            let panel = dst + pc * colsPadded + j0 * kc
            for p in 0..<kc {
                for j in 0..<nr {
                    panel[p * nr + j] = j0 + j < n ? b[(pc + p) * bRowStride + (j0 + j) * bColStride] : 0
                }
            }
            j0 += nr
        }
        pc += kc
    }
}

/// Floats of workspace `sgemm` needs for these sizes.
public func sgemmWorkspaceCount(m: Int, n: Int, k: Int) -> Int {
    if m <= 0 || n <= 0 || k <= 0 { return 0 }
    return SGEMMBlocking.mc(m) * SGEMMBlocking.kc(k) + SGEMMBlocking.kc(k) * SGEMMBlocking.nc(n)
}

/// Micro-kernel variants this CPU runs (PERCH_SGEMM_* of CPerchSGEMM.h), for agreement tests.
public func sgemmSupportedVariants() -> [Int32] {
    var v = [Int32]()
    for x: Int32 in 0...3 where perch_sgemm_supported(x) != 0 { v.append(x) }
    return v
}

/// Name of the micro-kernel `sgemm` uses by default (for reports).
public func sgemmVariantName(_ v: Int32 = perch_sgemm_best()) -> String {
    switch v {
    case 1: return "avx2+fma 6x16"
    case 2: return "avx512f 12x16"
    case 3: return "neon 6x16"
    default: return "scalar 6x16"
    }
}

/// Floats of workspace `sgemmParallel` needs for `slots` threads.
public func sgemmParallelWorkspaceCount(m: Int, n: Int, k: Int, slots: Int) -> Int {
    sgemmWorkspaceCount(m: m, n: n, k: k) * Swift.max(1, slots)
}

/// The fewest multiply-adds `sgemmParallel` splits across threads (see there).
let sgemmSplitMACs = 1 << 20

/// `sgemm` split over the session's threads: C is cut into column blocks (multiples of 16) when
/// it is wider than tall, else into row blocks (multiples of 6); each block is an independent
/// `sgemm` with its own workspace slot. `workspace` holds `slots` slots of
/// `sgemmWorkspaceCount(m:n:k:)` floats (`slots` = `OpContext.threads` at prepare). Small
/// problems run on the calling thread.
public func sgemmParallel(
    _ args: KernelArgs, slots: Int,
    m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    accumulate: Bool,
    workspace: UnsafeMutablePointer<Float>,
    packed: SGEMMPrepacked = SGEMMPrepacked(),
    bias: UnsafePointer<Float>? = nil,
    clamp: (Float, Float)? = nil,
    implicitB: UnsafePointer<perch_conv_im2col>? = nil
) {
    var parts = Swift.min(args.threads, slots)
    // Below ~10 µs of work (1M MACs) handing half to a worker costs more than it saves. (The
    // worker spins ~1 ms between jobs, so within a run it is awake; with 0.05 ms of spinning it
    // often slept and the threshold had to be 8M MACs, which left the transformer's FFN GEMMs and
    // SqueezeNet's small convs on one thread: fp32 2-thread ratios 1.52 and 1.65 vs ORT, now 1.16
    // and 1.44.)
    if m * n * k < sgemmSplitMACs { parts = 1 }
    // Column blocks when C is wider than tall; also when A is packed ahead (a conv's weights) and
    // B is not, with 8 or more 16-column units per thread: row blocks would each pack all of B
    // (Magika's 512 × 508 × 1280 conv packed 2.6 MB twice and ran 1.34× faster on two threads
    // than on one), column blocks pack half each.
    let ownB = packed.a != nil && packed.b == nil
    let byColumns = n >= m || (ownB && n >= 8 * SGEMMBlocking.nr * parts)
    let units = byColumns ? (n + SGEMMBlocking.nr - 1) / SGEMMBlocking.nr : (m + SGEMMBlocking.mr - 1) / SGEMMBlocking.mr
    parts = Swift.min(parts, units)
    if parts <= 1 {
        sgemm(m: m, n: n, k: k, alpha: alpha, a: a, aRowStride: aRowStride, aColStride: aColStride,
              b: b, bRowStride: bRowStride, bColStride: bColStride, c: c, ldc: ldc, accumulate: accumulate, workspace: workspace,
              packed: packed, bias: bias, clamp: clamp, implicitB: implicitB)
        return
    }
    let slot = sgemmWorkspaceCount(m: m, n: n, k: k)
    args.parallelFor(parts) { i in
        let ws = workspace + i * slot
        if byColumns {
            let r = splitRange(n, parts: parts, part: i, align: SGEMMBlocking.nr)
            if r.isEmpty { return }
            sgemm(m: m, n: r.count, k: k, alpha: alpha, a: a, aRowStride: aRowStride, aColStride: aColStride,
                  b: b + r.lowerBound * bColStride, bRowStride: bRowStride, bColStride: bColStride,
                  c: c + r.lowerBound, ldc: ldc, accumulate: accumulate, workspace: ws, packed: packed.columns(from: r.lowerBound),
                  bias: bias, clamp: clamp, implicitB: implicitB, implicitColumn0: r.lowerBound)
        } else {
            let r = splitRange(m, parts: parts, part: i, align: SGEMMBlocking.mr)
            if r.isEmpty { return }
            sgemm(m: r.count, n: n, k: k, alpha: alpha, a: a + r.lowerBound * aRowStride, aRowStride: aRowStride, aColStride: aColStride,
                  b: b, bRowStride: bRowStride, bColStride: bColStride,
                  c: c + r.lowerBound * ldc, ldc: ldc, accumulate: accumulate, workspace: ws, packed: packed.rows(from: r.lowerBound),
                  bias: bias.map { $0 + r.lowerBound }, clamp: clamp, implicitB: implicitB)
        }
    }
}

enum SGEMMBlocking {
    static let mr = 6
    static let nr = 16
    static let kcBlock = 256
    static let mcBlock = 120
    static let ncBlock = 2048
    /// Largest prepacked A block (floats) `sgemm` runs whole against each B panel as it packs it
    /// (1 MB).
    static let streamedAFloats = 1 << 18
    static func kc(_ k: Int) -> Int { min(kcBlock, k) }
    static func mc(_ m: Int) -> Int { min(mcBlock, (m + mr - 1) / mr * mr) }
    static func nc(_ n: Int) -> Int { min(ncBlock, (n + nr - 1) / nr * nr) }
}

/// Scalar reference for `sgemm` (same contract, no workspace), accumulating in Double. Used by
/// tests to check the packed kernel.
public func sgemmReference(
    m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    accumulate: Bool
) {
    for i in 0..<max(m, 0) {
        for j in 0..<max(n, 0) {
            var s: Double = 0
            for p in 0..<max(k, 0) {
                s += Double(a[i * aRowStride + p * aColStride]) * Double(b[p * bRowStride + j * bColStride])
            }
            let v = Float(Double(alpha) * s)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v
        }
    }
}

import CPerchShims
import PerchGraph

/// Code paths of the NCHW int8 convolution kernels in CPerchQConv.h and CPerchQGemmSIMD.h.
/// `scalar` is the reference; `avx512` uses VNNI for the GEMMs and AVX-512 for depthwise rows and
/// requantization; `avx2` has AVX2 GEMMs (int16 vpmaddwd), depthwise rows and requantization;
/// `neon` NEON GEMMs (smlal), `neondot` dotprod GEMMs (SDOT/UDOT) and `i8mm` USDOT GEMMs, all three
/// with NEON depthwise rows and requantization. All compute exact int32 sums and the same fixed-point requantization,
/// so they agree bit for bit.
enum QConvISA: Sendable {
    case scalar, avx2, avx512, neon, neondot, i8mm

    static func from(_ isa: Int8ISA) -> QConvISA {
        switch isa {
        case .avx512vnni: return .avx512
        case .avx2: return .avx2
        case .neon: return .neon
        case .neondot: return .neondot
        case .i8mm: return .i8mm
        default: return .scalar
        }
    }

    /// Requantizes `n` accumulators (plus `add`) of one output channel to bytes.
    @inline(__always)
    func requantRow(_ acc: UnsafePointer<Int32>, _ n: Int, add: Int32, _ q: QuantizedMultiplier, zp: Int32, lo: Int32, hi: Int32,
                    _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qrequant_row_avx512(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out)
            return
        }
        if self == .avx2 {
            perch_qrequant_row_avx2(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out)
            return
        }
        #elseif arch(arm64)
        if self != .scalar {
            perch_qrequant_row_neon(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out)
            return
        }
        #endif
        perch_qrequant_row_scalar(acc, n, add, q.multiplier, q.shift, zp, lo, hi, out)
    }

    /// `rows` rows of `n` accumulators (stride lda) with one multiplier into rows of stride ldo.
    @inline(__always)
    func requantRows(_ acc: UnsafePointer<Int32>, lda: Int, n: Int, rows: Int, _ q: QuantizedMultiplier, zp: Int32, lo: Int32, hi: Int32,
                     _ out: UnsafeMutablePointer<UInt8>, ldo: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qrequant_rows_avx512(acc, lda, n, rows, 0, q.multiplier, q.shift, zp, lo, hi, out, ldo)
            return
        }
        if self == .avx2 {
            perch_qrequant_rows_avx2(acc, lda, n, rows, 0, q.multiplier, q.shift, zp, lo, hi, out, ldo)
            return
        }
        #elseif arch(arm64)
        if self != .scalar {
            perch_qrequant_rows_neon(acc, lda, n, rows, 0, q.multiplier, q.shift, zp, lo, hi, out, ldo)
            return
        }
        #endif
        for r in 0..<rows { perch_qrequant_row_scalar(acc + r * lda, n, 0, q.multiplier, q.shift, zp, lo, hi, out + r * ldo) }
    }

    /// C[n][p] = Σ_k W[n][k]·X[k][p] (X in the K4 layout, row stride `ldx` pixels).
    @inline(__always)
    func convK4(n: Int, p: Int, k4: Int, x: UnsafePointer<UInt8>, ldx: Int, w: UnsafePointer<Int8>, ldw: Int,
                c: UnsafeMutablePointer<Int32>, ldc: Int) {
        switch self {
        #if arch(x86_64)
        case .avx512: perch_qconv_k4_vnni(n, p, k4, x, ldx, w, ldw, c, ldc)
        case .avx2: perch_qconv_k4_avx2(n, p, k4, x, ldx, w, ldw, c, ldc)
        #elseif arch(arm64)
        case .neon: perch_qconv_k4_neon(n, p, k4, x, ldx, w, ldw, c, ldc)
        case .neondot: perch_qconv_k4_neondot(n, p, k4, x, ldx, w, ldw, c, ldc)
        case .i8mm: perch_qconv_k4_i8mm(n, p, k4, x, ldx, w, ldw, c, ldc)
        #endif
        default: perch_qconv_k4_scalar(n, p, k4, x, ldx, w, ldw, c, ldc)
        }
    }

    /// Row-major C[m][n] = Σ_k A[m][k]·B[k][n], B in the K4 layout (`QLinearLayer.packRowMajor`).
    @inline(__always)
    func gemmRowMajor(m: Int, n: Int, k4: Int, a: UnsafePointer<UInt8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
                      c: UnsafeMutablePointer<Int32>, ldc: Int) {
        switch self {
        #if arch(x86_64)
        case .avx512: perch_qgemm_rm_vnni(m, n, k4, a, lda, b, ldb, c, ldc)
        case .avx2: perch_qgemm_rm_avx2(m, n, k4, a, lda, b, ldb, c, ldc)
        #elseif arch(arm64)
        case .neon: perch_qgemm_rm_neon(m, n, k4, a, lda, b, ldb, c, ldc)
        case .neondot: perch_qgemm_rm_neondot(m, n, k4, a, lda, b, ldb, c, ldc)
        case .i8mm: perch_qgemm_rm_i8mm(m, n, k4, a, lda, b, ldb, c, ldc)
        #endif
        default: perch_qgemm_rm_scalar(m, n, k4, a, lda, b, ldb, c, ldc)
        }
    }

    /// Requantizes one output row whose columns have their own multipliers.
    @inline(__always)
    func requantColumns(_ acc: UnsafePointer<Int32>, _ n: Int, add: UnsafePointer<Int32>, mult: UnsafePointer<Int32>,
                        shift: UnsafePointer<Int32>, rightShift: UnsafePointer<Int32>, allRight: Bool, zp: Int32, lo: Int32,
                        hi: Int32, _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if self == .avx512 && allRight {
            perch_qrequant_cols_avx512(acc, n, add, mult, rightShift, zp, lo, hi, out)
            return
        }
        if self == .avx2 {
            perch_qrequant_cols_avx2(acc, n, add, mult, shift, zp, lo, hi, out)
            return
        }
        #elseif arch(arm64)
        if self != .scalar {
            perch_qrequant_cols_neon(acc, n, add, mult, shift, zp, lo, hi, out)
            return
        }
        #endif
        perch_qrequant_cols_scalar(acc, n, add, mult, shift, zp, lo, hi, out)
    }

    @inline(__always)
    /// acc[x] = initial + Σ_t w[t]·rows[t][x] for x < n.
    func dwRow(_ rows: UnsafePointer<UnsafePointer<UInt8>?>, _ w: UnsafePointer<Int32>, taps: Int, n: Int, initial: Int32,
               _ acc: UnsafeMutablePointer<Int32>) {
        switch self {
        #if arch(x86_64)
        case .avx512: perch_qdw_row_avx512(rows, w, taps, n, initial, acc)
        case .avx2: perch_qdw_row_avx2_pairs(rows, w, taps, n, initial, acc)
        #elseif arch(arm64)
        case .neon, .neondot, .i8mm: perch_qdw_row_neon16(rows, w, taps, n, initial, acc)
        #endif
        default: perch_qdw_row_scalar(rows, w, taps, n, initial, acc)
        }
    }
}

enum QConvFast {
    /// General / 1×1 2-D convolution (int8 weights without a zero point, 8-bit output) as
    /// C[oc][pixels] = W · im2col(X), pixels in blocks, written straight into the NCHW output.
    static func gemm(_ g: ConvGeometry, layers: [QLinearLayer], aIsI8: Bool, za: Int32, outDesc: TensorDesc, threads: Int,
                     isa: QConvISA) -> PreparedOp {
        let ocg = g.outPerGroup
        let k = g.inPerGroup * g.kernelSize
        let k4 = (k + 3) / 4
        let ldw = layers[0].kp
        let pointwise = g.kernelSize == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0 && g.outH == g.inH && g.outW == g.inW
        let outSize = g.outSize
        // Pixel block: the packed block (K4·4·Pb bytes) should stay in L2.
        var pb = 32
        while pb < 1024 && pb < outSize && k4 * 4 * pb * 2 <= 192 * 1024 { pb *= 2 }
        // Weights with a zero point (uint8 weights): Σ(w − zw)·a needs Σa per pixel, which one
        // more weight row of ones computes in the same GEMM.
        let sums = layers[0].needsRowSums
        let rowsN = sums ? ocg + 1 : ocg
        var weights = [[Int8]]()
        for layer in layers {
            var w = layer.weights
            if sums {
                var ones = [Int8](repeating: 0, count: ldw)
                for i in 0..<k { ones[i] = 1 }
                w += ones
            }
            weights.append(w)
        }
        let colBytes = pointwise ? 0 : MemoryPlannerAlign.up(k * pb)
        let packBytes = MemoryPlannerAlign.up(k4 * 4 * pb)
        let accBytes = MemoryPlannerAlign.up(rowsN * pb * 4)
        let slot = colBytes + packBytes + accBytes
        let flip: UInt8 = aIsI8 ? 0x80 : 0
        let padRaw = UInt8(truncatingIfNeeded: za) ^ flip
        let blocks = (outSize + pb - 1) / pb
        let work = g.batch * g.group * blocks
        return PreparedOp(outputs: [outDesc], scratchBytes: slot * threads) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let base = args.scratch!
            let parts = Swift.min(args.threads, threads, work)
            args.parallelFor(parts) { t in
                let s = base + t * slot
                let col = s.assumingMemoryBound(to: UInt8.self)
                let pack = (s + colBytes).assumingMemoryBound(to: UInt8.self)
                let acc = (s + colBytes + packBytes).assumingMemoryBound(to: Int32.self)
                for item in splitRange(work, parts: parts, part: t) {
                    let blk = item % blocks
                    let gi = (item / blocks) % g.group
                    let b = item / (blocks * g.group)
                    let p0 = blk * pb
                    let m = Swift.min(pb, outSize - p0)
                    let xBase = src + (b * g.inChannels + gi * g.inPerGroup) * g.inSize
                    if pointwise {
                        perch_interleave4(xBase + p0, g.inSize, k, m, pb, flip, pack)
                    } else {
                        perch_qim2col_rows(xBase, g.inPerGroup, g.inH, g.inW, g.outW, g.kH, g.kW, g.sH, g.sW, g.dH, g.dW, g.pH, g.pW,
                                           p0, m, pb, padRaw, col)
                        perch_interleave4(col, pb, k, m, pb, flip, pack)
                    }
                    let layer = layers[gi]
                    weights[gi].withUnsafeBufferPointer { w in
                        isa.convK4(n: rowsN, p: m, k4: k4, x: pack, ldx: pb, w: w.baseAddress!, ldw: ldw, c: acc, ldc: pb)
                    }
                    if sums {
                        let pixelSums = acc + ocg * pb
                        for j in 0..<ocg {
                            let z = layer.weightZero[j]
                            if z == 0 { continue }
                            let a = acc + j * pb
                            for i in 0..<m { a[i] = a[i] &- z &* pixelSums[i] }
                        }
                    }
                    let o = dst + (b * g.outChannels + gi * ocg) * outSize + p0
                    layer.columnTerm.withUnsafeBufferPointer { ct in
                        layer.multipliers.withUnsafeBufferPointer { mu in
                            for j in 0..<ocg {
                                isa.requantRow(acc + j * pb, m, add: ct[j], mu[j], zp: layer.outZero, lo: layer.lo, hi: layer.hi,
                                               o + j * outSize)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Depthwise 2-D convolution (one input channel per group, channel multiplier 1): the channel
    /// is copied once into zero-point-padded "phase planes" (plane r holds padded columns
    /// r, r+sW, …), so every tap of an output row reads contiguous bytes.
    static func depthwise(_ g: ConvGeometry, aIsI8: Bool, za: Int32, weights: [Int32], wZeros: [Int32], bias: [Int32]?,
                          multipliers: [QuantizedMultiplier], zy: Int32, lo: Int32, hi: Int32, outDesc: TensorDesc, threads: Int,
                          isa: QConvISA) -> PreparedOp {
        let taps = g.kH * g.kW
        let channels = g.outChannels
        var wc = [Int32](repeating: 0, count: channels * taps)
        var accInit = [Int32](repeating: 0, count: channels)
        for c in 0..<channels {
            var sum: Int32 = 0
            for t in 0..<taps {
                let v = weights[c * taps + t] - wZeros[c]
                wc[c * taps + t] = v
                sum &+= v
            }
            accInit[c] = (bias?[c] ?? 0) &- za &* sum
        }
        let hp = (g.outH - 1) * g.sH + (g.kH - 1) * g.dH + 1
        let wp = (g.outW - 1) * g.sW + (g.kW - 1) * g.dW + 1
        let planeW = (wp + g.sW - 1) / g.sW
        // + slack: with stride 1 in H the whole channel runs as one long row of outH·planeW outputs
        // (the columns past outW of each row are computed and dropped), whose last taps read up to
        // (kW−1)·dW/sW bytes past the plane.
        let planeStride = hp * planeW + 64 + (g.kW - 1) * g.dW
        let planeBytes = MemoryPlannerAlign.up(g.sW * planeStride)
        let rowsBytes = MemoryPlannerAlign.up(taps * 8)
        let wholePlane = g.sH == 1
        let accBytes = MemoryPlannerAlign.up((wholePlane ? g.outH * planeW : g.outW) * 4)
        let slot = planeBytes + rowsBytes + accBytes
        let flip: UInt8 = aIsI8 ? 0x80 : 0
        let padU8 = UInt8(truncatingIfNeeded: za)
        let work = g.batch * channels
        return PreparedOp(outputs: [outDesc], scratchBytes: slot * threads) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let base = args.scratch!
            let parts = Swift.min(args.threads, threads, work)
            args.parallelFor(parts) { t in
                let s = base + t * slot
                let planes = s.assumingMemoryBound(to: UInt8.self)
                let rows = (s + planeBytes).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
                let acc = (s + planeBytes + rowsBytes).assumingMemoryBound(to: Int32.self)
                wc.withUnsafeBufferPointer { wAll in
                    for item in splitRange(work, parts: parts, part: t) {
                        let c = item % channels
                        let x = src + item * g.inSize
                        // Phase planes: plane r, padded row y, column j ↔ input (y − pH, r + j·sW − pW).
                        perch_qdw_planes(x, g.inH, g.inW, flip, padU8, g.pH, g.pW, hp, g.sW, planeW, planeStride, planes)
                        let w = wAll.baseAddress! + c * taps
                        let o = dst + item * g.outSize
                        if wholePlane {
                            var tap = 0
                            for kh in 0..<g.kH {
                                for kw in 0..<g.kW {
                                    let col = kw * g.dW
                                    rows[tap] = UnsafePointer(planes + (col % g.sW) * planeStride + kh * g.dH * planeW + col / g.sW)
                                    tap += 1
                                }
                            }
                            let total = g.outH * planeW
                            isa.dwRow(rows, w, taps: taps, n: total, initial: accInit[c], acc)
                            isa.requantRows(acc, lda: planeW, n: g.outW, rows: g.outH, multipliers[c], zp: zy, lo: lo, hi: hi, o, ldo: g.outW)
                            continue
                        }
                        for oh in 0..<g.outH {
                            var tap = 0
                            for kh in 0..<g.kH {
                                let y = oh * g.sH + kh * g.dH
                                for kw in 0..<g.kW {
                                    let col = kw * g.dW
                                    rows[tap] = UnsafePointer(planes + (col % g.sW) * planeStride + y * planeW + col / g.sW)
                                    tap += 1
                                }
                            }
                            isa.dwRow(rows, w, taps: taps, n: g.outW, initial: accInit[c], acc)
                            isa.requantRow(acc, g.outW, add: 0, multipliers[c], zp: zy, lo: lo, hi: hi, o + oh * g.outW)
                        }
                    }
                }
            }
        }
    }
}

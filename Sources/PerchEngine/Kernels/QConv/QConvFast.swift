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
    func requantRows(_ acc: UnsafePointer<Int32>, lda: Int, n: Int, rows: Int, add: Int32 = 0, _ q: QuantizedMultiplier, zp: Int32,
                     lo: Int32, hi: Int32, _ out: UnsafeMutablePointer<UInt8>, ldo: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qrequant_rows_avx512(acc, lda, n, rows, add, q.multiplier, q.shift, zp, lo, hi, out, ldo)
            return
        }
        if self == .avx2 {
            perch_qrequant_rows_avx2(acc, lda, n, rows, add, q.multiplier, q.shift, zp, lo, hi, out, ldo)
            return
        }
        #elseif arch(arm64)
        if self != .scalar {
            perch_qrequant_rows_neon(acc, lda, n, rows, add, q.multiplier, q.shift, zp, lo, hi, out, ldo)
            return
        }
        #endif
        for r in 0..<rows { perch_qrequant_row_scalar(acc + r * lda, n, add, q.multiplier, q.shift, zp, lo, hi, out + r * ldo) }
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

    /// `convK4` with the weights widened to int16 when the layer was prepared (AVX2: no sign
    /// extension per step; see perch_qconv_k4w16_avx2). Other paths take `convK4`.
    @inline(__always)
    func convK4Wide(n: Int, p: Int, k4: Int, x: UnsafePointer<UInt8>, ldx: Int, w: UnsafePointer<Int16>, ldw: Int,
                    c: UnsafeMutablePointer<Int32>, ldc: Int) {
        #if arch(x86_64)
        perch_qconv_k4w16_avx2(n, p, k4, x, ldx, w, ldw, c, ldc)
        #else
        preconditionFailure("the widened-weight conv GEMM is AVX2 only")
        #endif
    }

    /// Whether `convK4Wide` is this path's conv GEMM.
    var widensWeights: Bool { self == .avx2 }

    /// Row-major C[m][n] = Σ_k A[m][k]·B[k][n], B in the K4 layout (`QLinearLayer.packRowMajor`).
    @inline(__always)
    func gemmRowMajor(m: Int, n: Int, k4: Int, a: UnsafePointer<UInt8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
                      c: UnsafeMutablePointer<Int32>, ldc: Int) {
        switch self {
        #if arch(x86_64)
        case .avx512: perch_qgemm_rm_vnni(m, n, k4, a, lda, b, ldb, c, ldc)
        case .avx2: perch_qgemm_rm_w16_avx2(m, n, k4, a, lda, b, ldb, c, ldc)
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

extension QConvISA {
    /// Whether `dwRowInt8` runs four taps per instruction here (VNNI) rather than falling back.
    var hasInt8DepthwiseRow: Bool { self == .avx512 }

    /// acc[x] = initial + Σ_t w8[t]·rows[t][x] for x < n, over `groups`·4 taps (padding taps have
    /// weight 0 and any readable row). The VNNI path; others run the scalar reference.
    @inline(__always)
    func dwRowInt8(_ rows: UnsafePointer<UnsafePointer<UInt8>?>, _ w8: UnsafePointer<Int8>, groups: Int, n: Int, initial: Int32,
                   _ acc: UnsafeMutablePointer<Int32>) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qdw_row_vnni(rows, w8, groups, n, initial, acc)
            return
        }
        #endif
        for x in 0..<n { acc[x] = initial }
        for t in 0..<groups * 4 {
            let r = rows[t]!, wt = Int32(w8[t])
            for x in 0..<n { acc[x] &+= Int32(r[x]) &* wt }
        }
    }
}

enum QConvFast {
    /// General / 1×1 2-D convolution as C[oc][pixels] = W · im2col(X), pixels in blocks, written
    /// straight into the NCHW output: requantized bytes, or ConvInteger's int32 sums when the
    /// layers have `int32Output`. `zeroInput`: the input holding the activations' zero point when
    /// it is known only at run time (quantize_dynamic's DynamicQuantizeLinear feeds ConvInteger);
    /// the layers were then built with `za` = 0, and each run pads with the zero point read there
    /// and adds −za·Σw + K·za·zw to each channel.
    static func gemm(_ g: ConvGeometry, layers: [QLinearLayer], aIsI8: Bool, za: Int32, zeroInput: Int? = nil, outDesc: TensorDesc,
                     threads: Int, isa: QConvISA) -> PreparedOp {
        let int32 = layers[0].int32Output
        if !int32 && zeroInput == nil && QConvTaps.applies(g, isa: isa) {
            return QConvTaps.prepare(g, layer: layers[0], aIsI8: aIsI8, za: za, outDesc: outDesc, threads: threads, isa: isa)
        }
        let ocg = g.outPerGroup
        let k = g.inPerGroup * g.kernelSize
        let k4 = (k + 3) / 4
        let pointwise = g.kernelSize == 1 && g.sH == 1 && g.sW == 1 && g.pH == 0 && g.pW == 0 && g.outH == g.inH && g.outW == g.inW
        if pointwise && !int32 && zeroInput == nil && QConvPointwiseRows.applies(g, layer: layers[0], isa: isa) {
            return QConvPointwiseRows.prepare(g, layer: layers[0], aIsI8: aIsI8, outDesc: outDesc, threads: threads, isa: isa)
        }
        let ldw = layers[0].kp
        let outSize = g.outSize
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
        // Convs on x86 whose taps cover every phase of the stride (the scalar ISA keeps the
        // reference packing): the input is copied once per run into zero-point-padded phase planes
        // (shared by the threads, after their slots), from which perch_qim2col4 packs each block
        // in one pass.
        let phaseH = g.outH + (g.kH - 1) * g.dH / g.sH, phaseW = g.outW + (g.kW - 1) * g.dW / g.sW
        let planesBytes = g.batch * g.inChannels * g.sH * g.sW * phaseH * phaseW
        #if arch(x86_64)
        let fusedIm2col = !pointwise && isa != .scalar && g.kH >= g.sH && g.kW >= g.sW && g.inD == 1 && g.kD == 1 && planesBytes <= 8 << 20
        // With input channels in fours the planes are interleaved by four channels and K runs
        // (c / 4, kh, kw, c % 4): each K4 group of the block is then a copy of plane bytes (see
        // perch_qim2col_c4); the weights' K is permuted to match once, here.
        let channelQuads = fusedIm2col && g.inPerGroup % 4 == 0
        let quadScratch = channelQuads ? MemoryPlannerAlign.up(4 * g.sH * g.sW * phaseH * phaseW) : 0
        if channelQuads { weights = weights.map { channelQuadOrder($0, rows: rowsN, ldw: ldw, channels: g.inPerGroup, taps: g.kernelSize) } }
        let planesScratch = fusedIm2col ? MemoryPlannerAlign.up(planesBytes) + quadScratch : 0
        #else
        let fusedIm2col = false, channelQuads = false, planesScratch = 0  // the one-pass im2col is x86's
        #endif
        // AVX2: the split weights of the exact vpmaddubsw GEMM where their residual is sparse,
        // else only the widened copy (twice the bytes of the int8 weights, not three times).
        let splits = isa.widensWeights ? weights.compactMap { QSplitWeights($0, rows: rowsN, k4: k4, ldw: ldw) } : []
        let split = !splits.isEmpty && splits.count == weights.count
        let weights16 = isa.widensWeights && !split ? weights.map { $0.map(Int16.init) } : []
        if isa.widensWeights { weights = [] }
        // Pixel block: the packed block (K4·4·Pb bytes) should stay in L2.
        // With the requantization fused into the GEMM (AVX-512) there are no int32 accumulators.
        // (AVX2's widened-weight GEMM ran 5–30% slower with that epilogue than with a separate
        // requantization pass over whole rows, whose constants are set up once per channel.)
        let fusedRequant = isa == .avx512 && zeroInput == nil ? layers.compactMap { QChannelRequant($0) } : []
        let fused = fusedRequant.count == layers.count
        var pb = 32
        while pb < 1024 && pb < outSize && k4 * 4 * pb * 2 <= 192 * 1024 { pb *= 2 }
        // Row stride of the packed block and of the int32 sums, in pixels: one cache line more
        // than the block. At pb·4 bytes (2 KB for 512 pixels) the K4 rows a tile reads, and the
        // rows it writes, all fell in two of L1's 64 sets; the conv GEMM of a 128→128 1×1 layer
        // ran 8–12% faster with the extra line (C micro-benchmark, Zen 3).
        let ldp = pb + 16
        // Without the fused epilogue, the rows of a block are computed and requantized in chunks:
        // the chunk's int32 sums (rows·Pb·4 bytes) stay in L1 until requantized, and its weights in
        // L2 while the kernel walks the block's columns. Whole-block accumulators spilled to L2
        // (64 channels × 1024 pixels made the 32→64 1×1 conv of a MobileNet 40% slower than 512,
        // which is why blocks were capped by rows before), and the narrow kernel order streamed
        // all of a 7×7 layer's weights once per 8 pixels (MobileNetV2's 320→1280: 820 KB of int16
        // weights, seven times per run; min of 300 runs 0.36 → 0.35 ms, a small gain).
        let weightRowBytes = ldw * (weights16.isEmpty ? 1 : 2)
        let chunkRows = Swift.max(12, Swift.min(16 * 1024 / (pb * 4), 48 * 1024 / weightRowBytes) / 12 * 12)  // whole 4- and 6-row tiles
        let colBytes = pointwise || fusedIm2col ? 0 : MemoryPlannerAlign.up(k * pb)
        let packBytes = MemoryPlannerAlign.up(k4 * 4 * ldp)
        let accBytes = fused ? 0 : MemoryPlannerAlign.up((Swift.min(chunkRows, ocg) + (sums ? 1 : 0)) * ldp * 4)
        let slot = colBytes + packBytes + accBytes
        let flip: UInt8 = aIsI8 ? 0x80 : 0
        // Σ_k w (as stored, less the uint8 offset) per output channel of each group: the run-time
        // zero point's column term.
        let weightSums: [[Int32]] = zeroInput == nil ? [] : layers.map { layer in
            (0..<layer.n).map { j in (0..<layer.k).reduce(Int32(0)) { $0 &+ Int32(layer.weights[j * layer.kp + $1]) } }
        }
        // Blocks of whole 32-pixel tiles, as even as tiles allow, their count a multiple of the
        // thread count: 13 blocks of 512 on two threads left one thread 12% more pixels.
        let tiles = (outSize + 31) / 32
        var blocks = (tiles + pb / 32 - 1) / (pb / 32)
        if threads > 1 && blocks > 1 { blocks = (blocks + threads - 1) / threads * threads }
        blocks = Swift.min(blocks, tiles)
        let items = g.batch * g.group * blocks
        // Threads share pixel blocks when there are enough to balance; on the small maps of late
        // layers (one or two blocks) they split the output channels instead, each packing the same
        // block (packing is O(K·P), the GEMM O(N·K·P)). Item `i` of `work`: channel part
        // i / items, pixel block i % items — so a thread's contiguous range covers whole blocks.
        // Narrow layers (fewer than 64 output channels per thread: MobileNetV2's 144→24 and 192→32
        // projections) keep pixel blocks when those balance, as the duplicated packing would cost
        // about as much as their share of the GEMM.
        let balancedPixels = items % threads == 0 && ocg < 64 * threads
        let channelParts = threads > 1 && items < 4 * threads && ocg >= 16 * threads && !balancedPixels ? threads : 1
        let work = items * channelParts
        let planesOffset = slot * threads
        return PreparedOp(outputs: [outDesc], scratchBytes: planesOffset + planesScratch) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let dst32 = args.output(0).data.assumingMemoryBound(to: Int32.self)
            // The zero point (uint8-shifted for int8 activations) and the byte padding carries.
            let zr: Int32 = zeroInput.map { Int32(truncatingIfNeeded: args.input($0).int64(0)) &+ (aIsI8 ? 128 : 0) } ?? za
            let padRaw = UInt8(truncatingIfNeeded: zr) ^ flip
            let base = args.scratch!
            let planes = (base + planesOffset).assumingMemoryBound(to: UInt8.self)
            if fusedIm2col {
                for b in 0..<g.batch {
                    for gi in 0..<g.group {
                        let first = b * g.inChannels + gi * g.inPerGroup
                        let dstPlanes = planes + first * g.sH * g.sW * phaseH * phaseW
                        if channelQuads {
                            perch_qpad_planes_c4(src + first * g.inSize, g.inPerGroup, g.inH, g.inW, g.pH, g.pW, g.sH, g.sW, phaseH, phaseW,
                                                 flip, padRaw ^ flip, planes + MemoryPlannerAlign.up(planesBytes), dstPlanes)
                        } else {
                            perch_qpad_planes(src + first * g.inSize, g.inPerGroup, g.inH, g.inW, g.pH, g.pW, g.sH, g.sW, phaseH, phaseW, flip,
                                              padRaw ^ flip, dstPlanes)
                        }
                    }
                }
            }
            // Up to four chunks per thread, taken by whichever thread is free (a fixed share each
            // waits on the slower of two vCPUs); `t` is the thread's slot, whose buffers it uses.
            let chunks = args.threads > 1 && args.threads <= threads ? Swift.min(work, 4 * args.threads) : 1
            args.parallelChunks(chunks) { chunk, t in
                let s = base + t * slot
                let col = s.assumingMemoryBound(to: UInt8.self)
                let pack = (s + colBytes).assumingMemoryBound(to: UInt8.self)
                let acc = (s + colBytes + packBytes).assumingMemoryBound(to: Int32.self)
                for workItem in splitRange(work, parts: chunks, part: chunk) {
                    let item = workItem % items
                    let channels = splitRange(ocg, parts: channelParts, part: workItem / items, align: 8)
                    let blk = item % blocks
                    let gi = (item / blocks) % g.group
                    let b = item / (blocks * g.group)
                    let blockTiles = splitRange(tiles, parts: blocks, part: blk)
                    let p0 = blockTiles.lowerBound * 32
                    let m = Swift.min(blockTiles.upperBound * 32, outSize) - p0
                    let xBase = src + (b * g.inChannels + gi * g.inPerGroup) * g.inSize
                    if pointwise {
                        perch_interleave4(xBase + p0, g.inSize, k, m, ldp, flip, pack)
                    } else if channelQuads {
                        perch_qim2col_c4(planes + (b * g.inChannels + gi * g.inPerGroup) * g.sH * g.sW * phaseH * phaseW, g.inPerGroup, g.sH,
                                         g.sW, phaseH, phaseW, g.outW, g.kH, g.kW, g.dH, g.dW, p0, m, ldp, pack)
                    } else if fusedIm2col {
                        perch_qim2col4(planes + (b * g.inChannels + gi * g.inPerGroup) * g.sH * g.sW * phaseH * phaseW, g.inPerGroup, g.sH, g.sW,
                                       phaseH, phaseW, g.outW, g.kH, g.kW, g.dH, g.dW, p0, m, ldp, pack)
                    } else {
                        perch_qim2col_rows(xBase, g.inPerGroup, g.inH, g.inW, g.outW, g.kH, g.kW, g.sH, g.sW, g.dH, g.dW, g.pH, g.pW,
                                           p0, m, pb, padRaw, col)
                        perch_interleave4(col, pb, k, m, ldp, flip, pack)
                    }
                    let layer = layers[gi]
                    let o = dst + (b * g.outChannels + gi * ocg) * outSize + p0
                    if fused {
                        weights[gi].withUnsafeBufferPointer { w in
                            fusedRequant[gi].withParameters(from: channels.lowerBound) { rq in
                                isa.convK4Requant(n: channels.count, p: m, k4: k4, x: pack, ldx: ldp, w: w.baseAddress! + channels.lowerBound * ldw,
                                                  ldw: ldw, requant: rq, out: o + channels.lowerBound * outSize, ldo: outSize)
                            }
                        }
                        continue
                    }
                    // Rows `first..<first + n` of the weights (int8, or AVX2's widened copy) into `c`.
                    func convRows(_ n: Int, from first: Int, into c: UnsafeMutablePointer<Int32>) {
                        if split {
                            splits[gi].conv(n: n, p: m, k4: k4, x: pack, ldx: ldp, first: first, c: c, ldc: ldp)
                        } else if weights16.isEmpty {
                            weights[gi].withUnsafeBufferPointer { w in
                                isa.convK4(n: n, p: m, k4: k4, x: pack, ldx: ldp, w: w.baseAddress! + first * ldw, ldw: ldw, c: c, ldc: ldp)
                            }
                        } else {
                            weights16[gi].withUnsafeBufferPointer { w in
                                isa.convK4Wide(n: n, p: m, k4: k4, x: pack, ldx: ldp, w: w.baseAddress! + first * ldw, ldw: ldw, c: c, ldc: ldp)
                            }
                        }
                    }
                    let pixelSums = acc + Swift.min(chunkRows, ocg) * ldp
                    if sums { convRows(1, from: ocg, into: pixelSums) }  // the row of ones: Σa per pixel
                    layer.columnTerm.withUnsafeBufferPointer { ct in
                        layer.multipliers.withUnsafeBufferPointer { mu in
                            var first = channels.lowerBound
                            while first < channels.upperBound {
                                let n = Swift.min(chunkRows, channels.upperBound - first)
                                convRows(n, from: first, into: acc)
                                for j in first..<first + n {
                                    let a = acc + (j - first) * ldp
                                    if sums {
                                        let z = layer.weightZero[j]
                                        if z != 0 { for i in 0..<m { a[i] = a[i] &- z &* pixelSums[i] } }
                                    }
                                    var add = ct[j]
                                    if zeroInput != nil { add = add &- zr &* weightSums[gi][j] &+ Int32(layer.k) &* zr &* layer.weightZero[j] }
                                    if int32 {
                                        let y = dst32 + (b * g.outChannels + gi * ocg + j) * outSize + p0
                                        for i in 0..<m { y[i] = a[i] &+ add }
                                    } else {
                                        isa.requantRow(a, m, add: add, mu[j], zp: layer.outZero, lo: layer.lo, hi: layer.hi, o + j * outSize)
                                    }
                                }
                                first += n
                            }
                        }
                    }
                }
            }
        }
    }

    /// Weight rows (`ldw` apart) with K reordered from (c, tap) to (c / 4, tap, c % 4), the order
    /// perch_qim2col_c4 packs the input in. `channels` is a multiple of 4.
    static func channelQuadOrder(_ w: [Int8], rows: Int, ldw: Int, channels: Int, taps: Int) -> [Int8] {
        var out = w
        for r in 0..<rows {
            for c in 0..<channels {
                for t in 0..<taps { out[r * ldw + (c / 4 * taps + t) * 4 + c % 4] = w[r * ldw + c * taps + t] }
            }
        }
        return out
    }

    /// Depthwise 2-D convolution (one input channel per group, channel multiplier 1): the channel
    /// is copied once into zero-point-padded "phase planes" (plane (rh, rw) holds padded rows
    /// rh, rh+sH, … and columns rw, rw+sW, …), so each tap reads one plane contiguously and the
    /// whole channel runs as one long row of outH·planeW outputs (the columns past outW of each
    /// row are computed and dropped) — no per-row overhead on the small maps of late layers.
    static func depthwise(_ g: ConvGeometry, aIsI8: Bool, za: Int32, weights: [Int32], wZeros: [Int32], bias: [Int32]?,
                          multipliers: [QuantizedMultiplier], zy: Int32, lo: Int32, hi: Int32, outDesc: TensorDesc, threads: Int,
                          isa: QConvISA) -> PreparedOp {
        if isa.prefersChannelTiles(g, multipliers: multipliers) {
            return QDepthwiseTiles.prepare(g, aIsI8: aIsI8, za: za, weights: weights, wZeros: wZeros, bias: bias, multipliers: multipliers,
                                           zy: zy, lo: lo, hi: hi, outDesc: outDesc, threads: threads, isa: isa)
        }
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
        let planeH = (hp + g.sH - 1) / g.sH
        // + slack: the last taps of the long row read up to (kW−1)·dW/sW bytes past the plane.
        let planeStride = planeH * planeW + 64 + (g.kW - 1) * g.dW
        let planeBytes = MemoryPlannerAlign.up(g.sH * g.sW * planeStride)
        // VNNI: taps in groups of 4 with int8 weights (symmetric int8 weights always fit).
        let groups = (taps + 3) / 4
        let int8Taps = isa.hasInt8DepthwiseRow && wc.allSatisfy { $0 >= -128 && $0 <= 127 }
        var w8 = [Int8](repeating: 0, count: int8Taps ? channels * groups * 4 : 0)
        if int8Taps {
            for c in 0..<channels { for t in 0..<taps { w8[c * groups * 4 + t] = Int8(wc[c * taps + t]) } }
        }
        let rowsBytes = MemoryPlannerAlign.up(groups * 4 * 8)
        let accBytes = MemoryPlannerAlign.up(g.outH * planeW * 4)
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
                // Where each tap reads: the same for every channel (the planes are rebuilt in place).
                var tap = 0
                for kh in 0..<g.kH {
                    let row = kh * g.dH
                    for kw in 0..<g.kW {
                        let col = kw * g.dW
                        let plane = planes + ((row % g.sH) * g.sW + col % g.sW) * planeStride
                        rows[tap] = UnsafePointer(plane + (row / g.sH) * planeW + col / g.sW)
                        tap += 1
                    }
                }
                while tap < groups * 4 {  // padding taps (weight 0) read the first tap's row
                    rows[tap] = rows[0]
                    tap += 1
                }
                wc.withUnsafeBufferPointer { wAll in
                    for item in splitRange(work, parts: parts, part: t) {
                        let c = item % channels
                        let x = src + item * g.inSize
                        perch_qdw_planes(x, g.inH, g.inW, flip, padU8, g.pH, g.pW, hp, g.sH, g.sW, planeH, planeW, planeStride, planes)
                        let w = wAll.baseAddress! + c * taps
                        let o = dst + item * g.outSize
                        if int8Taps {
                            w8.withUnsafeBufferPointer { w8All in
                                isa.dwRowInt8(rows, w8All.baseAddress! + c * groups * 4, groups: groups, n: g.outH * planeW, initial: accInit[c], acc)
                            }
                        } else {
                            isa.dwRow(rows, w, taps: taps, n: g.outH * planeW, initial: accInit[c], acc)
                        }
                        isa.requantRows(acc, lda: planeW, n: g.outW, rows: g.outH, multipliers[c], zp: zy, lo: lo, hi: hi, o, ldo: g.outW)
                    }
                }
            }
        }
    }
}

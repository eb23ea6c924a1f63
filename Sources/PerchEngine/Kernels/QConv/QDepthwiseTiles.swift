import CPerchShims
import PerchGraph

extension QConvISA {
    /// Whether the channel-tiled depthwise kernels beat the per-channel phase planes here. The
    /// quad and word-pair kernels do on every map size measured; the plain tile kernel (dilated rows,
    /// horizontal strides above 2) only on strided and small maps, where the planes' per-row set-up
    /// dominated (MobileNet's 20×20 and 10×10 layers ran 4–7× slower than ONNX Runtime's NHWC
    /// kernel). AVX-512, and AVX2 for the word-pair kernel (on a Zen 3 the planes ran MobileNetV2's
    /// 14×14 and 7×7 layers 3–5× slower than ONNX Runtime); only with right shifts (multipliers
    /// < 1, as every convolution quantized from float has).
    func prefersChannelTiles(_ g: ConvGeometry, multipliers: [QuantizedMultiplier]) -> Bool {
        guard self == .avx512 || self == .avx2, multipliers.allSatisfy({ $0.isRightShift }) else { return false }
        if self == .avx2 { return QDepthwiseTiles.usesPairs(g) }
        // (Every layer the quad kernel takes — unit horizontal dilation — is one the pair rule or
        // the stride rule already admits.)
        return QDepthwiseTiles.usesPairs(g) || g.sH > 1 || g.sW > 1 || g.outSize <= 1024
    }

    /// Fills a band of the padded channel tile (perch_qdw_tile16_pack).
    @inline(__always)
    func packTile16(_ x: UnsafePointer<UInt8>, chans: Int, _ g: ConvGeometry, firstRow: Int, rows: Int, wp: Int, flip: UInt8, pad: UInt8,
                    _ tile: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qdw_tile16_pack_avx512(x, chans, g.inSize, g.inH, g.inW, g.pH, g.pW, firstRow, rows, wp, flip, pad, tile)
            return
        }
        #endif
        perch_qdw_tile16_pack(x, chans, g.inSize, g.inH, g.inW, g.pH, g.pW, firstRow, rows, wp, flip, pad, tile)
    }

    /// Writes `pixels` outputs of a tile back to NCHW planes `planeSize` apart (perch_qdw_tile16_unpack).
    @inline(__always)
    func unpackTile16(_ src: UnsafePointer<UInt8>, pixels: Int, chans: Int, planeSize: Int, _ dst: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qdw_tile16_unpack_avx512(src, pixels, chans, planeSize, dst)
            return
        }
        #endif
        perch_qdw_tile16_unpack(src, pixels, chans, planeSize, dst)
    }

    /// The word-pair form of a tile (see perch_qdw_pairs16_avx512): two horizontal taps per
    /// vpdpwssd (AVX2: vpmaddwd), faster than the per-channel planes on every map size measured
    /// (MobileNet's 80×80 to 10×10 layers, stride 1 and 2).
    @inline(__always)
    func depthwisePairs16(_ tile: UnsafePointer<UInt8>, rows: Int, wp: Int, pairTile: UnsafeMutablePointer<Int16>, wq: Int,
                          _ g: ConvGeometry, outH: Int, pairs: Int, w: UnsafePointer<Int16>, initial: UnsafePointer<Int32>,
                          mult: UnsafePointer<Int32>, rightShift: UnsafePointer<Int32>, zp: Int32, lo: Int32, hi: Int32,
                          _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if self == .avx2 {
            perch_qdw_tile16_pairs_avx2(tile, rows, wp, g.sW, wq, pairTile)
            perch_qdw_pairs16_avx2(pairTile, wq, outH, g.outW, g.sH, g.dH, g.kH, pairs, 2 / g.sW, w, initial, mult, rightShift,
                                   zp, lo, hi, out)
            return
        }
        perch_qdw_tile16_pairs(tile, rows, wp, g.sW, wq, pairTile)
        perch_qdw_pairs16_avx512(pairTile, wq, outH, g.outW, g.sH, g.dH, g.kH, pairs, 2 / g.sW, w, initial, mult, rightShift,
                                 zp, lo, hi, out)
        #else
        preconditionFailure("the word-pair depthwise kernel is x86-64 only")
        #endif
    }

    /// The quad form of a tile (see perch_qdw_quads16_vnni): up to four horizontal taps per
    /// vpdpbusd, for kernels at most 4 wide with int8 weights (3×3 depthwise layers of MobileNets).
    @inline(__always)
    func depthwiseQuads16(_ tile: UnsafePointer<UInt8>, rows: Int, wp: Int, quadTile: UnsafeMutablePointer<UInt8>, _ g: ConvGeometry,
                          outH: Int, w: UnsafePointer<Int8>, initial: UnsafePointer<Int32>, mult: UnsafePointer<Int32>,
                          rightShift: UnsafePointer<Int32>, zp: Int32, lo: Int32, hi: Int32, _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        perch_qdw_tile16_quads(tile, rows, wp, g.sW, g.outW, quadTile)
        perch_qdw_quads16_vnni(quadTile, g.outW, outH, g.outW, g.sH, g.dH, g.kH, w, initial, mult, rightShift, zp, lo, hi, out)
        #else
        preconditionFailure("the quad depthwise kernel is AVX-512 only")
        #endif
    }

    /// One 16-channel tile of a depthwise convolution (see CPerchQDepthwise.h).
    @inline(__always)
    func depthwiseTile16(_ tile: UnsafePointer<UInt8>, wp: Int, outH: Int, outW: Int, sH: Int, sW: Int, offsets: UnsafePointer<Int>,
                         taps: Int, w: UnsafePointer<Int32>, initial: UnsafePointer<Int32>, mult: UnsafePointer<Int32>,
                         shift: UnsafePointer<Int32>, rightShift: UnsafePointer<Int32>, zp: Int32, lo: Int32, hi: Int32,
                         _ out: UnsafeMutablePointer<UInt8>) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qdw_tile16_avx512(tile, wp, outH, outW, sH, sW, offsets, taps, w, initial, mult, rightShift, zp, lo, hi, out)
            return
        }
        #endif
        perch_qdw_tile16_scalar(tile, wp, outH, outW, sH, sW, offsets, taps, w, initial, mult, shift, zp, lo, hi, out)
    }
}

/// Depthwise 2-D convolution (channel multiplier 1) on blocks of 16 channels: each block is
/// transposed into a zero-point-padded [Hp][Wp][16] tile, convolved one output pixel (16 channels)
/// per vector with per-channel weights and requantization in the vector lanes, and transposed back
/// to NCHW. The cost per channel no longer grows with the number of rows, which is what small maps need.
/// Kernels at most 4 wide with int8 weights (3×3) add a kernel row per vpdpbusd from a quad tile;
/// other unit-dilation rows two taps per vpdpwssd from a word-pair tile; the rest one tap at a time.
enum QDepthwiseTiles {
    static let lanes = 16

    /// Whether the word-pair kernel applies: horizontal taps adjacent (no dilation across a row)
    /// and a horizontal stride of 1 or 2 (pairs start at every or every other pixel).
    static func usesPairs(_ g: ConvGeometry) -> Bool { g.dW == 1 && (g.sW == 1 || g.sW == 2) }

    /// Whether the quad kernel applies (given int8 weights): a kernel row fits one 4-byte word
    /// of horizontally adjacent taps.
    static func usesQuads(_ g: ConvGeometry) -> Bool { g.dW == 1 && g.kW <= 4 }

    static func prepare(_ g: ConvGeometry, aIsI8: Bool, za: Int32, weights: [Int32], wZeros: [Int32], bias: [Int32]?,
                        multipliers: [QuantizedMultiplier], zy: Int32, lo: Int32, hi: Int32, outDesc: TensorDesc, threads: Int,
                        isa: QConvISA) -> PreparedOp {
        let taps = g.kH * g.kW
        let channels = g.outChannels
        let blocks = (channels + lanes - 1) / lanes
        // Per block: taps × 16 weights (zero point subtracted), 16 initial sums, multipliers, shifts.
        var w = [Int32](repeating: 0, count: blocks * taps * lanes)
        var initial = [Int32](repeating: 0, count: blocks * lanes)
        var mult = [Int32](repeating: 0, count: blocks * lanes)
        var shift = [Int32](repeating: 0, count: blocks * lanes)
        for c in 0..<channels {
            let blk = c / lanes, lane = c % lanes
            var sum: Int32 = 0
            for t in 0..<taps {
                let v = weights[c * taps + t] - wZeros[c]
                w[(blk * taps + t) * lanes + lane] = v
                sum &+= v
            }
            initial[blk * lanes + lane] = (bias?[c] ?? 0) &- za &* sum
            mult[blk * lanes + lane] = multipliers[c].multiplier
            shift[blk * lanes + lane] = multipliers[c].shift
        }
        let rightShift = shift.map { -$0 }
        // Quad form: per block, kH vectors of 16 channels × (w[kh][0..<kW], 0…) as int8.
        let quadMode = isa == .avx512 && usesQuads(g) && w.allSatisfy { $0 >= -128 && $0 <= 127 }
        var wQuads = [Int8](repeating: 0, count: quadMode ? blocks * g.kH * 4 * lanes : 0)
        if quadMode {
            for blk in 0..<blocks { for kh in 0..<g.kH { for lane in 0..<lanes { for kw in 0..<g.kW {
                wQuads[((blk * g.kH + kh) * lanes + lane) * 4 + kw] = Int8(w[(blk * taps + kh * g.kW + kw) * lanes + lane])
            } } } }
        }
        // Pair form: per block, kH × ⌈kW/2⌉ vectors of 16 channels × (w[kh][2m], w[kh][2m + 1] or 0).
        let pairMode = !quadMode && (isa == .avx512 || isa == .avx2) && usesPairs(g) && w.allSatisfy { Int16(exactly: $0) != nil }
        let pairs = (g.kW + 1) / 2
        var wPairs = [Int16](repeating: 0, count: pairMode ? blocks * g.kH * pairs * 2 * lanes : 0)
        if pairMode {
            for blk in 0..<blocks { for kh in 0..<g.kH { for m in 0..<pairs { for lane in 0..<lanes {
                let at = (((blk * g.kH + kh) * pairs + m) * lanes + lane) * 2
                for e in 0..<2 where 2 * m + e < g.kW {
                    wPairs[at + e] = Int16(w[(blk * taps + kh * g.kW + 2 * m + e) * lanes + lane])
                }
            } } } }
        }
        let wp = (g.outW - 1) * g.sW + (g.kW - 1) * g.dW + 1
        let wq = (wp + g.sW - 1) / g.sW
        var offsets = [Int]()
        for kh in 0..<g.kH { for kw in 0..<g.kW { offsets.append(kh * g.dH * wp + kw * g.dW) } }
        // Large maps go in bands of output rows whose tiles stay near L1 (an 80×80 map's whole
        // word-pair tile is 430 KB): the padded rows a band of n output rows reads.
        func tileRows(_ n: Int) -> Int { (n - 1) * g.sH + (g.kH - 1) * g.dH + 1 }
        let rowBytes = wp * lanes + (pairMode ? wq * lanes * 4 : 0) + (quadMode ? g.outW * lanes * 4 : 0)
        var band = g.outH
        while band > 1 && tileRows(band) * rowBytes > 96 * 1024 { band = (band + 1) / 2 }
        let tileBytes = MemoryPlannerAlign.up(tileRows(band) * wp * lanes + 4 * lanes)  // + the pair and quad builders' slack
        let outBytes = MemoryPlannerAlign.up(band * g.outW * lanes)
        let pairBytes = pairMode ? MemoryPlannerAlign.up(tileRows(band) * wq * lanes * 4)
            : quadMode ? MemoryPlannerAlign.up(tileRows(band) * g.outW * lanes * 4) : 0
        let slot = tileBytes + outBytes + pairBytes
        let flip: UInt8 = aIsI8 ? 0x80 : 0
        let pad = UInt8(truncatingIfNeeded: za)
        // Threads take whole channel blocks; when the blocks do not divide evenly among them
        // (MobileNetV2's 144 channels: 9 blocks, 5 and 4 per thread) each thread takes a band of
        // output rows of every block instead.
        let rowParts = threads > 1 && (g.batch * blocks) % threads != 0 && g.outH >= 4 * threads ? threads : 1
        let work = g.batch * blocks * rowParts
        return PreparedOp(outputs: [outDesc], scratchBytes: slot * threads) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let base = args.scratch!
            // Up to four chunks per thread, taken by whichever thread is free (a fixed half each
            // waited on the slower of two vCPUs; single-item chunks lost locality on MobileNet);
            // `t` is the thread's slot, whose tiles it uses.
            let chunks = args.threads > 1 && args.threads <= threads ? Swift.min(work, 4 * args.threads) : 1
            args.parallelChunks(chunks) { chunk, t in
                let tile = (base + t * slot).assumingMemoryBound(to: UInt8.self)
                let outTile = (base + t * slot + tileBytes).assumingMemoryBound(to: UInt8.self)
                let pairTile = (base + t * slot + tileBytes + outBytes).assumingMemoryBound(to: Int16.self)
                let quadTile = (base + t * slot + tileBytes + outBytes).assumingMemoryBound(to: UInt8.self)
                w.withUnsafeBufferPointer { wAll in initial.withUnsafeBufferPointer { ini in mult.withUnsafeBufferPointer { mu in
                    shift.withUnsafeBufferPointer { sh in rightShift.withUnsafeBufferPointer { rs in offsets.withUnsafeBufferPointer { off in
                        for workItem in splitRange(work, parts: chunks, part: chunk) {
                            let item = workItem % (g.batch * blocks)
                            let outRows = splitRange(g.outH, parts: rowParts, part: workItem / (g.batch * blocks))
                            let blk = item % blocks, b = item / blocks
                            let c0 = blk * lanes
                            let chans = Swift.min(lanes, channels - c0)
                            let p = blk * lanes
                            for oy0 in stride(from: outRows.lowerBound, to: outRows.upperBound, by: band) {
                                let n = Swift.min(band, outRows.upperBound - oy0), rows = tileRows(n)
                                isa.packTile16(src + (b * channels + c0) * g.inSize, chans: chans, g, firstRow: oy0 * g.sH, rows: rows,
                                               wp: wp, flip: flip, pad: pad, tile)
                                if quadMode {
                                    wQuads.withUnsafeBufferPointer { wqAll in
                                        isa.depthwiseQuads16(tile, rows: rows, wp: wp, quadTile: quadTile, g, outH: n,
                                                             w: wqAll.baseAddress! + blk * g.kH * 4 * lanes, initial: ini.baseAddress! + p,
                                                             mult: mu.baseAddress! + p, rightShift: rs.baseAddress! + p, zp: zy, lo: lo,
                                                             hi: hi, outTile)
                                    }
                                } else if pairMode {
                                    wPairs.withUnsafeBufferPointer { wpAll in
                                        isa.depthwisePairs16(tile, rows: rows, wp: wp, pairTile: pairTile, wq: wq, g, outH: n, pairs: pairs,
                                                             w: wpAll.baseAddress! + blk * g.kH * pairs * 2 * lanes,
                                                             initial: ini.baseAddress! + p, mult: mu.baseAddress! + p,
                                                             rightShift: rs.baseAddress! + p, zp: zy, lo: lo, hi: hi, outTile)
                                    }
                                } else {
                                    isa.depthwiseTile16(tile, wp: wp, outH: n, outW: g.outW, sH: g.sH, sW: g.sW, offsets: off.baseAddress!,
                                                        taps: taps, w: wAll.baseAddress! + blk * taps * lanes, initial: ini.baseAddress! + p,
                                                        mult: mu.baseAddress! + p, shift: sh.baseAddress! + p,
                                                        rightShift: rs.baseAddress! + p, zp: zy, lo: lo, hi: hi, outTile)
                                }
                                isa.unpackTile16(outTile, pixels: n * g.outW, chans: chans, planeSize: g.outSize,
                                                 dst + (b * channels + c0) * g.outSize + oy0 * g.outW)
                            }
                        }
                    } } }
                } } }
            }
        }
    }
}

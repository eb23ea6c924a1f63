import CPerchShims
import PerchGraph

extension QConvISA {
    /// C[n][p] = Σ_t Σ_k4 W[n][t·K4 + k4] · X[k4][p + off[t]] (perch_qconv_taps_*).
    @inline(__always)
    func convTaps(n: Int, p: Int, k4: Int, taps: Int, offsets: UnsafePointer<Int>, x: UnsafePointer<UInt8>, ldx: Int,
                  w: UnsafePointer<Int8>, ldw: Int, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qconv_taps_vnni(n, p, k4, taps, offsets, x, ldx, w, ldw, c, ldc)
            return
        }
        #endif
        perch_qconv_taps_scalar(n, p, k4, taps, offsets, x, ldx, w, ldw, c, ldc)
    }
}

/// Stride-1 int8 convolution without im2col (see CPerchQConvTaps.h): the input is padded once into
/// the GEMM's K4 layout and each tap reads it at its own offset; outputs are computed on the padded
/// grid, a block of whole grid rows at a time, and requantized row by row into NCHW. AVX-512 VNNI.
enum QConvTaps {
    /// Output channels per GEMM call: 64 channels × 512 pixels of int32 accumulators stay near L1.
    static let channelChunk = 64
    static let targetPixels = 512

    /// Whether this layer runs here: one group, stride 1, a kernel larger than 1×1, at least 8 input
    /// channels (fewer pad the K4 groups with zero channels: the first layer's 3 channels would do
    /// a third more multiplies than im2col's 27-long rows) and no padding past the rows read.
    static func applies(_ g: ConvGeometry, isa: QConvISA) -> Bool {
        guard isa == .avx512, g.group == 1, g.sH == 1, g.sW == 1, g.kernelSize > 1, g.inPerGroup >= 8 else { return false }
        let hp = g.outH + (g.kH - 1) * g.dH, wp = g.outW + (g.kW - 1) * g.dW
        return g.inH + g.pH <= hp && g.inW + g.pW <= wp
    }

    static func prepare(_ g: ConvGeometry, layer: QLinearLayer, aIsI8: Bool, za: Int32, outDesc: TensorDesc, threads: Int,
                        isa: QConvISA) -> PreparedOp {
        let channels = g.inChannels, taps = g.kH * g.kW, k4 = (channels + 3) / 4
        let hp = g.outH + (g.kH - 1) * g.dH, wp = g.outW + (g.kW - 1) * g.dW
        let ldx = hp * wp + 16
        var offsets = [Int]()
        for kh in 0..<g.kH { for kw in 0..<g.kW { offsets.append(kh * g.dH * wp + kw * g.dW) } }
        // Weights tap-major: row n, word t·K4 + k4 holds channels 4k4..4k4+3 of tap t (missing
        // channels 0). Uint8 weights with a zero point add a row of ones: Σa over the window.
        let n = layer.n, sums = layer.needsRowSums
        let rowsN = sums ? n + 1 : n
        let ldw = taps * k4 * 4
        var w = [Int8](repeating: 0, count: rowsN * ldw)
        for j in 0..<rowsN { for t in 0..<taps { for c in 0..<channels {
            w[j * ldw + (t * k4 + c / 4) * 4 + c % 4] = j == n ? 1 : layer.weights[j * layer.kp + c * taps + t]
        } } }
        // Blocks of whole grid rows, balanced so the last block is not a sliver.
        let maxRows = Swift.max(1, targetPixels / wp)
        let blocks = (g.outH + maxRows - 1) / maxRows
        let blockRows = (g.outH + blocks - 1) / blocks
        let pb = blockRows * wp
        let chunk = Swift.min(channelChunk, n)
        let chunks = (n + chunk - 1) / chunk
        let items = blocks * chunks
        let padBytes = MemoryPlannerAlign.up(k4 * ldx * 4)
        // Fused requantization: the kernel writes bytes — straight into the output when the map's
        // width is a multiple of 16 (only valid pixels computed), else on the padded grid, copied
        // row by row.
        let fused = QChannelRequant(layer)
        let validOnly = fused != nil && g.outW % 16 == 0
        let accBytes = fused == nil ? MemoryPlannerAlign.up((chunk + 1) * pb * 4) : validOnly ? 0 : MemoryPlannerAlign.up(chunk * pb)
        let flip: UInt8 = aIsI8 ? 0x80 : 0
        let pad = UInt8(truncatingIfNeeded: za)
        let slots = Swift.min(threads, items)
        return PreparedOp(outputs: [outDesc], scratchBytes: padBytes + accBytes * slots) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let padded = args.scratch!.assumingMemoryBound(to: UInt8.self)
            let parts = Swift.min(args.threads, threads, items)
            for b in 0..<g.batch {
                perch_qconv_pad_k4(src + b * channels * g.inSize, channels, g.inH, g.inW, g.pH, g.pW, hp, wp, flip, pad, padded, ldx)
                args.parallelFor(parts) { t in
                    let acc = (args.scratch! + padBytes + t * accBytes).assumingMemoryBound(to: Int32.self)
                    w.withUnsafeBufferPointer { wAll in offsets.withUnsafeBufferPointer { off in
                        for item in splitRange(items, parts: parts, part: t) {
                            let r0 = (item / chunks) * blockRows, rows = Swift.min(blockRows, g.outH - r0)
                            let lower = (item % chunks) * chunk, count = Swift.min(chunk, n - lower)
                            let m = (rows - 1) * wp + g.outW
                            let x = padded + r0 * wp * 4
                            let o = dst + (b * n + lower) * g.outSize + r0 * g.outW
                            if let fused, validOnly {
                                fused.withParameters(from: lower) { rq in
                                    isa.convTapsRowsRequant(n: count, rows: rows, outW: g.outW, wp: wp, k4: k4, taps: taps, offsets: off.baseAddress!,
                                                            x: x, ldx: ldx, w: wAll.baseAddress! + lower * ldw, ldw: ldw, requant: rq,
                                                            out: o, ldo: g.outSize)
                                }
                                continue
                            }
                            if let fused {
                                let bytes = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: UInt8.self)
                                fused.withParameters(from: lower) { rq in
                                    isa.convTapsRequant(n: count, p: m, k4: k4, taps: taps, offsets: off.baseAddress!, x: x, ldx: ldx,
                                                        w: wAll.baseAddress! + lower * ldw, ldw: ldw, requant: rq, out: bytes, ldo: pb)
                                }
                                for j in 0..<count {
                                    for r in 0..<rows {
                                        (o + j * g.outSize + r * g.outW).update(from: bytes + j * pb + r * wp, count: g.outW)
                                    }
                                }
                                continue
                            }
                            isa.convTaps(n: count, p: m, k4: k4, taps: taps, offsets: off.baseAddress!, x: x, ldx: ldx,
                                         w: wAll.baseAddress! + lower * ldw, ldw: ldw, c: acc, ldc: pb)
                            if sums {
                                let pixelSums = acc + chunk * pb
                                isa.convTaps(n: 1, p: m, k4: k4, taps: taps, offsets: off.baseAddress!, x: x, ldx: ldx,
                                             w: wAll.baseAddress! + n * ldw, ldw: ldw, c: pixelSums, ldc: pb)
                                for j in 0..<count {
                                    let z = layer.weightZero[lower + j]
                                    if z == 0 { continue }
                                    let a = acc + j * pb
                                    for i in 0..<m { a[i] = a[i] &- z &* pixelSums[i] }
                                }
                            }
                            for j in 0..<count {
                                isa.requantRows(acc + j * pb, lda: wp, n: g.outW, rows: rows, add: layer.columnTerm[lower + j],
                                                layer.multipliers[lower + j], zp: layer.outZero, lo: layer.lo, hi: layer.hi,
                                                o + j * g.outSize, ldo: g.outW)
                            }
                        }
                    } }
                }
            }
        }
    }
}

import CPerchShims
import PerchGraph

extension QConvISA {
    /// out[m·ldo + n] = requant_n(Σ_k4 dot4(X[k4][m], B[k4][n])) (perch_qconv_k4t_q8_*).
    @inline(__always)
    func convK4TransposedRequant(m: Int, n: Int, k4: Int, x: UnsafePointer<UInt8>, ldx: Int, b: UnsafePointer<Int8>, ldb: Int,
                                 requant: UnsafePointer<perch_qchannel_requant>, out: UnsafeMutablePointer<UInt8>, ldo: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qconv_k4t_q8_vnni(m, n, k4, x, ldx, b, ldb, requant, out, ldo)
            return
        }
        #endif
        perch_qconv_k4t_q8_scalar(m, n, k4, x, ldx, b, ldb, requant, out, ldo)
    }
}

/// 1×1 convolution on small maps as pixels × channels (see CPerchQPointwise.h): output channels
/// fill the vectors, so a 10×10 map no longer pays for 128 pixels; each pixel row is requantized
/// in the GEMM's epilogue with the channels' multipliers in the lanes and the block is transposed
/// back to NCHW.
enum QConvPointwiseRows {
    /// Maps of at most 256 pixels (14×14, 10×10, 7×7: the NCHW kernels' 32-pixel tiles waste 12–25%
    /// there), one group, int8 weights without zero points, multipliers below 1 (right shifts).
    static func applies(_ g: ConvGeometry, layer: QLinearLayer, isa: QConvISA) -> Bool {
        isa == .avx512 && g.group == 1 && g.outSize <= 256 && layer.n >= 32 && QChannelRequant(layer) != nil
    }

    static func prepare(_ g: ConvGeometry, layer: QLinearLayer, aIsI8: Bool, outDesc: TensorDesc, threads: Int,
                        isa: QConvISA) -> PreparedOp {
        let n = layer.n, k = layer.k, k4 = (k + 3) / 4, p = g.outSize
        // Weights as [K4][ldb][4], ldb a multiple of the kernel's 64 channels, zero padded.
        let layer = { var packed = layer; packed.packRowMajor(columnBlock: 64); return packed }()
        let ldb = layer.ldb
        // Threads split the channels, in multiples of 16 (whole transpose blocks), when each gets
        // 64 or more; else the pixels, each thread packing its own (MobileNetV2's 96-channel
        // projections on 14×14 ran on one thread).
        let channelParts = Swift.max(1, Swift.min(threads, n / 64))
        let pixelParts = channelParts < threads && p >= 32 * threads ? threads : 1
        let parts = pixelParts > 1 ? pixelParts : channelParts
        let chunk = (0..<channelParts).map { splitRange(n, parts: channelParts, part: $0, align: 16).count }.max() ?? n
        let pixels = (0..<pixelParts).map { splitRange(p, parts: pixelParts, part: $0, align: 16).count }.max() ?? p
        let packBytes = MemoryPlannerAlign.up(k4 * 4 * pixels)
        let slot = packBytes + MemoryPlannerAlign.up(pixels * (pixelParts > 1 ? n : chunk))
        let flip: UInt8 = aIsI8 ? 0x80 : 0
        let requant = QChannelRequant(layer)!  // `applies` admits only layers it takes
        return PreparedOp(outputs: [outDesc], scratchBytes: slot * parts) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            args.parallelFor(parts) { t in
                let s = args.scratch! + t * slot
                let pack = s.assumingMemoryBound(to: UInt8.self)
                let bytes = (s + packBytes).assumingMemoryBound(to: UInt8.self)
                let range = pixelParts > 1 ? 0..<n : splitRange(n, parts: channelParts, part: t, align: 16)
                let mine = pixelParts > 1 ? splitRange(p, parts: pixelParts, part: t, align: 16) : 0..<p
                let count = range.count, m = mine.count
                guard count > 0, m > 0 else { return }
                layer.packedB.withUnsafeBufferPointer { b in
                    requant.withParameters(from: range.lowerBound) { rq in
                        for batch in 0..<g.batch {
                            perch_interleave4(src + batch * g.inChannels * g.inSize + mine.lowerBound, g.inSize, k, m, m, flip, pack)
                            isa.convK4TransposedRequant(m: m, n: count, k4: k4, x: pack, ldx: m, b: b.baseAddress! + range.lowerBound * 4,
                                                        ldb: ldb, requant: rq, out: bytes, ldo: count)
                            perch_transpose_bytes(bytes, m, count, count, dst + (batch * n + range.lowerBound) * p + mine.lowerBound, p)
                        }
                    }
                }
            }
        }
    }
}

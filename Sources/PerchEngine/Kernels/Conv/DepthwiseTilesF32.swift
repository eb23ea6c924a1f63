import CPerchShims

/// fp32 depthwise convolution 16 channels at a time (CPerchDepthwiseTilesF32.h): channel
/// multiplier 1, 2-D, any kernel, stride, dilation and padding, AVX-512 or AVX2 + FMA (a pixel's
/// 16 channels as two vectors; on a Zen 3 the per-channel planes left MobileNet's fp32 depthwise
/// layers 1.4–1.6× slower than ONNX Runtime). The input is transposed
/// into zero-padded tiles in bands of output rows (a band's tile stays near 48 KB, in L1/L2), so
/// MobileNet's 10×10 and 20×20 maps cost what their multiply-adds cost instead of a per-channel
/// set-up each (fp32 depthwise layers were 2–5× slower than ONNX Runtime's).
struct DepthwiseTilesF32 {
    /// Padded tile width: every column the kernel reads, (outW − 1)·sW + (kW − 1)·dW + 1.
    let wp: Int
    /// Output rows per band and the tile rows (padded input rows) a band reads.
    let bandRows: Int
    let tileRows: Int
    let taps: Int
    /// Tap offsets in tile pixels, row-major (computed here, not on every run).
    let offsets: [Int]

    /// Whether the AVX-512 kernels run (else the AVX2 ones).
    let avx512: Bool

    /// nil where this path does not apply (see the type's documentation), or without AVX2 + FMA.
    init?(_ g: ConvGeometry) {
        #if arch(x86_64)
        let best = perch_sgemm_best()
        guard best == Int32(PERCH_SGEMM_AVX512) || best == Int32(PERCH_SGEMM_AVX2), g.kD == 1, g.inD == 1, g.outD == 1, g.inPerGroup == 1,
              g.outPerGroup == 1, g.outH > 0, g.outW > 0 else { return nil }
        avx512 = best == Int32(PERCH_SGEMM_AVX512)
        wp = (g.outW - 1) * g.sW + (g.kW - 1) * g.dW + 1
        taps = g.kH * g.kW
        let span = (g.kH - 1) * g.dH + 1
        let maxRows = Swift.max(span, 12 * 1024 / (wp * 16))
        bandRows = Swift.min(g.outH, Swift.max(1, (maxRows - span) / g.sH + 1))
        tileRows = (bandRows - 1) * g.sH + span
        var offsets = [Int](repeating: 0, count: taps)
        for kh in 0..<g.kH { for kw in 0..<g.kW { offsets[kh * g.kW + kw] = kh * g.dH * wp + kw * g.dW } }
        self.offsets = offsets
        #else
        return nil
        #endif
    }

    /// Scratch floats per thread: the tile, a band of outputs, the block's weights and biases.
    func floatsPerSlot(_ g: ConvGeometry) -> Int {
        MemoryPlanner.roundUp(tileRows * wp * 16 + bandRows * g.outW * 16 + taps * 16 + 16, 16)
    }

    /// All of the conv: items are (batch, 16-channel block, band of output rows), split across
    /// threads; `scratch` holds `slots` × `floatsPerSlot` floats.
    func run(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, args: KernelArgs, scratch: UnsafeMutablePointer<Float>, slots: Int,
             clamp: (Float, Float)?) {
        #if arch(x86_64)
        let blocks = (g.outChannels + 15) / 16
        let bandCount = (g.outH + bandRows - 1) / bandRows
        let items = g.batch * blocks * bandCount
        let work = g.batch * g.outChannels * g.outSize * taps
        let parts = work >= 32768 ? Swift.min(args.threads, slots, items) : 1
        let slot = floatsPerSlot(g)
        offsets.withUnsafeBufferPointer { off in
            args.parallelFor(parts) { part in
                let tile = scratch + part * slot
                let out = tile + tileRows * wp * 16
                let wb = out + bandRows * g.outW * 16
                let bb = wb + taps * 16
                var lastBlock = -1
                for item in splitRange(items, parts: parts, part: part) {
                    let band = item % bandCount, block = (item / bandCount) % blocks, n = item / (bandCount * blocks)
                    let c0 = block * 16, chans = Swift.min(16, g.outChannels - c0)
                    if block != lastBlock {
                        // The block's weights as [tap][16 lanes] and its biases (zeros past `chans`).
                        for t in 0..<taps { for l in 0..<16 { wb[t * 16 + l] = l < chans ? w[(c0 + l) * taps + t] : 0 } }
                        for l in 0..<16 { bb[l] = l < chans ? (bias?[c0 + l] ?? 0) : 0 }
                        lastBlock = block
                    }
                    let oy0 = band * bandRows, rows = Swift.min(bandRows, g.outH - oy0)
                    let ty0 = oy0 * g.sH
                    let used = (rows - 1) * g.sH + (g.kH - 1) * g.dH + 1
                    let xb = x + (n * g.inChannels + c0) * g.inSize
                    let yb = y + (n * g.outChannels + c0) * g.outSize + oy0 * g.outW
                    if avx512 {
                        perch_dwf32_pack16(xb, g.inSize, Int32(chans), g.inH, g.inW, g.pH, g.pW, ty0, used, wp, tile)
                        perch_dwf32_tile16(tile, wp, rows, g.outW, g.sH, g.sW, off.baseAddress!, taps, wb, bb, clamp == nil ? 0 : 1,
                                           clamp?.0 ?? 0, clamp?.1 ?? 0, out)
                        perch_dwf32_unpack16(out, rows * g.outW, Int32(chans), yb, g.outSize)
                    } else {
                        perch_dwf32_pack16_avx2(xb, g.inSize, Int32(chans), g.inH, g.inW, g.pH, g.pW, ty0, used, wp, tile)
                        perch_dwf32_tile16_avx2(tile, wp, rows, g.outW, g.sH, g.sW, off.baseAddress!, taps, wb, bb, clamp == nil ? 0 : 1,
                                                clamp?.0 ?? 0, clamp?.1 ?? 0, out)
                        perch_dwf32_unpack16_avx2(out, rows * g.outW, Int32(chans), yb, g.outSize)
                    }
                }
            }
        }
        #endif
    }
}

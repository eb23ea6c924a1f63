import CPerchShims

/// A 2-D float32 conv (group 1) run by the direct kernel of `CPerchConvDirectF32.h`: output
/// channels in the vector lanes, 32 at a time, pixels broadcast from the (padded) NCHW input, so
/// a run packs no column matrix. Constant weights are packed into 32-channel blocks at prepare
/// (weights known only at run time are packed into scratch on each run, the same bits).
/// x86-64 with AVX-512 (12 pixels × 32 channels a tile), with AVX2 + FMA and aarch64 (NEON) 6
/// pixels × 16 channels.
struct DirectConvF32 {
    /// Constant weights packed [block][k][32], and the bias padded to 32 per block.
    var packed: [Float]?
    var bias: [Float]?
    let blocks: Int
    let k: Int
    let implicit: ImplicitIm2col
    /// The AVX-512 tile (x86-64 with AVX-512), else the 6 × 16 one.
    let wideTiles: Bool

    /// nil when the conv or the CPU does not fit the kernel.
    init?(_ g: ConvGeometry) {
        #if arch(x86_64) || arch(arm64)
        #if arch(x86_64)
        let isa = VectorISA.best()
        guard isa.avx512 || isa.avx2 else { return nil }
        wideTiles = isa.avx512
        #else
        wideTiles = false
        #endif
        guard g.group == 1, g.spatialRank == 2, g.outW > 0, g.outH > 0, g.inChannels > 0,
              let implicit = ImplicitIm2col(g) else { return nil }
        self.implicit = implicit
        k = g.inChannels * g.kernelSize
        blocks = (g.outChannels + 31) / 32
        #else
        return nil
        #endif
    }

    /// Whether a conv should take the direct kernel when it can (PERCH_CONV_DIRECT=0 or 1
    /// overrides, to compare the paths on one model).
    static func worthIt(_ g: ConvGeometry) -> Bool {
        if let e = getenv("PERCH_CONV_DIRECT") { return e.pointee == 0x31 }
        // Short sums (a 3-channel stem: 27 taps) spend more on the tile's transposed store than
        // on the multiply-adds; there the GEMM path was faster (SqueezeNet's stem 0.73 vs 1.12 ms).
        // A 1×1 conv's GEMM reads X in place, so only the longest sums gain (ResNet-50's 1024-
        // and 2048-channel ones, 5–15%; its 64-channel ones lost 40–60%), narrow outputs, where
        // the GEMM's 6-row tiles share each B panel among few calls (SqueezeNet's 16- to
        // 48-channel squeeze convs, 8–20%; ResNet-50's 256→64 on 56×56, 1.41 → 1.09 ms), and
        // long sums on tiny maps (MobileNetV2's 960→320 on 7×7, 0.34 → 0.27 ms). Measured
        // losers stay on the GEMM: 384→96 and 576→96 on 14×14, 512→128 on 28×28 (8–25%).
        // Narrow k×k layers (16 or 32 outputs, whole 16-channel halves) gain from 72 taps:
        // YOLO's 16→16 3×3 on 64×64 0.28 → 0.21 ms, 8→16 on 128×128 0.57 → 0.49, 16→32 3×3/2
        // 0.50 → 0.43; 24 or 64 outputs at those sums stayed faster on the GEMM (12→24: 0.25 vs 0.31).
        let taps = g.inChannels * g.kernelSize
        #if arch(x86_64)
        if !VectorISA.best().avx512 {
            // AVX2's 6 × 16 tile (16 ymm registers) only where the GEMM's packing dominates: k×k
            // layers with 16 or 32 outputs (per-layer means on YOLO: 16→16 3×3 on 64×64 0.47–0.53
            // → 0.35–0.36 ms, 32→32 3×3 on 32×32 0.36–0.41 → 0.32–0.35, 16→32 3×3/2 on 128×128
            // 0.84–0.93 → 0.80–0.82). With 64 or more outputs it ran 7–12% slower than im2col +
            // GEMM (CRNN's 3×3 convs, session 20). The stride-1 ones of these now take
            // ConvStemF32 first (checked before this one); the strided ones stay here.
            return g.kernelSize > 1 && taps >= 72 && g.outChannels <= 32 && g.outChannels % 16 == 0
        }
        #endif
        if g.kernelSize > 1 { return taps >= 192 || (taps >= 72 && g.outChannels <= 32 && g.outChannels % 16 == 0) }
        return taps >= 1024 || (g.outChannels <= 48 && taps >= 64) || (g.outChannels <= 64 && taps >= 256)
            || (g.outSize <= 64 && taps >= 768)
    }

    /// Packs constant weights (`cout × k`) and bias once.
    mutating func prepack(weights: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?, outChannels: Int) {
        var w = [Float](repeating: 0, count: blocks * k * 32)
        w.withUnsafeMutableBufferPointer { perch_conv_direct_pack(weights.baseAddress!, outChannels, k, $0.baseAddress!) }
        packed = w
        var b = [Float](repeating: 0, count: blocks * 32)
        if let bias { for i in 0..<outChannels { b[i] = bias[i] } }
        self.bias = b
    }

    /// Floats of scratch a run needs: the padded input copy, and room to pack weights and bias
    /// that were not constant at prepare.
    func scratchFloats(_ g: ConvGeometry) -> Int {
        MemoryPlanner.roundUp(implicit.floats(channels: g.inChannels), 16) + (packed == nil ? blocks * 32 * (k + 1) : 0)
    }

    func run(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias runtimeBias: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?, args: KernelArgs, clamp: (Float, Float)?) {
        #if arch(x86_64) || arch(arm64)
        let padFloats = MemoryPlanner.roundUp(implicit.floats(channels: g.inChannels), 16)
        if let packed, let bias {
            packed.withUnsafeBufferPointer { wt in
                bias.withUnsafeBufferPointer { b in
                    run(g, x: x, wt: wt.baseAddress!, bias: b.baseAddress!, y: y, pad: scratch, args: args, clamp: clamp)
                }
            }
            return
        }
        let wt = scratch! + padFloats, b = wt + blocks * 32 * k
        perch_conv_direct_pack(w, g.outChannels, k, wt)
        b.update(repeating: 0, count: blocks * 32)
        if let runtimeBias { b.update(from: runtimeBias, count: g.outChannels) }
        run(g, x: x, wt: wt, bias: b, y: y, pad: scratch, args: args, clamp: clamp)
        #endif
    }

    private func run(_ g: ConvGeometry, x: UnsafePointer<Float>, wt: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                     y: UnsafeMutablePointer<Float>, pad: UnsafeMutablePointer<Float>?, args: KernelArgs, clamp: (Float, Float)?) {
        #if arch(x86_64) || arch(arm64)
        let (lo, hi) = clamp ?? (0, 0)
        let clampFlag: Int32 = clamp == nil ? 0 : 1
        // Items: a 32-channel block × a band of output rows, enough of them to share out.
        let threads = args.threads
        let bands = threads > 1 ? Swift.min(g.outH, Swift.max(1, (4 * threads + blocks - 1) / blocks)) : 1
        let blocks = self.blocks, k = self.k, implicit = self.implicit, wideTiles = self.wideTiles
        for n in 0..<g.batch {
            let xn = x + n * g.inChannels * g.inSize
            let yn = y + n * g.outChannels * g.outSize
            var src = xn
            if implicit.copies, let pad {
                let parts = Swift.min(threads, g.inChannels)
                if parts > 1 && implicit.floats(channels: g.inChannels) >= 16384 {
                    args.parallelFor(parts) { i in implicit.fill(g, x: xn, channels: splitRange(g.inChannels, parts: parts, part: i), dst: pad) }
                } else {
                    implicit.fill(g, x: xn, channels: 0..<g.inChannels, dst: pad)
                }
                src = UnsafePointer(pad)
            }
            let geometry = perch_conv_direct(x: src, planeSize: implicit.copies ? implicit.hp * implicit.wp : g.inSize,
                                             Wp: implicit.copies ? implicit.wp : g.inW, cin: g.inChannels, kH: g.kH, kW: g.kW, sH: g.sH,
                                             sW: g.sW, dH: g.dH, dW: g.dW, outW: g.outW, outSize: g.outSize)
            withUnsafePointer(to: geometry) { geo in
                args.parallelFor(blocks * bands) { item in
                    let blk = item / bands, band = item % bands
                    let rows = splitRange(g.outH, parts: bands, part: band)
                    if rows.isEmpty { return }
                    let nco = Swift.min(32, g.outChannels - blk * 32)
                    #if arch(x86_64)
                    if wideTiles {
                        perch_conv_direct_rows_avx512(geo, wt + blk * k * 32, bias + blk * 32, rows.lowerBound, rows.upperBound, nco,
                                                      clampFlag, lo, hi, yn + blk * 32 * g.outSize)
                    } else {
                        perch_conv_direct_rows_6x16(geo, wt + blk * k * 32, bias + blk * 32, rows.lowerBound, rows.upperBound, nco,
                                                    clampFlag, lo, hi, yn + blk * 32 * g.outSize)
                    }
                    #else
                    perch_conv_direct_rows_6x16(geo, wt + blk * k * 32, bias + blk * 32, rows.lowerBound, rows.upperBound, nco,
                                                clampFlag, lo, hi, yn + blk * 32 * g.outSize)
                    #endif
                }
            }
        }
        #endif
    }
}

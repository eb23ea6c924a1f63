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
        #if arch(arm64)
        // NEON's 6 × 16 tile against NEON's 6 × 16 GEMM, as first measured for both wide ISAs: short
        // sums (a 3-channel stem) spend more on the tile's transposed store than on the
        // multiply-adds; 1×1 convs gain only with the longest sums, narrow outputs (the GEMM's
        // 6-row tiles share each B panel among few calls) and long sums on tiny maps.
        if g.kernelSize > 1 { return taps >= 192 || (taps >= 72 && g.outChannels <= 32 && g.outChannels % 16 == 0) }
        return taps >= 1024 || (g.outChannels <= 48 && taps >= 64) || (g.outChannels <= 64 && taps >= 256)
            || (g.outSize <= 64 && taps >= 768)
        #else
        // AVX-512: measured again per layer (PERCH_CONV_DIRECT=0 against =1, minima) once the
        // GEMM had its 12×16 kernel, which made it 1.3–1.5× faster than the 6×16 these rules were
        // first set against (aarch64 keeps those). k×k: the direct tile wins on stems (3 channels: MobileNetV2's 0.40 →
        // 0.35 ms, ResNet-50's 7×7 2.3 → 1.8) and on maps above 16×16 or with at most 64 outputs
        // (ResNet-50's 64→64 3×3 on 56×56 1.9 → 1.66, SqueezeNet's 16→64 0.46 → 0.40, YOLOv8n's
        // 256→64 on 10×10 0.36 → 0.25); the GEMM on small maps with wide outputs (SqueezeNet's
        // 48→192 and 64→256 on 13×13: 0.23 vs 0.25, 0.40 vs 0.46; VGG's 128→256 on 16×16),
        // except the longest sums (ResNet-50's 2304 taps: level to 5% either way). 1×1: the GEMM
        // reads X in place and now wins on every map above 8×8 (ResNet-50's 256→64 on 56×56 0.93
        // vs 1.27–1.43 direct, its 1024→256 on 14×14 0.85 vs 1.05; MobileNetV2's 144→24 0.22 vs
        // 0.33); the direct tile keeps the long sums on tiny maps (2048→512 on 7×7: 1.19 vs 1.30–1.45).
        if g.kernelSize > 1 {
            return g.inChannels <= 4 || (taps >= 72 && (g.outSize > 256 || g.outChannels <= 64 || taps >= 2304))
        }
        return g.outSize <= 64 && taps >= 576
        #endif
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

import CPerchShims

/// A network's first conv (3 input channels, 3×3, stride 1 or 2), and narrow stride-1 k×k convs,
/// run by the AVX2 kernel of `CPerchConvStemF32.h`: pixels in the vector lanes, weights
/// broadcast, output rows stored straight into NCHW. With 27 taps the im2col + GEMM path spent as
/// much on packing a panel per 16 pixels as on the multiply-adds (YOLO's 3→16 3×3/2 stem on
/// 256×256: 0.43 ms against ONNX Runtime's 0.24; now 0.28). Bias, then one fused multiply-add
/// per tap in order: the direct kernel's bits, and the GEMM's for sums within its K block (256
/// taps; longer GEMM sums add per-block partial sums, so they differ in the last bits). AVX2
/// machines without AVX-512 (where it was measured); others keep the GEMM.
struct ConvStemF32 {
    /// Phase-plane rows and row length (perch_conv_stem_r / _q).
    let rows: Int
    let rowLength: Int

    /// nil when the conv, or the CPU, does not fit the kernel.
    init?(_ g: ConvGeometry) {
        #if arch(x86_64)
        if let e = getenv("PERCH_CONV_STEM"), e.pointee == 0x30 { return nil }  // PERCH_CONV_STEM=0: the GEMM path, to compare
        let isa = VectorISA.best()
        guard isa.avx2, !isa.avx512 else { return nil }
        let taps = g.inChannels * g.kernelSize
        guard g.group == 1, g.spatialRank == 2, g.kernelSize > 1, g.outW >= 8, g.outH > 0,
              g.dH == 1, g.dW == 1, g.sH == g.sW, g.sH == 1 || g.sH == 2 else { return nil }
        // Stems (≤ 32 taps), and stride-1 convs with up to 64 outputs and 1024 taps (the kernel's
        // bound; with 6-channel tiles, PP-OCRv4's text detector's 96→24 3×3 heads, 864 taps, on
        // 160×160 went from 26.4 ms on the GEMM to 14.1, on 80×80 4.7 → 3.4). Per-layer
        // minima against the GEMM or the AVX2 direct conv, 1 thread: YOLO's 16→16 and 32→32 3×3
        // 0.29–0.30 → 0.22 ms, 64→64 on 16×16 0.25 → 0.23; VGG's and CRNN's 32→64 3×3 2.02 →
        // 1.73 and 0.51 → 0.43. Stride-2 ones lost (YOLO's 32→64 and 64→128 3×3/2: 9–16%), and
        // so did 128 outputs (VGG's 64→128 on 32×32: 9%): every 4-channel tile rereads the taps'
        // input rows, and there are more of them.
        // The wide stride-1 convs also need rows that fill their 8-pixel vectors: with the last
        // one mostly masked (20, 26 or 13 pixels wide: 83% or 81% of the lanes used) the GEMM
        // won (1 thread: 64→64 3×3 on 20×20 0.46 vs 0.41 ms, on 26×26 0.93 vs 0.77; at 85% and
        // up — 28, 14, 52, and 16, 24 at 100% — the stem kernel ties or wins, 16×16 0.22 vs 0.25).
        let lanesUsed = Double(g.outW) / Double((g.outW + 7) / 8 * 8)
        guard taps <= 32 || (g.sH == 1 && taps <= 1024 && g.outChannels <= 64 && lanesUsed >= 0.85) else { return nil }
        rows = perch_conv_stem_r(g.outH, g.kH, g.sH)
        rowLength = perch_conv_stem_q(g.outW, g.kW, g.sW)
        #else
        return nil
        #endif
    }

    /// Floats of scratch a run needs: one image's phase planes.
    func scratchFloats(_ g: ConvGeometry) -> Int { g.inChannels * g.sH * g.sW * rows * rowLength }

    func run(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, args: KernelArgs, clamp: (Float, Float)?) {
        #if arch(x86_64)
        let (lo, hi) = clamp ?? (0, 0)
        let clampFlag: Int32 = clamp == nil ? 0 : 1
        let s = g.sH, rows = self.rows, q = self.rowLength
        // Bands of output rows, a few per thread, taken as threads come free.
        let bands = args.threads > 1 ? Swift.min(g.outH, 4 * args.threads) : 1
        for n in 0..<g.batch {
            let xn = x + n * g.inChannels * g.inSize
            let yn = y + n * g.outChannels * g.outSize
            // The planes' rows in bands too (filled before any band is computed: bands read
            // the rows of the next).
            args.parallelFor(bands) { band in
                let r = splitRange(rows, parts: bands, part: band)
                perch_conv_stem_phases_f32(xn, g.inChannels, g.inH, g.inW, g.pH, g.pW, s, rows, q, r.lowerBound, r.upperBound, scratch)
            }
            let geometry = perch_conv_stem(x: scratch, R: rows, Q: q, cin: g.inChannels, kH: g.kH, kW: g.kW, s: s, outH: g.outH,
                                           outW: g.outW)
            withUnsafePointer(to: geometry) { geo in
                args.parallelFor(bands) { band in
                    let r = splitRange(g.outH, parts: bands, part: band)
                    if r.isEmpty { return }
                    perch_conv_stem_rows_avx2(geo, w, bias, 0, g.outChannels, r.lowerBound, r.upperBound, clampFlag, lo, hi, yn)
                }
            }
        }
        #endif
    }
}

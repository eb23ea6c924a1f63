import CPerchShims

/// 2-D float32 MaxPool without an Indices output, dilation 1: the CNN case (VGG's 2×2/2,
/// SqueezeNet's and ResNet's 3×3/2). Same result as `poolKernel`, bit for bit, NaN included:
/// taps are combined in the reference's order with "replace only when greater", so a leading NaN
/// sticks and later ones are ignored. Stride-2 windows of width 2 or 3 take eight outputs at a
/// time from 16-float loads split into even and odd lanes, stride-1 windows eight from 8-float loads; edges and other shapes go one output
/// at a time.
func maxPool2DF32(_ p: PoolParameters, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, planes: Range<Int>? = nil) {
    let g = p.g
    let vectorWidth = g.sW == 2 && (g.kW == 2 || g.kW == 3) ? g.kW : (g.sW == 1 ? 1 : 0)
    // Output columns whose whole window is inside the row.
    let lo = Swift.min(g.outW, (g.pW + g.sW - 1) / g.sW)
    let hi = Swift.max(lo, Swift.min(g.outW, g.inW - g.kW + g.pW >= 0 ? (g.inW - g.kW + g.pW) / g.sW + 1 : 0))
    #if arch(x86_64)
    let avx512 = VectorISA.best().avx512
    #endif
    for plane in planes ?? 0..<(g.batch * g.inChannels) {
        let xp = x + plane * g.inSize
        let yp = y + plane * g.outSize
        for oh in 0..<g.outH {
            let sh = oh * g.sH - g.pH
            let h0 = Swift.max(0, -sh), h1 = Swift.min(g.kH, g.inH - sh)
            let yrow = yp + oh * g.outW
            @inline(__always) func one(_ ow: Int) -> Float {
                let sw = ow * g.sW - g.pW
                let w0 = Swift.max(0, -sw), w1 = Swift.min(g.kW, g.inW - sw)
                var best = -Float.infinity
                var first = true
                for kh in h0..<Swift.max(h0, h1) {
                    let row = xp + (sh + kh) * g.inW + sw
                    for kw in w0..<Swift.max(w0, w1) {
                        let v = row[kw]
                        if v > best || first { best = v; first = false }
                    }
                }
                return best
            }
            var ow = 0
            if vectorWidth == 0 || h1 <= h0 {
                while ow < g.outW { yrow[ow] = one(ow); ow += 1 }
                continue
            }
            while ow < lo { yrow[ow] = one(ow); ow += 1 }
            if vectorWidth == 1 {
                // Stride 1 (GoogLeNet's 3×3/1 branches): eight neighbouring windows at a time, taps
                // in the reference's order, each lane replacing only when greater.
                while ow + 8 <= hi {
                    let base = xp + ow - g.pW
                    var acc = UnsafeRawPointer(base + (sh + h0) * g.inW).loadUnaligned(as: SIMD8<Float>.self)
                    for kh in h0..<h1 {
                        let row = UnsafeRawPointer(base + (sh + kh) * g.inW)
                        for kw in 0..<g.kW where kh != h0 || kw != 0 {
                            let v = row.loadUnaligned(fromByteOffset: kw * 4, as: SIMD8<Float>.self)
                            acc = acc.replacing(with: v, where: acc .< v)
                        }
                    }
                    UnsafeMutableRawPointer(yrow + ow).storeBytes(of: acc, as: SIMD8<Float>.self)
                    ow += 8
                }
            }
            #if arch(x86_64)
            if vectorWidth >= 2 && avx512 && hi > ow {
                // 16 outputs per step (CPerchPoolF32.h), the whole run of inside windows at once.
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: h1 - h0) { rows in
                    for kh in h0..<h1 { rows[kh - h0] = UnsafePointer(xp + (sh + kh) * g.inW + 2 * ow - g.pW) }
                    perch_maxpool_s2_row_f32_avx512(rows.baseAddress!, h1 - h0, g.kW, hi - ow, yrow + ow)
                }
                ow = hi
            }
            #endif
            // Loads of 16 floats (and 16 more two floats on for width 3) stay inside the row.
            let span = vectorWidth == 3 ? 18 : 16
            while vectorWidth >= 2 && ow + 8 <= hi && 2 * ow - g.pW + span <= g.inW {
                let base = 2 * ow - g.pW
                var acc = SIMD8<Float>()
                for kh in h0..<h1 {
                    let row = UnsafeRawPointer(xp + (sh + kh) * g.inW + base)
                    let a = row.loadUnaligned(as: SIMD16<Float>.self)
                    var m = a.evenHalf
                    m = m.replacing(with: a.oddHalf, where: m .< a.oddHalf)
                    if vectorWidth == 3 {
                        let c = row.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self).evenHalf
                        m = m.replacing(with: c, where: m .< c)
                    }
                    acc = kh == h0 ? m : acc.replacing(with: m, where: acc .< m)
                }
                UnsafeMutableRawPointer(yrow + ow).storeBytes(of: acc, as: SIMD8<Float>.self)
                ow += 8
            }
            // Whole windows left over: the first tap, then "replace when greater", no bounds.
            while ow < hi {
                let sw = ow * g.sW - g.pW
                var best = xp[(sh + h0) * g.inW + sw]
                for kh in h0..<h1 {
                    let row = xp + (sh + kh) * g.inW + sw
                    for kw in 0..<g.kW where kh != h0 || kw != 0 {
                        let v = row[kw]
                        if v > best { best = v }
                    }
                }
                yrow[ow] = best
                ow += 1
            }
            while ow < g.outW { yrow[ow] = one(ow); ow += 1 }
        }
    }
}

/// Fast fp32 Conv/ConvTranspose kernels. All take normalized 3-D geometry; none allocates.

/// The range of output positions `o` in `0..<outLen` for which `o * stride + offset` lies in
/// `0..<inLen` (offset = k * dilation - pad).
@inline(__always)
func validOutputRange(outLen: Int, inLen: Int, stride: Int, offset: Int) -> (Int, Int) {
    // o >= ceil(-offset / stride), o <= floor((inLen - 1 - offset) / stride)
    var lo = 0
    if offset < 0 { lo = (-offset + stride - 1) / stride }
    let top = inLen - 1 - offset
    if top < 0 { return (0, 0) }
    let hi = min(outLen, top / stride + 1)
    return lo < hi ? (lo, hi) : (0, 0)
}

/// Writes the im2col matrix of one group: rows (c, kd, kh, kw), columns output positions.
func im2colF32(_ g: ConvGeometry, x: UnsafePointer<Float>, channels: Int, col: UnsafeMutablePointer<Float>) {
    let outHW = g.outH * g.outW
    let inHW = g.inH * g.inW
    var row = col
    for c in 0..<channels {
        let xc = x + c * g.inSize
        for kd in 0..<g.kD {
            for kh in 0..<g.kH {
                for kw in 0..<g.kW {
                    let (w0, w1) = validOutputRange(outLen: g.outW, inLen: g.inW, stride: g.sW, offset: kw * g.dW - g.pW)
                    for od in 0..<g.outD {
                        let id = od * g.sD - g.pD + kd * g.dD
                        let plane = row + od * outHW
                        if id < 0 || id >= g.inD {
                            plane.update(repeating: 0, count: outHW)
                            continue
                        }
                        for oh in 0..<g.outH {
                            let ih = oh * g.sH - g.pH + kh * g.dH
                            let dst = plane + oh * g.outW
                            if ih < 0 || ih >= g.inH || w0 >= w1 {
                                dst.update(repeating: 0, count: g.outW)
                                continue
                            }
                            if w0 > 0 { dst.update(repeating: 0, count: w0) }
                            let src = xc + id * inHW + ih * g.inW + kw * g.dW - g.pW
                            if g.sW == 1 {
                                (dst + w0).update(from: src + w0, count: w1 - w0)
                            } else {
                                var ow = w0
                                while ow < w1 { dst[ow] = src[ow * g.sW]; ow += 1 }
                            }
                            if w1 < g.outW { (dst + w1).update(repeating: 0, count: g.outW - w1) }
                        }
                    }
                    row += g.outSize
                }
            }
        }
    }
}

/// Conv as im2col + sgemm per (batch, group). `col` holds Cg·k × outSize floats unless
/// `pointwise` (then X is used directly as the column matrix). im2col is split over input
/// channels and the GEMM over output columns/rows across the session's threads; `workspace`
/// holds `slots` sgemm workspace slots. `packedW` is W packed per group by `sgemmPackA` (each
/// group `packedGroupStride` floats), when the weights were constant at prepare.
func convIm2colGemmF32(
    _ g: ConvGeometry, pointwise: Bool, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>,
    col: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>,
    args: KernelArgs, slots: Int,
    packedW: UnsafePointer<Float>? = nil, packedGroupStride: Int = 0
) {
    let cg = g.inPerGroup
    let mg = g.outPerGroup
    let rows = cg * g.kernelSize
    let p = g.outSize
    let parts = Swift.min(args.threads, cg)
    for n in 0..<g.batch {
        for grp in 0..<g.group {
            let xg = UnsafePointer(x + (n * g.inChannels + grp * cg) * g.inSize)
            let yg = y + (n * g.outChannels + grp * mg) * p
            let bmat: UnsafePointer<Float>
            if pointwise {
                bmat = xg
            } else {
                if parts > 1 && rows * p >= 16384 {
                    args.parallelFor(parts) { i in
                        let r = splitRange(cg, parts: parts, part: i)
                        if r.isEmpty { return }
                        im2colF32(g, x: xg + r.lowerBound * g.inSize, channels: r.count, col: col + r.lowerBound * g.kernelSize * p)
                    }
                } else {
                    im2colF32(g, x: xg, channels: cg, col: col)
                }
                bmat = UnsafePointer(col)
            }
            if let bias {
                for m in 0..<mg { (yg + m * p).update(repeating: bias[grp * mg + m], count: p) }
            }
            sgemmParallel(args, slots: slots, m: mg, n: p, k: rows, a: UnsafePointer(w + grp * mg * rows), aRowStride: rows, aColStride: 1,
                          b: bmat, bRowStride: p, bColStride: 1, c: yg, ldc: p, accumulate: bias != nil, workspace: workspace,
                          packed: SGEMMPrepacked(a: packedW.map { $0 + grp * packedGroupStride }, m: mg))
        }
    }
}

/// Depthwise conv (one input channel per group): each output channel m reads input channel
/// m / (M / group) directly, with the valid kernel taps precomputed per output row. Channels are
/// split across the session's threads; 3×3 stride-1 2-D kernels take a specialized row kernel.
func convDepthwiseF32(
    _ g: ConvGeometry, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>, args: KernelArgs
) {
    let total = g.batch * g.outChannels
    let parts = total * g.outSize * g.kernelSize >= 32768 ? Swift.min(args.threads, total) : 1
    args.parallelFor(parts) { i in
        let r = splitRange(total, parts: parts, part: i)
        for nm in r {
            convDepthwiseChannelF32(g, n: nm / g.outChannels, m: nm % g.outChannels, x: x, w: w, bias: bias, y: y)
        }
    }
}

@inline(__always)
func convDepthwiseChannelF32(
    _ g: ConvGeometry, n: Int, m: Int, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>
) {
    let mg = g.outPerGroup
    let inHW = g.inH * g.inW
    let ks = g.kernelSize
    let c = m / mg
    let xc = UnsafePointer(x + (n * g.inChannels + c) * g.inSize)
    let wm = UnsafePointer(w + m * ks)
    let ym = y + (n * g.outChannels + m) * g.outSize
    let b: Float = bias?[m] ?? 0
    if g.kD == 1 && g.kH == 3 && g.kW == 3 && g.sH == 1 && g.sW == 1 && g.dH == 1 && g.dW == 1 && g.outD == 1 && g.inD == 1 {
        convDepthwise3x3S1F32(g, xc: xc, wm: wm, bias: b, ym: ym)
        return
    }
    if g.kD == 1 && g.kH == 3 && g.kW == 3 && g.sH == 2 && g.sW == 2 && g.dH == 1 && g.dW == 1 && g.outD == 1 && g.inD == 1 {
        convDepthwise3x3S2F32(g, xc: xc, wm: wm, bias: b, ym: ym)
        return
    }
    ym.update(repeating: b, count: g.outSize)
    for od in 0..<g.outD {
        for kd in 0..<g.kD {
            let id = od * g.sD - g.pD + kd * g.dD
            if id < 0 || id >= g.inD { continue }
            for oh in 0..<g.outH {
                let yrow = ym + (od * g.outH + oh) * g.outW
                for kh in 0..<g.kH {
                    let ih = oh * g.sH - g.pH + kh * g.dH
                    if ih < 0 || ih >= g.inH { continue }
                    let xrow = xc + id * inHW + ih * g.inW
                    for kw in 0..<g.kW {
                        let off = kw * g.dW - g.pW
                        let (w0, w1) = validOutputRange(outLen: g.outW, inLen: g.inW, stride: g.sW, offset: off)
                        let wv = wm[(kd * g.kH + kh) * g.kW + kw]
                        let src = xrow + off
                        var ow = w0
                        if g.sW == 1 {
                            while ow < w1 { yrow[ow] += wv * src[ow]; ow += 1 }
                        } else {
                            while ow < w1 { yrow[ow] += wv * src[ow * g.sW]; ow += 1 }
                        }
                    }
                }
            }
        }
    }
}

/// What one output row of a 3×3 depthwise conv reads, shared by the stride-1 and stride-2 kernels:
/// the three input rows (nil in the padding), stand-in rows so the vector bodies read without
/// branching (a padded row is replaced by a real one whose weights are zeroed), the nine weights as
/// vectors, and the bounds-checked sum for border columns.
struct Depthwise3x3Row {
    let r0, r1, r2: UnsafePointer<Float>?
    let a0, a1, a2: UnsafePointer<Float>
    let k00, k01, k02, k10, k11, k12, k20, k21, k22: SIMD8<Float>
    let inW: Int

    /// nil when all three rows lie in the padding (the output row is the bias).
    @inline(__always)
    init?(_ xc: UnsafePointer<Float>, top ih0: Int, inH: Int, inW: Int, weights wm: UnsafePointer<Float>) {
        r0 = ih0 >= 0 && ih0 < inH ? xc + ih0 * inW : nil
        r1 = ih0 + 1 >= 0 && ih0 + 1 < inH ? xc + (ih0 + 1) * inW : nil
        r2 = ih0 + 2 >= 0 && ih0 + 2 < inH ? xc + (ih0 + 2) * inW : nil
        guard let any = r0 ?? r1 ?? r2 else { return nil }
        a0 = r0 ?? any
        a1 = r1 ?? any
        a2 = r2 ?? any
        let z = SIMD8<Float>(repeating: 0)
        k00 = r0 == nil ? z : SIMD8(repeating: wm[0]); k01 = r0 == nil ? z : SIMD8(repeating: wm[1]); k02 = r0 == nil ? z : SIMD8(repeating: wm[2])
        k10 = r1 == nil ? z : SIMD8(repeating: wm[3]); k11 = r1 == nil ? z : SIMD8(repeating: wm[4]); k12 = r1 == nil ? z : SIMD8(repeating: wm[5])
        k20 = r2 == nil ? z : SIMD8(repeating: wm[6]); k21 = r2 == nil ? z : SIMD8(repeating: wm[7]); k22 = r2 == nil ? z : SIMD8(repeating: wm[8])
        self.inW = inW
    }

    @inline(__always) func tap(_ row: UnsafePointer<Float>?, _ iw: Int) -> Float {
        guard let row, iw >= 0, iw < inW else { return 0 }
        return row[iw]
    }

    /// Bias plus the nine taps at input columns `iw…iw+2`, padding read as zero (border columns).
    @inline(__always) func edge(_ iw: Int, bias: Float) -> Float {
        var s = bias
        s += k00[0] * tap(r0, iw) + k01[0] * tap(r0, iw + 1) + k02[0] * tap(r0, iw + 2)
        s += k10[0] * tap(r1, iw) + k11[0] * tap(r1, iw + 1) + k12[0] * tap(r1, iw + 2)
        s += k20[0] * tap(r2, iw) + k21[0] * tap(r2, iw + 1) + k22[0] * tap(r2, iw + 2)
        return s
    }

    /// The vector bodies' arithmetic for one column whose taps `iw…iw+2` are all inside the row.
    @inline(__always) func interior(_ iw: Int, bias: Float) -> Float {
        var v = bias
        v += k00[0] * a0[iw]
        v += k01[0] * a0[iw + 1]
        v += k02[0] * a0[iw + 2]
        v += k10[0] * a1[iw]
        v += k11[0] * a1[iw + 1]
        v += k12[0] * a1[iw + 2]
        v += k20[0] * a2[iw]
        v += k21[0] * a2[iw + 1]
        v += k22[0] * a2[iw + 2]
        return v
    }
}

/// 3×3, stride 1, dilation 1, 2-D depthwise for one channel: eight outputs at a time from
/// unaligned loads of the three input rows; border columns and rows take the bounds-checked sum.
func convDepthwise3x3S1F32(_ g: ConvGeometry, xc: UnsafePointer<Float>, wm: UnsafePointer<Float>, bias: Float, ym: UnsafeMutablePointer<Float>) {
    let inW = g.inW, outW = g.outW, pW = g.pW
    // Output columns whose three taps are all inside the row: ow - pW >= 0 and ow - pW + 2 < inW.
    let lo = Swift.min(outW, pW)
    let hi = Swift.max(lo, Swift.min(outW, inW - 2 + pW))
    for oh in 0..<g.outH {
        let yrow = ym + oh * outW
        guard let row = Depthwise3x3Row(xc, top: oh - g.pH, inH: g.inH, inW: inW, weights: wm) else {
            yrow.update(repeating: bias, count: outW)
            continue
        }
        var ow = 0
        while ow < lo { yrow[ow] = row.edge(ow - pW, bias: bias); ow += 1 }
        let bv = SIMD8<Float>(repeating: bias)
        let p0 = UnsafeRawPointer(row.a0), p1 = UnsafeRawPointer(row.a1), p2 = UnsafeRawPointer(row.a2)
        while ow + 8 <= hi {
            let o = (ow - pW) * 4
            var s = bv
            s += row.k00 * p0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s += row.k01 * p0.loadUnaligned(fromByteOffset: o + 4, as: SIMD8<Float>.self)
            s += row.k02 * p0.loadUnaligned(fromByteOffset: o + 8, as: SIMD8<Float>.self)
            s += row.k10 * p1.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s += row.k11 * p1.loadUnaligned(fromByteOffset: o + 4, as: SIMD8<Float>.self)
            s += row.k12 * p1.loadUnaligned(fromByteOffset: o + 8, as: SIMD8<Float>.self)
            s += row.k20 * p2.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s += row.k21 * p2.loadUnaligned(fromByteOffset: o + 4, as: SIMD8<Float>.self)
            s += row.k22 * p2.loadUnaligned(fromByteOffset: o + 8, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(yrow + ow).storeBytes(of: s, as: SIMD8<Float>.self)
            ow += 8
        }
        while ow < hi { yrow[ow] = row.interior(ow - pW, bias: bias); ow += 1 }
        while ow < outW { yrow[ow] = row.edge(ow - pW, bias: bias); ow += 1 }
    }
}

/// 3×3, stride 2, dilation 1, 2-D depthwise for one channel (MobileNet's downsampling blocks):
/// eight outputs at a time read 16 + 16 input floats per row and split them into even and odd
/// lanes (taps 0 and 1 from the first load, tap 2 from the one two floats on); border columns and
/// rows take the bounds-checked sum.
func convDepthwise3x3S2F32(_ g: ConvGeometry, xc: UnsafePointer<Float>, wm: UnsafePointer<Float>, bias: Float, ym: UnsafeMutablePointer<Float>) {
    let inW = g.inW, outW = g.outW, pW = g.pW
    // Output columns whose taps 2·ow − pW … 2·ow − pW + 2 are inside the row.
    let lo = Swift.min(outW, (pW + 1) / 2)
    let hi = Swift.max(lo, Swift.min(outW, (inW - 3 + pW) / 2 + 1))
    for oh in 0..<g.outH {
        let yrow = ym + oh * outW
        guard let row = Depthwise3x3Row(xc, top: 2 * oh - g.pH, inH: g.inH, inW: inW, weights: wm) else {
            yrow.update(repeating: bias, count: outW)
            continue
        }
        var ow = 0
        while ow < lo { yrow[ow] = row.edge(2 * ow - pW, bias: bias); ow += 1 }
        let bv = SIMD8<Float>(repeating: bias)
        let p0 = UnsafeRawPointer(row.a0), p1 = UnsafeRawPointer(row.a1), p2 = UnsafeRawPointer(row.a2)
        // Both 16-float loads stay inside the row: 2·ow − pW + 18 ≤ inW.
        while ow + 8 <= hi && 2 * ow - pW + 18 <= inW {
            let o = (2 * ow - pW) * 4
            let x0 = p0.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self), y0 = p0.loadUnaligned(fromByteOffset: o + 8, as: SIMD16<Float>.self)
            let x1 = p1.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self), y1 = p1.loadUnaligned(fromByteOffset: o + 8, as: SIMD16<Float>.self)
            let x2 = p2.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self), y2 = p2.loadUnaligned(fromByteOffset: o + 8, as: SIMD16<Float>.self)
            var s = bv
            s += row.k00 * x0.evenHalf
            s += row.k01 * x0.oddHalf
            s += row.k02 * y0.evenHalf
            s += row.k10 * x1.evenHalf
            s += row.k11 * x1.oddHalf
            s += row.k12 * y1.evenHalf
            s += row.k20 * x2.evenHalf
            s += row.k21 * x2.oddHalf
            s += row.k22 * y2.evenHalf
            UnsafeMutableRawPointer(yrow + ow).storeBytes(of: s, as: SIMD8<Float>.self)
            ow += 8
        }
        while ow < hi { yrow[ow] = row.interior(2 * ow - pW, bias: bias); ow += 1 }
        while ow < outW { yrow[ow] = row.edge(2 * ow - pW, bias: bias); ow += 1 }
    }
}

/// ConvTranspose as col = W_gᵀ · X_g (sgemm) followed by col2im scatter-add into Y.
/// `g.in*` is X's spatial shape and `g.out*` Y's.
func convTransposeGemmF32(
    _ g: ConvGeometry, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>,
    col: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>,
    args: KernelArgs, slots: Int,
    packedW: UnsafePointer<Float>? = nil, packedGroupStride: Int = 0
) {
    let cg = g.inPerGroup
    let mg = g.outPerGroup
    let rows = mg * g.kernelSize
    let pin = g.inSize
    let outHW = g.outH * g.outW
    for n in 0..<g.batch {
        for grp in 0..<g.group {
            let xg = UnsafePointer(x + (n * g.inChannels + grp * cg) * pin)
            // W is [C, Mg, k...]: W_g as a (Cg × rows) matrix; we need its transpose.
            let wg = UnsafePointer(w + grp * cg * rows)
            sgemmParallel(args, slots: slots, m: rows, n: pin, k: cg, a: wg, aRowStride: 1, aColStride: rows,
                          b: xg, bRowStride: pin, bColStride: 1, c: col, ldc: pin, accumulate: false, workspace: workspace)
            let yg = y + (n * g.outChannels + grp * mg) * g.outSize
            for m in 0..<mg {
                (yg + m * g.outSize).update(repeating: bias?[grp * mg + m] ?? 0, count: g.outSize)
            }
            var r = 0
            for m in 0..<mg {
                let ym = yg + m * g.outSize
                for kd in 0..<g.kD {
                    for kh in 0..<g.kH {
                        for kw in 0..<g.kW {
                            let crow = col + r * pin
                            r += 1
                            // Input positions i whose output i*s - p + k*d lands inside Y.
                            let (w0, w1) = validOutputRange(outLen: g.inW, inLen: g.outW, stride: g.sW, offset: kw * g.dW - g.pW)
                            if w0 >= w1 { continue }
                            for id in 0..<g.inD {
                                let od = id * g.sD - g.pD + kd * g.dD
                                if od < 0 || od >= g.outD { continue }
                                for ih in 0..<g.inH {
                                    let oh = ih * g.sH - g.pH + kh * g.dH
                                    if oh < 0 || oh >= g.outH { continue }
                                    let src = crow + (id * g.inH + ih) * g.inW
                                    let dst = ym + od * outHW + oh * g.outW + kw * g.dW - g.pW
                                    var iw = w0
                                    while iw < w1 { dst[iw * g.sW] += src[iw]; iw += 1 }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

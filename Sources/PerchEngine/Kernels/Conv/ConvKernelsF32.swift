import CPerchShims

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

/// The input a 2-D conv's implicit im2col reads (`perch_conv_im2col`): planes of hp × wp floats
/// covering every position the kernel touches, the padding as zeros — a copy only when the conv
/// pads (otherwise the input itself, rows inW long).
struct ImplicitIm2col {
    let hp: Int
    let wp: Int
    let copies: Bool

    /// nil for 3-D convs (they keep the materialized im2col).
    init?(_ g: ConvGeometry) {
        guard g.kD == 1, g.inD == 1, g.outD == 1 else { return nil }
        hp = (g.outH - 1) * g.sH + (g.kH - 1) * g.dH + 1
        wp = (g.outW - 1) * g.sW + (g.kW - 1) * g.dW + 1
        copies = g.pH > 0 || g.pW > 0 || hp > g.inH || wp > g.inW
    }

    /// Floats of the padded copy of `channels` planes (0 when the input is read in place).
    func floats(channels: Int) -> Int { copies ? channels * hp * wp : 0 }

    /// Copies planes `channels` of x (each g.inSize floats) into `dst` with the padding.
    func fill(_ g: ConvGeometry, x: UnsafePointer<Float>, channels: Range<Int>, dst: UnsafeMutablePointer<Float>) {
        for c in channels { perch_dw_pad_plane_f32(x + c * g.inSize, g.inH, g.inW, g.pH, g.pW, wp, hp, dst + c * hp * wp) }
    }

    func geometry(_ g: ConvGeometry, x: UnsafePointer<Float>) -> perch_conv_im2col {
        perch_conv_im2col(x: x, planeSize: copies ? hp * wp : g.inSize, Wp: copies ? wp : g.inW, outW: g.outW, kH: g.kH, kW: g.kW,
                          sH: g.sH, sW: g.sW, dH: g.dH, dW: g.dW)
    }
}

/// Conv as im2col + sgemm per (batch, group). 2-D convs pack the GEMM's B straight from the
/// input (`ImplicitIm2col`; `col` holds its padded copy); 3-D ones write `col` (Cg·k × outSize
/// floats); `pointwise` ones use X itself as the column matrix. im2col is split over input
/// channels and the GEMM over output columns/rows across the session's threads; `workspace`
/// holds `slots` sgemm workspace slots. `packedW` is W packed per group by `sgemmPackA` (each
/// group `packedGroupStride` floats), when the weights were constant at prepare. Bias and a
/// folded Relu/Clip (`clamp`) are applied in the GEMM's epilogue.
func convIm2colGemmF32(
    _ g: ConvGeometry, pointwise: Bool, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>,
    col: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>,
    args: KernelArgs, slots: Int,
    packedW: UnsafePointer<Float>? = nil, packedGroupStride: Int = 0, clamp: (Float, Float)? = nil
) {
    let cg = g.inPerGroup
    let mg = g.outPerGroup
    let rows = cg * g.kernelSize
    let p = g.outSize
    let parts = Swift.min(args.threads, cg)
    // Grouped 1×1 convs whose groups are each too small to split (ShuffleNet's: 136 × 49 × 136
    // MACs a group) run whole groups on different threads instead, each with its own workspace
    // slot; every group is the same single-thread sgemm as below, so the bits are too.
    let items = g.batch * g.group
    if pointwise && g.group > 1 && mg * p * rows < 1 << 20 && Swift.min(args.threads, slots, items) > 1 {
        let groupParts = Swift.min(args.threads, slots, items)
        let slot = sgemmWorkspaceCount(m: mg, n: p, k: rows)
        args.parallelFor(groupParts) { t in
            for item in splitRange(items, parts: groupParts, part: t) {
                let n = item / g.group, grp = item % g.group
                sgemm(m: mg, n: p, k: rows, a: UnsafePointer(w + grp * mg * rows), aRowStride: rows, aColStride: 1,
                      b: UnsafePointer(x + (n * g.inChannels + grp * cg) * g.inSize), bRowStride: p, bColStride: 1,
                      c: y + (n * g.outChannels + grp * mg) * p, ldc: p, accumulate: false, workspace: workspace + t * slot,
                      packed: SGEMMPrepacked(a: packedW.map { $0 + grp * packedGroupStride }, m: mg),
                      bias: bias.map { UnsafePointer($0 + grp * mg) }, clamp: clamp)
            }
        }
        return
    }
    for n in 0..<g.batch {
        for grp in 0..<g.group {
            let xg = UnsafePointer(x + (n * g.inChannels + grp * cg) * g.inSize)
            let yg = y + (n * g.outChannels + grp * mg) * p
            let bmat: UnsafePointer<Float>
            if !pointwise, let implicit = ImplicitIm2col(g) {
                // The GEMM packs B straight from the (padded) input; `col` holds the padded copy.
                if implicit.copies {
                    if parts > 1 && implicit.floats(channels: cg) >= 16384 {
                        args.parallelFor(parts) { i in implicit.fill(g, x: xg, channels: splitRange(cg, parts: parts, part: i), dst: col) }
                    } else {
                        implicit.fill(g, x: xg, channels: 0..<cg, dst: col)
                    }
                }
                var geometry = implicit.geometry(g, x: implicit.copies ? UnsafePointer(col) : xg)
                withUnsafePointer(to: &geometry) { ib in
                    sgemmParallel(args, slots: slots, m: mg, n: p, k: rows, a: UnsafePointer(w + grp * mg * rows), aRowStride: rows, aColStride: 1,
                                  b: xg, bRowStride: 0, bColStride: 0, c: yg, ldc: p, accumulate: false, workspace: workspace,
                                  packed: SGEMMPrepacked(a: packedW.map { $0 + grp * packedGroupStride }, m: mg),
                                  bias: bias.map { UnsafePointer($0 + grp * mg) }, clamp: clamp, implicitB: ib)
                }
                continue
            }
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
            sgemmParallel(args, slots: slots, m: mg, n: p, k: rows, a: UnsafePointer(w + grp * mg * rows), aRowStride: rows, aColStride: 1,
                          b: bmat, bRowStride: p, bColStride: 1, c: yg, ldc: p, accumulate: false, workspace: workspace,
                          packed: SGEMMPrepacked(a: packedW.map { $0 + grp * packedGroupStride }, m: mg),
                          bias: bias.map { UnsafePointer($0 + grp * mg) }, clamp: clamp)
        }
    }
}

/// Depthwise conv (one input channel per group), where `DepthwiseTilesF32` does not apply (no
/// AVX-512, or a channel multiplier above 1): each output channel m reads input channel
/// m / (M / group) directly, with the valid kernel taps precomputed per output row; channels are
/// split across the session's threads; 2-D kernels with stride 1 or 2 run over a padded copy of
/// the channel (`DepthwisePlane`). `planes` holds `planeFloats` per thread part.
func convDepthwiseF32(
    _ g: ConvGeometry, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>, args: KernelArgs,
    planes: UnsafeMutablePointer<Float>? = nil, planeFloats: Int = 0, planeSlots: Int = 1, clamp: (Float, Float)? = nil
) {
    let total = g.batch * g.outChannels
    var parts = total * g.outSize * g.kernelSize >= 32768 ? Swift.min(args.threads, total) : 1
    if planes != nil { parts = Swift.min(parts, planeSlots) }  // one padded plane per part
    args.parallelFor(parts) { i in
        let r = splitRange(total, parts: parts, part: i)
        let plane = planes.map { $0 + i * planeFloats }
        for nm in r {
            convDepthwiseChannelF32(g, n: nm / g.outChannels, m: nm % g.outChannels, x: x, w: w, bias: bias, y: y, plane: plane)
            if let (lo, hi) = clamp { clampInPlace(y + nm * g.outSize, g.outSize, lo, hi) }
        }
    }
}

@inline(__always)
func convDepthwiseChannelF32(
    _ g: ConvGeometry, n: Int, m: Int, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>, plane: UnsafeMutablePointer<Float>?
) {
    let mg = g.outPerGroup
    let inHW = g.inH * g.inW
    let ks = g.kernelSize
    let c = m / mg
    let xc = UnsafePointer(x + (n * g.inChannels + c) * g.inSize)
    let wm = UnsafePointer(w + m * ks)
    let ym = y + (n * g.outChannels + m) * g.outSize
    let b: Float = bias?[m] ?? 0
    if let plane, let dp = DepthwisePlane(g) {
        dp.fill(g, xc: xc, plane: plane)
        dp.run(g, plane: plane, wm: wm, bias: b, ym: ym)
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

/// The zero-padded copy of one input channel that the depthwise kernel reads: every output
/// column is then interior, so rows run as whole vectors with no border cases.
struct DepthwisePlane {
    let stride: Int
    let width: Int
    let height: Int

    /// nil unless `g` is a 2-D depthwise conv with equal strides 1 or 2 and dilation 1.
    init?(_ g: ConvGeometry) {
        guard g.kD == 1, g.outD == 1, g.inD == 1, g.dH == 1, g.dW == 1, g.sH == g.sW, g.sW == 1 || g.sW == 2,
              g.outH > 0, g.outW > 0 else { return nil }
        stride = g.sW
        // Columns read: up to (outW − 1)·s + kW − 1, and stride 2's second load one more.
        width = (g.outW - 1) * stride + g.kW + (stride == 2 ? 1 : 0)
        height = (g.outH - 1) * stride + g.kH
    }

    var floats: Int { MemoryPlanner.roundUp(width * height, 16) }

    /// Copies channel `xc` (inH×inW) into `plane` with pH rows and pW columns of zeros before it.
    @inline(__always)
    func fill(_ g: ConvGeometry, xc: UnsafePointer<Float>, plane: UnsafeMutablePointer<Float>) {
        perch_dw_pad_plane_f32(xc, g.inH, g.inW, g.pH, g.pW, width, height, plane)
    }

    /// One channel: `ym` (outH×outW) = bias + the kH·kW taps over the padded `plane`, as fused
    /// multiply-adds in C (`perch_dw_f32`: AVX-512, AVX2+FMA, or the scalar reference).
    @inline(__always)
    func run(_ g: ConvGeometry, plane: UnsafePointer<Float>, wm: UnsafePointer<Float>, bias: Float, ym: UnsafeMutablePointer<Float>) {
        perch_dw_f32(DepthwisePlane.variant, plane, width, stride, g.outH, g.outW, g.kH, g.kW, wm, bias, ym)
    }

    /// The kernel variant this CPU runs (CPerchSGEMM.h's numbering).
    static let variant = perch_sgemm_best()
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
    for n in 0..<g.batch {
        for grp in 0..<g.group {
            let xg = UnsafePointer(x + (n * g.inChannels + grp * cg) * pin)
            // W is [C, Mg, k...]: W_g as a (Cg × rows) matrix; we need its transpose.
            let wg = UnsafePointer(w + grp * cg * rows)
            sgemmParallel(args, slots: slots, m: rows, n: pin, k: cg, a: wg, aRowStride: 1, aColStride: rows,
                          b: xg, bRowStride: pin, bColStride: 1, c: col, ldc: pin, accumulate: false, workspace: workspace)
            let yg = y + (n * g.outChannels + grp * mg) * g.outSize
            // col2im, output channels split across threads (each writes its own planes, in the
            // same order: the same sums on any thread count). Unsplit, a text detector's 24→24
            // 2×2/2 ConvTranspose to 320×320 took 4.4 ms on one thread and 3.9 on two.
            let parts = mg * g.outSize >= 1 << 15 ? Swift.min(args.threads, mg) : 1
            args.parallelFor(parts) { part in
                for m in splitRange(mg, parts: parts, part: part) { col2imChannel(g, m: m, col: col, y: yg, bias: bias?[grp * mg + m] ?? 0) }
            }
        }
    }
}

/// ConvTranspose's col2im for output channel `m` of a group: the bias, then the rows of `col`
/// for m's kernel taps added at their output positions, taps in (kd, kh, kw) order.
@inline(__always)
private func col2imChannel(_ g: ConvGeometry, m: Int, col: UnsafeMutablePointer<Float>, y yg: UnsafeMutablePointer<Float>, bias: Float) {
    let pin = g.inSize
    let outHW = g.outH * g.outW
    let ym = yg + m * g.outSize
    if g.kD == 1 && g.inD == 1 && g.kH == g.sH && g.kW == g.sW && g.pH == 0 && g.pW == 0 && g.dH == 1 && g.dW == 1
        && g.outH == g.inH * g.sH && g.outW == g.inW * g.sW {
        // Kernel = stride, no padding (a detector's or U-Net's 2×2/2 upsampling): every output
        // has exactly one tap, bias + col, written in one pass instead of a fill and a strided
        // add per tap (a text detector's 24-channel 160² → 320² one: 4.6 → 2.7 ms).
        let rows = col + m * g.kernelSize * pin
        for ih in 0..<g.inH {
            for kh in 0..<g.kH {
                let out = ym + (ih * g.sH + kh) * g.outW
                if g.kW == 2 {
                    let c0 = rows + (kh * 2) * pin + ih * g.inW, c1 = c0 + pin
                    for iw in 0..<g.inW {
                        out[2 * iw] = bias + c0[iw]
                        out[2 * iw + 1] = bias + c1[iw]
                    }
                } else {
                    for kw in 0..<g.kW {
                        let c = rows + (kh * g.kW + kw) * pin + ih * g.inW
                        for iw in 0..<g.inW { out[iw * g.kW + kw] = bias + c[iw] }
                    }
                }
            }
        }
        return
    }
    ym.update(repeating: bias, count: g.outSize)
    var r = m * g.kernelSize
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

/// Scalar reference Conv and ConvTranspose: the definition the fast kernels are tested against.
/// Straight from the ONNX formulas, accumulating in Double.

func convReferenceF32(
    _ g: ConvGeometry, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>
) {
    let cg = g.inPerGroup
    let mg = g.outPerGroup
    for n in 0..<g.batch {
        for m in 0..<g.outChannels {
            let grp = m / mg
            for od in 0..<g.outD {
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        var s: Double = bias.map { Double($0[m]) } ?? 0
                        for c in 0..<cg {
                            let ci = grp * cg + c
                            for kd in 0..<g.kD {
                                let id = od * g.sD - g.pD + kd * g.dD
                                if id < 0 || id >= g.inD { continue }
                                for kh in 0..<g.kH {
                                    let ih = oh * g.sH - g.pH + kh * g.dH
                                    if ih < 0 || ih >= g.inH { continue }
                                    for kw in 0..<g.kW {
                                        let iw = ow * g.sW - g.pW + kw * g.dW
                                        if iw < 0 || iw >= g.inW { continue }
                                        let xv = x[(((n * g.inChannels + ci) * g.inD + id) * g.inH + ih) * g.inW + iw]
                                        let wv = w[(((m * cg + c) * g.kD + kd) * g.kH + kh) * g.kW + kw]
                                        s += Double(xv) * Double(wv)
                                    }
                                }
                            }
                        }
                        y[(((n * g.outChannels + m) * g.outD + od) * g.outH + oh) * g.outW + ow] = Float(s)
                    }
                }
            }
        }
    }
}

/// ConvTranspose by scattering: Y[n, m, i*s - p + k*d] += X[n, c, i] * W[c, m mod Mg, k].
func convTransposeReferenceF32(
    _ g: ConvGeometry, x: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
    bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>
) {
    let cg = g.inPerGroup
    let mg = g.outPerGroup
    for n in 0..<g.batch {
        for m in 0..<g.outChannels {
            (y + (n * g.outChannels + m) * g.outSize).update(repeating: bias?[m] ?? 0, count: g.outSize)
        }
        for c in 0..<g.inChannels {
            let grp = c / cg
            for id in 0..<g.inD {
                for ih in 0..<g.inH {
                    for iw in 0..<g.inW {
                        let xv = x[(((n * g.inChannels + c) * g.inD + id) * g.inH + ih) * g.inW + iw]
                        for mm in 0..<mg {
                            let m = grp * mg + mm
                            for kd in 0..<g.kD {
                                let od = id * g.sD - g.pD + kd * g.dD
                                if od < 0 || od >= g.outD { continue }
                                for kh in 0..<g.kH {
                                    let oh = ih * g.sH - g.pH + kh * g.dH
                                    if oh < 0 || oh >= g.outH { continue }
                                    for kw in 0..<g.kW {
                                        let ow = iw * g.sW - g.pW + kw * g.dW
                                        if ow < 0 || ow >= g.outW { continue }
                                        let wv = w[(((c * mg + mm) * g.kD + kd) * g.kH + kh) * g.kW + kw]
                                        y[(((n * g.outChannels + m) * g.outD + od) * g.outH + oh) * g.outW + ow] += xv * wv
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

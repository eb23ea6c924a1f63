import PerchGraph

/// ConvInteger whose x_zero_point is only known at run time (ONNX Runtime's `quantize_dynamic`
/// feeds it a DynamicQuantizeLinear's zero point): y = Σ (x − x_zero)·(w − w_zero[m]) over each
/// window's taps inside the input (padding contributes nothing, as if it held x_zero), in int32,
/// by direct loops. Correct for every rank, group, stride, dilation and pad; not fast — the
/// prepared fast paths bake the zero point into their padding and row sums.
struct ConvIntegerDirect {
    let g: ConvGeometry
    /// w − w_zero[m], [M, C/group, kD, kH, kW].
    let centred: [Int32]
    let inputIsI8: Bool

    init(_ g: ConvGeometry, weights: Tensor, weightZeros: [Int32], inputIsI8: Bool) {
        self.g = g
        self.inputIsI8 = inputIsI8
        let per = g.inPerGroup * g.kernelSize, signed = weights.dtype == .i8
        centred = weights.bytes.enumerated().map { i, b in
            (signed ? Int32(Int8(bitPattern: b)) : Int32(b)) - (weightZeros.count == 1 ? weightZeros[0] : weightZeros[i / per])
        }
    }

    func prepared(outShape: [Int]) -> PreparedOp {
        let me = self
        return PreparedOp(outputs: [TensorDesc(dtype: .i32, shape: outShape)]) { args in
            let x = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let y = args.output(0).pointer(as: Int32.self)
            let z = Int32(truncatingIfNeeded: args.input(2).int64(0))
            me.centred.withUnsafeBufferPointer { w in me.run(x: x, zero: z, w: w.baseAddress!, y: y) }
        }
    }

    func run(x: UnsafePointer<UInt8>, zero: Int32, w: UnsafePointer<Int32>, y: UnsafeMutablePointer<Int32>) {
        let cin = g.inPerGroup, mPer = g.outPerGroup
        var yi = 0
        for n in 0..<g.batch {
            for m in 0..<g.outChannels {
                let grp = m / mPer, wm = w + m * cin * g.kernelSize
                for od in 0..<g.outD { for oh in 0..<g.outH { for ow in 0..<g.outW {
                    var acc: Int32 = 0
                    for c in 0..<cin {
                        let xc = x + (n * g.inChannels + grp * cin + c) * g.inSize, wc = wm + c * g.kernelSize
                        for kd in 0..<g.kD {
                            let id = od * g.sD - g.pD + kd * g.dD
                            if id < 0 || id >= g.inD { continue }
                            for kh in 0..<g.kH {
                                let ih = oh * g.sH - g.pH + kh * g.dH
                                if ih < 0 || ih >= g.inH { continue }
                                for kw in 0..<g.kW {
                                    let iw = ow * g.sW - g.pW + kw * g.dW
                                    if iw < 0 || iw >= g.inW { continue }
                                    let b = xc[(id * g.inH + ih) * g.inW + iw]
                                    let v = (inputIsI8 ? Int32(Int8(bitPattern: b)) : Int32(b)) &- zero
                                    acc &+= v &* wc[(kd * g.kH + kh) * g.kW + kw]
                                }
                            }
                        }
                    }
                    y[yi] = acc
                    yi += 1
                } } }
            }
        }
    }
}

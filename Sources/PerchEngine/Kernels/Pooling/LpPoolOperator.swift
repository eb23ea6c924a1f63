import CPerchShims
import PerchGraph

/// LpPool (opsets 11–22): `(Σ |x|^p)^(1/p)` over each window (`p` default 2), with the window
/// attributes of MaxPool (`kernel_shape`, `strides`, `pads`, `auto_pad`, and from opset 18
/// `dilations` and `ceil_mode`). Padding contributes zero, as in ONNX's test data and ONNX
/// Runtime. 1-D to 3-D spatial inputs, floating-point types (summed in Double).
public enum LpPoolOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 3 && x.rank <= 5 else {
            throw ctx.unsupported("input of rank " + String(x.rank) + " (1-D, 2-D and 3-D spatial inputs are implemented)")
        }
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("element type " + x.dtype.name) }
        guard let kernel = ctx.attributes.ints("kernel_shape") else { throw ctx.invalid("kernel_shape is required") }
        let rank = x.rank - 2
        let inSpatial = Array(x.shape[2...])
        var window = try WindowAttributes(ctx, rank: rank, kernel: kernel)
        let ceilMode = ctx.attributes.int("ceil_mode", default: 0) != 0
        let outSpatial = try window.resolveOutput(ctx, input: inSpatial, ceilMode: ceilMode)
        var g = ConvGeometry()
        g.batch = x.shape[0]
        g.inChannels = x.shape[1]
        g.outChannels = x.shape[1]
        g.spatialRank = rank
        g.setSpatial(input: inSpatial, output: outSpatial, kernel: kernel, strides: window.strides,
                     dilations: window.dilations, padsBegin: Array(window.pads[0..<rank]))
        let p = Double(ctx.attributes.float("p", default: 2))
        guard p > 0 else { throw ctx.invalid("p must be positive") }
        let geometry = g
        let out = TensorDesc(dtype: x.dtype, shape: [x.shape[0], x.shape[1]] + outSpatial)
        return PreparedOp(outputs: [out]) { args in
            let xv = args.input(0), yv = args.output(0)
            let g = geometry
            let inHW = g.inH * g.inW
            var yi = 0
            for plane in 0..<(g.batch * g.inChannels) {
                let xp = plane * g.inSize
                for od in 0..<g.outD {
                    let sd = od * g.sD - g.pD
                    let (d0, d1) = tapRange(start: sd, d: g.dD, kLen: g.kD, limit: g.inD)
                    for oh in 0..<g.outH {
                        let sh = oh * g.sH - g.pH
                        let (h0, h1) = tapRange(start: sh, d: g.dH, kLen: g.kH, limit: g.inH)
                        for ow in 0..<g.outW {
                            let sw = ow * g.sW - g.pW
                            let (w0, w1) = tapRange(start: sw, d: g.dW, kLen: g.kW, limit: g.inW)
                            var sum = 0.0
                            for kd in d0..<d1 {
                                let id = sd + kd * g.dD
                                for kh in h0..<h1 {
                                    let row = xp + id * inHW + (sh + kh * g.dH) * g.inW + sw
                                    for kw in w0..<w1 {
                                        let v = xv.double(row + kw * g.dW)
                                        let a = v < 0 ? -v : v
                                        sum += p == 2 ? a * a : (p == 1 ? a : perch_pow(a, p))
                                    }
                                }
                            }
                            yv.setDouble(yi, p == 2 ? perch_sqrt(sum) : (p == 1 ? sum : perch_pow(sum, 1 / p)))
                            yi += 1
                        }
                    }
                }
            }
        }
    }
}

import PerchGraph

/// AffineGrid (opset 20): the sampling grid of a spatial transformer, for GridSample.
/// `theta` [N, 2, 3] (2-D) or [N, 3, 4] (3-D) maps each output position's normalized
/// homogeneous coordinates (x, y[, z], 1) to the grid [N, H, W, 2] or [N, D, H, W, 3]. Base
/// coordinates run from −1 to 1 over pixel centers (`align_corners = 0`) or corners (1).
/// `size` ([N, C, H, W] or [N, C, D, H, W]) must be known before running (else the node runs
/// in a value-dependent stage).
extension GridSampleOperator {
    public static func prepareAffineGrid(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let theta = try ctx.input(0)
        let size = try IndexingOperator.dataDependent(ctx, input: 1).int64s
        guard size.count == 4 || size.count == 5 else { throw ctx.invalid("size must have 4 or 5 values, got " + String(size.count)) }
        let r = size.count - 2
        guard theta.dtype.isFloatingPoint && theta.rank == 3 && theta.shape[1] == r && theta.shape[2] == r + 1 && Int64(theta.shape[0]) == size[0] else {
            throw ctx.invalid("theta " + shapeText(theta.shape) + " must be [N, " + String(r) + ", " + String(r + 1) + "] for size of rank " + String(size.count))
        }
        var dims = [Int]()
        for v in size[2...] {
            guard v >= 0 && v < 1 << 31 else { throw ctx.invalid("size values must be non-negative") }
            dims.append(Int(v))
        }
        let alignCorners = ctx.attributes.int("align_corners", default: 0) != 0
        let n = theta.shape[0]
        let points = product(dims[...])
        // Per spatial dim (outermost first) the base coordinate of each index.
        var bases = [[Double]]()
        for d in dims {
            var b = [Double](repeating: -1, count: d)
            for i in 0..<d {
                if alignCorners {
                    if d > 1 { b[i] = -1 + 2 * Double(i) / Double(d - 1) }
                } else {
                    b[i] = -1 + (2 * Double(i) + 1) / Double(d)
                }
            }
            bases.append(b)
        }
        let strides = contiguousStrides(dims)
        let out = TensorDesc(dtype: theta.dtype, shape: [n] + dims + [r])
        return PreparedOp(outputs: [out]) { args in
            let tv = args.input(0), gv = args.output(0)
            for b in 0..<n {
                let t0 = b * r * (r + 1)
                for q in 0..<points {
                    let o = (b * points + q) * r
                    // Homogeneous input (x, y[, z], 1): x is the innermost dim.
                    for row in 0..<r {
                        var acc = tv.double(t0 + row * (r + 1) + r)
                        for k in 0..<r {
                            let dim = r - 1 - k
                            acc += tv.double(t0 + row * (r + 1) + k) * bases[dim][(q / strides[dim]) % dims[dim]]
                        }
                        gv.setDouble(o + row, acc)
                    }
                }
            }
        }
    }
}

import PerchGraph

/// Hardmax: 1 at the first maximum of each slice, 0 elsewhere. The slices follow Softmax's rules:
/// opset ≥ 13 one axis (`axis`, default -1); before 13 the input is coerced to 2-D at `axis`
/// (default 1) and each row is one slice.
public enum HardmaxOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let (outer, n, inner) = try SoftmaxOperator.rows(ctx, x)
        let isF32 = x.dtype == .f32
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            let px = src.pointer(as: Float.self)
            let py = dst.pointer(as: Float.self)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * n * inner + j
                    if n == 0 { continue }
                    var best = 0
                    var bv = isF32 ? Double(px[base]) : src.double(base)
                    for k in 1..<Swift.max(n, 1) {
                        let v = isF32 ? Double(px[base + k * inner]) : src.double(base + k * inner)
                        if v > bv {
                            bv = v
                            best = k
                        }
                    }
                    for k in 0..<n {
                        if isF32 {
                            py[base + k * inner] = k == best ? 1 : 0
                        } else {
                            dst.setDouble(base + k * inner, k == best ? 1 : 0)
                        }
                    }
                }
            }
        }
    }
}

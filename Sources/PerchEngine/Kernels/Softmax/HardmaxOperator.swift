import PerchGraph

/// Hardmax: 1 at the first maximum of each slice, 0 elsewhere. The slices follow Softmax's rules:
/// opset ≥ 13 one axis (`axis`, default -1); before 13 the input is coerced to 2-D at `axis`
/// (default 1) and each row is one slice.
public enum HardmaxOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let opset = ctx.attributes.int("_opset", default: 13)
        let rank = x.rank
        let outer: Int, n: Int, inner: Int
        if rank == 0 {
            (outer, n, inner) = (1, 1, 1)
        } else {
            let raw = ctx.attributes.int("axis", default: opset >= 13 ? -1 : 1)
            let axis = raw < 0 ? raw + rank : raw
            guard axis >= 0 && (axis < rank || (opset < 13 && axis == rank)) else {
                throw ctx.invalid("axis " + String(raw) + " is out of range for rank " + String(rank))
            }
            if opset >= 13 {
                (outer, n, inner) = (product(x.shape[0..<axis]), x.shape[axis], product(x.shape[(axis + 1)...]))
            } else {
                (outer, n, inner) = (product(x.shape[0..<axis]), product(x.shape[axis...]), 1)
            }
        }
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

import PerchGraph

/// Det: the determinant of each square matrix in the last two dims ([*, M, M] → [*]), by LU
/// decomposition with partial pivoting in Double (scratch holds one matrix).
public enum DeterminantOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        guard x.rank >= 2 && x.shape[x.rank - 1] == x.shape[x.rank - 2] else {
            throw ctx.invalid("input must be [*, M, M], got " + shapeText(x.shape))
        }
        let m = x.shape[x.rank - 1]
        let outShape = Array(x.shape[0..<(x.rank - 2)])
        let count = product(outShape[...])
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: outShape)], scratchBytes: m * m * 8) { args in
            let xv = args.input(0), yv = args.output(0)
            let a = args.scratch!.assumingMemoryBound(to: Double.self)
            for b in 0..<count {
                for i in 0..<(m * m) { a[i] = xv.double(b * m * m + i) }
                var det = 1.0
                for col in 0..<m {
                    var pivot = col
                    for r in (col + 1)..<Swift.max(m, col + 1) where abs(a[r * m + col]) > abs(a[pivot * m + col]) { pivot = r }
                    if a[pivot * m + col] == 0 {
                        det = 0
                        break
                    }
                    if pivot != col {
                        for k in 0..<m {
                            let t = a[col * m + k]
                            a[col * m + k] = a[pivot * m + k]
                            a[pivot * m + k] = t
                        }
                        det = -det
                    }
                    let p = a[col * m + col]
                    det *= p
                    for r in (col + 1)..<Swift.max(m, col + 1) {
                        let f = a[r * m + col] / p
                        if f == 0 { continue }
                        for k in col..<m { a[r * m + k] -= f * a[col * m + k] }
                    }
                }
                yv.setDouble(b, det)
            }
        }
    }
}

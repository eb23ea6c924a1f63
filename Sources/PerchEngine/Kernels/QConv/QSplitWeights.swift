import CPerchShims

/// A conv layer's int8 weight rows split for AVX2's exact `vpmaddubsw` GEMM
/// (CPerchQConvSplit.h): the dense part, in which no adjacent pair can saturate the int16 sums,
/// and the residual 4-weight groups each row adds on top. The split is worth it only while the
/// residual is sparse — in whole layers of 3×3 or wide 1×1 convolutions about 4–13% of a row's
/// groups, against 35–55% in 1×1 layers with 16–32 inputs, where it ran slower than the int16
/// kernel — so `init` declines denser ones.
struct QSplitWeights {
    /// Rows of 4·K4 bytes, `ldw` apart, as the unsplit weights.
    let dense: [Int8]
    let start: [Int32]
    let group: [Int32]
    let residual: [Int32]
    let ldw: Int

    /// Residual groups per row group above which the split is declined.
    static let maxResidualFraction = 0.15

    /// Splits `rows` rows of `weights` (4·k4 used bytes each, `ldw` apart); nil when more than
    /// `maxResidualFraction` of the rows' K4 groups would need a residual.
    init?(_ weights: [Int8], rows: Int, k4: Int, ldw: Int) {
        guard rows > 0, k4 > 0 else { return nil }
        let count = weights.withUnsafeBufferPointer { w in perch_qsplit_weights(rows, k4, w.baseAddress!, ldw, nil, nil, nil, nil) }
        guard Double(count) <= Self.maxResidualFraction * Double(rows * k4) else { return nil }
        var dense = weights
        var start = [Int32](repeating: 0, count: rows + 1)
        var group = [Int32](repeating: 0, count: Swift.max(count, 1))
        var residual = [Int32](repeating: 0, count: Swift.max(count, 1))
        weights.withUnsafeBufferPointer { w in
            _ = perch_qsplit_weights(rows, k4, w.baseAddress!, ldw, &dense, &start, &group, &residual)
        }
        self.dense = dense
        self.start = start
        self.group = group
        self.residual = residual
        self.ldw = ldw
    }

    /// C[n][p] = Σ_k W[first + n][k]·X[k][p] for n < `n`, p < `p`. Reads X and writes C in whole
    /// blocks of 16 columns: `ldx` and `ldc` must reach `p` rounded up to 16.
    @inline(__always)
    func conv(n: Int, p: Int, k4: Int, x: UnsafePointer<UInt8>, ldx: Int, first: Int, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        #if arch(x86_64)
        dense.withUnsafeBufferPointer { s in
            start.withUnsafeBufferPointer { st in
                group.withUnsafeBufferPointer { g in
                    residual.withUnsafeBufferPointer { r in
                        let res = perch_qsplit_residual(start: st.baseAddress! + first, group: g.baseAddress!, weights: r.baseAddress!)
                        perch_qconv_split_avx2(n, p, k4, x, ldx, s.baseAddress! + first * ldw, ldw, res, c, ldc)
                    }
                }
            }
        }
        #else
        preconditionFailure("the split-weight conv GEMM is AVX2 only")
        #endif
    }
}

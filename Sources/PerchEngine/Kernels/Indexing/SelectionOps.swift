import PerchGraph

/// Compress and Unique: selections whose output shape depends on input values, prepared like
/// NonZero (DataDependentOps.swift). When the deciding input is computed while running, preparing
/// throws `dynamicValue` and the session defers the node to a `ValueDependentStage`.
extension IndexingOperator {
    /// Compress and Unique work along the `axis` attribute, or on the flattened input without
    /// one (axis −1): the input as `outer × n × inner` around that axis.
    static func optionalAxisSplit(_ ctx: OpContext, _ x: TensorDesc) throws(EngineError) -> (axis: Int, outer: Int, n: Int, inner: Int) {
        guard ctx.attributes.has("axis") else { return (-1, 1, x.count, 1) }
        let raw = ctx.attributes.int("axis", default: 0)
        guard let a = normalizedAxis(raw, rank: x.rank) else {
            throw ctx.invalid("axis " + String(raw) + " is out of range for rank " + String(x.rank))
        }
        return (a, product(x.shape[0..<a]), x.shape[a], product(x.shape[(a + 1)...]))
    }

    /// Compress(input, condition) with optional `axis`: keeps the slices along `axis` (the
    /// flattened input when absent) whose condition entry is true. A condition shorter than the
    /// axis drops the remaining slices; a longer one is invalid past the axis only if an entry
    /// there is true. Only the condition must be known; the data is copied at run time.
    static func prepareCompress(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let cd = try ctx.input(1)
        guard cd.rank == 1 else { throw ctx.invalid("condition must be 1-D, got shape " + shapeText(cd.shape)) }
        let (axis, outer, dim, inner) = try optionalAxisSplit(ctx, x)
        let cond = try dataDependent(ctx, input: 1).doubles
        var picked = [Int]()
        for (i, c) in cond.enumerated() where c != 0 {
            guard i < dim else {
                throw ctx.invalid("condition entry " + String(i) + " is true but the axis has only " + String(dim) + " entries")
            }
            picked.append(i)
        }
        var shape = [picked.count]
        if axis >= 0 {
            shape = x.shape
            shape[axis] = picked.count
        }
        let block = inner * x.dtype.byteSize
        let kept = picked.count
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            if block == 0 { return }
            let src = UnsafeRawPointer(args.input(0).data)
            let dst = args.output(0).data
            for o in 0..<outer {
                for (j, i) in picked.enumerated() {
                    DataMovementOperator.copyBlock(dst + (o * kept + j) &* block, src + (o * dim + i) &* block, block)
                }
            }
        }
    }

    /// Unique(X) with optional `axis` and `sorted` (default 1): the distinct elements (or slices
    /// along `axis`, compared lexicographically) in ascending order, or in order of first
    /// occurrence when `sorted = 0`; then int64 `indices` (first occurrence), `inverse_indices`
    /// (each input element's or slice's position in Y) and `counts`. NaNs compare equal to each
    /// other and above every number. X must be known before running.
    static func prepareUnique(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint || x.dtype.isInteger || x.dtype == .bool else {
            throw ctx.unsupported("input type " + x.dtype.name)
        }
        let (axis, outer, n, inner) = try optionalAxisSplit(ctx, x)
        let t = try dataDependent(ctx, input: 0)
        let isFloat = x.dtype.isFloatingPoint
        let dv = isFloat ? t.doubles : []
        var iv = isFloat ? [] : t.int64s
        if x.dtype == .u64 { for k in 0..<iv.count { iv[k] ^= Int64.min } }  // unsigned order
        // Slice i's element k (k in 0..<outer*inner) sits at flat (k / inner * n + i) * inner + k % inner.
        let width = outer * inner
        func flat(_ i: Int, _ k: Int) -> Int { ((k / inner) * n + i) * inner + k % inner }
        func compare(_ a: Int, _ b: Int) -> Int {
            for k in 0..<width {
                let p = flat(a, k), q = flat(b, k)
                if isFloat {
                    let u = dv[p], v = dv[q]
                    if u.isNaN || v.isNaN {
                        if u.isNaN && v.isNaN { continue }
                        return u.isNaN ? 1 : -1
                    }
                    if u != v { return u < v ? -1 : 1 }
                } else if iv[p] != iv[q] {
                    return iv[p] < iv[q] ? -1 : 1
                }
            }
            return 0
        }
        // Stable order: equal slices keep their input order, so each group starts at its first occurrence.
        var order = Array(0..<n)
        order.sort { let c = compare($0, $1); return c < 0 || (c == 0 && $0 < $1) }
        var firsts = [Int](), counts = [Int](), groupOf = [Int](repeating: 0, count: n)
        for (pos, i) in order.enumerated() {
            if pos == 0 || compare(order[pos - 1], i) != 0 {
                firsts.append(i)
                counts.append(0)
            }
            counts[counts.count - 1] += 1
            groupOf[i] = firsts.count - 1
        }
        let u = firsts.count
        var rank = Array(0..<u)  // output position of each sorted group
        if ctx.attributes.int("sorted", default: 1) == 0 {
            var byFirst = Array(0..<u)
            byFirst.sort { firsts[$0] < firsts[$1] }
            for (p, g) in byFirst.enumerated() { rank[g] = p }
        }
        var indices = [Int64](repeating: 0, count: u), cnt = [Int64](repeating: 0, count: u)
        var inverse = [Int64](repeating: 0, count: n)
        for g in 0..<u {
            indices[rank[g]] = Int64(firsts[g])
            cnt[rank[g]] = Int64(counts[g])
        }
        for i in 0..<n { inverse[i] = Int64(rank[groupOf[i]]) }
        let size = x.dtype.byteSize
        var y = [UInt8](repeating: 0, count: outer * u * inner * size)
        for o in 0..<outer {
            for p in 0..<u {
                let from = ((o * n + Int(indices[p])) * inner) * size
                let to = ((o * u + p) * inner) * size
                for b in 0..<(inner * size) { y[to + b] = t.bytes[from + b] }
            }
        }
        var yShape = [u]
        if axis >= 0 {
            yShape = x.shape
            yShape[axis] = u
        }
        var outputs = [TensorDesc(dtype: x.dtype, shape: yShape)]
        let count = ctx.node.outputs.count
        if count > 1 { outputs.append(TensorDesc(dtype: .i64, shape: [u])) }
        if count > 2 { outputs.append(TensorDesc(dtype: .i64, shape: [n])) }
        if count > 3 { outputs.append(TensorDesc(dtype: .i64, shape: [u])) }
        let results = [indices, inverse, cnt]
        return PreparedOp(outputs: outputs) { args in
            let py = args.output(0).data
            for b in 0..<y.count { py.storeBytes(of: y[b], toByteOffset: b, as: UInt8.self) }
            for k in 1..<outputs.count {
                let values = results[k - 1]
                let p = args.output(k).pointer(as: Int64.self)
                for i in 0..<values.count { p[i] = values[i] }
            }
        }
    }
}

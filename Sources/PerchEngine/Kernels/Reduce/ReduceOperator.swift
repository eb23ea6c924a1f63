import CPerchShims
import PerchGraph

/// Prepares ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp and ArgMax/ArgMin.
///
/// Reduce axes come from the `axes` attribute (before opset 13 for ReduceSum, 18 for the others)
/// or from input #1 (which must then be known before running). Each output element reads the
/// input at `outputBase[o] + reducedOffsets[r]`: both tables are built at prepare time.
public enum ReduceOperator {
    enum Kind {
        case mean, sum, max, min, prod, l1, l2, sumSquare, logSum, logSumExp

        /// Results that are not integers even for integer inputs: computed in Double.
        var needsDouble: Bool { self == .l2 || self == .logSum || self == .logSumExp }
    }

    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .reduceMean: return try prepareReduce(ctx, .mean)
        case .reduceSum: return try prepareReduce(ctx, .sum)
        case .reduceMax: return try prepareReduce(ctx, .max)
        case .reduceMin: return try prepareReduce(ctx, .min)
        case .reduceProd: return try prepareReduce(ctx, .prod)
        case .reduceL1: return try prepareReduce(ctx, .l1)
        case .reduceL2: return try prepareReduce(ctx, .l2)
        case .reduceSumSquare: return try prepareReduce(ctx, .sumSquare)
        case .reduceLogSum: return try prepareReduce(ctx, .logSum)
        case .reduceLogSumExp: return try prepareReduce(ctx, .logSumExp)
        case .argMax, .argMin: return try prepareArg(ctx, isMax: ctx.node.op == .argMax)
        default: throw ctx.unsupported("not a reduction")
        }
    }

    static func prepareReduce(_ ctx: OpContext, _ kind: Kind) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        var axesList: [Int]
        if let attr = ctx.attributes.ints("axes") {
            axesList = attr
        } else if ctx.has(1) {
            axesList = try ctx.requiredValue(1).ints
        } else {
            axesList = []
        }
        let keepDims = ctx.attributes.int("keepdims", default: 1) != 0
        if axesList.isEmpty {
            if ctx.attributes.int("noop_with_empty_axes", default: 0) != 0 {
                let count = x.byteCount
                return PreparedOp(outputs: [x]) { args in
                    args.output(0).data.copyMemory(from: UnsafeRawPointer(args.input(0).data), byteCount: count)
                }
            }
            axesList = Array(0..<rank)
        }
        var reduced = [Bool](repeating: false, count: rank)
        for a in axesList {
            guard let axis = normalizedAxis(a, rank: rank) else {
                throw ctx.invalid("axis " + String(a) + " is out of range for rank " + String(rank))
            }
            reduced[axis] = true
        }
        guard x.dtype.isFloatingPoint || x.dtype.isInteger || (x.dtype == .bool && (kind == .max || kind == .min)) else {
            throw ctx.unsupported("input type " + x.dtype.name)
        }
        var outShape = [Int]()
        for d in 0..<rank {
            if !reduced[d] {
                outShape.append(x.shape[d])
            } else if keepDims {
                outShape.append(1)
            }
        }
        let (outputBase, reducedOffsets) = offsetTables(x.shape, reduced)
        let out = TensorDesc(dtype: x.dtype, shape: outShape)
        let outCount = outputBase.count
        let n = reducedOffsets.count
        if x.dtype == .f32 {
            return PreparedOp(outputs: [out]) { args in
                let px = args.input(0).pointer(as: Float.self)
                let py = args.output(0).pointer(as: Float.self)
                for o in 0..<outCount {
                    let p = px + outputBase[o]
                    var acc: Float
                    switch kind {
                    case .sum, .mean:
                        acc = 0
                        for r in 0..<n { acc += p[reducedOffsets[r]] }
                        if kind == .mean { acc /= Float(n) }
                    case .prod:
                        acc = 1
                        for r in 0..<n { acc *= p[reducedOffsets[r]] }
                    case .max:
                        acc = -Float.infinity
                        for r in 0..<n {
                            let v = p[reducedOffsets[r]]
                            if v > acc || v != v { acc = v }
                        }
                    case .min:
                        acc = Float.infinity
                        for r in 0..<n {
                            let v = p[reducedOffsets[r]]
                            if v < acc || v != v { acc = v }
                        }
                    case .l1:
                        acc = 0
                        for r in 0..<n {
                            let v = p[reducedOffsets[r]]
                            acc += v < 0 ? -v : v
                        }
                    case .l2, .sumSquare, .logSum:
                        acc = 0
                        if kind == .logSum {
                            for r in 0..<n { acc += p[reducedOffsets[r]] }
                            acc = perch_logf(acc)
                        } else {
                            for r in 0..<n {
                                let v = p[reducedOffsets[r]]
                                acc += v * v
                            }
                            if kind == .l2 { acc = perch_sqrtf(acc) }
                        }
                    case .logSumExp:
                        var m = -Float.infinity
                        for r in 0..<n {
                            let v = p[reducedOffsets[r]]
                            if v > m || v != v { m = v }
                        }
                        if m == Float.infinity || m == -Float.infinity || m != m {
                            acc = m
                        } else {
                            var s: Float = 0
                            for r in 0..<n { s += perch_expf(p[reducedOffsets[r]] - m) }
                            acc = m + perch_logf(s)
                        }
                    }
                    py[o] = acc
                }
            }
        }
        if x.dtype.isFloatingPoint || kind.needsDouble {
            return PreparedOp(outputs: [out]) { args in
                let src = args.input(0)
                let dst = args.output(0)
                for o in 0..<outCount {
                    let base = outputBase[o]
                    var acc: Double
                    switch kind {
                    case .sum, .mean:
                        acc = 0
                        for r in 0..<n { acc += src.double(base + reducedOffsets[r]) }
                        if kind == .mean { acc /= Double(n) }
                    case .prod:
                        acc = 1
                        for r in 0..<n { acc *= src.double(base + reducedOffsets[r]) }
                    case .max:
                        acc = -Double.infinity
                        for r in 0..<n {
                            let v = src.double(base + reducedOffsets[r])
                            if v > acc || v != v { acc = v }
                        }
                    case .min:
                        acc = Double.infinity
                        for r in 0..<n {
                            let v = src.double(base + reducedOffsets[r])
                            if v < acc || v != v { acc = v }
                        }
                    case .l1:
                        acc = 0
                        for r in 0..<n {
                            let v = src.double(base + reducedOffsets[r])
                            acc += v < 0 ? -v : v
                        }
                    case .l2, .sumSquare, .logSum:
                        acc = 0
                        if kind == .logSum {
                            for r in 0..<n { acc += src.double(base + reducedOffsets[r]) }
                            acc = perch_log(acc)
                        } else {
                            for r in 0..<n {
                                let v = src.double(base + reducedOffsets[r])
                                acc += v * v
                            }
                            if kind == .l2 { acc = perch_sqrt(acc) }
                        }
                    case .logSumExp:
                        var m = -Double.infinity
                        for r in 0..<n {
                            let v = src.double(base + reducedOffsets[r])
                            if v > m || v != v { m = v }
                        }
                        if m == Double.infinity || m == -Double.infinity || m != m {
                            acc = m
                        } else {
                            var s = 0.0
                            for r in 0..<n { s += perch_exp(src.double(base + reducedOffsets[r]) - m) }
                            acc = m + perch_log(s)
                        }
                    }
                    dst.setDouble(o, acc)
                }
            }
        }
        // Integers and bool: exact Int64 arithmetic (wrapping); empty max/min give the extreme.
        let unsigned64 = x.dtype == .u64
        return PreparedOp(outputs: [out]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            for o in 0..<outCount {
                let base = outputBase[o]
                var acc: Int64
                switch kind {
                case .sum, .mean:
                    acc = 0
                    for r in 0..<n { acc = acc &+ src.int64(base + reducedOffsets[r]) }
                    if kind == .mean && n > 0 { acc /= Int64(n) }
                case .prod:
                    acc = 1
                    for r in 0..<n { acc = acc &* src.int64(base + reducedOffsets[r]) }
                case .max:
                    acc = n > 0 ? src.int64(base + reducedOffsets[0]) : Int64.min
                    for r in 0..<n {
                        let v = src.int64(base + reducedOffsets[r])
                        if unsigned64 ? UInt64(bitPattern: v) > UInt64(bitPattern: acc) : v > acc { acc = v }
                    }
                case .min:
                    acc = n > 0 ? src.int64(base + reducedOffsets[0]) : Int64.max
                    for r in 0..<n {
                        let v = src.int64(base + reducedOffsets[r])
                        if unsigned64 ? UInt64(bitPattern: v) < UInt64(bitPattern: acc) : v < acc { acc = v }
                    }
                case .l1, .sumSquare:
                    acc = 0
                    for r in 0..<n {
                        let v = src.int64(base + reducedOffsets[r])
                        acc = acc &+ (kind == .sumSquare ? v &* v : (unsigned64 || v >= 0 ? v : 0 &- v))
                    }
                case .l2, .logSum, .logSumExp:
                    acc = 0  // computed in Double above
                }
                dst.setInt64(o, acc)
            }
        }
    }

    /// For each output element (kept dims, row-major) its input offset, and the offsets of the
    /// reduced positions relative to it.
    static func offsetTables(_ shape: [Int], _ reduced: [Bool]) -> ([Int], [Int]) {
        let rank = shape.count
        var strides = [Int](repeating: 1, count: rank)
        var s = 1
        var d = rank - 1
        while d >= 0 {
            strides[d] = s
            s *= shape[d]
            d -= 1
        }
        func table(_ pick: Bool) -> [Int] {
            var dims = [Int]()
            var st = [Int]()
            for d in 0..<rank where reduced[d] == pick {
                dims.append(shape[d])
                st.append(strides[d])
            }
            var total = 1
            for v in dims { total *= v }
            var result = [Int](repeating: 0, count: total)
            if total == 0 { return result }
            var index = [Int](repeating: 0, count: dims.count)
            var offset = 0
            for i in 0..<total {
                result[i] = offset
                var k = dims.count - 1
                while k >= 0 {
                    index[k] += 1
                    offset += st[k]
                    if index[k] < dims[k] { break }
                    offset -= st[k] * dims[k]
                    index[k] = 0
                    k -= 1
                }
            }
            return result
        }
        return (table(false), table(true))
    }

    /// ArgMax/ArgMin along `axis` (default 0) to int64; ties pick the first index unless
    /// `select_last_index = 1`.
    static func prepareArg(_ ctx: OpContext, isMax: Bool) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        let rawAxis = ctx.attributes.int("axis", default: 0)
        guard let axis = normalizedAxis(rawAxis, rank: rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(rank))
        }
        guard x.dtype.isFloatingPoint || x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let keepDims = ctx.attributes.int("keepdims", default: 1) != 0
        let last = ctx.attributes.int("select_last_index", default: 0) != 0
        var outShape = x.shape
        if keepDims {
            outShape[axis] = 1
        } else {
            outShape.remove(at: axis)
        }
        let outer = product(x.shape[0..<axis])
        let n = x.shape[axis]
        let inner = product(x.shape[(axis + 1)...])
        let useInt = x.dtype.isInteger
        let isF32 = x.dtype == .f32
        return PreparedOp(outputs: [TensorDesc(dtype: .i64, shape: outShape)]) { args in
            let src = args.input(0)
            let px = src.pointer(as: Float.self)
            let py = args.output(0).pointer(as: Int64.self)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * n * inner + j
                    var best = 0
                    if useInt {
                        var bv = src.int64(base)
                        for k in 1..<Swift.max(n, 1) {
                            let v = src.int64(base + k * inner)
                            if isMax ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv)) {
                                bv = v
                                best = k
                            }
                        }
                    } else {
                        var bv = isF32 ? Double(px[base]) : src.double(base)
                        for k in 1..<Swift.max(n, 1) {
                            let v = isF32 ? Double(px[base + k * inner]) : src.double(base + k * inner)
                            if isMax ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv)) {
                                bv = v
                                best = k
                            }
                        }
                    }
                    py[o * inner + j] = Int64(best)
                }
            }
        }
    }
}

import PerchGraph

/// NumPy-style multidirectional broadcasting of several inputs to one output, compiled at prepare
/// time into rows: an outer loop over `outer` rows and a contiguous inner loop of `inner`
/// elements. Output dims of size 1 are dropped and adjacent dims that every input walks the same
/// way are merged, so a same-shape op is one row and `[N,C,H,W] + [1,C,1,1]` is `N*C` rows of `H*W`.
///
/// Row offset tables hold `outer` entries per input; kernels index them, never allocate.
struct BroadcastPlan {
    /// The broadcast output shape (full rank).
    var shape: [Int]
    var outer: Int
    var inner: Int
    /// Per input: element offset where row `o` starts.
    var rowOffsets: [[Int]]
    /// Per input: element step along the inner loop (1, or 0 when broadcast).
    var innerStrides: [Int]
    /// `o * inner` for each row: the output's own offsets (for accumulating in place).
    var outputRowOffsets: [Int]

    var count: Int { outer * inner }

    /// The broadcast of `shapes`, or nil when two dims differ and neither is 1.
    static func broadcastShape(_ shapes: [[Int]]) -> [Int]? {
        var rank = 0
        for s in shapes { rank = Swift.max(rank, s.count) }
        var out = [Int](repeating: 1, count: rank)
        for s in shapes {
            let pad = rank - s.count
            for (i, d) in s.enumerated() {
                let j = i + pad
                if d == out[j] || d == 1 { continue }
                if out[j] == 1 {
                    out[j] = d
                } else {
                    return nil
                }
            }
        }
        return out
    }

    /// Plans inputs of `shapes` broadcast to `shape` (which must be their broadcast).
    init(shapes: [[Int]], to shape: [Int]) {
        self.shape = shape
        let rank = shape.count
        let n = shapes.count
        // Strides of each input in output-rank space, 0 where broadcast.
        var full = [[Int]](repeating: [Int](repeating: 0, count: rank), count: n)
        for (k, s) in shapes.enumerated() {
            let pad = rank - s.count
            var stride = 1
            var d = s.count - 1
            while d >= 0 {
                full[k][d + pad] = s[d] == 1 ? 0 : stride
                stride *= s[d]
                d -= 1
            }
        }
        var dims = [Int]()
        var strides = [[Int]](repeating: [], count: n)
        for d in 0..<rank where shape[d] != 1 {
            if let last = dims.last, shape[d] != 0, last != 0,
                (0..<n).allSatisfy({ strides[$0].last! == full[$0][d] * shape[d] })
            {
                dims[dims.count - 1] = last * shape[d]
                for k in 0..<n { strides[k][strides[k].count - 1] = full[k][d] }
            } else {
                dims.append(shape[d])
                for k in 0..<n { strides[k].append(full[k][d]) }
            }
        }
        var total = 1
        for d in shape { total *= d }
        if dims.isEmpty {
            inner = 1
            innerStrides = [Int](repeating: 0, count: n)
        } else {
            inner = dims[dims.count - 1]
            innerStrides = strides.map { $0[$0.count - 1] }
        }
        outer = total == 0 ? 0 : total / inner
        if total == 0 { inner = 0 }
        rowOffsets = [[Int]](repeating: [], count: n)
        let outerDims = dims.isEmpty ? [] : Array(dims[0..<(dims.count - 1)])
        for k in 0..<n {
            var table = [Int](repeating: 0, count: outer)
            if outer > 0 {
                var index = [Int](repeating: 0, count: outerDims.count)
                var offset = 0
                for o in 0..<outer {
                    table[o] = offset
                    // Odometer increment over outerDims.
                    var d = outerDims.count - 1
                    while d >= 0 {
                        index[d] += 1
                        offset += strides[k][d]
                        if index[d] < outerDims[d] { break }
                        offset -= strides[k][d] * outerDims[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
            rowOffsets[k] = table
        }
        var rows = [Int](repeating: 0, count: outer)
        for o in 0..<outer { rows[o] = o * inner }
        outputRowOffsets = rows
    }
}

/// Calls `body(o, lo, hi)` for each broadcast row `o` (of `inner` output elements) that the
/// output elements `range` touch, `lo..<hi` being the row's part of the range: how a split of an
/// elementwise op by elements walks its rows, cutting them at the range's ends.
@inline(__always)
func forEachRowSpan(inner: Int, _ range: Range<Int>, _ body: (_ row: Int, _ lo: Int, _ hi: Int) -> Void) {
    guard inner > 0, !range.isEmpty else { return }
    for o in (range.lowerBound / inner)...((range.upperBound - 1) / inner) {
        body(o, Swift.max(range.lowerBound - o * inner, 0), Swift.min(range.upperBound - o * inner, inner))
    }
}

/// One elementwise function of two typed inputs, a type rather than a closure so that every
/// loop of `broadcastPairRows` is specialized for it: a closure was inlined only where the
/// compiler saw through the thread pool's job, and on two threads cost a call per element
/// (Magika's 2048 × 257 one-hot Equal: 0.10 ms on one thread, 0.73 ms on two).
protocol BroadcastPairOp {
    associatedtype Input
    associatedtype Output
    static func apply(_ a: Input, _ b: Input) -> Output
}

/// A typed two-input broadcast op: y = Op.apply(a, b) over the plan's rows, split across threads
/// like the fp32 arithmetic, with the row's strides (both 1, or one side a single value per row)
/// hoisted out of the loops.
func broadcastPairRows<Op: BroadcastPairOp>(_ plan: BroadcastPlan, _ args: KernelArgs, _: Op.Type) {
    let outer = plan.outer, inner = plan.inner
    let offA = plan.rowOffsets[0], offB = plan.rowOffsets[1]
    let sA = plan.innerStrides[0], sB = plan.innerStrides[1]
    let a = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: Op.Input.self)
    let b = UnsafeRawPointer(args.input(1).data).assumingMemoryBound(to: Op.Input.self)
    let y = args.output(0).data.assumingMemoryBound(to: Op.Output.self)
    parallelElementwise(args, outer * inner, minimum: ElementwiseOperator.f32SplitElements, grain: ElementwiseOperator.f32SplitElements / 2) { r in
        forEachRowSpan(inner: inner, r) { o, lo, hi in
            let pa = a + offA[o], pb = b + offB[o], py = y + o * inner
            if sA == 1 && sB == 1 {
                for i in lo..<hi { py[i] = Op.apply(pa[i], pb[i]) }
            } else if sA == 1 && sB == 0 {
                let vb = pb[0]
                for i in lo..<hi { py[i] = Op.apply(pa[i], vb) }
            } else if sA == 0 && sB == 1 {
                let va = pa[0]
                for i in lo..<hi { py[i] = Op.apply(va, pb[i]) }
            } else {
                for i in lo..<hi { py[i] = Op.apply(pa[i * sA], pb[i * sB]) }
            }
        }
    }
}

/// `axis` counted from the end when negative; nil when out of `0..<rank`.
func normalizedAxis(_ axis: Int, rank: Int) -> Int? {
    let a = axis < 0 ? axis + rank : axis
    return a >= 0 && a < rank ? a : nil
}

func product(_ dims: ArraySlice<Int>) -> Int {
    var p = 1
    for d in dims { p *= d }
    return p
}

/// A scalar function on Float, specialized into its loop (no per-element call).
protocol FloatMap {
    func apply(_ x: Float) -> Float
    func apply(_ x: Double) -> Double
}

/// Runs `m` over `n` contiguous floats (src may equal dst).
@inline(__always)
func mapF32<M: FloatMap>(_ m: M, _ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { dst[i] = m.apply(src[i]) }
}

/// Builds a prepared op applying `m` elementwise: f32 fast, other float dtypes through Double.
func preparedFloatMap<M: FloatMap>(_ ctx: OpContext, _ m: M) throws(EngineError) -> PreparedOp {
    let x = try ctx.input(0)
    guard x.dtype.isFloatingPoint else {
        throw ctx.unsupported("input type " + x.dtype.name + " (floating-point types only)")
    }
    let n = x.count
    if x.dtype == .f32 {
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0).pointer(as: Float.self), dst = args.output(0).pointer(as: Float.self)
            parallelElementwise(args, n, minimum: ElementwiseOperator.f32SplitElements, grain: ElementwiseOperator.f32SplitElements / 2) { r in
                mapF32(m, src + r.lowerBound, dst + r.lowerBound, r.count)
            }
        }
    }
    return PreparedOp(outputs: [x]) { args in
        let src = args.input(0)
        let dst = args.output(0)
        for i in 0..<n { dst.setDouble(i, m.apply(src.double(i))) }
    }
}

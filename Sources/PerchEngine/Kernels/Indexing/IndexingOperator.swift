import PerchGraph

/// Prepares the Indexing family: ops that pick, place or rearrange elements by computed
/// positions — TopK, GatherElements, GatherND, ScatterND, ScatterElements, OneHot, CumSum,
/// Trilu, DepthToSpace and SpaceToDepth; NonZero and NonMaxSuppression when their inputs are
/// known before running (DataDependentOps.swift); Compress and Unique likewise
/// (SelectionOps.swift); Einsum (EinsumOp.swift).
///
/// Indices are read at run time (int32 or int64, negative values count from the end of their
/// axis); an index still out of range after wrapping is skipped (scatter) or reads zero bytes
/// (gather) instead of touching memory outside the tensor. Shapes, strides and block sizes are
/// computed in `prepare`; kernels do not allocate.
public enum IndexingOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .topK: return try prepareTopK(ctx)
        case .gatherElements: return try prepareGatherElements(ctx)
        case .gatherND: return try prepareGatherND(ctx)
        case .scatterND: return try prepareScatterND(ctx)
        case .scatterElements: return try prepareScatterElements(ctx)
        case .oneHot: return try prepareOneHot(ctx)
        case .cumSum: return try prepareCumSum(ctx)
        case .trilu: return try prepareTrilu(ctx)
        case .depthToSpace, .spaceToDepth: return try prepareDepthSpace(ctx)
        case .nonZero: return try prepareNonZero(ctx)
        case .nonMaxSuppression: return try prepareNonMaxSuppression(ctx)
        case .einsum: return try prepareEinsum(ctx)
        case .compress: return try prepareCompress(ctx)
        case .unique: return try prepareUnique(ctx)
        default: throw ctx.unsupported("not an indexing operator")
        }
    }

    // MARK: Shared helpers

    static func checkIndexType(_ ctx: OpContext, _ d: TensorDesc, _ what: String) throws(EngineError) {
        guard d.dtype == .i64 || d.dtype == .i32 else {
            throw ctx.invalid(what + " must be int32 or int64, got " + d.dtype.name)
        }
    }

    /// Reads index `i` of an int32/int64 tensor.
    @inline(__always)
    static func loadIndex(_ base: UnsafeRawPointer, is64: Bool, _ i: Int) -> Int {
        DataMovementOperator.loadIndex(base, is64: is64, i)
    }

    /// `k` wrapped into `0..<dim` when negative; -1 when out of range.
    @inline(__always)
    static func wrap(_ k: Int, _ dim: Int) -> Int {
        let v = k < 0 ? k + dim : k
        return v >= 0 && v < dim ? v : -1
    }

    /// How scatter combines an update with the existing value.
    enum Reduction { case none, add, mul, max, min }

    static func reduction(_ ctx: OpContext) throws(EngineError) -> Reduction {
        let r = ctx.attributes.string("reduction", default: "none")
        switch r {
        case "none": return .none
        case "add": return .add
        case "mul": return .mul
        case "max": return .max
        case "min": return .min
        default: throw ctx.invalid("reduction must be none, add, mul, max or min, got \"" + r + "\"")
        }
    }

    /// Applies one scatter update of element `src` of `u` onto element `dst` of `y`.
    @inline(__always)
    static func scatterOne(_ y: TensorView, _ dst: Int, _ u: TensorView, _ src: Int, _ r: Reduction, elementSize: Int, isF32: Bool, isFloat: Bool) {
        if r == .none {
            DataMovementOperator.copyBlock(y.data + dst &* elementSize, UnsafeRawPointer(u.data) + src &* elementSize, elementSize)
            return
        }
        if isF32 {
            let py = y.pointer(as: Float.self), pu = u.pointer(as: Float.self)
            let a = py[dst], b = pu[src]
            switch r {
            case .add: py[dst] = a + b
            case .mul: py[dst] = a * b
            case .max: py[dst] = a >= b ? a : b
            case .min: py[dst] = a <= b ? a : b
            case .none: break
            }
        } else if isFloat {
            let a = y.double(dst), b = u.double(src)
            switch r {
            case .add: y.setDouble(dst, a + b)
            case .mul: y.setDouble(dst, a * b)
            case .max: y.setDouble(dst, a >= b ? a : b)
            case .min: y.setDouble(dst, a <= b ? a : b)
            case .none: break
            }
        } else {
            let a = y.int64(dst), b = u.int64(src)
            switch r {
            case .add: y.setInt64(dst, a &+ b)
            case .mul: y.setInt64(dst, a &* b)
            case .max: y.setInt64(dst, a >= b ? a : b)
            case .min: y.setInt64(dst, a <= b ? a : b)
            case .none: break
            }
        }
    }

    // MARK: TopK

    /// TopK along `axis` (default -1): the `K` largest (`largest = 1`) or smallest elements of each
    /// slice, best first, ties broken by the lower index; outputs values and int64 indices. K is
    /// input 1 from opset 10 (must be known before running: it sets the output shape), attribute
    /// `k` before. The result is always sorted (`sorted = 0` allows any order).
    static func prepareTopK(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 1 else { throw ctx.invalid("input must have rank >= 1") }
        let rawAxis = ctx.attributes.int("axis", default: -1)
        guard let axis = normalizedAxis(rawAxis, rank: x.rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(x.rank))
        }
        var k: Int
        if ctx.attributes.has("k") {
            k = ctx.attributes.int("k", default: 0)
        } else {
            let kt = try ctx.requiredValue(1)
            guard kt.count == 1 else { throw ctx.invalid("K must hold one value, got shape " + shapeText(kt.shape)) }
            k = Int(clamping: kt.int64s[0])
        }
        let n = x.shape[axis]
        guard k >= 0 && k <= n else {
            throw ctx.invalid("K = " + String(k) + " is outside 0..." + String(n) + " (the size of axis " + String(axis) + ")")
        }
        guard x.dtype.isFloatingPoint || x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let largest = ctx.attributes.int("largest", default: 1) != 0
        var outShape = x.shape
        outShape[axis] = k
        let outer = product(x.shape[0..<axis])
        let inner = product(x.shape[(axis + 1)...])
        let size = x.dtype.byteSize
        enum Path { case f32, double, int64, uint64 }
        let path: Path = x.dtype == .f32 ? .f32 : (x.dtype.isFloatingPoint ? .double : (x.dtype == .u64 ? .uint64 : .int64))
        // Scratch: the slice's keys (8 bytes each) then the heap of k indices.
        let scratch = n * 8 + k * 8
        let outputs = [TensorDesc(dtype: x.dtype, shape: outShape), TensorDesc(dtype: .i64, shape: outShape)]
        return PreparedOp(outputs: outputs, scratchBytes: scratch) { args in
            if k == 0 || outer * inner == 0 { return }
            let src = args.input(0)
            let values = args.output(0)
            let indices = args.output(1).pointer(as: Int64.self)
            let heap = (args.scratch! + n * 8).assumingMemoryBound(to: Int.self)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * n * inner + j
                    switch path {
                    case .f32:
                        let keys = args.scratch!.assumingMemoryBound(to: Float.self)
                        let px = src.pointer(as: Float.self)
                        for i in 0..<n { keys[i] = px[base + i * inner] }
                        topKSelect(keys, n, k, largest, heap)
                    case .double:
                        let keys = args.scratch!.assumingMemoryBound(to: Double.self)
                        for i in 0..<n { keys[i] = src.double(base + i * inner) }
                        topKSelect(keys, n, k, largest, heap)
                    case .int64:
                        let keys = args.scratch!.assumingMemoryBound(to: Int64.self)
                        for i in 0..<n { keys[i] = src.int64(base + i * inner) }
                        topKSelect(keys, n, k, largest, heap)
                    case .uint64:
                        let keys = args.scratch!.assumingMemoryBound(to: UInt64.self)
                        for i in 0..<n { keys[i] = UInt64(bitPattern: src.int64(base + i * inner)) }
                        topKSelect(keys, n, k, largest, heap)
                    }
                    let outBase = o * k * inner + j
                    for r in 0..<k {
                        let idx = heap[r]
                        indices[outBase + r * inner] = Int64(idx)
                        DataMovementOperator.copyBlock(values.data + (outBase + r * inner) &* size,
                                                       UnsafeRawPointer(src.data) + (base + idx * inner) &* size, size)
                    }
                }
            }
        }
    }

    /// Leaves in `heap[0..<k]` the indices of the `k` best keys, best first. "Better" is the
    /// larger (smaller) key, then the lower index, so the order is total and ties are stable.
    /// A NaN key counts as larger than every number (as NumPy sorts it).
    static func topKSelect<T: Comparable>(_ keys: UnsafeMutablePointer<T>, _ n: Int, _ k: Int, _ largest: Bool, _ heap: UnsafeMutablePointer<Int>) {
        @inline(__always)
        func better(_ a: Int, _ b: Int) -> Bool {
            let va = keys[a], vb = keys[b]
            let aNaN = va != va, bNaN = vb != vb
            if aNaN || bNaN {
                if aNaN && bNaN { return a < b }
                return largest ? aNaN : bNaN
            }
            if va == vb { return a < b }
            return largest ? va > vb : va < vb
        }
        // Min-heap on "better": the root is the worst of the kept k.
        @inline(__always)
        func siftDown(_ start: Int, _ count: Int) {
            var i = start
            while true {
                let l = 2 * i + 1
                if l >= count { return }
                var w = l
                let r = l + 1
                if r < count && better(heap[l], heap[r]) { w = r }
                if better(heap[i], heap[w]) {
                    let t = heap[i]
                    heap[i] = heap[w]
                    heap[w] = t
                    i = w
                } else {
                    return
                }
            }
        }
        for i in 0..<k { heap[i] = i }
        var s = k / 2 - 1
        while s >= 0 {
            siftDown(s, k)
            s -= 1
        }
        if k < n {
            for i in k..<n where better(i, heap[0]) {
                heap[0] = i
                siftDown(0, k)
            }
        }
        // Heap sort: repeatedly move the worst to the end, so the array ends best first.
        var count = k
        while count > 1 {
            let t = heap[0]
            heap[0] = heap[count - 1]
            heap[count - 1] = t
            count -= 1
            siftDown(0, count)
        }
    }

    // MARK: GatherElements

    /// `out[i…] = data[i… with axis coordinate replaced by indices[i…]]`; output shape = indices shape.
    static func prepareGatherElements(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let ind = try ctx.input(1)
        try checkIndexType(ctx, ind, "indices")
        guard x.rank >= 1 && ind.rank == x.rank else {
            throw ctx.invalid("indices must have the data's rank " + String(x.rank) + ", got " + String(ind.rank))
        }
        let rawAxis = ctx.attributes.int("axis", default: 0)
        guard let axis = normalizedAxis(rawAxis, rank: x.rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(x.rank))
        }
        for d in 0..<x.rank where d != axis && ind.shape[d] > x.shape[d] {
            throw ctx.invalid("indices dimension " + String(d) + " (" + String(ind.shape[d]) + ") exceeds the data's (" + String(x.shape[d]) + ")")
        }
        let rank = x.rank
        let xStrides = contiguousStrides(x.shape)
        let iShape = ind.shape
        let iStrides = contiguousStrides(iShape)
        let dim = x.shape[axis]
        let axisStride = xStrides[axis]
        let count = ind.count
        let size = x.dtype.byteSize
        let is64 = ind.dtype == .i64
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: iShape)]) { args in
            let src = UnsafeRawPointer(args.input(0).data)
            let idx = UnsafeRawPointer(args.input(1).data)
            let dst = args.output(0).data
            for i in 0..<count {
                var off = 0
                for d in 0..<rank where d != axis {
                    off += ((i / iStrides[d]) % iShape[d]) * xStrides[d]
                }
                let k = wrap(loadIndex(idx, is64: is64, i), dim)
                if k < 0 {
                    (dst + i &* size).initializeMemory(as: UInt8.self, repeating: 0, count: size)
                } else {
                    DataMovementOperator.copyBlock(dst + i &* size, src + (off + k * axisStride) &* size, size)
                }
            }
        }
    }

    // MARK: GatherND / ScatterND geometry

    /// Shared by GatherND and ScatterND: `indices[..., m]` addresses slices of `data` after
    /// `batchDims` leading batch dimensions.
    struct NDGeometry {
        var tuples: Int          // number of index tuples (prod of indices.shape[:-1])
        var tuplesPerBatch: Int
        var m: Int               // tuple length
        var batchStride: Int     // elements per batch in data
        var dims: [Int]          // data dims addressed by a tuple
        var strides: [Int]       // their element strides
        var slice: Int           // elements copied per tuple
    }

    static func ndGeometry(_ ctx: OpContext, data: TensorDesc, indices: TensorDesc, batchDims: Int) throws(EngineError) -> NDGeometry {
        guard indices.rank >= 1 else { throw ctx.invalid("indices must have rank >= 1") }
        let m = indices.shape[indices.rank - 1]
        guard batchDims >= 0 && batchDims < Swift.min(data.rank, indices.rank) else {
            throw ctx.invalid("batch_dims " + String(batchDims) + " is out of range")
        }
        guard m >= 1 && m + batchDims <= data.rank else {
            throw ctx.invalid("indices' last dimension " + String(m) + " exceeds the data's rank " + String(data.rank) + " minus batch_dims")
        }
        for d in 0..<batchDims where data.shape[d] != indices.shape[d] {
            throw ctx.invalid("batch dimension " + String(d) + " differs between data and indices")
        }
        let xStrides = contiguousStrides(data.shape)
        let tuples = product(indices.shape[0..<(indices.rank - 1)])
        let batches = product(indices.shape[0..<batchDims])
        return NDGeometry(
            tuples: tuples, tuplesPerBatch: batches == 0 ? 0 : tuples / batches, m: m,
            batchStride: product(data.shape[batchDims...]),
            dims: Array(data.shape[batchDims..<(batchDims + m)]),
            strides: Array(xStrides[batchDims..<(batchDims + m)]),
            slice: product(data.shape[(batchDims + m)...]))
    }

    /// The element offset in data of tuple `t`, or -1 when an index is out of range.
    @inline(__always)
    static func tupleOffset(_ g: NDGeometry, _ idx: UnsafeRawPointer, _ is64: Bool, _ t: Int) -> Int {
        var off = g.tuplesPerBatch == 0 ? 0 : (t / g.tuplesPerBatch) * g.batchStride
        for j in 0..<g.m {
            let k = wrap(loadIndex(idx, is64: is64, t * g.m + j), g.dims[j])
            if k < 0 { return -1 }
            off += k * g.strides[j]
        }
        return off
    }

    static func prepareGatherND(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let ind = try ctx.input(1)
        guard ind.dtype == .i64 else { throw ctx.invalid("indices must be int64, got " + ind.dtype.name) }
        let batchDims = ctx.attributes.int("batch_dims", default: 0)
        let g = try ndGeometry(ctx, data: x, indices: ind, batchDims: batchDims)
        var shape = Array(ind.shape[0..<(ind.rank - 1)])
        shape += x.shape[(batchDims + g.m)...]
        let block = g.slice * x.dtype.byteSize
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            if block == 0 { return }
            let src = UnsafeRawPointer(args.input(0).data)
            let idx = UnsafeRawPointer(args.input(1).data)
            let dst = args.output(0).data
            let size = block / g.slice
            for t in 0..<g.tuples {
                let off = tupleOffset(g, idx, true, t)
                if off < 0 {
                    (dst + t &* block).initializeMemory(as: UInt8.self, repeating: 0, count: block)
                } else {
                    (dst + t &* block).copyMemory(from: src + off &* size, byteCount: block)
                }
            }
        }
    }

    /// ScatterND: output = data, then for each index tuple its slice is replaced by (or reduced
    /// with) the matching slice of `updates`, in order (later duplicates win with `none`).
    static func prepareScatterND(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let ind = try ctx.input(1)
        let upd = try ctx.input(2)
        guard ind.dtype == .i64 else { throw ctx.invalid("indices must be int64, got " + ind.dtype.name) }
        guard upd.dtype == x.dtype else { throw ctx.invalid("updates type " + upd.dtype.name + " differs from data type " + x.dtype.name) }
        let g = try ndGeometry(ctx, data: x, indices: ind, batchDims: 0)
        guard upd.count == g.tuples * g.slice else {
            throw ctx.invalid("updates shape " + shapeText(upd.shape) + " does not match indices and data")
        }
        let r = try reduction(ctx)
        if r != .none && !(x.dtype.isFloatingPoint || x.dtype.isInteger) { throw ctx.unsupported("reduction on " + x.dtype.name) }
        let size = x.dtype.byteSize
        let bytes = x.byteCount
        let isF32 = x.dtype == .f32, isFloat = x.dtype.isFloatingPoint
        return PreparedOp(outputs: [x]) { args in
            let y = args.output(0)
            if bytes > 0 { y.data.copyMemory(from: UnsafeRawPointer(args.input(0).data), byteCount: bytes) }
            let idx = UnsafeRawPointer(args.input(1).data)
            let u = args.input(2)
            for t in 0..<g.tuples {
                let off = tupleOffset(g, idx, true, t)
                if off < 0 { continue }
                if r == .none {
                    (y.data + off &* size).copyMemory(from: UnsafeRawPointer(u.data) + t &* g.slice &* size, byteCount: g.slice &* size)
                } else {
                    for e in 0..<g.slice {
                        scatterOne(y, off + e, u, t * g.slice + e, r, elementSize: size, isF32: isF32, isFloat: isFloat)
                    }
                }
            }
        }
    }

    // MARK: ScatterElements

    /// ScatterElements (and opset 9–10 `Scatter`): output = data, then
    /// `out[i… with axis coordinate indices[i…]] (op)= updates[i…]`, in index order.
    static func prepareScatterElements(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let ind = try ctx.input(1)
        let upd = try ctx.input(2)
        try checkIndexType(ctx, ind, "indices")
        guard upd.dtype == x.dtype else { throw ctx.invalid("updates type " + upd.dtype.name + " differs from data type " + x.dtype.name) }
        guard ind.shape == upd.shape && ind.rank == x.rank && x.rank >= 1 else {
            throw ctx.invalid("indices " + shapeText(ind.shape) + " and updates " + shapeText(upd.shape) + " must have one shape of the data's rank")
        }
        let rawAxis = ctx.attributes.int("axis", default: 0)
        guard let axis = normalizedAxis(rawAxis, rank: x.rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(x.rank))
        }
        let r = try reduction(ctx)
        if r != .none && !(x.dtype.isFloatingPoint || x.dtype.isInteger) { throw ctx.unsupported("reduction on " + x.dtype.name) }
        for d in 0..<x.rank where d != axis && ind.shape[d] > x.shape[d] {
            throw ctx.invalid("indices dimension " + String(d) + " (" + String(ind.shape[d]) + ") exceeds the data's (" + String(x.shape[d]) + ")")
        }
        let rank = x.rank
        let xStrides = contiguousStrides(x.shape)
        let iShape = ind.shape
        let iStrides = contiguousStrides(iShape)
        let dim = x.shape[axis]
        let axisStride = xStrides[axis]
        let count = ind.count
        let size = x.dtype.byteSize
        let bytes = x.byteCount
        let is64 = ind.dtype == .i64
        let isF32 = x.dtype == .f32, isFloat = x.dtype.isFloatingPoint
        return PreparedOp(outputs: [x]) { args in
            let y = args.output(0)
            if bytes > 0 { y.data.copyMemory(from: UnsafeRawPointer(args.input(0).data), byteCount: bytes) }
            let idx = UnsafeRawPointer(args.input(1).data)
            let u = args.input(2)
            for i in 0..<count {
                let k = wrap(loadIndex(idx, is64: is64, i), dim)
                if k < 0 { continue }
                var off = k * axisStride
                for d in 0..<rank where d != axis {
                    off += ((i / iStrides[d]) % iShape[d]) * xStrides[d]
                }
                scatterOne(y, off, u, i, r, elementSize: size, isF32: isF32, isFloat: isFloat)
            }
        }
    }

    // MARK: OneHot

    /// OneHot(indices, depth, values = [off, on]): a new axis of size `depth` at `axis` (default
    /// -1, counted in the output's rank). Indices of any numeric type (fractions truncate) in
    /// `-depth..<depth` (negative ones wrap); others give an all-`off` row. Depth must be known
    /// before running.
    static func prepareOneHot(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let ind = try ctx.input(0)
        let values = try ctx.input(2)
        guard ind.dtype.isFloatingPoint || ind.dtype.isInteger else { throw ctx.invalid("indices type " + ind.dtype.name) }
        guard values.count == 2 else { throw ctx.invalid("values must hold [off, on], got shape " + shapeText(values.shape)) }
        let dt = try ctx.requiredValue(1)
        guard dt.count == 1 else { throw ctx.invalid("depth must be a scalar, got shape " + shapeText(dt.shape)) }
        let depthValue = dt.doubles[0]
        guard depthValue >= 1 && depthValue < 1e9 else { throw ctx.invalid("depth must be positive") }
        let depth = Int(depthValue)
        let outRank = ind.rank + 1
        let rawAxis = ctx.attributes.int("axis", default: -1)
        guard let axis = normalizedAxis(rawAxis, rank: outRank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for output rank " + String(outRank))
        }
        var shape = ind.shape
        shape.insert(depth, at: axis)
        let outer = product(ind.shape[0..<axis])
        let inner = product(ind.shape[axis...])
        let size = values.dtype.byteSize
        let indIsInt = ind.dtype.isInteger
        return PreparedOp(outputs: [TensorDesc(dtype: values.dtype, shape: shape)]) { args in
            let ti = args.input(0)
            let v = UnsafeRawPointer(args.input(2).data)
            let dst = args.output(0).data
            for o in 0..<outer {
                for d in 0..<depth {
                    let row = (o * depth + d) * inner
                    for j in 0..<inner {
                        let raw: Int64
                        if indIsInt {
                            raw = ti.int64(o * inner + j)
                        } else {
                            let f = ti.double(o * inner + j)
                            raw = f > -1e18 && f < 1e18 ? Int64(f) : Int64.min
                        }
                        let kk = raw < 0 ? raw + Int64(depth) : raw
                        let hot = kk == Int64(d)
                        DataMovementOperator.copyBlock(dst + (row + j) &* size, v + (hot ? size : 0), size)
                    }
                }
            }
        }
    }

    // MARK: CumSum

    /// CumSum along `axis` (input 1, a scalar known before running); `exclusive` shifts by one,
    /// `reverse` sums from the end.
    static func prepareCumSum(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint || x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let at = try ctx.requiredValue(1)
        guard at.count == 1 else { throw ctx.invalid("axis must be a scalar, got shape " + shapeText(at.shape)) }
        let rawAxis = Int(clamping: at.int64s[0])
        guard x.rank >= 1, let axis = normalizedAxis(rawAxis, rank: x.rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(x.rank))
        }
        let exclusive = ctx.attributes.int("exclusive", default: 0) != 0
        let reverse = ctx.attributes.int("reverse", default: 0) != 0
        let outer = product(x.shape[0..<axis])
        let n = x.shape[axis]
        let inner = product(x.shape[(axis + 1)...])
        let isF32 = x.dtype == .f32, isFloat = x.dtype.isFloatingPoint
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0), dst = args.output(0)
            let px = src.pointer(as: Float.self), py = dst.pointer(as: Float.self)
            for o in 0..<outer {
                for j in 0..<inner {
                    let base = o * n * inner + j
                    var accF: Float = 0
                    var accD = 0.0
                    var accI: Int64 = 0
                    for s in 0..<n {
                        let p = base + (reverse ? n - 1 - s : s) * inner
                        if isF32 {
                            let v = px[p]
                            if exclusive {
                                py[p] = accF
                                accF += v
                            } else {
                                accF += v
                                py[p] = accF
                            }
                        } else if isFloat {
                            let v = src.double(p)
                            if exclusive { dst.setDouble(p, accD) }
                            accD += v
                            if !exclusive { dst.setDouble(p, accD) }
                        } else {
                            let v = src.int64(p)
                            if exclusive { dst.setInt64(p, accI) }
                            accI = accI &+ v
                            if !exclusive { dst.setInt64(p, accI) }
                        }
                    }
                }
            }
        }
    }

    // MARK: Trilu

    /// Trilu on the last two dims: keeps `j - i >= k` (upper, default) or `j - i <= k` (lower),
    /// zeroes the rest. `k` is optional input 1 (scalar int64, read at run time; default 0).
    static func prepareTrilu(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 2 else { throw ctx.invalid("input must have rank >= 2, got " + String(x.rank)) }
        if ctx.has(1) {
            let kd = try ctx.input(1)
            guard kd.count == 1 && kd.dtype == .i64 else { throw ctx.invalid("k must be an int64 scalar") }
        }
        let hasK = ctx.has(1)
        let upper = ctx.attributes.int("upper", default: 1) != 0
        let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
        let matrices = product(x.shape[0..<(x.rank - 2)])
        let size = x.dtype.byteSize
        return PreparedOp(outputs: [x]) { args in
            let k = hasK ? Int(clamping: args.inputs[1]!.pointer(as: Int64.self)[0]) : 0
            let src = UnsafeRawPointer(args.input(0).data)
            let dst = args.output(0).data
            for m in 0..<matrices {
                for i in 0..<rows {
                    let row = (m * rows + i) * cols
                    // Columns kept: upper j >= i + k, lower j <= i + k.
                    let lo: Int, hi: Int
                    if upper {
                        lo = Swift.min(Swift.max(i &+ k, 0), cols)
                        hi = cols
                    } else {
                        lo = 0
                        hi = Swift.min(Swift.max(i &+ k &+ 1, 0), cols)
                    }
                    if lo > 0 { (dst + row &* size).initializeMemory(as: UInt8.self, repeating: 0, count: lo &* size) }
                    if hi > lo { (dst + (row + lo) &* size).copyMemory(from: src + (row + lo) &* size, byteCount: (hi - lo) &* size) }
                    if hi < cols { (dst + (row + hi) &* size).initializeMemory(as: UInt8.self, repeating: 0, count: (cols - hi) &* size) }
                }
            }
        }
    }

    // MARK: DepthToSpace / SpaceToDepth

    /// Both are a reshape to 6-D, a transpose and a reshape back, done as one strided copy.
    /// DepthToSpace `mode` DCR (default): `[N, b, b, C', H, W]` → perm `[0, 3, 4, 1, 5, 2]`;
    /// CRD: `[N, C', b, b, H, W]` → perm `[0, 1, 4, 2, 5, 3]`. SpaceToDepth:
    /// `[N, C, H', b, W', b]` → perm `[0, 3, 5, 1, 2, 4]`.
    static func prepareDepthSpace(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank == 4 else { throw ctx.invalid("input must be 4-D [N, C, H, W], got rank " + String(x.rank)) }
        let b = ctx.attributes.int("blocksize", default: 0)
        guard b >= 1 else { throw ctx.invalid("blocksize must be >= 1") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let six: [Int], perm: [Int], outShape: [Int]
        if ctx.node.op == .depthToSpace {
            guard c % (b * b) == 0 else { throw ctx.invalid("channels " + String(c) + " are not a multiple of blocksize²") }
            let mode = ctx.attributes.string("mode", default: "DCR")
            switch mode {
            case "DCR":
                six = [n, b, b, c / (b * b), h, w]
                perm = [0, 3, 4, 1, 5, 2]
            case "CRD":
                six = [n, c / (b * b), b, b, h, w]
                perm = [0, 1, 4, 2, 5, 3]
            default: throw ctx.invalid("mode must be DCR or CRD, got \"" + mode + "\"")
            }
            outShape = [n, c / (b * b), h * b, w * b]
        } else {
            guard h % b == 0 && w % b == 0 else { throw ctx.invalid("height and width must be multiples of blocksize") }
            six = [n, c, h / b, b, w / b, b]
            perm = [0, 3, 5, 1, 2, 4]
            outShape = [n, c * b * b, h / b, w / b]
        }
        let strides = contiguousStrides(six)
        let copy = DataMovementOperator.StridedCopy(contiguousSrcStrides: perm.map { strides[$0] }, shape: perm.map { six[$0] },
                                                    elementSize: x.dtype.byteSize)
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: outShape)]) { args in
            copy.run(src: UnsafeRawPointer(args.input(0).data), dst: args.output(0).data)
        }
    }
}

import PerchGraph

extension DataMovementOperator {
    /// Slice: attributes starts/ends/axes before opset 10, inputs starts, ends, axes, steps after.
    static func prepareSlice(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        let starts: [Int]
        let ends: [Int]
        var axes: [Int]?
        var steps: [Int]?
        if let s = ctx.attributes.ints("starts") {
            starts = s
            ends = ctx.attributes.ints("ends") ?? []
            axes = ctx.attributes.ints("axes")
        } else {
            starts = intValues(try ctx.requiredValue(1))
            ends = intValues(try ctx.requiredValue(2))
            if ctx.has(3) { axes = intValues(try ctx.requiredValue(3)) }
            if ctx.has(4) { steps = intValues(try ctx.requiredValue(4)) }
        }
        guard starts.count == ends.count else { throw ctx.invalid("starts and ends differ in length") }
        let axisList = axes ?? Array(0..<starts.count)
        let stepList = steps ?? [Int](repeating: 1, count: starts.count)
        guard axisList.count == starts.count, stepList.count == starts.count else {
            throw ctx.invalid("starts, ends, axes and steps differ in length")
        }
        var begin = [Int](repeating: 0, count: rank)
        var step = [Int](repeating: 1, count: rank)
        var shape = x.shape
        var seen = [Bool](repeating: false, count: rank)
        for i in 0..<starts.count {
            let a = try normalizeAxis(axisList[i], rank: rank, ctx)
            guard !seen[a] else { throw ctx.invalid("axis " + String(axisList[i]) + " appears twice") }
            seen[a] = true
            let dim = x.shape[a]
            let st = stepList[i]
            guard st != 0 else { throw ctx.invalid("step 0") }
            var s = starts[i]
            var e = ends[i]
            if s < 0 { s = s &+ dim }
            if e < 0 { e = e &+ dim }
            if st > 0 {
                s = Swift.max(0, Swift.min(s, dim))
                e = Swift.max(0, Swift.min(e, dim))
            } else {
                s = Swift.max(0, Swift.min(s, dim - 1))
                e = Swift.max(-1, Swift.min(e, dim - 1))
            }
            let n = st > 0 ? (e - s + st - 1) / st : (s - e + (-st) - 1) / (-st)
            shape[a] = dim == 0 ? 0 : Swift.max(0, n)
            begin[a] = s
            step[a] = st
        }
        let inStrides = contiguousStrides(x.shape)
        let esize = x.dtype.byteSize
        var offset = 0
        var srcStrides = [Int](repeating: 0, count: rank)
        for d in 0..<rank {
            if shape[d] > 0 { offset += begin[d] * inStrides[d] }
            srcStrides[d] = step[d] * inStrides[d]
        }
        let copy = StridedCopy(contiguousSrcStrides: srcStrides, shape: shape, elementSize: esize)
        let byteOffset = elementCount(shape) == 0 ? 0 : offset * esize
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            copy.run(src: UnsafeRawPointer(args.inputs[0]!.data) + byteOffset, dst: args.outputs[0].data)
        }
    }
}

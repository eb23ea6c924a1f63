import PerchGraph

extension DataMovementOperator {
    /// Concat along `axis`: for each index of the dimensions before the axis, each input
    /// contributes one contiguous block.
    static func prepareConcat(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        guard ctx.inputCount > 0 else { throw ctx.invalid("no inputs") }
        var descs = [TensorDesc]()
        for i in 0..<ctx.inputCount { descs.append(try ctx.input(i)) }
        let first = descs[0]
        let rank = first.rank
        guard rank >= 1 else { throw ctx.invalid("inputs must have rank >= 1") }
        let axis = try normalizeAxis(ctx.attributes.int("axis", default: 0), rank: rank, ctx)
        var shape = first.shape
        shape[axis] = 0
        for d in descs {
            guard d.dtype == first.dtype, d.rank == rank else {
                throw ctx.invalid("inputs differ in type or rank: " + shapeText(first.shape) + " vs " + shapeText(d.shape))
            }
            for k in 0..<rank where k != axis && d.shape[k] != first.shape[k] {
                throw ctx.invalid("input shapes " + shapeText(first.shape) + " and " + shapeText(d.shape) + " differ off the concat axis")
            }
            shape[axis] += d.shape[axis]
        }
        var outer = 1
        for k in 0..<axis { outer *= shape[k] }
        var inner = first.dtype.byteSize
        for k in (axis + 1)..<rank { inner *= shape[k] }
        let blocks = descs.map { $0.shape[axis] * inner }
        let n = descs.count
        let out = TensorDesc(dtype: first.dtype, shape: shape)
        // The output is `outer` rows of the inputs' blocks side by side; threads copy disjoint byte
        // ranges of it from 256 KB (a detector's concatenation of four 96×160×160 maps took 0.7 ms
        // on one thread of two).
        var starts = [0]
        for b in blocks { starts.append(starts[starts.count - 1] + b) }
        let rowBytes = starts[n], total = outer * rowBytes
        return PreparedOp(outputs: [out]) { args in
            if out.count == 0 { return }
            let dst = args.outputs[0].data
            let parts = total >= 1 << 18 ? Swift.min(args.threads, total >> 17) : 1
            args.parallelFor(parts) { part in
                let range = splitRange(total, parts: parts, part: part, align: 64)
                guard !range.isEmpty else { return }
                for o in (range.lowerBound / rowBytes)...((range.upperBound - 1) / rowBytes) {
                    for i in 0..<n where blocks[i] > 0 {
                        // Block i of row o covers bytes [lo, hi) of the output; copy its overlap.
                        let lo = o * rowBytes + starts[i], hi = lo + blocks[i]
                        let from = Swift.max(lo, range.lowerBound), to = Swift.min(hi, range.upperBound)
                        if from < to {
                            (dst + from).copyMemory(from: UnsafeRawPointer(args.inputs[i]!.data) + (o &* blocks[i] + from - lo), byteCount: to - from)
                        }
                    }
                }
            }
        }
    }

    /// Split along `axis` into the node's outputs. Sizes come from the `split` attribute (before
    /// opset 13), input #1 (opset 13+), `num_outputs` (opset 18, last chunk may be smaller), or
    /// equal parts.
    static func prepareSplit(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 1 else { throw ctx.invalid("input must have rank >= 1") }
        let axis = try normalizeAxis(ctx.attributes.int("axis", default: 0), rank: x.rank, ctx)
        let dim = x.shape[axis]
        var sizes: [Int]
        if let s = try intsFromAttributeOrInput(ctx, "split", input: 1) {
            sizes = s
        } else if ctx.attributes.has("num_outputs") {
            let parts = ctx.attributes.int("num_outputs", default: 1)
            guard parts >= 1 else { throw ctx.invalid("num_outputs must be >= 1") }
            let chunk = (dim + parts - 1) / parts
            sizes = []
            var left = dim
            for _ in 0..<parts {
                let c = Swift.min(chunk, left)
                sizes.append(c)
                left -= c
            }
        } else {
            let parts = ctx.node.outputs.count
            guard parts >= 1, dim % parts == 0 else {
                throw ctx.invalid("dimension " + String(dim) + " does not split into " + String(parts) + " equal parts")
            }
            sizes = [Int](repeating: dim / parts, count: parts)
        }
        var total = 0
        for s in sizes {
            guard s >= 0 else { throw ctx.invalid("negative split size") }
            total += s
        }
        guard total == dim else {
            throw ctx.invalid("split sizes sum to " + String(total) + ", not the dimension " + String(dim))
        }
        guard sizes.count == ctx.node.outputs.count else {
            throw ctx.invalid(String(sizes.count) + " split sizes for " + String(ctx.node.outputs.count) + " outputs")
        }
        var outer = 1
        for k in 0..<axis { outer *= x.shape[k] }
        var inner = x.dtype.byteSize
        for k in (axis + 1)..<x.rank { inner *= x.shape[k] }
        var outs = [TensorDesc]()
        for s in sizes {
            var shape = x.shape
            shape[axis] = s
            outs.append(TensorDesc(dtype: x.dtype, shape: shape))
        }
        let blocks = sizes.map { $0 * inner }
        let n = sizes.count
        let inputCount = x.count
        return PreparedOp(outputs: outs) { args in
            if inputCount == 0 { return }
            var src = UnsafeRawPointer(args.inputs[0]!.data)
            for o in 0..<outer {
                for i in 0..<n {
                    let b = blocks[i]
                    if b == 0 { continue }
                    (args.outputs[i].data + o &* b).copyMemory(from: src, byteCount: b)
                    src += b
                }
            }
        }
    }
}

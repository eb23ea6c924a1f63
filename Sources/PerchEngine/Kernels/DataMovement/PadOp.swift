import PerchGraph

extension DataMovementOperator {
    /// Pad: `pads` attribute (with `value`) before opset 11, then inputs pads, constant_value and
    /// (opset 18) axes. Modes constant, reflect, edge and wrap; negative pads crop.
    ///
    /// Each output axis gets a precomputed table mapping an output index to the source index (or
    /// -1 for the constant value), so every mode runs through the same loop.
    static func preparePad(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        let mode = ctx.attributes.string("mode", default: "constant")
        guard mode == "constant" || mode == "reflect" || mode == "edge" || mode == "wrap" else {
            throw ctx.unsupported("mode '" + mode + "'")
        }
        var rawPads: [Int]
        if let p = ctx.attributes.ints("pads") ?? ctx.attributes.ints("paddings") {
            rawPads = p
        } else {
            rawPads = intValues(try ctx.requiredValue(1))
        }
        var axes = Array(0..<rank)
        if ctx.has(3) {
            axes = []
            for a in intValues(try ctx.requiredValue(3)) { axes.append(try normalizeAxis(a, rank: rank, ctx)) }
        }
        guard rawPads.count == 2 * axes.count else {
            throw ctx.invalid(String(rawPads.count) + " pads for " + String(axes.count) + " axes")
        }
        var before = [Int](repeating: 0, count: rank)
        var after = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() {
            before[a] = rawPads[i]
            after[a] = rawPads[i + axes.count]
        }
        var shape = x.shape
        for d in 0..<rank {
            shape[d] = x.shape[d] + before[d] + after[d]
            guard shape[d] >= 0 else { throw ctx.invalid("pads crop axis " + String(d) + " below zero") }
        }
        // Source index of each output index, per axis; -1 marks padding with the constant.
        var maps = [[Int]]()
        for d in 0..<rank {
            let dim = x.shape[d]
            var m = [Int](repeating: -1, count: shape[d])
            for o in 0..<shape[d] {
                var i = o - before[d]
                if i >= 0 && i < dim {
                    m[o] = i
                    continue
                }
                switch mode {
                case "edge":
                    guard dim > 0 else { throw ctx.invalid("edge padding of an empty axis") }
                    i = Swift.max(0, Swift.min(i, dim - 1))
                case "reflect":
                    guard dim > 0 else { throw ctx.invalid("reflect padding of an empty axis") }
                    if dim == 1 {
                        i = 0
                    } else {
                        let period = 2 * (dim - 1)
                        i = ((i % period) + period) % period
                        if i >= dim { i = period - i }
                    }
                case "wrap":
                    guard dim > 0 else { throw ctx.invalid("wrap padding of an empty axis") }
                    i = ((i % dim) + dim) % dim
                default:
                    i = -1
                }
                m[o] = i
            }
            maps.append(m)
        }
        let esize = x.dtype.byteSize
        // Opset < 11 carries the fill value as a float attribute.
        var value = pattern(of: Double(ctx.attributes.float("value", default: 0)), as: x.dtype)
        let hasValueInput = ctx.has(2)
        if hasValueInput, let c = ctx.value(2), c.count > 0 {
            value = pattern(of: c)
        }
        let plan = PadPlan(maps: maps, srcStrides: contiguousStrides(x.shape).map { $0 * esize },
                           dstStrides: contiguousStrides(shape).map { $0 * esize }, shape: shape, elementSize: esize)
        let out = TensorDesc(dtype: x.dtype, shape: shape)
        let constantValue = value
        let readValue = hasValueInput && ctx.value(2) == nil
        return PreparedOp(outputs: [out]) { args in
            if out.count == 0 { return }
            var v = constantValue
            if readValue, let c = args.inputs[2], c.count > 0 {
                v = 0
                withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: UnsafeRawPointer(c.data), byteCount: esize) }
            }
            plan.run(src: UnsafeRawPointer(args.inputs[0]!.data), dst: args.outputs[0].data, value: v)
        }
    }

    /// The index tables and strides of one Pad, walked recursively at run time.
    struct PadPlan {
        let maps: [[Int]]
        let srcStrides: [Int]
        let dstStrides: [Int]
        let shape: [Int]
        let elementSize: Int

        func run(src: UnsafeRawPointer, dst: UnsafeMutableRawPointer, value: UInt64) {
            if shape.isEmpty {
                dst.copyMemory(from: src, byteCount: elementSize)
                return
            }
            level(0, src, dst, value)
        }

        private func level(_ d: Int, _ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ value: UInt64) {
            let n = shape[d]
            let ds = dstStrides[d]
            let ss = srcStrides[d]
            let e = elementSize
            maps[d].withUnsafeBufferPointer { m in
                if d + 1 < shape.count {
                    for o in 0..<n {
                        let i = m[o]
                        if i < 0 {
                            // A whole padded sub-block: fill it.
                            DataMovementOperator.fill(dst + o &* ds, count: ds / e, elementSize: e, pattern: value)
                        } else {
                            level(d + 1, src + i &* ss, dst + o &* ds, value)
                        }
                    }
                    return
                }
                for o in 0..<n {
                    let i = m[o]
                    if i < 0 {
                        DataMovementOperator.fill(dst + o &* e, count: 1, elementSize: e, pattern: value)
                    } else {
                        DataMovementOperator.copyBlock(dst + o &* e, src + i &* e, e)
                    }
                }
            }
        }
    }
}

import PerchGraph

/// Ops that change only the shape: the bytes are copied unchanged (row-major order is kept).
extension DataMovementOperator {
    static func prepareReshape(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        // Reshape-1 had a `shape` attribute; from opset 5 it is input #1.
        guard let requested = try intsFromAttributeOrInput(ctx, "shape", input: 1) else {
            throw ctx.invalid("missing the target shape")
        }
        let allowZero = ctx.attributes.int("allowzero", default: 0) != 0
        var shape = requested
        var inferred = -1
        var known = 1
        for (i, d) in requested.enumerated() {
            if d == -1 {
                if inferred >= 0 { throw ctx.invalid("more than one -1 in shape " + shapeText(requested)) }
                inferred = i
                continue
            }
            if d == 0 && !allowZero {
                guard i < x.rank else { throw ctx.invalid("0 at index " + String(i) + " copies a dimension the input (rank " + String(x.rank) + ") does not have") }
                shape[i] = x.shape[i]
            } else if d < 0 {
                throw ctx.invalid("negative dimension in shape " + shapeText(requested))
            }
            known *= shape[i]
        }
        if inferred >= 0 {
            guard known != 0, x.count % known == 0 else {
                throw ctx.invalid("cannot infer the -1 of " + shapeText(requested) + " for input " + shapeText(x.shape))
            }
            shape[inferred] = x.count / known
        }
        guard elementCount(shape) == x.count else {
            throw ctx.invalid("cannot reshape " + shapeText(x.shape) + " to " + shapeText(requested))
        }
        let out = TensorDesc(dtype: x.dtype, shape: shape)
        return PreparedOp(outputs: [out], kernel: copyKernel(byteCount: out.byteCount))
    }

    static func prepareFlatten(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        var axis = ctx.attributes.int("axis", default: 1)
        if axis < 0 { axis += x.rank }
        guard axis >= 0 && axis <= x.rank else {
            throw ctx.invalid("axis " + String(ctx.attributes.int("axis", default: 1)) + " is out of range for rank " + String(x.rank))
        }
        var outer = 1
        for d in 0..<axis { outer *= x.shape[d] }
        var inner = 1
        for d in axis..<x.rank { inner *= x.shape[d] }
        let out = TensorDesc(dtype: x.dtype, shape: [outer, inner])
        return PreparedOp(outputs: [out], kernel: copyKernel(byteCount: out.byteCount))
    }

    static func prepareSqueeze(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        var shape = [Int]()
        if let axes = try intsFromAttributeOrInput(ctx, "axes", input: 1) {
            var drop = [Bool](repeating: false, count: x.rank)
            for a in axes {
                let n = try normalizeAxis(a, rank: x.rank, ctx)
                guard x.shape[n] == 1 else {
                    throw ctx.invalid("cannot squeeze axis " + String(a) + " of size " + String(x.shape[n]))
                }
                drop[n] = true
            }
            for d in 0..<x.rank where !drop[d] { shape.append(x.shape[d]) }
        } else {
            for d in x.shape where d != 1 { shape.append(d) }
        }
        let out = TensorDesc(dtype: x.dtype, shape: shape)
        return PreparedOp(outputs: [out], kernel: copyKernel(byteCount: out.byteCount))
    }

    static func prepareUnsqueeze(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard let axes = try intsFromAttributeOrInput(ctx, "axes", input: 1) else {
            throw ctx.invalid("missing axes")
        }
        let rank = x.rank + axes.count
        var inserted = [Bool](repeating: false, count: rank)
        for a in axes {
            let n = try normalizeAxis(a, rank: rank, ctx)
            guard !inserted[n] else { throw ctx.invalid("axis " + String(a) + " appears twice") }
            inserted[n] = true
        }
        var shape = [Int]()
        var next = 0
        for d in 0..<rank {
            if inserted[d] {
                shape.append(1)
            } else {
                shape.append(x.shape[next])
                next += 1
            }
        }
        let out = TensorDesc(dtype: x.dtype, shape: shape)
        return PreparedOp(outputs: [out], kernel: copyKernel(byteCount: out.byteCount))
    }

    static func prepareIdentity(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        return PreparedOp(outputs: [x], kernel: copyKernel(byteCount: x.byteCount))
    }

    /// Inference-mode Dropout: output 0 is the input; the optional mask (output 1) is all true.
    static func prepareDropout(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let version = opset(ctx)
        // Opset 12+: training_mode is input #2; an unknown value is taken as inference (the
        // normal deployment case). Before opset 7 `is_test` = 0 meant training.
        var training = false
        if ctx.has(2), let t = ctx.value(2), t.count > 0 {
            training = t.int64s[0] != 0
        }
        if ctx.attributes.has("is_test") && ctx.attributes.int("is_test", default: 1) == 0 { training = true }
        if training {
            // With ratio 0 training-mode dropout is still the identity.
            var ratio = Double(ctx.attributes.float("ratio", default: 0.5))
            if ctx.has(1) {
                guard let r = ctx.value(1) else { throw ctx.unsupported("training-mode dropout with an unknown ratio") }
                ratio = r.doubles.first ?? 0.5
            } else if version >= 12 {
                ratio = 0.5
            }
            if ratio != 0 { throw ctx.unsupported("training-mode dropout (random) is not supported") }
        }
        let copy = copyKernel(byteCount: x.byteCount)
        let wantsMask = ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty
        guard wantsMask else { return PreparedOp(outputs: [x], kernel: copy) }
        // Opset 10+ masks are bool; Dropout-7 returned a mask of the input's type.
        let maskType: DType = version >= 10 ? .bool : x.dtype
        let mask = TensorDesc(dtype: maskType, shape: x.shape)
        let one = pattern(of: 1, as: maskType)
        let size = maskType.byteSize
        let n = mask.count
        return PreparedOp(outputs: [x, mask]) { args in
            copy(args)
            fill(args.outputs[1].data, count: n, elementSize: size, pattern: one)
        }
    }
}

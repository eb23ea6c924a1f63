import PerchGraph

/// EyeLike and CenterCropPad: outputs shaped by an input's shape or by a shape input.
extension DataMovementOperator {
    /// EyeLike(x 2-D) with `dtype` (ONNX type code; default x's type) and `k` (default 0): zeros
    /// of x's shape with ones on the diagonal `column - row = k`.
    static func prepareEyeLike(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank == 2 else { throw ctx.invalid("input must be 2-D, got shape " + shapeText(x.shape)) }
        var dtype = x.dtype
        if ctx.attributes.has("dtype") { dtype = try CastOperator.dtype(onnx: ctx.attributes.int("dtype", default: 0), ctx) }
        guard dtype.isFloatingPoint || dtype.isInteger || dtype == .bool else { throw ctx.unsupported("output type " + dtype.name) }
        let k = ctx.attributes.int("k", default: 0)
        let rows = x.shape[0], cols = x.shape[1]
        let bytes = x.count * dtype.byteSize
        let isFloat = dtype.isFloatingPoint
        return PreparedOp(outputs: [TensorDesc(dtype: dtype, shape: x.shape)]) { args in
            let y = args.output(0)
            if bytes > 0 { y.data.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
            for i in 0..<rows {
                let j = i + k
                if j < 0 || j >= cols { continue }
                if isFloat { y.setDouble(i * cols + j, 1) } else { y.setInt64(i * cols + j, 1) }
            }
        }
    }

    /// CenterCropPad(input, shape) with optional `axes` (default all): each listed axis is
    /// center-cropped or zero-padded to its target size; an odd difference puts the extra
    /// element at the end. `shape` must be known before running (else the node runs in a
    /// value-dependent stage).
    static func prepareCenterCropPad(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let target = try IndexingOperator.dataDependent(ctx, input: 1).int64s
        let rank = x.rank
        var axes = [Int]()
        if let raw = ctx.attributes.ints("axes") {
            for a in raw { axes.append(try normalizeAxis(a, rank: rank, ctx)) }
        } else {
            for a in 0..<rank { axes.append(a) }
        }
        guard target.count == axes.count else {
            throw ctx.invalid("shape has " + String(target.count) + " values for " + String(axes.count) + " axes")
        }
        var outShape = x.shape
        // Output coordinate o reads input coordinate o + shift (negative shift: padding before).
        var shift = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() {
            let size = clampToInt(target[i])
            guard size >= 0 else { throw ctx.invalid("shape values must be non-negative") }
            let dim = x.shape[a]
            outShape[a] = size
            shift[a] = size < dim ? (dim - size) / 2 : -((size - dim) / 2)
        }
        let inShape = x.shape
        let inStrides = contiguousStrides(inShape)
        let outStrides = contiguousStrides(outShape)
        let count = elementCount(outShape)
        let size = x.dtype.byteSize
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: outShape)]) { args in
            let src = UnsafeRawPointer(args.input(0).data)
            let dst = args.output(0).data
            for o in 0..<count {
                var from = 0
                var inside = true
                for d in 0..<rank {
                    let c = (o / outStrides[d]) % outShape[d] + shift[d]
                    if c < 0 || c >= inShape[d] {
                        inside = false
                        break
                    }
                    from += c * inStrides[d]
                }
                if inside {
                    copyBlock(dst + o &* size, src + from &* size, size)
                } else {
                    (dst + o &* size).initializeMemory(as: UInt8.self, repeating: 0, count: size)
                }
            }
        }
    }
}

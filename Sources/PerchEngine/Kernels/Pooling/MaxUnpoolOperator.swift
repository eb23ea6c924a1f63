import PerchGraph

/// MaxUnpool(X, I, output_shape?): zeros with each X value placed at its MaxPool index. Indices
/// address the flattened shape inferred from `kernel_shape`, `strides` and `pads`
/// (`(in - 1) * stride - pad_begin - pad_end + kernel` per spatial dim); a larger `output_shape`
/// keeps that block at its start and zero-fills the rest, as ONNX's reference and test data do.
/// `output_shape` must be known before running (else the node runs in a value-dependent stage).
/// Out-of-range indices are skipped.
public enum MaxUnpoolOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let ind = try ctx.input(1)
        guard x.rank >= 3 else { throw ctx.invalid("X must have rank >= 3, got " + String(x.rank)) }
        guard ind.shape == x.shape && ind.dtype == .i64 else {
            throw ctx.invalid("indices must be int64 of X's shape " + shapeText(x.shape) + ", got " + ind.dtype.name + " " + shapeText(ind.shape))
        }
        let r = x.rank - 2
        guard let kernel = ctx.attributes.ints("kernel_shape"), kernel.count == r else {
            throw ctx.invalid("kernel_shape must have one value per spatial dim")
        }
        let strides = ctx.attributes.ints("strides") ?? [Int](repeating: 1, count: r)
        let pads = ctx.attributes.ints("pads") ?? [Int](repeating: 0, count: 2 * r)
        guard strides.count == r && pads.count == 2 * r else { throw ctx.invalid("strides and pads must have one value (pads: two) per spatial dim") }
        var inferred = [x.shape[0], x.shape[1]]
        for i in 0..<r { inferred.append((x.shape[i + 2] - 1) * strides[i] - pads[i] - pads[i + r] + kernel[i]) }
        var outShape = inferred
        if ctx.has(2) {
            let v = try IndexingOperator.dataDependent(ctx, input: 2).int64s
            guard v.count == x.rank else { throw ctx.invalid("output_shape must have " + String(x.rank) + " values") }
            outShape = v.map { Int(clamping: $0) }
            for d in 0..<x.rank where outShape[d] < inferred[d] {
                throw ctx.invalid("output_shape " + shapeText(outShape) + " is smaller than the inferred shape " + shapeText(inferred))
            }
        }
        let rank = x.rank
        let inferredStrides = contiguousStrides(inferred)
        let outStrides = contiguousStrides(outShape)
        let inferredCount = elementCount(inferred)
        let n = x.count
        let outBytes = elementCount(outShape) * x.dtype.byteSize
        let size = x.dtype.byteSize
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: outShape)]) { args in
            let src = UnsafeRawPointer(args.input(0).data)
            let idx = args.input(1).pointer(as: Int64.self)
            let dst = args.output(0).data
            if outBytes > 0 { dst.initializeMemory(as: UInt8.self, repeating: 0, count: outBytes) }
            for e in 0..<n {
                let k = idx[e]
                if k < 0 || k >= Int64(inferredCount) { continue }
                let flat = Int(k)
                var to = 0
                for d in 0..<rank { to += ((flat / inferredStrides[d]) % inferred[d]) * outStrides[d] }
                DataMovementOperator.copyBlock(dst + to &* size, src + e &* size, size)
            }
        }
    }
}

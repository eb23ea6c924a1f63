import PerchGraph

extension DataMovementOperator {
    /// Expand: broadcasts the input against the shape input (bidirectionally, NumPy rules), by a
    /// strided copy whose broadcast dimensions have source stride 0.
    static func prepareExpand(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let target = intValues(try ctx.requiredValue(1))
        let rank = Swift.max(x.rank, target.count)
        var shape = [Int](repeating: 1, count: rank)
        var srcStrides = [Int](repeating: 0, count: rank)
        let inStrides = contiguousStrides(x.shape)
        for d in 0..<rank {
            let xi = d - (rank - x.rank)
            let ti = d - (rank - target.count)
            let a = xi >= 0 ? x.shape[xi] : 1
            let b = ti >= 0 ? target[ti] : 1
            guard a == b || a == 1 || b == 1 else {
                throw ctx.invalid("cannot broadcast " + shapeText(x.shape) + " to " + shapeText(target))
            }
            shape[d] = a == 1 ? b : a
            srcStrides[d] = (xi >= 0 && a != 1) ? inStrides[xi] : 0
        }
        let copy = StridedCopy(contiguousSrcStrides: srcStrides, shape: shape, elementSize: x.dtype.byteSize)
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            copy.run(src: UnsafeRawPointer(args.inputs[0]!.data), dst: args.outputs[0].data)
        }
    }

    /// Tile: output axis d (size repeats[d]·dim) is viewed as two axes (repeats[d], dim) with source
    /// strides (0, stride), which makes it one strided copy.
    static func prepareTile(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let repeats = intValues(try ctx.requiredValue(1))
        guard repeats.count == x.rank else {
            throw ctx.invalid(String(repeats.count) + " repeats for rank " + String(x.rank))
        }
        let inStrides = contiguousStrides(x.shape)
        var shape = [Int]()
        var viewShape = [Int]()
        var viewStrides = [Int]()
        for d in 0..<x.rank {
            guard repeats[d] >= 0 else { throw ctx.invalid("negative repeat") }
            shape.append(x.shape[d] * repeats[d])
            viewShape.append(repeats[d])
            viewStrides.append(0)
            viewShape.append(x.shape[d])
            viewStrides.append(inStrides[d])
        }
        let copy = StridedCopy(contiguousSrcStrides: viewStrides, shape: viewShape, elementSize: x.dtype.byteSize)
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            copy.run(src: UnsafeRawPointer(args.inputs[0]!.data), dst: args.outputs[0].data)
        }
    }
}

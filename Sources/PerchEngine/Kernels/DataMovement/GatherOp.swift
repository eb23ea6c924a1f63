import PerchGraph

extension DataMovementOperator {
    /// Gather along `axis` with int32 or int64 indices of any rank (negative indices count from the
    /// end). Indices are read at run time; an out-of-range index yields zero bytes rather than
    /// reading outside the tensor.
    static func prepareGather(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let indices = try ctx.input(1)
        guard indices.dtype == .i64 || indices.dtype == .i32 else {
            throw ctx.invalid("indices must be int32 or int64, got " + indices.dtype.name)
        }
        guard x.rank >= 1 else { throw ctx.invalid("data must have rank >= 1") }
        let axis = try normalizeAxis(ctx.attributes.int("axis", default: 0), rank: x.rank, ctx)
        var shape = Array(x.shape[0..<axis])
        shape += indices.shape
        shape += Array(x.shape[(axis + 1)...])
        var outer = 1
        for d in 0..<axis { outer *= x.shape[d] }
        var inner = 1
        for d in (axis + 1)..<x.rank { inner *= x.shape[d] }
        let axisDim = x.shape[axis]
        let block = inner * x.dtype.byteSize
        let count = indices.count
        let is64 = indices.dtype == .i64
        let out = TensorDesc(dtype: x.dtype, shape: shape)
        return PreparedOp(outputs: [out]) { args in
            if block == 0 || count == 0 { return }
            let src = UnsafeRawPointer(args.inputs[0]!.data)
            let idx = UnsafeRawPointer(args.inputs[1]!.data)
            var dst = args.outputs[0].data
            for o in 0..<outer {
                let base = src + o &* axisDim &* block
                for j in 0..<count {
                    var k = loadIndex(idx, is64: is64, j)
                    if k < 0 { k += axisDim }
                    if k >= 0 && k < axisDim {
                        copyBlock(dst, base + k &* block, block)
                    } else {
                        dst.initializeMemory(as: UInt8.self, repeating: 0, count: block)
                    }
                    dst += block
                }
            }
        }
    }
}

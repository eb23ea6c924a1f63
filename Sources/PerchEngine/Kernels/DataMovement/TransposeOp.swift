import PerchGraph

extension DataMovementOperator {
    static func prepareTranspose(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        var perm = ctx.attributes.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank else {
            throw ctx.invalid("perm has " + String(perm.count) + " entries for rank " + String(rank))
        }
        var seen = [Bool](repeating: false, count: rank)
        for i in 0..<rank {
            perm[i] = try normalizeAxis(perm[i], rank: rank, ctx)
            guard !seen[perm[i]] else { throw ctx.invalid("perm is not a permutation") }
            seen[perm[i]] = true
        }
        let inStrides = contiguousStrides(x.shape)
        let shape = perm.map { x.shape[$0] }
        let srcStrides = perm.map { inStrides[$0] }
        let copy = StridedCopy(contiguousSrcStrides: srcStrides, shape: shape, elementSize: x.dtype.byteSize)
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: shape)]) { args in
            copy.run(src: UnsafeRawPointer(args.inputs[0]!.data), dst: args.outputs[0].data)
        }
    }
}

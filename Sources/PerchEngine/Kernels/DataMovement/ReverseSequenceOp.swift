import PerchGraph

/// ReverseSequence: for each batch entry `b`, the first `sequence_lens[b]` steps along the time
/// axis are reversed and the rest copied unchanged. `time_axis` / `batch_axis` (defaults 0 / 1)
/// must be 0 and 1 in some order; TF bidirectional-LSTM exports use it to run the backward half.
///
/// Lengths are read at run time (int64, clamped to `0...T`); the kernel moves whole trailing
/// blocks by byte size and does not allocate.
extension DataMovementOperator {
    static func prepareReverseSequence(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let lens = try ctx.input(1)
        guard x.rank >= 2 else { throw ctx.invalid("input must have rank >= 2, got " + String(x.rank)) }
        let timeAxis = ctx.attributes.int("time_axis", default: 0)
        let batchAxis = ctx.attributes.int("batch_axis", default: 1)
        guard (timeAxis == 0 && batchAxis == 1) || (timeAxis == 1 && batchAxis == 0) else {
            throw ctx.invalid("time_axis and batch_axis must be 0 and 1 in some order, got "
                + String(timeAxis) + " and " + String(batchAxis))
        }
        let steps = x.shape[timeAxis]
        let batch = x.shape[batchAxis]
        guard lens.rank == 1 && lens.shape[0] == batch && (lens.dtype == .i64 || lens.dtype == .i32) else {
            throw ctx.invalid("sequence_lens must be an int64 vector of the batch size " + String(batch)
                + ", got " + lens.dtype.name + " " + shapeText(lens.shape))
        }
        let is64 = lens.dtype == .i64
        let block = product(x.shape[2...]) * x.dtype.byteSize
        // Element-block strides of a (time, batch) position.
        let timeStride = timeAxis == 0 ? batch : 1
        let batchStride = timeAxis == 0 ? 1 : steps
        return PreparedOp(outputs: [x]) { args in
            if block == 0 { return }
            let src = UnsafeRawPointer(args.input(0).data)
            let lp = UnsafeRawPointer(args.input(1).data)
            let dst = args.output(0).data
            for b in 0..<batch {
                let raw = loadIndex(lp, is64: is64, b)
                let len = raw < 0 ? 0 : (raw > steps ? steps : raw)
                for t in 0..<steps {
                    let from = t < len ? len - 1 - t : t
                    copyBlock(dst + (t * timeStride + b * batchStride) &* block,
                              src + (from * timeStride + b * batchStride) &* block, block)
                }
            }
        }
    }
}

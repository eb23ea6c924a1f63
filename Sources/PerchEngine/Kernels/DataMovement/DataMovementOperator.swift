import PerchGraph

/// Prepares the ops of the DataMovement family: ops that move or generate bytes without
/// arithmetic on them (Concat, Split, Slice, Gather, Reshape, Transpose, Pad, Expand, Tile, …).
///
/// Every kernel here is dtype-agnostic: it moves elements by their byte size and never converts.
/// Index arithmetic (strides, block sizes, per-axis index maps) is computed in `prepare` and
/// captured by the kernel, so kernels do not allocate.
public enum DataMovementOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .concat: return try prepareConcat(ctx)
        case .split: return try prepareSplit(ctx)
        case .slice: return try prepareSlice(ctx)
        case .gather: return try prepareGather(ctx)
        case .reshape: return try prepareReshape(ctx)
        case .flatten: return try prepareFlatten(ctx)
        case .transpose: return try prepareTranspose(ctx)
        case .squeeze: return try prepareSqueeze(ctx)
        case .unsqueeze: return try prepareUnsqueeze(ctx)
        case .pad: return try preparePad(ctx)
        case .shape: return try prepareShape(ctx)
        case .size: return try prepareSize(ctx)
        case .identity: return try prepareIdentity(ctx)
        case .dropout: return try prepareDropout(ctx)
        case .expand: return try prepareExpand(ctx)
        case .constantOfShape: return try prepareConstantOfShape(ctx)
        case .range: return try prepareRange(ctx)
        case .tile: return try prepareTile(ctx)
        case .constant: return try prepareConstant(ctx)
        case .reverseSequence: return try prepareReverseSequence(ctx)
        case .eyeLike: return try prepareEyeLike(ctx)
        case .centerCropPad: return try prepareCenterCropPad(ctx)
        default: throw ctx.unsupported("not a data movement operator")
        }
    }

    // MARK: Shared helpers

    /// The model's opset for the default domain, as recorded by the importer.
    static func opset(_ ctx: OpContext) -> Int { ctx.attributes.int("_opset", default: 13) }

    /// Maps a possibly negative axis into `0..<rank`.
    static func normalizeAxis(_ axis: Int, rank: Int, _ ctx: OpContext) throws(EngineError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw ctx.invalid("axis " + String(axis) + " is out of range for rank " + String(rank))
        }
        return a
    }

    /// Int64 → Int, saturating (so INT64_MAX sentinels survive on 32-bit targets).
    static func clampToInt(_ v: Int64) -> Int {
        Int(clamping: v)
    }

    /// The values of an integer tensor as `Int`, saturating.
    static func intValues(_ t: Tensor) -> [Int] { t.int64s.map { clampToInt($0) } }

    /// An integer list given as attribute `name` when present, else as input `input` when present
    /// (its value must be known before running), else nil.
    static func intsFromAttributeOrInput(_ ctx: OpContext, _ name: String, input: Int) throws(EngineError) -> [Int]? {
        if let v = ctx.attributes.ints(name) { return v }
        if ctx.has(input) { return intValues(try ctx.requiredValue(input)) }
        return nil
    }

    /// A kernel that copies input 0's bytes to output 0 (reshapes keep the row-major order).
    static func copyKernel(byteCount: Int) -> Kernel {
        return { args in
            if byteCount > 0 {
                args.outputs[0].data.copyMemory(from: UnsafeRawPointer(args.inputs[0]!.data), byteCount: byteCount)
            }
        }
    }

    /// A kernel that writes precomputed bytes to output 0 (generators whose value is known at prepare).
    static func constantKernel(_ bytes: [UInt8]) -> Kernel {
        return { args in
            let n = bytes.count
            if n > 0 {
                bytes.withUnsafeBytes { src in args.outputs[0].data.copyMemory(from: src.baseAddress!, byteCount: n) }
            }
        }
    }

    /// Fills `count` elements of `elementSize` bytes at `dst` with the bit pattern in `pattern`
    /// (the element's little-endian bytes in the low bytes).
    @inline(__always)
    static func fill(_ dst: UnsafeMutableRawPointer, count: Int, elementSize: Int, pattern: UInt64) {
        switch elementSize {
        case 1:
            let v = UInt8(truncatingIfNeeded: pattern)
            let p = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { p[i] = v }
        case 2:
            let v = UInt16(truncatingIfNeeded: pattern)
            for i in 0..<count { dst.storeBytes(of: v, toByteOffset: i &* 2, as: UInt16.self) }
        case 4:
            let v = UInt32(truncatingIfNeeded: pattern)
            for i in 0..<count { dst.storeBytes(of: v, toByteOffset: i &* 4, as: UInt32.self) }
        default:
            for i in 0..<count { dst.storeBytes(of: pattern, toByteOffset: i &* 8, as: UInt64.self) }
        }
    }

    /// The bit pattern of element 0 of `t` (for fill values).
    static func pattern(of t: Tensor) -> UInt64 {
        var p: UInt64 = 0
        let n = Swift.min(t.dtype.byteSize, t.bytes.count)
        for i in 0..<n { p |= UInt64(t.bytes[i]) << UInt64(8 * i) }
        return p
    }

    /// The bit pattern of `value` stored as `dtype`.
    static func pattern(of value: Double, as dtype: DType) -> UInt64 {
        var p: UInt64 = 0
        withUnsafeMutableBytes(of: &p) { raw in writeElementFromDouble(raw.baseAddress!, dtype, 0, value) }
        return p
    }

    /// Reads element `i` of an int32 or int64 tensor (indices, repeats).
    @inline(__always)
    static func loadIndex(_ base: UnsafeRawPointer, is64: Bool, _ i: Int) -> Int {
        if is64 { return Int(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self)) }
        return Int(base.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))
    }
}

import PerchGraph

/// Ops whose output is known from shapes or attributes alone: Shape, Size, ConstantOfShape,
/// Range, Constant. Their bytes are computed at prepare time and the kernel copies them.
extension DataMovementOperator {
    /// Shape (opset 15: `start`/`end` slice the dimension list). Reads only the input's type: the
    /// session folds Shape and hands the kernel a dummy buffer.
    static func prepareShape(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        var start = ctx.attributes.int("start", default: 0)
        var end = ctx.attributes.int("end", default: rank)
        if start < 0 { start += rank }
        if end < 0 { end += rank }
        start = Swift.max(0, Swift.min(start, rank))
        end = Swift.max(0, Swift.min(end, rank))
        let dims = start < end ? x.shape[start..<end].map { Int64($0) } : []
        let t = Tensor(shape: [dims.count], values: dims)
        return PreparedOp(outputs: [TensorDesc(dtype: .i64, shape: [dims.count])], kernel: constantKernel(t.bytes))
    }

    /// Size: the element count as an int64 scalar (reads only the input's type, as Shape).
    static func prepareSize(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let t = Tensor(shape: [], values: [Int64(x.count)])
        return PreparedOp(outputs: [TensorDesc(dtype: .i64, shape: [])], kernel: constantKernel(t.bytes))
    }

    /// ConstantOfShape: the `value` attribute (one element, default float32 0) over the shape input.
    static func prepareConstantOfShape(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let shape = intValues(try ctx.requiredValue(0))
        for d in shape where d < 0 { throw ctx.invalid("negative dimension in " + shapeText(shape)) }
        var dtype = DType.f32
        var value: UInt64 = 0
        if let v = ctx.attributes.tensor("value") {
            guard v.count == 1 else { throw ctx.invalid("value must have exactly one element") }
            dtype = v.dtype
            value = pattern(of: v)
        }
        let out = TensorDesc(dtype: dtype, shape: shape)
        let n = out.count
        let size = dtype.byteSize
        return PreparedOp(outputs: [out]) { args in
            fill(args.outputs[0].data, count: n, elementSize: size, pattern: value)
        }
    }

    /// Range: start + i·delta for i < max(ceil((limit - start) / delta), 0), in the inputs' type.
    static func prepareRange(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let startT = try ctx.requiredValue(0)
        let limitT = try ctx.requiredValue(1)
        let deltaT = try ctx.requiredValue(2)
        let dtype = startT.dtype
        guard startT.count == 1, limitT.count == 1, deltaT.count == 1 else {
            throw ctx.invalid("start, limit and delta must be scalars")
        }
        var out: Tensor
        if dtype.isFloatingPoint {
            let s = startT.doubles[0]
            let l = limitT.doubles[0]
            let d = deltaT.doubles[0]
            guard d != 0 else { throw ctx.invalid("delta is 0") }
            let q = (l - s) / d
            var n = Int(saturatingInt64(q))
            if Double(n) < q { n += 1 }
            n = Swift.max(n, 0)
            out = Tensor(dtype: dtype, shape: [n])
            out.bytes.withUnsafeMutableBytes { raw in
                for i in 0..<n { writeElementFromDouble(raw.baseAddress!, dtype, i, s + Double(i) * d) }
            }
        } else {
            let s = startT.int64s[0]
            let l = limitT.int64s[0]
            let d = deltaT.int64s[0]
            guard d != 0 else { throw ctx.invalid("delta is 0") }
            let span = l - s
            // Ceiling division toward +infinity of span / d.
            var n = span / d
            if span % d != 0 && ((span < 0) == (d < 0)) { n += 1 }
            let count = clampToInt(Swift.max(n, 0))
            out = Tensor(dtype: dtype, shape: [count])
            out.bytes.withUnsafeMutableBytes { raw in
                for i in 0..<count { writeElementFromInt64(raw.baseAddress!, dtype, i, s + Int64(i) * d) }
            }
        }
        return PreparedOp(outputs: [TensorDesc(dtype: dtype, shape: out.shape)], kernel: constantKernel(out.bytes))
    }

    /// Constant: one of the attributes value, value_float, value_floats, value_int, value_ints.
    static func prepareConstant(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let a = ctx.attributes
        let t: Tensor
        if let v = a.tensor("value") {
            t = v
        } else if case .float(let f)? = a["value_float"] {
            t = Tensor(shape: [], values: [f])
        } else if let fs = a.floats("value_floats") {
            t = Tensor(shape: [fs.count], values: fs)
        } else if case .int(let i)? = a["value_int"] {
            t = Tensor(shape: [], values: [Int64(i)])
        } else if let ints = a.ints("value_ints") {
            t = Tensor(shape: [ints.count], values: ints.map { Int64($0) })
        } else if a.has("sparse_value") || a.has("value_string") || a.has("value_strings") {
            throw ctx.unsupported("sparse and string constants")
        } else {
            throw ctx.invalid("no value attribute")
        }
        return PreparedOp(outputs: [TensorDesc(dtype: t.dtype, shape: t.shape)], kernel: constantKernel(t.bytes))
    }
}

import CPerchShims
import PerchGraph

/// Prepares Cast, QuantizeLinear and DequantizeLinear.
public enum CastOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .cast: return try prepareCast(ctx)
        case .quantizeLinear: return try prepareQuantize(ctx)
        case .dynamicQuantizeLinear: return try prepareDynamicQuantize(ctx)
        case .dequantizeLinear: return try prepareDequantize(ctx)
        default: throw ctx.unsupported("not a cast")
        }
    }

    /// The DType of an ONNX `TensorProto.DataType` number, or a reason it is not supported.
    static func dtype(onnx code: Int, _ ctx: OpContext) throws(EngineError) -> DType {
        if let d = DType(onnxElementType: code) { return d }
        if code >= 1 && code <= 23 { throw ctx.unsupported(DType.onnxElementTypeName(code) + " tensors (type " + String(code) + ")") }
        throw ctx.invalid("unknown element type " + String(code))
    }

    /// Float → integer truncates toward zero (then wraps to the target width); integer → integer
    /// goes through Int64 so 64-bit values stay exact.
    static func prepareCast(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard ctx.attributes.has("to") else { throw ctx.invalid("missing required attribute 'to'") }
        let to = try dtype(onnx: ctx.attributes.int("to", default: 0), ctx)
        let out = TensorDesc(dtype: to, shape: x.shape)
        let n = x.count
        if to == x.dtype {
            let bytes = x.byteCount
            return PreparedOp(outputs: [out]) { args in
                args.output(0).data.copyMemory(from: UnsafeRawPointer(args.input(0).data), byteCount: bytes)
            }
        }
        let from = x.dtype
        if from == .f32 && to == .i64 {
            return PreparedOp(outputs: [out]) { args in
                let src = args.input(0).pointer(as: Float.self)
                let dst = args.output(0).pointer(as: Int64.self)
                for i in 0..<n { dst[i] = saturatingInt64(Double(src[i])) }
            }
        }
        if from == .i64 && to == .f32 {
            return PreparedOp(outputs: [out]) { args in
                let src = args.input(0).pointer(as: Int64.self)
                let dst = args.output(0).pointer(as: Float.self)
                for i in 0..<n { dst[i] = Float(src[i]) }
            }
        }
        if to == .f32, let op = integerToFloat(from, out, n) { return op }
        if let format = to.float8Format {
            // `saturate` (default 1) clamps out-of-range values to ±max instead of inf/NaN.
            let saturate = ctx.attributes.int("saturate", default: 1) != 0
            return PreparedOp(outputs: [out]) { args in
                let src = args.input(0)
                let dst = args.output(0).pointer(as: UInt8.self)
                for i in 0..<n { dst[i] = Float8Conversion.encode(Float(src.double(i)), format, saturate: saturate) }
            }
        }
        let viaInt = from.isInteger || from == .bool
        return PreparedOp(outputs: [out]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            if viaInt && to != .f32 && to != .f64 && to != .f16 && to != .bf16 {
                for i in 0..<n { dst.setInt64(i, src.int64(i)) }
            } else if from == .u64 {
                for i in 0..<n { dst.setDouble(i, Double(UInt64(bitPattern: src.int64(i)))) }
            } else {
                for i in 0..<n { dst.setDouble(i, src.double(i)) }
            }
        }
    }

    /// Narrow integers and bools to float32 in a plain loop that vectorizes: the int32 → float Cast after
    /// each MatMulInteger of a `quantize_dynamic` model went element by element through Double
    /// (55% of a dynamically quantized transformer's time). Every value is exact in Double, so
    /// the single rounding to Float gives the generic path's bits.
    static func integerToFloat(_ from: DType, _ out: TensorDesc, _ n: Int) -> PreparedOp? {
        func converting<T: BinaryInteger>(_: T.Type) -> PreparedOp {
            PreparedOp(outputs: [out]) { args in
                let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: T.self)
                let dst = args.output(0).pointer(as: Float.self)
                parallelElementwise(args, n) { r in for i in r { dst[i] = Float(src[i]) } }
            }
        }
        switch from {
        case .i32: return converting(Int32.self)
        case .u8: return converting(UInt8.self)
        case .i8: return converting(Int8.self)
        case .u16: return converting(UInt16.self)
        case .bool: return converting(UInt8.self)  // bytes 0 and 1 (a one-hot's Equal → Cast)
        case .i16: return converting(Int16.self)
        default: return nil
        }
    }

    /// Range of an integer quantized type.
    static func range(_ t: DType) -> (Double, Double)? {
        switch t {
        case .u8: return (0, 255)
        case .i8: return (-128, 127)
        case .u16: return (0, 65535)
        case .i16: return (-32768, 32767)
        case .i32: return (-2_147_483_648, 2_147_483_647)
        case .u32: return (0, 4_294_967_295)
        default: return nil
        }
    }

    /// Which scale/zero-point element each input element uses: per-tensor (one element),
    /// per-axis (1-D along `axis`, default 1) or blocked (opset 21 `block_size`: same rank as x,
    /// `ceil(dim / block_size)` along `axis`). Per-axis is `(i / inner) % channels`; blocked
    /// precomputes a table.
    struct ParameterLayout {
        var channels = 1
        var inner = 1
        var table: [Int]? = nil

        @inline(__always)
        func index(_ i: Int) -> Int {
            if let t = table { return t[i] }
            return channels == 1 ? 0 : (i / inner) % channels
        }
    }

    static func axisLayout(_ ctx: OpContext, _ x: TensorDesc, _ scale: TensorDesc) throws(EngineError) -> ParameterLayout {
        let blockSize = ctx.attributes.int("block_size", default: 0)
        if blockSize == 0 && scale.count == 1 && scale.rank <= 1 { return ParameterLayout() }
        let rawAxis = ctx.attributes.int("axis", default: 1)
        guard let axis = normalizedAxis(rawAxis, rank: x.rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(x.rank))
        }
        if blockSize > 0 {
            guard scale.rank == x.rank else {
                throw ctx.invalid("blocked scale must have x's rank, got " + shapeText(scale.shape) + " for " + shapeText(x.shape))
            }
            for d in 0..<x.rank {
                let expected = d == axis ? (x.shape[d] + blockSize - 1) / blockSize : x.shape[d]
                if scale.shape[d] != expected {
                    throw ctx.invalid("blocked scale shape " + shapeText(scale.shape) + " does not match x " + shapeText(x.shape) + " with block_size " + String(blockSize))
                }
            }
            var strides = [Int](repeating: 1, count: x.rank)
            var s = 1
            var d = x.rank - 1
            while d >= 0 {
                strides[d] = s
                s *= scale.shape[d]
                d -= 1
            }
            var table = [Int](repeating: 0, count: x.count)
            var coord = [Int](repeating: 0, count: x.rank)
            for i in 0..<x.count {
                var index = 0
                for k in 0..<x.rank { index += (k == axis ? coord[k] / blockSize : coord[k]) * strides[k] }
                table[i] = index
                var k = x.rank - 1
                while k >= 0 {
                    coord[k] += 1
                    if coord[k] < x.shape[k] { break }
                    coord[k] = 0
                    k -= 1
                }
            }
            return ParameterLayout(table: table)
        }
        guard scale.rank == 1 else { throw ctx.invalid("per-axis scale must be 1-D, got shape " + shapeText(scale.shape)) }
        guard x.shape[axis] == scale.count else {
            throw ctx.invalid("scale has " + String(scale.count) + " elements but axis " + String(axis) + " has " + String(x.shape[axis]))
        }
        return ParameterLayout(channels: scale.count, inner: product(x.shape[(axis + 1)...]))
    }

    /// y = saturate(round_half_even(x / scale) + zero_point); y's type is zero_point's, else the
    /// `output_dtype` attribute (opset 21), else uint8.
    /// DynamicQuantizeLinear (opset 11, uint8): the range [min(x, 0), max(x, 0)] over 255 steps,
    /// in ONNX's function body's float32 operations — scale = range / 255, zero point =
    /// round_half_even(clip(0 − min/scale, 0, 255)) — then QuantizeLinear's kernel. An all-zero
    /// (or empty) tensor has scale 0, zero point 0 and codes 0 (the body would divide 0 by 0); NaN
    /// elements do not count toward the range, and an infinite one gives an infinite scale.
    static func prepareDynamicQuantize(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype == .f32 else { throw ctx.unsupported("input type " + x.dtype.name + " (float32 only)") }
        let n = x.count
        let vector = VectorISA.best()
        let outputs = [TensorDesc(dtype: .u8, shape: x.shape), TensorDesc(dtype: .f32, shape: []), TensorDesc(dtype: .u8, shape: [])]
        return PreparedOp(outputs: outputs) { args in
            let src = args.input(0).pointer(as: Float.self), dst = args.output(0).pointer(as: UInt8.self)
            var lo: Float = 0, hi: Float = 0
            perch_range_f32(src, n, &lo, &hi)
            let scale = (hi - lo) / 255
            var zero: Float = 0
            if scale > 0 {
                let z = 0 - lo / scale
                // An infinite input makes the scale infinite and z possibly NaN (−∞/∞): zero point 0.
                zero = z.isNaN ? 0 : perch_roundf_even(z < 0 ? 0 : (z > 255 ? 255 : z))
            }
            args.output(1).pointer(as: Float.self)[0] = scale
            args.output(2).pointer(as: UInt8.self)[0] = UInt8(zero)
            if scale > 0 {
                parallelElementwise(args, n) { r in
                    vector.quantize(src + r.lowerBound, r.count, scale: scale, zero: zero, lo: 0, hi: 255, dst + r.lowerBound)
                }
            } else {
                dst.update(repeating: 0, count: n)
            }
        }
    }

    static func prepareQuantize(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let scale = try ctx.input(1)
        guard x.dtype.isFloatingPoint || x.dtype == .i32 else { throw ctx.unsupported("input type " + x.dtype.name) }
        var outType = DType.u8
        let hasZero = ctx.has(2)
        if hasZero {
            outType = try ctx.input(2).dtype
            if try ctx.input(2).count != scale.count { throw ctx.invalid("zero_point and scale shapes differ") }
        } else if ctx.attributes.int("output_dtype", default: 0) != 0 {
            outType = try dtype(onnx: ctx.attributes.int("output_dtype", default: 0), ctx)
        }
        guard let (lo, hi) = range(outType) else { throw ctx.unsupported("quantized type " + outType.name) }
        let layout = try axisLayout(ctx, x, scale)
        let n = x.count
        let fast = x.dtype == .f32 && scale.dtype == .f32
        if fast && scale.count == 1 && (outType == .u8 || outType == .i8) {
            let vector = VectorISA.best()
            return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: x.shape)]) { args in
                let src = args.input(0).pointer(as: Float.self), dst = args.output(0).pointer(as: UInt8.self)
                let s = args.input(1).pointer(as: Float.self)[0]
                let z: Float = hasZero ? Float(args.input(2).int64(0)) : 0
                parallelElementwise(args, n) { r in
                    vector.quantize(src + r.lowerBound, r.count, scale: s, zero: z, lo: Float(lo), hi: Float(hi), dst + r.lowerBound)
                }
            }
        }
        return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: x.shape)]) { args in
            let src = args.input(0)
            let sc = args.input(1)
            let dst = args.output(0)
            let zp: TensorView? = hasZero ? args.input(2) : nil
            for i in 0..<n {
                let c = layout.index(i)
                let z = zp.map { Double($0.int64(c)) } ?? 0
                var q: Double
                if fast {
                    // Divide in float32 as the reference does, then round half to even.
                    q = Double(perch_roundf_even(src.pointer(as: Float.self)[i] / sc.pointer(as: Float.self)[c]))
                } else {
                    q = perch_round_even(src.double(i) / sc.double(c))
                }
                q += z
                q = q != q ? z : (q < lo ? lo : (q > hi ? hi : q))  // NaN quantizes to the zero point
                dst.setInt64(i, Int64(q))
            }
        }
    }

    /// y = (x - zero_point) * scale, in scale's type.
    static func prepareDequantize(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let scale = try ctx.input(1)
        guard x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        guard scale.dtype.isFloatingPoint else { throw ctx.invalid("scale must be floating-point, got " + scale.dtype.name) }
        let hasZero = ctx.has(2)
        if hasZero {
            let z = try ctx.input(2)
            if z.count != scale.count { throw ctx.invalid("zero_point and scale shapes differ") }
            if z.dtype != x.dtype { throw ctx.invalid("zero_point type " + z.dtype.name + " differs from input " + x.dtype.name) }
        }
        let layout = try axisLayout(ctx, x, scale)
        let n = x.count
        let isF32 = scale.dtype == .f32
        if isF32 && scale.count == 1 && (x.dtype == .u8 || x.dtype == .i8) {
            let signed = x.dtype == .i8
            let vector = VectorISA.best()
            return PreparedOp(outputs: [TensorDesc(dtype: .f32, shape: x.shape)]) { args in
                let z = hasZero ? Int32(args.input(2).int64(0)) : 0
                let s = args.input(1).pointer(as: Float.self)[0]
                let dst = args.output(0).pointer(as: Float.self)
                let src = args.input(0).pointer(as: UInt8.self)
                parallelElementwise(args, n) { r in
                    vector.dequantize(src + r.lowerBound, signed: signed, r.count, zero: z, scale: s, dst + r.lowerBound)
                }
            }
        }
        return PreparedOp(outputs: [TensorDesc(dtype: scale.dtype, shape: x.shape)]) { args in
            let src = args.input(0)
            let sc = args.input(1)
            let dst = args.output(0)
            let zp: TensorView? = hasZero ? args.input(2) : nil
            for i in 0..<n {
                let c = layout.index(i)
                let diff = src.int64(i) - (zp?.int64(c) ?? 0)
                if isF32 {
                    dst.pointer(as: Float.self)[i] = Float(diff) * sc.pointer(as: Float.self)[c]
                } else {
                    dst.setDouble(i, Double(diff) * sc.double(c))
                }
            }
        }
    }
}

/// Per-tensor float32 → uint8/int8 quantization, the arithmetic of the general path (divide in
/// float32, round half to even, add the zero point, saturate; NaN becomes the zero point) without
/// its per-element type dispatch: fake-quant models spend most of their time here otherwise.
@inline(__always)
func quantizePerTensorF32(_ src: UnsafePointer<Float>, _ n: Int, scale: Float, zeroPoint z: Float, lo: Float, hi: Float,
                          to dst: UnsafeMutableRawPointer, signed: Bool) {
    // One C loop for both types (the int8 code's two's-complement byte is its uint8 bit pattern);
    // bit-exact with the element-wise reference (CastTests).
    _ = signed
    perch_quantize_f32_8bit(src, n, scale, z, lo, hi, dst.assumingMemoryBound(to: UInt8.self))
}

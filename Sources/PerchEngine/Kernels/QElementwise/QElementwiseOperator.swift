import CPerchShims
import PerchGraph

/// Quantized elementwise ops on uint8/int8 tensors with per-tensor scales, all in integer
/// arithmetic except the prepare-time tables:
/// - QLinearAdd: TensorFlow Lite's Add (inputs rescaled to a common 2^20-shifted scale).
/// - QLinearMul: the int32 product requantized once.
/// - QLinearGlobalAveragePool: int32 sum requantized by x_scale / (y_scale · count).
/// - QLinearSigmoid, QLinearLeakyRelu and Perch's QLinearLookup (Tanh, HardSwish, GELU, SiLU,
///   HardSigmoid, … between Q/DQ): a 256-entry table computed at prepare time.
public enum QElementwiseOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .qLinearAdd, .qLinearMul: return try prepareBinary(ctx)
        case .qLinearGlobalAveragePool: return try prepareGlobalAverage(ctx)
        default: return try prepareLookup(ctx)
        }
    }

    static func quantType(_ ctx: OpContext, _ i: Int) throws(EngineError) -> DType {
        let d = try ctx.input(i)
        guard d.dtype == .u8 || d.dtype == .i8 else { throw ctx.unsupported("input of type " + d.dtype.name) }
        return d.dtype
    }

    // MARK: Add, Mul

    static func prepareBinary(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let a = try ctx.input(0)
        let b = try ctx.input(3)
        let aType = try quantType(ctx, 0)
        let bType = try quantType(ctx, 3)
        let pa = try QuantParams(ctx, scale: 1, zero: 2, dtypeIfNoZero: aType)
        let pb = try QuantParams(ctx, scale: 4, zero: 5, dtypeIfNoZero: bType)
        let py = try QuantParams(ctx, scale: 6, zero: 7, dtypeIfNoZero: aType)
        guard pa.isPerTensor, pb.isPerTensor, py.isPerTensor else { throw ctx.unsupported("per-channel scales") }
        guard let shape = BroadcastPlan.broadcastShape([a.shape, b.shape]) else {
            throw ctx.invalid("shapes " + shapeText(a.shape) + " and " + shapeText(b.shape) + " do not broadcast")
        }
        let outType = py.dtype
        guard outType == .u8 || outType == .i8 else { throw ctx.unsupported("output type " + outType.name) }
        let plan = BroadcastPlan(shapes: [a.shape, b.shape], to: shape)
        let (lo, hi) = QGemmOperator.outputRange(ctx, outType)
        let za = pa.zero(0), zb = pb.zero(0), zy = py.zero(0)
        let aI8 = aType == .i8, bI8 = bType == .i8
        let isAdd = ctx.node.op == .qLinearAdd
        let sa = Double(pa.scale(0)), sb = Double(pb.scale(0)), sy = Double(py.scale(0))
        // TFLite Add parameters.
        let leftShift: Int32 = 20
        let twiceMax = 2 * Swift.max(sa, sb)
        let qa = QuantizedMultiplier(sa / twiceMax)
        let qb = QuantizedMultiplier(sb / twiceMax)
        let qAddOut = QuantizedMultiplier(twiceMax / (Double(1 << leftShift) * sy))
        let qMulOut = QuantizedMultiplier(sa * sb / sy)
        // Per-operand terms in 256-entry tables (Add: TFLite's rescaled inputs; Mul: the centred
        // codes), combined per element and requantized by one multiplier with the shared
        // requantization rows: the same integers as the element-wise TFLite formulas, vectorized.
        var ta = [Int32](repeating: 0, count: 256), tb = [Int32](repeating: 0, count: 256)
        for v in 0..<256 {
            let xa = (aI8 ? Int32(Int8(truncatingIfNeeded: v)) : Int32(v)) - za
            let yb = (bI8 ? Int32(Int8(truncatingIfNeeded: v)) : Int32(v)) - zb
            ta[v] = isAdd ? multiplyByQuantizedMultiplier(xa << leftShift, qa) : xa
            tb[v] = isAdd ? multiplyByQuantizedMultiplier(yb << leftShift, qb) : yb
        }
        let qOut = isAdd ? qAddOut : qMulOut
        let vector = VectorISA.best()
        /// The output code of one (a, b) code pair: the formula of every path below.
        func pair(_ x: Int, _ y: Int) -> UInt8 {
            let t = isAdd ? ta[x] &+ tb[y] : ta[x] &* tb[y]
            return UInt8(truncatingIfNeeded: perch_requant1(t, qOut.multiplier, qOut.shift, zy, lo, hi))
        }
        let total = shape.reduce(1, *)
        if (a.count == 1 || b.count == 1) && total >= 64 {
            // One operand is a single code: the op is a 256-entry table of the other operand's
            // codes, built here when that code is a constant, else per run (256 formulas).
            let scalarIsA = a.count == 1
            let tensorIndex = scalarIsA ? 3 : 0, scalarIndex = scalarIsA ? 0 : 3
            var fixed: [UInt8] = []
            if let v = ctx.value(scalarIndex), v.bytes.count == 1 {
                let c = Int(v.bytes[0])
                fixed = [UInt8](repeating: 0, count: 256)
                for t in 0..<256 { fixed[t] = scalarIsA ? pair(c, t) : pair(t, c) }
            }
            let table = fixed
            return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: shape)], scratchBytes: table.isEmpty ? 256 : 0) { args in
                let src = UnsafeRawPointer(args.input(tensorIndex).data).assumingMemoryBound(to: UInt8.self)
                let out = args.output(0).data.assumingMemoryBound(to: UInt8.self)
                if table.isEmpty {
                    let c = Int(UnsafeRawPointer(args.input(scalarIndex).data).assumingMemoryBound(to: UInt8.self)[0])
                    let t = args.scratch!.assumingMemoryBound(to: UInt8.self)
                    for v in 0..<256 { t[v] = scalarIsA ? pair(c, v) : pair(v, c) }
                    parallelLookup(args, total) { r in vector.lookup(src + r.lowerBound, r.count, t, out + r.lowerBound) }
                    return
                }
                table.withUnsafeBufferPointer { tb in
                    let t = tb.baseAddress!
                    parallelLookup(args, total) { r in vector.lookup(src + r.lowerBound, r.count, t, out + r.lowerBound) }
                }
            }
        }
        if !isAdd && plan.innerStrides[0] == 1 && plan.innerStrides[1] == 1 {
            // Mul of two runs: the product requantized in SIMD (perch_qmul_*), split between
            // threads from 16K elements (~0.35 ns each on a Zen 3: a GELU's 64×512 product took
            // 11 µs on one thread under the 256K default).
            return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: shape)]) { args in
                let pA = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
                let pB = UnsafeRawPointer(args.input(3).data).assumingMemoryBound(to: UInt8.self)
                let out = args.output(0).data.assumingMemoryBound(to: UInt8.self)
                parallelElementwise(args, total, minimum: 1 << 14, grain: 1 << 13) { r in
                    forEachRowSpan(plan, r) { o, i0, n in
                        vector.qmul(pA + plan.rowOffsets[0][o] + i0, aSigned: aI8, za: za, pB + plan.rowOffsets[1][o] + i0, bSigned: bI8, zb: zb,
                                    n, qOut, zy: zy, lo: lo, hi: hi, out + o * plan.inner + i0)
                    }
                }
            }
        }
        if total >= 4096 {
            // Large tensors: every (a, b) byte pair once, into a 64 KiB table (one load per
            // element beats the term tables + requantization at run time).
            var table = [UInt8](repeating: 0, count: 65536)
            for x in 0..<256 {
                for y in 0..<256 { table[x << 8 | y] = pair(x, y) }
            }
            // A whose rows each meet one code of B (a conv's per-channel bias Add, [1, C, H·W] +
            // [1, C, 1]): the table's column for that code, as a 256-byte LUT over the row
            // (vectorized; the strided pair loop took 1.1 ns an element — Magika's 260K-element
            // bias Add 0.29 ms against ORT's 0.05). B's rows meeting one code of A read the
            // table's row for it directly.
            let columnLUTs = plan.innerStrides[0] == 1 && plan.innerStrides[1] == 0
            var byColumn = [UInt8]()
            if columnLUTs {
                byColumn = [UInt8](repeating: 0, count: 65536)
                for x in 0..<256 { for y in 0..<256 { byColumn[y << 8 | x] = table[x << 8 | y] } }
            }
            let rowLUTs = plan.innerStrides[0] == 0 && plan.innerStrides[1] == 1
            // Add of two runs on AVX-512 / AVX2: the same formula computed 64 / 8 outputs at a time.
            let addISA = QConvISA.from(Int8GEMM.bestISA())
            let simdAdd = isAdd && (addISA == .avx512 || addISA == .avx2) && [qa, qb, qAddOut].allSatisfy { $0.isRightShift }
            return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: shape)]) { args in
                let pA = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
                let pB = UnsafeRawPointer(args.input(3).data).assumingMemoryBound(to: UInt8.self)
                let out = args.output(0).data.assumingMemoryBound(to: UInt8.self)
                let sA = plan.innerStrides[0], sB = plan.innerStrides[1]
                table.withUnsafeBufferPointer { tb in byColumn.withUnsafeBufferPointer { tc in
                    let t = tb.baseAddress!
                    // A lookup per element into a table larger than L1 (~0.7 ns each): worth
                    // splitting from 16K elements (MobileNetV2's residual Adds, 75K, ran on one thread).
                    parallelElementwise(args, total, minimum: 1 << 14, grain: 1 << 13) { r in
                        forEachRowSpan(plan, r) { o, i0, n in
                            let rA = pA + plan.rowOffsets[0][o] + i0 * sA, rB = pB + plan.rowOffsets[1][o] + i0 * sB
                            let dst = out + o * plan.inner + i0
                            if columnLUTs {
                                vector.lookup(rA, n, tc.baseAddress! + (Int(rB[0]) << 8), dst)
                            } else if rowLUTs {
                                vector.lookup(rB, n, t + (Int(rA[0]) << 8), dst)
                            } else if sA == 1 && sB == 1 && simdAdd {
                                #if arch(x86_64)
                                if addISA == .avx512 {
                                    perch_qadd_avx512(rA, aI8 ? 1 : 0, za, qa.multiplier, -qa.shift, rB, bI8 ? 1 : 0, zb, qb.multiplier, -qb.shift,
                                                      qAddOut.multiplier, -qAddOut.shift, zy, lo, hi, n, dst)
                                } else {
                                    perch_qadd_avx2(rA, aI8 ? 1 : 0, za, qa.multiplier, -qa.shift, rB, bI8 ? 1 : 0, zb, qb.multiplier, -qb.shift,
                                                    qAddOut.multiplier, -qAddOut.shift, zy, lo, hi, n, dst)
                                }
                                #endif
                            } else if sA == 1 && sB == 1 {
                                for i in 0..<n { dst[i] = t[Int(rA[i]) << 8 | Int(rB[i])] }
                            } else {
                                for i in 0..<n { dst[i] = t[Int(rA[i * sA]) << 8 | Int(rB[i * sB])] }
                            }
                        }
                    }
                } }
            }
        }
        let isa = QConvISA.from(Int8GEMM.bestISA())
        let chunk = 2048
        return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: shape)], scratchBytes: chunk * 4) { args in
            let pA = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let pB = UnsafeRawPointer(args.input(3).data).assumingMemoryBound(to: UInt8.self)
            let out = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let tmp = args.scratch!.assumingMemoryBound(to: Int32.self)
            let sA = plan.innerStrides[0], sB = plan.innerStrides[1]
            ta.withUnsafeBufferPointer { pta in tb.withUnsafeBufferPointer { ptb in
                for o in 0..<plan.outer {
                    let rA = pA + plan.rowOffsets[0][o], rB = pB + plan.rowOffsets[1][o]
                    let dst = out + o * plan.inner
                    var i0 = 0
                    while i0 < plan.inner {
                        let n = Swift.min(chunk, plan.inner - i0)
                        perch_qbinary_terms(rA + i0 * sA, sA, rB + i0 * sB, sB, n, pta.baseAddress!, ptb.baseAddress!, isAdd ? 0 : 1, tmp)
                        isa.requantRow(tmp, n, add: 0, qOut, zp: zy, lo: lo, hi: hi, dst + i0)
                        i0 += n
                    }
                }
            } }
        }
    }

    /// Calls `body(row, firstColumn, count)` for the parts of the plan's rows that the flat
    /// output range `r` covers.
    @inline(__always)
    static func forEachRowSpan(_ plan: BroadcastPlan, _ r: Range<Int>, _ body: (Int, Int, Int) -> Void) {
        var i = r.lowerBound
        while i < r.upperBound {
            let o = i / plan.inner, c = i - o * plan.inner
            let n = Swift.min(plan.inner - c, r.upperBound - i)
            body(o, c, n)
            i += n
        }
    }

    // MARK: GlobalAveragePool

    static func prepareGlobalAverage(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let xType = try quantType(ctx, 0)
        guard x.rank >= 3 else { throw ctx.invalid("X must have rank ≥ 3") }
        let channelsLast = ctx.attributes.int("channels_last", default: 0) != 0
        let px = try QuantParams(ctx, scale: 1, zero: 2, dtypeIfNoZero: xType)
        let py = try QuantParams(ctx, scale: 3, zero: 4, dtypeIfNoZero: xType)
        guard py.dtype == .u8 || py.dtype == .i8 else { throw ctx.unsupported("output type " + py.dtype.name) }
        let n = x.shape[0]
        let c = channelsLast ? x.shape[x.rank - 1] : x.shape[1]
        let spatial = x.count / Swift.max(n * c, 1)
        var outShape = [Int](repeating: 1, count: x.rank)
        outShape[0] = n
        outShape[channelsLast ? x.rank - 1 : 1] = c
        // The mean is requantized in double with ties to even, as ONNX Runtime's kernel rounds:
        // averages land exactly on .5 often, and a tie rounded the other way is a whole step.
        // Deterministic on every ISA (one scalar path, IEEE double).
        let factor = Double(px.scale(0)) / (Double(py.scale(0)) * Double(spatial))
        let zx = px.zero(0), zy = py.zero(0)
        let (lo, hi) = quantizedRange(py.dtype)
        let xI8 = xType == .i8
        return PreparedOp(outputs: [TensorDesc(dtype: py.dtype, shape: outShape)]) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            // Codes are summed as uint8 (int8 flipped by 128) and the zero points taken off once.
            let offset = Int64(spatial) * (Int64(zx) + (xI8 ? 128 : 0))
            for b in 0..<n {
                for ch in 0..<c {
                    var acc: Int32
                    if channelsLast {
                        var sum: Int32 = 0
                        for s in 0..<spatial {
                            let v = src[(b * spatial + s) * c + ch]
                            sum &+= (xI8 ? Int32(Int8(bitPattern: v)) : Int32(v)) - zx
                        }
                        acc = sum
                    } else {
                        acc = Int32(truncatingIfNeeded: Int64(perch_sum_bytes(src + (b * c + ch) * spatial, spatial, xI8 ? 0x80 : 0)) - offset)
                    }
                    var v = perch_round_even(Double(acc) * factor) + Double(zy)
                    v = v < Double(lo) ? Double(lo) : (v > Double(hi) ? Double(hi) : v)
                    dst[b * c + ch] = UInt8(truncatingIfNeeded: Int32(v))
                }
            }
        }
    }

    // MARK: Lookup tables

    /// The real function a lookup op applies.
    static func function(_ ctx: OpContext) throws(EngineError) -> (Double) -> Double {
        let name: String
        switch ctx.node.op {
        case .qLinearSigmoid: name = "Sigmoid"
        case .qLinearLeakyRelu: name = "LeakyRelu"
        default: name = ctx.attributes.string("function", default: "")
        }
        let alpha = Double(ctx.attributes.float("alpha", default: name == "HardSigmoid" ? 0.2 : 0.01))
        let beta = Double(ctx.attributes.float("beta", default: 0.5))
        switch name {
        case "Sigmoid": return { x in 1 / (1 + perch_exp(-x)) }
        case "SiLU": return { x in x / (1 + perch_exp(-x)) }
        case "Tanh": return { x in perch_tanh(x) }
        case "HardSigmoid": return { x in Swift.max(0, Swift.min(1, alpha * x + beta)) }
        case "HardSwish": return { x in x * Swift.max(0, Swift.min(1, x / 6 + 0.5)) }
        case "LeakyRelu": return { x in x >= 0 ? x : alpha * x }
        case "Relu": return { x in Swift.max(0, x) }
        case "Gelu":
            if ctx.attributes.string("approximate", default: "none") == "tanh" {
                return { x in 0.5 * x * (1 + perch_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }
            }
            return { x in 0.5 * x * (1 + perch_erf(x * 0.7071067811865476)) }
        case "Erf": return { x in perch_erf(x) }
        case "Identity": return { x in x }  // requantization to another scale (Concat inputs)
        default: throw ctx.unsupported("lookup function '" + name + "'")
        }
    }

    /// Inputs X, x_scale, x_zero_point, y_scale, y_zero_point. The table maps every input code to
    /// round_half_even(f(x_scale·(q − zx)) / y_scale) + zy, saturated: what DQ → f → Q computes.
    static func prepareLookup(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let xType = try quantType(ctx, 0)
        if ctx.attributes.string("function", default: "") == "Table" {
            // A table computed by the QDQ pass (an elementwise chain): input 5, 256 bytes.
            let t = try ctx.requiredValue(5)
            guard t.bytes.count == 256 else { throw ctx.invalid("lookup table must have 256 entries") }
            let py = try QuantParams(ctx, scale: 3, zero: 4, dtypeIfNoZero: xType)
            let table = t.bytes
            let n = x.count
            let vector = VectorISA.best()
            return PreparedOp(outputs: [TensorDesc(dtype: py.dtype, shape: x.shape)]) { args in
                let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
                let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
                table.withUnsafeBufferPointer { tb in
                    let t = tb.baseAddress!
                    parallelLookup(args, n) { r in vector.lookup(src + r.lowerBound, r.count, t, dst + r.lowerBound) }
                }
            }
        }
        let f = try function(ctx)
        let px = try QuantParams(ctx, scale: 1, zero: 2, dtypeIfNoZero: xType)
        let py = try QuantParams(ctx, scale: 3, zero: 4, dtypeIfNoZero: xType)
        guard px.isPerTensor, py.isPerTensor else { throw ctx.unsupported("per-channel scales") }
        let outType = py.dtype
        guard outType == .u8 || outType == .i8 else { throw ctx.unsupported("output type " + outType.name) }
        let table = lookupTable(f, inType: xType, inScale: px.scale(0), inZero: px.zero(0), outType: outType,
                                outScale: py.scale(0), outZero: py.zero(0))
        let n = x.count
        let vector = VectorISA.best()
        return PreparedOp(outputs: [TensorDesc(dtype: outType, shape: x.shape)]) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            table.withUnsafeBufferPointer { tb in
                let t = tb.baseAddress!
                parallelLookup(args, n) { r in vector.lookup(src + r.lowerBound, r.count, t, dst + r.lowerBound) }
            }
        }
    }

    /// 256 entries indexed by the input byte (an int8 code's bit pattern indexes as uint8).
    /// Dequantization and the division by y_scale happen in float32, as ONNX's DequantizeLinear and
    /// QuantizeLinear do; the function itself in double.
    public static func lookupTable(_ f: (Double) -> Double, inType: DType, inScale: Float, inZero: Int32, outType: DType,
                                   outScale: Float, outZero: Int32) -> [UInt8] {
        let (lo, hi) = quantizedRange(outType)
        var table = [UInt8](repeating: 0, count: 256)
        for byte in 0..<256 {
            let q = inType == .i8 ? Int32(Int8(truncatingIfNeeded: byte)) : Int32(byte)
            let real = Float(q - inZero) * inScale
            let y = Float(f(Double(real)))
            var r = Double(perch_roundf_even(y / outScale)) + Double(outZero)
            r = r < Double(lo) ? Double(lo) : (r > Double(hi) ? Double(hi) : r)
            table[byte] = UInt8(truncatingIfNeeded: Int32(r))
        }
        return table
    }
}

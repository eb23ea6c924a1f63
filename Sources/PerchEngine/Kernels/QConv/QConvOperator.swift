import PerchGraph

/// Prepares QLinearConv and ConvInteger (NCHW, 1-D/2-D/3-D spatial).
///
/// General and 1×1 convolutions run as im2col into uint8 rows (blocks of output pixels) and the
/// int8 GEMM of `Int8GEMM`, one `QLinearLayer` per group; depthwise convolutions (one input channel
/// per group) run a direct integer kernel. The pixel block is the unit a thread pool can split.
/// Like QLinearMatMul, QLinearConv honours `_qmin`/`_qmax` (fused Relu/Clip from the QDQ pass).
public enum QConvOperator {
    static let pixelBlock = 64

    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let isInteger = ctx.node.op == .convInteger
        let xi = 0
        let wi = isInteger ? 1 : 3
        let x = try ctx.input(xi)
        let w = try ctx.input(wi)
        guard x.dtype == .u8 || x.dtype == .i8 else { throw ctx.unsupported("X of type " + x.dtype.name) }
        guard w.dtype == .u8 || w.dtype == .i8 else { throw ctx.unsupported("W of type " + w.dtype.name) }
        guard x.rank >= 3, x.rank <= 5, w.rank == x.rank else { throw ctx.unsupported("X of rank " + String(x.rank)) }
        guard let wValue = ctx.value(wi) else { throw ctx.unsupported("W computed at run time (a constant weight is implemented)") }
        let rank = x.rank - 2
        let kernel = Array(w.shape[2...])
        let group = ctx.attributes.int("group", default: 1)
        let channels = x.shape[1]
        let outChannels = w.shape[0]
        guard group >= 1, channels % group == 0, outChannels % group == 0, w.shape[1] * group == channels else {
            throw ctx.invalid("W " + shapeText(w.shape) + " does not fit X " + shapeText(x.shape) + " with group " + String(group))
        }
        var window = try WindowAttributes(ctx, rank: rank, kernel: kernel)
        let outSpatial = try window.resolveOutput(ctx, input: Array(x.shape[2...]))
        var g = ConvGeometry()
        g.batch = x.shape[0]
        g.inChannels = channels
        g.outChannels = outChannels
        g.group = group
        g.spatialRank = rank
        g.setSpatial(input: Array(x.shape[2...]), output: outSpatial, kernel: kernel, strides: window.strides,
                     dilations: window.dilations, padsBegin: Array(window.pads[0..<rank]))
        g.layAlongWidth()

        // Quantization parameters.
        let aIsI8 = x.dtype == .i8
        var za: Int32 = 0
        var sx: Double = 1
        var wScales: [Float] = [1]
        var wZeros: [Int32] = [0]
        var outType = DType.i32
        var sy: Double = 1
        var zy: Int32 = 0
        var bias: [Int32]? = nil
        /// The input holding x_zero_point when it is only known at run time.
        var runtimeZero: Int? = nil
        if isInteger {
            if ctx.has(3) { wZeros = try ctx.requiredValue(3).int64s.map { Int32(truncatingIfNeeded: $0) } }
            if ctx.has(2) {
                guard try ctx.input(2).count == 1 else { throw ctx.unsupported("per-channel x_zero_point") }
                if let z = ctx.value(2) {
                    za = Int32(truncatingIfNeeded: z.int64s[0])
                } else {
                    // Computed at run time (quantize_dynamic's DynamicQuantizeLinear): the NCHW
                    // GEMM reads it on each run; the reference ISA and 3-D maps take direct loops.
                    let flat = g.inD == 1 && g.kD == 1 && g.outD == 1
                    if !flat || QConvISA.from(Int8GEMM.bestISA()) == .scalar {
                        return ConvIntegerDirect(g, weights: wValue, weightZeros: wZeros, inputIsI8: x.dtype == .i8)
                            .prepared(outShape: [g.batch, outChannels] + outSpatial)
                    }
                    runtimeZero = 2
                }
            }
        } else {
            let px = try QuantParams(ctx, scale: 1, zero: 2, dtypeIfNoZero: x.dtype)
            guard px.isPerTensor else { throw ctx.unsupported("per-channel x_scale") }
            za = px.zero(0)
            sx = Double(px.scale(0))
            let pw = try QuantParams(ctx, scale: 4, zero: 5, dtypeIfNoZero: w.dtype)
            wScales = pw.scales
            wZeros = pw.zeros
            let py = try QuantParams(ctx, scale: 6, zero: 7, dtypeIfNoZero: .u8)
            guard py.isPerTensor else { throw ctx.unsupported("per-channel y_scale") }
            outType = py.dtype
            guard outType == .u8 || outType == .i8 else { throw ctx.unsupported("output type " + outType.name) }
            sy = Double(py.scale(0))
            zy = py.zero(0)
            if ctx.has(8) {
                let b = try ctx.requiredValue(8)
                guard b.count == outChannels else { throw ctx.invalid("B must have " + String(outChannels) + " values") }
                bias = b.int64s.map { Int32(truncatingIfNeeded: $0) }
            }
        }
        guard wScales.count == 1 || wScales.count == outChannels, wZeros.count == 1 || wZeros.count == outChannels else {
            throw ctx.invalid("W's scale/zero point must have 1 or M=" + String(outChannels) + " values")
        }
        // int8 activations run shifted to uint8; a zero point read at run time is shifted there
        // (QConvFast.gemm), the layers then being built for zero point 0.
        if aIsI8 && runtimeZero == nil { za += 128 }
        let (lo, hi) = outType == .i32 ? (Int32.min, Int32.max) : QGemmOperator.outputRange(ctx, outType)
        let outShape = [g.batch, outChannels] + outSpatial
        let outDesc = TensorDesc(dtype: outType, shape: outShape)
        let raw = wValue.bytes
        let wIsU8 = w.dtype == .u8
        func wAt(_ idx: Int) -> Int32 { wIsU8 ? Int32(raw[idx]) : Int32(Int8(bitPattern: raw[idx])) }
        func wZero(_ c: Int) -> Int32 { wZeros.count == 1 ? wZeros[0] : wZeros[c] }
        func mult(_ c: Int) -> Double { sx * Double(wScales.count == 1 ? wScales[0] : wScales[c]) / sy }

        // Depthwise: one input channel per group → direct kernel.
        let flat = g.inD == 1 && g.kD == 1 && g.outD == 1
        let fastISA = QConvISA.from(Int8GEMM.bestISA())
        if group == channels && w.shape[1] == 1 && outChannels == group && outType != .i32 && flat {
            return QConvFast.depthwise(g, aIsI8: aIsI8, za: za, weights: (0..<(outChannels * g.kernelSize)).map { wAt($0) },
                                       wZeros: (0..<outChannels).map { wZero($0) }, bias: bias,
                                       multipliers: (0..<outChannels).map { QuantizedMultiplier(mult($0)) }, zy: zy, lo: lo, hi: hi,
                                       outDesc: outDesc, threads: ctx.threads, isa: fastISA)
        }
        if group == channels && w.shape[1] == 1 && outChannels == group && outType != .i32 {
            return depthwise(g, outDesc: outDesc, aIsI8: aIsI8, za: za, weights: (0..<(outChannels * g.kernelSize)).map { wAt($0) },
                             wZeros: (0..<outChannels).map { wZero($0) }, bias: bias,
                             multipliers: (0..<outChannels).map { QuantizedMultiplier(mult($0)) }, zy: zy, lo: lo, hi: hi)
        }

        let ocg = g.outPerGroup
        let kSize = g.inPerGroup * g.kernelSize
        let isa = Int8GEMM.bestISA()
        var layers = [QLinearLayer]()
        for gi in 0..<group {
            layers.append(QLinearLayer(
                n: ocg, k: kSize,
                weight: { j, i in wAt((gi * ocg + j) * kSize + i) },
                weightZero: { j in wZero(gi * ocg + j) }, weightsAreU8: wIsU8, activationZero: za,
                bias: { j in bias?[gi * ocg + j] ?? 0 }, multiplier: { j in mult(gi * ocg + j) },
                outZero: zy, lo: lo, hi: hi, int32Output: outType == .i32, isa: isa))
        }
        // The NCHW K4 GEMM (VNNI, AVX2, NEON, dotprod kernels), bytes or ConvInteger's int32 sums;
        // scalar keeps the im2col + Int8GEMM path.
        if flat && fastISA != .scalar {
            return QConvFast.gemm(g, layers: layers, aIsI8: aIsI8, za: za, zeroInput: runtimeZero, outDesc: outDesc, threads: ctx.threads,
                                  isa: fastISA)
        }
        let kp = layers[0].kp
        let block = pixelBlock
        let accOffset = MemoryPlannerAlign.up(block * kp)
        let sumOffset = accOffset + block * ocg * 4
        let scratch = sumOffset + block * 4
        let outBytes = outType.byteSize
        let needsSums = layers[0].needsRowSums
        let padValue = UInt8(truncatingIfNeeded: za)
        return PreparedOp(outputs: [outDesc], scratchBytes: scratch) { args in
            let src = UnsafeRawPointer(args.input(xi).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data
            let s = args.scratch!
            let pack = s.assumingMemoryBound(to: UInt8.self)
            let acc = (s + accOffset).assumingMemoryBound(to: Int32.self)
            let sums = (s + sumOffset).assumingMemoryBound(to: Int32.self)
            let outSize = g.outSize
            for b in 0..<g.batch {
                for gi in 0..<g.group {
                    let xBase = src + (b * g.inChannels + gi * g.inPerGroup) * g.inSize
                    var p0 = 0
                    while p0 < outSize {
                        let m = Swift.min(block, outSize - p0)
                        im2col(g, xBase, p0: p0, m: m, kp: kp, flip: aIsI8, pad: padValue, into: pack)
                        if needsSums {
                            for r in 0..<m {
                                var t: Int32 = 0
                                for i in 0..<kSize { t &+= Int32(pack[r * kp + i]) }
                                sums[r] = t
                            }
                        }
                        let o = dst + ((b * g.outChannels + gi * ocg) * outSize + p0) * outBytes
                        layers[gi].run(m: m, a: pack, rowSums: sums, acc: acc, out: o, rowStride: 1, colStride: outSize)
                        p0 += m
                    }
                }
            }
        }
    }

    /// Rows p0..<p0+m of the im2col matrix of one group: row = output pixel, column = (c, kd, kh, kw)
    /// in W's order, padded positions get the activation zero point, columns K..<kp get 0.
    @inline(__always)
    static func im2col(_ g: ConvGeometry, _ x: UnsafePointer<UInt8>, p0: Int, m: Int, kp: Int, flip: Bool, pad: UInt8,
                       into dst: UnsafeMutablePointer<UInt8>) {
        let flipBits: UInt8 = flip ? 0x80 : 0
        let k = g.inPerGroup * g.kernelSize
        for r in 0..<m {
            let p = p0 + r
            let ow = p % g.outW
            let oh = (p / g.outW) % g.outH
            let od = p / (g.outW * g.outH)
            let row = dst + r * kp
            var col = 0
            for c in 0..<g.inPerGroup {
                let xc = x + c * g.inSize
                for kd in 0..<g.kD {
                    let id = od * g.sD - g.pD + kd * g.dD
                    for kh in 0..<g.kH {
                        let ih = oh * g.sH - g.pH + kh * g.dH
                        for kw in 0..<g.kW {
                            let iw = ow * g.sW - g.pW + kw * g.dW
                            if id >= 0 && id < g.inD && ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW {
                                row[col] = xc[(id * g.inH + ih) * g.inW + iw] ^ flipBits
                            } else {
                                row[col] = pad
                            }
                            col += 1
                        }
                    }
                }
            }
            if kp > k { (row + k).initialize(repeating: 0, count: kp - k) }
        }
    }

    /// Direct depthwise kernel (channel multiplier 1): Σ (x − za)(w − zw) + bias, requantized.
    static func depthwise(_ g: ConvGeometry, outDesc: TensorDesc, aIsI8: Bool, za: Int32, weights: [Int32], wZeros: [Int32],
                          bias: [Int32]?, multipliers: [QuantizedMultiplier], zy: Int32, lo: Int32, hi: Int32) -> PreparedOp {
        let ks = g.kernelSize
        var wCentered = [Int32](repeating: 0, count: weights.count)
        for c in 0..<g.outChannels { for i in 0..<ks { wCentered[c * ks + i] = weights[c * ks + i] - wZeros[c] } }
        let biasValues = bias ?? [Int32](repeating: 0, count: g.outChannels)
        return PreparedOp(outputs: [outDesc]) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let flip: UInt8 = aIsI8 ? 0x80 : 0
            wCentered.withUnsafeBufferPointer { wc in
                for b in 0..<g.batch {
                    for c in 0..<g.outChannels {
                        depthwiseChannel(g, x: src + (b * g.inChannels + c) * g.inSize, w: wc.baseAddress! + c * ks,
                                         out: dst + (b * g.outChannels + c) * g.outSize, flip: flip, za: za,
                                         bias: biasValues[c], q: multipliers[c], zy: zy, lo: lo, hi: hi, rows: 0..<g.outD * g.outH)
                    }
                }
            }
        }
    }

    /// One channel of a depthwise conv over a range of output rows (d·outH + h): the unit a thread
    /// pool can split.
    @inline(__always)
    static func depthwiseChannel(_ g: ConvGeometry, x: UnsafePointer<UInt8>, w: UnsafePointer<Int32>, out: UnsafeMutablePointer<UInt8>,
                                 flip: UInt8, za: Int32, bias: Int32, q: QuantizedMultiplier, zy: Int32, lo: Int32, hi: Int32,
                                 rows: Range<Int>) {
        for row in rows {
            let od = row / g.outH
            let oh = row % g.outH
            for ow in 0..<g.outW {
                var acc = bias
                var wi = 0
                for kd in 0..<g.kD {
                    let id = od * g.sD - g.pD + kd * g.dD
                    for kh in 0..<g.kH {
                        let ih = oh * g.sH - g.pH + kh * g.dH
                        for kw in 0..<g.kW {
                            let iw = ow * g.sW - g.pW + kw * g.dW
                            if id >= 0 && id < g.inD && ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW {
                                acc &+= (Int32(x[(id * g.inH + ih) * g.inW + iw] ^ flip) - za) &* w[wi]
                            }
                            wi += 1
                        }
                    }
                }
                out[row * g.outW + ow] = UInt8(truncatingIfNeeded: requantize(acc, q, zeroPoint: zy, lo: lo, hi: hi))
            }
        }
    }
}

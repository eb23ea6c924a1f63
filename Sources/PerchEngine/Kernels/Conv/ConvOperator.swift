import CPerchShims
import PerchGraph

/// Prepares Conv and ConvTranspose (fp32, 1-D/2-D/3-D spatial).
///
/// Conv runs as `sgemm` per group on the im2col matrix — for 2-D convs read from the input while
/// packing, never written (`ImplicitIm2col`); 1×1 stride-1 unpadded convs use X itself — or a direct
/// kernel for depthwise convs. ConvTranspose runs as `sgemm` (Wᵀ·X) + col2im. The scalar kernels
/// in ConvReference.swift define the expected results.
public enum ConvOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        if ctx.node.op == .convTranspose { return try prepareTranspose(ctx, reference: false) }
        return try prepareConv(ctx, reference: false)
    }

    /// Checks X, W and B and returns (X, W, spatial rank, kernel shape).
    static func checkInputs(_ ctx: OpContext, transposed: Bool) throws(EngineError) -> (TensorDesc, TensorDesc, Int, [Int]) {
        let x = try ctx.input(0)
        let w = try ctx.input(1)
        guard x.dtype == .f32, w.dtype == .f32 || (w.dtype == .f16 && !transposed) else {
            throw ctx.unsupported("element types " + x.dtype.name + "/" + w.dtype.name + " (float32, or float32 with float16 weights, are implemented)")
        }
        guard x.rank >= 3, x.rank <= 5 else {
            throw ctx.unsupported("input of rank " + String(x.rank) + " (1-D, 2-D and 3-D spatial inputs are implemented)")
        }
        guard w.rank == x.rank else {
            throw ctx.invalid("W " + shapeText(w.shape) + " must have the rank of X " + shapeText(x.shape))
        }
        let rank = x.rank - 2
        let wKernel = Array(w.shape[2...])
        let kernel = ctx.attributes.ints("kernel_shape") ?? wKernel
        guard kernel == wKernel else {
            throw ctx.invalid("kernel_shape " + shapeText(kernel) + " does not match W " + shapeText(w.shape))
        }
        let group = ctx.attributes.int("group", default: 1)
        guard group >= 1, x.shape[1] % group == 0 else {
            throw ctx.invalid("input channels " + String(x.shape[1]) + " not divisible by group " + String(group))
        }
        if transposed {
            guard w.shape[0] == x.shape[1] else {
                throw ctx.invalid("W " + shapeText(w.shape) + " must have C=" + String(x.shape[1]) + " as its first dim")
            }
        } else {
            guard w.shape[1] * group == x.shape[1], w.shape[0] % group == 0 else {
                throw ctx.invalid("W " + shapeText(w.shape) + " does not fit X " + shapeText(x.shape) + " with group " + String(group))
            }
        }
        if ctx.has(2) {
            let b = try ctx.input(2)
            let m = transposed ? w.shape[1] * group : w.shape[0]
            guard b.dtype == .f32, b.shape == [m] else {
                throw ctx.invalid("B must be float32 of shape [" + String(m) + "], got " + shapeText(b.shape))
            }
        }
        return (x, w, rank, kernel)
    }

    // MARK: Conv

    static func prepareConv(_ ctx: OpContext, reference: Bool) throws(EngineError) -> PreparedOp {
        let (x, w, rank, kernel) = try checkInputs(ctx, transposed: false)
        var window = try WindowAttributes(ctx, rank: rank, kernel: kernel)
        let inSpatial = Array(x.shape[2...])
        let outSpatial = try window.resolveOutput(ctx, input: inSpatial)
        var g = ConvGeometry()
        g.batch = x.shape[0]
        g.inChannels = x.shape[1]
        g.outChannels = w.shape[0]
        g.group = ctx.attributes.int("group", default: 1)
        g.spatialRank = rank
        g.setSpatial(input: inSpatial, output: outSpatial, kernel: kernel, strides: window.strides,
                     dilations: window.dilations, padsBegin: Array(window.pads[0..<rank]))
        if !reference { g.layAlongWidth() }  // the reference kernel keeps the model's own axes
        let out = TensorDesc(dtype: .f32, shape: [g.batch, g.outChannels] + outSpatial)
        let hasBias = ctx.has(2)
        let geo = g
        // A Relu/Clip folded in by ActivationFusion.
        let clamp: (Float, Float)? = ctx.attributes["_clamp_min"] == nil ? nil
            : (ctx.attributes.float("_clamp_min", default: -Float.infinity), ctx.attributes.float("_clamp_max", default: Float.infinity))
        // fp16 weight storage, fp32 compute: W is widened into the first `wFloats` of scratch on
        // each run (cheap next to the conv; the arena reuses that space between steps).
        let wHalf = w.dtype == .f16
        let wFloats = wHalf ? MemoryPlanner.roundUp(w.count, 16) : 0
        if reference || out.count == 0 {
            return PreparedOp(outputs: [out], scratchBytes: wFloats * 4) { args in
                let wp = convWeightsF32(args, half: wHalf)
                convReferenceF32(geo, x: args.input(0).pointer(as: Float.self), w: wp,
                                 bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self))
                if let (lo, hi) = clamp { clampInPlace(args.output(0).pointer(as: Float.self), out.count, lo, hi) }
            }
        }
        if g.inPerGroup == 1 && g.group > 1 {
            // One scratch slot per thread: a padded plane, or the 16-channel tiles' working set.
            let tiles = DepthwiseTilesF32(g)
            let planeFloats = Swift.max(DepthwisePlane(g)?.floats ?? 0, tiles?.floatsPerSlot(g) ?? 0)
            let slots = ctx.threads
            return PreparedOp(outputs: [out], scratchBytes: (wFloats + planeFloats * slots) * 4) { args in
                let wp = convWeightsF32(args, half: wHalf)
                let planes = planeFloats > 0 ? args.scratch!.assumingMemoryBound(to: Float.self) + wFloats : nil
                if let tiles, let planes {
                    tiles.run(geo, x: args.input(0).pointer(as: Float.self), w: wp, bias: hasBias ? args.input(2).pointer(as: Float.self) : nil,
                              y: args.output(0).pointer(as: Float.self), args: args, scratch: planes, slots: slots, clamp: clamp)
                    return
                }
                convDepthwiseF32(geo, x: args.input(0).pointer(as: Float.self), w: wp,
                                 bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self), args: args,
                                 planes: planes, planeFloats: planeFloats, planeSlots: slots, clamp: clamp)
            }
        }
        let pointwise = g.kernelSize == 1 && g.sD == 1 && g.sH == 1 && g.sW == 1
            && window.pads.allSatisfy { $0 == 0 }
        #if arch(arm64)
        if wHalf && HalfGEMM.available {
            return prepareHalfConv(g, pointwise: pointwise, out: out, hasBias: hasBias, threads: ctx.threads, clamp: clamp)
        }
        #endif
        let rows = g.inPerGroup * g.kernelSize
        let colFloats = pointwise ? 0 : ImplicitIm2col(g).map { $0.floats(channels: g.inPerGroup) } ?? rows * g.outSize
        let slots = ctx.threads
        let wsFloats = sgemmParallelWorkspaceCount(m: g.outPerGroup, n: g.outSize, k: rows, slots: slots)
        if !wHalf, let stem = ConvStemF32(g) {
            // A stem, or a narrow stride-1 conv (ConvStemF32's rule): weights read as they are, constant or not.
            return PreparedOp(outputs: [out], scratchBytes: stem.scratchFloats(g) * 4) { args in
                stem.run(geo, x: args.input(0).pointer(as: Float.self), w: args.input(1).pointer(as: Float.self),
                         bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self),
                         scratch: args.scratch!.assumingMemoryBound(to: Float.self), args: args, clamp: clamp)
            }
        }
        if !wHalf, DirectConvF32.worthIt(g), var direct = DirectConvF32(g) {
            // Constant weights (and bias) are packed now; others on each run.
            if let wt = ctx.value(1), wt.dtype == .f32, wt.count == g.outChannels * rows {
                let bt = hasBias ? ctx.value(2) : nil
                if !hasBias || (bt?.dtype == .f32 && bt?.count == g.outChannels) {
                    wt.withUnsafeBufferPointer(of: Float.self) { w in
                        if let bt {
                            bt.withUnsafeBufferPointer(of: Float.self) { direct.prepack(weights: w, bias: $0, outChannels: g.outChannels) }
                        } else {
                            direct.prepack(weights: w, bias: nil, outChannels: g.outChannels)
                        }
                    }
                }
            }
            let run = direct
            return PreparedOp(outputs: [out], scratchBytes: run.scratchFloats(g) * 4) { args in
                run.run(geo, x: args.input(0).pointer(as: Float.self), w: args.input(1).pointer(as: Float.self),
                        bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self),
                        scratch: args.scratch?.assumingMemoryBound(to: Float.self), args: args, clamp: clamp)
            }
        }
        // Constant float32 weights: packed once here, not on every run.
        if !wHalf, let wt = ctx.value(1), wt.dtype == .f32, wt.count == g.outChannels * rows {
            let perGroup = sgemmPackedACount(m: g.outPerGroup, k: rows)
            var packed = [Float](repeating: 0, count: perGroup * g.group)
            wt.withUnsafeBufferPointer(of: Float.self) { src in
                packed.withUnsafeMutableBufferPointer { dst in
                    for grp in 0..<g.group {
                        sgemmPackA(m: g.outPerGroup, k: rows, a: src.baseAddress! + grp * g.outPerGroup * rows, aRowStride: rows, aColStride: 1,
                                   into: dst.baseAddress! + grp * perGroup)
                    }
                }
            }
            return PreparedOp(outputs: [out], scratchBytes: (colFloats + wsFloats) * 4) { args in
                let scratch = args.scratch?.assumingMemoryBound(to: Float.self) ?? args.output(0).pointer(as: Float.self)
                packed.withUnsafeBufferPointer { pw in
                    convIm2colGemmF32(geo, pointwise: pointwise, x: args.input(0).pointer(as: Float.self), w: args.input(1).pointer(as: Float.self),
                                      bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self),
                                      col: scratch, workspace: scratch + colFloats, args: args, slots: slots,
                                      packedW: pw.baseAddress, packedGroupStride: perGroup, clamp: clamp)
                }
            }
        }
        return PreparedOp(outputs: [out], scratchBytes: (wFloats + colFloats + wsFloats) * 4) { args in
            let wp = convWeightsF32(args, half: wHalf)
            let scratch = args.scratch!.assumingMemoryBound(to: Float.self) + wFloats
            convIm2colGemmF32(geo, pointwise: pointwise, x: args.input(0).pointer(as: Float.self), w: wp,
                              bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self),
                              col: scratch, workspace: scratch + colFloats, args: args, slots: slots, clamp: clamp)
        }
    }

    #if arch(arm64)
    /// fp16 weights on a CPU with fp16 arithmetic: the column matrix (im2col, or X itself for a
    /// pointwise conv) is narrowed to fp16 and multiplied by W in fp16 (`perch_hgemm_neon`), output
    /// columns split across threads.
    static func prepareHalfConv(_ g: ConvGeometry, pointwise: Bool, out: TensorDesc, hasBias: Bool, threads: Int,
                                clamp: (Float, Float)?) -> PreparedOp {
        let cg = g.inPerGroup, mg = g.outPerGroup
        let rows = cg * g.kernelSize, p = g.outSize
        let colFloats = pointwise ? 0 : MemoryPlanner.roundUp(rows * p, 16)
        let halves = MemoryPlanner.roundUp(rows * p, 32)
        return PreparedOp(outputs: [out], scratchBytes: colFloats * 4 + halves * 2) { args in
            let x = args.input(0).pointer(as: Float.self), y = args.output(0).pointer(as: Float.self)
            let w = UnsafePointer(args.input(1).pointer(as: UInt16.self))
            let col = args.scratch!.assumingMemoryBound(to: Float.self)
            let half = (args.scratch! + colFloats * 4).assumingMemoryBound(to: UInt16.self)
            let bias = hasBias ? args.input(2).pointer(as: Float.self) : nil
            let parts = Swift.max(1, Swift.min(args.threads, threads, (p + 15) / 16))
            for n in 0..<g.batch {
                for grp in 0..<g.group {
                    let xg = UnsafePointer(x + (n * g.inChannels + grp * cg) * g.inSize)
                    let yg = y + (n * g.outChannels + grp * mg) * p
                    if pointwise {
                        perch_f32_to_f16_neon(xg, rows * p, half)
                    } else {
                        im2colF32(g, x: xg, channels: cg, col: col)
                        perch_f32_to_f16_neon(col, rows * p, half)
                    }
                    if let bias {
                        for m in 0..<mg { (yg + m * p).update(repeating: bias[grp * mg + m], count: p) }
                    }
                    args.parallelFor(parts) { t in
                        let cols = splitRange(p, parts: parts, part: t, align: 16)
                        if cols.isEmpty { return }
                        perch_hgemm_neon(mg, cols.count, rows, w + grp * mg * rows, rows, half + cols.lowerBound, p,
                                         yg + cols.lowerBound, p, bias != nil ? 1 : 0)
                    }
                    if let (lo, hi) = clamp { clampInPlace(yg, mg * p, lo, hi) }
                }
            }
        }
    }
    #endif

    /// W as fp32: the input itself, or (fp16 storage) its widened copy at the start of scratch.
    @inline(__always)
    static func convWeightsF32(_ args: KernelArgs, half: Bool) -> UnsafeMutablePointer<Float> {
        let w = args.input(1)
        if !half { return w.pointer(as: Float.self) }
        let dst = args.scratch!.assumingMemoryBound(to: Float.self)
        let src = w.pointer(as: UInt16.self)
        for i in 0..<w.count { dst[i] = HalfConversion.toFloat(src[i]) }
        return dst
    }

    // MARK: ConvTranspose

    static func prepareTranspose(_ ctx: OpContext, reference: Bool) throws(EngineError) -> PreparedOp {
        let (x, w, rank, kernel) = try checkInputs(ctx, transposed: true)
        let window = try WindowAttributes(ctx, rank: rank, kernel: kernel)
        let group = ctx.attributes.int("group", default: 1)
        let inSpatial = Array(x.shape[2...])
        let outputPadding = ctx.attributes.ints("output_padding") ?? [Int](repeating: 0, count: rank)
        guard outputPadding.count == rank else { throw ctx.invalid("output_padding must have one value per spatial dim") }
        var padsBegin = Array(window.pads[0..<rank])
        var outSpatial = [Int](repeating: 0, count: rank)
        var requested = ctx.attributes.ints("output_shape")
        if let r = requested, r.count == rank + 2 { requested = Array(r[2...]) }
        if let r = requested, r.count != rank { throw ctx.invalid("output_shape must have one value per spatial dim") }
        let same = window.autoPad == "SAME_UPPER" || window.autoPad == "SAME_LOWER"
        for i in 0..<rank {
            let full = window.strides[i] * (inSpatial[i] - 1) + outputPadding[i] + (kernel[i] - 1) * window.dilations[i] + 1
            if requested != nil || same {
                // ONNX: total_padding = full - output_shape, split by auto_pad (SAME_UPPER puts the
                // smaller half first); an output larger than `full` is padded at the end.
                let target = requested?[i] ?? inSpatial[i] * window.strides[i]
                let total = full - target
                let half = total >= 0 ? total / 2 : -((-total + 1) / 2)  // floor division
                padsBegin[i] = window.autoPad == "SAME_UPPER" ? half : total - half
                if total < 0 { padsBegin[i] = 0 }
                outSpatial[i] = target
            } else {
                outSpatial[i] = full - window.pads[i] - window.pads[i + rank]
            }
            guard outSpatial[i] >= 0 else { throw ctx.invalid("ConvTranspose output would have a negative size") }
        }
        var g = ConvGeometry()
        g.batch = x.shape[0]
        g.inChannels = x.shape[1]
        g.outChannels = w.shape[1] * group
        g.group = group
        g.spatialRank = rank
        // For ConvTranspose "in" is X's spatial shape and "out" is Y's.
        g.setSpatial(input: inSpatial, output: outSpatial, kernel: kernel, strides: window.strides,
                     dilations: window.dilations, padsBegin: padsBegin)
        let out = TensorDesc(dtype: .f32, shape: [g.batch, g.outChannels] + outSpatial)
        let hasBias = ctx.has(2)
        let geo = g
        if reference || out.count == 0 {
            return PreparedOp(outputs: [out]) { args in
                convTransposeReferenceF32(geo, x: args.input(0).pointer(as: Float.self), w: args.input(1).pointer(as: Float.self),
                                          bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self))
            }
        }
        let rows = g.outPerGroup * g.kernelSize
        let colFloats = rows * g.inSize
        let slots = ctx.threads
        let wsFloats = sgemmParallelWorkspaceCount(m: rows, n: g.inSize, k: g.inPerGroup, slots: slots)
        return PreparedOp(outputs: [out], scratchBytes: (colFloats + wsFloats) * 4) { args in
            let scratch = args.scratch!.assumingMemoryBound(to: Float.self)
            convTransposeGemmF32(geo, x: args.input(0).pointer(as: Float.self), w: args.input(1).pointer(as: Float.self),
                                 bias: hasBias ? args.input(2).pointer(as: Float.self) : nil, y: args.output(0).pointer(as: Float.self),
                                 col: scratch, workspace: scratch + colFloats, args: args, slots: slots)
        }
    }
}

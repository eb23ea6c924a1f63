import CPerchShims
import PerchGraph

/// Prepares BatchNormalization, LayerNormalization and LRN (channel axis 1 for BN and LRN).
public enum NormalizationOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .batchNormalization: return try prepareBatchNorm(ctx)
        case .layerNormalization: return try prepareLayerNorm(ctx)
        case .lrn: return try prepareLRN(ctx)
        default: throw ctx.unsupported("not a normalization")
        }
    }

    // MARK: BatchNormalization

    /// Inference form: `y = scale * (x - mean) / sqrt(var + epsilon) + B` per channel. With
    /// `training_mode = 1` (opset 14+) Y uses the batch's own mean and (population) variance and the
    /// optional outputs are the running statistics updated with `momentum`.
    static func prepareBatchNorm(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 2 else { throw ctx.invalid("input rank must be at least 2, got shape " + shapeText(x.shape)) }
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let channels = x.shape[1]
        for i in 1..<5 {
            let d = try ctx.input(i)
            if d.count != channels {
                throw ctx.invalid("input #" + String(i) + " has shape " + shapeText(d.shape) + ", expected [" + String(channels) + "]")
            }
        }
        if ctx.attributes.int("spatial", default: 1) != 1 {
            throw ctx.unsupported("spatial = 0 (per-activation statistics of opsets before 9)")
        }
        let epsilon = ctx.attributes.float("epsilon", default: 1e-5)
        let batch = x.shape[0]
        let spatial = product(x.shape[2...])
        let training = ctx.attributes.int("training_mode", default: 0) == 1
        if training {
            let momentum = Double(ctx.attributes.float("momentum", default: 0.9))
            let statsType = try ctx.input(3)
            let outputCount = Swift.min(ctx.node.outputs.count, 3)
            var outs = [x]
            if outputCount > 1 { outs.append(statsType) }
            if outputCount > 2 { outs.append(TensorDesc(dtype: try ctx.input(4).dtype, shape: statsType.shape)) }
            let count = Double(batch * spatial)
            return PreparedOp(outputs: outs) { args in
                let src = args.input(0)
                let dst = args.output(0)
                for c in 0..<channels {
                    var sum = 0.0
                    for b in 0..<batch {
                        let base = (b * channels + c) * spatial
                        for s in 0..<spatial { sum += src.double(base + s) }
                    }
                    let mean = sum / count
                    var sq = 0.0
                    for b in 0..<batch {
                        let base = (b * channels + c) * spatial
                        for s in 0..<spatial {
                            let d = src.double(base + s) - mean
                            sq += d * d
                        }
                    }
                    let variance = sq / count
                    let a = args.input(1).double(c) / perch_sqrt(variance + Double(epsilon))
                    let shift = args.input(2).double(c) - mean * a
                    for b in 0..<batch {
                        let base = (b * channels + c) * spatial
                        for s in 0..<spatial { dst.setDouble(base + s, src.double(base + s) * a + shift) }
                    }
                    if args.outputs.count > 1 {
                        args.output(1).setDouble(c, args.input(3).double(c) * momentum + mean * (1 - momentum))
                    }
                    if args.outputs.count > 2 {
                        args.output(2).setDouble(c, args.input(4).double(c) * momentum + variance * (1 - momentum))
                    }
                }
            }
        }
        if ctx.node.outputs.count > 1 && ctx.node.outputs[1...].contains(where: { !$0.isEmpty }) {
            throw ctx.unsupported("mean/variance outputs without training_mode (opsets before 9)")
        }
        // A Relu/Clip fused in by ActivationFusion: Clip's expression on each result.
        let clamp: (Float, Float)? = ctx.attributes["_clamp_min"] == nil ? nil
            : (ctx.attributes.float("_clamp_min", default: -Float.infinity), ctx.attributes.float("_clamp_max", default: Float.infinity))
        if x.dtype == .f32 && (1..<5).allSatisfy({ ctx.inputs[$0]!.dtype == .f32 }) {
            #if arch(x86_64)
            let avx512 = VectorISA.best().avx512
            #endif
            let (lo, hi) = clamp ?? (0, 0)
            let clampFlag: Int32 = clamp == nil ? 0 : 1
            return PreparedOp(outputs: [x]) { args in
                let px = args.input(0).pointer(as: Float.self)
                let py = args.output(0).pointer(as: Float.self)
                let scale = args.input(1).pointer(as: Float.self)
                let bias = args.input(2).pointer(as: Float.self)
                let mean = args.input(3).pointer(as: Float.self)
                let variance = args.input(4).pointer(as: Float.self)
                // Channels split across threads (DenseNet's unfoldable BNs, after each Concat).
                let planes = batch * channels
                let parts = planes * spatial >= 1 << 16 ? Swift.min(args.threads, planes) : 1
                args.parallelFor(parts) { t in
                    for bc in splitRange(planes, parts: parts, part: t) {
                        let c = bc % channels
                        let a = scale[c] / perch_sqrtf(variance[c] + epsilon)
                        let shift = bias[c] - mean[c] * a
                        let base = bc * spatial
                        #if arch(x86_64)
                        if avx512 {
                            perch_affine_f32_avx512(px + base, spatial, a, shift, clampFlag, lo, hi, py + base)
                            continue
                        }
                        #endif
                        perch_affine_f32_scalar(px + base, spatial, a, shift, clampFlag, lo, hi, py + base)
                    }
                }
            }
        }
        return PreparedOp(outputs: [x]) { args in
            let src = args.input(0)
            let dst = args.output(0)
            for b in 0..<batch {
                for c in 0..<channels {
                    let a = args.input(1).double(c) / perch_sqrt(args.input(4).double(c) + Double(epsilon))
                    let shift = args.input(2).double(c) - args.input(3).double(c) * a
                    let base = (b * channels + c) * spatial
                    for s in 0..<spatial {
                        var v = src.double(base + s) * a + shift
                        if let (lo, hi) = clamp { v = v < Double(lo) ? Double(lo) : (v > Double(hi) ? Double(hi) : v) }
                        dst.setDouble(base + s, v)
                    }
                }
            }
        }
    }

    // MARK: LayerNormalization

    /// Normalizes over dims `axis...`; Scale and B broadcast to those dims. Optional outputs Mean
    /// and InvStdDev have X's shape with the normalized dims set to 1, in float32.
    static func prepareLayerNorm(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let rank = x.rank
        let rawAxis = ctx.attributes.int("axis", default: -1)
        guard let axis = normalizedAxis(rawAxis, rank: rank) else {
            throw ctx.invalid("axis " + String(rawAxis) + " is out of range for rank " + String(rank))
        }
        let epsilon = ctx.attributes.float("epsilon", default: 1e-5)
        let normShape = Array(x.shape[axis...])
        let outer = product(x.shape[0..<axis])
        let n = product(x.shape[axis...])
        let scaleDesc = try ctx.input(1)
        let scaleIndex = try layerNormIndexTable(ctx, scaleDesc.shape, normShape, n)
        let hasBias = ctx.has(2)
        let biasIndex = hasBias ? try layerNormIndexTable(ctx, try ctx.input(2).shape, normShape, n) : []
        var statShape = x.shape
        for d in axis..<rank { statShape[d] = 1 }
        var outs = [x]
        let outputCount = Swift.min(ctx.node.outputs.count, 3)
        for _ in 1..<Swift.max(outputCount, 1) { outs.append(TensorDesc(dtype: .f32, shape: statShape)) }
        let fast = x.dtype == .f32 && scaleDesc.dtype == .f32 && (!hasBias || ctx.inputs[2]!.dtype == .f32)
        let eps = Double(epsilon)
        let identity = Array(0..<n)
        if fast && scaleIndex == identity && (!hasBias || biasIndex == identity) {
            // Scale and B cover the whole row: the vectorized row kernel, rows split between threads
            // when the tensor is large.
            let vector = VectorISA.best()
            return PreparedOp(outputs: outs) { args in
                let px = args.input(0).pointer(as: Float.self), py = args.output(0).pointer(as: Float.self)
                let scale = UnsafePointer(args.input(1).pointer(as: Float.self))
                let bias: UnsafePointer<Float>? = hasBias ? UnsafePointer(args.input(2).pointer(as: Float.self)) : nil
                let pMean: UnsafeMutablePointer<Float>? = args.outputs.count > 1 ? args.output(1).pointer(as: Float.self) : nil
                let pInv: UnsafeMutablePointer<Float>? = args.outputs.count > 2 ? args.output(2).pointer(as: Float.self) : nil
                let parts = outer * n >= 65536 ? Swift.min(args.threads, outer) : 1
                args.parallelFor(parts) { p in
                    for o in splitRange(outer, parts: parts, part: p) {
                        let (mean, inv) = vector.layerNormRow(px + o * n, n, scale: scale, bias: bias, epsilon: epsilon, py + o * n)
                        pMean?[o] = mean
                        pInv?[o] = inv
                    }
                }
            }
        }
        return PreparedOp(outputs: outs) { args in
            let wantMean = args.outputs.count > 1
            let wantInv = args.outputs.count > 2
            if fast {
                let px = args.input(0).pointer(as: Float.self)
                let py = args.output(0).pointer(as: Float.self)
                let scale = args.input(1).pointer(as: Float.self)
                let bias: UnsafeMutablePointer<Float>? = hasBias ? args.input(2).pointer(as: Float.self) : nil
                for o in 0..<outer {
                    let row = px + o * n
                    let out = py + o * n
                    var sum: Float = 0
                    for i in 0..<n { sum += row[i] }
                    let mean = sum / Float(n)
                    var sq: Float = 0
                    for i in 0..<n {
                        let d = row[i] - mean
                        sq += d * d
                    }
                    let inv = 1 / perch_sqrtf(sq / Float(n) + epsilon)
                    for i in 0..<n {
                        var v = (row[i] - mean) * inv * scale[scaleIndex[i]]
                        if let b = bias { v += b[biasIndex[i]] }
                        out[i] = v
                    }
                    if wantMean { args.output(1).pointer(as: Float.self)[o] = mean }
                    if wantInv { args.output(2).pointer(as: Float.self)[o] = inv }
                }
                return
            }
            let src = args.input(0)
            let dst = args.output(0)
            for o in 0..<outer {
                var sum = 0.0
                for i in 0..<n { sum += src.double(o * n + i) }
                let mean = sum / Double(n)
                var sq = 0.0
                for i in 0..<n {
                    let d = src.double(o * n + i) - mean
                    sq += d * d
                }
                let inv = 1 / perch_sqrt(sq / Double(n) + eps)
                for i in 0..<n {
                    var v = (src.double(o * n + i) - mean) * inv * args.input(1).double(scaleIndex[i])
                    if hasBias { v += args.input(2).double(biasIndex[i]) }
                    dst.setDouble(o * n + i, v)
                }
                if wantMean { args.output(1).setDouble(o, mean) }
                if wantInv { args.output(2).setDouble(o, inv) }
            }
        }
    }

    /// The element of Scale/B to read for each of the `n` normalized positions (Scale and B
    /// broadcast unidirectionally to the normalized dims).
    static func layerNormIndexTable(_ ctx: OpContext, _ shape: [Int], _ normShape: [Int], _ n: Int) throws(EngineError) -> [Int] {
        var padded = shape
        while padded.count > normShape.count && padded.first == 1 { padded.removeFirst() }
        if padded == normShape { return Array(0..<n) }
        guard padded.count <= normShape.count, BroadcastPlan.broadcastShape([padded, normShape]) == normShape else {
            throw ctx.invalid("Scale/B shape " + shapeText(shape) + " does not broadcast to " + shapeText(normShape))
        }
        let plan = BroadcastPlan(shapes: [padded], to: normShape)
        var table = [Int](repeating: 0, count: n)
        for o in 0..<plan.outer {
            for i in 0..<plan.inner { table[o * plan.inner + i] = plan.rowOffsets[0][o] + i * plan.innerStrides[0] }
        }
        return table
    }

    // MARK: LRN

    /// `y = x / (bias + alpha / size * sum(x[c']^2))^beta` over channels
    /// `c - floor((size-1)/2) ... c + ceil((size-1)/2)`.
    static func prepareLRN(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 2 else { throw ctx.invalid("input rank must be at least 2, got shape " + shapeText(x.shape)) }
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let a = ctx.attributes
        guard a.has("size") else { throw ctx.invalid("missing required attribute 'size'") }
        let size = a.int("size", default: 1)
        guard size >= 1 else { throw ctx.invalid("size must be positive, got " + String(size)) }
        let alpha = Double(a.float("alpha", default: 1e-4))
        let beta = Double(a.float("beta", default: 0.75))
        let bias = Double(a.float("bias", default: 1.0))
        let batch = x.shape[0]
        let channels = x.shape[1]
        let spatial = product(x.shape[2...])
        let before = (size - 1) / 2
        let after = size - 1 - before
        let isF32 = x.dtype == .f32
        // The usual β = 0.75 (AlexNet, GoogLeNet): d^0.75 = √d·√√d, far cheaper than pow.
        let threeQuarters = beta == 0.75
        let scale = alpha / Double(size)
        let slots = ctx.threads
        let slot = MemoryPlanner.roundUp(spatial, 16)
        let scaleF = Float(scale), biasF = Float(bias), betaF = Float(beta)
        return PreparedOp(outputs: [x], scratchBytes: isF32 ? slot * 4 * slots : 0) { args in
            let src = args.input(0)
            let dst = args.output(0)
            let px = src.pointer(as: Float.self)
            let py = dst.pointer(as: Float.self)
            if isF32 {
                // Per output channel: the window's squares summed over whole rows in float (channels
                // in order; contiguous loops that vectorize), then one pass, as ONNX Runtime computes
                // it in float. Channels split across threads, each with its own row of sums.
                let planes = batch * channels
                let parts = planes * spatial * size >= 1 << 16 ? Swift.min(args.threads, slots, planes) : 1
                args.parallelFor(parts) { t in
                    let sq = args.scratch!.assumingMemoryBound(to: Float.self) + t * slot
                    for bc in splitRange(planes, parts: parts, part: t) {
                        let b = bc / channels, c = bc % channels
                        sq.update(repeating: 0, count: spatial)
                        for k in Swift.max(0, c - before)...Swift.min(channels - 1, c + after) {
                            perch_lrn_sumsq_f32(px + (b * channels + k) * spatial, spatial, sq)
                        }
                        let xr = px + bc * spatial, yr = py + bc * spatial
                        if threeQuarters {
                            perch_lrn_row_075_f32(xr, sq, spatial, biasF, scaleF, yr)
                        } else {
                            for i in 0..<spatial { yr[i] = xr[i] / perch_powf(biasF + scaleF * sq[i], betaF) }
                        }
                    }
                }
                return
            }
            for b in 0..<batch {
                for c in 0..<channels {
                    let lo = Swift.max(0, c - before)
                    let hi = Swift.min(channels - 1, c + after)
                    for s in 0..<spatial {
                        var sq = 0.0
                        var k = lo
                        while k <= hi {
                            let v = isF32 ? Double(px[(b * channels + k) * spatial + s]) : src.double((b * channels + k) * spatial + s)
                            sq += v * v
                            k += 1
                        }
                        let index = (b * channels + c) * spatial + s
                        let denominator = perch_pow(bias + alpha / Double(size) * sq, beta)
                        if isF32 {
                            py[index] = Float(Double(px[index]) / denominator)
                        } else {
                            dst.setDouble(index, src.double(index) / denominator)
                        }
                    }
                }
            }
        }
    }
}

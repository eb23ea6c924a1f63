import CPerchShims
import PerchGraph

/// Prepares MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool over 1-D, 2-D and 3-D
/// spatial inputs. fp32 and f64 run directly; f16, int8 and uint8 are widened to Double in scratch.
public enum PoolingOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.rank >= 3, x.rank <= 5 else {
            throw ctx.unsupported("input of rank " + String(x.rank) + " (1-D, 2-D and 3-D spatial inputs are implemented)")
        }
        let isMax = ctx.node.op == .maxPool || ctx.node.op == .globalMaxPool
        switch x.dtype {
        case .f32, .f64, .f16: break
        case .i8 where isMax, .u8 where isMax: break
        default: throw ctx.unsupported("element type " + x.dtype.name)
        }
        let rank = x.rank - 2
        let inSpatial = Array(x.shape[2...])
        var p = PoolParameters()
        p.isMax = isMax
        p.g.batch = x.shape[0]
        p.g.inChannels = x.shape[1]
        p.g.outChannels = x.shape[1]
        p.g.spatialRank = rank
        var outSpatial: [Int]
        if ctx.node.op == .globalAveragePool || ctx.node.op == .globalMaxPool {
            outSpatial = [Int](repeating: 1, count: rank)
            p.g.setSpatial(input: inSpatial, output: outSpatial, kernel: inSpatial, strides: [], dilations: [], padsBegin: [])
        } else {
            guard let kernel = ctx.attributes.ints("kernel_shape") else { throw ctx.invalid("kernel_shape is required") }
            var window = try WindowAttributes(ctx, rank: rank, kernel: kernel)
            let ceilMode = ctx.attributes.int("ceil_mode", default: 0) != 0
            outSpatial = try window.resolveOutput(ctx, input: inSpatial, ceilMode: ceilMode)
            p.g.setSpatial(input: inSpatial, output: outSpatial, kernel: kernel, strides: window.strides,
                           dilations: window.dilations, padsBegin: Array(window.pads[0..<rank]))
            p.countIncludePad = ctx.attributes.int("count_include_pad", default: 0) != 0
            p.columnMajorIndices = ctx.attributes.int("storage_order", default: 0) != 0
        }
        let y = TensorDesc(dtype: x.dtype, shape: [x.shape[0], x.shape[1]] + outSpatial)
        var outputs = [y]
        let wantIndices = ctx.node.op == .maxPool && ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty
        if wantIndices { outputs.append(TensorDesc(dtype: .i64, shape: y.shape)) }
        let params = p
        if isMax && !wantIndices && (x.dtype == .u8 || x.dtype == .i8) && p.g.inD == 1 && p.g.kD == 1 && p.g.outD == 1 {
            return maxPool8(params, signed: x.dtype == .i8, outputs: outputs, maxThreads: ctx.threads)
        }
        switch x.dtype {
        case .f32 where ctx.node.op == .globalMaxPool:
            // The maximum of each contiguous plane, planes across threads: the window path took
            // 0.79 ms for Magika's 512 × 508 (3 ns an element), and the serial compare 0.28 ms (ORT
            // 0.06). The first element, then every larger one, as the window loop takes them (so
            // NaN only as the first): perch_max_first_f32.
            let planes = p.g.batch * p.g.inChannels, size = p.g.inSize
            return PreparedOp(outputs: outputs) { args in
                let src = UnsafePointer(args.input(0).pointer(as: Float.self)), dst = args.output(0).pointer(as: Float.self)
                let parts = planes * size >= 1 << 16 ? Swift.min(args.threads, planes) : 1
                args.parallelFor(parts) { t in
                    for c in splitRange(planes, parts: parts, part: t) {
                        dst[c] = size > 0 ? perch_max_first_f32(src + c * size, size) : -Float.infinity
                    }
                }
            }
        case .f32 where ctx.node.op == .globalAveragePool:
            // A contiguous mean per channel (the window loops cost 6× ORT's time on 10×10 maps).
            let planes = p.g.batch * p.g.inChannels, size = p.g.inSize
            return PreparedOp(outputs: outputs) { args in
                let src = UnsafePointer(args.input(0).pointer(as: Float.self)), dst = args.output(0).pointer(as: Float.self)
                for c in 0..<planes { dst[c] = perch_mean_f32(src + c * size, size) }
            }
        case .f32 where !p.isMax && !p.countIncludePad && p.g.inD == 1 && p.g.outD == 1 && p.g.kD == 1 && p.g.dH == 1 && p.g.dW == 1
            && p.g.outH > 0 && p.g.outW > 0:
            // AveragePool without dilation (pads excluded from the count): padded planes, channels
            // split across threads.
            let g = p.g, planes = g.batch * g.inChannels
            let hp = (g.outH - 1) * g.sH + g.kH, wp = (g.outW - 1) * g.sW + g.kW
            let slot = MemoryPlanner.roundUp(hp * wp + wp, 16)
            let slots = ctx.threads
            let work = planes * g.outSize * g.kernelSize
            #if arch(x86_64)
            let avx512 = VectorISA.best().avx512
            #endif
            return PreparedOp(outputs: outputs, scratchBytes: slot * 4 * slots) { args in
                let x = UnsafePointer(args.input(0).pointer(as: Float.self)), y = args.output(0).pointer(as: Float.self)
                let parts = work >= 1 << 16 ? Swift.min(args.threads, slots, planes) : 1
                args.parallelFor(parts) { t in
                    let ws = args.scratch!.assumingMemoryBound(to: Float.self) + t * slot
                    for c in splitRange(planes, parts: parts, part: t) {
                        #if arch(x86_64)
                        if avx512 {
                            perch_avgpool_f32_plane_avx512(x + c * g.inSize, g.inH, g.inW, g.pH, g.pW, g.outH, g.outW, g.kH, g.kW,
                                                           g.sH, g.sW, y + c * g.outSize, ws)
                            continue
                        }
                        #endif
                        perch_avgpool_f32_plane(x + c * g.inSize, g.inH, g.inW, g.pH, g.pW, g.outH, g.outW, g.kH, g.kW, g.sH, g.sW,
                                                y + c * g.outSize, ws)
                    }
                }
            }
        case .f32 where p.isMax && !wantIndices && p.g.inD == 1 && p.g.outD == 1 && p.g.kD == 1 && p.g.dH == 1 && p.g.dW == 1
            && p.g.sH == 1 && p.g.sW == 1 && p.g.kernelSize > 4:
            // Stride 1 (SPPF's 5×5, GoogLeNet's 3×3 branches): separable, planes across threads,
            // one inH × outW row-maxima buffer per thread.
            let g = p.g, planes = g.batch * g.inChannels, slot = MemoryPlanner.roundUp(g.inH * g.outW, 16), slots = ctx.threads
            let work = planes * g.outSize * (g.kH + g.kW)
            return PreparedOp(outputs: outputs, scratchBytes: slot * 4 * slots) { args in
                let x = UnsafePointer(args.input(0).pointer(as: Float.self)), y = args.output(0).pointer(as: Float.self)
                let parts = work >= 1 << 16 ? Swift.min(args.threads, slots, planes) : 1
                args.parallelFor(parts) { t in
                    let tmp = args.scratch!.assumingMemoryBound(to: Float.self) + t * slot
                    for c in splitRange(planes, parts: parts, part: t) {
                        perch_maxpool_s1_plane_f32(x + c * g.inSize, g.inH, g.inW, g.kH, g.kW, g.pH, g.pW, g.outH, g.outW, tmp, y + c * g.outSize)
                    }
                }
            }
        case .f32 where p.isMax && !wantIndices && p.g.inD == 1 && p.g.outD == 1 && p.g.kD == 1 && p.g.dH == 1 && p.g.dW == 1:
            // Planes split across threads (GoogLeNet's pools were a sixth of its 2-thread time).
            let planes = p.g.batch * p.g.inChannels
            let work = planes * p.g.outSize * p.g.kernelSize
            return PreparedOp(outputs: outputs) { args in
                let x = UnsafePointer(args.input(0).pointer(as: Float.self)), y = args.output(0).pointer(as: Float.self)
                let parts = work >= 1 << 16 ? Swift.min(args.threads, planes) : 1
                args.parallelFor(parts) { t in maxPool2DF32(params, x: x, y: y, planes: splitRange(planes, parts: parts, part: t)) }
            }
        case .f32:
            return PreparedOp(outputs: outputs) { args in
                poolKernel(params, x: UnsafePointer(args.input(0).pointer(as: Float.self)), y: args.output(0).pointer(as: Float.self),
                           indices: wantIndices ? args.output(1).pointer(as: Int64.self) : nil)
            }
        case .f64:
            return PreparedOp(outputs: outputs) { args in
                poolKernel(params, x: UnsafePointer(args.input(0).pointer(as: Double.self)), y: args.output(0).pointer(as: Double.self),
                           indices: wantIndices ? args.output(1).pointer(as: Int64.self) : nil)
            }
        default:
            let inCount = x.count
            let outCount = y.count
            return PreparedOp(outputs: outputs, scratchBytes: (inCount + outCount) * 8) { args in
                let xs = args.scratch!.assumingMemoryBound(to: Double.self)
                let ys = xs + inCount
                let xv = args.input(0)
                for i in 0..<inCount { xs[i] = xv.double(i) }
                poolKernel(params, x: UnsafePointer(xs), y: ys, indices: wantIndices ? args.output(1).pointer(as: Int64.self) : nil)
                let yv = args.output(0)
                for i in 0..<outCount { yv.setDouble(i, ys[i]) }
            }
        }
    }
}

/// MaxPool on 8-bit tensors (1-D/2-D, no indices) directly on the bytes: max commutes with
/// (de)quantization, so a DequantizeLinear → MaxPool → QuantizeLinear with one scale runs here.
func maxPool8(_ p: PoolParameters, signed: Bool, outputs: [TensorDesc], maxThreads: Int) -> PreparedOp {
    let g = p.g
    let flip: UInt8 = signed ? 0x80 : 0
    // 2-D without dilation: the vectorized C plane kernel, channels split across threads. Padded
    // pools (Inception's 3×3/1 pad-1 branches) first copy the plane into one bordered with the
    // lowest code, which no window's max can pick over a real value (ONNX pads MaxPool with −∞).
    if g.dH == 1 && g.dW == 1 && g.outH > 0 && g.outW > 0 {
        let hp = (g.outH - 1) * g.sH + g.kH, wp = (g.outW - 1) * g.sW + g.kW
        let inside = g.pH == 0 && g.pW == 0 && hp <= g.inH && wp <= g.inW
        // Stride 1 with padding: whole-plane passes (perch_maxpool8_s1_plane, 3 planes of work).
        let flat = !inside && g.sH == 1 && g.sW == 1
        let planeBytes = inside ? 0 : MemoryPlannerAlign.up(hp * wp * (flat ? 3 : 1) + 16)
        let slot = planeBytes + MemoryPlannerAlign.up(Swift.max(g.inW, wp) + 16)
        let planes = g.batch * g.inChannels
        let lowest = flip  // the raw byte whose flipped value is 0
        return PreparedOp(outputs: outputs, scratchBytes: slot * maxThreads) { args in
            let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
            let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
            let parts = planes * g.outSize * g.kernelSize >= 1 << 16 ? Swift.min(args.threads, maxThreads, planes) : 1
            args.parallelFor(parts) { t in
                let plane = args.scratch!.advanced(by: t * slot).assumingMemoryBound(to: UInt8.self)
                let tmp = plane + planeBytes
                for c in splitRange(planes, parts: parts, part: t) {
                    let x = src + c * g.inSize
                    if inside {
                        perch_maxpool8_plane(x, g.inW, dst + c * g.outSize, g.outH, g.outW, g.kH, g.kW, g.sH, g.sW, flip, tmp)
                        continue
                    }
                    if flat {
                        perch_maxpool8_s1_plane(x, g.inH, g.inW, g.pH, g.pW, g.outH, g.outW, g.kH, g.kW, flip, dst + c * g.outSize, plane)
                        continue
                    }
                    perch_pad_plane_u8(x, g.inH, g.inW, g.pH, g.pW, hp, wp, 0, lowest, plane)
                    perch_maxpool8_plane(plane, wp, dst + c * g.outSize, g.outH, g.outW, g.kH, g.kW, g.sH, g.sW, flip, tmp)
                }
            }
        }
    }
    return PreparedOp(outputs: outputs) { args in
        let src = UnsafeRawPointer(args.input(0).data).assumingMemoryBound(to: UInt8.self)
        let dst = args.output(0).data.assumingMemoryBound(to: UInt8.self)
        for c in 0..<(g.batch * g.inChannels) {
            let x = src + c * g.inSize
            let y = dst + c * g.outSize
            for oh in 0..<g.outH {
                let (h0, h1) = tapRange(start: oh * g.sH - g.pH, d: g.dH, kLen: g.kH, limit: g.inH)
                for ow in 0..<g.outW {
                    let (w0, w1) = tapRange(start: ow * g.sW - g.pW, d: g.dW, kLen: g.kW, limit: g.inW)
                    var m: UInt8 = 0
                    var kh = h0
                    while kh < h1 {
                        let row = x + (oh * g.sH - g.pH + kh * g.dH) * g.inW + ow * g.sW - g.pW
                        var kw = w0
                        while kw < w1 {
                            let v = row[kw * g.dW] ^ flip
                            if v > m { m = v }
                            kw += 1
                        }
                        kh += 1
                    }
                    y[oh * g.outW + ow] = m ^ flip
                }
            }
        }
    }
}

struct PoolParameters {
    var g = ConvGeometry()
    var isMax = true
    var countIncludePad = false
    var columnMajorIndices = false
}

/// Taps `k` in `lo..<hi` of a window starting at `start` (dilation `d`, size `kLen`) that land in `0..<limit`.
@inline(__always)
func tapRange(start: Int, d: Int, kLen: Int, limit: Int) -> (Int, Int) {
    let lo = start < 0 ? (-start + d - 1) / d : 0
    let top = limit - 1 - start
    if top < 0 { return (0, 0) }
    let hi = min(kLen, top / d + 1)
    return lo < hi ? (lo, hi) : (0, 0)
}

func poolKernel<T: BinaryFloatingPoint>(_ p: PoolParameters, x: UnsafePointer<T>, y: UnsafeMutablePointer<T>, indices: UnsafeMutablePointer<Int64>?) {
    let g = p.g
    let inHW = g.inH * g.inW
    var yi = 0
    for plane in 0..<(g.batch * g.inChannels) {
        let xp = x + plane * g.inSize
        let planeBase = Int64(plane * g.inSize)
        for od in 0..<g.outD {
            let sd = od * g.sD - g.pD
            let (d0, d1) = tapRange(start: sd, d: g.dD, kLen: g.kD, limit: g.inD)
            for oh in 0..<g.outH {
                let sh = oh * g.sH - g.pH
                let (h0, h1) = tapRange(start: sh, d: g.dH, kLen: g.kH, limit: g.inH)
                for ow in 0..<g.outW {
                    let sw = ow * g.sW - g.pW
                    let (w0, w1) = tapRange(start: sw, d: g.dW, kLen: g.kW, limit: g.inW)
                    if p.isMax {
                        var best = -T.infinity
                        var bestAt = -1
                        for kd in d0..<d1 {
                            let id = sd + kd * g.dD
                            for kh in h0..<h1 {
                                let row = id * inHW + (sh + kh * g.dH) * g.inW
                                for kw in w0..<w1 {
                                    let v = xp[row + sw + kw * g.dW]
                                    if v > best || bestAt < 0 { best = v; bestAt = row + sw + kw * g.dW }
                                }
                            }
                        }
                        y[yi] = best
                        if let indices {
                            var at = bestAt
                            if p.columnMajorIndices && bestAt >= 0 {
                                let id = bestAt / inHW
                                let ih = (bestAt % inHW) / g.inW
                                let iw = bestAt % g.inW
                                at = (iw * g.inH + ih) * g.inD + id
                            }
                            indices[yi] = planeBase + Int64(at)
                        }
                    } else {
                        var sum: T = 0
                        for kd in d0..<d1 {
                            let id = sd + kd * g.dD
                            for kh in h0..<h1 {
                                let row = id * inHW + (sh + kh * g.dH) * g.inW + sw
                                for kw in w0..<w1 { sum += xp[row + kw * g.dW] }
                            }
                        }
                        // count_include_pad: ONNX divides by the whole window, also where ceil_mode
                        // lets it run past the end padding (the reference pads that part too).
                        let count = p.countIncludePad ? g.kernelSize : (d1 - d0) * (h1 - h0) * (w1 - w0)
                        y[yi] = sum / T(count)
                    }
                    yi += 1
                }
            }
        }
    }
}

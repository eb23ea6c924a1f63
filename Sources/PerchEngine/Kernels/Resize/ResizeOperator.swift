import PerchGraph

/// Prepares Resize (opsets 10–19) and the importer's rewrite of Upsample (`_upsample` = 1).
///
/// Every mode is separable, so prepare builds for each axis and each output coordinate a small
/// table of input taps (1 for nearest, 2 for linear, 4 for cubic) with their weights, following
/// the ONNX reference implementation (edge-clamped neighbours, `exclude_outside` renormalization,
/// `tf_crop_and_resize` extrapolation). The kernel sums the tensor product of the taps. Axes that
/// map every output coordinate onto itself get a single tap; a plan of single taps only (nearest)
/// runs as a gather of raw elements (`ResizeGather`). `antialias` (opset 18) widens the
/// linear/cubic filter by 1/scale when downsampling, as the reference does. fp32 and f64 run directly; other
/// types are widened to Double in scratch.
public enum ResizeOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rank = x.rank
        guard rank >= 1 else { throw ctx.invalid("X must have rank >= 1") }
        if x.dtype == .bool { throw ctx.unsupported("element type bool") }
        let attrs = ctx.attributes
        let opset = attrs.int("_opset", default: 13)
        let upsample = attrs.int("_upsample", default: 0) != 0
        let legacy = upsample || opset < 11
        var mode = attrs.string("mode", default: "nearest")
        if mode == "bilinear" || mode == "trilinear" { mode = "linear" }
        guard mode == "nearest" || mode == "linear" || mode == "cubic" else { throw ctx.invalid("unknown mode '" + mode + "'") }
        let ctm = legacy ? "asymmetric" : attrs.string("coordinate_transformation_mode", default: "half_pixel")
        switch ctm {
        case "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize": break
        case "tf_half_pixel_for_nn": throw ctx.unsupported("coordinate_transformation_mode tf_half_pixel_for_nn")
        default: throw ctx.invalid("unknown coordinate_transformation_mode '" + ctm + "'")
        }
        let nearestMode = legacy ? "simple" : attrs.string("nearest_mode", default: "round_prefer_floor")
        switch nearestMode {
        case "simple", "round_prefer_floor", "round_prefer_ceil", "floor", "ceil": break
        default: throw ctx.invalid("unknown nearest_mode '" + nearestMode + "'")
        }
        let antialias = attrs.int("antialias", default: 0) != 0 && mode != "nearest"
        let cubicA = Double(attrs.float("cubic_coeff_a", default: -0.75))
        let excludeOutside = attrs.int("exclude_outside", default: 0) != 0
        let extrapolation = Double(attrs.float("extrapolation_value", default: 0))
        let policy = attrs.string("keep_aspect_ratio_policy", default: "stretch")

        var axes = Array(0..<rank)
        if let a = attrs.ints("axes") {
            axes = []
            for v in a {
                let n = v < 0 ? v + rank : v
                guard n >= 0, n < rank, !axes.contains(n) else { throw ctx.invalid("axes out of range or repeated") }
                axes.append(n)
            }
        }

        // Where scales / sizes / roi come from.
        var scalesT: Tensor?
        var sizesT: Tensor?
        var roiIndex = -1
        if upsample {
            scalesT = ctx.has(2) ? try ctx.requiredValue(2) : nil
            if scalesT == nil, let s = attrs.floats("scales") { scalesT = Tensor(shape: [s.count], values: s) }
        } else if opset < 11 {
            scalesT = ctx.has(1) ? try ctx.requiredValue(1) : nil
        } else {
            roiIndex = 1
            scalesT = ctx.has(2) ? try ctx.requiredValue(2) : nil
            sizesT = ctx.has(3) ? try ctx.requiredValue(3) : nil
        }
        if let s = scalesT, s.count == 0 { scalesT = nil }
        if let s = sizesT, s.count == 0 { sizesT = nil }

        var scale = [Double](repeating: 1, count: rank)
        var outShape = x.shape
        if let s = scalesT {
            guard sizesT == nil else { throw ctx.invalid("only one of scales and sizes may be given") }
            let v = s.doubles
            guard v.count == axes.count else {
                throw ctx.invalid("scales has " + String(v.count) + " values for " + String(axes.count) + " axes")
            }
            for (i, a) in axes.enumerated() {
                guard v[i] > 0 else { throw ctx.invalid("scales must be positive") }
                scale[a] = v[i]
                outShape[a] = Int(v[i] * Double(x.shape[a]))
            }
        } else if let s = sizesT {
            let v = s.ints
            guard v.count == axes.count else {
                throw ctx.invalid("sizes has " + String(v.count) + " values for " + String(axes.count) + " axes")
            }
            for (i, a) in axes.enumerated() {
                guard v[i] >= 0 else { throw ctx.invalid("sizes must be non-negative") }
                scale[a] = x.shape[a] == 0 ? 1 : Double(v[i]) / Double(x.shape[a])
                outShape[a] = v[i]
            }
            if policy == "not_larger" || policy == "not_smaller" {
                var pick = scale[axes[0]]
                for a in axes { pick = policy == "not_larger" ? min(pick, scale[a]) : max(pick, scale[a]) }
                for a in axes {
                    scale[a] = pick
                    outShape[a] = Int(pick * Double(x.shape[a]) + 0.5)
                }
            } else if policy != "stretch" {
                throw ctx.invalid("unknown keep_aspect_ratio_policy '" + policy + "'")
            }
        } else {
            throw ctx.invalid("one of scales and sizes must be given")
        }

        var roiStart = [Double](repeating: 0, count: rank)
        var roiEnd = [Double](repeating: 1, count: rank)
        if ctm == "tf_crop_and_resize" {
            guard roiIndex >= 0, ctx.has(roiIndex) else { throw ctx.invalid("tf_crop_and_resize needs roi") }
            let r = try ctx.requiredValue(roiIndex).doubles
            guard r.count == 2 * axes.count else { throw ctx.invalid("roi must have 2 values per axis") }
            for (i, a) in axes.enumerated() {
                roiStart[a] = r[i]
                roiEnd[a] = r[axes.count + i]
            }
        }

        // Per-axis tap tables.
        var plan = ResizePlan()
        plan.rank = rank
        plan.outShape = outShape
        plan.extrapolation = extrapolation
        var inStride = [Int](repeating: 1, count: rank)
        if rank > 1 { for a in stride(from: rank - 2, through: 0, by: -1) { inStride[a] = inStride[a + 1] * x.shape[a + 1] } }
        let baseTaps = mode == "nearest" ? 1 : (mode == "linear" ? 2 : 4)
        for a in 0..<rank {
            let len = x.shape[a]
            let outLen = outShape[a]
            let s = scale[a]
            // Antialiasing widens the filter by 1/scale when downsampling: taps at f + start ..< f + start + taps.
            let aaScale = min(s, 1)
            var aaStart = 0
            if antialias {
                aaStart = Int(floorWithoutLibm((mode == "linear" ? -1 : -2) / aaScale)) + 1
            }
            let taps = antialias ? 2 - 2 * aaStart : baseTaps
            let outWidth = s * Double(len)
            var idx = [Int](repeating: 0, count: outLen * taps)
            var w = [Double](repeating: 0, count: outLen * taps)
            var outside = [Bool](repeating: false, count: outLen)
            var identity = outLen == len
            for o in 0..<outLen {
                let xo = Double(o)
                var c: Double
                switch ctm {
                case "align_corners":
                    c = outWidth == 1 ? 0 : xo * Double(len - 1) / (outWidth - 1)
                case "asymmetric":
                    c = xo / s
                case "tf_crop_and_resize":
                    let span = roiEnd[a] - roiStart[a]
                    c = outWidth == 1 ? span * Double(len - 1) / 2 : xo * span * Double(len - 1) / (outWidth - 1)
                    c += roiStart[a] * Double(len - 1)
                    if c < 0 || c > Double(len - 1) { outside[o] = true }
                case "pytorch_half_pixel":
                    c = outWidth == 1 ? -0.5 : (xo + 0.5) / s - 0.5
                case "half_pixel_symmetric":
                    let adjustment = Double(outLen) / outWidth
                    let center = Double(len) / 2
                    c = center * (1 - adjustment) + (xo + 0.5) / s - 0.5
                default:
                    c = (xo + 0.5) / s - 0.5
                }
                let f = floorWithoutLibm(c)
                let fi = Int(f)
                let ratio = c - f
                let base = o * taps
                func clamp(_ i: Int) -> Int { i < 0 ? 0 : (i >= len ? len - 1 : i) }
                if antialias {
                    // As the ONNX reference: an integral coordinate counts as ratio 1 from the index below.
                    let (fa, ra) = ratio == 0 ? (fi - 1, 1.0) : (fi, ratio)
                    var total: Double = 0
                    for t in 0..<taps {
                        let i = fa + aaStart + t
                        let arg = abs(aaScale * Double(aaStart + t) - aaScale * ra)
                        var cw: Double
                        if mode == "linear" {
                            cw = max(0, 1 - arg)
                        } else {
                            let A = cubicA
                            cw = arg <= 1 ? ((A + 2) * arg - (A + 3)) * arg * arg + 1 : (arg < 2 ? ((A * arg - 5 * A) * arg + 8 * A) * arg - 4 * A : 0)
                        }
                        if excludeOutside && (i < 0 || i >= len) { cw = 0 }
                        idx[base + t] = clamp(i)
                        w[base + t] = cw
                        total += cw
                    }
                    if total != 0 { for t in 0..<taps { w[base + t] /= total } }
                } else {
                switch mode {
                case "nearest":
                    var i: Int
                    if ratio == 0 {
                        i = fi
                    } else {
                        switch nearestMode {
                        case "round_prefer_ceil": i = ratio < 0.5 ? fi : fi + 1
                        case "floor": i = fi
                        case "ceil": i = fi + 1
                        case "simple": i = s < 1 ? fi + 1 : fi
                        default: i = ratio <= 0.5 ? fi : fi + 1
                        }
                    }
                    idx[base] = clamp(i)
                    w[base] = 1
                case "linear":
                    idx[base] = clamp(fi)
                    idx[base + 1] = clamp(fi + 1)
                    w[base] = 1 - ratio
                    w[base + 1] = ratio
                default:
                    let A = cubicA
                    let r = ratio
                    var cw = [
                        ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
                        ((A + 2) * r - (A + 3)) * r * r + 1,
                        ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
                        ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A,
                    ]
                    if excludeOutside {
                        var total: Double = 0
                        for t in 0..<4 {
                            let i = fi - 1 + t
                            if i < 0 || i >= len { cw[t] = 0 }
                            total += cw[t]
                        }
                        if total != 0 { for t in 0..<4 { cw[t] /= total } }
                    }
                    for t in 0..<4 {
                        idx[base + t] = clamp(fi - 1 + t)
                        w[base + t] = cw[t]
                    }
                }
                }
                // Identity check: all weight on input coordinate o.
                if identity {
                    if outside[o] { identity = false }
                    for t in 0..<taps where w[base + t] != 0 {
                        if idx[base + t] != o || w[base + t] != 1 { identity = false }
                    }
                }
            }
            plan.tableStart.append(plan.indices.count)
            plan.outsideStart.append(plan.outside.count)
            if identity {
                plan.taps.append(1)
                for o in 0..<outLen {
                    plan.indices.append(o * inStride[a])
                    plan.weights.append(1)
                }
            } else {
                plan.taps.append(taps)
                for i in 0..<idx.count {
                    plan.indices.append(idx[i] * inStride[a])
                    plan.weights.append(w[i])
                }
                for o in outside where o { plan.anyOutside = true }
            }
            for o in outside { plan.outside.append(o) }
        }

        let out = TensorDesc(dtype: x.dtype, shape: outShape)
        let p = plan
        let coordBytes = rank * 8
        if out.count == 0 {
            return PreparedOp(outputs: [out]) { _ in }
        }
        if let gather = ResizeGather(p) {
            // Output rows split across threads from 64K elements (a detector's 2× upsamples to
            // 96×160×160 took 0.7 ms on one thread of two), each thread its own coordinates.
            let rows = gather.rows, slots = ctx.threads
            let split = out.count >= 1 << 16
            func gathering<T>(_: T.Type) -> PreparedOp {
                PreparedOp(outputs: [out], scratchBytes: coordBytes * slots) { args in
                    let x = UnsafePointer(args.input(0).data.assumingMemoryBound(to: T.self)), y = args.output(0).data.assumingMemoryBound(to: T.self)
                    let coords = args.scratch!.assumingMemoryBound(to: Int.self)
                    let parts = split ? Swift.min(args.threads, slots, rows) : 1
                    args.parallelFor(parts) { t in
                        gather.run(x: x, y: y, coords: coords + t * rank, rows: splitRange(rows, parts: parts, part: t))
                    }
                }
            }
            switch x.dtype.byteSize {
            case 1: return gathering(UInt8.self)
            case 2: return gathering(UInt16.self)
            case 4: return gathering(UInt32.self)
            case 8: return gathering(UInt64.self)
            default: break
            }
        }
        switch x.dtype {
        case .f32:
            return PreparedOp(outputs: [out], scratchBytes: coordBytes) { args in
                resizeKernel(p, x: UnsafePointer(args.input(0).pointer(as: Float.self)), y: args.output(0).pointer(as: Float.self),
                             coords: args.scratch!.assumingMemoryBound(to: Int.self))
            }
        case .f64:
            return PreparedOp(outputs: [out], scratchBytes: coordBytes) { args in
                resizeKernel(p, x: UnsafePointer(args.input(0).pointer(as: Double.self)), y: args.output(0).pointer(as: Double.self),
                             coords: args.scratch!.assumingMemoryBound(to: Int.self))
            }
        default:
            let inCount = x.count
            let outCount = out.count
            let integer = x.dtype.isInteger
            return PreparedOp(outputs: [out], scratchBytes: coordBytes + (inCount + outCount) * 8) { args in
                let coords = args.scratch!.assumingMemoryBound(to: Int.self)
                let xs = (args.scratch! + coordBytes).assumingMemoryBound(to: Double.self)
                let ys = xs + inCount
                let xv = args.input(0)
                for i in 0..<inCount { xs[i] = xv.double(i) }
                resizeKernel(p, x: UnsafePointer(xs), y: ys, coords: coords)
                let yv = args.output(0)
                for i in 0..<outCount { yv.setDouble(i, integer ? roundHalfEvenWithoutLibm(ys[i]) : ys[i]) }
            }
        }
    }
}

/// Tap tables of one Resize node: for axis `a` and output coordinate `o`, taps
/// `tableStart[a] + o * taps[a] ..< + taps[a]` of `indices` (already scaled by the input
/// stride of `a`) and `weights`.
struct ResizePlan {
    var rank = 0
    var outShape: [Int] = []
    var taps: [Int] = []
    var tableStart: [Int] = []
    var indices: [Int] = []
    var weights: [Double] = []
    var outsideStart: [Int] = []
    var outside: [Bool] = []
    var anyOutside = false
    var extrapolation: Double = 0
}

/// Walks the output in row-major order; `coords` holds `rank` Ints of workspace.
func resizeKernel<T: BinaryFloatingPoint>(_ p: ResizePlan, x: UnsafePointer<T>, y: UnsafeMutablePointer<T>, coords: UnsafeMutablePointer<Int>) {
    for a in 0..<p.rank { coords[a] = 0 }
    var yi = 0
    let last = p.rank - 1
    while true {
        var isOutside = false
        if p.anyOutside {
            for a in 0..<p.rank where p.outside[p.outsideStart[a] + coords[a]] { isOutside = true }
        }
        y[yi] = isOutside ? T(p.extrapolation) : resizeSum(p, x: x, axis: 0, offset: 0, coords: coords)
        yi += 1
        var a = last
        while a >= 0 {
            coords[a] += 1
            if coords[a] < p.outShape[a] { break }
            coords[a] = 0
            a -= 1
        }
        if a < 0 { return }
    }
}

func resizeSum<T: BinaryFloatingPoint>(_ p: ResizePlan, x: UnsafePointer<T>, axis: Int, offset: Int, coords: UnsafeMutablePointer<Int>) -> T {
    let n = p.taps[axis]
    let base = p.tableStart[axis] + coords[axis] * n
    if axis == p.rank - 1 {
        if n == 1 { return x[offset + p.indices[base]] }
        var s: T = 0
        for t in 0..<n { s += T(p.weights[base + t]) * x[offset + p.indices[base + t]] }
        return s
    }
    if n == 1 { return resizeSum(p, x: x, axis: axis + 1, offset: offset + p.indices[base], coords: coords) }
    var s: T = 0
    for t in 0..<n {
        let w = p.weights[base + t]
        if w != 0 { s += T(w) * resizeSum(p, x: x, axis: axis + 1, offset: offset + p.indices[base + t], coords: coords) }
    }
    return s
}

/// floor for |v| < 2^62 without libm (the host debug build does not link it).
@inline(__always)
func floorWithoutLibm(_ v: Double) -> Double {
    let t = Double(Int(v))
    return t > v ? t - 1 : t
}

/// Round half to even for |v| < 2^62 without libm.
@inline(__always)
func roundHalfEvenWithoutLibm(_ v: Double) -> Double {
    let f = floorWithoutLibm(v)
    let d = v - f
    if d > 0.5 { return f + 1 }
    if d < 0.5 { return f }
    return Int(f) % 2 == 0 ? f : f + 1
}

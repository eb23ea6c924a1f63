import CPerchShims
import PerchGraph

/// GridSample (opsets 16–22): samples `X` (N, C, d1…dr) at the normalized positions of `grid`
/// (N, D1…Dr, r; the last axis is (x, y[, z]), x indexing the innermost spatial dim) giving
/// (N, C, D1…Dr). Follows the ONNX reference: positions are denormalized by `align_corners`,
/// rounded half-to-even for `nearest`, moved into range by `padding_mode` border (clamp) or
/// reflection, then each tap reads its pixel with the same padding (zeros: outside reads 0).
/// Modes: `linear`/`bilinear` (2 taps a dim), `nearest`, `cubic`/`bicubic` (4 taps, Keys
/// A = −0.75). 2-D and 3-D spatial inputs.
///
/// Each output position's taps (plane offset and weight, at most 4^3) are computed once into
/// scratch and applied to every channel; the kernel does not allocate.
public enum GridSampleOperator {
    enum Padding { case zeros, border, reflection }

    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let grid = try ctx.input(1)
        let r = x.rank - 2
        guard r == 2 || r == 3 else { throw ctx.unsupported("input of rank " + String(x.rank) + " (4-D and 5-D inputs are implemented)") }
        guard grid.rank == x.rank && grid.shape[0] == x.shape[0] && grid.shape[x.rank - 1] == r else {
            throw ctx.invalid("grid " + shapeText(grid.shape) + " must be [N, spatial…, " + String(r) + "] for input " + shapeText(x.shape))
        }
        guard x.dtype.isFloatingPoint && grid.dtype.isFloatingPoint else {
            throw ctx.unsupported("types " + x.dtype.name + " and " + grid.dtype.name + " (floating-point only)")
        }
        let modeName = ctx.attributes.string("mode", default: "bilinear")
        let taps: Int
        switch modeName {
        case "bilinear", "linear": taps = 2
        case "nearest": taps = 1
        case "bicubic", "cubic": taps = 4
        default: throw ctx.invalid("mode must be linear, nearest or cubic, got \"" + modeName + "\"")
        }
        let padName = ctx.attributes.string("padding_mode", default: "zeros")
        let padding: Padding
        switch padName {
        case "zeros": padding = .zeros
        case "border": padding = .border
        case "reflection": padding = .reflection
        default: throw ctx.invalid("padding_mode must be zeros, border or reflection, got \"" + padName + "\"")
        }
        let alignCorners = ctx.attributes.int("align_corners", default: 0) != 0
        let n = x.shape[0], channels = x.shape[1]
        let dims = Array(x.shape[2...])
        let planeSize = product(x.shape[2...])
        let outSpatial = Array(grid.shape[1..<(grid.rank - 1)])
        let points = product(outSpatial[...])
        var strides = [Int](repeating: 1, count: r)
        for i in stride(from: r - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * dims[i + 1] }
        var total = 1
        for _ in 0..<r { total *= taps }
        let isF32 = x.dtype == .f32
        let gridF32 = grid.dtype == .f32
        // Scratch: per dim `taps` indices and weights, then the combined offsets and weights.
        let scratch = (r * taps * 2 + total * 2) * 8
        let out = TensorDesc(dtype: x.dtype, shape: [n, channels] + outSpatial)
        return PreparedOp(outputs: [out], scratchBytes: scratch) { args in
            let xv = args.input(0), gv = args.input(1), yv = args.output(0)
            let ws = args.scratch!
            let axisIndex = ws.assumingMemoryBound(to: Int.self)
            let axisWeight = (ws + r * taps * 8).assumingMemoryBound(to: Double.self)
            let offsets = (ws + r * taps * 16).assumingMemoryBound(to: Int.self)
            let weights = (ws + r * taps * 16 + total * 8).assumingMemoryBound(to: Double.self)
            let px = xv.pointer(as: Float.self), py = yv.pointer(as: Float.self), pg = gv.pointer(as: Float.self)
            for b in 0..<n {
                for q in 0..<points {
                    let gBase = (b * points + q) * r
                    for i in 0..<r {
                        let g = gridF32 ? Double(pg[gBase + r - 1 - i]) : gv.double(gBase + r - 1 - i)
                        sampleTaps(g, dims[i], alignCorners, taps, padding, axisIndex + i * taps, axisWeight + i * taps)
                    }
                    // Combine the per-dim taps (odometer over r digits of base `taps`).
                    for t in 0..<total {
                        var rest = t, off = 0
                        var w = 1.0
                        for i in stride(from: r - 1, through: 0, by: -1) {
                            let k = rest % taps
                            rest /= taps
                            let idx = axisIndex[i * taps + k]
                            if idx < 0 { w = 0 }
                            off += (idx < 0 ? 0 : idx) * strides[i]
                            w *= axisWeight[i * taps + k]
                        }
                        offsets[t] = off
                        weights[t] = w
                    }
                    for c in 0..<channels {
                        let plane = (b * channels + c) * planeSize
                        var acc = 0.0
                        if isF32 {
                            for t in 0..<total where weights[t] != 0 { acc += weights[t] * Double(px[plane + offsets[t]]) }
                            py[(b * channels + c) * points + q] = Float(acc)
                        } else {
                            for t in 0..<total where weights[t] != 0 { acc += weights[t] * xv.double(plane + offsets[t]) }
                            yv.setDouble((b * channels + c) * points + q, acc)
                        }
                    }
                }
            }
        }
    }

    /// The taps along one dim of normalized position `g`: pixel indices (-1: reads zero) and weights.
    @inline(__always)
    static func sampleTaps(_ g: Double, _ size: Int, _ alignCorners: Bool, _ taps: Int, _ padding: Padding,
                           _ index: UnsafeMutablePointer<Int>, _ weight: UnsafeMutablePointer<Double>) {
        let d = Double(size)
        var v = alignCorners ? (g + 1) / 2 * (d - 1) : ((g + 1) * d - 1) / 2
        let lo = alignCorners ? 0.0 : -0.5, hi = alignCorners ? d - 1 : d - 0.5
        if taps == 1 { v = perch_round_even(v) }
        if v < lo || v > hi {
            if padding == .border { v = v < 0 ? 0 : (v > d - 1 ? d - 1 : v) }
            if padding == .reflection { v = reflect(v, lo, hi) }
        }
        if !(v > -1e9 && v < 1e9) { v = -1e9 }  // NaN or far outside: taps land outside
        if taps == 1 {
            index[0] = pixel(Int(v), size, lo, hi, padding)
            weight[0] = 1
            return
        }
        let f0 = perch_floor(v)
        let base = Int(f0)
        let f = v - f0
        if taps == 2 {
            index[0] = pixel(base, size, lo, hi, padding)
            index[1] = pixel(base + 1, size, lo, hi, padding)
            weight[0] = 1 - f
            weight[1] = f
            return
        }
        let a = -0.75
        let f1 = f + 1, f2 = 1 - f, f3 = 2 - f
        weight[0] = ((a * f1 - 5 * a) * f1 + 8 * a) * f1 - 4 * a
        weight[1] = ((a + 2) * f - (a + 3)) * f * f + 1
        weight[2] = ((a + 2) * f2 - (a + 3)) * f2 * f2 + 1
        weight[3] = ((a * f3 - 5 * a) * f3 + 8 * a) * f3 - 4 * a
        for k in 0..<4 { index[k] = pixel(base - 1 + k, size, lo, hi, padding) }
    }

    /// Pixel index `i` after padding; -1 when it reads zero.
    @inline(__always)
    static func pixel(_ i: Int, _ size: Int, _ lo: Double, _ hi: Double, _ padding: Padding) -> Int {
        if i >= 0 && i < size { return i }
        switch padding {
        case .zeros: return -1
        case .border: return i < 0 ? 0 : size - 1
        case .reflection:
            let j = Int(reflect(Double(i), lo, hi))  // truncates toward zero, like the reference
            return j < 0 ? 0 : (j >= size ? size - 1 : j)
        }
    }

    /// Reflects `x` by the nearer border until it lies in `[lo, hi]`.
    @inline(__always)
    static func reflect(_ x: Double, _ lo: Double, _ hi: Double) -> Double {
        let range = hi - lo
        if range <= 0 { return lo }
        if x < lo {
            let dx = lo - x
            let k = perch_floor(dx / range)
            let rem = dx - k * range
            return perch_fmod(k, 2) == 0 ? lo + rem : hi - rem
        }
        if x > hi {
            let dx = x - hi
            let k = perch_floor(dx / range)
            let rem = dx - k * range
            return perch_fmod(k, 2) == 0 ? hi - rem : lo + rem
        }
        return x
    }
}

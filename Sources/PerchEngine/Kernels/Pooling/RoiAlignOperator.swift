import CPerchShims
import PerchGraph

/// RoiAlign (opsets 10, 16, 22): for each region `rois[r] = (x1, y1, x2, y2)` of image
/// `batch_indices[r]`, an `output_height × output_width` grid of bins, each the average (or
/// max) of `sampling_ratio²` bilinear samples (adaptive `ceil(roi_size / bins)` when 0).
/// Follows the ONNX reference: `half_pixel` (opset 16 default) shifts coordinates by −0.5 and
/// lets regions be smaller than a pixel; `output_half_pixel` (opset 10's behaviour) does not
/// shift and makes regions at least 1×1. Samples outside `[-1, size]` contribute zero; max mode
/// takes the largest weighted corner of each sample, like ONNX Runtime.
///
/// Regions and indices are read at run time; an out-of-range batch index gives a zero output.
public enum RoiAlignOperator {
    /// The two pixels a sample at `v` (already within `[-1, size]`) interpolates between along one
    /// axis, and its distance from the lower one: clamped at 0, and at the last pixel (both
    /// corners that pixel, distance 0) — the same rule for y and x.
    @inline(__always)
    static func bilinearCorner(_ v: Double, size: Int) -> (low: Int, high: Int, frac: Double) {
        let c = v > 0 ? v : 0
        let low = Int(c)
        if low >= size - 1 { return (size - 1, size - 1, 0) }
        return (low, low + 1, c - Double(low))
    }

    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let rois = try ctx.input(1)
        let bi = try ctx.input(2)
        guard x.rank == 4 else { throw ctx.invalid("X must be [N, C, H, W], got " + shapeText(x.shape)) }
        guard rois.rank == 2 && rois.shape[1] == 4 && bi.rank == 1 && bi.shape[0] == rois.shape[0] else {
            throw ctx.invalid("rois " + shapeText(rois.shape) + " and batch_indices " + shapeText(bi.shape)
                + " must be [num_rois, 4] and [num_rois]")
        }
        guard x.dtype.isFloatingPoint && rois.dtype.isFloatingPoint else { throw ctx.unsupported("types " + x.dtype.name + " and " + rois.dtype.name) }
        guard bi.dtype == .i64 || bi.dtype == .i32 else { throw ctx.invalid("batch_indices must be int64, got " + bi.dtype.name) }
        let opset = ctx.attributes.int("_opset", default: 16)
        let ctm = ctx.attributes.string("coordinate_transformation_mode", default: opset >= 16 ? "half_pixel" : "output_half_pixel")
        guard ctm == "half_pixel" || ctm == "output_half_pixel" else {
            throw ctx.invalid("coordinate_transformation_mode must be half_pixel or output_half_pixel, got \"" + ctm + "\"")
        }
        let halfPixel = ctm == "half_pixel"
        let modeName = ctx.attributes.string("mode", default: "avg")
        guard modeName == "avg" || modeName == "max" else { throw ctx.invalid("mode must be avg or max, got \"" + modeName + "\"") }
        let isMax = modeName == "max"
        let oh = ctx.attributes.int("output_height", default: 1)
        let ow = ctx.attributes.int("output_width", default: 1)
        let ratio = ctx.attributes.int("sampling_ratio", default: 0)
        let scale = Double(ctx.attributes.float("spatial_scale", default: 1))
        guard oh >= 1 && ow >= 1 && ratio >= 0 else { throw ctx.invalid("output_height/width must be positive and sampling_ratio non-negative") }
        let batches = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        let count = rois.shape[0]
        let is64 = bi.dtype == .i64
        let isF32 = x.dtype == .f32
        let out = TensorDesc(dtype: x.dtype, shape: [count, channels, oh, ow])
        return PreparedOp(outputs: [out]) { args in
            let xv = args.input(0), rv = args.input(1), yv = args.output(0)
            let px = xv.pointer(as: Float.self), py = yv.pointer(as: Float.self)
            let idx = UnsafeRawPointer(args.input(2).data)
            let plane = height * width
            let bins = oh * ow
            for n in 0..<count {
                let shift = halfPixel ? 0.5 : 0.0
                let x1 = rv.double(n * 4) * scale - shift, y1 = rv.double(n * 4 + 1) * scale - shift
                let x2 = rv.double(n * 4 + 2) * scale - shift, y2 = rv.double(n * 4 + 3) * scale - shift
                var rw = x2 - x1, rh = y2 - y1
                if !halfPixel {
                    rw = rw > 1 ? rw : 1
                    rh = rh > 1 ? rh : 1
                }
                let binH = rh / Double(oh), binW = rw / Double(ow)
                let gh = ratio > 0 ? ratio : Int(perch_ceil(rh / Double(oh)).clampedCount)
                let gw = ratio > 0 ? ratio : Int(perch_ceil(rw / Double(ow)).clampedCount)
                let samples = Swift.max(gh * gw, 1)
                let b = DataMovementOperator.loadIndex(idx, is64: is64, n)
                let outBase = n * channels * bins
                if b < 0 || b >= batches {
                    for i in 0..<(channels * bins) { yv.setDouble(outBase + i, 0) }
                    continue
                }
                for ph in 0..<oh {
                    for pw in 0..<ow {
                        let bin = ph * ow + pw
                        for c in 0..<channels { yv.setDouble(outBase + c * bins + bin, 0) }
                        var first = true
                        for iy in 0..<gh {
                            let yy = y1 + Double(ph) * binH + (Double(iy) + 0.5) * binH / Double(gh)
                            for ix in 0..<gw {
                                let xx = x1 + Double(pw) * binW + (Double(ix) + 0.5) * binW / Double(gw)
                                var p1 = 0, p2 = 0, p3 = 0, p4 = 0
                                var w1 = 0.0, w2 = 0.0, w3 = 0.0, w4 = 0.0
                                if !(yy < -1 || yy > Double(height) || xx < -1 || xx > Double(width)) {
                                    let (yLow, yHigh, ly) = Self.bilinearCorner(yy, size: height)
                                    let (xLow, xHigh, lx) = Self.bilinearCorner(xx, size: width)
                                    let hy = 1 - ly, hx = 1 - lx
                                    w1 = hy * hx
                                    w2 = hy * lx
                                    w3 = ly * hx
                                    w4 = ly * lx
                                    p1 = yLow * width + xLow
                                    p2 = yLow * width + xHigh
                                    p3 = yHigh * width + xLow
                                    p4 = yHigh * width + xHigh
                                }
                                if isF32 {
                                    // Direct loads (Mask R-CNN heads run ~10⁸ of them).
                                    let fw1 = Float(w1), fw2 = Float(w2), fw3 = Float(w3), fw4 = Float(w4)
                                    for c in 0..<channels {
                                        let src = px + (b * channels + c) * plane
                                        let o = outBase + c * bins + bin
                                        let v1 = fw1 * src[p1], v2 = fw2 * src[p2], v3 = fw3 * src[p3], v4 = fw4 * src[p4]
                                        if isMax {
                                            let m = Swift.max(Swift.max(v1, v2), Swift.max(v3, v4))
                                            py[o] = first ? m : Swift.max(py[o], m)
                                        } else {
                                            py[o] += v1 + v2 + v3 + v4
                                        }
                                    }
                                    first = false
                                    continue
                                }
                                for c in 0..<channels {
                                    let base = (b * channels + c) * plane
                                    let o = outBase + c * bins + bin
                                    let v1 = w1 * xv.double(base + p1), v2 = w2 * xv.double(base + p2)
                                    let v3 = w3 * xv.double(base + p3), v4 = w4 * xv.double(base + p4)
                                    if isMax {
                                        let m = Swift.max(Swift.max(v1, v2), Swift.max(v3, v4))
                                        yv.setDouble(o, first ? m : Swift.max(yv.double(o), m))
                                    } else {
                                        yv.setDouble(o, yv.double(o) + v1 + v2 + v3 + v4)
                                    }
                                }
                                first = false
                            }
                        }
                        if !isMax {
                            for c in 0..<channels {
                                let o = outBase + c * bins + bin
                                yv.setDouble(o, yv.double(o) / Double(samples))
                            }
                        }
                    }
                }
            }
        }
    }
}

fileprivate extension Double {
    /// A non-negative sample count from a ceiling (NaN and negatives give 0, huge values a cap).
    var clampedCount: Double { self > 0 ? (self < 1e6 ? self : 1e6) : 0 }
}

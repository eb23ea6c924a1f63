import CPerchShims
import PerchGraph

/// DeformConv (opset 19, 2-D): a convolution whose taps are moved by learned per-position
/// offsets (and optionally scaled by a mask) — DCN layers of detectors. Inputs X [N, C, H, W],
/// W [OC, C/group, kH, kW], offset [N, offset_group·kH·kW·2, oH, oW] ((dy, dx) per tap), B [OC]
/// and mask [N, offset_group·kH·kW, oH, oW], both optional. Each tap reads X bilinearly at
/// `(oh·stride − pad + kh·dilation + dy, …)`, neighbors outside the image reading zero (ONNX's
/// reference: GridSample with align_corners = 1 and zero padding).
///
/// fp32 samples the taps of a chunk of output positions into scratch and multiplies them with
/// the weights by `sgemm`; other types take, per output position, dot products in Double. The
/// kernels do not allocate.
public enum DeformConvOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let w = try ctx.input(1)
        let off = try ctx.input(2)
        guard x.rank == 4 && w.rank == 4 && off.rank == 4 else {
            throw ctx.unsupported("X, W and offset of rank " + String(x.rank) + ", " + String(w.rank) + ", " + String(off.rank) + " (2-D DeformConv is implemented)")
        }
        guard x.dtype.isFloatingPoint && w.dtype.isFloatingPoint && off.dtype.isFloatingPoint else { throw ctx.unsupported("type " + x.dtype.name) }
        let group = ctx.attributes.int("group", default: 1)
        let offsetGroup = ctx.attributes.int("offset_group", default: 1)
        let n = x.shape[0], ic = x.shape[1], ih = x.shape[2], iw = x.shape[3]
        let oc = w.shape[0], icg = w.shape[1]
        let kernel = ctx.attributes.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
        guard kernel.count == 2 && kernel[0] == w.shape[2] && kernel[1] == w.shape[3] else {
            throw ctx.invalid("kernel_shape must match W's " + shapeText(Array(w.shape[2...])))
        }
        guard group >= 1 && offsetGroup >= 1 && ic == icg * group && oc % group == 0 && ic % offsetGroup == 0 else {
            throw ctx.invalid("channels (X " + String(ic) + ", W " + shapeText(w.shape) + ") do not fit group " + String(group)
                + " and offset_group " + String(offsetGroup))
        }
        var window = try WindowAttributes(ctx, rank: 2, kernel: kernel)
        let outSpatial = try window.resolveOutput(ctx, input: [ih, iw])
        let oh = outSpatial[0], ow = outSpatial[1]
        let kh = kernel[0], kw = kernel[1], taps = kh * kw
        guard off.shape == [n, offsetGroup * taps * 2, oh, ow] else {
            throw ctx.invalid("offset " + shapeText(off.shape) + " must be " + shapeText([n, offsetGroup * taps * 2, oh, ow]))
        }
        let hasBias = ctx.has(3), hasMask = ctx.has(4)
        if hasBias {
            let b = try ctx.input(3)
            guard b.count == oc else { throw ctx.invalid("B must have " + String(oc) + " elements") }
        }
        if hasMask {
            let m = try ctx.input(4)
            guard m.shape == [n, offsetGroup * taps, oh, ow] else {
                throw ctx.invalid("mask " + shapeText(m.shape) + " must be " + shapeText([n, offsetGroup * taps, oh, ow]))
            }
        }
        let sh = window.strides[0], sw = window.strides[1], dh = window.dilations[0], dw = window.dilations[1]
        let ph = window.pads[0], pw = window.pads[1]
        let icPerOffsetGroup = ic / offsetGroup, ocg = oc / group
        let outPlane = oh * ow
        let out = TensorDesc(dtype: x.dtype, shape: [n, oc, oh, ow])
        var allF32 = x.dtype == .f32 && w.dtype == .f32 && off.dtype == .f32
        if hasBias {
            let d = try ctx.input(3)
            allF32 = allF32 && d.dtype == .f32
        }
        if hasMask {
            let d = try ctx.input(4)
            allF32 = allF32 && d.dtype == .f32
        }
        if allF32 && outPlane > 0 {
            // fp32: per group and chunk of output positions, the sampled taps (im2col of the
            // deformed positions) go to scratch and one sgemm with the group's weights writes the
            // output rows (bias as sgemm's starting value).
            let chunk = Swift.min(outPlane, 256)
            let k = icg * taps
            let colCount = k * chunk
            let workspace = sgemmWorkspaceCount(m: ocg, n: chunk, k: k)
            return PreparedOp(outputs: [out], scratchBytes: (colCount + workspace) * 4) { args in
                let px = UnsafePointer(args.input(0).pointer(as: Float.self))
                let weights = UnsafePointer(args.input(1).pointer(as: Float.self))
                let po = UnsafePointer(args.input(2).pointer(as: Float.self))
                let pb: UnsafePointer<Float>? = hasBias ? UnsafePointer(args.input(3).pointer(as: Float.self)) : nil
                let pm: UnsafePointer<Float>? = hasMask ? UnsafePointer(args.input(4).pointer(as: Float.self)) : nil
                let py = args.output(0).pointer(as: Float.self)
                let col = args.scratch!.assumingMemoryBound(to: Float.self)
                let ws = col + colCount
                for b in 0..<n {
                    for g in 0..<group {
                        var start = 0
                        while start < outPlane {
                            let cols = Swift.min(chunk, outPlane - start)
                            for kc in 0..<icg {
                                let c = g * icg + kc
                                let og = c / icPerOffsetGroup
                                let plane = px + (b * ic + c) * ih * iw
                                for t in 0..<taps {
                                    let offBase = ((b * offsetGroup + og) * taps + t) * 2
                                    let dy = po + offBase * outPlane, dx = po + (offBase + 1) * outPlane
                                    let maskRow = pm.map { $0 + ((b * offsetGroup + og) * taps + t) * outPlane }
                                    let dst = col + (kc * taps + t) * chunk
                                    for q in 0..<cols {
                                        let pos = start + q
                                        let i = pos / ow, j = pos % ow
                                        let baseY = i * sh - ph + (t / kw) * dh
                                        let baseX = j * sw - pw + (t % kw) * dw
                                        let y = Float(baseY) + dy[pos]
                                        let x = Float(baseX) + dx[pos]
                                        var v = bilinearF32(plane, ih, iw, y, x)
                                        if let maskRow { v *= maskRow[pos] }
                                        dst[q] = v
                                    }
                                }
                            }
                            sgemm(m: ocg, n: cols, k: k, a: weights + g * ocg * k, aRowStride: k, aColStride: 1,
                                  b: col, bRowStride: chunk, bColStride: 1,
                                  c: py + (b * oc + g * ocg) * outPlane + start, ldc: outPlane, accumulate: false,
                                  workspace: ws, bias: pb.map { $0 + g * ocg })
                            start += cols
                        }
                    }
                }
            }
        }
        return PreparedOp(outputs: [out], scratchBytes: ic * taps * 8) { args in
            let xv = args.input(0), wv = args.input(1), ov = args.input(2), yv = args.output(0)
            let col = args.scratch!.assumingMemoryBound(to: Double.self)
            for b in 0..<n {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let pos = i * ow + j
                        for c in 0..<ic {
                            let g = c / icPerOffsetGroup
                            let plane = (b * ic + c) * ih * iw
                            for t in 0..<taps {
                                let offBase = ((b * offsetGroup + g) * taps + t) * 2
                                let y = Double(i * sh - ph + (t / kw) * dh) + ov.double(offBase * outPlane + pos)
                                let x = Double(j * sw - pw + (t % kw) * dw) + ov.double((offBase + 1) * outPlane + pos)
                                var v = bilinear(xv, plane, ih, iw, y, x)
                                if hasMask { v *= args.input(4).double(((b * offsetGroup + g) * taps + t) * outPlane + pos) }
                                col[c * taps + t] = v
                            }
                        }
                        for o in 0..<oc {
                            var acc = hasBias ? args.input(3).double(o) : 0
                            let first = (o / ocg) * icg
                            for k in 0..<icg {
                                let wBase = (o * icg + k) * taps
                                let cBase = (first + k) * taps
                                for t in 0..<taps { acc += wv.double(wBase + t) * col[cBase + t] }
                            }
                            yv.setDouble((b * oc + o) * outPlane + pos, acc)
                        }
                    }
                }
            }
        }
    }

    /// `bilinear` on an fp32 plane.
    @inline(__always)
    static func bilinearF32(_ p: UnsafePointer<Float>, _ h: Int, _ w: Int, _ y: Float, _ x: Float) -> Float {
        if !(y > -1 && y < Float(h) && x > -1 && x < Float(w)) { return 0 }
        let y0 = Int(perch_floorf(y)), x0 = Int(perch_floorf(x))
        let fy = y - Float(y0), fx = x - Float(x0)
        let top = y0 >= 0, bottom = y0 + 1 < h, left = x0 >= 0, right = x0 + 1 < w
        var v: Float = 0
        if top && left { v += (1 - fy) * (1 - fx) * p[y0 * w + x0] }
        if top && right { v += (1 - fy) * fx * p[y0 * w + x0 + 1] }
        if bottom && left { v += fy * (1 - fx) * p[(y0 + 1) * w + x0] }
        if bottom && right { v += fy * fx * p[(y0 + 1) * w + x0 + 1] }
        return v
    }

    /// X's plane at (y, x), bilinear, with neighbors outside the image reading zero.
    @inline(__always)
    static func bilinear(_ xv: TensorView, _ plane: Int, _ h: Int, _ w: Int, _ y: Double, _ x: Double) -> Double {
        if !(y > -1 && y < Double(h) && x > -1 && x < Double(w)) { return 0 }
        let y0 = Int(perch_floor(y)), x0 = Int(perch_floor(x))
        let fy = y - Double(y0), fx = x - Double(x0)
        let top = y0 >= 0, bottom = y0 + 1 < h, left = x0 >= 0, right = x0 + 1 < w
        var v = 0.0
        if top && left { v += (1 - fy) * (1 - fx) * xv.double(plane + y0 * w + x0) }
        if top && right { v += (1 - fy) * fx * xv.double(plane + y0 * w + x0 + 1) }
        if bottom && left { v += fy * (1 - fx) * xv.double(plane + (y0 + 1) * w + x0) }
        if bottom && right { v += fy * fx * xv.double(plane + (y0 + 1) * w + x0 + 1) }
        return v
    }
}

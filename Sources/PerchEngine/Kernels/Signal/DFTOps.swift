import CPerchShims
import PerchGraph

/// DFT (opsets 17–20) and STFT (opset 17): discrete Fourier transforms of audio front-ends.
/// Signals are real (`[..., 1]`) or complex (`[..., 2]`: real, imaginary); results are complex
/// `[..., 2]`. Transforms are direct sums over a twiddle table computed at prepare (O(n²) per
/// line, in Double), which is fine for the frame sizes of audio models' preprocessing.
public enum DFTOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        ctx.node.op == .stft ? try prepareSTFT(ctx) : try prepareDFT(ctx)
    }

    /// `cos` and `sin` of `2πj/n` for `j` in `0..<n`, interleaved.
    static func twiddles(_ n: Int) -> [Double] {
        var t = [Double](repeating: 0, count: 2 * n)
        for j in 0..<n {
            let a = 2 * Double.pi * Double(j) / Double(n)
            t[2 * j] = perch_cos(a)
            t[2 * j + 1] = perch_sin(a)
        }
        return t
    }

    /// One scalar integer input that must be known before running (else the node runs in a
    /// value-dependent stage).
    static func scalar(_ ctx: OpContext, _ i: Int, _ what: String) throws(EngineError) -> Int {
        let v = try IndexingOperator.dataDependent(ctx, input: i).int64s
        guard v.count == 1 else { throw ctx.invalid(what + " must be a scalar") }
        return Int(clamping: v[0])
    }

    /// DFT along `axis` (attribute, default 1, until opset 19; input 2, default −2, from opset
    /// 20), zero-padded or truncated to `dft_length` (input 1, default the axis' size).
    /// `inverse = 1` uses `e^{+2πi…}` and divides by the length; `onesided = 1` keeps the first
    /// `length / 2 + 1` bins.
    static func prepareDFT(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        let rank = x.rank
        guard rank >= 2 && (x.shape[rank - 1] == 1 || x.shape[rank - 1] == 2) else {
            throw ctx.invalid("input must end in a dimension of 1 (real) or 2 (complex), got " + shapeText(x.shape))
        }
        let opset = ctx.attributes.int("_opset", default: 20)
        var rawAxis = opset >= 20 ? -2 : ctx.attributes.int("axis", default: 1)
        if opset >= 20 && ctx.has(2) { rawAxis = try scalar(ctx, 2, "axis") }
        let a = rawAxis < 0 ? rawAxis + rank : rawAxis
        guard a >= 0 && a < rank - 1 else { throw ctx.invalid("axis " + String(rawAxis) + " must name a signal dimension of " + shapeText(x.shape)) }
        let len = x.shape[a]
        let n = ctx.has(1) ? try scalar(ctx, 1, "dft_length") : len
        guard n >= 1 else { throw ctx.invalid("dft_length must be positive") }
        let inverse = ctx.attributes.int("inverse", default: 0) != 0
        let onesided = ctx.attributes.int("onesided", default: 0) != 0
        let bins = onesided ? n / 2 + 1 : n
        let c = x.shape[rank - 1]
        var outShape = x.shape
        outShape[a] = bins
        outShape[rank - 1] = 2
        let outer = product(x.shape[0..<a]), inner = product(x.shape[(a + 1)..<(rank - 1)])
        let table = twiddles(n)
        let taps = Swift.min(n, len)
        let sign = inverse ? 1.0 : -1.0
        let scale = inverse ? 1 / Double(n) : 1
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: outShape)]) { args in
            let xv = args.input(0), yv = args.output(0)
            for o in 0..<outer {
                for j in 0..<inner {
                    for k in 0..<bins {
                        var re = 0.0, im = 0.0
                        for t in 0..<taps {
                            let at = ((o * len + t) * inner + j) * c
                            let xr = xv.double(at), xi = c == 2 ? xv.double(at + 1) : 0
                            let w = (k * t) % n
                            let cr = table[2 * w], ci = sign * table[2 * w + 1]
                            re += xr * cr - xi * ci
                            im += xr * ci + xi * cr
                        }
                        let to = ((o * bins + k) * inner + j) * 2
                        yv.setDouble(to, re * scale)
                        yv.setDouble(to + 1, im * scale)
                    }
                }
            }
        }
    }

    /// STFT(signal [B, L, 1|2], frame_step, window?, frame_length?): frames of `frame_length`
    /// (the window's length when a window is given) every `frame_step` samples, each multiplied
    /// by the window and transformed; `onesided = 1` (default) keeps `frame_length / 2 + 1` bins
    /// of a real signal. Output [B, frames, bins, 2]. The window is read at run time.
    static func prepareSTFT(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        guard x.rank == 3 && (x.shape[2] == 1 || x.shape[2] == 2) else {
            throw ctx.invalid("signal must be [batch, length, 1 or 2], got " + shapeText(x.shape))
        }
        let step = try scalar(ctx, 1, "frame_step")
        let hasWindow = ctx.has(2)
        var frameLength = 0
        if hasWindow {
            let w = try ctx.input(2)
            guard w.rank == 1 else { throw ctx.invalid("window must be 1-D, got " + shapeText(w.shape)) }
            frameLength = w.shape[0]
            if ctx.has(3) {
                guard try scalar(ctx, 3, "frame_length") == frameLength else { throw ctx.invalid("frame_length differs from the window's length") }
            }
        } else if ctx.has(3) {
            frameLength = try scalar(ctx, 3, "frame_length")
        } else {
            throw ctx.invalid("needs a window or a frame_length")
        }
        let batch = x.shape[0], length = x.shape[1], c = x.shape[2]
        guard step >= 1 && frameLength >= 1 && frameLength <= length else {
            throw ctx.invalid("frame_step must be positive and frame_length within the signal length " + String(length))
        }
        let frames = (length - frameLength) / step + 1
        let onesided = ctx.attributes.int("onesided", default: 1) != 0 && c == 1
        let n = frameLength
        let bins = onesided ? n / 2 + 1 : n
        let table = twiddles(n)
        return PreparedOp(outputs: [TensorDesc(dtype: x.dtype, shape: [batch, frames, bins, 2])]) { args in
            let xv = args.input(0), yv = args.output(0)
            for b in 0..<batch {
                for f in 0..<frames {
                    for k in 0..<bins {
                        var re = 0.0, im = 0.0
                        for t in 0..<n {
                            let at = (b * length + f * step + t) * c
                            let w = hasWindow ? args.input(2).double(t) : 1
                            let xr = xv.double(at) * w, xi = c == 2 ? xv.double(at + 1) * w : 0
                            let p = (k * t) % n
                            let cr = table[2 * p], ci = -table[2 * p + 1]
                            re += xr * cr - xi * ci
                            im += xr * ci + xi * cr
                        }
                        let to = ((b * frames + f) * bins + k) * 2
                        yv.setDouble(to, re)
                        yv.setDouble(to + 1, im)
                    }
                }
            }
        }
    }
}

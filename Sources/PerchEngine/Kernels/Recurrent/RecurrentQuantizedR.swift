import CPerchShims
import PerchGraph

/// An LSTM's R kept in 8 bits, as ONNX Runtime's `DynamicQuantizeLSTM` gives it: the importer
/// passes R's int8 (or uint8) codes as input 2 ([dirs, 4·hidden, hidden]) and their scale and
/// zero point as Perch-only inputs 8 and 9 (per direction, [dirs], or per gate column,
/// [dirs, 4·hidden]). Each step's H·Rᵀ then reads the codes (`perch_sgemv_i8w`) instead of a
/// float copy four times their size: a 512-wide LSTM's R is 1 MB a direction in int8, inside L2,
/// and 4 MB in float32, which every step streamed from L3.
///
/// The products are float32 sums of h·code, scaled per column, so the result differs from the
/// dequantized float LSTM only by float rounding (the activations are not quantized, unlike
/// ONNX Runtime's kernel).
struct RecurrentQuantizedR {
    /// Per direction, the codes as int8 in `perch_sgemv_i8w_pack`'s panels (uint8 codes shifted by 128).
    var packed = [[Int8]]()
    /// Per direction, 4·hidden scales and (when any is non-zero) zero points, as floats.
    var scales = [[Float]]()
    var zeros: [[Float]]?

    /// Whether node `ctx` carries a quantized R (inputs 8 and 9 beside 8-bit codes in input 2).
    static func present(_ ctx: OpContext) -> Bool {
        guard ctx.has(8), ctx.has(9), let r = try? ctx.input(2) else { return false }
        return r.dtype == .i8 || r.dtype == .u8
    }

    init(_ ctx: OpContext, _ shape: RecurrentShape) throws(EngineError) {
        guard let codes = ctx.value(2), let scaleT = ctx.value(8), let zeroT = ctx.value(9) else {
            throw ctx.unsupported("a quantized R, scale or zero point known only at run time")
        }
        let n = shape.gateColumns, k = shape.hidden, dirs = shape.dirs
        let perColumn = scaleT.shape == [dirs, n]
        guard perColumn || scaleT.shape == [dirs], zeroT.shape == scaleT.shape,
              zeroT.dtype == codes.dtype, scaleT.dtype == .f32 else {
            throw ctx.invalid("R's scale and zero point must be float32 and " + codes.dtype.name + ", [dirs] or [dirs, 4·hidden]")
        }
        let shift: Int32 = codes.dtype == .u8 ? 128 : 0
        let s = scaleT.floats, z = zeroT.int64s
        var anyZero = false
        for d in 0..<dirs {
            var sd = [Float](repeating: 0, count: n), zd = [Float](repeating: 0, count: n)
            for j in 0..<n {
                let i = perColumn ? d * n + j : d
                sd[j] = s[i]
                zd[j] = Float(Int32(truncatingIfNeeded: z[i]) - shift)
                if zd[j] != 0 { anyZero = true }
            }
            scales.append(sd)
            if zeros == nil { zeros = [] }
            zeros!.append(zd)
        }
        if !anyZero { zeros = nil }
        let panels = (n + 15) / 16
        for d in 0..<dirs {
            var q = [Int8](repeating: 0, count: n * k)
            if codes.dtype == .u8 {
                codes.withUnsafeBufferPointer(of: UInt8.self) { src in
                    for i in 0..<(n * k) { q[i] = Int8(truncatingIfNeeded: Int32(src[d * n * k + i]) - 128) }
                }
            } else {
                codes.withUnsafeBufferPointer(of: Int8.self) { src in
                    for i in 0..<(n * k) { q[i] = src[d * n * k + i] }
                }
            }
            var p = [Int8](repeating: 0, count: panels * k * 16)
            q.withUnsafeBufferPointer { qp in
                p.withUnsafeMutableBufferPointer { dst in
                    // R_d is [4·hidden, hidden]: column j of the product is row j of R_d.
                    perch_sgemv_i8w_pack(k, n, qp.baseAddress!, k, 1, dst.baseAddress!)
                }
            }
            packed.append(p)
        }
    }

    /// c[b, 0..<4·hidden] = a[b]·R_dᵀ for the `batch` rows of `a` ([batch, hidden]); c's row stride `ldc`.
    @inline(__always)
    func multiply(_ shape: RecurrentShape, direction d: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                  variant: Int32) {
        let k = shape.hidden, n = shape.gateColumns
        packed[d].withUnsafeBufferPointer { q in
            scales[d].withUnsafeBufferPointer { s in
                for b in 0..<shape.batch {
                    let row = a + b * k
                    guard let zeros else {
                        perch_sgemv_i8w(variant, k, row, q.baseAddress!, n, s.baseAddress!, nil, 0, c + b * ldc)
                        continue
                    }
                    var sumA: Float = 0
                    for p in 0..<k { sumA += row[p] }
                    zeros[d].withUnsafeBufferPointer { z in
                        perch_sgemv_i8w(variant, k, row, q.baseAddress!, n, s.baseAddress!, z.baseAddress!, sumA, c + b * ldc)
                    }
                }
            }
        }
    }
}

import CPerchShims
import PerchGraph

/// InstanceNormalization: `y = scale[c] * (x - mean) / sqrt(var + epsilon) + B[c]`, mean and
/// (biased) variance over the spatial positions of each (n, c). Input `[N, C, D1, …]`.
public enum InstanceNormalizationOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let scale = try ctx.input(1)
        let bias = try ctx.input(2)
        guard x.dtype.isFloatingPoint else { throw ctx.unsupported("input type " + x.dtype.name) }
        guard x.rank >= 2 else { throw ctx.invalid("input must have rank >= 2, got " + String(x.rank)) }
        let channels = x.shape[1]
        guard scale.count == channels && bias.count == channels else {
            throw ctx.invalid("scale and B must have " + String(channels) + " elements, got " + String(scale.count) + " and " + String(bias.count))
        }
        let epsilon = Double(ctx.attributes.float("epsilon", default: 1e-5))
        let batch = x.shape[0]
        let spatial = product(x.shape[2...])
        if x.dtype == .f32 && scale.dtype == .f32 && bias.dtype == .f32 {
            let eps = Float(epsilon)
            return PreparedOp(outputs: [x]) { args in
                let px = args.input(0).pointer(as: Float.self)
                let ps = args.input(1).pointer(as: Float.self)
                let pb = args.input(2).pointer(as: Float.self)
                let py = args.output(0).pointer(as: Float.self)
                if spatial == 0 { return }
                let inv = 1 / Float(spatial)
                for nc in 0..<(batch * channels) {
                    let c = nc % channels
                    let src = px + nc * spatial
                    let dst = py + nc * spatial
                    var sum: Float = 0
                    for i in 0..<spatial { sum += src[i] }
                    let mean = sum * inv
                    var sq: Float = 0
                    for i in 0..<spatial {
                        let d = src[i] - mean
                        sq += d * d
                    }
                    let a = ps[c] / perch_sqrtf(sq * inv + eps)
                    let b = pb[c] - mean * a
                    for i in 0..<spatial { dst[i] = src[i] * a + b }
                }
            }
        }
        return PreparedOp(outputs: [x]) { args in
            let tx = args.input(0), ts = args.input(1), tb = args.input(2), ty = args.output(0)
            if spatial == 0 { return }
            for nc in 0..<(batch * channels) {
                let c = nc % channels
                let base = nc * spatial
                var sum = 0.0
                for i in 0..<spatial { sum += tx.double(base + i) }
                let mean = sum / Double(spatial)
                var sq = 0.0
                for i in 0..<spatial {
                    let d = tx.double(base + i) - mean
                    sq += d * d
                }
                let a = ts.double(c) / perch_sqrt(sq / Double(spatial) + epsilon)
                let b = tb.double(c) - mean * a
                for i in 0..<spatial { ty.setDouble(base + i, tx.double(base + i) * a + b) }
            }
        }
    }
}

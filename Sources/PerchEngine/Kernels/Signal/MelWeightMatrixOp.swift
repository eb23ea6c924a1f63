import CPerchShims
import PerchGraph

/// MelWeightMatrix (opset 17): the [dft_length / 2 + 1, num_mel_bins] matrix of triangular
/// filters that maps a onesided spectrum to mel bins, as ONNX's reference computes it: band
/// edges spaced evenly in mel (`2595·log10(1 + f/700)`) between `lower_edge_hertz` and
/// `upper_edge_hertz`, each converted to a spectrum bin by `floor((dft_length + 1)·f /
/// sample_rate)`. All inputs are scalars that must be known before running (else the node runs
/// in a value-dependent stage); the matrix is computed at prepare. `output_datatype` is an ONNX
/// type code (default 1, float).
public enum MelWeightMatrixOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        var v = [Double]()
        for i in 0..<5 {
            let t = try IndexingOperator.dataDependent(ctx, input: i).doubles
            guard t.count == 1 else { throw ctx.invalid("input " + String(i) + " must be a scalar") }
            v.append(t[0])
        }
        let mels = Int(v[0]), dftLength = Int(v[1]), sampleRate = v[2], lower = v[3], upper = v[4]
        guard mels >= 1 && mels < 1 << 20 && dftLength >= 1 && dftLength < 1 << 24 && sampleRate > 0 && lower >= 0 && upper > lower else {
            throw ctx.invalid("needs num_mel_bins ≥ 1, dft_length ≥ 1, sample_rate > 0 and 0 ≤ lower_edge_hertz < upper_edge_hertz")
        }
        let dtype = try CastOperator.dtype(onnx: ctx.attributes.int("output_datatype", default: 1), ctx)
        guard dtype.isFloatingPoint || dtype.isInteger else { throw ctx.unsupported("output type " + dtype.name) }
        let spectrum = dftLength / 2 + 1
        func mel(_ f: Double) -> Double { 2595 * perch_log(1 + f / 700) / perch_log(10) }
        let low = mel(lower), high = mel(upper)
        let step = (high - low) / Double(mels + 2)
        var edges = [Int]()
        for i in 0..<(mels + 2) {
            let hz = 700 * (perch_pow(10, (Double(i) * step + low) / 2595) - 1)
            edges.append(Int(perch_floor(Double(dftLength + 1) * hz / sampleRate)))
        }
        var matrix = [Double](repeating: 0, count: spectrum * mels)
        func set(_ j: Int, _ i: Int, _ value: Double) {
            if j >= 0 && j < spectrum { matrix[j * mels + i] = value }
        }
        for i in 0..<mels {
            let left = edges[i], center = edges[i + 1], right = edges[i + 2]
            if center == left {
                set(center, i, 1)
            } else if center > left {
                for j in left...center { set(j, i, Double(j - left) / Double(center - left)) }
            }
            if right > center {
                for j in center..<right { set(j, i, Double(right - j) / Double(right - center)) }
            }
        }
        return PreparedOp(outputs: [TensorDesc(dtype: dtype, shape: [spectrum, mels])]) { args in
            let y = args.output(0)
            for i in 0..<matrix.count { y.setDouble(i, matrix[i]) }
        }
    }
}

import CPerchShims
import PerchGraph

/// HannWindow, HammingWindow and BlackmanWindow (opset 17): a window of `size` (scalar input;
/// output shape depends on its value, so it must be known before running or the node runs in a
/// value-dependent stage). `periodic = 1` (default) divides by `size`, 0 by `size − 1`;
/// `output_datatype` is an ONNX type code (default 1, float). The values are computed at prepare.
public enum WindowOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let sizeValue = try IndexingOperator.dataDependent(ctx, input: 0).int64s
        guard sizeValue.count == 1 && sizeValue[0] >= 0 && sizeValue[0] < 1 << 31 else {
            throw ctx.invalid("size must be one non-negative integer")
        }
        let size = Int(sizeValue[0])
        let dtype = try CastOperator.dtype(onnx: ctx.attributes.int("output_datatype", default: 1), ctx)
        guard dtype.isFloatingPoint || dtype.isInteger else { throw ctx.unsupported("output type " + dtype.name) }
        let periodic = ctx.attributes.int("periodic", default: 1) != 0
        let denominator = Double(periodic ? size : size - 1)
        var values = [Double](repeating: 0, count: size)
        for i in 0..<size {
            let a = denominator > 0 ? 2 * Double.pi * Double(i) / denominator : 0
            switch ctx.node.op {
            case .hannWindow: values[i] = 0.5 - 0.5 * perch_cos(a)
            case .hammingWindow: values[i] = 25.0 / 46.0 - 21.0 / 46.0 * perch_cos(a)
            default: values[i] = 0.42 - 0.5 * perch_cos(a) + 0.08 * perch_cos(2 * a)
            }
        }
        return PreparedOp(outputs: [TensorDesc(dtype: dtype, shape: [size])]) { args in
            let y = args.output(0)
            for i in 0..<values.count { y.setDouble(i, values[i]) }
        }
    }
}

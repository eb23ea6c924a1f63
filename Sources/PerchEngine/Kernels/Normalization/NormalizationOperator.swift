import PerchGraph

/// Prepares the ops of the Normalization family (placeholder until its kernels land).
public enum NormalizationOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

import PerchGraph

/// Prepares the ops of the Cast family (placeholder until its kernels land).
public enum CastOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

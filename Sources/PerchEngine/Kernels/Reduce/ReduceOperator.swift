import PerchGraph

/// Prepares the ops of the Reduce family (placeholder until its kernels land).
public enum ReduceOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

import PerchGraph

/// Prepares the ops of the Pooling family (placeholder until its kernels land).
public enum PoolingOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

import PerchGraph

/// Prepares the ops of the Resize family (placeholder until its kernels land).
public enum ResizeOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

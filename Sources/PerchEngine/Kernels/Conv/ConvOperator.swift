import PerchGraph

/// Prepares the ops of the Conv family (placeholder until its kernels land).
public enum ConvOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

import PerchGraph

/// Prepares the ops of the Elementwise family (placeholder until its kernels land).
public enum ElementwiseOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

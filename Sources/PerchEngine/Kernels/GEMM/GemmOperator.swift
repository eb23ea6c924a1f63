import PerchGraph

/// Prepares the ops of the GEMM family (placeholder until its kernels land).
public enum GemmOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

import PerchGraph

/// Prepares the ops of the Activation family (placeholder until its kernels land).
public enum ActivationOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

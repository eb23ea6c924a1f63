import PerchGraph

/// Prepares the ops of the Softmax family (placeholder until its kernels land).
public enum SoftmaxOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

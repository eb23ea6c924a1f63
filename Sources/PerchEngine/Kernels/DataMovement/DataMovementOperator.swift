import PerchGraph

/// Prepares the ops of the DataMovement family (placeholder until its kernels land).
public enum DataMovementOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        throw ctx.unsupported("kernel not implemented yet")
    }
}

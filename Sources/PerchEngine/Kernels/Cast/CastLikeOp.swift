import PerchGraph

extension CastOperator {
    /// CastLike (opset 15): Cast input 0 to the element type of input 1 (whose values are not
    /// read), with Cast's rules and its `saturate` attribute.
    static func prepareCastLike(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let like = try ctx.input(1)
        var code = 0
        for c in 1...22 where DType(onnxElementType: c) == like.dtype {
            code = c
            break
        }
        guard code != 0 else { throw ctx.unsupported("target type " + like.dtype.name) }
        var node = ctx.node
        node.attributes["to"] = .int(code)
        let provider = ctx.valueProvider
        var cast = OpContext(node: node, inputs: [ctx.inputs[0]]) { i in provider(i) }
        cast.threads = ctx.threads
        return try prepareCast(cast)
    }
}

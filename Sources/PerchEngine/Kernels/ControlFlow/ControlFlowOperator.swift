import PerchGraph

/// If, Loop and Scan: nodes that run a body graph (see `BodySession` for how bodies are planned).
enum ControlFlowOperator {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .if: return try prepareIf(ctx)
        case .scan: return try prepareScan(ctx)
        default: return try prepareLoop(ctx)
        }
    }

    /// If: the condition must be known while planning (it usually comes from shapes); a
    /// condition computed from data defers the node to a `ValueDependentStage`, where it is.
    static func prepareIf(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let node = ctx.node
        guard let thenBranch = ctx.attributes.graph("then_branch"), let elseBranch = ctx.attributes.graph("else_branch") else {
            throw ctx.invalid("needs then_branch and else_branch graphs")
        }
        _ = try ctx.input(0)
        guard let cond = ctx.value(0) else { throw waitFor(ctx, 0) }
        guard cond.count == 1 else { throw ctx.invalid("the condition must hold one element, not " + shapeText(cond.shape)) }
        let branch = cond.doubles[0] != 0 ? thenBranch : elseBranch
        guard branch.outputs.count >= node.outputs.count else {
            throw ctx.invalid("the branch has " + String(branch.outputs.count) + " outputs, the node " + String(node.outputs.count))
        }
        let captured = try CapturedInputs(ctx)
        let inputs = captured.runtime.map { (name: $0.name, desc: $0.desc) }
        let body = try BodySession(node: node, body: branch, inputs: inputs, known: captured.known)
        if inputs.isEmpty {
            return constantResult(Array(try body.run([:], node: node).prefix(node.outputs.count)))
        }
        guard try body.planStatically(inputs, node: node) else { throw waitFor(ctx, captured.runtime[0].index) }
        let outputNames = branch.outputs.prefix(node.outputs.count).map { $0.name }
        let feeds = captured.runtime.map { (index: $0.index, view: body.inputView($0.name)) }
        let sources = outputNames.map { body.outputSource($0) }
        return PreparedOp(outputs: outputNames.map { body.outputDesc($0) }) { args in
            for f in feeds { f.view.data.copyMemory(from: args.input(f.index).data, byteCount: f.view.desc.byteCount) }
            body.session.runSteps()
            for (i, source) in sources.enumerated() { source.copy(to: args.outputs[i].data) }
        }
    }
}

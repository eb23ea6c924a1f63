import PerchGraph

/// Loop (opset 11+ semantics; 1–10 differ only in types): inputs `M` (trip count, optional),
/// `cond` (optional), the initial carried values, then the captured outer values; the body maps
/// `(iteration, cond, carried…)` to `(cond, carried…, scan…)`. Outputs: the final carried values,
/// then each scan output stacked over the iterations.
extension ControlFlowOperator {
    /// The most iterations a loop without a trip count may run before it is stopped with an
    /// error (a condition that never turns false would otherwise hang the device).
    static let maxLoopIterations = 1 << 20

    struct LoopShape {
        let body: Graph
        let carried: Int
        let scans: Int

        init(_ ctx: OpContext) throws(EngineError) {
            guard let body = ctx.attributes.graph("body") else { throw ctx.invalid("needs a body graph") }
            self.body = body
            carried = CapturedInputs.start(ctx.node) - 2
            guard carried >= 0, body.inputs.count == 2 + carried, body.outputs.count >= 1 + carried else {
                throw ctx.invalid("the body takes " + String(body.inputs.count) + " inputs and gives " + String(body.outputs.count)
                    + " outputs for " + String(Swift.max(0, carried)) + " carried values: it must take 2 + carried and give 1 + carried + scan outputs")
            }
            scans = body.outputs.count - 1 - carried
            guard ctx.node.outputs.count <= carried + scans else { throw ctx.invalid("more outputs than carried and scan values") }
        }
    }

    static func prepareLoop(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let shape = try LoopShape(ctx)
        let body = shape.body
        var tripCount: Int? = nil
        if ctx.has(0) {
            guard let m = ctx.value(0) else { throw waitFor(ctx, 0) }
            guard m.count == 1 else { throw ctx.invalid("M must hold one element") }
            tripCount = Int(clamping: Swift.max(0, m.int64s[0]))
        }
        var cond = true
        if ctx.has(1) {
            guard let c = ctx.value(1) else { throw waitFor(ctx, 1) }
            guard c.count == 1 else { throw ctx.invalid("cond must hold one element") }
            cond = c.doubles[0] != 0
        }
        let captured = try CapturedInputs(ctx)
        var carriedValues = [Tensor]()
        for k in 0..<shape.carried {
            if let v = ctx.value(2 + k) { carriedValues.append(v) } else { break }
        }
        if carriedValues.count == shape.carried && captured.runtime.isEmpty {
            return constantResult(try runLoopEagerly(ctx, shape, tripCount: tripCount, cond: cond, carried: carriedValues, known: captured.known))
        }
        // Planned once: only when the trip count is fixed (the body passes its condition
        // through) and the carried values keep their shapes.
        let firstUnknown = carriedValues.count < shape.carried ? 2 + carriedValues.count : captured.runtime[0].index
        guard var trips = tripCount, bodyKeepsCondition(body) else { throw waitFor(ctx, firstUnknown) }
        if !cond { trips = 0 }
        var inputs: [(name: String, desc: TensorDesc)] = [
            (body.inputs[0].name, TensorDesc(dtype: .i64, shape: [])),
            (body.inputs[1].name, TensorDesc(dtype: .bool, shape: [])),
        ]
        for k in 0..<shape.carried { inputs.append((body.inputs[2 + k].name, try ctx.input(2 + k))) }
        for c in captured.runtime { inputs.append((c.name, c.desc)) }
        let session = try BodySession(node: ctx.node, body: body, inputs: inputs, known: captured.known)
        guard try session.planStatically(inputs, node: ctx.node) else { throw waitFor(ctx, firstUnknown) }
        var outputs = [TensorDesc]()
        for k in 0..<shape.carried {
            let d = session.outputDesc(body.outputs[1 + k].name)
            guard d == inputs[2 + k].desc else { throw waitFor(ctx, firstUnknown) }
            outputs.append(d)
        }
        var scanBytes = [Int]()
        for s in 0..<shape.scans {
            let d = session.outputDesc(body.outputs[1 + shape.carried + s].name)
            outputs.append(TensorDesc(dtype: d.dtype, shape: [trips] + d.shape))
            scanBytes.append(d.byteCount)
        }
        outputs = Array(outputs.prefix(ctx.node.outputs.count))

        let iterView = session.inputView(body.inputs[0].name)
        let condView = session.inputView(body.inputs[1].name)
        let carriedIn = (0..<shape.carried).map { session.inputView(body.inputs[2 + $0].name) }
        let carriedOut = (0..<shape.carried).map { session.outputSource(body.outputs[1 + $0].name) }
        let scanOut = (0..<shape.scans).map { session.outputSource(body.outputs[1 + shape.carried + $0].name) }
        let runtimeCaptures = captured.runtime.map { (index: $0.index, view: session.inputView($0.name)) }
        let carriedCount = shape.carried
        return PreparedOp(outputs: outputs) { args in
            for c in runtimeCaptures { c.view.data.copyMemory(from: args.input(c.index).data, byteCount: c.view.desc.byteCount) }
            for k in 0..<carriedCount {
                carriedIn[k].data.copyMemory(from: args.input(2 + k).data, byteCount: carriedIn[k].desc.byteCount)
            }
            for i in 0..<trips {
                iterView.pointer(as: Int64.self).pointee = Int64(i)
                condView.pointer(as: UInt8.self).pointee = 1
                if i > 0 {
                    for k in 0..<carriedCount { carriedOut[k].copy(to: carriedIn[k].data) }
                }
                session.session.runSteps()
                for s in 0..<scanOut.count where carriedCount + s < args.outputs.count {
                    scanOut[s].copy(to: args.outputs[carriedCount + s].data + i * scanBytes[s])
                }
            }
            for k in 0..<Swift.min(carriedCount, args.outputs.count) {
                if trips == 0 {
                    args.outputs[k].data.copyMemory(from: args.input(2 + k).data, byteCount: args.outputs[k].desc.byteCount)
                } else {
                    carriedOut[k].copy(to: args.outputs[k].data)
                }
            }
        }
    }

    /// True when the body's condition output is its condition input (passed through directly
    /// or by Identity) or the constant true: then the loop runs exactly M times.
    static func bodyKeepsCondition(_ body: Graph) -> Bool {
        let condIn = body.inputs[1].name
        var name = body.outputs[0].name
        for _ in 0..<body.nodes.count + 1 {
            if name == condIn { return true }
            if let c = body.initializers[name] { return c.count == 1 && c.doubles[0] != 0 }
            guard let producer = body.nodes.first(where: { $0.outputs.contains(name) }), producer.op == .identity,
                  let source = producer.inputs.first else { return false }
            name = source
        }
        return false
    }

    /// Runs the loop while planning, all its inputs being known.
    static func runLoopEagerly(_ ctx: OpContext, _ shape: LoopShape, tripCount: Int?, cond: Bool, carried: [Tensor],
                               known: [String: Tensor]) throws(EngineError) -> [Tensor] {
        let body = shape.body
        var values = carried
        var keepGoing = cond
        var scans = [[Tensor]](repeating: [], count: shape.scans)
        var session: BodySession? = nil
        var i = 0
        while keepGoing && (tripCount.map { i < $0 } ?? true) {
            if i >= maxLoopIterations {
                throw ctx.invalid("ran " + String(maxLoopIterations) + " iterations without its condition turning false")
            }
            var feeds: [String: Tensor] = [
                body.inputs[0].name: Tensor(shape: [], values: [Int64(i)]),
                body.inputs[1].name: Tensor(shape: [], values: [keepGoing]),
            ]
            for k in 0..<shape.carried { feeds[body.inputs[2 + k].name] = values[k] }
            if session == nil {
                var inputs = [(name: String, desc: TensorDesc)]()
                for input in body.inputs { inputs.append((input.name, TensorDesc(dtype: feeds[input.name]!.dtype, shape: feeds[input.name]!.shape))) }
                session = try BodySession(node: ctx.node, body: body, inputs: inputs, known: known)
            }
            let out = try session!.run(feeds, node: ctx.node)
            keepGoing = out[0].doubles.first.map { $0 != 0 } ?? false
            for k in 0..<shape.carried { values[k] = out[1 + k] }
            for s in 0..<shape.scans { scans[s].append(out[1 + shape.carried + s]) }
            i += 1
        }
        var results = values
        for s in 0..<shape.scans {
            results.append(try stack(scans[s], ctx: ctx, dtype: body.outputs[1 + shape.carried + s].type.dtype))
        }
        return Array(results.prefix(ctx.node.outputs.count))
    }

    /// Stacks per-iteration values on a new first axis (all must have one shape and type).
    static func stack(_ parts: [Tensor], ctx: OpContext, dtype: DType) throws(EngineError) -> Tensor {
        guard let first = parts.first else { return Tensor(dtype: dtype, shape: [0]) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(first.bytes.count * parts.count)
        for p in parts {
            guard p.shape == first.shape, p.dtype == first.dtype else {
                throw ctx.invalid("a scan output changes shape between iterations (" + shapeText(first.shape) + " then " + shapeText(p.shape) + ")")
            }
            bytes += p.bytes
        }
        return Tensor(dtype: first.dtype, shape: [parts.count] + first.shape, bytes: bytes)
    }
}

import PerchGraph

/// Scan (opset 9+): inputs are N state values, then `num_scan_inputs` sequences, then the
/// captured outer values. The body maps `(state…, one slice of each sequence)` to `(state…,
/// one slice of each scan output)`; slices are taken along `scan_input_axes` (forward, or
/// backward with `scan_input_directions` 1) and stacked along `scan_output_axes`. The number of
/// iterations is the sequences' length, a shape, so a body with fixed shapes is planned once.
extension ControlFlowOperator {
    /// Where slice `index` of a sequence sits: `outer` runs of `inner` bytes, `length` apart.
    struct SliceLayout {
        var outer: Int
        var inner: Int
        var length: Int

        init(shape: [Int], axis: Int, elementBytes: Int) {
            outer = 1
            for d in shape[..<axis] { outer *= d }
            inner = elementBytes
            for d in shape[(axis + 1)...] { inner *= d }
            length = shape[axis]
        }

        /// Copies slice `index` of the sequence at `sequence` into `slice`.
        func read(_ sequence: UnsafeRawPointer, _ index: Int, into slice: UnsafeMutableRawPointer) {
            for o in 0..<outer { (slice + o * inner).copyMemory(from: sequence + (o * length + index) * inner, byteCount: inner) }
        }

        /// Copies `slice` into position `index` of the sequence at `sequence`.
        func write(_ slice: UnsafeRawPointer, _ index: Int, into sequence: UnsafeMutableRawPointer) {
            for o in 0..<outer { (sequence + (o * length + index) * inner).copyMemory(from: slice + o * inner, byteCount: inner) }
        }
    }

    struct ScanShape {
        let body: Graph
        let states: Int
        let inputs: Int
        let outputs: Int
        var inputAxes: [Int] = []
        var inputReversed: [Bool] = []
        var outputAxes: [Int] = []
        var outputReversed: [Bool] = []
        var length = 0

        init(_ ctx: OpContext) throws(EngineError) {
            guard let body = ctx.attributes.graph("body") else { throw ctx.invalid("needs a body graph") }
            self.body = body
            if ctx.attributes.int("_opset", default: 9) < 9 {
                throw ctx.unsupported("opset-8 Scan (batch axis and sequence_lens); re-export with opset 9 or later")
            }
            inputs = ctx.attributes.int("num_scan_inputs", default: 0)
            states = CapturedInputs.start(ctx.node) - inputs
            guard inputs >= 1, states >= 0, body.inputs.count == states + inputs, body.outputs.count >= states else {
                throw ctx.invalid("num_scan_inputs " + String(inputs) + " does not fit the node's inputs and its body's "
                    + String(body.inputs.count) + " inputs")
            }
            outputs = body.outputs.count - states
            let inAxes = ctx.attributes.ints("scan_input_axes") ?? [Int](repeating: 0, count: inputs)
            let inDirs = ctx.attributes.ints("scan_input_directions") ?? [Int](repeating: 0, count: inputs)
            let outAxes = ctx.attributes.ints("scan_output_axes") ?? [Int](repeating: 0, count: outputs)
            let outDirs = ctx.attributes.ints("scan_output_directions") ?? [Int](repeating: 0, count: outputs)
            guard inAxes.count == inputs, inDirs.count == inputs, outAxes.count == outputs, outDirs.count == outputs else {
                throw ctx.invalid("scan axes and directions must have one entry per scan input and output")
            }
            for m in 0..<inputs {
                let d = try ctx.input(states + m)
                let axis = inAxes[m] < 0 ? inAxes[m] + d.rank : inAxes[m]
                guard axis >= 0 && axis < d.rank else { throw ctx.invalid("scan_input_axes[" + String(m) + "] is out of range for " + shapeText(d.shape)) }
                if m == 0 { length = d.shape[axis] }
                guard d.shape[axis] == length else { throw ctx.invalid("the scan inputs have different lengths") }
                inputAxes.append(axis)
                inputReversed.append(inDirs[m] != 0)
            }
            outputAxes = outAxes
            outputReversed = outDirs.map { $0 != 0 }
        }

        func sliceDesc(_ d: TensorDesc, axis: Int) -> TensorDesc {
            var shape = d.shape
            shape.remove(at: axis)
            return TensorDesc(dtype: d.dtype, shape: shape)
        }

        /// The output axis of scan output `k` for slices of rank `rank`.
        func outputAxis(_ k: Int, rank: Int) -> Int { outputAxes[k] < 0 ? outputAxes[k] + rank + 1 : outputAxes[k] }

        func position(_ t: Int, reversed: Bool) -> Int { reversed ? length - 1 - t : t }
    }

    static func prepareScan(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let shape = try ScanShape(ctx)
        let body = shape.body
        let captured = try CapturedInputs(ctx)
        var inputs = [(name: String, desc: TensorDesc)]()
        for k in 0..<shape.states { inputs.append((body.inputs[k].name, try ctx.input(k))) }
        for m in 0..<shape.inputs {
            inputs.append((body.inputs[shape.states + m].name, shape.sliceDesc(try ctx.input(shape.states + m), axis: shape.inputAxes[m])))
        }
        for c in captured.runtime { inputs.append((c.name, c.desc)) }
        let session = try BodySession(node: ctx.node, body: body, inputs: inputs, known: captured.known)
        guard try session.planStatically(inputs, node: ctx.node) else {
            var values = [Tensor]()
            for i in 0..<(shape.states + shape.inputs) {
                guard let v = ctx.value(i) else { throw waitFor(ctx, i) }
                values.append(v)
            }
            if let c = captured.runtime.first { throw waitFor(ctx, c.index) }
            return constantResult(try runScanEagerly(ctx, shape, session: session, values: values))
        }
        var outputs = [TensorDesc]()
        for k in 0..<shape.states {
            let d = session.outputDesc(body.outputs[k].name)
            guard d == inputs[k].desc else { throw ctx.invalid("state " + String(k) + " changes shape in the body (" + shapeText(inputs[k].desc.shape) + " → " + shapeText(d.shape) + ")") }
            outputs.append(d)
        }
        var outLayouts = [SliceLayout]()
        for k in 0..<shape.outputs {
            let d = session.outputDesc(body.outputs[shape.states + k].name)
            let axis = shape.outputAxis(k, rank: d.rank)
            guard axis >= 0 && axis <= d.rank else { throw ctx.invalid("scan_output_axes[" + String(k) + "] is out of range") }
            var full = d.shape
            full.insert(shape.length, at: axis)
            outputs.append(TensorDesc(dtype: d.dtype, shape: full))
            outLayouts.append(SliceLayout(shape: full, axis: axis, elementBytes: d.dtype.byteSize))
        }
        outputs = Array(outputs.prefix(ctx.node.outputs.count))
        var inLayouts = [SliceLayout]()
        for m in 0..<shape.inputs {
            let d = try ctx.input(shape.states + m)
            inLayouts.append(SliceLayout(shape: d.shape, axis: shape.inputAxes[m], elementBytes: d.dtype.byteSize))
        }
        let stateIn = (0..<shape.states).map { session.inputView(body.inputs[$0].name) }
        let stateOut = (0..<shape.states).map { session.outputSource(body.outputs[$0].name) }
        let sliceIn = (0..<shape.inputs).map { session.inputView(body.inputs[shape.states + $0].name) }
        let sliceOut = (0..<shape.outputs).map { session.outputSource(body.outputs[shape.states + $0].name) }
        let runtimeCaptures = captured.runtime.map { (index: $0.index, view: session.inputView($0.name)) }
        return PreparedOp(outputs: outputs) { args in
            for c in runtimeCaptures { c.view.data.copyMemory(from: args.input(c.index).data, byteCount: c.view.desc.byteCount) }
            for k in 0..<shape.states { stateIn[k].data.copyMemory(from: args.input(k).data, byteCount: stateIn[k].desc.byteCount) }
            for t in 0..<shape.length {
                if t > 0 { for k in 0..<shape.states { stateOut[k].copy(to: stateIn[k].data) } }
                for m in 0..<shape.inputs {
                    inLayouts[m].read(args.input(shape.states + m).data, shape.position(t, reversed: shape.inputReversed[m]), into: sliceIn[m].data)
                }
                session.session.runSteps()
                for k in 0..<shape.outputs where shape.states + k < args.outputs.count {
                    let index = shape.position(t, reversed: shape.outputReversed[k])
                    let out = args.outputs[shape.states + k].data
                    sliceOut[k].withBytes { src, _ in outLayouts[k].write(src, index, into: out) }
                }
            }
            for k in 0..<Swift.min(shape.states, args.outputs.count) {
                if shape.length == 0 {
                    args.outputs[k].data.copyMemory(from: args.input(k).data, byteCount: args.outputs[k].desc.byteCount)
                } else {
                    stateOut[k].copy(to: args.outputs[k].data)
                }
            }
        }
    }

    /// Runs the scan while planning, all its inputs being known (its body's shapes depend on
    /// values, so it could not be planned once).
    static func runScanEagerly(_ ctx: OpContext, _ shape: ScanShape, session: BodySession, values: [Tensor]) throws(EngineError) -> [Tensor] {
        let body = shape.body
        var states = Array(values[0..<shape.states])
        var slices = [[Tensor]](repeating: [], count: shape.outputs)
        for t in 0..<shape.length {
            var feeds = [String: Tensor]()
            for k in 0..<shape.states { feeds[body.inputs[k].name] = states[k] }
            for m in 0..<shape.inputs {
                let seq = values[shape.states + m]
                let axis = shape.inputAxes[m]
                let layout = SliceLayout(shape: seq.shape, axis: axis, elementBytes: seq.dtype.byteSize)
                var slice = Tensor(dtype: seq.dtype, shape: shape.sliceDesc(TensorDesc(dtype: seq.dtype, shape: seq.shape), axis: axis).shape)
                seq.bytes.withUnsafeBytes { src in
                    slice.bytes.withUnsafeMutableBytes { dst in
                        if let s = src.baseAddress, let d = dst.baseAddress { layout.read(s, shape.position(t, reversed: shape.inputReversed[m]), into: d) }
                    }
                }
                feeds[body.inputs[shape.states + m].name] = slice
            }
            let out = try session.run(feeds, node: ctx.node)
            for k in 0..<shape.states { states[k] = out[k] }
            for k in 0..<shape.outputs { slices[k].append(out[shape.states + k]) }
        }
        var results = states
        for k in 0..<shape.outputs {
            guard let first = slices[k].first else {
                results.append(Tensor(dtype: body.outputs[shape.states + k].type.dtype, shape: [0]))
                continue
            }
            let axis = shape.outputAxis(k, rank: first.rank)
            var full = first.shape
            full.insert(shape.length, at: axis)
            var stacked = Tensor(dtype: first.dtype, shape: full)
            let layout = SliceLayout(shape: full, axis: axis, elementBytes: first.dtype.byteSize)
            for (t, s) in slices[k].enumerated() {
                guard s.shape == first.shape else { throw ctx.invalid("a scan output changes shape between iterations") }
                s.bytes.withUnsafeBytes { src in
                    stacked.bytes.withUnsafeMutableBytes { dst in
                        if let sp = src.baseAddress, let dp = dst.baseAddress { layout.write(sp, shape.position(t, reversed: shape.outputReversed[k]), into: dp) }
                    }
                }
            }
            results.append(stacked)
        }
        return Array(results.prefix(ctx.node.outputs.count))
    }
}

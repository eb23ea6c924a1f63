import CPerchShims
import PerchGraph

/// Memory a prepared session uses, for `perch bench` and the profile's RAM check.
public struct MemoryStats: Sendable, Equatable {
    /// Bytes of the arena holding inputs, intermediates, outputs and per-op workspace.
    public var arenaBytes: Int
    /// Bytes of constant tensors the kernels read.
    public var weightsBytes: Int
    /// Largest total size of buffers alive at one step: the least arena any plan could use.
    public var arenaLowerBound: Int

    /// Weights plus arena: the memory the engine needs for this model.
    public var peakBytes: Int { arenaBytes + weightsBytes }
}

/// How a session runs.
/// Runs one model. `prepare` infers every shape, folds constant subgraphs, plans the arena and
/// compiles each node to a kernel; `execute` then runs without allocating.
///
/// A node whose output shape depends on values computed while running (NonMaxSuppression over
/// a detector's boxes, NonZero, a Reshape to a computed shape) cannot be planned up front: it and
/// every node after it that reads its results form a `ValueDependentStage`, which `execute`
/// plans and runs once the values it needs exist. Models without such nodes never allocate
/// while running.
///
/// A session is not thread-safe: use one per thread (they can share nothing mutable).
public final class Session {
    struct Step {
        var nodeIndex: Int
        var kernel: Kernel
        var args: KernelArgs
    }

    public let graph: Graph
    public let options: SessionOptions
    /// Workers shared by every kernel of this session (nil with one thread).
    let pool: ThreadPool?
    /// Concrete input types the current plan was built for.
    public private(set) var inputDescs: [String: TensorDesc] = [:]
    public private(set) var outputDescs: [String: TensorDesc] = [:]
    public private(set) var memory = MemoryStats(arenaBytes: 0, weightsBytes: 0, arenaLowerBound: 0)
    /// Number of nodes that run (after constant folding).
    public var stepCount: Int { steps.count }

    var steps: [Step] = []
    var inputViews: [String: TensorView] = [:]
    var outputViews: [String: TensorView] = [:]
    var constantOutputs: [String: Tensor] = [:]
    /// Caller feeds whose values were read while planning; a change forces a new plan.
    var valueDependentFeeds: [String: Tensor] = [:]
    /// The nodes planned only after the steps have run (nil for most models).
    var valueStage: ValueDependentStage?
    /// Every caller feed's value may be read while planning, whatever its size: true for the
    /// session of a `ValueDependentStage`, whose feeds are the values it waited for.
    let feedsAreKnown: Bool
    var arena: UnsafeMutableRawPointer?
    var weights: UnsafeMutableRawPointer?
    var isPrepared = false

    /// Validates and topologically sorts `graph`, runs a float16 model in float32 (`HalfModels`),
    /// applies `QDQFusion` and `QLookupMulFusion` when
    /// `options.fuseQuantized` is on and `ActivationFusion` always, and starts `options.threads - 1` worker threads. Nothing
    /// else is allocated until `prepare`.
    public init(graph: Graph, options: SessionOptions = SessionOptions()) throws(EngineError) {
        self.options = options
        feedsAreKnown = false
        pool = options.threads > 1 ? ThreadPool(threads: options.threads) : nil
        var g = graph
        do {
            try g.validate()
        } catch {
            throw .graph(error)
        }
        g.removeDeadNodes()
        HalfModels.widen(&g)
        if HalfGEMM.available { HalfWeights.apply(&g) }
        if options.fuseQuantized {
            Self.foldQuantizedConstants(&g)
            QDQFusion.apply(&g)
            QLookupMulFusion.apply(&g)
            do {
                try g.validate()
            } catch {
                throw .graph(error)
            }
        }
        ActivationFusion.apply(&g)
        self.graph = g
    }

    /// The session of a `ValueDependentStage`: `graph` is already validated and fused (a part
    /// of its parent's graph), and the parent's workers are shared.
    init(stage graph: Graph, options: SessionOptions, pool: ThreadPool?) {
        self.options = options
        self.pool = pool
        self.graph = graph
        feedsAreKnown = true
    }

    deinit {
        release()
    }

    /// Turns ConstantOfShape and QuantizeLinear nodes whose inputs are all initializers into
    /// initializers before `QDQFusion` looks for constant int8 weights (models that store weights
    /// as QuantizeLinear(constant), or as ConstantOfShape like the ONNX "light" models). A node
    /// that cannot be evaluated here is left for `prepare`.
    static func foldQuantizedConstants(_ g: inout Graph) {
        var changed = false
        for node in g.nodes where node.op == .constantOfShape || node.op == .quantizeLinear {
            guard node.outputs.count == 1, !node.inputs.isEmpty else { continue }
            var values = [Tensor?]()
            var descs = [TensorDesc?]()
            var ok = true
            for name in node.inputs {
                if name.isEmpty { values.append(nil); descs.append(nil); continue }
                guard let t = g.initializers[name] else { ok = false; break }
                values.append(t)
                descs.append(TensorDesc(dtype: t.dtype, shape: t.shape))
            }
            guard ok, g.initializers[node.outputs[0]] == nil else { continue }
            let ctx = OpContext(node: node, inputs: descs, knownValues: values)
            guard let prepared = try? OperatorRegistry.prepare(ctx), prepared.outputs.count >= 1,
                  let results = try? fold(node: node, prepared: prepared, inputDescs: descs, values: values) else { continue }
            g.initializers[node.outputs[0]] = results[0]
            changed = true
        }
        if !changed { return }
        let inits = g.initializers
        g.nodes.removeAll { $0.outputs.count == 1 && inits[$0.outputs[0]] != nil }
        g.removeDeadNodes()
    }

    func release() {
        if let a = arena { perch_aligned_free(a) }
        if let w = weights { perch_aligned_free(w) }
        arena = nil
        weights = nil
        steps = []
        valueStage = nil
        inputViews = [:]
        outputViews = [:]
        isPrepared = false
    }

    /// Declared runtime inputs of the model.
    public var inputs: [ValueInfo] { graph.runtimeInputs }
    public var outputs: [ValueInfo] { graph.outputs }

    /// Plans for inputs shaped like `feeds` (values of small integer feeds that determine shapes
    /// are taken into account too). Called by `run` when needed; call it directly to measure
    /// initialization separately from the first run.
    public func prepare(feeds: [String: Tensor]) throws(EngineError) {
        release()
        var descs: [String: TensorDesc] = [:]
        var peekable: [String: Tensor] = [:]
        var bindings: [String: Int] = [:]
        for input in graph.runtimeInputs {
            guard let feed = feeds[input.name] else {
                throw .badInput(name: input.name, reason: "missing (the model needs it)")
            }
            try check(feed, against: input, bindings: &bindings)
            descs[input.name] = TensorDesc(dtype: feed.dtype, shape: feed.shape)
            if feed.count <= 64 || feedsAreKnown { peekable[input.name] = feed }
        }
        for (name, _) in feeds where !graph.runtimeInputs.contains(where: { $0.name == name }) {
            throw .badInput(name: name, reason: "the model has no input of this name (inputs: " + joinedNames(graph.runtimeInputs.map { $0.name }) + ")")
        }

        var constants = graph.initializers
        for (name, t) in constants { descs[name] = TensorDesc(dtype: t.dtype, shape: t.shape) }
        var readFeeds: [String: Tensor] = [:]

        struct PendingStep {
            var nodeIndex: Int
            var prepared: PreparedOp
        }
        var pending = [PendingStep]()

        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for out in node.outputs where !out.isEmpty { producer[out] = i }
        }
        var onDemand: [String: Tensor] = [:]

        /// The value of `name` if it can be computed before running: a constant, a small caller
        /// feed (recorded, so a different value re-plans), or a small value computed on demand
        /// from those (shape arithmetic such as Shape → Sub → Concat → Pad's pads).
        func knownValue(_ name: String, depth: Int) -> Tensor? {
            if let c = constants[name] { return c }
            if let f = peekable[name] {
                readFeeds[name] = f
                return f
            }
            if let v = onDemand[name] { return v }
            guard depth < 64, let p = producer[name], let d = descs[name], d.count <= 65536 else { return nil }
            let node = graph.nodes[p]
            var ins = [TensorDesc?]()
            var values = [Tensor?]()
            for input in node.inputs {
                if input.isEmpty {
                    ins.append(nil)
                    values.append(nil)
                    continue
                }
                guard let v = knownValue(input, depth: depth + 1) else { return nil }
                ins.append(descs[input])
                values.append(v)
            }
            let ctx = OpContext(node: node, inputs: ins, knownValues: values)
            guard let prepared = try? OperatorRegistry.prepare(ctx),
                  let results = try? Self.fold(node: node, prepared: prepared, inputDescs: ins, values: values)
            else { return nil }
            for (i, out) in node.outputs.enumerated() where !out.isEmpty && i < results.count { onDemand[out] = results[i] }
            return onDemand[name]
        }

        // Nodes that need values computed while running, and the nodes reading their results.
        var deferredNodes = [Int]()
        var deferredValues = Set<String>()
        var firstDeferral: EngineError?
        func deferNode(_ index: Int) {
            deferredNodes.append(index)
            for out in graph.nodes[index].outputs where !out.isEmpty { deferredValues.insert(out) }
        }

        for (index, node) in graph.nodes.enumerated() {
            if node.inputs.contains(where: { deferredValues.contains($0) }) {
                deferNode(index)
                continue
            }
            SubnormalWeights.flush(node, in: &constants)
            var inputDescs = [TensorDesc?]()
            var allConstant = true
            for name in node.inputs {
                if name.isEmpty {
                    inputDescs.append(nil)
                    continue
                }
                guard let d = descs[name] else { throw .graph(.undefinedValue(node: node.displayName, value: name)) }
                inputDescs.append(d)
                if constants[name] == nil { allConstant = false }
            }
            let inputNames = node.inputs
            var ctx = OpContext(node: node, inputs: inputDescs) { i in knownValue(inputNames[i], depth: 0) }
            ctx.threads = options.threads
            let prepared: PreparedOp
            do {
                prepared = try OperatorRegistry.prepare(ctx)
            } catch {
                guard case .dynamicValue = error else { throw error }
                if firstDeferral == nil { firstDeferral = error }
                deferNode(index)
                continue
            }
            if prepared.outputs.count < node.outputs.filter({ !$0.isEmpty }).count {
                for (i, out) in node.outputs.enumerated() where i >= prepared.outputs.count && !out.isEmpty {
                    throw .unsupported(node: node.displayName, op: node.op.rawValue, reason: "output #" + String(i) + " ('" + out + "') is not produced")
                }
            }
            for (i, out) in node.outputs.enumerated() where !out.isEmpty && i < prepared.outputs.count {
                descs[out] = prepared.outputs[i]
            }
            let foldable = allConstant || node.op == .shape || node.op == .size
            if foldable {
                let results = try Self.fold(node: node, prepared: prepared, inputDescs: inputDescs, values: node.inputs.map { $0.isEmpty ? nil : constants[$0] })
                for (i, out) in node.outputs.enumerated() where !out.isEmpty && i < results.count {
                    constants[out] = results[i]
                }
            } else {
                pending.append(PendingStep(nodeIndex: index, prepared: prepared))
            }
        }

        // A stage's session knows all its feeds, so its first node can always be planned; if
        // none could, waiting for another stage would not help.
        if feedsAreKnown && deferredNodes.count == graph.nodes.count, let e = firstDeferral { throw e }
        // Values the deferred nodes read from before them: constants go with them, the rest are
        // kept in the arena until the stage has run.
        var boundary = [String]()
        var seen = Set<String>()
        for i in deferredNodes {
            for name in graph.nodes[i].inputs where !name.isEmpty && !deferredValues.contains(name) && seen.insert(name).inserted {
                boundary.append(name)
            }
        }

        // Lifetimes of arena buffers: runtime inputs, step outputs, step scratch.
        var requestIndex: [String: Int] = [:]
        var requests = [MemoryPlanner.Request]()
        for input in graph.runtimeInputs {
            requestIndex[input.name] = requests.count
            requests.append(.init(bytes: descs[input.name]!.byteCount, firstStep: 0, lastStep: 0))
        }
        var scratchRequest = [Int](repeating: -1, count: pending.count)
        for (s, step) in pending.enumerated() {
            let node = graph.nodes[step.nodeIndex]
            for name in node.inputs where !name.isEmpty {
                if let r = requestIndex[name] { requests[r].lastStep = Swift.max(requests[r].lastStep, s) }
            }
            for i in 0..<step.prepared.outputs.count {
                let out = Self.outputName(node, i, step: s)
                requestIndex[out] = requests.count
                requests.append(.init(bytes: step.prepared.outputs[i].byteCount, firstStep: s, lastStep: s))
                descs[out] = step.prepared.outputs[i]
            }
            if step.prepared.scratchBytes > 0 {
                scratchRequest[s] = requests.count
                requests.append(.init(bytes: step.prepared.scratchBytes, firstStep: s, lastStep: s))
            }
        }
        // Inputs stay valid for the whole run (so `execute` can repeat without a new `bind`),
        // outputs until the caller reads them.
        let end = pending.count
        for input in graph.runtimeInputs {
            if let r = requestIndex[input.name] { requests[r].lastStep = end }
        }
        for output in graph.outputs {
            if let r = requestIndex[output.name] { requests[r].lastStep = end }
        }
        for name in boundary {
            if let r = requestIndex[name] { requests[r].lastStep = end }
        }
        let plan = MemoryPlanner.plan(requests)
        guard let arenaPointer = perch_aligned_alloc(plan.arenaBytes) else { throw .outOfMemory(bytes: plan.arenaBytes) }
        arena = arenaPointer

        // Constants read by steps go into one aligned weights buffer.
        var weightOffsets: [String: Int] = [:]
        var weightsBytes = 0
        for step in pending {
            for name in graph.nodes[step.nodeIndex].inputs where !name.isEmpty && weightOffsets[name] == nil {
                if let c = constants[name] {
                    weightOffsets[name] = weightsBytes
                    weightsBytes += MemoryPlanner.roundUp(Swift.max(c.bytes.count, 1), 64)
                }
            }
        }
        guard let weightsPointer = perch_aligned_alloc(weightsBytes) else { throw .outOfMemory(bytes: weightsBytes) }
        weights = weightsPointer
        for (name, offset) in weightOffsets {
            let c = constants[name]!
            c.bytes.withUnsafeBytes { src in
                if let base = src.baseAddress { (weightsPointer + offset).copyMemory(from: base, byteCount: c.bytes.count) }
            }
        }

        func view(_ name: String) -> TensorView? {
            if let r = requestIndex[name] { return TensorView(data: arenaPointer + plan.offsets[r], desc: descs[name]!) }
            if let o = weightOffsets[name] { return TensorView(data: weightsPointer + o, desc: descs[name]!) }
            return nil
        }

        var compiled = [Step]()
        compiled.reserveCapacity(pending.count)
        for (s, step) in pending.enumerated() {
            let node = graph.nodes[step.nodeIndex]
            var ins = [TensorView?]()
            for name in node.inputs { ins.append(name.isEmpty ? nil : view(name)) }
            var outs = [TensorView]()
            for i in 0..<step.prepared.outputs.count { outs.append(view(Self.outputName(node, i, step: s))!) }
            let scratch: UnsafeMutableRawPointer? = scratchRequest[s] >= 0 ? arenaPointer + plan.offsets[scratchRequest[s]] : nil
            compiled.append(Step(nodeIndex: step.nodeIndex, kernel: step.prepared.kernel, args: KernelArgs(inputs: ins, outputs: outs, scratch: scratch, pool: pool)))
        }
        steps = compiled
        inputViews = [:]
        for input in graph.runtimeInputs { inputViews[input.name] = view(input.name)! }
        outputViews = [:]
        constantOutputs = [:]
        outputDescs = [:]
        for output in graph.outputs where !deferredValues.contains(output.name) {
            if let c = constants[output.name] {
                constantOutputs[output.name] = c
            } else if let v = view(output.name) {
                outputViews[output.name] = v
            } else {
                throw .graph(.undefinedOutput(output.name))
            }
            outputDescs[output.name] = descs[output.name]
        }
        var inDescs: [String: TensorDesc] = [:]
        for input in graph.runtimeInputs { inDescs[input.name] = descs[input.name] }
        inputDescs = inDescs
        valueDependentFeeds = readFeeds
        if !deferredNodes.isEmpty {
            var stageGraph = Graph(name: graph.name, metadata: graph.metadata)
            stageGraph.nodes = deferredNodes.map { graph.nodes[$0] }
            var views = [(name: String, view: TensorView)]()
            for name in boundary {
                if let c = constants[name] {
                    stageGraph.initializers[name] = c
                } else if let v = view(name) {
                    stageGraph.inputs.append(ValueInfo(name: name, type: TensorType(dtype: v.dtype, shape: v.shape)))
                    views.append((name, v))
                } else {
                    throw .graph(.undefinedValue(node: graph.nodes[deferredNodes[0]].displayName, value: name))
                }
            }
            stageGraph.outputs = graph.outputs.filter { deferredValues.contains($0.name) }
            valueStage = ValueDependentStage(session: Session(stage: stageGraph, options: options, pool: pool), feeds: views)
        }
        memory = MemoryStats(arenaBytes: plan.arenaBytes, weightsBytes: weightsBytes, arenaLowerBound: plan.lowerBound)
        isPrepared = true
    }

    /// The value name of output `i` of a node; outputs the model leaves unnamed (optional outputs
    /// an op always writes) get a private name so they still have a buffer.
    static func outputName(_ node: Node, _ i: Int, step: Int) -> String {
        if i < node.outputs.count && !node.outputs[i].isEmpty { return node.outputs[i] }
        return "\u{1}step" + String(step) + "#" + String(i)
    }

    /// Evaluates a node whose inputs are all known, at prepare time.
    static func fold(node: Node, prepared: PreparedOp, inputDescs: [TensorDesc?], values: [Tensor?]) throws(EngineError) -> [Tensor] {
        var buffers = [UnsafeMutableRawPointer]()
        defer { for b in buffers { perch_aligned_free(b) } }
        func allocate(_ bytes: Int) throws(EngineError) -> UnsafeMutableRawPointer {
            guard let p = perch_aligned_alloc(Swift.max(bytes, 64)) else { throw .outOfMemory(bytes: bytes) }
            buffers.append(p)
            return p
        }
        var ins = [TensorView?]()
        for (i, name) in node.inputs.enumerated() {
            guard !name.isEmpty, let d = inputDescs[i] else {
                ins.append(nil)
                continue
            }
            if let c = values[i] {
                let p = try allocate(c.bytes.count)
                c.bytes.withUnsafeBytes { src in
                    if let base = src.baseAddress { p.copyMemory(from: base, byteCount: c.bytes.count) }
                }
                ins.append(TensorView(data: p, desc: d))
            } else {
                // Shape/Size read only the descriptor; give them an empty buffer.
                ins.append(TensorView(data: try allocate(64), desc: d))
            }
        }
        var outs = [TensorView]()
        for d in prepared.outputs { outs.append(TensorView(data: try allocate(d.byteCount), desc: d)) }
        let scratch: UnsafeMutableRawPointer? = prepared.scratchBytes > 0 ? try allocate(prepared.scratchBytes) : nil
        prepared.kernel(KernelArgs(inputs: ins, outputs: outs, scratch: scratch))
        return outs.map { $0.toTensor() }
    }

    func check(_ feed: Tensor, against input: ValueInfo, bindings: inout [String: Int]) throws(EngineError) {
        if feed.dtype != input.type.dtype {
            throw .badInput(name: input.name, reason: "expected " + input.type.dtype.name + ", got " + feed.dtype.name)
        }
        let dims = input.type.dims
        if dims.isEmpty && feed.shape.isEmpty { return }
        // Models sometimes declare no shape at all; accept any then.
        if dims.count != feed.shape.count {
            throw .badInput(name: input.name, reason: "expected rank " + String(dims.count) + " " + declaredText(dims) + ", got shape " + shapeText(feed.shape))
        }
        for (i, dim) in dims.enumerated() {
            switch dim {
            case .fixed(let v):
                if v > 0 && v != feed.shape[i] {
                    throw .badInput(name: input.name, reason: "expected shape " + declaredText(dims) + ", got " + shapeText(feed.shape))
                }
            case .symbolic(let s):
                if let bound = bindings[s], bound != feed.shape[i] {
                    throw .badInput(name: input.name, reason: "dimension '" + s + "' is " + String(bound) + " elsewhere but " + String(feed.shape[i]) + " here")
                }
                bindings[s] = feed.shape[i]
            }
        }
    }

    func declaredText(_ dims: [Dim]) -> String {
        var s = "["
        for (i, d) in dims.enumerated() {
            if i > 0 { s += ", " }
            switch d {
            case .fixed(let v): s += v > 0 ? String(v) : "?"
            case .symbolic(let n): s += n
            }
        }
        return s + "]"
    }

    func joinedNames(_ names: [String]) -> String {
        var s = ""
        for n in names {
            if !s.isEmpty { s += ", " }
            s += n
        }
        return s
    }

    /// True when `feeds` fit the current plan (same types, same values of shape-like feeds).
    func planFits(_ feeds: [String: Tensor]) -> Bool {
        guard isPrepared, feeds.count == inputDescs.count else { return false }
        for (name, feed) in feeds {
            guard let d = inputDescs[name], d.dtype == feed.dtype, d.shape == feed.shape else { return false }
        }
        for (name, value) in valueDependentFeeds where feeds[name] != value { return false }
        return true
    }

    /// Copies `feeds` into the arena, preparing first if the plan does not fit them.
    public func bind(_ feeds: [String: Tensor]) throws(EngineError) {
        if !planFits(feeds) { try prepare(feeds: feeds) }
        for (name, feed) in feeds {
            let v = inputViews[name]!
            feed.bytes.withUnsafeBytes { src in
                if let base = src.baseAddress { v.data.copyMemory(from: base, byteCount: feed.bytes.count) }
            }
        }
    }

    /// Runs every step on the bound inputs: allocation-free, unless the model has a
    /// `ValueDependentStage`, which is planned here (and can fail here, e.g. a Reshape to a
    /// computed shape that does not fit).
    public func execute() throws(EngineError) {
        for step in steps { step.kernel(step.args) }
        if let stage = valueStage { try stage.run() }
    }

    /// Runs the steps only: for a body graph whose plan has no value-dependent stage.
    func runSteps() {
        for step in steps { step.kernel(step.args) }
    }

    /// Runs every step like `execute`, adding each step's wall time (nanoseconds) to
    /// `nanoseconds[i]` for step `i` — to find which layers dominate a model's latency.
    /// `nanoseconds` is resized to `stepCount` if needed.
    /// A `ValueDependentStage` runs after the steps, untimed.
    public func executeProfiled(into nanoseconds: inout [UInt64]) throws(EngineError) {
        if nanoseconds.count != steps.count { nanoseconds = [UInt64](repeating: 0, count: steps.count) }
        for (i, step) in steps.enumerated() {
            let t0 = perch_monotonic_ns()
            step.kernel(step.args)
            nanoseconds[i] &+= perch_monotonic_ns() &- t0
        }
        if let stage = valueStage { try stage.run() }
    }

    /// The values a `ValueDependentStage` waits for, with their types (empty when every node is
    /// planned up front): for a detector ending in NonMaxSuppression, its boxes and scores —
    /// what a caller comparing two versions of the model can compare element by element.
    public var valueDependentInputs: [(name: String, desc: TensorDesc)] {
        valueStage?.feeds.map { (name: $0.name, desc: $0.view.desc) } ?? []
    }

    /// The graph node step `i` runs (after QDQ fusion and constant folding).
    public func stepNode(_ i: Int) -> Node { graph.nodes[steps[i].nodeIndex] }

    /// The current value of a graph output (a copy).
    public func output(_ name: String) -> Tensor? {
        if let c = constantOutputs[name] { return c }
        if let v = outputViews[name] { return v.toTensor() }
        return valueStage?.session.output(name)
    }

    /// Binds, executes, and returns every graph output by name.
    public func run(_ feeds: [String: Tensor]) throws(EngineError) -> [String: Tensor] {
        try bind(feeds)
        try execute()
        var result: [String: Tensor] = [:]
        for info in graph.outputs { result[info.name] = self.output(info.name) }
        return result
    }
}

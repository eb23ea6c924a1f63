import PerchGraph

/// A control-flow node's body graph (an If branch, a Loop body) compiled to its own `Session`.
///
/// The body's inputs are its declared inputs (Loop's iteration number, condition and carried
/// values) and the captured outer values that are not known before running; captured values
/// that are known (weights, folded constants) become the body's constants, so its kernels pack
/// them once. A body is run in one of two ways:
/// - *statically*: planned once with the node, when every shape in it is fixed. The node's
///   kernel copies values into the body's arena, runs its steps and copies results out —
///   allocation-free, like any other kernel.
/// - *eagerly*: when every input value is known while planning (constants, or the inputs of a
///   `ValueDependentStage`), the node is evaluated right there and its kernel writes the results.
final class BodySession {
    let session: Session

    /// Makes a session for `body` whose runtime inputs are `inputs` (body names and types; the
    /// shapes are symbolic so a later run may re-plan for other shapes) and whose constants
    /// include `known`.
    init(node: Node, body: Graph, inputs: [(name: String, desc: TensorDesc)], known: [String: Tensor]) throws(EngineError) {
        var g = body
        for (name, t) in known { g.initializers[name] = t }
        g.inputs = inputs.map { input in
            var dims = [Dim]()
            for i in 0..<input.desc.rank { dims.append(.symbolic(input.name + "#" + String(i))) }
            return ValueInfo(name: input.name, type: TensorType(dtype: input.desc.dtype, dims: dims))
        }
        do {
            session = try Session(graph: g, options: SessionOptions(threads: 1))
        } catch {
            throw Self.inBody(node, error)
        }
    }

    /// Plans for `inputs` without their values; true if the plan holds for any values of these
    /// shapes (no value was read while planning and nothing waits for a value-dependent stage).
    func planStatically(_ inputs: [(name: String, desc: TensorDesc)], node: Node) throws(EngineError) -> Bool {
        var feeds = [String: Tensor]()
        for input in inputs { feeds[input.name] = Tensor(dtype: input.desc.dtype, shape: input.desc.shape) }
        do {
            try session.prepare(feeds: feeds)
        } catch {
            if case .dynamicValue = error { return false }
            throw Self.inBody(node, error)
        }
        return session.valueStage == nil && session.valueDependentFeeds.isEmpty
    }

    /// Runs the body on `feeds` (eager evaluation) and returns its outputs in declared order.
    func run(_ feeds: [String: Tensor], node: Node) throws(EngineError) -> [Tensor] {
        let result: [String: Tensor]
        do {
            result = try session.run(feeds)
        } catch {
            throw Self.inBody(node, error)
        }
        return session.graph.outputs.map { result[$0.name]! }
    }

    /// The arena buffer of body input `name` (static plans).
    func inputView(_ name: String) -> TensorView { session.inputViews[name]! }

    /// Where body output `name` is after `runSteps` (static plans).
    func outputSource(_ name: String) -> BodyValueSource {
        if let v = session.outputViews[name] { return .view(v) }
        return .constant(session.constantOutputs[name]!)
    }

    func outputDesc(_ name: String) -> TensorDesc { session.outputDescs[name]! }

    static func inBody(_ node: Node, _ error: EngineError) -> EngineError {
        switch error {
        case .outOfMemory, .dynamicValue: return error
        default:
            return .invalidNode(node: node.displayName, op: node.op.rawValue, reason: "in its body graph: " + error.description)
        }
    }
}

/// A body output after a static run: a buffer in the body's arena, or a constant.
enum BodyValueSource {
    case view(TensorView)
    case constant(Tensor)

    /// Calls `body` with the value's bytes and their count (nothing for an empty constant).
    func withBytes(_ body: (UnsafeRawPointer, Int) -> Void) {
        switch self {
        case .view(let v):
            body(UnsafeRawPointer(v.data), v.desc.byteCount)
        case .constant(let t):
            t.bytes.withUnsafeBytes { src in
                if let base = src.baseAddress { body(base, t.bytes.count) }
            }
        }
    }

    /// Copies the value's bytes to `destination` (a no-op when it is the value's own buffer).
    func copy(to destination: UnsafeMutableRawPointer) {
        withBytes { src, count in
            if src != UnsafeRawPointer(destination) { destination.copyMemory(from: src, byteCount: count) }
        }
    }
}

/// Shared by If and Loop: the node's captured inputs split into those known while planning
/// and those only known while running.
struct CapturedInputs {
    var known: [String: Tensor] = [:]
    /// Body name, node input index and type of each capture known only while running.
    var runtime: [(name: String, index: Int, desc: TensorDesc)] = []

    init(_ ctx: OpContext) throws(EngineError) {
        let names = BodyGraphs.captures(of: ctx.node)
        let start = ctx.inputCount - names.count
        for (k, name) in names.enumerated() {
            let i = start + k
            if let v = ctx.value(i) {
                known[name] = v
            } else {
                runtime.append((name, i, try ctx.input(i)))
            }
        }
    }

    /// Index of the node's first captured input.
    static func start(_ node: Node) -> Int { node.inputs.count - BodyGraphs.captures(of: node).count }
}

extension ControlFlowOperator {
    /// A kernel writing results computed while planning.
    static func constantResult(_ values: [Tensor]) -> PreparedOp {
        PreparedOp(outputs: values.map { TensorDesc(dtype: $0.dtype, shape: $0.shape) }) { args in
            for (i, t) in values.enumerated() where i < args.outputs.count {
                BodyValueSource.constant(t).copy(to: args.outputs[i].data)
            }
        }
    }

    /// The error that defers a node until input `i`'s value exists.
    static func waitFor(_ ctx: OpContext, _ i: Int) -> EngineError {
        .dynamicValue(node: ctx.node.displayName, op: ctx.node.op.rawValue, input: ctx.node.inputs[i])
    }
}

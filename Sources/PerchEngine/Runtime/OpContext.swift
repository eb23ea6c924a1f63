import PerchGraph

/// What an operator sees when it is prepared: its node, the concrete types of its inputs, and
/// the values of inputs that are known before running (initializers, folded constants, and
/// shape-like inputs fed by the caller).
public struct OpContext {
    public let node: Node
    /// Concrete input types; nil for an absent optional input.
    public let inputs: [TensorDesc?]
    /// Returns the value of input `i` if it can be known before running; the session records
    /// which caller feeds such values came from, so it can re-plan if they change.
    let valueProvider: (Int) -> Tensor?
    /// Threads the session runs kernels on. A kernel that splits work into per-thread workspace
    /// slots asks for `threads` slots of scratch; at run time `KernelArgs.threads` is at most this
    /// (1 when the kernel is evaluated while folding constants).
    public var threads = 1

    public init(node: Node, inputs: [TensorDesc?], valueProvider: @escaping (Int) -> Tensor?) {
        self.node = node
        self.inputs = inputs
        self.valueProvider = valueProvider
    }

    /// A context whose known input values are given up front (tests, tools).
    public init(node: Node, inputs: [TensorDesc?], knownValues: [Tensor?]) {
        self.init(node: node, inputs: inputs) { i in i < knownValues.count ? knownValues[i] : nil }
    }

    public var attributes: Attributes { node.attributes }
    public var inputCount: Int { inputs.count }

    /// True when input `i` exists and is not empty.
    public func has(_ i: Int) -> Bool { i < inputs.count && inputs[i] != nil }

    /// The type of required input `i`.
    public func input(_ i: Int) throws(EngineError) -> TensorDesc {
        guard i < inputs.count, let d = inputs[i] else {
            throw invalid("missing required input #" + String(i))
        }
        return d
    }

    /// The value of input `i` if it is known before running.
    public func value(_ i: Int) -> Tensor? {
        guard i < inputs.count, inputs[i] != nil else { return nil }
        return valueProvider(i)
    }

    /// The value of input `i`, which must be known before running (Reshape's shape, Slice's starts…).
    public func requiredValue(_ i: Int) throws(EngineError) -> Tensor {
        if let v = value(i) { return v }
        let name = i < node.inputs.count ? node.inputs[i] : "#" + String(i)
        throw .dynamicValue(node: node.displayName, op: node.op.rawValue, input: name)
    }

    public func invalid(_ reason: String) -> EngineError {
        .invalidNode(node: node.displayName, op: node.op.rawValue, reason: reason)
    }

    public func unsupported(_ reason: String) -> EngineError {
        .unsupported(node: node.displayName, op: node.op.rawValue, reason: reason)
    }
}

/// The result of preparing one node: output types, the workspace it needs, and its kernel.
public struct PreparedOp {
    public var outputs: [TensorDesc]
    public var scratchBytes: Int
    public var kernel: Kernel

    public init(outputs: [TensorDesc], scratchBytes: Int = 0, kernel: @escaping Kernel) {
        self.outputs = outputs
        self.scratchBytes = scratchBytes
        self.kernel = kernel
    }
}

/// Formats a shape as `[1, 3, 224, 224]` for messages.
public func shapeText(_ shape: [Int]) -> String {
    var s = "["
    for (i, d) in shape.enumerated() {
        if i > 0 { s += ", " }
        s += String(d)
    }
    return s + "]"
}

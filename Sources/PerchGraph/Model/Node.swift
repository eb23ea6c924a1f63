/// One operator application. Inputs and outputs name values of the graph; an empty input name
/// marks an optional input that is absent (as in ONNX).
public struct Node: Sendable, Equatable {
    public var name: String
    public var op: OpType
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: Attributes

    public init(name: String, op: OpType, inputs: [String], outputs: [String], attributes: Attributes = Attributes()) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The input at `index`, or nil when absent or empty.
    public func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }

    /// A name for messages: the node's name, or its op and first output when unnamed.
    public var displayName: String {
        name.isEmpty ? op.rawValue + "(" + (outputs.first ?? "") + ")" : name
    }
}

/// A named graph input or output with its declared type.
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var type: TensorType

    public init(name: String, type: TensorType) {
        self.name = name
        self.type = type
    }
}

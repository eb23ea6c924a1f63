import PerchGraph

/// Why the engine cannot prepare or run a model. `description` is the one-line message.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The graph itself is inconsistent.
    case graph(GraphError)
    /// A node's attributes or input shapes are invalid for its operator.
    case invalidNode(node: String, op: String, reason: String)
    /// A node uses a feature of its operator that Perch does not implement.
    case unsupported(node: String, op: String, reason: String)
    /// A value the engine must know before running (a shape, axes) is computed at run time.
    case dynamicValue(node: String, op: String, input: String)
    /// A caller-provided input is missing or has the wrong type.
    case badInput(name: String, reason: String)
    /// Memory for the arena or weights could not be allocated.
    case outOfMemory(bytes: Int)

    public var description: String {
        switch self {
        case .graph(let e): return e.description
        case .invalidNode(let node, let op, let reason): return op + " node '" + node + "': " + reason
        case .unsupported(let node, let op, let reason): return op + " node '" + node + "': not supported: " + reason
        case .dynamicValue(let node, let op, let input):
            return op + " node '" + node + "': input '" + input + "' must be known before running (a constant or a shape-derived value)"
        case .badInput(let name, let reason): return "input '" + name + "': " + reason
        case .outOfMemory(let bytes): return "could not allocate " + String(bytes) + " bytes"
        }
    }
}

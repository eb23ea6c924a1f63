/// What can be wrong with a graph or a model file. Each case carries what a user needs to find
/// and fix the problem; `description` is the one-line message.
public enum GraphError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A node reads a value that no node, input or initializer produces.
    case undefinedValue(node: String, value: String)
    /// Two producers write the same value.
    case duplicateValue(String)
    /// The graph has a cycle through these nodes.
    case cycle(nodes: [String])
    /// A graph output is never produced.
    case undefinedOutput(String)
    /// A node's inputs do not fit the operator (shape, dtype, count).
    case invalidNode(node: String, op: String, reason: String)
    /// A `.perchm` or `.npy` file that cannot be read.
    case malformedFile(what: String, reason: String)
    /// A `.perchm` file whose checksum does not match its contents.
    case checksumMismatch
    /// A `.perchm` file from a newer format version.
    case unsupportedFormatVersion(Int)

    public var description: String {
        switch self {
        case .undefinedValue(let node, let value):
            return "node '" + node + "' reads '" + value + "', which nothing produces"
        case .duplicateValue(let v):
            return "value '" + v + "' is produced more than once"
        case .cycle(let nodes):
            return "the graph has a cycle through " + joined(nodes.prefix(5).map { "'" + $0 + "'" })
        case .undefinedOutput(let v):
            return "graph output '" + v + "' is never produced"
        case .invalidNode(let node, let op, let reason):
            return op + " node '" + node + "': " + reason
        case .malformedFile(let what, let reason):
            return what + ": " + reason
        case .checksumMismatch:
            return "model file checksum does not match its contents (file corrupted or truncated)"
        case .unsupportedFormatVersion(let v):
            return "model file format version " + String(v) + " is newer than this Perch understands"
        }
    }
}

@usableFromInline
func joined<S: Sequence>(_ items: S, separator: String = ", ") -> String where S.Element == String {
    var out = ""
    for item in items {
        if !out.isEmpty { out += separator }
        out += item
    }
    return out
}

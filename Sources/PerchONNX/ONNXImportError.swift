import PerchGraph

/// Why an ONNX model cannot be imported. Every case names the file or node and the problem;
/// `description` is the one-line message the CLI prints (exit code 2, bad input).
public enum ONNXImportError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case notAModel(path: String, reason: String)
    case noGraph(path: String)
    case unsupportedOpset(path: String, domain: String, version: Int, supported: ClosedRange<Int>)
    /// Every node whose operator Perch cannot run, reported together.
    case unsupportedOperators(path: String, nodes: [UnsupportedNode])
    case invalidTensor(name: String, reason: String)
    case externalData(tensor: String, reason: String)
    case invalidGraph(path: String, error: GraphError)

    public struct UnsupportedNode: Sendable, Equatable {
        public var nodeName: String
        public var opType: String
        public var domain: String
    }

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "cannot read '" + path + "': " + reason
        case .notAModel(let path, let reason):
            return "'" + path + "' is not a valid ONNX model (" + reason + ")"
        case .noGraph(let path):
            return "'" + path + "' has no graph"
        case .unsupportedOpset(let path, let domain, let version, let supported):
            return "'" + path + "' uses opset " + String(version) + " of domain '" + (domain.isEmpty ? "ai.onnx" : domain)
                + "'; Perch supports opsets " + String(supported.lowerBound) + "–" + String(supported.upperBound)
        case .unsupportedOperators(let path, let nodes):
            var byOp: [String: [String]] = [:]
            var order = [String]()
            for n in nodes {
                let key = n.domain.isEmpty || n.domain == "ai.onnx" ? n.opType : n.domain + "." + n.opType
                if byOp[key] == nil { order.append(key) }
                byOp[key, default: []].append(n.nodeName)
            }
            var parts = [String]()
            for key in order {
                let names = byOp[key]!
                let shown = names.prefix(3).map { "'" + $0 + "'" }.joined(separator: ", ")
                parts.append(key + " (" + String(names.count) + " node" + (names.count == 1 ? "" : "s") + ": " + shown + (names.count > 3 ? ", …" : "") + ")")
            }
            return "'" + path + "' uses " + String(order.count) + " operator" + (order.count == 1 ? "" : "s") + " Perch does not support: " + parts.joined(separator: "; ")
        case .invalidTensor(let name, let reason):
            return "tensor '" + name + "': " + reason
        case .externalData(let tensor, let reason):
            return "external data of tensor '" + tensor + "': " + reason
        case .invalidGraph(let path, let error):
            return "'" + path + "': " + error.description
        }
    }
}

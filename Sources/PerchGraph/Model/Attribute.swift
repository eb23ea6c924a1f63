/// A node attribute value, as in ONNX's `AttributeProto`.
public enum Attribute: Sendable, Equatable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(Tensor)
    /// A body graph (If's branches, Loop's body).
    case graph(Graph)
}

/// The attributes of one node, with typed accessors that apply the caller's default.
public struct Attributes: Sendable, Equatable {
    public var values: [String: Attribute]

    public init(_ values: [String: Attribute] = [:]) {
        self.values = values
    }

    public subscript(name: String) -> Attribute? {
        get { values[name] }
        set { values[name] = newValue }
    }

    public func int(_ name: String, default d: Int) -> Int {
        switch values[name] {
        case .int(let v): return v
        case .float(let v): return Int(v)
        default: return d
        }
    }

    public func float(_ name: String, default d: Float) -> Float {
        switch values[name] {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: return d
        }
    }

    public func string(_ name: String, default d: String) -> String {
        if case .string(let v) = values[name] { return v }
        return d
    }

    public func ints(_ name: String) -> [Int]? {
        switch values[name] {
        case .ints(let v): return v
        case .int(let v): return [v]
        default: return nil
        }
    }

    public func floats(_ name: String) -> [Float]? {
        switch values[name] {
        case .floats(let v): return v
        case .float(let v): return [v]
        default: return nil
        }
    }

    public func tensor(_ name: String) -> Tensor? {
        if case .tensor(let v) = values[name] { return v }
        return nil
    }

    public func graph(_ name: String) -> Graph? {
        if case .graph(let g) = values[name] { return g }
        return nil
    }

    public func has(_ name: String) -> Bool { values[name] != nil }
}

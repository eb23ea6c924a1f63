import Yams

/// Where a YAML node came from. Kept on every node so that problems found after `extends` merged
/// several files still point at the file and line that set the value.
public struct SourceLocation: Sendable, Equatable {
    public var file: String
    public var line: Int
    public var column: Int

    func diagnostic(_ message: String) -> ProfileDiagnostic {
        ProfileDiagnostic(file: file, line: line, column: column, message: message)
    }
}

/// A YAML document reduced to what Perch's declarative files use: scalars (with their resolved
/// YAML type), mappings with string keys (in file order) and sequences, each node with its
/// location, so validators can report every problem as FILE:LINE:COL. Device profiles and fleet
/// inventories are both read through it.
public indirect enum LocatedYAML: Sendable {
    public enum ScalarType: String, Sendable {
        case string, integer, float, boolean, null
    }

    public struct Entry: Sendable {
        public var key: String
        public var keyLocation: SourceLocation
        public var value: LocatedYAML
    }

    case scalar(String, ScalarType, SourceLocation)
    case mapping([Entry], SourceLocation)
    case sequence([LocatedYAML], SourceLocation)
    /// Stands in for a value whose problem was already reported.
    case reported(SourceLocation)

    public var location: SourceLocation {
        switch self {
        case .scalar(_, _, let l), .mapping(_, let l), .sequence(_, let l), .reported(let l): return l
        }
    }

    public subscript(key: String) -> LocatedYAML? {
        guard case .mapping(let entries, _) = self else { return nil }
        return entries.last(where: { $0.key == key })?.value
    }

    /// Whether the key path is set (a value already reported as bad counts as set).
    func has(_ path: [String]) -> Bool {
        guard let first = path.first else { return true }
        if case .reported = self { return true }
        guard let child = self[first] else { return false }
        return child.has(Array(path.dropFirst()))
    }

    public var entries: [Entry] {
        if case .mapping(let e, _) = self { return e }
        return []
    }

    public var items: [LocatedYAML] {
        if case .sequence(let s, _) = self { return s }
        return []
    }

    public var string: String? {
        if case .scalar(let s, .string, _) = self { return s }
        return nil
    }

    public var bool: Bool? {
        if case .scalar(let s, .boolean, _) = self { return Bool.construct(from: Node.Scalar(s)) }
        return nil
    }

    public var int: Int? {
        if case .scalar(let s, .integer, _) = self { return Int.construct(from: Node.Scalar(s)) }
        return nil
    }

    /// The value of an integer or float scalar.
    public var double: Double? {
        switch self {
        case .scalar(let s, .integer, _): return Int.construct(from: Node.Scalar(s)).map(Double.init)
        case .scalar(let s, .float, _): return Double.construct(from: Node.Scalar(s))
        default: return nil
        }
    }

    /// How a message names this node's kind and value ("string 'four'", "a list").
    public var kindDescription: String {
        switch self {
        case .scalar(let s, let type, _):
            switch type {
            case .string: return "string '\(s)'"
            case .integer: return "integer \(s)"
            case .float: return "number \(s)"
            case .boolean: return "boolean \(s)"
            case .null: return "nothing (null)"
            }
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .reported: return "an invalid value"
        }
    }

    /// Removes `keys` from a mapping (used to keep `name`, `extends`, … from being inherited).
    func removing(_ keys: Set<String>) -> LocatedYAML {
        guard case .mapping(let entries, let l) = self else { return self }
        return .mapping(entries.filter { !keys.contains($0.key) }, l)
    }

    /// Deep merge for `extends`: mappings merge key by key, anything else in `child` replaces
    /// the parent's value (lists are replaced, not concatenated).
    static func merge(parent: LocatedYAML, child: LocatedYAML) -> LocatedYAML {
        guard case .mapping(let parentEntries, _) = parent, case .mapping(let childEntries, let location) = child else {
            return child
        }
        var merged = [Entry]()
        for p in parentEntries {
            if let c = childEntries.first(where: { $0.key == p.key }) {
                merged.append(Entry(key: p.key, keyLocation: c.keyLocation, value: merge(parent: p.value, child: c.value)))
            } else {
                merged.append(p)
            }
        }
        for c in childEntries where !parentEntries.contains(where: { $0.key == c.key }) {
            merged.append(c)
        }
        return .mapping(merged, location)
    }
}

extension LocatedYAML {
    /// Parses YAML text; syntax errors and non-string keys become diagnostics. Returns nil for an
    /// empty document or a syntax error.
    public static func parse(_ text: String, file: String, diagnostics: inout [ProfileDiagnostic]) -> LocatedYAML? {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            diagnostics.append(syntaxDiagnostic(error, file: file))
            return nil
        } catch {
            diagnostics.append(ProfileDiagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)"))
            return nil
        }
        guard let node else { return nil }
        return convert(node, file: file, diagnostics: &diagnostics)
    }

    private static func syntaxDiagnostic(_ error: YamlError, file: String) -> ProfileDiagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return ProfileDiagnostic(file: file, line: mark.line, column: mark.column, message: "YAML syntax error: \(prefix)\(problem)")
        case .reader(let problem, _, _, _):
            return ProfileDiagnostic(file: file, line: 1, column: 1, message: "cannot read YAML: \(problem)")
        default:
            return ProfileDiagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)")
        }
    }

    private static func location(_ mark: Mark?, _ file: String) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private static func convert(_ node: Node, file: String, diagnostics: inout [ProfileDiagnostic]) -> LocatedYAML {
        switch node {
        case .scalar(let scalar):
            let type: ScalarType
            switch node.tag.description {
            case Tag.Name.int.rawValue: type = .integer
            case Tag.Name.float.rawValue: type = .float
            case Tag.Name.bool.rawValue: type = .boolean
            case Tag.Name.null.rawValue: type = .null
            default: type = .string
            }
            return .scalar(scalar.string, type, location(scalar.mark, file))
        case .sequence(let sequence):
            return .sequence(sequence.map { convert($0, file: file, diagnostics: &diagnostics) }, location(sequence.mark, file))
        case .mapping(let mapping):
            var entries = [Entry]()
            for (key, value) in mapping {
                let keyLocation = location(key.mark, file)
                guard case .scalar(let k) = key else {
                    diagnostics.append(keyLocation.diagnostic("a key must be a plain name, found \(convert(key, file: file, diagnostics: &diagnostics).kindDescription)"))
                    continue
                }
                if let first = entries.first(where: { $0.key == k.string }) {
                    diagnostics.append(keyLocation.diagnostic("duplicate key '\(k.string)' (first set at \(first.keyLocation.line):\(first.keyLocation.column))"))
                    continue
                }
                entries.append(Entry(key: k.string, keyLocation: keyLocation, value: convert(value, file: file, diagnostics: &diagnostics)))
            }
            return .mapping(entries, location(mapping.mark, file))
        }
    }
}

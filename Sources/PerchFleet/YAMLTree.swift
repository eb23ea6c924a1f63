import Yams

/// One problem in an inventory, at the line and column (1-based) where it is; prints as
/// `FILE:LINE:COL: message` like profile diagnostics (compilers' form, so CI annotates the line).
public struct InventoryDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}

/// A YAML document as inventories use it: scalars with their resolved type, mappings with string
/// keys in file order, sequences; every node keeps its line and column (the approach of
/// PerchProfiles' ProfileTree, which is internal to that module).
indirect enum YAMLTree {
    enum Kind { case string, integer, float, boolean, null }
    struct Entry {
        var key: String
        var line: Int
        var column: Int
        var value: YAMLTree
    }

    case scalar(String, Kind, line: Int, column: Int)
    case mapping([Entry], line: Int, column: Int)
    case sequence([YAMLTree], line: Int, column: Int)

    var line: Int {
        switch self { case .scalar(_, _, let l, _), .mapping(_, let l, _), .sequence(_, let l, _): return l }
    }
    var column: Int {
        switch self { case .scalar(_, _, _, let c), .mapping(_, _, let c), .sequence(_, _, let c): return c }
    }

    subscript(key: String) -> YAMLTree? {
        guard case .mapping(let e, _, _) = self else { return nil }
        return e.last(where: { $0.key == key })?.value
    }

    var kindDescription: String {
        switch self {
        case .scalar(let s, let k, _, _):
            switch k {
            case .string: return "string '\(s)'"
            case .integer: return "integer \(s)"
            case .float: return "number \(s)"
            case .boolean: return "boolean \(s)"
            case .null: return "nothing (null)"
            }
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    static func parse(_ text: String, file: String, diagnostics: inout [InventoryDiagnostic]) -> YAMLTree? {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            switch error {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                diagnostics.append(InventoryDiagnostic(file: file, line: mark.line, column: mark.column,
                                                       message: "YAML syntax error: " + (context.map { $0.text + " " } ?? "") + problem))
            default:
                diagnostics.append(InventoryDiagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)"))
            }
            return nil
        } catch {
            diagnostics.append(InventoryDiagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)"))
            return nil
        }
        guard let node else { return nil }
        return convert(node, file: file, diagnostics: &diagnostics)
    }

    private static func convert(_ node: Node, file: String, diagnostics: inout [InventoryDiagnostic]) -> YAMLTree {
        switch node {
        case .scalar(let s):
            let kind: Kind
            switch node.tag.description {
            case Tag.Name.int.rawValue: kind = .integer
            case Tag.Name.float.rawValue: kind = .float
            case Tag.Name.bool.rawValue: kind = .boolean
            case Tag.Name.null.rawValue: kind = .null
            default: kind = .string
            }
            return .scalar(s.string, kind, line: s.mark?.line ?? 1, column: s.mark?.column ?? 1)
        case .sequence(let seq):
            return .sequence(seq.map { convert($0, file: file, diagnostics: &diagnostics) }, line: seq.mark?.line ?? 1, column: seq.mark?.column ?? 1)
        case .mapping(let map):
            var entries: [Entry] = []
            for (k, v) in map {
                let line = k.mark?.line ?? 1, column = k.mark?.column ?? 1
                guard case .scalar(let key) = k else {
                    diagnostics.append(InventoryDiagnostic(file: file, line: line, column: column, message: "a key must be a plain name"))
                    continue
                }
                if let first = entries.first(where: { $0.key == key.string }) {
                    diagnostics.append(InventoryDiagnostic(file: file, line: line, column: column,
                                                           message: "duplicate key '\(key.string)' (first set at \(first.line):\(first.column))"))
                    continue
                }
                entries.append(Entry(key: key.string, line: line, column: column, value: convert(v, file: file, diagnostics: &diagnostics)))
            }
            return .mapping(entries, line: map.mark?.line ?? 1, column: map.mark?.column ?? 1)
        }
    }
}

import PerchGraph

/// The profile schema (device-profiles/README.md documents it for users): which keys exist, their
/// types and allowed values. `check` reports every problem in one file and returns the tree
/// without the bad parts, so that merging and decoding only see well-typed values.
indirect enum ProfileSchema {
    /// A range check on a number: returns the problem ("must be at least 1") or nil.
    typealias Check = (Double) -> String?

    case mapping([(String, ProfileSchema)])
    case string
    case boolean
    case integer(Check?)
    case number(Check?)
    /// One of a fixed set of names; `what` names the set in messages ("isa", "cpu feature").
    case oneOf([String], what: String)
    case list(ProfileSchema)

    static func greaterThanZero(_ v: Double) -> String? { v > 0 ? nil : "must be greater than 0" }

    /// The whole profile document.
    static var profile: ProfileSchema { .mapping([
        ("name", .string),
        ("extends", .string),
        ("abstract", .boolean),
        ("description", .string),
        ("cpu", .mapping([
            ("isa", .oneOf(DeviceProfile.ISA.allCases.map(\.rawValue), what: "isa")),
            ("features", .list(.oneOf(DeviceProfile.CPUFeature.allCases.map(\.rawValue), what: "cpu feature"))),
            ("cores", .integer { $0 >= 1 ? nil : "must be at least 1" }),
            ("clock_mhz", .number(greaterThanZero)),
            ("core", .string),
        ])),
        ("memory", .mapping([
            ("ram_mb", .integer(greaterThanZero)),
            ("model_share", .number { $0 > 0 && $0 <= 1 ? nil : "must be a fraction in (0, 1]" }),
        ])),
        ("storage_mb", .integer(greaterThanZero)),
        ("accelerator", .mapping([
            ("kind", .oneOf(DeviceProfile.AcceleratorKind.allCases.map(\.rawValue), what: "accelerator kind")),
            ("name", .string),
            ("dtypes", .list(.oneOf(DeviceProfile.AcceleratorDType.allCases.map(\.rawValue), what: "dtype"))),
            ("ops", .list(.oneOf(OpType.allCases.map(\.rawValue), what: "op"))),
        ])),
        ("budgets", .mapping([
            ("latency_ms", .number(greaterThanZero)),
            ("max_accuracy_drop", .number { $0 >= 0 && $0 <= 100 ? nil : "must be between 0 and 100 (percentage points)" }),
            ("max_model_mb", .number(greaterThanZero)),
        ])),
    ]) }

    private var typeName: String {
        switch self {
        case .mapping: return "a mapping"
        case .string: return "a string"
        case .boolean: return "true or false"
        case .integer: return "an integer"
        case .number: return "a number"
        case .oneOf(_, let what): return "a \(what) name"
        case .list: return "a list"
        }
    }

    /// Checks `tree` against this schema; `path` is the dotted key path for messages
    /// (`memory.ram_mb`). Returns the tree with unknown keys and bad values removed, or nil when
    /// the node itself is unusable.
    func check(_ tree: LocatedYAML, path: String, diagnostics: inout [ProfileDiagnostic]) -> LocatedYAML? {
        let at = tree.location
        let subject = path.isEmpty ? "a profile" : path
        func wrongType() -> LocatedYAML? {
            diagnostics.append(at.diagnostic("\(subject) must be \(typeName), found \(tree.kindDescription)"))
            return nil
        }
        switch self {
        case .mapping(let fields):
            guard case .mapping(let entries, let location) = tree else { return wrongType() }
            let known = fields.map(\.0)
            var kept = [LocatedYAML.Entry]()
            for entry in entries {
                let keyPath = path.isEmpty ? entry.key : path + "." + entry.key
                guard let field = fields.first(where: { $0.0 == entry.key })?.1 else {
                    var message = "unknown key '\(keyPath)'"
                    if let s = Suggestions.closest(to: entry.key, in: known) {
                        message += "; did you mean '\(s)'?"
                    } else {
                        message += "; known keys\(path.isEmpty ? "" : " in " + path): " + known.joined(separator: ", ")
                    }
                    diagnostics.append(entry.keyLocation.diagnostic(message))
                    continue
                }
                // A bad value stays as a reported placeholder, so it is not also "missing".
                let value = field.check(entry.value, path: keyPath, diagnostics: &diagnostics) ?? .reported(entry.value.location)
                kept.append(LocatedYAML.Entry(key: entry.key, keyLocation: entry.keyLocation, value: value))
            }
            return .mapping(kept, location)
        case .string:
            guard tree.string != nil else { return wrongType() }
            return tree
        case .boolean:
            guard tree.bool != nil else { return wrongType() }
            return tree
        case .integer(let check):
            guard let v = tree.int else {
                if let d = tree.double {
                    diagnostics.append(at.diagnostic("\(subject) must be a whole number, found \(d)"))
                    return nil
                }
                return wrongType()
            }
            if let problem = check?(Double(v)) {
                diagnostics.append(at.diagnostic("\(subject) \(problem), found \(v)"))
                return nil
            }
            return tree
        case .number(let check):
            guard let v = tree.double else { return wrongType() }
            if let problem = check?(v) {
                diagnostics.append(at.diagnostic("\(subject) \(problem), found \(Self.format(v))"))
                return nil
            }
            return tree
        case .oneOf(let names, let what):
            guard let s = tree.string else {
                // `fp16` and `int8` are strings; a number or list here is a type error.
                return wrongType()
            }
            guard names.contains(s) else {
                var message = "unknown \(what) '\(s)'"
                if let suggestion = Suggestions.closest(to: s, in: names) {
                    message += "; did you mean '\(suggestion)'?"
                } else {
                    message += "; expected one of " + names.joined(separator: ", ")
                }
                diagnostics.append(at.diagnostic(message))
                return nil
            }
            return tree
        case .list(let element):
            guard case .sequence(let items, let location) = tree else { return wrongType() }
            var kept = [LocatedYAML]()
            for (i, item) in items.enumerated() {
                if let v = element.check(item, path: "\(path)[\(i)]", diagnostics: &diagnostics) { kept.append(v) }
            }
            return .sequence(kept, location)
        }
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}

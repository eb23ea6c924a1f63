/// One problem in a profile file, at the line and column (1-based) where it is.
///
/// `description` is `FILE:LINE:COL: message`, the form compilers use, so editors and CI annotate
/// the line. A problem without a position (the file cannot be read) has `line == 0` and prints as
/// `FILE: message`.
public struct ProfileDiagnostic: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
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

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

/// Why a profile could not be loaded.
public enum ProfileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file (or one it extends) has problems; every one is listed, in file order.
    case invalid([ProfileDiagnostic])
    /// No bundled profile or file has this name.
    case notFound(name: String, searched: [String], suggestion: String?)
    /// The profile is only a base for `extends` (`abstract: true`) and cannot be used itself.
    case abstract(name: String, file: String)

    public var description: String {
        switch self {
        case .invalid(let diagnostics):
            let files = Set(diagnostics.map(\.file)).count
            let problems = diagnostics.count == 1 ? "1 problem" : "\(diagnostics.count) problems"
            return files <= 1
                ? "\(problems) in profile \(diagnostics.first?.file ?? "")"
                : "\(problems) in \(files) profile files"
        case .notFound(let name, let searched, let suggestion):
            var s = "no profile named '\(name)' (looked for \(name).yaml in \(searched.isEmpty ? "no directories" : searched.joined(separator: ", ")))"
            if let suggestion { s += "; did you mean '\(suggestion)'?" }
            return s
        case .abstract(let name, let file):
            return "profile '\(name)' (\(file)) is abstract, a base for 'extends' only"
        }
    }
}

import Foundation
import PerchGraph

/// Reads profile files, resolves `extends`, validates, and finds bundled profiles by name.
///
/// A name given to `extends` (or to `load(name:)`) is looked up as `<name>.yaml` (or `.yml`):
/// first in the directory of the file that extends it, then in `searchPaths` in order.
public struct ProfileLoader: Sendable {
    /// Directories holding bundled profiles, searched in order (see `defaultSearchPaths`).
    public var searchPaths: [String]

    /// The reserved name of the profile detected from the machine Perch runs on.
    public static let hostName = "host"

    public init(searchPaths: [String]? = nil) {
        self.searchPaths = searchPaths ?? Self.defaultSearchPaths()
    }

    /// Where bundled profiles are looked for, in this order (only existing directories):
    /// 1. every directory in `$PERCH_PROFILES` (colon-separated);
    /// 2. `./device-profiles` in the current directory;
    /// 3. the nearest `device-profiles/` in an ancestor of the executable's directory (a
    ///    checkout's `.build/debug/perch` finds the checkout's `device-profiles/`).
    public static func defaultSearchPaths(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = Bundle.main.executableURL?.path
    ) -> [String] {
        var candidates = [String]()
        if let dirs = environment["PERCH_PROFILES"] {
            candidates += dirs.split(separator: ":").map(String.init)
        }
        candidates.append((currentDirectory as NSString).appendingPathComponent("device-profiles"))
        if let executablePath {
            var dir = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
            while dir.path != "/" && !dir.path.isEmpty {
                let candidate = dir.appendingPathComponent("device-profiles")
                if isDirectory(candidate.path) {
                    candidates.append(candidate.path)
                    break
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        var seen = Set<String>()
        return candidates.filter { isDirectory($0) && seen.insert(canonical($0)).inserted }
    }

    // MARK: - Public API

    /// What validating one file found.
    public struct Validation: Sendable {
        public var file: String
        /// The profile's declared name, if it has one.
        public var name: String?
        /// Every problem in the file and in the files it extends, in file order.
        public var diagnostics: [ProfileDiagnostic]
        /// The resolved profile when there are no problems and it is not abstract.
        public var profile: DeviceProfile?
        /// `abstract: true`: a base for `extends`, not a device itself.
        public var isAbstract: Bool

        public var isValid: Bool { diagnostics.isEmpty }
    }

    /// Validates one profile file (and what it extends), collecting every problem.
    public func validate(file: String) -> Validation {
        var diagnostics = [ProfileDiagnostic]()
        let resolved = resolve(path: file, stack: [], diagnostics: &diagnostics)
        var result = Validation(file: file, name: resolved?.name, diagnostics: [], profile: nil, isAbstract: resolved?.isAbstract ?? false)
        if let resolved {
            checkResolved(resolved, diagnostics: &diagnostics)
            if diagnostics.isEmpty && !resolved.isAbstract {
                result.profile = decode(resolved)
            }
        }
        result.diagnostics = Self.ordered(diagnostics)
        return result
    }

    /// Loads and resolves one profile file.
    public func load(file: String) throws(ProfileError) -> DeviceProfile {
        let v = validate(file: file)
        guard v.isValid else { throw .invalid(v.diagnostics) }
        guard let profile = v.profile else { throw .abstract(name: v.name ?? file, file: file) }
        return profile
    }

    /// Loads a bundled profile by name; `host` is detected from this machine.
    public func load(name: String) throws(ProfileError) -> DeviceProfile {
        if name == Self.hostName { return HostProfile.detect() }
        guard let path = path(forName: name, besides: nil) else {
            throw .notFound(name: name, searched: searchPaths, suggestion: Suggestions.closest(to: name, in: bundledNames() + [Self.hostName]))
        }
        return try load(file: path)
    }

    /// A path (anything with a `/` or ending in `.yaml`/`.yml`, or an existing file) is loaded as
    /// a file; anything else as a bundled name.
    public func load(nameOrFile argument: String) throws(ProfileError) -> DeviceProfile {
        if Self.looksLikePath(argument) { return try load(file: argument) }
        return try load(name: argument)
    }

    public static func looksLikePath(_ argument: String) -> Bool {
        argument.contains("/") || argument.hasSuffix(".yaml") || argument.hasSuffix(".yml")
            || (argument != hostName && FileManager.default.fileExists(atPath: argument))
    }

    /// Names of the profiles in `searchPaths` (file names without `.yaml`), sorted, first wins.
    public func bundledNames() -> [String] {
        var names = Set<String>()
        for dir in searchPaths {
            for file in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                if file.hasSuffix(".yaml") { names.insert(String(file.dropLast(5))) }
                else if file.hasSuffix(".yml") { names.insert(String(file.dropLast(4))) }
            }
        }
        return names.sorted()
    }

    /// The file a name refers to: `<name>.yaml`/`.yml` beside `file` (if given), then in
    /// `searchPaths`.
    public func path(forName name: String, besides file: String?) -> String? {
        for dir in directories(besides: file) {
            for ext in ["yaml", "yml"] {
                let candidate = (dir as NSString).appendingPathComponent(name + "." + ext)
                if FileManager.default.fileExists(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    // MARK: - Resolution

    /// A profile tree with `extends` applied.
    struct Resolved {
        var name: String?
        var isAbstract: Bool
        var tree: LocatedYAML
        /// The leaf file's own (checked) tree, for locating "missing key" problems.
        var leaf: LocatedYAML
    }

    private static let notInherited: Set<String> = ["name", "extends", "abstract", "description"]

    private func directories(besides file: String?) -> [String] {
        var dirs = [String]()
        if let file { dirs.append((file as NSString).deletingLastPathComponent.isEmpty ? "." : (file as NSString).deletingLastPathComponent) }
        dirs += searchPaths
        return dirs
    }

    private func resolve(path: String, stack: [(name: String, path: String)], diagnostics: inout [ProfileDiagnostic]) -> Resolved? {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file (not UTF-8 text, or no permission)" : "no such file"
            diagnostics.append(ProfileDiagnostic(file: path, line: 0, column: 0, message: reason))
            return nil
        }
        let countBefore = diagnostics.count
        guard let raw = LocatedYAML.parse(text, file: path, diagnostics: &diagnostics) else {
            if diagnostics.count == countBefore {
                diagnostics.append(ProfileDiagnostic(file: path, line: 1, column: 1, message: "empty profile; a profile needs at least name, cpu.isa and memory.ram_mb"))
            }
            return nil
        }
        guard let tree = ProfileSchema.profile.check(raw, path: "", diagnostics: &diagnostics) else { return nil }
        let root = tree.location
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension

        var name: String?
        if let nameNode = tree["name"] {
            if let n = nameNode.string {
                if n.isEmpty || n.unicodeScalars.contains(where: { !Self.nameCharacters.contains($0) }) {
                    diagnostics.append(nameNode.location.diagnostic("name '\(n)' may only use letters, digits, '.', '_' and '-' (it is also a file name)"))
                } else {
                    name = n
                }
            }
        } else {
            diagnostics.append(root.diagnostic("missing required key 'name'"))
        }
        let isAbstract = tree["abstract"]?.bool ?? false

        var merged = tree
        if let extendsNode = tree["extends"], let parentName = extendsNode.string {
            let here = Self.canonical(path)
            let chain = stack + [(name ?? stem, here)]
            if let parentPath = self.path(forName: parentName, besides: path) {
                let parentCanonical = Self.canonical(parentPath)
                if let start = chain.firstIndex(where: { $0.path == parentCanonical }) {
                    let cycle = chain[start...].map(\.name) + [parentName]
                    diagnostics.append(extendsNode.location.diagnostic("extends cycle: " + cycle.joined(separator: " → ")))
                } else if let parent = resolve(path: parentPath, stack: chain, diagnostics: &diagnostics) {
                    merged = LocatedYAML.merge(parent: parent.tree.removing(Self.notInherited), child: tree)
                }
            } else {
                let looked = directories(besides: path)
                var message = "extends '\(parentName)', but no profile has that name (looked for \(parentName).yaml in \(looked.joined(separator: ", ")))"
                var known = Set(bundledNames())
                for file in (try? FileManager.default.contentsOfDirectory(atPath: looked[0])) ?? [] where file.hasSuffix(".yaml") {
                    known.insert(String(file.dropLast(5)))
                }
                if let s = Suggestions.closest(to: parentName, in: known.sorted()) { message += "; did you mean '\(s)'?" }
                diagnostics.append(extendsNode.location.diagnostic(message))
            }
        }
        return Resolved(name: name, isAbstract: isAbstract, tree: merged, leaf: tree)
    }

    private static let nameCharacters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

    /// Checks that need the merged profile: required keys, features against the ISA, the
    /// accelerator's consistency.
    private func checkResolved(_ r: Resolved, diagnostics: inout [ProfileDiagnostic]) {
        let tree = r.tree
        func whereMissing(_ section: String) -> SourceLocation {
            r.leaf.entries.first(where: { $0.key == section })?.keyLocation ?? r.leaf.location
        }
        if !r.isAbstract {
            if !tree.has(["cpu", "isa"]) {
                diagnostics.append(whereMissing("cpu").diagnostic("missing required key 'cpu.isa' (set it here or in the profile this extends)"))
            }
            if !tree.has(["memory", "ram_mb"]) {
                diagnostics.append(whereMissing("memory").diagnostic("missing required key 'memory.ram_mb' (set it here or in the profile this extends)"))
            }
        }
        if let isaName = tree["cpu"]?["isa"]?.string, let isa = DeviceProfile.ISA(rawValue: isaName) {
            for item in tree["cpu"]?["features"]?.items ?? [] {
                guard let f = item.string.flatMap(DeviceProfile.CPUFeature.init(rawValue:)) else { continue }
                if !f.isas.contains(isa) {
                    let possible = isa.possibleFeatures.map(\.rawValue).joined(separator: ", ")
                    diagnostics.append(item.location.diagnostic("cpu feature '\(f.rawValue)' does not exist on \(isa.rawValue) (\(isa.rawValue) features: \(possible))"))
                }
            }
        }
        if let accelerator = tree["accelerator"] {
            let kindNode = accelerator["kind"]
            let dtypes = accelerator["dtypes"]
            switch kindNode?.string.flatMap(DeviceProfile.AcceleratorKind.init(rawValue:)) {
            case .none?:
                if let dtypes, !dtypes.items.isEmpty {
                    diagnostics.append(dtypes.location.diagnostic("accelerator.dtypes is set but accelerator.kind is none; remove dtypes or name the accelerator's kind"))
                }
            case let kind?:
                if dtypes == nil || dtypes!.items.isEmpty {
                    diagnostics.append(kindNode!.location.diagnostic("accelerator.kind is \(kind.rawValue) but accelerator.dtypes is empty; list what it computes in, e.g. [int8] or [fp16, int8]"))
                }
            case nil:
                if kindNode == nil && !r.isAbstract {
                    let at = r.leaf.entries.first(where: { $0.key == "accelerator" })?.keyLocation ?? accelerator.location
                    diagnostics.append(at.diagnostic("missing required key 'accelerator.kind' (none, gpu, npu or tpu)"))
                }
            }
        }
    }

    /// Builds the typed profile from a tree that passed every check.
    private func decode(_ r: Resolved) -> DeviceProfile? {
        let t = r.tree
        guard let name = r.name,
              let isa = t["cpu"]?["isa"]?.string.flatMap(DeviceProfile.ISA.init(rawValue:)),
              let ram = t["memory"]?["ram_mb"]?.int
        else { return nil }
        var features = [DeviceProfile.CPUFeature]()
        for item in t["cpu"]?["features"]?.items ?? [] {
            if let f = item.string.flatMap(DeviceProfile.CPUFeature.init(rawValue:)), !features.contains(f) { features.append(f) }
        }
        var accelerator = DeviceProfile.Accelerator.none
        if let a = t["accelerator"], let kind = a["kind"]?.string.flatMap(DeviceProfile.AcceleratorKind.init(rawValue:)) {
            var dtypes = [DeviceProfile.AcceleratorDType]()
            for item in a["dtypes"]?.items ?? [] {
                if let d = item.string.flatMap(DeviceProfile.AcceleratorDType.init(rawValue:)), !dtypes.contains(d) { dtypes.append(d) }
            }
            let ops = a["ops"].map { $0.items.compactMap { $0.string.flatMap(OpType.init(rawValue:)) } }
            accelerator = DeviceProfile.Accelerator(kind: kind, name: a["name"]?.string, dtypes: dtypes, ops: ops)
        }
        let b = t["budgets"]
        return DeviceProfile(
            name: name,
            extends: r.leaf["extends"]?.string,
            description: r.leaf["description"]?.string,
            cpu: DeviceProfile.CPU(
                isa: isa, features: features, cores: t["cpu"]?["cores"]?.int,
                clockMHz: t["cpu"]?["clock_mhz"]?.double, core: t["cpu"]?["core"]?.string
            ),
            memory: DeviceProfile.Memory(ramMB: ram, modelShare: t["memory"]?["model_share"]?.double ?? DeviceProfile.Memory.defaultModelShare),
            storageMB: t["storage_mb"]?.int,
            accelerator: accelerator,
            budgets: DeviceProfile.Budgets(
                latencyMS: b?["latency_ms"]?.double, maxAccuracyDrop: b?["max_accuracy_drop"]?.double,
                maxModelMB: b?["max_model_mb"]?.double
            )
        )
    }

    // MARK: - Helpers

    /// Groups diagnostics by file (in the order files were first reported) and sorts each
    /// file's by position.
    static func ordered(_ diagnostics: [ProfileDiagnostic]) -> [ProfileDiagnostic] {
        var fileOrder = [String: Int]()
        for d in diagnostics where fileOrder[d.file] == nil { fileOrder[d.file] = fileOrder.count }
        return diagnostics.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            if fileOrder[x.file]! != fileOrder[y.file]! { return fileOrder[x.file]! < fileOrder[y.file]! }
            if x.line != y.line { return x.line < y.line }
            if x.column != y.column { return x.column < y.column }
            return a.offset < b.offset
        }.map(\.element)
    }

    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}

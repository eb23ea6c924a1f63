import Crypto
import Foundation

/// `manifest.json`: what a bundle holds and what it needs. Written as canonical JSON (sorted keys,
/// no insignificant whitespace) so that the same inputs always give the same bytes, and the
/// signature covers exactly those bytes.
public struct BundleManifest: Sendable, Equatable {
    public struct FileDigest: Sendable, Equatable {
        public var sha256: String
        public var size: Int
        public init(sha256: String, size: Int) {
            self.sha256 = sha256
            self.size = size
        }
    }

    public static let currentFormat = 1
    public static let isas = ["aarch64", "armv7", "x86_64"]

    public var bundleFormat = BundleManifest.currentFormat
    /// ISO 8601 UTC, e.g. `2024-01-01T00:00:00Z`.
    public var created: String
    public var engineVersion: String
    public var files: [String: FileDigest]
    public var modelName: String
    /// Dot-separated integers (`1.2.0`); compared numerically for downgrade protection.
    public var modelVersion: String
    /// The optimizer's report as canonical JSON text, or nil.
    public var optimizerReport: String?
    public var profile: String
    public var targetISA: String

    public init(created: String, engineVersion: String, files: [String: FileDigest], modelName: String,
                modelVersion: String, optimizerReport: String?, profile: String, targetISA: String) {
        self.created = created
        self.engineVersion = engineVersion
        self.files = files
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.optimizerReport = optimizerReport
        self.profile = profile
        self.targetISA = targetISA
    }

    public func canonicalJSON() -> [UInt8] {
        var s = "{\"bundle_format\":" + String(bundleFormat)
        s += ",\"created\":" + Self.quote(created)
        s += ",\"engine_version\":" + Self.quote(engineVersion)
        s += ",\"files\":{"
        s += files.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { name in
            let f = files[name]!
            return Self.quote(name) + ":{\"sha256\":" + Self.quote(f.sha256) + ",\"size\":" + String(f.size) + "}"
        }.joined(separator: ",")
        s += "},\"model\":{\"name\":" + Self.quote(modelName) + ",\"version\":" + Self.quote(modelVersion) + "}"
        s += ",\"optimizer_report\":" + (optimizerReport ?? "null")
        s += ",\"profile\":" + Self.quote(profile)
        s += ",\"target_isa\":" + Self.quote(targetISA) + "}"
        return Array(s.utf8)
    }

    /// Re-encodes any JSON text canonically (sorted keys, no whitespace), for the optimizer report.
    public static func canonicalize(json data: Data) throws -> String {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw BundleError.badInput("the optimizer report is not valid JSON")
        }
        if object is NSNull { return "null" }
        let out = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        return String(decoding: out, as: UTF8.self)
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Parses and validates manifest bytes (any valid JSON; canonical form is not required to read).
    public static func parse(_ bytes: [UInt8]) throws -> BundleManifest {
        guard let root = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw BundleError.manifest("manifest.json is not a JSON object")
        }
        func string(_ key: String, in dict: [String: Any], _ path: String) throws -> String {
            guard let v = dict[key] as? String else { throw BundleError.manifest("'" + path + "' is missing or not a string") }
            return v
        }
        guard let format = root["bundle_format"] as? Int else { throw BundleError.manifest("'bundle_format' is missing") }
        guard format == currentFormat else {
            throw BundleError.manifest("bundle_format " + String(format) + " is not supported (this build reads " + String(currentFormat) + ")")
        }
        guard let model = root["model"] as? [String: Any] else { throw BundleError.manifest("'model' is missing") }
        guard let filesObject = root["files"] as? [String: Any] else { throw BundleError.manifest("'files' is missing") }
        var files: [String: FileDigest] = [:]
        for (name, value) in filesObject {
            guard isValidFileName(name) else { throw BundleError.manifest("file name '" + name + "' is not allowed") }
            guard let f = value as? [String: Any], let sha = f["sha256"] as? String, let size = f["size"] as? Int, size >= 0,
                  sha.count == 64
            else { throw BundleError.manifest("entry for '" + name + "' needs sha256 (64 hex digits) and size") }
            files[name] = FileDigest(sha256: sha.lowercased(), size: size)
        }
        guard files["model.perchm"] != nil else { throw BundleError.manifest("'files' does not list model.perchm") }
        var report: String? = nil
        if let r = root["optimizer_report"], !(r is NSNull) {
            let data = try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
            report = String(decoding: data, as: UTF8.self)
        }
        let m = BundleManifest(
            created: try string("created", in: root, "created"),
            engineVersion: try string("engine_version", in: root, "engine_version"),
            files: files,
            modelName: try string("name", in: model, "model.name"),
            modelVersion: try string("version", in: model, "model.version"),
            optimizerReport: report,
            profile: try string("profile", in: root, "profile"),
            targetISA: try string("target_isa", in: root, "target_isa"))
        guard isValidName(m.modelName) else { throw BundleError.manifest("model name '" + m.modelName + "' is not allowed") }
        guard isValidVersion(m.modelVersion) else { throw BundleError.manifest("model version '" + m.modelVersion + "' is not dot-separated integers") }
        guard isas.contains(m.targetISA) else { throw BundleError.manifest("target_isa '" + m.targetISA + "' is not one of " + isas.joined(separator: ", ")) }
        return m
    }

    /// Model names: 1–64 of `[A-Za-z0-9._-]`, not starting with `.` (they become directory names).
    public static func isValidName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 64, s.utf8.first != UInt8(ascii: ".") else { return false }
        return s.utf8.allSatisfy { isSafeByte($0) }
    }

    /// Versions: 1–4 dot-separated integers of at most 9 digits (`1`, `1.2`, `1.2.0`).
    public static func isValidVersion(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return false }
        return parts.allSatisfy { p in !p.isEmpty && p.count <= 9 && p.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
    }

    /// Numeric comparison of two valid versions; missing components count as 0.
    public static func compareVersions(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }
        let y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let u = i < x.count ? x[i] : 0
            let v = i < y.count ? y[i] : 0
            if u != v { return u < v ? -1 : 1 }
        }
        return 0
    }

    /// Names a bundle may contain besides the manifest and signature.
    public static func isValidFileName(_ name: String) -> Bool {
        if name == "model.perchm" { return true }
        for prefix in ["eval/inputs/", "eval/outputs/"] where name.hasPrefix(prefix) {
            let rest = String(name.dropFirst(prefix.count))
            return rest.hasSuffix(".npy") && isValidName(rest)
        }
        return false
    }

    static func isSafeByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 46 || b == 95 || b == 45
    }

    public static func sha256Hex<D: DataProtocol>(_ data: D) -> String {
        SHA256.hash(data: data).map { b in
            let h = String(b, radix: 16)
            return b < 16 ? "0" + h : h
        }.joined()
    }
}

import Crypto
import Foundation
import PerchGraph

/// Builds `B.perch` from a `.perchm` model: manifest, optional signature, model, optional eval files.
public enum BundlePacker {
    public struct Options {
        public var modelPath: String
        public var modelName: String
        public var modelVersion: String
        public var profile: String
        public var targetISA: String
        public var engineVersion: String
        /// A directory with `inputs/*.npy` and `outputs/*.npy` (expected outputs), or nil.
        public var evalDirectory: String?
        /// A JSON file with the optimizer's report, or nil.
        public var optimizerReportPath: String?
        /// nil packs an unsigned bundle (devices refuse it unless configured to allow unsigned).
        public var signingKey: Curve25519.Signing.PrivateKey?
        /// ISO 8601 UTC; nil takes SOURCE_DATE_EPOCH, else the model file's mtime.
        public var created: String?

        public init(modelPath: String, modelName: String, modelVersion: String, profile: String, targetISA: String,
                    engineVersion: String, evalDirectory: String? = nil, optimizerReportPath: String? = nil,
                    signingKey: Curve25519.Signing.PrivateKey?, created: String? = nil) {
            self.modelPath = modelPath
            self.modelName = modelName
            self.modelVersion = modelVersion
            self.profile = profile
            self.targetISA = targetISA
            self.engineVersion = engineVersion
            self.evalDirectory = evalDirectory
            self.optimizerReportPath = optimizerReportPath
            self.signingKey = signingKey
            self.created = created
        }
    }

    public static func pack(_ o: Options) throws -> [UInt8] {
        guard BundleManifest.isValidName(o.modelName) else {
            throw BundleError.badInput("model name '" + o.modelName + "' is not allowed: use 1-64 of A-Z a-z 0-9 . _ - (not starting with '.')")
        }
        guard BundleManifest.isValidVersion(o.modelVersion) else {
            throw BundleError.badInput("model version '" + o.modelVersion + "' must be dot-separated integers, e.g. 1.2.0")
        }
        guard BundleManifest.isas.contains(o.targetISA) else {
            throw BundleError.badInput("ISA '" + o.targetISA + "' must be one of " + BundleManifest.isas.joined(separator: ", "))
        }
        guard let modelData = FileManager.default.contents(atPath: o.modelPath) else {
            throw BundleError.badInput("model '" + o.modelPath + "' does not exist or is not readable")
        }
        let model = [UInt8](modelData)
        do { _ = try PerchModelFile.decode(model) } catch {
            throw BundleError.badInput("'" + o.modelPath + "' is not a valid .perchm model (" + error.description + "); make one with 'perch import'")
        }
        var payload: [(String, [UInt8])] = [("model.perchm", model)]
        if let dir = o.evalDirectory {
            var evalFiles: [(String, [UInt8])] = []
            for sub in ["inputs", "outputs"] {
                let path = (dir as NSString).appendingPathComponent(sub)
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                for name in names where name.hasSuffix(".npy") {
                    let entry = "eval/" + sub + "/" + name
                    guard BundleManifest.isValidFileName(entry) else {
                        throw BundleError.badInput("eval file '" + name + "' has characters outside A-Z a-z 0-9 . _ -")
                    }
                    guard let d = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent(name)) else {
                        throw BundleError.badInput("cannot read '" + name + "' in '" + path + "'")
                    }
                    evalFiles.append((entry, [UInt8](d)))
                }
            }
            if evalFiles.isEmpty {
                throw BundleError.badInput("'" + dir + "' has no inputs/*.npy or outputs/*.npy")
            }
            evalFiles.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            payload += evalFiles
        }
        var report: String? = nil
        if let path = o.optimizerReportPath {
            guard let d = FileManager.default.contents(atPath: path) else {
                throw BundleError.badInput("optimizer report '" + path + "' does not exist or is not readable")
            }
            report = try BundleManifest.canonicalize(json: d)
        }
        var files: [String: BundleManifest.FileDigest] = [:]
        for (name, bytes) in payload {
            files[name] = .init(sha256: BundleManifest.sha256Hex(bytes), size: bytes.count)
        }
        let manifest = BundleManifest(
            created: try o.created ?? createdTime(modelPath: o.modelPath), engineVersion: o.engineVersion, files: files,
            modelName: o.modelName, modelVersion: o.modelVersion, optimizerReport: report, profile: o.profile,
            targetISA: o.targetISA)
        let manifestBytes = manifest.canonicalJSON()
        var entries = [ArchiveEntry("manifest.json", .file(manifestBytes))]
        if let key = o.signingKey {
            let signature = try key.signature(for: manifestBytes)
            entries.append(ArchiveEntry("manifest.sig", .file([UInt8](signature))))
        }
        for (name, bytes) in payload { entries.append(ArchiveEntry(name, .file(bytes))) }
        return try BundleArchive.write(entries)
    }

    /// SOURCE_DATE_EPOCH if set, else the model file's modification time, as ISO 8601 UTC.
    public static func createdTime(modelPath: String) throws -> String {
        var seconds: Int
        if let env = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], !env.isEmpty {
            guard let v = Int(env) else { throw BundleError.badInput("SOURCE_DATE_EPOCH '" + env + "' is not an integer") }
            seconds = v
        } else {
            let attributes = try? FileManager.default.attributesOfItem(atPath: modelPath)
            seconds = Int((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        }
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}

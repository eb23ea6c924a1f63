import ArgumentParser
import Foundation
import PerchBundle

/// `perch pack M.perchm --profile P --sign-key K -o B.perch`
struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack a .perchm model into a signed bundle (tar + zstd) for 'perch-agent install'.",
        discussion: """
            The bundle holds manifest.json (names, versions, SHA-256 of every file), manifest.sig \
            (Ed25519 over the manifest), model.perchm and optional eval/ files. Packing is \
            deterministic: 'created' comes from SOURCE_DATE_EPOCH if set, else the model's mtime.
            """
    )

    @Argument(help: "The model (.perchm, from 'perch import' or 'perch optimize').")
    var model: String

    @Option(help: "Device profile: a profile name or a YAML file (its 'name:' and 'cpu: isa:' are read).")
    var profile: String

    @Option(name: .customLong("sign-key"), help: "Secret key from 'perch keys generate'.")
    var signKey: String?

    @Option(name: .shortAndLong, help: "Output bundle file.")
    var output: String

    @Option(help: "Model name (default: the model file's name without extension).")
    var name: String?

    @Option(name: .customLong("model-version"), help: "Model version, dot-separated integers.")
    var modelVersion = "1.0.0"

    @Option(help: "Target ISA: aarch64, armv7 or x86_64 (default: the profile's, else this machine's).")
    var isa: String?

    @Option(name: .customLong("eval-dir"), help: "Directory with inputs/*.npy and outputs/*.npy to ship as eval/.")
    var evalDir: String?

    @Option(name: .customLong("optimizer-report"), help: "JSON report of 'perch optimize' to embed in the manifest.")
    var optimizerReport: String?

    @Flag(help: "Pack without a signature (devices refuse it unless their config allows unsigned bundles).")
    var unsigned = false

    func validate() throws {
        if signKey == nil && !unsigned { throw ValidationError("--sign-key is required (or pass --unsigned)") }
        if signKey != nil && unsigned { throw ValidationError("--sign-key and --unsigned exclude each other") }
    }

    func run() throws {
        let key = try signKey.map { try BundleKeys.loadSecret($0) }
        let resolved = try ProfileReference.resolve(profile)
        let modelName = name ?? ((((model as NSString).lastPathComponent) as NSString).deletingPathExtension)
        let bytes = try BundlePacker.pack(.init(
            modelPath: model, modelName: modelName, modelVersion: modelVersion, profile: resolved.name,
            targetISA: isa ?? resolved.isa ?? ProfileReference.hostISA, engineVersion: Perch.version,
            evalDirectory: evalDir, optimizerReportPath: optimizerReport, signingKey: key))
        let tmp = output + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else {
            throw CLIError(.badInput, "cannot write '" + output + "'", hint: "check that the directory exists and is writable")
        }
        _ = try? FileManager.default.removeItem(atPath: output)
        try FileManager.default.moveItem(atPath: tmp, toPath: output)
        status("packed " + modelName + " " + modelVersion + " (" + String(bytes.count) + " bytes" + (key == nil ? ", UNSIGNED" : ", signed") + ") -> " + output)
    }
}

/// The one place `pack` reads a device profile. A profile is given by name or as a YAML file; from
/// the file only `name:` and the `isa:` under `cpu:` are needed, found by a line scan until the
/// profiles module offers a parsed profile.
enum ProfileReference {
    static var hostISA: String {
        #if arch(arm64)
        return "aarch64"
        #elseif arch(arm)
        return "armv7"
        #else
        return "x86_64"
        #endif
    }

    static func resolve(_ profile: String) throws -> (name: String, isa: String?) {
        let isFile = profile.hasSuffix(".yaml") || profile.hasSuffix(".yml") || profile.contains("/")
        guard isFile else { return (profile, nil) }
        guard let data = FileManager.default.contents(atPath: profile) else {
            throw CLIError(.badInput, "profile '" + profile + "' does not exist or is not readable", hint: "give a profile name or a path to its YAML file")
        }
        var name: String? = nil
        var isa: String? = nil
        var inCPU = false
        for raw in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let indented = line.first == " " || line.first == "\t"
            if !indented { inCPU = trimmed.hasPrefix("cpu:") }
            func value(_ key: String) -> String? {
                guard trimmed.hasPrefix(key + ":") else { return nil }
                let v = trimmed.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
                return v.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            }
            if !indented, let v = value("name") { name = v }
            if inCPU && indented, let v = value("isa") { isa = v }
        }
        let fallback = ((((profile as NSString).lastPathComponent) as NSString).deletingPathExtension)
        return (name ?? fallback, isa)
    }
}

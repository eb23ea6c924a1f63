import ArgumentParser
import Foundation
import PerchBundle
import PerchProfiles

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

    @Option(help: "Device profile: a bundled profile name or a YAML file (its name and cpu.isa go into the manifest).")
    var profile: String

    @Option(name: .customLong("sign-key"), help: "Secret key from 'perch keys generate'.")
    var signKey: String?

    @Option(name: .shortAndLong, help: "Output bundle file.")
    var output: String

    @Option(help: "Model name (default: the model file's name without extension).")
    var name: String?

    @Option(name: .customLong("model-version"), help: "Model version, dot-separated integers.")
    var modelVersion = "1.0.0"

    @Option(help: "Target ISA: aarch64, armv7 or x86_64 (default: the profile's).")
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

/// The one place `pack` reads a device profile: by name (bundled profiles, $PERCH_PROFILES) or
/// as a YAML file, through PerchProfiles; the bundle records its name and takes its ISA.
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
        let p = try ProfileLoader().load(nameOrFile: profile)
        return (p.name, p.cpu.isa.rawValue)
    }
}

import ArgumentParser
import Foundation
import PerchBundle

/// `perch verify B.perch --trusted-key K.pub [--json]`
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a bundle's signature, hashes and entries the way a device does (exit 4 if it would be refused).",
        discussion: "Unsigned bundles fail unless --allow-unsigned is given."
    )

    @Argument(help: "The bundle (.perch).")
    var bundle: String

    @Option(name: .customLong("trusted-key"), help: "Public key (.pub) to accept; repeat for several.")
    var trustedKeys: [String] = []

    @Flag(name: .customLong("allow-unsigned"), help: "Accept a bundle without manifest.sig (hashes are still checked).")
    var allowUnsigned = false

    @Flag(help: "Print the result as JSON on stdout.")
    var json = false

    func validate() throws {
        if trustedKeys.isEmpty && !allowUnsigned { throw ValidationError("--trusted-key is required (or --allow-unsigned)") }
    }

    func run() throws {
        let keys = try trustedKeys.map { try BundleKeys.loadPublic($0) }
        guard let data = FileManager.default.contents(atPath: bundle) else {
            throw CLIError(.badInput, "bundle '" + bundle + "' does not exist or is not readable", hint: "check the path")
        }
        let v = try BundleVerifier.verify([UInt8](data), trustedKeys: keys, allowUnsigned: allowUnsigned)
        let m = v.manifest
        if json {
            print(JSONValue.object([
                ("ok", .bool(true)), ("model", .string(m.modelName)), ("version", .string(m.modelVersion)),
                ("profile", .string(m.profile)), ("target_isa", .string(m.targetISA)), ("engine_version", .string(m.engineVersion)),
                ("created", .string(m.created)), ("signed", .bool(v.signed)),
                ("signer", v.signerIndex.map { .string(trustedKeys[$0]) } ?? .null),
                ("files", .array(v.files.map { .object([("name", .string($0.name)), ("size", .int($0.bytes.count))]) })),
            ]).text)
        } else {
            print("OK " + m.modelName + " " + m.modelVersion + " for " + m.profile + " (" + m.targetISA + "), "
                  + (v.signed ? "signed by " + trustedKeys[v.signerIndex!] : "UNSIGNED") + ", " + String(v.files.count) + " file(s) verified")
        }
    }
}

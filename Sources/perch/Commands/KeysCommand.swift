import ArgumentParser
import PerchBundle

/// `perch keys generate DIR`
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage bundle signing keys.",
        subcommands: [Generate.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an Ed25519 key pair: DIR/perch-signing.key (secret, mode 0600) and DIR/perch-signing.pub.",
            discussion: "Give the .pub file to devices with 'perch-agent trust'; sign with 'perch pack --sign-key DIR/perch-signing.key'."
        )

        @Argument(help: "Directory for the key pair (created if missing).")
        var directory: String

        func run() throws {
            let paths = try BundleKeys.generate(in: directory)
            print(paths.secretPath)
            print(paths.publicPath)
        }
    }
}

import ArgumentParser
import Foundation
import PerchAgentBuild

/// `perch agent …`: the device agent, seen from the laptop.
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Build the device agent (perch-agent) for a device ISA.",
        subcommands: [AgentBuildCommand.self]
    )
}

/// `perch agent build --isa aarch64|armv7|x86_64 [-o FILE] [--json]`
struct AgentBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Cross-compile a static, stripped perch-agent with Embedded Swift.",
        discussion: """
            Compiles PerchGraph, PerchEngine and perch-agent in Embedded Swift mode for the ISA, links \
            them with the target's C cross toolchain (-static-pie) and Debian's static libarchive, \
            libzstd and libsodium, and strips the result. Builds are cached by ISA and a hash of the \
            sources, libraries and toolchain versions in $PERCH_CACHE_DIR/agents (default \
            ~/.cache/perch/agents); an unchanged tree builds once. scripts/bootstrap.sh installs the \
            cross toolchains and libraries from Debian.
            """
    )

    @Option(help: "Device ISA: aarch64, armv7 or x86_64.")
    var isa: String

    @Option(name: .shortAndLong, help: "Copy the binary here (default: only print the cached path).")
    var output: String?

    @Option(help: "The Perch checkout to build from (default: found above the current directory or the perch binary).")
    var source: String?

    @Flag(help: "Print {\"isa\", \"path\", \"sha256\", \"size_bytes\", \"cached\", …} on stdout.")
    var json = false

    func run() throws {
        guard let target = AgentISA(name: isa) else { throw AgentBuildError.unknownISA(isa) }
        let builder = try AgentBuilder(sourceRoot: source, log: { status($0) })
        var result = try builder.build(isa: target)
        if let output {
            try AgentBuilder.copy(result, to: output)
            result.path = output
        }
        if json {
            print(JSONValue.object([
                ("isa", .string(result.isa.rawValue)), ("path", .string(result.path)),
                ("sha256", .string(result.sha256)), ("size_bytes", .int(result.sizeBytes)),
                ("cached", .bool(result.cached)), ("route", .string(result.route)),
                ("cache_key", .string(result.cacheKey)), ("seconds", .double(result.seconds)),
            ]).text)
        } else {
            print(result.path)
            status("perch-agent " + result.isa.rawValue + ": " + String(result.sizeBytes) + " bytes, sha256 "
                   + String(result.sha256.prefix(16)) + (result.cached ? " (cached)" : " (built)"))
        }
    }
}

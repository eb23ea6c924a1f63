import ArgumentParser
import Foundation
import PerchAgentBuild
import PerchFleet

/// `perch testfleet up|down`
struct TestfleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testfleet",
        abstract: "Local test devices: real OpenSSH sshd processes with their own keys, homes and agents.",
        discussion: """
            As root with 'ip netns', each device gets its own network namespace and a veth link \
            (10.213.X.1 host side, 10.213.X.2 device side); otherwise it listens on a 127.0.0.1 port. \
            'up' writes DIR/fleet.yaml (an inventory for 'perch deploy --inventory' and 'perch rollout'), \
            DIR/known_hosts and DIR/id_ed25519 (the client key); 'down' stops exactly what 'up' started. \
            '--emulate aarch64' makes devices of another ISA (profile rpi4, the cross-built agent under \
            qemu-aarch64-static); with '--emulated N' only the last N are, the others are of this machine's ISA.
            """,
        subcommands: [Up.self, Down.self]
    )

    static let defaultState = ".perch/testfleet"

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start N test devices.")

        @Option(help: "Number of devices.") var devices = 1
        @Option(help: "State directory.") var state = TestfleetCommand.defaultState
        @Option(help: "Emulate another ISA (aarch64) with qemu-user: the device runs the cross-built agent (perch agent build, cached) under qemu-aarch64-static.") var emulate: String?
        @Option(help: ArgumentHelp("With --emulate: emulate only the last N devices (a mixed fleet); the others are of this machine's ISA. Default: all.", valueName: "N")) var emulated: Int?
        @Flag(help: "Use 127.0.0.1 ports even when network namespaces are available.") var loopback = false
        @Flag(name: .customLong("no-agent"), help: "Start devices without perch-agent ('perch deploy' installs it).") var noAgent = false
        @Flag(help: "Print the devices as JSON.") var json = false

        func run() throws {
            var o = TestFleet.Options(stateDirectory: state)
            o.devices = devices
            o.useNamespaces = loopback ? false : nil
            o.emulatedCount = emulated
            if emulated != nil && emulate == nil {
                throw CLIError(.badInput, "--emulated needs --emulate", hint: "e.g. --emulate aarch64 --emulated 1")
            }
            if let e = emulate {
                // A device of another ISA: its agent is the cross-built binary (perch agent build,
                // cached), run by qemu-user as the device's agent launcher.
                guard let isa = AgentISA(name: e), isa == .aarch64 else {
                    throw CLIError(.badInput, "--emulate \(e) is not supported", hint: "use --emulate aarch64")
                }
                let qemu = "/usr/bin/qemu-aarch64-static"
                guard FileManager.default.isExecutableFile(atPath: qemu) else {
                    throw CLIError(.badInput, "qemu-user is not installed (no \(qemu))", hint: "run scripts/bootstrap.sh as root (installs qemu-user-static)")
                }
                o.emulation = .init(isa: isa.rawValue, profile: "rpi4", launcher: [qemu, "-cpu", "max"],
                                    agentBinary: noAgent ? nil : try AgentBinaries.crossBuilt(isa))
                // A mixed fleet: the devices that are not emulated get this machine's agent.
                let native = o.devices - min(o.devices, emulated ?? o.devices)
                o.agentBinary = noAgent || native == 0 ? nil : try AgentBinaries.hostAgent()
            } else {
                o.agentBinary = noAgent ? nil : try AgentBinaries.hostAgent()
            }
            let list = try TestFleet.up(o)
            if json {
                print(JSONValue.array(list.map {
                    .object([("name", .string($0.name)), ("host", .string($0.host)), ("port", .int($0.port)),
                             ("user", .string($0.user)), ("isa", .string($0.isa))])
                }).text)
            } else {
                for d in list { print("\(d.name)  \(d.user)@\(d.host) port \(d.port)  \(d.isa)") }
                status("inventory: \(state)/fleet.yaml — try 'perch deploy MODEL.onnx --inventory \(state)/fleet.yaml --device dev1'")
            }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the devices and remove the namespaces 'up' made.")

        @Option(help: "State directory.") var state = TestfleetCommand.defaultState

        func run() throws {
            let r = try TestFleet.down(stateDirectory: state)
            status("stopped \(r.pids.count) sshd process(es)" + (r.namespaces.isEmpty ? "" : ", removed \(r.namespaces.joined(separator: ", "))"))
        }
    }
}

/// `perch-agent` binaries that deploy can install: beside the `perch` executable, `perch-agent`
/// (this machine's ISA) and `perch-agent-<isa>` (cross-built ones).
enum AgentBinaries {
    static var directory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }

    static func hostAgent() throws -> String {
        let p = directory + "/perch-agent"
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw CLIError(.badInput, "no perch-agent beside perch (looked for \(p))", hint: "build it with 'swift build --product perch-agent'")
        }
        return p
    }

    /// The agent for `isa` from `perch agent build`'s cache (built first when the cache has none
    /// for the current sources).
    static func crossBuilt(_ isa: AgentISA) throws -> String {
        try AgentBuilder(log: { status($0) }).build(isa: isa).path
    }

    static var all: [String: String] {
        var out: [String: String] = [:]
        for isa in ["x86_64", "aarch64", "armv7"] {
            let p = directory + "/perch-agent-" + isa
            if FileManager.default.isExecutableFile(atPath: p) { out[isa] = p }
        }
        if let p = try? hostAgent() { out[ProfileReference.hostISA] = p }
        return out
    }
}

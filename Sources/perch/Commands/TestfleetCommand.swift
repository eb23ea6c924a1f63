import ArgumentParser
import Foundation
import PerchFleet

/// `perch testfleet up|down`
struct TestfleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testfleet",
        abstract: "Local test devices: real OpenSSH sshd processes with their own keys, homes and agents.",
        discussion: """
            As root with 'ip netns', each device gets its own network namespace and a veth link \
            (10.213.X.1 host side, 10.213.X.2 device side); otherwise it listens on a 127.0.0.1 port. \
            'up' writes DIR/fleet.yaml (an inventory for 'perch deploy --inventory'), DIR/known_hosts \
            and DIR/id_ed25519 (the client key); 'down' stops exactly what 'up' started.
            """,
        subcommands: [Up.self, Down.self]
    )

    static let defaultState = ".perch/testfleet"

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start N test devices.")

        @Option(help: "Number of devices.") var devices = 1
        @Option(help: "State directory.") var state = TestfleetCommand.defaultState
        @Option(help: "Emulate another ISA (aarch64) with qemu-user.") var emulate: String?
        @Flag(help: "Use 127.0.0.1 ports even when network namespaces are available.") var loopback = false
        @Flag(name: .customLong("no-agent"), help: "Start devices without perch-agent ('perch deploy' installs it).") var noAgent = false
        @Flag(help: "Print the devices as JSON.") var json = false

        func run() throws {
            if let e = emulate {
                throw CLIError(.badInput, "--emulate \(e) is not supported yet", hint: "leave it out to get devices of this machine's ISA")
            }
            var o = TestFleet.Options(stateDirectory: state)
            o.devices = devices
            o.useNamespaces = loopback ? false : nil
            o.agentBinary = noAgent ? nil : try AgentBinaries.hostAgent()
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

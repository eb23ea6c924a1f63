import ArgumentParser
import Foundation
import PerchFleet
import PerchProfiles
import PerchSSH

extension ProfileCommand {
    /// `perch profile probe --host [user@]host[:port]` — a starting profile for a board, from the
    /// board itself, so users do not copy core counts and RAM sizes out of datasheets.
    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a profile for a device by asking it over SSH (CPU, features, cores, RAM, storage).",
            discussion: """
                Runs a short shell script on the device (uname, /proc/cpuinfo, /proc/meminfo, cpufreq, \
                df); nothing is installed. The profile has no budgets: add budgets.latency_ms and \
                max_accuracy_drop by hand, or 'extends' a bundled profile. Exit 3 for network, \
                authentication and host key problems.
                """
        )

        @Option(help: "[user@]host[:port] of the device.") var host: String?
        @Option(help: "An inventory (e.g. from 'perch testfleet up'); with --device.") var inventory: String?
        @Option(help: "Device name in the inventory.") var device: String?
        @Option(help: "Private key for SSH (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa).") var identity: String?
        @Option(help: "OpenSSH known_hosts file (default: ~/.ssh/known_hosts).") var knownHosts: String?
        @Flag(help: "Record the host key of a device seen for the first time (never a changed key).") var acceptNew = false
        @Option(help: "Seconds for TCP connect and SSH handshake.") var connectTimeout: Double = 10
        @Option(help: "Name of the new profile (default: probed-HOST).") var name: String?
        @Option(name: [.customShort("o"), .long], help: "Write the profile to this YAML file instead of standard output.") var output: String?
        @Flag(help: "Print the profile as JSON.") var json = false

        func validate() throws {
            if (host == nil) == (inventory == nil) { throw ValidationError("pass either --host or --inventory with --device") }
            if inventory != nil && device == nil { throw ValidationError("--inventory needs --device NAME") }
        }

        func run() throws {
            var target: SSHTarget
            var ssh: SSHOptions
            if let inv = inventory, let dev = device {
                let d = try Inventory.load(inv).device(named: dev)
                target = SSHTarget(user: d.user, host: d.host, port: d.port)
                ssh = SSHOptions(knownHostsPath: knownHosts ?? d.knownHosts)
                ssh.identityFiles = [identity ?? d.identity].compactMap { $0 }
            } else {
                target = try SSHTarget.parse(host!)
                ssh = SSHOptions(knownHostsPath: knownHosts)
                ssh.identityFiles = [identity].compactMap { $0 }
            }
            ssh.hostKeyPolicy = acceptNew ? .acceptNew : .strict
            ssh.connectTimeout = connectTimeout
            let client = SSHClient(target: target, options: ssh, log: { status($0) })
            defer { client.close() }
            let answer = try client.perform { (s) throws(SSHError) in try s.exec(DeviceProbe.script) }
            let profileName = name ?? DeviceProbe.profileName(forHost: device ?? target.host)
            let profile: DeviceProfile
            switch DeviceProbe.profile(fromOutput: answer.stdoutText, name: profileName) {
            case .success(let p): profile = p
            case .failure(let f): throw CLIError(.deviceOrNetwork, "cannot make a profile for \(target): \(f)", hint: "perch targets Linux devices")
            }
            let text = json ? profile.jsonText() : "# probed from \(target) by perch \(Perch.version)\n" + profile.yamlText()
            if let output {
                do {
                    try text.write(toFile: output, atomically: true, encoding: .utf8)
                } catch {
                    throw CLIError(.badInput, "cannot write '\(output)': \(error.localizedDescription)", hint: "check the path")
                }
                status("wrote \(output) (\(profile.cpu.isa.rawValue), \(profile.cpu.cores ?? 0) cores, \(profile.memory.ramMB) MB RAM)")
            } else {
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            }
        }
    }
}

import ArgumentParser
import Foundation
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

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Name of the new profile (default: probed-HOST).") var name: String?
        @Option(name: [.customShort("o"), .long], help: "Write the profile to this YAML file instead of standard output.") var output: String?
        @Flag(help: "Print the profile as JSON.") var json = false

        func run() throws {
            let device = try connection.resolve()
            let target = device.target
            let client = SSHClient(target: target, options: device.ssh, log: { status($0) })
            defer { client.close() }
            let answer = try client.perform { (s) throws(SSHError) in try s.exec(DeviceProbe.script) }
            let profileName = name ?? DeviceProbe.profileName(forHost: connection.device ?? target.host)
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

import ArgumentParser
import PerchFleet
import PerchSSH

/// How to reach one device over SSH — by `--host`, or by name in an inventory — shared by every
/// command that talks to a single device (deploy, demo, profile probe).
struct ConnectionOptions: ParsableArguments {
    @Option(help: "[user@]host[:port] of the device.") var host: String?
    @Option(help: "An inventory (e.g. from 'perch testfleet up'); with --device.") var inventory: String?
    @Option(help: "Device name in the inventory.") var device: String?
    @Option(help: "Private key for SSH (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa).") var identity: String?
    @Option(help: "OpenSSH known_hosts file (default: ~/.ssh/known_hosts).") var knownHosts: String?
    @Flag(help: "Record the host key of a device seen for the first time (never a changed key).") var acceptNew = false
    @Option(help: "Seconds for TCP connect and SSH handshake.") var connectTimeout: Double = 10
    @Option(help: "Attempts for transient network errors.") var attempts = 3

    func validate() throws {
        if (host == nil) == (inventory == nil) { throw ValidationError("pass either --host or --inventory with --device") }
        if inventory != nil && device == nil { throw ValidationError("--inventory needs --device NAME") }
    }

    /// The device these options name.
    struct Resolved {
        var name: String
        var target: SSHTarget
        var ssh: SSHOptions
        /// The profile the inventory gives the device, if it came from one.
        var inventoryProfile: String?
    }

    /// Looks the device up (reading the inventory if one is given) and builds its SSH settings;
    /// flags given on the command line win over the inventory's.
    func resolve() throws -> Resolved {
        var r: Resolved
        if let inv = inventory, let dev = device {
            let d = try Inventory.load(inv).device(named: dev)
            var ssh = SSHOptions(knownHostsPath: knownHosts ?? d.knownHosts)
            ssh.identityFiles = [identity ?? d.identity].compactMap { $0 }
            r = Resolved(name: d.name, target: SSHTarget(user: d.user, host: d.host, port: d.port), ssh: ssh, inventoryProfile: d.profile)
        } else {
            let target = try SSHTarget.parse(host ?? "")
            var ssh = SSHOptions(knownHostsPath: knownHosts)
            ssh.identityFiles = [identity].compactMap { $0 }
            r = Resolved(name: target.host, target: target, ssh: ssh, inventoryProfile: nil)
        }
        r.ssh.hostKeyPolicy = acceptNew ? .acceptNew : .strict
        r.ssh.connectTimeout = connectTimeout
        r.ssh.attempts = attempts
        return r
    }
}

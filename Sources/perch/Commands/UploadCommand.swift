import ArgumentParser
import Foundation
import PerchFleet
import PerchSSH

/// `perch upload FILE --inventory F --device NAME --remote PATH`: the deploy path's SFTP upload
/// alone (temporary name, resume, hash check, rename). For diagnostics and the upload benchmark
/// (`bench/upload-throughput.sh`); hidden from `perch --help`.
struct UploadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Upload one file to a device the way 'perch deploy' does (diagnostics, benchmarks).",
        shouldDisplay: false
    )

    @Argument(help: "The local file.") var file: String
    @Option(help: "An inventory (e.g. from 'perch testfleet up').") var inventory: String
    @Option(help: "Device name in the inventory.") var device: String
    @Option(help: "Path on the device (relative: under the login directory).") var remote: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let d = try Inventory.load(inventory).device(named: device)
        var ssh = SSHOptions(knownHostsPath: d.knownHosts)
        ssh.identityFiles = [d.identity].compactMap { $0 }
        let client = SSHClient(target: SSHTarget(user: d.user, host: d.host, port: d.port), options: ssh)
        defer { client.close() }
        let file = self.file, remote = self.remote
        let result = try client.perform { session throws(SSHError) in try session.upload(file, to: remote) }
        let mibPerSecond = result.seconds > 0 ? Double(result.bytesSent) / 1_048_576 / result.seconds : 0
        if json {
            print(JSONValue.object([
                ("bytes", .int(result.size)), ("bytes_sent", .int(result.bytesSent)), ("unchanged", .bool(result.unchanged)),
                ("resumed_from", .int(result.resumedFrom)), ("seconds", .double(result.seconds)), ("mib_per_s", .double(mibPerSecond)),
                ("sha256", .string(result.sha256)),
            ]).text)
        } else {
            print(String(format: "uploaded %d bytes (%d sent) in %.3f s, %.1f MiB/s", result.size, result.bytesSent, result.seconds, mibPerSecond))
        }
    }
}

import ArgumentParser
import Foundation
import PerchFleet

/// `perch demo`: the README's main job on a local test device.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start one local test device, deploy the example model to it, print the latency table, stop the device."
    )

    @Option(help: "The model to deploy.") var model = "examples/tiny-cnn.onnx"
    @Option(help: "Device profile.") var profile = "host"
    @Flag(help: "Print the deploy result as JSON.") var json = false

    func run() throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("perch-demo-\(getpid())").path
        var o = TestFleet.Options(stateDirectory: state)
        o.agentBinary = try AgentBinaries.hostAgent()
        defer {
            _ = try? TestFleet.down(stateDirectory: state)
            try? FileManager.default.removeItem(atPath: state)
        }
        let devices = try TestFleet.up(o)
        status("test device \(devices[0].name) at \(devices[0].user)@\(devices[0].host):\(devices[0].port) (sshd)")
        var args = ["--inventory", state + "/fleet.yaml", "--device", devices[0].name, "--profile", profile]
        if json { args.append("--json") }
        let options = try DeviceOptions.parse(args.filter { $0 != "--json" })
        let outcome = try DeployFlow.run(model: model, options: options, modelVersion: "1.0.0", runs: 100, warmup: 10, json: json)
        if !outcome.withinBudget { throw ExitCode(1) }
    }
}

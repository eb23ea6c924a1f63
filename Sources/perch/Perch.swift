import ArgumentParser
import Foundation

/// `perch`: optimize ONNX models for edge devices, deploy them, and measure them there.
@main
struct Perch: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "perch",
        abstract: "Optimize neural networks for edge devices, deploy them over SSH, and measure them there.",
        discussion: """
            Exit codes: 0 success · 1 a gate failed · 2 bad input · 3 device or network problem · \
            4 integrity refusal · 70 internal error.
            """,
        version: version,
        subcommands: [
            ImportCommand.self, RunCommand.self, BenchCommand.self, BenchGemmCommand.self, OptimizeCommand.self, ProfileCommand.self,
            KeysCommand.self, PackCommand.self, VerifyCommand.self,
            DeployCommand.self, RolloutCommand.self, TestfleetCommand.self, DemoCommand.self, AgentCommand.self, UploadCommand.self,
        ]
    )

    /// Runs a command with CONTRACTS.md's error format and exit codes (argument errors exit 2,
    /// not ArgumentParser's default 64).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let wantsJSON = arguments.contains("--json")
        var command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            report(CLIError(.badInput, message.replacingOccurrences(of: "Error: ", with: ""), hint: "see 'perch --help'"), json: wantsJSON)
        }
        do {
            try command.run()
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch let e as CLIError {
            report(e, json: wantsJSON)
        } catch {
            // ArgumentParser's own signals from run(): help for a command group (success) and
            // ValidationError (a bad flag: exit 2). Everything else is a library error.
            switch exitCode(for: error) {
            case .success:
                print(fullMessage(for: error))
                Foundation.exit(0)
            case .validationFailure:
                let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                report(CLIError(.badInput, message.replacingOccurrences(of: "Error: ", with: ""), hint: "see 'perch --help'"), json: wantsJSON)
            default:
                report(CLIError.from(error), json: wantsJSON)
            }
        }
        Foundation.exit(0)
    }

    static func report(_ error: CLIError, json: Bool) -> Never {
        FileHandle.standardError.write(("perch: error: " + error.description + "\n").data(using: .utf8)!)
        if json {
            let payload = JSONValue.object([
                ("error", .object([("code", .int(Int(error.status.rawValue))), ("message", .string(error.description))]))
            ])
            print(payload.text)
        }
        Foundation.exit(error.status.rawValue)
    }
}

/// Prints a progress or status line to stderr, so stdout stays clean for data and JSON.
func status(_ line: String) {
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
}

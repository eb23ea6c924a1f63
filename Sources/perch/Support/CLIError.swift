import PerchAgentBuild
import PerchBundle
import PerchEngine
import PerchFleet
import PerchSSH
import PerchGraph
import PerchONNX
import PerchOptimize
import PerchProfiles

/// Exit codes of CONTRACTS.md.
enum ExitStatus: Int32 {
    case success = 0
    case gateFailed = 1
    case badInput = 2
    case deviceOrNetwork = 3
    case integrity = 4
    case internalError = 70
}

/// An error the CLI reports: one line `perch: error: <what> — <what to do>` and an exit code.
struct CLIError: Error, CustomStringConvertible {
    var status: ExitStatus
    var what: String
    var hint: String

    init(_ status: ExitStatus, _ what: String, hint: String) {
        self.status = status
        self.what = what
        self.hint = hint
    }

    var description: String { what + " — " + hint }

    /// Maps library errors to the CLI's exit codes and advice.
    static func from(_ error: Error) -> CLIError {
        switch error {
        case let e as CLIError:
            return e
        case let e as ONNXImportError:
            switch e {
            case .unsupportedOperators:
                return CLIError(.badInput, e.description, hint: "export the model with supported operators, or file an issue naming them")
            case .unsupportedOpset:
                return CLIError(.badInput, e.description, hint: "convert the model with onnx.version_converter to a supported opset")
            default:
                return CLIError(.badInput, e.description, hint: "check that the file is a complete ONNX model")
            }
        case let e as OptimizeError:
            if case .accuracyBudget = e { return CLIError(.gateFailed, e.what, hint: e.hint) }
            return CLIError(.badInput, e.what, hint: e.hint)
        case let e as ProfileError:
            switch e {
            case .invalid:
                return CLIError(.badInput, e.description, hint: "fix the lines above; device-profiles/README.md describes the schema")
            case .notFound:
                return CLIError(.badInput, e.description, hint: "pass a profile file, or add NAME.yaml to a directory in $PERCH_PROFILES")
            case .abstract:
                return CLIError(.badInput, e.description, hint: "use a profile that extends it")
            }
        case let e as BundleError:
            switch e {
            case .badKey:
                return CLIError(.badInput, e.description, hint: "make keys with 'perch keys generate DIR'")
            case .badInput:
                return CLIError(.badInput, e.description, hint: "check the file and flags")
            case .write:
                return CLIError(.internalError, e.description, hint: "check free space; otherwise this is a bug in Perch")
            default:
                return CLIError(.integrity, e.description, hint: "do not install this bundle; re-pack and re-sign it from a trusted model")
            }
        case let e as AgentBuildError:
            switch e {
            case .stepFailed, .badOutput: return CLIError(.internalError, e.description, hint: e.hint)
            case .write: return CLIError(.internalError, e.description, hint: e.hint)
            default: return CLIError(.badInput, e.description, hint: e.hint)
            }
        case let e as SSHError:
            return CLIError(e.exitCode == 2 ? .badInput : .deviceOrNetwork, e.description, hint: e.hint)
        case let e as FleetError:
            switch e {
            case .badInput: return CLIError(.badInput, e.description, hint: e.hint)
            case .system: return CLIError(.deviceOrNetwork, e.description, hint: e.hint)
            case .invalid(let diagnostics):
                for d in diagnostics { perch.status(d.description) }
                return CLIError(.badInput, e.description, hint: e.hint)
            }
        case let e as AgentFailure:
            let status: ExitStatus = e.code == 2 ? .badInput : e.code == 3 ? .deviceOrNetwork : e.code == 4 ? .integrity : .internalError
            return CLIError(status, e.description, hint: e.code == 4 ? "re-pack and sign the bundle with a key the device trusts, or publish a newer version" : "see the agent's message")
        case let e as GraphError:
            return CLIError(.badInput, e.description, hint: "re-create the file with 'perch import'")
        case let e as EngineError:
            switch e {
            case .outOfMemory:
                return CLIError(.internalError, e.description, hint: "free memory or use a smaller batch")
            case .badInput:
                return CLIError(.badInput, e.description, hint: "pass a tensor of the type the model declares")
            default:
                return CLIError(.badInput, e.description, hint: "the model uses a feature Perch does not run yet")
            }
        default:
            return CLIError(.internalError, String(describing: error), hint: "this is a bug in Perch; please report it")
        }
    }
}

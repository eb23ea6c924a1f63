/// Why `perch agent build` could not produce a binary.
public enum AgentBuildError: Error, CustomStringConvertible, Equatable {
    /// The ISA name is not one Perch builds for.
    case unknownISA(String)
    /// The stock toolchain cannot target this ISA (reason says exactly what is missing).
    case unsupported(isa: String, reason: String)
    /// A tool or library of the cross build is not installed.
    case missingTool(what: String, packages: [String])
    /// The Perch sources (Package.swift with Sources/perch-agent) were not found.
    case sourcesNotFound(String)
    /// A compile, link or strip step failed; `log` is the tail of its output.
    case stepFailed(step: String, log: String)
    /// The produced file is not what was asked for (wrong ELF machine, dynamic, …).
    case badOutput(String)
    /// Writing the cache or the output file failed.
    case write(String)

    public var description: String {
        switch self {
        case .unknownISA(let s): return "unknown ISA '" + s + "' (expected aarch64, armv7 or x86_64)"
        case .unsupported(let isa, let reason): return "cannot build perch-agent for " + isa + ": " + reason
        case .missingTool(let what, _): return what + " is not installed"
        case .sourcesNotFound(let s): return "Perch sources not found (" + s + ")"
        case .stepFailed(let step, let log): return step + " failed: " + log
        case .badOutput(let s): return "the built agent is wrong: " + s
        case .write(let s): return "cannot write " + s
        }
    }

    /// What the user can do about it.
    public var hint: String {
        switch self {
        case .unknownISA: return "pass --isa aarch64, armv7 or x86_64"
        case .unsupported: return "build for aarch64 (a 64-bit OS on the Pi) or x86_64 instead"
        case .missingTool(_, let packages):
            return "run scripts/bootstrap.sh as root (installs " + packages.joined(separator: " ") + " from Debian)"
        case .sourcesNotFound: return "run perch from the Perch checkout, or pass --source DIR"
        case .stepFailed: return "this is a bug in Perch's cross build; the full log is in the cache folder named above"
        case .badOutput: return "this is a bug in Perch's cross build; please report it"
        case .write: return "check free space and permissions of the cache folder ($PERCH_CACHE_DIR)"
        }
    }
}

/// Why a bundle cannot be packed or is refused. `description` is the one-line message; `isIntegrity`
/// tells the CLI which refusals are integrity failures (exit 4) rather than bad input (exit 2).
public enum BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file the user named cannot be read or has the wrong content (exit 2).
    case badInput(String)
    /// A key file is malformed (exit 2).
    case badKey(path: String, reason: String)
    /// The signature is missing, malformed, or made by a key that is not trusted (exit 4).
    case signature(String)
    /// A file's SHA-256 or size differs from the manifest, a file is missing or extra (exit 4).
    case hash(String)
    /// The manifest is not a valid bundle manifest (exit 4).
    case manifest(String)
    /// An archive entry is unsafe to extract: absolute path, `..`, link, device, unexpected name (exit 4).
    case unsafeEntry(name: String, reason: String)
    /// The archive itself is corrupt or truncated (exit 4).
    case archive(String)
    /// An entry decompresses to more bytes than the manifest declares (exit 4).
    case decompressionBomb(name: String, declared: Int)
    /// libarchive failed while writing (exit 70 unless it is an I/O problem).
    case write(String)

    public var description: String {
        switch self {
        case .badInput(let s): return s
        case .badKey(let path, let reason): return "key file '" + path + "': " + reason
        case .signature(let s): return "signature check failed: " + s
        case .hash(let s): return "hash check failed: " + s
        case .manifest(let s): return "invalid manifest: " + s
        case .unsafeEntry(let name, let reason): return "unsafe archive entry '" + name + "': " + reason
        case .archive(let s): return "corrupt or truncated archive: " + s
        case .decompressionBomb(let name, let declared):
            return "decompression bomb: entry '" + name + "' expands beyond the " + String(declared) + " bytes the manifest declares"
        case .write(let s): return "cannot write the bundle: " + s
        }
    }

    /// True for refusals that CONTRACTS.md maps to exit code 4.
    public var isIntegrity: Bool {
        switch self {
        case .badInput, .badKey, .write: return false
        default: return true
        }
    }
}

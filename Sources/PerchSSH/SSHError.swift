/// Everything PerchSSH can fail with. `description` is the one-line "what" for the user; the CLI
/// adds "what to do" (`hint`) and maps every case to exit code 3 (device or network problem),
/// except `.badInput` (2).
public enum SSHError: Error, CustomStringConvertible, Sendable {
    /// Name resolution failed, the connection was refused, or it timed out.
    case unreachable(host: String, port: Int, reason: String)
    /// The server's host key is not in known_hosts (and `acceptNew` was not given).
    case hostKeyUnknown(host: String, port: Int, fingerprint: String, knownHosts: String)
    /// known_hosts holds a different key for this host: possibly an attack; never accepted.
    case hostKeyChanged(host: String, port: Int, fingerprint: String, knownHosts: String)
    /// No offered key was accepted.
    case authFailed(user: String, host: String, tried: [String])
    /// A key file cannot be read or decrypted.
    case keyFile(path: String, reason: String)
    /// An established connection broke or stalled (transient: retried with backoff).
    case connectionLost(host: String, reason: String)
    /// An operation made no progress within the timeout (transient).
    case timeout(host: String, what: String, seconds: Double)
    /// A remote command exited non-zero where success was required.
    case remoteCommand(command: String, status: Int32, stderr: String)
    /// An SFTP operation failed on the server (permission, no such directory, full disk, …).
    case sftp(path: String, reason: String)
    /// The uploaded file's SHA-256 on the device differs from the local one.
    case hashMismatch(path: String, local: String, remote: String)
    /// Anything else libssh2 reports (protocol errors, key exchange failures).
    case ssh(host: String, reason: String)
    /// Bad arguments (a malformed `user@host:port`, a missing known_hosts directory, …).
    case badInput(String)

    public var description: String {
        switch self {
        case let .unreachable(host, port, reason):
            return "cannot reach \(host) port \(port): \(reason)"
        case let .hostKeyUnknown(host, port, fp, kh):
            return "host key of \(SSHTarget.display(host, port)) is not known (\(fp), not in \(kh))"
        case let .hostKeyChanged(host, port, fp, kh):
            return "HOST KEY OF \(SSHTarget.display(host, port)) HAS CHANGED: it offers \(fp), which differs from the key in \(kh) (someone may be intercepting the connection)"
        case let .authFailed(user, host, tried):
            return "authentication as \(user)@\(host) failed (tried: \(tried.isEmpty ? "nothing" : tried.joined(separator: ", ")))"
        case let .keyFile(path, reason):
            return "key file '\(path)': \(reason)"
        case let .connectionLost(host, reason):
            return "connection to \(host) lost: \(reason)"
        case let .timeout(host, what, seconds):
            return "\(what) on \(host) made no progress for \(formatSeconds(seconds))"
        case let .remoteCommand(command, status, stderr):
            let err = stderr.split(separator: "\n").last.map(String.init) ?? ""
            return "remote command '\(command)' exited with status \(status)" + (err.isEmpty ? "" : ": " + err)
        case let .sftp(path, reason):
            return "SFTP on '\(path)' failed: \(reason)"
        case let .hashMismatch(path, local, remote):
            return "'\(path)' on the device has SHA-256 \(remote.prefix(16))…, not \(local.prefix(16))… as sent"
        case let .ssh(host, reason):
            return "SSH with \(host) failed: \(reason)"
        case let .badInput(s):
            return s
        }
    }

    /// What the user can do about it.
    public var hint: String {
        switch self {
        case .unreachable: return "check that the device is on, the address and port are right, and sshd is running"
        case let .hostKeyUnknown(host, port, _, kh):
            return "if the fingerprint is the device's, pass --accept-new to record it, or add it with 'ssh-keyscan -p \(port) \(host) >> \(kh)'"
        case let .hostKeyChanged(host, port, _, kh):
            return "if the device was re-installed, remove the old key with 'ssh-keygen -R \(SSHTarget.display(host, port)) -f \(kh)' and verify the new one"
        case .authFailed: return "pass --identity KEY whose public key is in the device's authorized_keys, or load it into ssh-agent"
        case .keyFile: return "check the path; for an encrypted key set PERCH_SSH_PASSPHRASE or run interactively"
        case .connectionLost, .timeout: return "check the network and the device, then run the command again (uploads resume)"
        case .remoteCommand: return "look at the device's error above; run the command over ssh to investigate"
        case .sftp: return "check free space and permissions on the device"
        case .hashMismatch: return "run the command again; if it persists, check the device's storage"
        case .ssh: return "check that the device runs OpenSSH and that the network is stable"
        case .badInput: return "see 'perch --help'"
        }
    }

    /// Worth retrying after a pause: network trouble, not a refusal.
    public var isTransient: Bool {
        switch self {
        case .connectionLost, .timeout: return true
        case let .unreachable(_, _, reason): return !reason.contains("resolve")
        default: return false
        }
    }

    /// CONTRACTS.md exit code.
    public var exitCode: Int32 {
        if case .badInput = self { return 2 }
        return 3
    }
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : "\((s * 10).rounded() / 10) s"
}

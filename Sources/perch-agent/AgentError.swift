import CPerchAgentShims

/// Exit codes of CONTRACTS.md.
enum Exit {
    static let ok: Int32 = 0
    static let badInput: Int32 = 2
    /// Device problems: busy (another install holds the lock), full disk, I/O errors.
    static let device: Int32 = 3
    /// Integrity/security refusals: signature, hash, unsafe entry, downgrade/replay.
    static let integrity: Int32 = 4
    static let internalError: Int32 = 70
}

/// An error the agent reports: `perch-agent: error: <what> — <hint>` on stderr, the same message as
/// `{"error":{"code":N,"message":"..."}}` on stdout, and `code` as the exit status.
struct AgentError: Error {
    var code: Int32
    var what: String
    var hint: String

    init(_ code: Int32, _ what: String, _ hint: String) {
        self.code = code
        self.what = what
        self.hint = hint
    }

    var message: String { what + " — " + hint }

    static func integrity(_ what: String) -> AgentError {
        AgentError(Exit.integrity, what, "the bundle was refused; the previous version stays active")
    }

    static func bad(_ what: String, _ hint: String) -> AgentError { AgentError(Exit.badInput, what, hint) }

    static func io(_ what: String, _ path: String) -> AgentError {
        let e = pa_errno()
        let reason = String(cString: pa_strerror(e))
        if e == 28 || e == 122 {  // ENOSPC, EDQUOT
            return AgentError(Exit.device, "storage full while " + what + " '" + path + "': " + reason, "free space (e.g. 'perch-agent gc --keep 1') and retry")
        }
        return AgentError(Exit.device, "cannot " + what + " '" + path + "': " + reason, "check the state directory's permissions and free space")
    }
}

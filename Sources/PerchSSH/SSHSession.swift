import CLibSSH2
import Foundation

/// The outcome of a remote command.
public struct ExecResult: Sendable {
    public var stdout: [UInt8]
    public var stderr: String
    /// The exit status; -1 if the command was killed by a signal (see `stderr`).
    public var status: Int32
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

private let traceEnabled = ProcessInfo.processInfo.environment["PERCH_SSH_TRACE"] == "1"
private let libssh2Ready: Bool = { libssh2_init(0) == 0 }()

/// One SSH connection (libssh2, non-blocking socket + poll, so no call waits longer than the
/// configured timeouts). Not thread-safe: use one session per thread.
public final class SSHSession {
    public let target: SSHTarget
    public let options: SSHOptions
    /// The server's host key as OpenSSH prints it: `SHA256:<base64 without padding>`.
    public private(set) var hostKeyFingerprint = ""
    /// How the user was authenticated, e.g. `key /root/.ssh/id_ed25519` or `agent (comment)`.
    public private(set) var authenticatedWith = ""

    private var fd: Int32 = -1
    private var session: OpaquePointer?
    private var sftpSession: OpaquePointer?

    /// Connects, verifies the host key against known_hosts, and authenticates. One attempt; see
    /// `SSHClient` for retries.
    public init(connect target: SSHTarget, options: SSHOptions) throws(SSHError) {
        self.target = target
        self.options = options
        guard libssh2Ready else { throw .ssh(host: target.host, reason: "libssh2_init failed") }
        do {
            try openSocket()
            try handshake()
            try verifyHostKey()
            try authenticate()
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Ends the session politely if it still can; safe to call twice.
    public func close() {
        if let s = sftpSession { libssh2_sftp_shutdown(s); sftpSession = nil }
        if let s = session {
            _ = cssh_session_disconnect(s, "bye")
            libssh2_session_free(s)
            session = nil
        }
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    // MARK: connect

    private func openSocket() throws(SSHError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .unreachable(host: target.host, port: target.port, reason: "cannot resolve the name (" + String(cString: gai_strerror(rc)) + ")")
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        let deadline = Date().addingTimeInterval(options.connectTimeout)
        while let a = ai {
            ai = a.pointee.ai_next
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s < 0 { reason = String(cString: strerror(cssh_errno())); continue }
            _ = cssh_set_nonblocking(s, 1)
            cssh_tcp_tune(s)
            var r = Glibc.connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if r != 0 && cssh_errno() == EINPROGRESS {
                var pfd = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
                let ms = max(0, Int32(deadline.timeIntervalSinceNow * 1000))
                let p = poll(&pfd, 1, ms)
                if p == 0 {
                    Glibc.close(s)
                    throw .unreachable(host: target.host, port: target.port, reason: "connection timed out after " + formatSeconds(options.connectTimeout))
                }
                let err = cssh_socket_error(s)
                r = err == 0 ? 0 : -1
                if err != 0 { reason = String(cString: strerror(err)) }
            } else if r != 0 {
                reason = String(cString: strerror(cssh_errno()))
            }
            if r == 0 { fd = s; return }
            Glibc.close(s)
        }
        throw .unreachable(host: target.host, port: target.port, reason: reason.lowercased())
    }

    private func handshake() throws(SSHError) {
        guard let s = cssh_session_init() else { throw .ssh(host: target.host, reason: "cannot allocate a session") }
        session = s
        // The handshake runs in blocking mode bounded by libssh2's own timeout (it polls the
        // non-blocking socket internally); everything after it is non-blocking + poll.
        // Keepalive is configured only afterwards: libssh2 1.10 fails the key exchange
        // ("Unable to exchange encryption keys") when it is set before the handshake.
        libssh2_session_set_blocking(s, 1)
        libssh2_session_set_timeout(s, Int(options.connectTimeout * 1000))
        let rc = libssh2_session_handshake(s, fd)
        libssh2_session_set_timeout(s, 0)
        libssh2_session_set_blocking(s, 0)
        libssh2_keepalive_config(s, 1, UInt32(options.keepaliveInterval))
        if rc == LIBSSH2_ERROR_TIMEOUT {
            throw .unreachable(host: target.host, port: target.port, reason: "no SSH handshake within " + formatSeconds(options.connectTimeout))
        }
        if rc != 0 { throw failure(rc, "SSH handshake") }
    }

    // MARK: host key

    private func verifyHostKey() throws(SSHError) {
        guard let s = session else { return }
        var len = 0
        var type: Int32 = 0
        guard let key = libssh2_session_hostkey(s, &len, &type) else { throw .ssh(host: target.host, reason: "the server sent no host key") }
        if let hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256) {
            let data = Data(bytes: hash, count: 32)
            hostKeyFingerprint = "SHA256:" + data.base64EncodedString().replacingOccurrences(of: "=", with: "")
        }
        let path = options.knownHostsPath
        guard let hosts = libssh2_knownhost_init(s) else { throw .ssh(host: target.host, reason: "cannot allocate known hosts") }
        defer { libssh2_knownhost_free(hosts) }
        if FileManager.default.fileExists(atPath: path) {
            let n = libssh2_knownhost_readfile(hosts, path, CSSH_KNOWNHOST_FILE_OPENSSH)
            if n < 0 { throw .badInput("cannot read known_hosts file '\(path)' (" + lastErrorMessage() + ")") }
        }
        let keyBits = cssh_knownhost_keybits(type)
        let typeMask = CSSH_KNOWNHOST_TYPE_PLAIN | CSSH_KNOWNHOST_KEYENC_RAW | keyBits
        var found: UnsafeMutablePointer<libssh2_knownhost>?
        let check = libssh2_knownhost_checkp(hosts, target.host, Int32(target.port), key, len, typeMask, &found)
        switch check {
        case CSSH_KNOWNHOST_CHECK_MATCH:
            return
        case CSSH_KNOWNHOST_CHECK_MISMATCH:
            throw .hostKeyChanged(host: target.host, port: target.port, fingerprint: hostKeyFingerprint, knownHosts: path)
        default:
            guard options.hostKeyPolicy == .acceptNew else {
                throw .hostKeyUnknown(host: target.host, port: target.port, fingerprint: hostKeyFingerprint, knownHosts: path)
            }
            try appendKnownHost(hosts, key: key, length: len, typeMask: typeMask)
        }
    }

    /// Appends one line for this host to known_hosts (never rewrites the file, so hashed entries
    /// and comments stay as they are).
    private func appendKnownHost(_ hosts: OpaquePointer, key: UnsafePointer<CChar>, length: Int, typeMask: Int32) throws(SSHError) {
        let name = SSHTarget.display(target.host, target.port)
        var added: UnsafeMutablePointer<libssh2_knownhost>?
        let comment = "added by perch"
        guard libssh2_knownhost_addc(hosts, name, nil, key, length, comment, comment.utf8.count, typeMask, &added) == 0, let node = added else {
            throw .ssh(host: target.host, reason: "cannot record the host key: " + lastErrorMessage())
        }
        var buffer = [CChar](repeating: 0, count: 8192)
        var outLength = 0
        guard libssh2_knownhost_writeline(hosts, node, &buffer, buffer.count, &outLength, CSSH_KNOWNHOST_FILE_OPENSSH) == 0 else {
            throw .ssh(host: target.host, reason: "cannot format the host key line: " + lastErrorMessage())
        }
        let line = String(decoding: buffer[0..<outLength].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let path = options.knownHostsPath
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var existing = FileManager.default.contents(atPath: path) ?? Data()
        if let last = existing.last, last != 0x0A { existing.append(0x0A) }
        existing.append(Data((line.hasSuffix("\n") ? line : line + "\n").utf8))
        guard FileManager.default.createFile(atPath: path + ".perch-tmp", contents: existing),
              rename(path + ".perch-tmp", path) == 0 else {
            throw .badInput("cannot write known_hosts file '\(path)'")
        }
        FileHandle.standardError.write(Data("perch: recorded host key of \(name) (\(hostKeyFingerprint)) in \(path)\n".utf8))
    }

    // MARK: auth

    private func authenticate() throws(SSHError) {
        guard let s = session else { return }
        var tried: [String] = []
        let user = target.user
        let env = ProcessInfo.processInfo.environment
        if options.identityFiles.isEmpty {
            if let sock = env["SSH_AUTH_SOCK"], !sock.isEmpty, try authenticateWithAgent(s, &tried) { return }
            let home = NSHomeDirectory()
            for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let path = home + "/.ssh/" + name
                if FileManager.default.fileExists(atPath: path), try authenticateWithKey(s, path, explicit: false, &tried) { return }
            }
        } else {
            for path in options.identityFiles where try authenticateWithKey(s, path, explicit: true, &tried) { return }
        }
        throw .authFailed(user: user, host: target.host, tried: tried)
    }

    private func authenticateWithKey(_ s: OpaquePointer, _ path: String, explicit: Bool, _ tried: inout [String]) throws(SSHError) -> Bool {
        guard FileManager.default.isReadableFile(atPath: path) else {
            if explicit { throw .keyFile(path: path, reason: "does not exist or is not readable") }
            return false
        }
        var passphrase = ProcessInfo.processInfo.environment["PERCH_SSH_PASSPHRASE"]
        var prompted = false
        while true {
            let user = target.user
            let rc = try call("public key authentication") {
                cssh_userauth_publickey_fromfile(s, user, UInt32(user.utf8.count), path, passphrase)
            }
            if rc == 0 { authenticatedWith = "key " + path; return true }
            if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED && passphrase == nil && keyLooksEncrypted(path) {
                if passphrase == nil, !prompted, isatty(0) != 0, let p = getpass("Enter passphrase for \(path): ") {
                    passphrase = String(cString: p)
                    prompted = true
                    continue
                }
                if keyLooksEncrypted(path) {
                    throw .keyFile(path: path, reason: passphrase == nil ? "is encrypted and no passphrase was given" : "cannot be decrypted with the given passphrase")
                }
                if explicit { throw .keyFile(path: path, reason: "is not a private key libssh2 can read (" + lastErrorMessage() + ")") }
                tried.append(path + " (unreadable)")
                return false
            }
            if isConnectionError(rc) { throw failure(rc, "authentication") }
            tried.append(path)
            return false
        }
    }

    private func keyLooksEncrypted(_ path: String) -> Bool {
        guard let d = FileManager.default.contents(atPath: path) else { return false }
        let text = String(decoding: d, as: UTF8.self)
        if text.contains("ENCRYPTED") { return true }
        // OpenSSH format: base64 of "openssh-key-v1\0" + cipher name; "none" means plain.
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let raw = Data(base64Encoded: String(body.prefix(64)).padding(toLength: 64, withPad: "=", startingAt: 0)) ?? Data(base64Encoded: String(body)) else { return false }
        return raw.count > 20 && !String(decoding: raw.prefix(40), as: UTF8.self).contains("none")
    }

    private func authenticateWithAgent(_ s: OpaquePointer, _ tried: inout [String]) throws(SSHError) -> Bool {
        guard let agent = libssh2_agent_init(s) else { return false }
        defer { libssh2_agent_disconnect(agent); libssh2_agent_free(agent) }
        guard libssh2_agent_connect(agent) == 0, libssh2_agent_list_identities(agent) == 0 else {
            tried.append("ssh-agent (not reachable)")
            return false
        }
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>? = nil
        while true {
            var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
            guard libssh2_agent_get_identity(agent, &identity, previous) == 0, let id = identity else { return false }
            previous = id
            let comment = id.pointee.comment.map { String(cString: $0) } ?? "key"
            let user = target.user
            let rc = try call("ssh-agent authentication") { libssh2_agent_userauth(agent, user, id) }
            if rc == 0 { authenticatedWith = "agent (" + comment + ")"; return true }
            if isConnectionError(rc) { throw failure(rc, "authentication") }
            tried.append("agent key " + comment)
        }
    }

    // MARK: exec

    /// Runs `command` through the device's shell; collects stdout and stderr. `timeout` is the
    /// longest silence allowed (default: `options.ioTimeout`); a long benchmark needs more.
    public func exec(_ command: String, timeout: Double? = nil) throws(SSHError) -> ExecResult {
        let began = Date()
        defer { trace("exec " + String(format: "%.3f s: ", Date().timeIntervalSince(began)) + command.prefix(80)) }
        guard let s = session else { throw .connectionLost(host: target.host, reason: "session closed") }
        guard let channel = try callPointer("open a channel", { cssh_channel_open_session(s) }) else {
            throw failure(libssh2_session_last_errno(s), "open a channel")
        }
        defer { libssh2_channel_free(channel) }
        let rc = try call("start '\(command)'") { cssh_channel_exec(channel, command, UInt32(command.utf8.count)) }
        if rc != 0 { throw failure(rc, "start a remote command") }
        var out: [UInt8] = []
        var err: [UInt8] = []
        var buffer = [CChar](repeating: 0, count: 65536)
        let limit = timeout ?? options.ioTimeout
        var deadline = Date().addingTimeInterval(limit)
        while true {
            let n = cssh_channel_read(channel, &buffer, buffer.count)
            if n > 0 { out.append(contentsOf: buffer[0..<n].map { UInt8(bitPattern: $0) }) }
            let m = cssh_channel_read_stderr(channel, &buffer, buffer.count)
            if m > 0 { err.append(contentsOf: buffer[0..<m].map { UInt8(bitPattern: $0) }) }
            if n < 0 && n != Int(CSSH_ERROR_EAGAIN) { throw failure(Int32(n), "read from '\(command)'") }
            if m < 0 && m != Int(CSSH_ERROR_EAGAIN) { throw failure(Int32(m), "read from '\(command)'") }
            if n == 0 && m == 0 && libssh2_channel_eof(channel) != 0 { break }
            if n > 0 || m > 0 { deadline = Date().addingTimeInterval(limit); continue }
            try waitSocket("'\(command)'", deadline: deadline, timeout: limit)
        }
        _ = try call("close channel") { libssh2_channel_close(channel) }
        _ = try call("close channel") { libssh2_channel_wait_closed(channel) }
        var status = libssh2_channel_get_exit_status(channel)
        var stderrText = String(decoding: err, as: UTF8.self)
        var signal: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        if libssh2_channel_get_exit_signal(channel, &signal, &signalLength, nil, nil, nil, nil) == 0, let sig = signal {
            stderrText += (stderrText.isEmpty ? "" : "\n") + "killed by signal " + String(cString: sig)
            status = -1
            free(sig)
        }
        return ExecResult(stdout: out, stderr: stderrText, status: status)
    }

    /// `exec` that requires exit status 0 and returns stdout.
    @discardableResult
    public func run(_ command: String, timeout: Double? = nil) throws(SSHError) -> String {
        let r = try exec(command, timeout: timeout)
        guard r.status == 0 else { throw .remoteCommand(command: command, status: r.status, stderr: r.stderr) }
        return r.stdoutText
    }

    // MARK: SFTP plumbing (used by Upload.swift)

    func sftp() throws(SSHError) -> OpaquePointer {
        if let s = sftpSession { return s }
        guard let s = session else { throw .connectionLost(host: target.host, reason: "session closed") }
        guard let p = try callPointer("start SFTP", { libssh2_sftp_init(s) }) else {
            throw failure(libssh2_session_last_errno(s), "start SFTP")
        }
        sftpSession = p
        return p
    }

    func sftpFailure(_ rc: Int32, _ path: String, _ what: String) -> SSHError {
        if rc == CSSH_ERROR_SFTP_PROTOCOL, let sftp = sftpSession {
            let code = libssh2_sftp_last_error(sftp)
            let names: [UInt: String] = [2: "no such file or directory", 3: "permission denied", 4: "failure", 14: "no space on the device", 15: "quota exceeded"]
            return .sftp(path: path, reason: what + ": " + (names[code] ?? "SFTP status \(code)"))
        }
        return failure(rc, what)
    }

    // MARK: non-blocking helpers

    /// PERCH_SSH_TRACE=1 prints every remote command with its duration to stderr.
    func trace(_ line: @autoclosure () -> String) {
        if traceEnabled { FileHandle.standardError.write(Data(("ssh: " + line() + "\n").utf8)) }
    }

    /// Calls `body` until it stops returning EAGAIN, waiting on the socket in between.
    func call<T: BinaryInteger>(_ what: String, timeout: Double? = nil, _ body: () -> T) throws(SSHError) -> T {
        let limit = timeout ?? options.ioTimeout
        let deadline = Date().addingTimeInterval(limit)
        while true {
            let rc = body()
            if rc != T(CSSH_ERROR_EAGAIN) { return rc }
            try waitSocket(what, deadline: deadline, timeout: limit)
        }
    }

    func callPointer(_ what: String, _ body: () -> OpaquePointer?) throws(SSHError) -> OpaquePointer? {
        let deadline = Date().addingTimeInterval(options.ioTimeout)
        while true {
            if let p = body() { return p }
            guard let s = session, libssh2_session_last_errno(s) == CSSH_ERROR_EAGAIN else { return nil }
            try waitSocket(what, deadline: deadline, timeout: options.ioTimeout)
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, sending keepalives.
    func waitSocket(_ what: String, deadline: Date, timeout: Double) throws(SSHError) {
        guard let s = session else { throw .connectionLost(host: target.host, reason: "session closed") }
        let remaining = deadline.timeIntervalSinceNow
        if remaining <= 0 { throw .timeout(host: target.host, what: what, seconds: timeout) }
        let dirs = libssh2_session_block_directions(s)
        var events: Int16 = 0
        if dirs & CSSH_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if dirs & CSSH_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let ms = Int32(min(remaining, Double(options.keepaliveInterval)) * 1000) + 1
        _ = poll(&pfd, 1, ms)
        var next: Int32 = 0
        _ = libssh2_keepalive_send(s, &next)
    }

    func isConnectionError(_ rc: Int32) -> Bool {
        [LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_SOCKET_TIMEOUT,
         LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_SOCKET_NONE, LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_CHANNEL_CLOSED,
         LIBSSH2_ERROR_CHANNEL_EOF_SENT, LIBSSH2_ERROR_KEX_FAILURE].contains(rc)
    }

    /// Maps a libssh2 return code to an error; connection-level codes are transient.
    func failure(_ rc: Int32, _ what: String) -> SSHError {
        let message = lastErrorMessage()
        if isConnectionError(rc) {
            return .connectionLost(host: target.host, reason: what + ": " + (message.isEmpty ? "code \(rc)" : message))
        }
        return .ssh(host: target.host, reason: what + ": " + (message.isEmpty ? "libssh2 error \(rc)" : message))
    }

    func lastErrno() -> Int32 { session.map { libssh2_session_last_errno($0) } ?? -1 }

    func lastErrorMessage() -> String {
        guard let s = session else { return "" }
        var msg: UnsafeMutablePointer<CChar>?
        var len: Int32 = 0
        _ = libssh2_session_last_error(s, &msg, &len, 0)
        return msg.map { String(cString: $0) } ?? ""
    }
}

import Foundation

/// Where to connect: `[user@]host[:port]` (IPv6 literals as `[addr]:port`).
public struct SSHTarget: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var host: String
    public var port: Int

    public init(user: String, host: String, port: Int = 22) {
        self.user = user
        self.host = host
        self.port = port
    }

    /// Parses `[user@]host[:port]`; the user defaults to `defaultUser` ($USER).
    public static func parse(_ text: String, defaultUser: String? = nil) throws(SSHError) -> SSHTarget {
        var rest = Substring(text)
        var user = defaultUser ?? ProcessInfo.processInfo.environment["USER"] ?? "root"
        if let at = rest.lastIndex(of: "@") {
            user = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var host = String(rest)
        var port = 22
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw .badInput("bad port in '\(text)'") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":"), rest.firstIndex(of: ":") == colon {
            host = String(rest[..<colon])
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw .badInput("bad port in '\(text)'") }
            port = p
        }
        guard !host.isEmpty, !user.isEmpty, (1...65535).contains(port) else {
            throw .badInput("'\(text)' is not [user@]host[:port]")
        }
        return SSHTarget(user: user, host: host, port: port)
    }

    /// `host` for port 22, else `[host]:port` (how known_hosts names it).
    public static func display(_ host: String, _ port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    public var description: String { "\(user)@\(SSHTarget.display(host, port))" }
}

/// What to trust when a host key is not in known_hosts yet.
public enum HostKeyPolicy: Sendable {
    /// Refuse unknown and changed keys (OpenSSH's StrictHostKeyChecking=yes).
    case strict
    /// Record an unknown key; still refuse a changed one (StrictHostKeyChecking=accept-new).
    case acceptNew
}

/// Connection settings. Times are seconds.
public struct SSHOptions: Sendable {
    public var knownHostsPath: String
    public var hostKeyPolicy: HostKeyPolicy = .strict
    /// Private keys to offer, in order. Empty: ssh-agent (if $SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
    public var identityFiles: [String] = []
    /// TCP connect plus SSH handshake, per attempt.
    public var connectTimeout: Double = 10
    /// Longest wait without progress for any one operation (exec has its own, see `exec`).
    public var ioTimeout: Double = 30
    /// SSH keepalive interval while waiting on the socket.
    public var keepaliveInterval: Int = 10
    /// Attempts for transient failures (connect, lost connection, stalls); delays double from 0.5 s.
    public var attempts: Int = 3

    public init(knownHostsPath: String? = nil) {
        self.knownHostsPath = knownHostsPath ?? (NSHomeDirectory() + "/.ssh/known_hosts")
    }
}

/// Quotes a word for a POSIX shell command line.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@,+".contains($0) }), s.allSatisfy(\.isASCII) {
        return s
    }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

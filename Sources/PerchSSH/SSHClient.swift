import Foundation

/// A connection that reconnects: `perform` runs a step on a session and, when the network
/// fails transiently (lost connection, stall, refused while a device reboots), waits 0.5 s,
/// 1 s, 2 s, … and runs the step again on a fresh session, up to `options.attempts` times.
/// Steps must be safe to repeat (uploads resume; installs check the device's state first).
public final class SSHClient {
    public let target: SSHTarget
    public let options: SSHOptions
    /// Called with one line per retry, e.g. to print it.
    public var log: (String) -> Void
    private var current: SSHSession?

    public init(target: SSHTarget, options: SSHOptions, log: @escaping (String) -> Void = { _ in }) {
        self.target = target
        self.options = options
        self.log = log
    }

    /// The live session, connecting if needed (with retries).
    public func session() throws(SSHError) -> SSHSession {
        try perform { $0 }
    }

    public func perform<T>(_ step: (SSHSession) throws(SSHError) -> T) throws(SSHError) -> T {
        var delay = 0.5
        var attempt = 1
        while true {
            do {
                let s: SSHSession
                if let c = current { s = c } else {
                    s = try SSHSession(connect: target, options: options)
                    current = s
                }
                return try step(s)
            } catch {
                current?.close()
                current = nil
                guard error.isTransient, attempt < max(1, options.attempts) else { throw error }
                log("perch: \(error.description); retrying in \(formatSeconds(delay)) (attempt \(attempt + 1) of \(options.attempts))")
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 8)
                attempt += 1
            }
        }
    }

    public func close() {
        current?.close()
        current = nil
    }
}

import CLibSSH2
import Crypto
import Foundation

/// What an upload did.
public struct UploadResult: Sendable {
    /// Bytes sent over the wire this time (0 when the device already had the file).
    public var bytesSent: Int
    /// The file's size.
    public var size: Int
    /// The device already had this exact content at the target path.
    public var unchanged: Bool
    /// Bytes kept from an earlier, interrupted upload.
    public var resumedFrom: Int
    public var sha256: String
    public var seconds: Double

    public init(bytesSent: Int, size: Int, unchanged: Bool, resumedFrom: Int, sha256: String, seconds: Double) {
        self.bytesSent = bytesSent
        self.size = size
        self.unchanged = unchanged
        self.resumedFrom = resumedFrom
        self.sha256 = sha256
        self.seconds = seconds
    }
}

extension SSHSession {
    /// Uploads `localPath` to `remotePath` (relative paths are under the login directory):
    /// skipped when the device's `sha256sum` of the target matches; otherwise written over SFTP
    /// to `remotePath.part` — continuing an earlier attempt when that file holds a prefix of the
    /// same content, then checked with `sha256sum` on the device — and renamed into place. The
    /// target's directory is created. `progress(sent, total)` is called after every write.
    /// Needs `sh`, `sha256sum`, `stat`, `mv` on the device (coreutils or busybox).
    public func upload(_ localPath: String, to remotePath: String, mode: Int32 = 0o644,
                       progress: ((Int, Int) -> Void)? = nil) throws(SSHError) -> UploadResult {
        let start = Date()
        guard let data = FileManager.default.contents(atPath: localPath) else {
            throw .badInput("cannot read '\(localPath)'")
        }
        let bytes = [UInt8](data)
        let digest = hex(SHA256.hash(data: bytes))
        let part = remotePath + ".part"
        let dir = (remotePath as NSString).deletingLastPathComponent
        let q = shellQuote
        let probe = (dir.isEmpty ? "" : "mkdir -p -- \(q(dir)) && ")
            + "printf 'T %s\\n' \"$(sha256sum -- \(q(remotePath)) 2>/dev/null | cut -d' ' -f1)\" && "
            + "printf 'P %s %s\\n' \"$(stat -c %s -- \(q(part)) 2>/dev/null)\" \"$(sha256sum -- \(q(part)) 2>/dev/null | cut -d' ' -f1)\""
        let lines = try run(probe).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        if let t = lines.first(where: { $0.first == "T" }), t.count > 1, t[1] == digest {
            progress?(bytes.count, bytes.count)
            return UploadResult(bytesSent: 0, size: bytes.count, unchanged: true, resumedFrom: 0, sha256: digest,
                                seconds: Date().timeIntervalSince(start))
        }
        var offset = 0
        if let p = lines.first(where: { $0.first == "P" }), p.count > 2, let size = Int(p[1]), size > 0, size <= bytes.count,
           hex(SHA256.hash(data: bytes[0..<size])) == p[2] {
            offset = size
        }
        let resumedFrom = offset
        try writePart(bytes, part, offset: offset, mode: mode, progress: progress)
        // A part continued from an earlier attempt is checked end to end before it replaces the
        // target; a fresh upload is already integrity-protected by the SSH channel's MAC (and the
        // agent verifies every bundle hash again), so it is renamed straight away.
        let finish = resumedFrom > 0
            ? "h=$(sha256sum -- \(q(part)) | cut -d' ' -f1); if [ \"$h\" = \(digest) ]; then chmod \(String(mode, radix: 8)) -- \(q(part)) && mv -f -- \(q(part)) \(q(remotePath)); else rm -f -- \(q(part)); echo \"$h\"; exit 9; fi"
            : "chmod \(String(mode, radix: 8)) -- \(q(part)) && mv -f -- \(q(part)) \(q(remotePath))"
        let r = try exec(finish)
        if r.status == 9 {
            throw .hashMismatch(path: remotePath, local: digest, remote: r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard r.status == 0 else { throw .remoteCommand(command: "mv " + part, status: r.status, stderr: r.stderr) }
        return UploadResult(bytesSent: bytes.count - resumedFrom, size: bytes.count, unchanged: false, resumedFrom: resumedFrom,
                            sha256: digest, seconds: Date().timeIntervalSince(start))
    }

    private func writePart(_ bytes: [UInt8], _ part: String, offset start: Int, mode: Int32,
                           progress: ((Int, Int) -> Void)?) throws(SSHError) {
        let sftp = try sftp()
        var flags = CSSH_FXF_WRITE | CSSH_FXF_CREAT
        if start == 0 { flags |= CSSH_FXF_TRUNC }
        guard let handle = try callPointer("open '\(part)'", {
            cssh_sftp_open(sftp, part, UInt32(part.utf8.count), flags, Int(mode))
        }) else {
            throw sftpFailure(lastErrno(), part, "open for writing")
        }
        var closed = false
        defer { if !closed { _ = try? call("close '\(part)'") { libssh2_sftp_close_handle(handle) } } }
        if start > 0 { libssh2_sftp_seek64(handle, UInt64(start)) }
        // Test hook: PERCH_SSH_TEST_RATE=BYTES_PER_SECOND slows uploads so tests can cut them.
        let rate = ProcessInfo.processInfo.environment["PERCH_SSH_TEST_RATE"].flatMap { Int($0) } ?? 0
        let chunk = rate > 0 ? max(1024, rate / 20) : 1 << 20
        var offset = start
        let began = Date()
        try bytes.withUnsafeBufferPointer { (buf) throws(SSHError) in
            let base = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
            while offset < buf.count {
                let n = min(chunk, buf.count - offset)
                let at = offset
                let w = try call("write '\(part)'") { libssh2_sftp_write(handle, base + at, n) }
                if w < 0 { throw sftpFailure(Int32(w), part, "write") }
                offset += w
                progress?(offset, buf.count)
                if rate > 0 {
                    let due = Double(offset - start) / Double(rate) - Date().timeIntervalSince(began)
                    if due > 0 { usleep(UInt32(due * 1e6)) }
                }
            }
        }
        let rc = try call("close '\(part)'") { libssh2_sftp_close_handle(handle) }
        closed = true
        if rc != 0 { throw sftpFailure(rc, part, "close") }
    }
}

/// SHA-256 of a local file as lowercase hex, or nil if it cannot be read.
public func sha256Hex(ofFile path: String) -> String? {
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    return hex(SHA256.hash(data: d))
}

func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    digest.map { String(format: "%02x", $0) }.joined()
}

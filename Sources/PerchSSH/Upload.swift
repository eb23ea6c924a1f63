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
    /// Uploads `localPath` to `remotePath` (relative paths are under the login directory) over
    /// SFTP: written to `remotePath.part` (the target's directory is created), given `mode`, and
    /// renamed into place, so the target is either the old file or the whole new one.
    ///
    /// A fresh upload needs no remote command: SFTP stat, open, write, fsetstat, rename (a shell
    /// per command can cost more than the transfer itself: a device's shell startup files run
    /// for every exec). The device's `sha256sum` runs only when it can save work or must check
    /// some: when the target already has the file's size (skipped when its hash matches), and
    /// when a `.part` from an earlier attempt exists (continued when it holds a prefix of the
    /// same content; the whole part is then checked on the device before the rename). A fresh
    /// part is protected by the SSH channel's MAC (and the agent verifies every bundle hash
    /// again). `progress(sent, total)` is called after every write. Needs `sh`, `sha256sum`,
    /// `mv` on the device (coreutils or busybox) for those checks and for replacing an existing
    /// target (SFTP v3 rename does not overwrite).
    public func upload(_ localPath: String, to remotePath: String, mode: Int32 = 0o644,
                       progress: ((Int, Int) -> Void)? = nil) throws(SSHError) -> UploadResult {
        let start = Date()
        let file = try LocalFile(localPath)
        let bytes = file.bytes
        let digest = hex(sha256(bytes))
        trace("upload: read and hashed \(bytes.count) bytes in " + String(format: "%.3f s", Date().timeIntervalSince(start)))
        let part = remotePath + ".part"
        let q = shellQuote
        let target = try sftpSize(remotePath)
        let partSize = try sftpSize(part) ?? 0
        // The device hashes only what could match: the target when its size is the file's, the
        // part when it could be a prefix.
        var hashed: [String: String] = [:]
        let toHash = (target == bytes.count ? [remotePath] : []) + (partSize > 0 && partSize <= bytes.count ? [part] : [])
        if !toHash.isEmpty {
            let out = try run(toHash.map { "printf '%s\\n' \"$(sha256sum -- \(q($0)) 2>/dev/null | cut -d' ' -f1)\"" }.joined(separator: " && "))
            for (path, line) in zip(toHash, out.split(separator: "\n", omittingEmptySubsequences: false)) { hashed[path] = String(line) }
        }
        if hashed[remotePath] == digest {
            progress?(bytes.count, bytes.count)
            return UploadResult(bytesSent: 0, size: bytes.count, unchanged: true, resumedFrom: 0, sha256: digest,
                                seconds: Date().timeIntervalSince(start))
        }
        var offset = 0
        if let h = hashed[part], hex(sha256(UnsafeRawBufferPointer(rebasing: bytes[0..<partSize]))) == h {
            offset = partSize
        }
        let resumedFrom = offset
        let writeBegan = Date()
        try writePart(bytes, part, offset: offset, mode: mode, progress: progress)
        trace("upload: wrote \(bytes.count - offset) bytes in " + String(format: "%.3f s", Date().timeIntervalSince(writeBegan)))
        if resumedFrom == 0 && target == nil, try sftpRename(part, remotePath) {
            return UploadResult(bytesSent: bytes.count, size: bytes.count, unchanged: false, resumedFrom: 0, sha256: digest,
                                seconds: Date().timeIntervalSince(start))
        }
        // A part continued from an earlier attempt is checked end to end before it replaces the
        // target; an existing target is replaced atomically by mv (rename(2)).
        let finish = resumedFrom > 0
            ? "h=$(sha256sum -- \(q(part)) | cut -d' ' -f1); if [ \"$h\" = \(digest) ]; then mv -f -- \(q(part)) \(q(remotePath)); else rm -f -- \(q(part)); echo \"$h\"; exit 9; fi"
            : "mv -f -- \(q(part)) \(q(remotePath))"
        let r = try exec(finish)
        if r.status == 9 {
            throw .hashMismatch(path: remotePath, local: digest, remote: r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard r.status == 0 else { throw .remoteCommand(command: "mv " + part, status: r.status, stderr: r.stderr) }
        return UploadResult(bytesSent: bytes.count - resumedFrom, size: bytes.count, unchanged: false, resumedFrom: resumedFrom,
                            sha256: digest, seconds: Date().timeIntervalSince(start))
    }

    /// The size of a remote file, nil if it does not exist.
    private func sftpSize(_ path: String) throws(SSHError) -> Int? {
        let sftp = try sftp()
        var attrs = LIBSSH2_SFTP_ATTRIBUTES()
        let rc = try call("stat '\(path)'") { cssh_sftp_stat(sftp, path, UInt32(path.utf8.count), &attrs) }
        if rc == CSSH_ERROR_SFTP_PROTOCOL && libssh2_sftp_last_error(sftp) == UInt(CSSH_FX_NO_SUCH_FILE) { return nil }
        if rc != 0 { throw sftpFailure(rc, path, "stat") }
        return attrs.flags & CSSH_SFTP_ATTR_SIZE != 0 ? Int(attrs.filesize) : 0
    }

    /// Renames without overwriting; false when the server refused (e.g. the new name exists).
    private func sftpRename(_ from: String, _ to: String) throws(SSHError) -> Bool {
        let sftp = try sftp()
        let rc = try call("rename '\(from)'") { cssh_sftp_rename(sftp, from, UInt32(from.utf8.count), to, UInt32(to.utf8.count)) }
        if rc == CSSH_ERROR_SFTP_PROTOCOL { return false }
        if rc != 0 { throw sftpFailure(rc, from, "rename") }
        return true
    }

    /// `mkdir -p` over SFTP: every missing parent of `path` (errors are left to the caller's retry).
    private func sftpMakeParents(_ path: String) throws(SSHError) {
        let sftp = try sftp()
        let dir = (path as NSString).deletingLastPathComponent
        var prefix = dir.hasPrefix("/") ? "/" : ""
        for component in dir.split(separator: "/") {
            prefix += component
            let p = prefix
            _ = try call("mkdir '\(p)'") { cssh_sftp_mkdir(sftp, p, UInt32(p.utf8.count), 0o755) }
            prefix += "/"
        }
    }

    private func writePart(_ bytes: UnsafeRawBufferPointer, _ part: String, offset start: Int, mode: Int32,
                           progress: ((Int, Int) -> Void)?) throws(SSHError) {
        let sftp = try sftp()
        var flags = CSSH_FXF_WRITE | CSSH_FXF_CREAT
        if start == 0 { flags |= CSSH_FXF_TRUNC }
        let openPart = { () throws(SSHError) -> OpaquePointer? in
            try self.callPointer("open '\(part)'", { cssh_sftp_open(sftp, part, UInt32(part.utf8.count), flags, Int(mode)) })
        }
        var opened = try openPart()
        if opened == nil && lastErrno() == CSSH_ERROR_SFTP_PROTOCOL && libssh2_sftp_last_error(sftp) == UInt(CSSH_FX_NO_SUCH_FILE) {
            try sftpMakeParents(part)
            opened = try openPart()
        }
        guard let handle = opened else { throw sftpFailure(lastErrno(), part, "open for writing") }
        var closed = false
        defer { if !closed { _ = try? call("close '\(part)'") { libssh2_sftp_close_handle(handle) } } }
        if start > 0 { libssh2_sftp_seek64(handle, UInt64(start)) }
        // Test hook: PERCH_SSH_TEST_RATE=BYTES_PER_SECOND slows uploads so tests can cut them.
        let rate = ProcessInfo.processInfo.environment["PERCH_SSH_TEST_RATE"].flatMap { Int($0) } ?? 0
        // libssh2 splits each write into 30000-byte SFTP requests and keeps them all in flight,
        // so 1 MiB per call is the pipeline depth (measured: 256 KiB..8 MiB were no faster).
        let chunk = rate > 0 ? max(1024, rate / 20) : 1 << 20
        var offset = start
        let began = Date()
        let base = bytes.baseAddress!.assumingMemoryBound(to: CChar.self)
        while offset < bytes.count {
            let n = min(chunk, bytes.count - offset)
            let at = offset
            let w = try call("write '\(part)'") { libssh2_sftp_write(handle, base + at, n) }
            if w < 0 { throw sftpFailure(Int32(w), part, "write") }
            offset += w
            progress?(offset, bytes.count)
            if rate > 0 {
                let due = Double(offset - start) / Double(rate) - Date().timeIntervalSince(began)
                if due > 0 { usleep(UInt32(due * 1e6)) }
            }
        }
        // The mode exactly (open's mode is subject to the server's umask).
        var attrs = LIBSSH2_SFTP_ATTRIBUTES()
        attrs.flags = CSSH_SFTP_ATTR_PERMISSIONS
        attrs.permissions = UInt(mode)
        let set = try call("chmod '\(part)'") { cssh_sftp_fsetstat(handle, &attrs) }
        if set != 0 { throw sftpFailure(set, part, "chmod") }
        let rc = try call("close '\(part)'") { libssh2_sftp_close_handle(handle) }
        closed = true
        if rc != 0 { throw sftpFailure(rc, part, "close") }
    }
}

/// A local file read into memory once (no Data → [UInt8] copy).
private final class LocalFile {
    let bytes: UnsafeRawBufferPointer
    private let storage: UnsafeMutableRawBufferPointer

    init(_ path: String) throws(SSHError) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .badInput("cannot read '\(path)'") }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .badInput("cannot read '\(path)'") }
        let size = Int(st.st_size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 64)
        var done = 0
        while done < size {
            let n = Glibc.read(fd, buffer.baseAddress! + done, size - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { buffer.deallocate(); throw .badInput("cannot read '\(path)'") }
            done += n
        }
        storage = buffer
        bytes = UnsafeRawBufferPointer(start: buffer.baseAddress, count: size)
    }

    deinit { storage.deallocate() }
}

private func sha256(_ bytes: UnsafeRawBufferPointer) -> SHA256.Digest {
    var h = SHA256()
    h.update(bufferPointer: bytes)
    return h.finalize()
}

/// SHA-256 of a local file as lowercase hex, or nil if it cannot be read.
public func sha256Hex(ofFile path: String) -> String? {
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    return hex(SHA256.hash(data: d))
}

func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    digest.map { String(format: "%02x", $0) }.joined()
}

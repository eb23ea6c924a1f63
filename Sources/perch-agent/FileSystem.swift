import CPerchAgentShims

/// Thin libc file helpers. Paths are plain strings joined with "/".
enum FS {
    enum Kind: Int32 {
        case missing = 0, file = 1, directory = 2, symlink = 3, other = 4
    }

    static func kind(_ path: String) -> Kind { Kind(rawValue: pa_kind(path)) ?? .other }
    static func exists(_ path: String) -> Bool { kind(path) != .missing }

    /// Whole file (reads until EOF, so /proc files work), or nil if it cannot be opened.
    static func read(_ path: String, limit: Int = Int.max) -> [UInt8]? {
        let fd = pa_open_read(path)
        if fd < 0 { return nil }
        defer { _ = pa_close(fd) }
        var out: [UInt8] = []
        let size = pa_file_size(path)
        if size > 0 { out.reserveCapacity(size) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { pa_read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { return nil }
        }
        return out
    }

    static func readText(_ path: String) -> String? {
        guard let b = read(path) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    /// Writes a file durably: data, fsync, close. Not atomic by itself (see `writeAtomically`).
    static func writeSynced(_ path: String, _ bytes: [UInt8], mode: Int32 = 0o644) throws(AgentError) {
        let fd = pa_open_write(path, mode)
        if fd < 0 { throw AgentError.io("create", path) }
        let r = bytes.withUnsafeBytes { pa_write_all(fd, $0.baseAddress, $0.count) }
        if r != 0 {
            _ = pa_close(fd)
            throw AgentError.io("write", path)
        }
        if pa_fsync(fd) != 0 {
            _ = pa_close(fd)
            throw AgentError.io("fsync", path)
        }
        if pa_close(fd) != 0 { throw AgentError.io("close", path) }
    }

    /// Replaces `path` atomically: write `path.tmp`, fsync, rename, fsync the directory.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(AgentError) {
        let tmp = path + ".tmp"
        try writeSynced(tmp, bytes)
        if pa_rename(tmp, path) != 0 { throw AgentError.io("rename", tmp) }
        try syncDirectory(parent(path))
    }

    static func syncDirectory(_ path: String) throws(AgentError) {
        let fd = pa_open_dir(path)
        if fd < 0 { throw AgentError.io("open directory", path) }
        let r = pa_fsync(fd)
        _ = pa_close(fd)
        if r != 0 { throw AgentError.io("fsync directory", path) }
    }

    static func mkdir(_ path: String) throws(AgentError) {
        if kind(path) == .directory { return }
        if pa_mkdir(path, 0o755) != 0 && kind(path) != .directory { throw AgentError.io("create directory", path) }
    }

    static func mkdirs(_ path: String) throws(AgentError) {
        if kind(path) == .directory { return }
        let p = parent(path)
        if !p.isEmpty && p != path && p != "/" && p != "." { try mkdirs(p) }
        try mkdir(path)
    }

    static func list(_ path: String) -> [String] {
        guard let d = pa_dir_open(path) else { return [] }
        defer { pa_dir_close(d) }
        var names: [String] = []
        while let n = pa_dir_next(d) { names.append(String(cString: n)) }
        return names.sorted()
    }

    /// Removes a file, symlink or directory tree (symlinks are removed, never followed).
    static func removeTree(_ path: String) {
        switch kind(path) {
        case .missing: return
        case .directory:
            for name in list(path) { removeTree(path + "/" + name) }
            _ = pa_rmdir(path)
        default:
            _ = pa_unlink(path)
        }
    }

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBufferPointer { pa_readlink(path, $0.baseAddress, $0.count) }
        if n < 0 { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func parent(_ path: String) -> String {
        let b = Array(path.utf8)
        var i = b.count - 1
        while i > 0 && b[i] != 0x2F { i -= 1 }
        if i <= 0 { return b.first == 0x2F ? "/" : "." }
        return String(decoding: b[0..<i], as: UTF8.self)
    }

    static func env(_ name: String) -> String? {
        guard let p = pa_getenv(name) else { return nil }
        return String(cString: p)
    }
}

/// Splits text into lines without Foundation.
func lines(_ text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: true).map { String($0) }
}

func trimmed(_ s: String) -> String {
    var b = Array(s.utf8)
    while let l = b.last, l == 0x20 || l == 0x09 || l == 0x0D || l == 0x0A { b.removeLast() }
    var i = 0
    while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
    return String(decoding: b[i...], as: UTF8.self)
}

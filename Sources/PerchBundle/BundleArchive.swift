import CLibArchive
import Foundation

/// One entry to write into a bundle archive. Bundles only ever contain regular files; the other
/// kinds exist so tests can build the hostile archives the agent and `perch verify` must refuse.
public struct ArchiveEntry: Sendable {
    public enum Kind: Sendable {
        case file([UInt8])
        /// A regular file of `count` zero bytes, written in chunks (for decompression-bomb tests).
        case zeros(Int)
        case symlink(String)
        case hardlink(String)
        case directory
        case characterDevice
    }

    public var name: String
    public var kind: Kind
    /// The size written into the header; nil means the real size. A larger declared size than the
    /// data is not allowed by libarchive, so this only matters for `.zeros`.
    public init(_ name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// tar (pax-restricted: plain ustar headers unless a name needs pax) compressed with zstd, written
/// deterministically: entries in the given order, mode 0644, uid/gid 0, no user/group names, mtime 0.
public enum BundleArchive {
    final class Sink {
        var bytes: [UInt8] = []
    }

    public static func write(_ entries: [ArchiveEntry]) throws -> [UInt8] {
        guard let a = archive_write_new() else { throw BundleError.write("archive_write_new failed") }
        defer { archive_write_free(a) }
        func check(_ r: Int32, _ what: String) throws {
            if r != perch_archive_ok() && r != perch_archive_warn() {
                throw BundleError.write(what + ": " + (archive_error_string(a).map { String(cString: $0) } ?? "unknown error"))
            }
        }
        try check(archive_write_set_format_pax_restricted(a), "tar format")
        try check(archive_write_add_filter_zstd(a), "zstd filter")
        try check(archive_write_set_bytes_in_last_block(a, 1), "block size")
        let sink = Sink()
        let context = Unmanaged.passUnretained(sink).toOpaque()
        try check(archive_write_open2(a, context, nil, { _, ctx, buffer, length in
            let sink = Unmanaged<Sink>.fromOpaque(ctx!).takeUnretainedValue()
            if let buffer, length > 0 {
                sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
            }
            return la_ssize_t(length)
        }, nil, nil), "open")
        for e in entries {
            guard let entry = archive_entry_new() else { throw BundleError.write("archive_entry_new failed") }
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, e.name)
            archive_entry_set_mtime(entry, 0, 0)
            archive_entry_set_uid(entry, 0)
            archive_entry_set_gid(entry, 0)
            archive_entry_set_perm(entry, 0o644)
            switch e.kind {
            case .file(let bytes):
                archive_entry_set_filetype(entry, perch_ae_ifreg())
                archive_entry_set_size(entry, la_int64_t(bytes.count))
            case .zeros(let count):
                archive_entry_set_filetype(entry, perch_ae_ifreg())
                archive_entry_set_size(entry, la_int64_t(count))
            case .symlink(let target):
                archive_entry_set_filetype(entry, perch_ae_iflnk())
                archive_entry_set_symlink(entry, target)
                archive_entry_set_size(entry, 0)
            case .hardlink(let target):
                archive_entry_set_filetype(entry, perch_ae_ifreg())
                archive_entry_set_hardlink(entry, target)
                archive_entry_set_size(entry, 0)
            case .directory:
                archive_entry_set_filetype(entry, perch_ae_ifdir())
                archive_entry_set_perm(entry, 0o755)
                archive_entry_set_size(entry, 0)
            case .characterDevice:
                archive_entry_set_filetype(entry, perch_ae_ifchr())
                archive_entry_set_rdev(entry, 0x0103)
                archive_entry_set_size(entry, 0)
            }
            try check(archive_write_header(a, entry), "header of '" + e.name + "'")
            switch e.kind {
            case .file(let bytes):
                if !bytes.isEmpty {
                    let n = bytes.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
                    if n != bytes.count { throw BundleError.write("data of '" + e.name + "'") }
                }
            case .zeros(let count):
                let chunk = [UInt8](repeating: 0, count: 1 << 20)
                var left = count
                while left > 0 {
                    let n = min(left, chunk.count)
                    let w = chunk.withUnsafeBytes { archive_write_data(a, $0.baseAddress, n) }
                    if w != n { throw BundleError.write("data of '" + e.name + "'") }
                    left -= n
                }
            default:
                break
            }
        }
        try check(archive_write_close(a), "close")
        return sink.bytes
    }
}

extension BundleArchive {
    /// Every entry of an archive with its bytes (non-regular entries get empty bytes), without any
    /// safety or signature check: for inspecting and re-packing bundles (tests, tools), never for
    /// installing. `limit` caps each entry's size.
    public static func readEntries(_ bytes: [UInt8], limit: Int = 1 << 30) throws -> [(name: String, type: ArchiveEntryType, bytes: [UInt8])] {
        let reader = try ArchiveReader(bytes)
        var out: [(name: String, type: ArchiveEntryType, bytes: [UInt8])] = []
        while let h = try reader.next() {
            out.append((h.name, h.type, h.type == .regular ? try reader.readData(name: h.name, limit: limit) : []))
        }
        return out
    }
}

/// The kind of an archive entry as read, for the safety checks.
public enum ArchiveEntryType: Sendable, Equatable {
    case regular, symlink, hardlink, directory, device, other
}

/// Reads a tar.zst archive from memory one entry at a time, never extracting anything itself.
final class ArchiveReader {
    struct Header {
        var name: String
        var type: ArchiveEntryType
        var size: Int
        var linkTarget: String
    }

    private let a: OpaquePointer
    private let storage: UnsafeMutableRawBufferPointer

    init(_ bytes: [UInt8]) throws {
        guard let a = archive_read_new() else { throw BundleError.archive("archive_read_new failed") }
        self.a = a
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        archive_read_support_filter_zstd(a)
        archive_read_support_format_tar(a)
        if archive_read_open_memory(a, storage.baseAddress, bytes.count) != perch_archive_ok() {
            throw BundleError.archive(errorText())
        }
    }

    deinit {
        archive_read_free(a)
        storage.deallocate()
    }

    func errorText() -> String {
        archive_error_string(a).map { String(cString: $0) } ?? "unreadable archive"
    }

    /// The next header, or nil at the end of the archive.
    func next() throws -> Header? {
        var entry: OpaquePointer?
        let r = archive_read_next_header(a, &entry)
        if r == perch_archive_eof() { return nil }
        guard r == perch_archive_ok() || r == perch_archive_warn(), let entry else { throw BundleError.archive(errorText()) }
        let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let ft = UInt32(archive_entry_filetype(entry))
        var type = ArchiveEntryType.other
        var link = ""
        if let h = archive_entry_hardlink(entry) {
            type = .hardlink
            link = String(cString: h)
        } else if ft == perch_ae_ifreg() {
            type = .regular
        } else if ft == perch_ae_iflnk() {
            type = .symlink
            link = archive_entry_symlink(entry).map { String(cString: $0) } ?? ""
        } else if ft == perch_ae_ifdir() {
            type = .directory
        } else if ft == perch_ae_ifchr() || ft == perch_ae_ifblk() || ft == perch_ae_ififo() {
            type = .device
        }
        return Header(name: name, type: type, size: Int(archive_entry_size(entry)), linkTarget: link)
    }

    /// Reads the current entry's data, refusing to read more than `limit` bytes.
    func readData(name: String, limit: Int) throws -> [UInt8] {
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n < 0 { throw BundleError.archive(errorText()) }
            if n == 0 { break }
            if out.count + n > limit { throw BundleError.decompressionBomb(name: name, declared: limit) }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }
}

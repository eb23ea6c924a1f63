import CPerchAgentShims
import PerchEngine
import PerchGraph

/// What the agent needs from manifest.json.
struct Manifest {
    struct File {
        var name: String
        var sha256: String
        var size: Int
    }

    var name: String
    var version: String
    var profile: String
    var isa: String
    var engineVersion: String
    var created: String
    var files: [File]

    func file(_ name: String) -> File? {
        for f in files where f.name == name { return f }
        return nil
    }

    static func parse(_ bytes: [UInt8]) throws(AgentError) -> Manifest {
        let root = try JSONParser.parse(bytes)
        func str(_ v: JSONValue?, _ key: String) throws(AgentError) -> String {
            guard let s = v?.string else { throw AgentError.integrity("invalid manifest: '" + key + "' is missing or not a string") }
            return s
        }
        guard let format = root["bundle_format"]?.int else { throw AgentError.integrity("invalid manifest: 'bundle_format' is missing") }
        guard format == 1 else {
            throw AgentError(Exit.badInput, "bundle_format " + String(format) + " is not supported by this agent (reads 1)", "update the agent")
        }
        let model = root["model"]
        let m = Manifest(
            name: try str(model?["name"], "model.name"), version: try str(model?["version"], "model.version"),
            profile: try str(root["profile"], "profile"), isa: try str(root["target_isa"], "target_isa"),
            engineVersion: try str(root["engine_version"], "engine_version"), created: try str(root["created"], "created"),
            files: try files(root["files"]))
        guard isValidName(m.name) else { throw AgentError.integrity("invalid manifest: model name '" + m.name + "' is not allowed") }
        guard isValidVersion(m.version) else { throw AgentError.integrity("invalid manifest: model version '" + m.version + "' is not dot-separated integers") }
        guard m.file("model.perchm") != nil else { throw AgentError.integrity("invalid manifest: 'files' does not list model.perchm") }
        return m
    }

    static func files(_ v: JSONValue?) throws(AgentError) -> [File] {
        guard let pairs = v?.pairs else { throw AgentError.integrity("invalid manifest: 'files' is missing") }
        var out: [File] = []
        for (name, entry) in pairs {
            guard isAllowedFileName(name) else { throw AgentError.integrity("invalid manifest: file name '" + name + "' is not allowed") }
            guard let sha = entry["sha256"]?.string, sha.utf8.count == 64, let size = entry["size"]?.int, size >= 0 else {
                throw AgentError.integrity("invalid manifest: entry '" + name + "' needs sha256 and size")
            }
            out.append(File(name: name, sha256: sha, size: size))
        }
        return out
    }

    /// `model.perchm`, `eval/inputs/<safe>.npy`, `eval/outputs/<safe>.npy` — nothing else.
    static func isAllowedFileName(_ name: String) -> Bool {
        if name == "model.perchm" { return true }
        for prefix in ["eval/inputs/", "eval/outputs/"] where name.hasPrefix(prefix) {
            let rest = String(name.dropFirst(prefix.count))
            return rest.hasSuffix(".npy") && isValidName(rest)
        }
        return false
    }
}

/// The architecture this agent was built for, in the manifest's spelling.
var hostArch: String {
    #if arch(x86_64)
    return "x86_64"
    #elseif arch(arm64)
    return "aarch64"
    #elseif arch(arm)
    return "armv7"
    #else
    return "unknown"
    #endif
}

/// Reads a bundle entry by entry through libarchive; nothing is written by this type.
final class BundleReader {
    struct Header {
        var name: String
        var kind: Int32
        var size: Int
        var link: String
    }

    let handle: UnsafeMutableRawPointer
    let path: String

    init(_ path: String) throws(AgentError) {
        guard FS.kind(path) == .file else { throw AgentError.bad("bundle '" + path + "' does not exist or is not a file", "check the path") }
        var ok: Int32 = 0
        guard let h = pa_archive_open(path, &ok) else { throw AgentError(Exit.internalError, "libarchive failed to start", "this is a bug") }
        handle = h
        self.path = path
        if ok == 0 {
            let msg = String(cString: pa_archive_error(h))
            throw AgentError.integrity("corrupt or truncated archive: " + msg)
        }
    }

    deinit { pa_archive_free(handle) }

    func next() throws(AgentError) -> Header? {
        var name: UnsafePointer<CChar>? = nil
        var link: UnsafePointer<CChar>? = nil
        var kind: Int32 = 0
        var size: Int64 = 0
        let r = pa_archive_next(handle, &name, &kind, &size, &link)
        if r == 0 { return nil }
        if r < 0 { throw AgentError.integrity("corrupt or truncated archive: " + String(cString: pa_archive_error(handle))) }
        return Header(name: name.map { String(cString: $0) } ?? "", kind: kind, size: Int(size), link: link.map { String(cString: $0) } ?? "")
    }

    /// Streams the current entry to `sink` in chunks, refusing more than `limit` bytes (a
    /// decompression bomb stops here, after at most `limit` + one chunk was decompressed).
    func stream(_ name: String, limit: Int, _ sink: (UnsafeRawPointer, Int) throws(AgentError) -> Void) throws(AgentError) -> Int {
        var total = 0
        let size = 65536
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = pa_archive_read(handle, buffer, size)
            if n < 0 { throw AgentError.integrity("corrupt or truncated archive: " + String(cString: pa_archive_error(handle))) }
            if n == 0 { break }
            total += n
            if total > limit { throw bomb(name, limit) }
            try sink(UnsafeRawPointer(buffer), n)
        }
        return total
    }

    func readAll(_ name: String, limit: Int) throws(AgentError) -> [UInt8] {
        var out: [UInt8] = []
        _ = try stream(name, limit: limit) { (p: UnsafeRawPointer, n: Int) throws(AgentError) in
            out.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        }
        return out
    }

    func bomb(_ name: String, _ limit: Int) -> AgentError {
        AgentError.integrity("decompression bomb: entry '" + name + "' expands beyond the " + String(limit) + " bytes the manifest declares")
    }

    /// Refuses absolute paths, `..`, links, directories, devices; `expected` names the only allowed name.
    static func checkSafe(_ h: Header, expected: String?) throws(AgentError) {
        func unsafe(_ reason: String) -> AgentError { AgentError.integrity("unsafe archive entry '" + h.name + "': " + reason) }
        if h.name.hasPrefix("/") { throw unsafe("absolute path") }
        for part in h.name.split(separator: "/", omittingEmptySubsequences: false) where part == ".." {
            throw unsafe("path contains '..' (would leave the version directory)")
        }
        switch h.kind {
        case 1: break
        case 2: throw unsafe("symbolic link to '" + h.link + "' (only regular files are allowed)")
        case 3: throw unsafe("hard link to '" + h.link + "' (only regular files are allowed)")
        case 4: throw unsafe("directory entry (only regular files are allowed)")
        case 5: throw unsafe("device or FIFO (only regular files are allowed)")
        default: throw unsafe("unknown entry type (only regular files are allowed)")
        }
        if let expected, h.name != expected { throw unsafe("expected '" + expected + "' here") }
    }
}

/// `perch-agent install BUNDLE`: verify, extract into staging, fsync, rename into versions/,
/// record the highest version, switch `active`. Every step before the final rename leaves
/// `active` untouched, so a kill at any point keeps the previous version running.
func install(_ bundlePath: String, _ state: AgentState) throws(AgentError) -> String {
    try state.prepare()
    let lock = try InstallLock.acquire(state)
    _ = lock
    crashPoint("locked")
    // Leftovers of killed installs: nothing in staging/ or active.new is ever live.
    for entry in FS.list(state.stagingDir) { FS.removeTree(state.stagingDir + "/" + entry) }
    _ = pa_unlink(state.root + "/active.new")
    let previous = state.active()

    let reader = try BundleReader(bundlePath)
    guard let first = try reader.next() else { throw AgentError.integrity("corrupt or truncated archive: it is empty") }
    try BundleReader.checkSafe(first, expected: "manifest.json")
    let maxManifest = 1 << 20
    if first.size > maxManifest { throw reader.bomb(first.name, maxManifest) }
    let manifestBytes = try reader.readAll(first.name, limit: maxManifest)

    // Signature first: nothing else of the archive is looked at before it verifies.
    var header = try reader.next()
    var signature: [UInt8]? = nil
    var signer = ""
    if let h = header, h.name == "manifest.sig" {
        try BundleReader.checkSafe(h, expected: "manifest.sig")
        guard h.size == 64 else { throw AgentError.integrity("signature check failed: manifest.sig is " + String(h.size) + " bytes, not 64") }
        let sig = try reader.readAll(h.name, limit: 64)
        let keys = state.trustedKeys()
        if keys.isEmpty {
            throw AgentError(Exit.integrity, "signature check failed: this device trusts no keys", "add the signer's key with 'perch-agent trust KEY.pub'")
        }
        for k in keys where Crypto.verify(signature: sig, message: manifestBytes, publicKey: k.key) {
            signer = k.file
            break
        }
        if signer.isEmpty {
            throw AgentError.integrity("signature check failed: manifest.sig does not verify against any trusted key (manifest edited, or signed by another key)")
        }
        signature = sig
        header = try reader.next()
    } else if !state.allowsUnsigned() {
        throw AgentError.integrity("signature check failed: the bundle is not signed (no manifest.sig) and this device does not allow unsigned bundles")
    }
    crashPoint("verified")

    let manifest = try Manifest.parse(manifestBytes)
    if manifest.isa != hostArch {
        throw AgentError.bad("bundle is built for " + manifest.isa + ", this device is " + hostArch, "pack it with '--isa " + hostArch + "' or the device's profile")
    }
    let manifestSHA = SHA256Stream.hex(manifestBytes)
    let target = InstalledVersion(name: manifest.name, version: manifest.version)

    // Downgrade and replay protection: never below the highest version this device has held, and
    // the same version only with the same manifest. Going back is `rollback`'s job.
    var highest = state.highest(manifest.name)
    for v in state.installed() where v.name == manifest.name {
        if highest == nil || compareVersions(v.version, highest!.version) > 0 {
            highest = (v.version, state.manifestSHA(v) ?? "")
        }
    }
    if let h = highest {
        let c = compareVersions(manifest.version, h.version)
        if c < 0 {
            throw AgentError(Exit.integrity, "downgrade refused: " + manifest.name + " " + manifest.version + " is older than " + h.version + ", already installed on this device",
                             "to go back to a version the device still holds, use 'perch-agent rollback --to VERSION'; otherwise publish a newer version")
        }
        if c == 0 && !h.manifestSHA.isEmpty && h.manifestSHA != manifestSHA {
            throw AgentError(Exit.integrity, "replay refused: " + manifest.name + " " + manifest.version + " is already installed with different content",
                             "publish the change as a new version")
        }
    }

    // Space: everything the manifest declares must fit before anything is written.
    var needed = manifestBytes.count + 64 + 65536
    for f in manifest.files { needed += f.size }
    var free = Int(pa_free_bytes(state.root))
    if let fake = FS.env("PERCH_AGENT_FAKE_FREE_BYTES"), let v = Int(fake) { free = v }
    if free >= 0 && free < needed {
        throw AgentError(Exit.device, "not enough free storage: the bundle needs " + String(needed) + " bytes, " + String(free) + " are free",
                         "free space (e.g. 'perch-agent gc --keep 1') and retry")
    }

    let staging = state.stagingDir + "/" + target.directory + "." + String(pa_getpid())
    do throws(AgentError) {
        try FS.mkdir(staging)
        try FS.writeSynced(staging + "/manifest.json", manifestBytes)
        if let sig = signature { try FS.writeSynced(staging + "/manifest.sig", sig) }
        crashPoint("staging")

        var seen: [String] = []
        var directories = [staging]
        while let h = header {
            try BundleReader.checkSafe(h, expected: nil)
            guard let f = manifest.file(h.name) else {
                throw AgentError.integrity("unsafe archive entry '" + h.name + "': not listed in the manifest")
            }
            if seen.contains(h.name) { throw AgentError.integrity("unsafe archive entry '" + h.name + "': appears twice") }
            seen.append(h.name)
            if h.size > f.size { throw reader.bomb(h.name, f.size) }
            let path = staging + "/" + h.name
            let dir = FS.parent(path)
            if dir != staging {
                try FS.mkdirs(dir)
                if !directories.contains(dir) { directories.append(dir) }
                let mid = FS.parent(dir)
                if mid != staging && !directories.contains(mid) { directories.append(mid) }
            }
            let fd = pa_open_write(path, 0o644)
            if fd < 0 { throw AgentError.io("create", path) }
            let hasher = SHA256Stream()
            var chunks = 0
            let written: Int
            do throws(AgentError) {
                written = try reader.stream(h.name, limit: f.size) { (p: UnsafeRawPointer, n: Int) throws(AgentError) in
                    hasher.update(p, n)
                    if pa_write_all(fd, p, n) != 0 { throw AgentError.io("write", path) }
                    chunks += 1
                    if chunks == 2 { crashPoint("extracting") }
                }
                if pa_fsync(fd) != 0 { throw AgentError.io("fsync", path) }
            } catch {
                _ = pa_close(fd)
                throw error
            }
            if pa_close(fd) != 0 { throw AgentError.io("close", path) }
            if written != f.size {
                throw AgentError.integrity("hash check failed: " + h.name + " is " + String(written) + " bytes, the manifest says " + String(f.size))
            }
            if hasher.hexDigest() != f.sha256 {
                throw AgentError.integrity("hash check failed: SHA-256 of " + h.name + " differs from the manifest (the file was modified)")
            }
            header = try reader.next()
        }
        for f in manifest.files where !seen.contains(f.name) {
            throw AgentError.integrity("hash check failed: '" + f.name + "' is listed in the manifest but missing from the archive")
        }
        crashPoint("extracted")

        // The model must load before it may become active.
        guard let modelBytes = FS.read(staging + "/model.perchm") else { throw AgentError.io("read", staging + "/model.perchm") }
        if loadSession(modelBytes) == nil {
            throw AgentError.bad("model.perchm of " + manifest.name + " " + manifest.version + " does not load", "re-create it with 'perch import' and re-pack")
        }

        for d in directories.reversed() { try FS.syncDirectory(d) }
        try FS.syncDirectory(state.stagingDir)
        crashPoint("synced")

        let final = state.versionsDir + "/" + target.directory
        if FS.kind(final) == .directory {
            // Same version, same manifest (checked above): the existing copy is complete.
            FS.removeTree(staging)
        } else {
            if pa_rename(staging, final) != 0 { throw AgentError.io("rename into place", final) }
            try FS.syncDirectory(state.versionsDir)
            try FS.syncDirectory(state.stagingDir)
        }
    } catch {
        FS.removeTree(staging)
        throw error
    }
    crashPoint("renamed")

    if highest == nil || compareVersions(manifest.version, highest!.version) > 0 {
        try state.recordHighest(manifest.name, version: manifest.version, manifestSHA: manifestSHA)
    }
    crashPoint("recorded")
    try state.activate(target)
    crashPoint("switched")

    var j = JSONWriter()
    j.beginObject()
    j.beginObject("installed")
    j.string("name", manifest.name)
    j.string("version", manifest.version)
    j.string("profile", manifest.profile)
    j.string("target_isa", manifest.isa)
    j.bool("signed", signature != nil)
    if signer.isEmpty { j.null("signer") } else { j.string("signer", signer) }
    j.endObject()
    if let p = previous {
        j.beginObject("previous")
        j.string("name", p.name)
        j.string("version", p.version)
        j.endObject()
    } else {
        j.null("previous")
    }
    j.bool("active", true)
    j.endObject()
    return j.text
}

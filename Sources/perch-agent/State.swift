import CPerchAgentShims

/// One installed version: the directory `versions/<name>-<version>/`.
struct InstalledVersion {
    var name: String
    var version: String
    var directory: String { name + "-" + version }
}

/// The agent's state directory:
/// `versions/<name>-<version>/` (complete, fsync'd installs), `active` (symlink to one of them,
/// switched by renaming `active.new` over it), `staging/` (work in progress; anything there is
/// garbage once the lock is held), `highest/<name>` (highest version ever installed and its
/// manifest hash, for downgrade/replay protection), `trusted-keys/*.pub`, `config`, `lock`.
struct AgentState {
    var root: String

    var versionsDir: String { root + "/versions" }
    var stagingDir: String { root + "/staging" }
    var highestDir: String { root + "/highest" }
    var keysDir: String { root + "/trusted-keys" }
    var activeLink: String { root + "/active" }

    func prepare() throws(AgentError) {
        try FS.mkdirs(root)
        for d in [versionsDir, stagingDir, highestDir, keysDir] { try FS.mkdir(d) }
    }

    /// Versions present under versions/, sorted by name then version.
    func installed() -> [InstalledVersion] {
        var out: [InstalledVersion] = []
        for entry in FS.list(versionsDir) {
            guard FS.kind(versionsDir + "/" + entry) == .directory, let v = Self.parseDirectory(entry) else { continue }
            out.append(v)
        }
        out.sort { a, b in a.name != b.name ? a.name < b.name : compareVersions(a.version, b.version) < 0 }
        return out
    }

    static func parseDirectory(_ entry: String) -> InstalledVersion? {
        let b = Array(entry.utf8)
        guard let dash = b.lastIndex(of: 0x2D), dash > 0 else { return nil }
        let name = String(decoding: b[0..<dash], as: UTF8.self)
        let version = String(decoding: b[(dash + 1)...], as: UTF8.self)
        guard isValidName(name), isValidVersion(version) else { return nil }
        return InstalledVersion(name: name, version: version)
    }

    /// The version `active` points to, if it points to a complete version directory.
    func active() -> InstalledVersion? {
        guard let target = FS.readLink(activeLink) else { return nil }
        let prefix = "versions/"
        guard target.hasPrefix(prefix) else { return nil }
        let entry = String(target.dropFirst(prefix.count))
        guard let v = Self.parseDirectory(entry), FS.kind(versionsDir + "/" + entry) == .directory else { return nil }
        return v
    }

    /// Points `active` at `v` atomically: a new symlink `active.new`, renamed over `active`.
    func activate(_ v: InstalledVersion) throws(AgentError) {
        let tmp = root + "/active.new"
        _ = pa_unlink(tmp)
        if pa_symlink("versions/" + v.directory, tmp) != 0 { throw AgentError.io("create symlink", tmp) }
        crashPoint("linked")
        if pa_rename(tmp, activeLink) != 0 { throw AgentError.io("switch", activeLink) }
        try FS.syncDirectory(root)
    }

    /// Highest version ever installed for `name` and the SHA-256 of its manifest.
    func highest(_ name: String) -> (version: String, manifestSHA: String)? {
        guard let text = FS.readText(highestDir + "/" + name) else { return nil }
        let l = lines(text)
        guard l.count >= 2, isValidVersion(l[0]) else { return nil }
        return (l[0], l[1])
    }

    func recordHighest(_ name: String, version: String, manifestSHA: String) throws(AgentError) {
        try FS.writeAtomically(highestDir + "/" + name, Array((version + "\n" + manifestSHA + "\n").utf8))
    }

    /// `config`: `allow_unsigned=true|false` (default false).
    func allowsUnsigned() -> Bool {
        guard let text = FS.readText(root + "/config") else { return false }
        for line in lines(text) where trimmed(line) == "allow_unsigned=true" { return true }
        return false
    }

    /// Trusted Ed25519 public keys (`trusted-keys/*.pub`, each `perch-ed25519 <base64>`).
    func trustedKeys() -> [(file: String, key: [UInt8])] {
        var out: [(file: String, key: [UInt8])] = []
        for name in FS.list(keysDir) where name.hasSuffix(".pub") {
            if let text = FS.readText(keysDir + "/" + name), let key = parsePublicKey(text) { out.append((name, key)) }
        }
        return out
    }

    func manifestSHA(_ v: InstalledVersion) -> String? {
        guard let b = FS.read(versionsDir + "/" + v.directory + "/manifest.json") else { return nil }
        return SHA256Stream.hex(b)
    }
}

func parsePublicKey(_ text: String) -> [UInt8]? {
    let parts = trimmed(text).split(separator: " ", omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0] == "perch-ed25519", let key = Crypto.base64Decode(String(parts[1])), key.count == 32 else { return nil }
    return key
}

/// The install lock: an exclusive `flock` on `lock`, released when the process exits (even by
/// SIGKILL), so a killed install never blocks the next one.
struct InstallLock {
    var fd: Int32

    static func acquire(_ state: AgentState) throws(AgentError) -> InstallLock {
        let path = state.root + "/lock"
        let fd = pa_open_rw(path)
        if fd < 0 { throw AgentError.io("open", path) }
        let r = pa_flock_try(fd)
        if r != 0 {
            _ = pa_close(fd)
            var holder = ""
            if let text = FS.readText(path) { holder = trimmed(text) }
            throw AgentError(Exit.device, "busy: another install is running" + (holder.isEmpty ? "" : " (pid " + holder + ")"),
                             "wait for it to finish and retry")
        }
        _ = pa_ftruncate(fd, 0)
        let pid = Array((String(pa_getpid()) + "\n").utf8)
        _ = pid.withUnsafeBytes { pa_write_all(fd, $0.baseAddress, $0.count) }
        return InstallLock(fd: fd)
    }
}

/// Test hooks: `PERCH_AGENT_CRASH_AT=<step>` makes the agent SIGKILL itself at that step;
/// `PERCH_AGENT_PAUSE_AT=<step>` sleeps 3 s there (to hold the lock in concurrency tests).
func crashPoint(_ step: String) {
    if let at = FS.env("PERCH_AGENT_CRASH_AT"), at == step { pa_kill_self() }
    if let at = FS.env("PERCH_AGENT_PAUSE_AT"), at == step { pa_sleep_ms(3000) }
}

/// Model names: 1–64 of `[A-Za-z0-9._-]`, not starting with `.`.
func isValidName(_ s: String) -> Bool {
    let b = Array(s.utf8)
    guard !b.isEmpty, b.count <= 64, b[0] != 0x2E else { return false }
    return b.allSatisfy(isSafeByte)
}

func isSafeByte(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 46 || b == 95 || b == 45
}

/// 1–4 dot-separated integers of at most 9 digits.
func isValidVersion(_ s: String) -> Bool {
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count >= 1 && parts.count <= 4 else { return false }
    for p in parts {
        if p.isEmpty || p.utf8.count > 9 { return false }
        for b in p.utf8 where b < 48 || b > 57 { return false }
    }
    return true
}

func compareVersions(_ a: String, _ b: String) -> Int {
    let x = a.split(separator: ".").map { Int($0) ?? 0 }
    let y = b.split(separator: ".").map { Int($0) ?? 0 }
    let n = x.count > y.count ? x.count : y.count
    for i in 0..<n {
        let u = i < x.count ? x[i] : 0
        let v = i < y.count ? y[i] : 0
        if u != v { return u < v ? -1 : 1 }
    }
    return 0
}

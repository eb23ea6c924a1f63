import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Builds a static, stripped `perch-agent` for a device ISA with Embedded Swift and the target's C
/// cross toolchain, and caches it by ISA and a hash of everything that goes into it.
///
/// The steps (ENVIRONMENT.md, "Embedded Swift cross-compile"): `swiftc -enable-experimental-feature
/// Embedded -wmo -Osize` compiles PerchGraph, PerchEngine and perch-agent (with the header-only C
/// shims) into three objects for the Embedded target; `<triple>-gcc -static-pie` links them with the
/// toolchain's `libswiftUnicodeDataTables.a` and Debian's static libarchive, libzstd and libsodium;
/// `<triple>-strip` strips it. The agent enables only libarchive's tar format and zstd filter, so
/// none of libarchive's other dependencies (nettle, acl, lzma, xml2, bz2, lz4, zlib) are linked.
public final class AgentBuilder {
    public struct Result: Sendable {
        public var isa: AgentISA
        /// The cached binary (or the output file when one was asked for).
        public var path: String
        public var sha256: String
        public var sizeBytes: Int
        /// True when the binary came from the cache without building.
        public var cached: Bool
        /// "embedded" (Embedded Swift, static) — the only route; kept in the JSON for clarity.
        public var route: String
        public var cacheKey: String
        public var seconds: Double
    }

    /// Bumped whenever the recipe below changes, so old cache entries are not reused.
    static let recipeVersion = "perch-agent-build/2"

    public let sourceRoot: String
    public let cacheRoot: String
    public let swiftc: String
    public var log: (String) -> Void

    /// - Parameters:
    ///   - sourceRoot: the Perch checkout (folder of Package.swift); `nil` searches (see `findSources`).
    ///   - cacheRoot: `nil` = `$PERCH_CACHE_DIR/agents`, else `$XDG_CACHE_HOME/perch/agents`, else `~/.cache/perch/agents`.
    public init(sourceRoot: String? = nil, cacheRoot: String? = nil, log: @escaping (String) -> Void = { _ in }) throws(AgentBuildError) {
        guard let root = sourceRoot ?? AgentBuilder.findSources() else {
            throw .sourcesNotFound("no Package.swift with Sources/perch-agent above the current directory or the perch executable")
        }
        guard FileManager.default.fileExists(atPath: root + "/Sources/perch-agent/main.swift") else {
            throw .sourcesNotFound(root + " has no Sources/perch-agent/main.swift")
        }
        self.sourceRoot = root
        self.cacheRoot = cacheRoot ?? AgentBuilder.defaultCacheRoot()
        self.swiftc = AgentBuilder.findSwiftc()
        self.log = log
    }

    public static func defaultCacheRoot() -> String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["PERCH_CACHE_DIR"], !d.isEmpty { return d + "/agents" }
        if let d = env["XDG_CACHE_HOME"], !d.isEmpty { return d + "/perch/agents" }
        return NSHomeDirectory() + "/.cache/perch/agents"
    }

    /// The checkout: the nearest folder above the working directory, then above the `perch`
    /// executable (`.build/debug/perch` → the checkout), that has Package.swift and Sources/perch-agent.
    public static func findSources() -> String? {
        func search(from start: String) -> String? {
            var dir = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<12 {
                if FileManager.default.fileExists(atPath: dir.path + "/Package.swift"),
                   FileManager.default.fileExists(atPath: dir.path + "/Sources/perch-agent/main.swift") {
                    return dir.path
                }
                let up = dir.deletingLastPathComponent()
                if up.path == dir.path { break }
                dir = up
            }
            return nil
        }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        return search(from: FileManager.default.currentDirectoryPath) ?? search(from: exe)
    }

    static func findSwiftc() -> String {
        let env = ProcessInfo.processInfo.environment
        if let s = env["SWIFTC"], !s.isEmpty { return s }
        if FileManager.default.isExecutableFile(atPath: "/opt/swift/usr/bin/swiftc") { return "/opt/swift/usr/bin/swiftc" }
        return which("swiftc") ?? "swiftc"
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = String(dir) + "/" + name
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The Embedded Swift stdlib folder of the toolchain (`…/lib/swift/embedded`).
    var embeddedDir: String {
        let bin = URL(fileURLWithPath: swiftc).resolvingSymlinksInPath().deletingLastPathComponent()
        return bin.deletingLastPathComponent().path + "/lib/swift/embedded"
    }

    /// Everything one ISA's build needs from the machine, checked before any work.
    struct Toolchain {
        var cc: String
        var strip: String
        var unicodeTables: String
        var libDir: String
        var staticLibs: [String]
    }

    func toolchain(for isa: AgentISA) throws(AgentBuildError) -> Toolchain {
        guard FileManager.default.isExecutableFile(atPath: swiftc) || AgentBuilder.which(swiftc) != nil else {
            throw .missingTool(what: "swiftc (Swift 6.3 toolchain)", packages: ["the swift.org toolchain in /opt/swift"])
        }
        let stdlib = embeddedDir + "/Swift.swiftmodule/" + isa.swiftTarget + ".swiftmodule"
        let tables = embeddedDir + "/" + isa.swiftTarget + "/libswiftUnicodeDataTables.a"
        guard FileManager.default.fileExists(atPath: stdlib), FileManager.default.fileExists(atPath: tables) else {
            throw .unsupported(isa: isa.rawValue, reason: "the Swift toolchain has no Embedded Swift standard library for "
                + isa.swiftTarget + " (looked for " + stdlib + " and " + tables + ")")
        }
        if isa == .armv7 && (AgentBuilder.which(isa.gnuTriple + "-gcc") == nil
            || !FileManager.default.fileExists(atPath: "/usr/lib/" + isa.gnuTriple + "/libarchive.a")) {
            // Swift itself can: armv7-none-none-eabi with -mfloat-abi=hard emits hard-float (VFP
            // argument) objects. What is missing is Debian's armhf side, which bootstrap does not install.
            throw .unsupported(isa: "armv7", reason: "no armhf static libraries or cross gcc here — scripts/bootstrap.sh does not "
                + "install them because Debian bookworm's libarchive-dev:armhf (3.6.2-1+deb12u4) cannot be co-installed with this "
                + "machine's amd64 libarchive13 (3.6.2-1+deb12u5 from bookworm-security, whose armhf index fails to download); "
                + "install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross and libarchive-dev:armhf libsodium-dev:armhf "
                + "libzstd-dev:armhf (dpkg --add-architecture armhf) and build again")
        }
        guard let cc = AgentBuilder.which(isa.gnuTriple + "-gcc") else {
            throw .missingTool(what: isa.gnuTriple + "-gcc", packages: isa.debianPackages)
        }
        guard let strip = AgentBuilder.which(isa.gnuTriple + "-strip") else {
            throw .missingTool(what: isa.gnuTriple + "-strip", packages: isa.debianPackages)
        }
        let libDir = "/usr/lib/" + isa.gnuTriple
        let libs = ["archive", "zstd", "sodium"].map { libDir + "/lib" + $0 + ".a" }
        for lib in libs where !FileManager.default.fileExists(atPath: lib) {
            throw .missingTool(what: lib + " (static library for " + isa.rawValue + ")", packages: isa.debianPackages)
        }
        let crt = isa.sysroot == "/" ? "/usr/lib/" + isa.gnuTriple + "/libc.a" : isa.sysroot + "/lib/libc.a"
        guard FileManager.default.fileExists(atPath: crt) else {
            throw .missingTool(what: crt + " (static libc for " + isa.rawValue + ")", packages: isa.debianPackages)
        }
        return Toolchain(cc: cc, strip: strip, unicodeTables: tables, libDir: libDir, staticLibs: libs)
    }

    /// Source folders of the embedded-safe modules the agent is made of.
    static let sourceFolders = ["PerchGraph", "PerchEngine", "CPerchShims", "CPerchAgentShims", "perch-agent"]

    /// SHA-256 over the recipe, the ISA, the compiler and linker versions, every source file of the
    /// agent's modules (path and bytes) and the static libraries: equal keys build equal binaries.
    func cacheKey(isa: AgentISA, tools: Toolchain) -> String {
        var h = SHA256()
        func add(_ s: String) { h.update(data: Data(s.utf8)); h.update(data: Data([0])) }
        add(AgentBuilder.recipeVersion)
        add(isa.rawValue)
        add(AgentBuilder.capture([swiftc, "--version"]) ?? swiftc)
        add(AgentBuilder.capture([tools.cc, "--version"]) ?? tools.cc)
        for folder in AgentBuilder.sourceFolders {
            for file in sourceFiles(in: folder) {
                add(String(file.dropFirst(sourceRoot.count)))
                if let d = FileManager.default.contents(atPath: file) { h.update(data: d) }
            }
        }
        for lib in tools.staticLibs + [tools.unicodeTables] {
            add(lib)
            if let d = FileManager.default.contents(atPath: lib) { h.update(data: d) }
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    func sourceFiles(in folder: String, ext: String? = nil) -> [String] {
        let base = sourceRoot + "/Sources/" + folder
        guard let e = FileManager.default.enumerator(atPath: base) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            let p = base + "/" + rel
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue,
               ext == nil || rel.hasSuffix("." + ext!) {
                out.append(p)
            }
        }
        return out.sorted()
    }

    /// Returns the cached binary for `isa`, building it first when the cache has none for the
    /// current sources and toolchain. Concurrent builds of the same key wait for each other.
    public func build(isa: AgentISA) throws(AgentBuildError) -> Result {
        let start = Date()
        let tools = try toolchain(for: isa)
        let key = cacheKey(isa: isa, tools: tools)
        let entry = cacheRoot + "/" + isa.rawValue + "-" + String(key.prefix(16))
        let binary = entry + "/perch-agent"
        do {
            try FileManager.default.createDirectory(atPath: cacheRoot, withIntermediateDirectories: true)
        } catch {
            throw .write(cacheRoot + ": " + String(describing: error))
        }
        if let r = cachedResult(binary, isa: isa, key: key, start: start) { return r }

        let lockFD = open(entry + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if lockFD >= 0 { _ = flock(lockFD, LOCK_EX) }
        defer { if lockFD >= 0 { close(lockFD) } }
        if let r = cachedResult(binary, isa: isa, key: key, start: start) { return r }

        let work = entry + ".work"
        try? FileManager.default.removeItem(atPath: work)
        do {
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        } catch {
            throw .write(work + ": " + String(describing: error))
        }
        log("perch agent build: " + isa.rawValue + " (Embedded Swift " + isa.swiftTarget + ", cache " + entry + ")")
        try compileAndLink(isa: isa, tools: tools, work: work)

        let tmpEntry = entry + ".tmp"
        try? FileManager.default.removeItem(atPath: tmpEntry)
        do {
            try FileManager.default.createDirectory(atPath: tmpEntry, withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: work + "/perch-agent", toPath: tmpEntry + "/perch-agent")
            try? FileManager.default.removeItem(atPath: entry)
            try FileManager.default.moveItem(atPath: tmpEntry, toPath: entry)
        } catch {
            throw .write(entry + ": " + String(describing: error))
        }
        try? FileManager.default.removeItem(atPath: work)
        guard var r = cachedResult(binary, isa: isa, key: key, start: start) else {
            throw .badOutput("the cache entry " + binary + " vanished")
        }
        r.cached = false
        return r
    }

    func cachedResult(_ binary: String, isa: AgentISA, key: String, start: Date) -> Result? {
        guard let data = FileManager.default.contents(atPath: binary),
              let elf = ELFInfo.parse([UInt8](data)), elf.isa == isa, elf.isStatic else { return nil }
        let sha = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        return Result(isa: isa, path: binary, sha256: sha, sizeBytes: data.count, cached: true,
                      route: "embedded", cacheKey: key, seconds: Date().timeIntervalSince(start))
    }

    /// Copies a built agent to `path` (atomically, mode 755).
    public static func copy(_ result: Result, to path: String) throws(AgentBuildError) {
        let tmp = path + ".tmp"
        do {
            try? FileManager.default.removeItem(atPath: tmp)
            try FileManager.default.copyItem(atPath: result.path, toPath: tmp)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tmp)
            _ = try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
        } catch {
            throw .write(path + ": " + String(describing: error))
        }
    }

    func compileAndLink(isa: AgentISA, tools: Toolchain, work: String) throws(AgentBuildError) {
        let shims = sourceRoot + "/Sources/CPerchShims/include/CPerchShims.h"
        let agentShims = sourceRoot + "/Sources/CPerchAgentShims/include/CPerchAgentShims.h"
        // Module maps for the header-only C shims, in their own folders so each -I finds one.
        do {
            try FileManager.default.createDirectory(atPath: work + "/shims", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: work + "/agentshims", withIntermediateDirectories: true)
            try ("module CPerchShims {\n  header \"" + shims + "\"\n  export *\n}\n")
                .write(toFile: work + "/shims/module.modulemap", atomically: true, encoding: .utf8)
            try ("module CPerchAgentShims {\n  header \"" + agentShims + "\"\n  export *\n}\n")
                .write(toFile: work + "/agentshims/module.modulemap", atomically: true, encoding: .utf8)
        } catch {
            throw .write(work + ": " + String(describing: error))
        }
        let sysroot = isa.sysroot
        // One section per function and datum, so the linker's --gc-sections drops what the agent
        // never calls (the engine's kernels for ops a device never sees still link if reachable).
        var common = [swiftc, "-target", isa.swiftTarget, "-enable-experimental-feature", "Embedded", "-wmo", "-Osize",
                      "-Xfrontend", "-function-sections", "-Xcc", "-ffunction-sections", "-Xcc", "-fdata-sections",
                      "-I", work, "-I", work + "/shims", "-I", work + "/agentshims"]
        common += isa.extraSwiftFlags
        if sysroot != "/" {
            common += ["-Xcc", "--sysroot=" + sysroot, "-Xcc", "-isystem", "-Xcc", sysroot + "/include"]
        }
        common += ["-Xcc", "-D__linux__", "-Xcc", "-D__unix__",
                   // libsodium's and libarchive's headers are architecture-independent: the host's.
                   "-Xcc", "-idirafter", "-Xcc", "/usr/include"]
        let library = ["-parse-as-library"]
        let modules: [(name: String, folder: String, extra: [String])] = [
            ("PerchGraph", "PerchGraph", library + ["-emit-module", "-emit-module-path", work + "/PerchGraph.swiftmodule"]),
            ("PerchEngine", "PerchEngine", library + ["-emit-module", "-emit-module-path", work + "/PerchEngine.swiftmodule"]),
            ("perch_agent", "perch-agent", []),
        ]
        var objects: [String] = []
        for m in modules {
            let obj = work + "/" + m.name + ".o"
            log("  swiftc " + m.name + " (" + isa.swiftTarget + ")")
            try run(common + m.extra + ["-module-name", m.name, "-c", "-o", obj] + sourceFiles(in: m.folder, ext: "swift"),
                    step: "compiling " + m.name + " for " + isa.rawValue, logFile: work + "/" + m.name + ".log")
            objects.append(obj)
        }
        let unstripped = work + "/perch-agent.unstripped"
        log("  link " + (tools.cc as NSString).lastPathComponent + " -static-pie")
        try run([tools.cc, "-static-pie", "-o", unstripped] + objects
                + [tools.unicodeTables, "-L" + tools.libDir, "-Wl,--gc-sections", "-larchive", "-lzstd", "-lsodium", "-lm"],
                step: "linking perch-agent for " + isa.rawValue, logFile: work + "/link.log")
        try run([tools.strip, "-o", work + "/perch-agent", unstripped],
                step: "stripping perch-agent", logFile: work + "/strip.log")
        guard let elf = ELFInfo.read(path: work + "/perch-agent") else { throw .badOutput("not an ELF file") }
        guard elf.isa == isa else { throw .badOutput("ELF machine " + String(elf.machine) + ", expected " + isa.rawValue) }
        guard elf.isStatic else { throw .badOutput("it asks for a dynamic loader") }
    }

    /// Runs a tool with its output in `logFile`; on failure throws with the log's last lines.
    func run(_ argv: [String], step: String, logFile: String) throws(AgentBuildError) {
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        guard let out = FileHandle(forWritingAtPath: logFile) else { throw .write(logFile) }
        defer { try? out.close() }
        out.write(Data((argv.joined(separator: " ") + "\n").utf8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.standardOutput = out
        p.standardError = out
        do { try p.run() } catch {
            throw .stepFailed(step: step, log: "cannot start " + argv[0] + ": " + String(describing: error))
        }
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            let tail = text.split(separator: "\n").suffix(6).joined(separator: " | ")
            throw .stepFailed(step: step, log: tail + " (log: " + logFile + ")")
        }
    }

    /// Runs a command and returns its stdout, or nil when it cannot run.
    static func capture(_ argv: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(data: data, encoding: .utf8)
    }
}

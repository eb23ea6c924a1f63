import CPerchAgentShims

// perch-agent: the device side of Perch. Embedded-safe: no Foundation, no existentials, typed
// throws; libc, libsodium and libarchive through CPerchAgentShims.

let usage = """
    usage: perch-agent [--state DIR] <command>
      info                                   ISA, features, cores, RAM, free storage, versions
      install BUNDLE                         verify, install and activate a bundle
      bench [--runs R] [--warmup W] [--threads N]   latency; eval_agreement when the bundle has eval outputs
      run --input NAME=FILE.npy ... --output-dir DIR
      rollback [--to VERSION]                switch back to an installed version
      status                                 active version and installed versions
      gc --keep N                            keep the N newest versions of each model
      trust KEY.pub                          trust a signing key (perch keys generate)
    state: --state DIR, else $PERCH_AGENT_STATE, else $HOME/.perch-agent
    exit codes: 0 ok, 2 bad input, 3 device problem (busy, full disk), 4 integrity refusal, 70 internal
    """

struct Arguments {
    var command = ""
    var positional: [String] = []
    var options: [(String, String)] = []

    func option(_ name: String) -> String? {
        var found: String? = nil
        for (k, v) in options where k == name { found = v }
        return found
    }

    func all(_ name: String) -> [String] {
        var out: [String] = []
        for (k, v) in options where k == name { out.append(v) }
        return out
    }

    func int(_ name: String, default d: Int, min: Int) throws(AgentError) -> Int {
        guard let s = option(name) else { return d }
        guard let v = Int(s), v >= min else { throw AgentError.bad("--" + name + " must be an integer of at least " + String(min), "see 'perch-agent help'") }
        return v
    }

    static func parse(_ args: [String]) throws(AgentError) -> Arguments {
        var a = Arguments()
        let valued = ["state", "runs", "warmup", "threads", "input", "output-dir", "to", "keep"]
        var i = 0
        while i < args.count {
            let arg = args[i]
            if arg.hasPrefix("--") {
                var key = String(arg.dropFirst(2))
                var value: String? = nil
                if let eq = key.utf8.firstIndex(of: 0x3D) {
                    value = String(key[key.index(after: eq)...])
                    key = String(key[..<eq])
                }
                if key == "json" { i += 1; continue }
                if key == "help" { a.command = "help"; return a }
                guard valued.contains(key) else { throw AgentError.bad("unknown option '" + arg + "'", "see 'perch-agent help'") }
                if value == nil {
                    guard i + 1 < args.count else { throw AgentError.bad("option '" + arg + "' needs a value", "see 'perch-agent help'") }
                    value = args[i + 1]
                    i += 1
                }
                a.options.append((key, value!))
            } else if a.command.isEmpty {
                a.command = arg
            } else {
                a.positional.append(arg)
            }
            i += 1
        }
        return a
    }
}

func stateDirectory(_ a: Arguments) throws(AgentError) -> AgentState {
    if let s = a.option("state") { return AgentState(root: s) }
    if let s = FS.env("PERCH_AGENT_STATE"), !s.isEmpty { return AgentState(root: s) }
    if let h = FS.env("HOME"), !h.isEmpty { return AgentState(root: h + "/.perch-agent") }
    throw AgentError.bad("no state directory", "pass --state DIR or set PERCH_AGENT_STATE")
}

func dispatch(_ a: Arguments) throws(AgentError) -> String {
    try Crypto.initialize()
    let state = try stateDirectory(a)
    func one(_ what: String) throws(AgentError) -> String {
        guard a.positional.count == 1 else { throw AgentError.bad(a.command + " needs exactly one " + what, "see 'perch-agent help'") }
        return a.positional[0]
    }
    switch a.command {
    case "info": return info(state)
    case "status": return status(state)
    case "install": return try install(try one("BUNDLE"), state)
    case "trust": return try trust(try one("KEY.pub"), state)
    case "rollback": return try rollback(to: a.option("to"), state)
    case "gc":
        guard a.option("keep") != nil else { throw AgentError.bad("gc needs --keep N", "e.g. 'perch-agent gc --keep 2'") }
        return try gc(keep: try a.int("keep", default: 2, min: 1), state)
    case "bench":
        return try bench(runs: try a.int("runs", default: 100, min: 1), warmup: try a.int("warmup", default: 10, min: 0),
                         threads: try a.int("threads", default: 1, min: 1), state)
    case "run":
        guard let out = a.option("output-dir") else { throw AgentError.bad("run needs --output-dir DIR", "see 'perch-agent help'") }
        return try run(inputs: a.all("input"), outputDir: out, state)
    case "":
        throw AgentError.bad("no command given", "see 'perch-agent help'")
    default:
        throw AgentError.bad("unknown command '" + a.command + "'", "see 'perch-agent help'")
    }
}

/// The command line. Embedded Swift has no `CommandLine`; there the kernel's copy in
/// /proc/self/cmdline (NUL-separated) serves.
func commandLineArguments() -> [String] {
    #if hasFeature(Embedded)
    guard let raw = FS.read("/proc/self/cmdline") else { return [] }
    return raw.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    #else
    return CommandLine.arguments
    #endif
}

func main() -> Int32 {
    var args = commandLineArguments()
    if !args.isEmpty { args.removeFirst() }
    do throws(AgentError) {
        let a = try Arguments.parse(args)
        if a.command == "help" || a.command == "--help" {
            Out.stdout(usage + "\n")
            return 0
        }
        if a.command == "version" {
            Out.stdout("{\"agent_version\":\"" + agentVersion + "\"}\n")
            return 0
        }
        Out.stdout(try dispatch(a) + "\n")
        return 0
    } catch {
        Out.stderr("perch-agent: error: " + error.message + "\n")
        var j = JSONWriter()
        j.beginObject()
        j.beginObject("error")
        j.int("code", Int(error.code))
        j.string("message", error.message)
        j.endObject()
        j.endObject()
        Out.stdout(j.text + "\n")
        return error.code
    }
}

pa_exit(main())

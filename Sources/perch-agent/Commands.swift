import CPerchAgentShims
import PerchEngine
import PerchGraph

let agentVersion = "0.1.0"

/// ISA name plus the features that matter to Perch's kernels, from the kernel's view of the CPU
/// (auxv HWCAP bits on Arm, /proc/cpuinfo flags on x86).
func detectISA() -> (arch: String, features: [String]) {
    var features: [String] = []
    #if arch(arm64)
    let hw = pa_hwcap()
    let hw2 = pa_hwcap2()
    if hw & (1 << 1) != 0 { features.append("neon") }
    if hw & (1 << 10) != 0 { features.append("fp16") }
    if hw & (1 << 20) != 0 { features.append("dotprod") }
    if hw & (1 << 22) != 0 { features.append("sve") }
    if hw2 & (1 << 13) != 0 { features.append("i8mm") }
    #elseif arch(arm)
    let hw = pa_hwcap()
    if hw & (1 << 12) != 0 { features.append("neon") }
    if hw & (1 << 16) != 0 { features.append("vfpv4") }
    #else
    if let text = FS.readText("/proc/cpuinfo") {
        for line in lines(text) where line.hasPrefix("flags") {
            let flags = line.split(separator: " ")
            for (flag, name) in [("avx2", "avx2"), ("fma", "fma"), ("avx512f", "avx512f"), ("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni"), ("f16c", "f16c")] {
                if flags.contains(where: { $0 == flag }) { features.append(name) }
            }
            break
        }
    }
    #endif
    return (hostArch, features)
}

func isaString() -> String {
    let d = detectISA()
    var s = d.arch
    for f in d.features { s += "+" + f }
    return s
}

func writeVersion(_ j: inout JSONWriter, _ key: String?, _ v: InstalledVersion?) {
    guard let v else { return j.null(key) }
    j.beginObject(key)
    j.string("name", v.name)
    j.string("version", v.version)
    j.endObject()
}

func writeVersions(_ j: inout JSONWriter, _ state: AgentState) {
    let active = state.active()
    j.beginArray("versions")
    for v in state.installed() {
        j.beginObject()
        j.string("name", v.name)
        j.string("version", v.version)
        j.bool("active", active?.directory == v.directory)
        j.endObject()
    }
    j.endArray()
}

func info(_ state: AgentState) -> String {
    let isa = detectISA()
    var j = JSONWriter()
    j.beginObject()
    j.string("agent_version", agentVersion)
    j.string("engine_version", agentVersion)
    j.string("arch", isa.arch)
    j.beginArray("features")
    for f in isa.features { j.string(nil, f) }
    j.endArray()
    j.string("isa", isaString())
    // The int8 kernel path the engine runs here (PERCH_INT8_ISA can force another available one).
    j.string("int8_isa", Int8GEMM.bestISA().name)
    j.int("cores", Int(pa_online_cores()))
    j.int("ram_bytes", Int(pa_total_ram_bytes()))
    let probe = FS.exists(state.root) ? state.root : FS.parent(state.root)
    j.int("free_storage_bytes", Int(pa_free_bytes(probe)))
    j.string("state_dir", state.root)
    writeVersion(&j, "active", state.active())
    writeVersions(&j, state)
    j.endObject()
    return j.text
}

func status(_ state: AgentState) -> String {
    var j = JSONWriter()
    j.beginObject()
    j.string("state_dir", state.root)
    writeVersion(&j, "active", state.active())
    writeVersions(&j, state)
    j.beginArray("highest")
    for name in FS.list(state.highestDir) where !name.hasSuffix(".tmp") {
        if let h = state.highest(name) {
            j.beginObject()
            j.string("name", name)
            j.string("version", h.version)
            j.endObject()
        }
    }
    j.endArray()
    j.endObject()
    return j.text
}

/// Switches `active` back to an installed version: `--to VERSION`, else the highest installed
/// version of the active model below the active one. Does not lower the `highest` record, so the
/// version rolled away from can be reinstalled but older bundles still cannot be pushed.
func rollback(to requested: String?, _ state: AgentState) throws(AgentError) -> String {
    try state.prepare()
    let lock = try InstallLock.acquire(state)
    _ = lock
    guard let active = state.active() else { throw AgentError.bad("no active version to roll back from", "install a bundle first") }
    let candidates = state.installed().filter { $0.name == active.name }
    var target: InstalledVersion? = nil
    if let r = requested {
        for v in candidates where compareVersions(v.version, r) == 0 || v.directory == r { target = v }
        if target == nil {
            var have = ""
            for v in candidates { have += (have.isEmpty ? "" : ", ") + v.version }
            throw AgentError.bad("version '" + r + "' of " + active.name + " is not on this device (installed: " + have + ")", "pick one of the installed versions")
        }
    } else {
        for v in candidates where compareVersions(v.version, active.version) < 0 { target = v }
        if target == nil { throw AgentError.bad("no older version of " + active.name + " is installed", "nothing to roll back to; 'status' lists the versions") }
    }
    try state.activate(target!)
    var j = JSONWriter()
    j.beginObject()
    writeVersion(&j, "from", active)
    writeVersion(&j, "to", target)
    j.endObject()
    return j.text
}

/// Keeps the `keep` highest versions of each model (and always the active one). A version is first
/// renamed into staging/ (so it leaves versions/ atomically), then deleted.
func gc(keep: Int, _ state: AgentState) throws(AgentError) -> String {
    try state.prepare()
    let lock = try InstallLock.acquire(state)
    _ = lock
    let active = state.active()
    let all = state.installed()
    var removed: [InstalledVersion] = []
    var kept: [InstalledVersion] = []
    var names: [String] = []
    for v in all where !names.contains(v.name) { names.append(v.name) }
    for name in names {
        let versions = all.filter { $0.name == name }
        for (i, v) in versions.enumerated() {
            let rank = versions.count - 1 - i
            if rank < keep || active?.directory == v.directory { kept.append(v) } else { removed.append(v) }
        }
    }
    for v in removed {
        let trash = state.stagingDir + "/gc-" + v.directory
        FS.removeTree(trash)
        if pa_rename(state.versionsDir + "/" + v.directory, trash) != 0 { throw AgentError.io("remove", state.versionsDir + "/" + v.directory) }
        FS.removeTree(trash)
    }
    try FS.syncDirectory(state.versionsDir)
    var j = JSONWriter()
    j.beginObject()
    j.beginArray("removed")
    for v in removed { writeVersion(&j, nil, v) }
    j.endArray()
    j.beginArray("kept")
    for v in kept { writeVersion(&j, nil, v) }
    j.endArray()
    j.endObject()
    return j.text
}

/// `trust KEY.pub`: copies a `perch-ed25519 <base64>` public key into trusted-keys/.
func trust(_ path: String, _ state: AgentState) throws(AgentError) -> String {
    try state.prepare()
    guard let text = FS.readText(path) else { throw AgentError.bad("key '" + path + "' does not exist or is not readable", "check the path") }
    guard let key = parsePublicKey(text) else {
        throw AgentError.bad("'" + path + "' is not a Perch public key", "use the .pub file of 'perch keys generate'")
    }
    let file = Crypto.hex(Array(key[0..<8])) + ".pub"
    try FS.writeAtomically(state.keysDir + "/" + file, Array(("perch-ed25519 " + trimmed(String(trimmed(text).split(separator: " ")[1])) + "\n").utf8))
    var j = JSONWriter()
    j.beginObject()
    j.string("trusted", file)
    j.int("keys", state.trustedKeys().count)
    j.endObject()
    return j.text
}

/// The active version's directory and a loaded session.
struct LoadedModel {
    var version: InstalledVersion
    var directory: String
    var session: Session
    var modelBytes: Int
}

func loadActive(_ state: AgentState) throws(AgentError) -> LoadedModel {
    guard let active = state.active() else { throw AgentError.bad("no active version", "install a bundle with 'perch-agent install BUNDLE'") }
    let dir = state.versionsDir + "/" + active.directory
    guard let bytes = FS.read(dir + "/model.perchm") else { throw AgentError.io("read", dir + "/model.perchm") }
    guard let session = loadSession(bytes) else {
        throw AgentError(Exit.internalError, "the active model " + active.directory + " does not load", "roll back with 'perch-agent rollback'")
    }
    return LoadedModel(version: active, directory: dir, session: session, modelBytes: bytes.count)
}

/// Decodes a `.perchm` and validates it as the engine would run it; nil if either step fails.
func loadSession(_ bytes: [UInt8]) -> Session? {
    let graph: Graph
    do throws(GraphError) { graph = try PerchModelFile.decode(bytes) } catch { return nil }
    do throws(EngineError) { return try Session(graph: graph) } catch { return nil }
}

/// CONTRACTS.md's tensor-name-to-file-name rule.
func tensorFileName(_ name: String) -> String { NPY.fileName(forTensor: name) }

func readNPY(_ path: String) throws(AgentError) -> Tensor {
    guard let bytes = FS.read(path) else { throw AgentError.bad("input file '" + path + "' does not exist or is not readable", "check the path") }
    do { return try NPY.decode(bytes, what: "'" + path + "'") } catch {
        throw AgentError.bad(error.description, "save the tensor with numpy.save")
    }
}

/// Inputs for bench: the bundle's eval input if it has one (its first sample when samples are
/// stacked), else `arange(n)/n` (floats) or zeros.
func benchFeeds(_ m: LoadedModel) throws(AgentError) -> [String: Tensor] {
    var feeds: [String: Tensor] = [:]
    for input in m.session.inputs {
        let evalPath = m.directory + "/eval/inputs/" + tensorFileName(input.name) + ".npy"
        if FS.kind(evalPath) == .file {
            let t = try readNPY(evalPath)
            let stacked = t.rank == input.type.dims.count + 1 && t.shape[0] >= 1
            feeds[input.name] = evalSample(t, stacked: stacked, 0)
            continue
        }
        var t = Tensor(dtype: input.type.dtype, shape: input.type.exampleShape())
        if input.type.dtype.isFloatingPoint {
            let n = t.count
            let dtype = t.dtype
            t.bytes.withUnsafeMutableBytes { raw in
                for i in 0..<n { writeElementFromDouble(raw.baseAddress!, dtype, i, Double(i) / Double(n)) }
            }
        }
        feeds[input.name] = t
    }
    return feeds
}

/// Resident pages not backed by files (/proc/self/statm: resident − shared), in bytes; shared
/// library text is excluded because it is shared with every other process using it.
func privateResidentBytes() -> Int {
    guard let text = FS.readText("/proc/self/statm") else { return 0 }
    let f = text.split(separator: " ")
    guard f.count >= 3, let resident = Int(f[1]), let shared = Int(f[2]) else { return 0 }
    return (resident - shared) * Int(pa_page_size())
}

/// Binds bench inputs; the input tensors are copied into the arena and freed on return, so they
/// do not stay resident beside it.
func bindBenchFeeds(_ m: LoadedModel) throws(AgentError) {
    let feeds = try benchFeeds(m)
    do throws(EngineError) { try m.session.bind(feeds) } catch {
        throw AgentError(Exit.internalError, "the active model cannot run: " + error.description, "roll back with 'perch-agent rollback'")
    }
}

func bench(runs: Int, warmup: Int, threads: Int, _ state: AgentState) throws(AgentError) -> String {
    let rssBefore = Int(pa_peak_rss_bytes())
    let start = pa_monotonic_ns()
    let m = try loadActive(state)
    try bindBenchFeeds(m)
    pa_release_free_memory()
    let initMs = Double(pa_monotonic_ns() - start) / 1e6
    var samples: [Double] = []
    samples.reserveCapacity(runs)
    do throws(EngineError) {
        for _ in 0..<warmup { try m.session.execute() }
        for _ in 0..<runs {
            let t0 = pa_monotonic_ns()
            try m.session.execute()
            samples.append(Double(pa_monotonic_ns() - t0) / 1e6)
        }
    } catch {
        throw AgentError(Exit.internalError, "the active model cannot run: " + error.description, "roll back with 'perch-agent rollback'")
    }
    samples.sort()
    func pct(_ p: Int) -> Double {
        var rank = (p * samples.count + 99) / 100
        if rank < 1 { rank = 1 }
        return samples[rank - 1 < samples.count ? rank - 1 : samples.count - 1]
    }
    var sum = 0.0
    for s in samples { sum += s }
    let mean = sum / Double(samples.count)
    var sq = 0.0
    for s in samples { sq += (s - mean) * (s - mean) }
    let std = (sq / Double(samples.count)).squareRoot()
    let mem = m.session.memory
    let rss = Int(pa_peak_rss_bytes())
    crashPoint("benched")
    var j = JSONWriter()
    j.beginObject()
    j.string("model", m.version.name)
    j.string("version", m.version.version)
    j.int("threads", threads)
    j.int("runs", runs)
    j.int("warmup", warmup)
    j.beginObject("latency_ms")
    j.double("min", samples[0])
    j.double("p50", pct(50))
    j.double("p90", pct(90))
    j.double("p99", pct(99))
    j.double("mean", mean)
    j.double("std", std)
    j.endObject()
    j.double("init_ms", initMs)
    j.int("peak_memory_bytes", mem.peakBytes)
    j.int("arena_bytes", mem.arenaBytes)
    j.int("weights_bytes", mem.weightsBytes)
    j.int("process_peak_rss_bytes", rss)
    j.int("rss_before_model_bytes", rssBefore)
    // Private (anonymous) resident memory now, minus the engine's arena and weights: what the
    // agent itself, the decoded graph and the input tensors add on top of the model.
    let privateBytes = privateResidentBytes()
    j.int("process_private_rss_bytes", privateBytes)
    j.int("rss_beyond_model_bytes", privateBytes - mem.peakBytes > 0 ? privateBytes - mem.peakBytes : 0)
    j.string("isa", isaString())
    j.string("engine_version", agentVersion)
    // After the timed runs and the memory figures, so neither includes the eval set.
    writeEvalAgreement(&j, m)
    j.endObject()
    return j.text
}

/// `eval_samples`, `eval_agreed` and `eval_agreement` (0…1) when the bundle has reference outputs
/// (Eval.swift defines agreement); `eval_error` instead when its eval files do not fit the model.
func writeEvalAgreement(_ j: inout JSONWriter, _ m: LoadedModel) {
    let set: EvalSet?
    do throws(AgentError) { set = try loadEvalSet(m) } catch {
        j.string("eval_error", error.what)
        return
    }
    guard let set else { return }
    let a = measureEvalAgreement(m, set)
    j.int("eval_samples", a.samples)
    j.int("eval_agreed", a.agreed)
    j.double("eval_agreement", a.agreement)
}

func run(inputs: [String], outputDir: String, _ state: AgentState) throws(AgentError) -> String {
    let m = try loadActive(state)
    let declared = m.session.inputs
    var feeds: [String: Tensor] = [:]
    for spec in inputs {
        var name = ""
        var path = spec
        let b = Array(spec.utf8)
        if let eq = b.firstIndex(of: 0x3D), FS.kind(spec) != .file {
            name = String(decoding: b[0..<eq], as: UTF8.self)
            path = String(decoding: b[(eq + 1)...], as: UTF8.self)
        } else if declared.count == 1 {
            name = declared[0].name
        } else {
            throw AgentError.bad("input '" + spec + "' has no NAME= and the model has " + String(declared.count) + " inputs", "write --input NAME=FILE.npy")
        }
        guard declared.contains(where: { $0.name == name }) else {
            var names = ""
            for d in declared { names += (names.isEmpty ? "" : ", ") + d.name }
            throw AgentError.bad("the model has no input named '" + name + "'", "inputs are: " + names)
        }
        feeds[name] = try readNPY(path)
    }
    let t0 = pa_monotonic_ns()
    let outputs: [String: Tensor]
    do { outputs = try m.session.run(feeds) } catch {
        throw AgentError.bad(error.description, "pass every input the model declares, with its dtype and shape")
    }
    let ms = Double(pa_monotonic_ns() - t0) / 1e6
    try FS.mkdirs(outputDir)
    var j = JSONWriter()
    j.beginObject()
    j.string("model", m.version.name)
    j.string("version", m.version.version)
    j.double("latency_ms", ms)
    j.beginArray("outputs")
    for o in m.session.outputs {
        guard let t = outputs[o.name] else { continue }
        let file = outputDir + "/" + tensorFileName(o.name) + ".npy"
        try FS.writeSynced(file, NPY.encode(t))
        j.beginObject()
        j.string("name", o.name)
        j.string("file", file)
        j.string("dtype", t.dtype.name)
        j.beginArray("shape")
        for d in t.shape { j.int(nil, d) }
        j.endArray()
        j.endObject()
    }
    j.endArray()
    j.endObject()
    return j.text
}

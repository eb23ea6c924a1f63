import ArgumentParser
import CPerchShims
import Foundation
import PerchEngine
import PerchGraph

/// `perch bench MODEL [--threads N] [--runs R] [--warmup W] [--json]`
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure a model's latency on this machine.",
        discussion: """
            Inputs not given with --input are synthesized from the declared shapes (a symbolic \
            batch is 1, a 4-D image's symbolic height, width or channels 224, other symbolic \
            dimensions 1). Reports min/p50/p90/p99/mean/std latency over --runs timed runs after \
            --warmup untimed ones, the initialization time (load + plan), and memory.
            """
    )

    @Argument(help: "The model (.onnx or .perchm).")
    var model: String

    @OptionGroup var inputOptions: InputOptions

    @Option(help: "Worker threads.")
    var threads = 1

    @Option(help: "Timed runs.")
    var runs = 100

    @Option(help: "Untimed warm-up runs.")
    var warmup = 10

    @Flag(help: "Print the bench JSON of CONTRACTS.md on stdout.")
    var json = false

    @Flag(help: ArgumentHelp(
        "After the timed runs, time every layer over --runs more runs and print the share of each op type and the slowest layers.",
        discussion: "With --json the breakdown is added as `profile` (per op type and per layer: mean ms per run, and per layer also the minimum and median over the profiled runs)."))
    var profile = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
    }

    func run() throws {
        let start = perch_monotonic_ns()
        let graph = try ModelLoading.load(model)
        let session = try Session(graph: graph, options: SessionOptions(threads: threads))
        var feeds = try inputOptions.feeds(for: session)
        var madeUp = [String]()
        for input in session.inputs where feeds[input.name] == nil {
            let t = InputOptions.synthesized(for: input)
            feeds[input.name] = t
            madeUp.append(input.name + " " + t.dtype.name + shapeText(t.shape))
        }
        try session.bind(feeds)
        let initMs = Double(perch_monotonic_ns() - start) / 1e6
        for _ in 0..<warmup { try session.execute() }
        var samples = [Double]()
        samples.reserveCapacity(runs)
        for _ in 0..<runs {
            let t0 = perch_monotonic_ns()
            try session.execute()
            samples.append(Double(perch_monotonic_ns() - t0) / 1e6)
        }
        let stats = LatencyStats(samples)
        // One row of per-layer times per profiled run: the means carry a noisy machine's stalls,
        // so the profile reports each layer's minimum and median too.
        var layerRuns = [[UInt64]]()
        if profile {
            var layerNs = [UInt64]()
            for _ in 0..<runs {
                for i in layerNs.indices { layerNs[i] = 0 }
                try session.executeProfiled(into: &layerNs)
                layerRuns.append(layerNs)
            }
        }
        let layers = LayerProfile(session: session, runs: layerRuns)
        let memory = session.memory
        let name = ModelLoading.displayName(graph, path: model)
        let isa = HostISA.describe()
        if json {
            print(JSONValue.object([
                ("model", .string(name)), ("threads", .int(threads)), ("runs", .int(runs)), ("warmup", .int(warmup)),
                ("latency_ms", .object([
                    ("min", .double(stats.min)), ("p50", .double(stats.p50)), ("p90", .double(stats.p90)),
                    ("p99", .double(stats.p99)), ("mean", .double(stats.mean)), ("std", .double(stats.std)),
                ])),
                ("init_ms", .double(initMs)), ("peak_memory_bytes", .int(memory.peakBytes)),
                ("arena_bytes", .int(memory.arenaBytes)), ("weights_bytes", .int(memory.weightsBytes)),
                ("arena_lower_bound_bytes", .int(memory.arenaLowerBound)),
                ("process_peak_rss_bytes", .int(HostISA.peakRSSBytes())),
                ("isa", .string(isa)), ("engine_version", .string(Perch.version)),
            ] + (profile ? [("profile", layers.json)] : [])).text)
        } else {
            print(name + " on " + isa + ", " + String(threads) + " thread(s), " + String(runs) + " runs after " + String(warmup) + " warm-up")
            if !madeUp.isEmpty { print("made-up inputs (give real ones with --input): " + madeUp.joined(separator: ", ")) }
            print(String(format: "latency ms: min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f  std %.3f",
                         stats.min, stats.p50, stats.p90, stats.p99, stats.mean, stats.std))
            print(String(format: "init %.1f ms; memory: weights %d B + arena %d B = %d B (arena lower bound %d B)",
                         initMs, memory.weightsBytes, memory.arenaBytes, memory.peakBytes, memory.arenaLowerBound))
            if profile { print(layers.table(top: 10)) }
        }
    }
}

/// Order statistics of latency samples (nearest-rank percentiles), in milliseconds.
struct LatencyStats {
    var min = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0, mean = 0.0, std = 0.0

    init(_ samples: [Double]) {
        guard !samples.isEmpty else { return }
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
        }
        min = sorted[0]
        p50 = percentile(50)
        p90 = percentile(90)
        p99 = percentile(99)
        mean = sorted.reduce(0, +) / Double(sorted.count)
        std = (sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(sorted.count)).squareRoot()
    }
}

/// What this host's CPU offers, in the bench JSON's `isa` spelling (`x86_64+avx2+avx512vnni`).
enum HostISA {
    static func describe() -> String {
        #if arch(x86_64)
        let arch = "x86_64"
        let wanted = [("avx2", "avx2"), ("fma", "fma"), ("avx512f", "avx512f"), ("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni")]
        #elseif arch(arm64)
        let arch = "aarch64"
        let wanted = [("asimd", "neon"), ("asimddp", "dotprod"), ("asimdhp", "fp16"), ("i8mm", "i8mm")]
        #else
        let arch = "unknown"
        let wanted: [(String, String)] = []
        #endif
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return arch }
        let flagsLine = text.split(separator: "\n").first { $0.hasPrefix("flags") || $0.hasPrefix("Features") } ?? ""
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        return ([arch] + wanted.filter { flags.contains($0.0) }.map(\.1)).joined(separator: "+")
    }

    /// Peak resident set size of this process (VmHWM).
    static func peakRSSBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        let kb = Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb * 1024
    }
}

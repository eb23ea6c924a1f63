import ArgumentParser
import CPerchShims
import Foundation
import PerchEngine

/// `perch bench-gemm [--m M --n N --k K] [--threads T] [--runs R] [--json]` (hidden): times the
/// fp32 GEMM that Gemm/MatMul/Conv run on and the int8 GEMM kernel of the quantized ops, for
/// bench/run.py's fraction-of-peak report.
struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-gemm",
        abstract: "Time the engine's fp32 GEMM (C = A·B) and int8 GEMM kernel on M×K·K×N matrices.",
        shouldDisplay: false
    )

    @Option var m = 512
    @Option var n = 512
    @Option var k = 512
    @Option(help: "Worker threads.") var threads = 1
    @Option(help: "Timed runs (the median is reported).") var runs = 30
    @Flag var json = false

    func validate() throws {
        guard m >= 1, n >= 1, k >= 1 else { throw ValidationError("--m, --n and --k must be positive") }
        guard threads >= 1, runs >= 1 else { throw ValidationError("--threads and --runs must be at least 1") }
    }

    func run() throws {
        var a = [Float](repeating: 0, count: m * k)
        var b = [Float](repeating: 0, count: k * n)
        for i in 0..<a.count { a[i] = Float(i % 17) * 0.01 - 0.08 }
        for i in 0..<b.count { b[i] = Float(i % 13) * 0.01 - 0.06 }
        var c = [Float](repeating: 0, count: m * n)
        var ws = [Float](repeating: 0, count: sgemmParallelWorkspaceCount(m: m, n: n, k: k, slots: threads))
        let pool: ThreadPool? = threads > 1 ? ThreadPool(threads: threads) : nil
        let args = KernelArgs(inputs: [], outputs: [], scratch: nil, pool: pool)
        let median = medianMilliseconds {
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        ws.withUnsafeMutableBufferPointer { wp in
                            sgemmParallel(args, slots: threads, m: m, n: n, k: k, a: ap.baseAddress!, aRowStride: k, aColStride: 1,
                                          b: bp.baseAddress!, bRowStride: n, bColStride: 1, c: cp.baseAddress!, ldc: n,
                                          accumulate: false, workspace: wp.baseAddress!)
                        }
                    }
                }
            }
        }
        let gflops = 2.0 * Double(m) * Double(n) * Double(k) / (median * 1e6)
        let (int8Median, isa) = timeInt8()
        let gops = 2.0 * Double(m) * Double(n) * Double(k) / (int8Median * 1e6)
        let peak = MeasuredPeak.probe()
        if json {
            print(JSONValue.object([
                ("m", .int(m)), ("n", .int(n)), ("k", .int(k)), ("threads", .int(threads)), ("runs", .int(runs)),
                ("fp32", .object([("median_ms", .double(median)), ("gflops", .double(gflops)), ("kernel", .string(sgemmVariantName()))])),
                ("int8", .object([("median_ms", .double(int8Median)), ("gops", .double(gops)), ("kernel", .string(isa.name)), ("threads", .int(1))])),
                ("measured_peak", .object([("fp32_gflops", peak.fp32.map { .double($0) } ?? .null),
                                           ("int8_gops", peak.int8.map { .double($0) } ?? .null),
                                           ("how", .string(peak.how))])),
            ]).text)
        } else {
            print("sgemm " + String(m) + "x" + String(n) + "x" + String(k) + ", " + String(threads) + " thread(s), " + sgemmVariantName()
                  + String(format: ": median %.3f ms, %.1f GFLOP/s", median, gflops))
            print("int8 gemm (u8·s8 → s32) " + String(m) + "x" + String(n) + "x" + String(k) + ", 1 thread, " + isa.name
                  + String(format: ": median %.3f ms, %.1f GOP/s", int8Median, gops))
            if let f = peak.fp32 { print(String(format: "measured 1-core peak: fp32 %.1f GFLOP/s", f) + (peak.int8.map { String(format: ", int8 %.1f GOP/s", $0) } ?? "") + " (" + peak.how + ")") }
        }
    }

    /// The engine's int8 GEMM kernel (uint8 activations · int8 weights → int32, the inner loop of
    /// QLinearMatMul before requantization, B packed as those layers pack it), one thread.
    func timeInt8() -> (Double, Int8ISA) {
        let isa = Int8GEMM.bestISA()
        let k4 = (k + 3) / 4
        let lda = 4 * k4
        let ldb = Int8GEMM.rowMajorStride(columns: n)
        var a = [UInt8](repeating: 0, count: m * lda)
        var b = [Int8](repeating: 0, count: k4 * ldb * 4)
        for i in 0..<m { for p in 0..<k { a[i * lda + p] = UInt8((i * 7 + p) % 251) } }
        for j in 0..<n { for p in 0..<k { b[((p / 4) * ldb + j) * 4 + p % 4] = Int8(truncatingIfNeeded: (j * 5 + p * 3) % 255 - 127) } }
        var c = [Int32](repeating: 0, count: m * n)
        let median = medianMilliseconds {
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        Int8GEMM.gemmRowMajor(isa, m: m, n: n, k4: k4, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                              c: cp.baseAddress!, ldc: n)
                    }
                }
            }
        }
        return (median, isa)
    }

    /// Median wall time of `runs` calls of `body`, after 3 untimed warm-up calls.
    func medianMilliseconds(_ body: () -> Void) -> Double {
        var samples = [Double]()
        for r in 0..<(runs + 3) {
            let t0 = perch_monotonic_ns()
            body()
            if r >= 3 { samples.append(Double(perch_monotonic_ns() - t0) / 1e6) }
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}

/// One core's peak arithmetic throughput, measured (CPerchPeak.h): register-only FMA and int8
/// dot-product chains timed at the clock the core actually runs.
struct MeasuredPeak {
    var fp32: Double?
    var int8: Double?
    var how: String

    static func probe() -> MeasuredPeak {
        /// Best of 5 timings of `body` (operations per ns = G-operations per second).
        func rate(_ body: () -> Double) -> Double {
            var best = 0.0
            for _ in 0..<5 {
                let t0 = perch_monotonic_ns()
                let ops = body()
                best = Swift.max(best, ops / Double(Swift.max(perch_monotonic_ns() - t0, 1)))
            }
            return best
        }
        let iters = 2_000_000
        let features = Int(perch_cpu_features())
        #if arch(x86_64)
        let avx512 = features & Int(PERCH_CPU_AVX512VNNI) != 0
        let avx2 = features & Int(PERCH_CPU_AVX2) != 0
        let fp32: Double? = avx512 ? rate { perch_peak_fma_avx512(iters) } : (avx2 ? rate { perch_peak_fma_avx2(iters) } : nil)
        let int8: Double? = avx512 ? rate { perch_peak_vnni_avx512(iters) } : nil
        return MeasuredPeak(fp32: fp32, int8: int8, how: (avx512 ? "vfmadd zmm, vpdpbusd zmm" : "vfmadd ymm") + " chains, 12 accumulators")
        #elseif arch(arm64)
        _ = features
        return MeasuredPeak(fp32: rate { perch_peak_fma_neon(iters) }, int8: nil, how: "fmla v.4s chains, 12 accumulators")
        #else
        return MeasuredPeak(fp32: nil, int8: nil, how: "no probe for this architecture")
        #endif
    }
}

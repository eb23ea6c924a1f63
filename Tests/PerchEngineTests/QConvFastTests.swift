import CPerchShims
import PerchGraph
@testable import PerchEngine
import XCTest

/// The NCHW int8 conv kernels of CPerchQConv.h: every SIMD path this machine has against the
/// scalar reference, bit for bit (K4 GEMM, depthwise rows, fixed-point requantization).
final class QConvFastTests: XCTestCase {
    var paths: [QConvISA] {
        var out: [QConvISA] = []
        let isas = Int8GEMM.availableISAs()
        if isas.contains(.avx2) { out.append(.avx2) }
        if isas.contains(.avx512vnni) { out.append(.avx512) }
        if isas.contains(.neon) { out.append(.neon) }
        return out
    }

    func testK4GemmPathsAreBitExactWithScalar() {
        #if arch(x86_64)
        XCTAssertTrue(paths.contains(.avx2), "this x86-64 machine is expected to have AVX2")
        #endif
        var rng = SplitMix(seed: 21)
        for (n, p, k4) in [(1, 1, 1), (7, 17, 3), (8, 32, 2), (13, 45, 9), (16, 100, 5), (9, 64, 1)] {
            let ldx = p + 3
            var x = [UInt8](repeating: 0, count: k4 * ldx * 4)
            for i in 0..<x.count { x[i] = UInt8(truncatingIfNeeded: rng.next()) }
            var w = [Int8](repeating: 0, count: n * k4 * 4)
            for i in 0..<w.count { w[i] = Int8(truncatingIfNeeded: rng.next()) }
            // Extremes: 255 × -128 in the first output channel.
            for i in 0..<(k4 * 4) { w[i] = -128 }
            for i in 0..<(4 * p) { x[i] = 255 }
            var ref = [Int32](repeating: 0, count: n * p)
            for j in 0..<n { for q in 0..<p {
                var s: Int32 = 0
                for k in 0..<(4 * k4) { s += Int32(x[(k / 4) * ldx * 4 + q * 4 + k % 4]) * Int32(w[j * k4 * 4 + k]) }
                ref[j * p + q] = s
            } }
            for isa in [QConvISA.scalar] + paths {
                var c = [Int32](repeating: 7, count: n * p)
                x.withUnsafeBufferPointer { px in w.withUnsafeBufferPointer { pw in c.withUnsafeMutableBufferPointer { pc in
                    isa.convK4(n: n, p: p, k4: k4, x: px.baseAddress!, ldx: ldx, w: pw.baseAddress!, ldw: k4 * 4, c: pc.baseAddress!, ldc: p)
                } } }
                XCTAssertEqual(c, ref, "\(isa) n=\(n) p=\(p) k4=\(k4)")
            }
        }
    }

    func testDepthwiseRowPathsAreBitExactWithScalar() {
        var rng = SplitMix(seed: 22)
        for (taps, n) in [(9, 1), (9, 15), (9, 16), (25, 33), (4, 80), (9, 161)] {
            let rowsData = (0..<taps).map { _ in (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            let w = (0..<taps).map { _ in Int32(Int64(rng.next() % 511) - 255) }
            let start = (0..<n).map { _ in Int32(Int64(rng.next() % 100000) - 50000) }
            var results: [[Int32]] = []
            let buffers = rowsData.map { r -> UnsafeMutablePointer<UInt8> in
                let p = UnsafeMutablePointer<UInt8>.allocate(capacity: n + 16)
                p.initialize(repeating: 0, count: n + 16)
                for i in 0..<n { p[i] = r[i] }
                return p
            }
            defer { for b in buffers { b.deallocate() } }
            var ptrs = buffers.map { Optional(UnsafePointer($0)) }
            for isa in [QConvISA.scalar] + paths {
                var acc = start
                ptrs.withUnsafeMutableBufferPointer { pp in w.withUnsafeBufferPointer { pw in acc.withUnsafeMutableBufferPointer { pa in
                    isa.dwRow(UnsafePointer(pp.baseAddress!), pw.baseAddress!, taps: taps, n: n, pa.baseAddress!)
                } } }
                results.append(acc)
            }
            var want = start
            for t in 0..<taps { for i in 0..<n { want[i] += Int32(rowsData[t][i]) * w[t] } }
            for (i, r) in results.enumerated() { XCTAssertEqual(r, want, "path \(i) taps=\(taps) n=\(n)") }
        }
    }

    func testRequantizationPathsAreBitExactWithSwiftReference() {
        var rng = SplitMix(seed: 23)
        let n = 77
        for trial in 0..<60 {
            // Multipliers from 1e-6 to ~40 (shift > 0 exercises the saturating left shift).
            let real = trial % 3 == 0 ? Double(rng.next() % 40000 + 1) / 1000 : Double(rng.next() % 1_000_000 + 1) / 1e7
            let q = QuantizedMultiplier(real)
            var acc = (0..<n).map { _ in Int32(truncatingIfNeeded: Int64(rng.next() % 4_000_000) - 2_000_000) }
            acc[0] = Int32.max; acc[1] = Int32.min; acc[2] = 0; acc[3] = -1
            if trial % 5 == 0 { for i in 4..<n { acc[i] = Int32(truncatingIfNeeded: rng.next()) } }
            let add = Int32(Int64(rng.next() % 2000) - 1000)
            let (zp, lo, hi): (Int32, Int32, Int32) = trial % 2 == 0 ? (Int32(rng.next() % 256), 0, 255) : (Int32(Int64(rng.next() % 256) - 128), -128, 127)
            let want = acc.map { UInt8(truncatingIfNeeded: requantize($0 &+ add, q, zeroPoint: zp, lo: lo, hi: hi)) }
            for isa in [QConvISA.scalar] + paths {
                var out = [UInt8](repeating: 0, count: n)
                acc.withUnsafeBufferPointer { pa in out.withUnsafeMutableBufferPointer { po in
                    isa.requantRow(pa.baseAddress!, n, add: add, q, zp: zp, lo: lo, hi: hi, po.baseAddress!)
                } }
                XCTAssertEqual(out, want, "\(isa) trial \(trial) real \(real)")
            }
        }
    }
}

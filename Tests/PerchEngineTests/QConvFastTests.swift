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
        if isas.contains(.neondot) { out.append(.neondot) }
        if isas.contains(.i8mm) { out.append(.i8mm) }
        return out
    }

    func testK4GemmPathsAreBitExactWithScalar() {
        #if arch(x86_64)
        XCTAssertTrue(paths.contains(.avx2), "this x86-64 machine is expected to have AVX2")
        #endif
        var rng = SplitMix(seed: 21)
        for (n, p, k4) in [(1, 1, 1), (7, 17, 3), (8, 32, 2), (13, 45, 9), (16, 100, 5), (9, 64, 1), (19, 133, 4), (6, 128, 2), (11, 300, 3)] {
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
                guard isa.widensWeights else { continue }
                c = [Int32](repeating: 7, count: n * p)
                isa.convK4Wide(n: n, p: p, k4: k4, x: x, ldx: ldx, w: w.map(Int16.init), ldw: k4 * 4, c: &c, ldc: p)
                XCTAssertEqual(c, ref, "\(isa) widened n=\(n) p=\(p) k4=\(k4)")
            }
        }
    }

    /// The split-weight GEMM (AVX2 vpmaddubsw, CPerchQConvSplit.h) on trained-like weights —
    /// small, with rare extremes up to −128 whose pairs need the residual — against the scalar
    /// GEMM with the unsplit weights, from a first row inside the split (a thread's channel range)
    /// and with columns not a multiple of its 16; uniform random bytes are declined.
    func testSplitWeightGemmIsBitExactWithScalar() {
        #if arch(x86_64)
        guard paths.contains(.avx2) else { return }
        var rng = SplitMix(seed: 31)
        var residualGroups = 0
        for (rows, p, k4, first) in [(13, 45, 9, 0), (24, 128, 36, 4), (37, 200, 5, 9), (8, 16, 1, 3), (67, 33, 80, 12)] {
            let ldw = 4 * k4 + 3, ld = (p + 15) / 16 * 16
            let w = (0..<(rows * ldw)).map { _ -> Int8 in
                let r = rng.next()
                return r % 40 == 0 ? [127, -127, -128, 110][Int(r / 40 % 4)] : Int8(Int(r / 40 % 81) - 40)
            }
            let x = (0..<(k4 * ld * 4)).map { i in i % 9 == 0 ? UInt8(255) : UInt8(truncatingIfNeeded: rng.next()) }
            guard let split = QSplitWeights(w, rows: rows, k4: k4, ldw: ldw) else { return XCTFail("trained-like weights declined: \(rows)×\(k4)") }
            residualGroups += Int(split.start[rows] - split.start[first])
            let n = rows - first
            var want = [Int32](repeating: 0, count: n * ld), got = [Int32](repeating: 7, count: n * ld)
            w.withUnsafeBufferPointer { pw in
                perch_qconv_k4_scalar(n, p, k4, x, ld, pw.baseAddress! + first * ldw, ldw, &want, ld)
            }
            x.withUnsafeBufferPointer { px in got.withUnsafeMutableBufferPointer { pc in
                split.conv(n: n, p: p, k4: k4, x: px.baseAddress!, ldx: ld, first: first, c: pc.baseAddress!, ldc: ld)
            } }
            for r in 0..<n {
                XCTAssertEqual(Array(got[(r * ld)..<(r * ld + p)]), Array(want[(r * ld)..<(r * ld + p)]), "rows=\(rows) p=\(p) k4=\(k4) row \(first + r)")
            }
        }
        XCTAssertGreaterThan(residualGroups, 20, "too few residual groups for the test to reach them")
        let uniform = (0..<(16 * 64)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        XCTAssertNil(QSplitWeights(uniform, rows: 16, k4: 16, ldw: 64), "half of uniform pairs pass 128: the int16 GEMM is faster there")
        #endif
    }

    /// Random shapes with every kind of ragged tail (columns not a multiple of the 4/8/12-column
    /// blocks, rows not a multiple of the row tiles), strides wider than the data, extreme values:
    /// both K4 GEMMs (conv: X uint8 × W int8; row-major: A uint8 × B int8) against the scalar kernels.
    func testK4GemmsAgreeWithScalarOnRaggedShapes() {
        var rng = SplitMix(seed: 24)
        for trial in 0..<120 {
            var (rows, cols, k4) = (1 + Int(rng.next() % 21), 1 + Int(rng.next() % 40), 1 + Int(rng.next() % 19))
            if trial % 40 == 0 { (rows, cols, k4) = (33, 101, 150) }
            let extreme = trial % 7 == 0
            let ldv = cols + Int(rng.next() % 3), lds = 4 * k4 + Int(rng.next() % 5), ldc = cols + Int(rng.next() % 3)
            let v = (0..<(k4 * ldv * 4)).map { _ in extreme ? UInt8(255) : UInt8(truncatingIfNeeded: rng.next()) }
            let s = (0..<(rows * lds)).map { _ in extreme ? Int8(-128) : Int8(truncatingIfNeeded: rng.next()) }
            let sU8 = s.map { UInt8(bitPattern: $0) }, vI8 = v.map { Int8(bitPattern: $0) }
            func run(_ isa: QConvISA, rowMajor: Bool) -> [Int32] {
                var c = [Int32](repeating: 99, count: rows * ldc)
                c.withUnsafeMutableBufferPointer { pc in
                    if rowMajor {
                        sU8.withUnsafeBufferPointer { pa in vI8.withUnsafeBufferPointer { pb in
                            isa.gemmRowMajor(m: rows, n: cols, k4: k4, a: pa.baseAddress!, lda: lds, b: pb.baseAddress!, ldb: ldv,
                                             c: pc.baseAddress!, ldc: ldc)
                        } }
                    } else {
                        v.withUnsafeBufferPointer { px in s.withUnsafeBufferPointer { pw in
                            isa.convK4(n: rows, p: cols, k4: k4, x: px.baseAddress!, ldx: ldv, w: pw.baseAddress!, ldw: lds,
                                       c: pc.baseAddress!, ldc: ldc)
                        } }
                    }
                }
                return c
            }
            for rowMajor in [false, true] {
                let want = run(.scalar, rowMajor: rowMajor)
                // Spot check of the reference itself (one element, from the definition).
                let (r0, c0) = (rows - 1, cols / 2)
                var e: Int32 = 0
                for k in 0..<(4 * k4) {
                    let vv = v[(k / 4) * ldv * 4 + c0 * 4 + k % 4], ss = s[r0 * lds + k]
                    e &+= rowMajor ? Int32(sU8[r0 * lds + k]) * Int32(Int8(bitPattern: vv)) : Int32(vv) * Int32(ss)
                }
                XCTAssertEqual(want[r0 * ldc + c0], e)
                for isa in paths {
                    XCTAssertEqual(run(isa, rowMajor: rowMajor), want, "\(isa) rowMajor=\(rowMajor) rows=\(rows) cols=\(cols) k4=\(k4)")
                }
            }
        }
    }

    func testDepthwiseRowPathsAreBitExactWithScalar() {
        var rng = SplitMix(seed: 22)
        for (taps, n) in [(9, 1), (9, 15), (9, 16), (25, 33), (4, 80), (9, 161)] {
            let rowsData = (0..<taps).map { _ in (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            let w = (0..<taps).map { _ in Int32(Int64(rng.next() % 511) - 255) }
            let initial = Int32(Int64(rng.next() % 100000) - 50000)
            let start = [Int32](repeating: initial, count: n)
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
                var acc = [Int32](repeating: 12345, count: n)  // overwritten, not accumulated into
                ptrs.withUnsafeMutableBufferPointer { pp in w.withUnsafeBufferPointer { pw in acc.withUnsafeMutableBufferPointer { pa in
                    isa.dwRow(UnsafePointer(pp.baseAddress!), pw.baseAddress!, taps: taps, n: n, initial: initial, pa.baseAddress!)
                } } }
                results.append(acc)
            }
            var want = start
            for t in 0..<taps { for i in 0..<n { want[i] += Int32(rowsData[t][i]) * w[t] } }
            for (i, r) in results.enumerated() { XCTAssertEqual(r, want, "path \(i) taps=\(taps) n=\(n)") }
        }
    }

    /// The four-taps-per-instruction depthwise row (VNNI where present, else its scalar fallback)
    /// against the plain sum, on lengths around its 64-output step and tap counts not divisible by 4.
    func testInt8DepthwiseRowMatchesPlainSums() {
        var rng = SplitMix(seed: 23)
        for isa in [QConvISA.scalar] + paths {
            for (taps, n) in [(9, 1), (9, 15), (9, 64), (9, 65), (25, 127), (4, 200), (3, 130), (9, 6560)] {
                let groups = (taps + 3) / 4
                let rowsData = (0..<taps).map { _ in (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
                var w8 = [Int8](repeating: 0, count: groups * 4)
                for t in 0..<taps { w8[t] = Int8(truncatingIfNeeded: rng.next()) }
                w8[0] = -128
                let initial = Int32(Int64(rng.next() % 100000) - 50000)
                let buffers = rowsData.map { r -> UnsafeMutablePointer<UInt8> in
                    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
                    for i in 0..<n { p[i] = r[i] }
                    return p
                }
                defer { for b in buffers { b.deallocate() } }
                var ptrs = buffers.map { Optional(UnsafePointer($0)) }
                while ptrs.count < groups * 4 { ptrs.append(ptrs[0]) }
                var acc = [Int32](repeating: 12345, count: n + 1)  // acc[n] must stay untouched
                ptrs.withUnsafeMutableBufferPointer { pp in w8.withUnsafeBufferPointer { pw in acc.withUnsafeMutableBufferPointer { pa in
                    isa.dwRowInt8(UnsafePointer(pp.baseAddress!), pw.baseAddress!, groups: groups, n: n, initial: initial, pa.baseAddress!)
                } } }
                var want = [Int32](repeating: initial, count: n) + [12345]
                for t in 0..<taps { for i in 0..<n { want[i] += Int32(rowsData[t][i]) * Int32(w8[t]) } }
                XCTAssertEqual(acc, want, "\(isa) taps=\(taps) n=\(n)")
            }
        }
    }

    /// The stride-1 tap-offset conv GEMM (VNNI) against its scalar reference on ragged shapes: rows
    /// not a multiple of 8, pixels not a multiple of 32, extreme bytes and weights.
    func testTapsGemmMatchesScalar() {
        #if arch(x86_64)
        guard paths.contains(.avx512) else { return }
        var rng = SplitMix(seed: 25)
        for (n, p, k4, wp) in [(8, 32, 2, 6), (13, 70, 3, 9), (1, 5, 1, 4), (67, 129, 5, 18)] {
            let offsets = (0..<9).map { (($0 / 3) * wp + $0 % 3) }
            let ldx = p + 2 * wp + 3 + 16
            var x = (0..<(k4 * ldx * 4)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            x[0] = 255
            var w = (0..<(n * 9 * k4 * 4)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            w[0] = -128
            var a = [Int32](repeating: 7, count: n * p), b = a
            perch_qconv_taps_vnni(n, p, k4, 9, offsets, x, ldx, w, 9 * k4 * 4, &a, p)
            perch_qconv_taps_scalar(n, p, k4, 9, offsets, x, ldx, w, 9 * k4 * 4, &b, p)
            XCTAssertEqual(a, b, "n=\(n) p=\(p) k4=\(k4)")
        }
        #endif
    }

    /// The tap GEMM with the requantization fused into its epilogue (VNNI and the scalar reference)
    /// against the int32 GEMM requantized by the Swift reference: ragged shapes, right shifts 0…31,
    /// uint8 and int8 outputs with clamps narrower than the type, bytes outside a tile untouched.
    func testFusedRequantTapsGemmMatchesReference() {
        var rng = SplitMix(seed: 26)
        let cases: [(n: Int, p: Int, k4: Int, taps: Int, signed: Bool)] = [
            (8, 32, 2, 9, false), (13, 70, 3, 9, true), (1, 5, 1, 1, false), (67, 129, 5, 1, true), (16, 48, 8, 4, false)]
        for c in cases {
            let wp = 9
            let offsets = (0..<c.taps).map { (($0 / 3) * wp + $0 % 3) }
            let ldx = c.p + 2 * wp + 3 + 16, ldw = c.taps * c.k4 * 4, ldo = c.p + 3
            let x = (0..<(c.k4 * ldx * 4)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let w = (0..<(c.n * ldw)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            var acc = [Int32](repeating: 0, count: c.n * c.p)
            perch_qconv_taps_scalar(c.n, c.p, c.k4, c.taps, offsets, x, ldx, w, ldw, &acc, c.p)
            let qs = (0..<c.n).map { j in QuantizedMultiplier(multiplier: Int32(1 << 30) + Int32(rng.next() % (1 << 30)), shift: -Int32(j % 32)) }
            let add = (0..<c.n).map { _ in Int32(truncatingIfNeeded: rng.next() % 200_001) - 100_000 }
            let (lo, hi, zp): (Int32, Int32, Int32) = c.signed ? (-100, 127, -3) : (0, 200, 131)
            var want = [UInt8](repeating: 0xEE, count: c.n * ldo)
            for j in 0..<c.n { for i in 0..<c.p {
                want[j * ldo + i] = UInt8(truncatingIfNeeded: requantize(acc[j * c.p + i] &+ add[j], qs[j], zeroPoint: zp, lo: lo, hi: hi))
            } }
            let mult = qs.map { $0.multiplier }, right = qs.map { -$0.shift }
            for isa in [QConvISA.scalar] + (paths.contains(.avx512) ? [.avx512] : []) {
                var out = [UInt8](repeating: 0xEE, count: c.n * ldo)
                QChannelRequant(add: add, mult: mult, right: right, zp: zp, lo: lo, hi: hi).withParameters(from: 0) { rq in
                    offsets.withUnsafeBufferPointer { off in
                        isa.convTapsRequant(n: c.n, p: c.p, k4: c.k4, taps: c.taps, offsets: off.baseAddress!, x: x, ldx: ldx, w: w, ldw: ldw,
                                            requant: rq, out: &out, ldo: ldo)
                    }
                }
                XCTAssertEqual(out, want, "\(isa) \(c)")
            }
        }
    }

    /// The valid-pixels form of the fused tap GEMM (maps 16 or 32 wide, grid rows 2 wider) against
    /// the scalar kernel run row by row: odd row counts (a last tile of one vector), 9 and 25 taps.
    func testFusedRequantTapsRowsMatchScalarRows() {
        guard paths.contains(.avx512) else { return }
        var rng = SplitMix(seed: 29)
        for (n, rows, outW, k, k4) in [(13, 3, 16, 3, 3), (8, 5, 32, 3, 2), (19, 1, 16, 5, 4), (64, 4, 48, 3, 8)] {
            let wp = outW + k - 1
            let offsets = (0..<(k * k)).map { ($0 / k) * wp + $0 % k }
            let ldx = (rows + k - 1) * wp + 16, ldw = k * k * k4 * 4, ldo = rows * outW + 7
            let x = (0..<(k4 * ldx * 4)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let w = (0..<(n * ldw)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            let mult = (0..<n).map { _ in Int32(1 << 30) + Int32(rng.next() % (1 << 30)) }, right = (0..<n).map { Int32(($0 * 5) % 32) }
            let add = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % 200_001) - 100_000 }
            var outs = [[UInt8]]()
            for isa in [QConvISA.avx512, .scalar] {
                var out = [UInt8](repeating: 0xEE, count: n * ldo)
                QChannelRequant(add: add, mult: mult, right: right, zp: 9, lo: 0, hi: 250).withParameters(from: 0) { rq in
                    isa.convTapsRowsRequant(n: n, rows: rows, outW: outW, wp: wp, k4: k4, taps: k * k, offsets: offsets, x: x, ldx: ldx, w: w,
                                            ldw: ldw, requant: rq, out: &out, ldo: ldo)
                }
                outs.append(out)
            }
            XCTAssertEqual(outs[0], outs[1], "n=\(n) rows=\(rows) outW=\(outW) k=\(k)")
            XCTAssertFalse(outs[1].prefix(rows * outW).allSatisfy { $0 == 0xEE })
        }
    }

    /// The pixels × channels 1×1 kernel with its per-lane requantization epilogue (VNNI and scalar)
    /// against the Swift reference: channel counts that are not a multiple of 16 or 64, odd pixel
    /// counts, right shifts 0…31, uint8 and int8 outputs; bytes past the N columns untouched.
    func testFusedRequantPointwiseRowsMatchReference() {
        var rng = SplitMix(seed: 27)
        for (m, n, k4, signed) in [(4, 64, 3, false), (7, 37, 5, true), (1, 16, 1, false), (13, 130, 9, true), (100, 96, 16, false)] {
            let ldb = (n + 63) / 64 * 64, ldo = n + 5
            let x = (0..<(k4 * m * 4)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var b = [Int8](repeating: 0, count: k4 * ldb * 4)
            for i in 0..<k4 { for j in 0..<n { for l in 0..<4 { b[(i * ldb + j) * 4 + l] = Int8(truncatingIfNeeded: rng.next()) } } }
            let qs = (0..<n).map { j in QuantizedMultiplier(multiplier: Int32(1 << 30) + Int32(rng.next() % (1 << 30)), shift: -Int32((j * 7) % 32)) }
            let add = (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % 200_001) - 100_000 }
            let (lo, hi, zp): (Int32, Int32, Int32) = signed ? (-128, 100, 5) : (3, 255, 120)
            var want = [UInt8](repeating: 0xEE, count: m * ldo)
            for r in 0..<m { for j in 0..<n {
                var acc: Int32 = 0
                for i in 0..<k4 { for l in 0..<4 { acc &+= Int32(x[(i * m + r) * 4 + l]) * Int32(b[(i * ldb + j) * 4 + l]) } }
                want[r * ldo + j] = UInt8(truncatingIfNeeded: requantize(acc &+ add[j], qs[j], zeroPoint: zp, lo: lo, hi: hi))
            } }
            let mult = qs.map { $0.multiplier }, right = qs.map { -$0.shift }
            for isa in [QConvISA.scalar] + (paths.contains(.avx512) ? [.avx512] : []) {
                var out = [UInt8](repeating: 0xEE, count: m * ldo)
                QChannelRequant(add: add, mult: mult, right: right, zp: zp, lo: lo, hi: hi).withParameters(from: 0) { rq in
                    isa.convK4TransposedRequant(m: m, n: n, k4: k4, x: x, ldx: m, b: b, ldb: ldb, requant: rq, out: &out, ldo: ldo)
                }
                XCTAssertEqual(out, want, "\(isa) m=\(m) n=\(n) k4=\(k4)")
            }
        }
    }

    /// The channel-tiled depthwise kernel (pack → 16 channels per vector → unpack) against direct
    /// sums requantized by the Swift reference, on partial channel blocks, strides, dilations,
    /// asymmetric kernels, right shifts from 0 to 31 and accumulators far from zero.
    func testDepthwiseTilesMatchDirectSums() {
        var rng = SplitMix(seed: 24)
        let shapes: [(chans: Int, h: Int, w: Int, kH: Int, kW: Int, s: Int, d: Int, p: Int)] = [
            (16, 10, 10, 3, 3, 1, 1, 1), (5, 19, 37, 3, 3, 2, 1, 1), (16, 20, 20, 5, 5, 2, 1, 2), (9, 7, 6, 3, 3, 1, 2, 2),
            (16, 33, 18, 1, 7, 1, 1, 3), (3, 1, 1, 3, 3, 1, 1, 1), (16, 12, 9, 3, 3, 3, 1, 0), (16, 41, 40, 3, 3, 1, 1, 1),
            (16, 11, 12, 4, 4, 2, 1, 1),
        ]
        for sh in shapes {
            let oh = (sh.h + 2 * sh.p - sh.d * (sh.kH - 1) - 1) / sh.s + 1, ow = (sh.w + 2 * sh.p - sh.d * (sh.kW - 1) - 1) / sh.s + 1
            let hp = (oh - 1) * sh.s + (sh.kH - 1) * sh.d + 1, wp = (ow - 1) * sh.s + (sh.kW - 1) * sh.d + 1
            let taps = sh.kH * sh.kW
            let x = (0..<(sh.chans * sh.h * sh.w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let w = (0..<(taps * 16)).map { i in i % 16 < sh.chans ? Int32(Int64(rng.next() % 511) - 255) : 0 }
            let initial = (0..<16).map { _ in Int32(Int64(rng.next() % 2_000_000) - 1_000_000) }
            let mult = (0..<16).map { _ in Int32(1 << 30) + Int32(rng.next() % (1 << 30)) }
            let shift = (0..<16).map { c in -Int32((c * 2 + Int(rng.next() % 3)) % 32) }
            let rshift = shift.map { -$0 }
            let pad: UInt8 = 7, zp: Int32 = 3, flip: UInt8 = sh.chans == 5 ? 0x80 : 0
            var offsets = [Int]()
            for kh in 0..<sh.kH { for kw in 0..<sh.kW { offsets.append(kh * sh.d * wp + kw * sh.d) } }
            func directSums(_ w: [Int32], zp: Int32 = 3, lo: Int32 = 0, hi: Int32 = 255) -> [UInt8] {
                var want = [UInt8](repeating: 0, count: sh.chans * oh * ow)
                for c in 0..<sh.chans { for y in 0..<oh { for xx in 0..<ow {
                    var acc = initial[c]
                    for kh in 0..<sh.kH { for kw in 0..<sh.kW {
                        let iy = y * sh.s + kh * sh.d - sh.p, ix = xx * sh.s + kw * sh.d - sh.p
                        let v = iy >= 0 && iy < sh.h && ix >= 0 && ix < sh.w ? x[(c * sh.h + iy) * sh.w + ix] ^ flip : pad
                        acc &+= Int32(v) &* w[(kh * sh.kW + kw) * 16 + c]
                    } }
                    let q = QuantizedMultiplier(multiplier: mult[c], shift: shift[c])
                    want[(c * oh + y) * ow + xx] = UInt8(truncatingIfNeeded: requantize(acc, q, zeroPoint: zp, lo: lo, hi: hi))
                } } }
                return want
            }
            let want = directSums(w)
            for isa in [QConvISA.scalar] + paths {
                var tile = [UInt8](repeating: 0xEE, count: hp * wp * 16)
                var outTile = [UInt8](repeating: 0, count: oh * ow * 16)
                var got = [UInt8](repeating: 0xEE, count: sh.chans * oh * ow)
                x.withUnsafeBufferPointer { px in
                    perch_qdw_tile16_pack(px.baseAddress!, sh.chans, sh.h * sh.w, sh.h, sh.w, sh.p, sh.p, 0, hp, wp, flip, pad, &tile)
                }
                isa.depthwiseTile16(tile, wp: wp, outH: oh, outW: ow, sH: sh.s, sW: sh.s, offsets: offsets, taps: taps, w: w,
                                    initial: initial, mult: mult, shift: shift, rightShift: rshift, zp: zp, lo: 0, hi: 255, &outTile)
                perch_qdw_tile16_unpack(outTile, oh * ow, sh.chans, oh * ow, &got)
                XCTAssertEqual(got, want, "\(isa) \(sh)")
                // The word-pair kernel (two horizontal taps per vpdpwssd or vpmaddwd) where it applies.
                guard isa == .avx512 || isa == .avx2, sh.d == 1, sh.s <= 2 else { continue }
                var g = ConvGeometry()
                g.kH = sh.kH; g.kW = sh.kW; g.sH = sh.s; g.sW = sh.s; g.outH = oh; g.outW = ow
                let pairs = (sh.kW + 1) / 2, wq = (wp + sh.s - 1) / sh.s
                var wPairs = [Int16](repeating: 0, count: sh.kH * pairs * 32)
                for kh in 0..<sh.kH { for m in 0..<pairs { for c in 0..<16 { for e in 0..<2 where 2 * m + e < sh.kW {
                    wPairs[((kh * pairs + m) * 16 + c) * 2 + e] = Int16(w[(kh * sh.kW + 2 * m + e) * 16 + c])
                } } } }
                tile += [UInt8](repeating: 0xEE, count: 48)  // the pair and quad builders' slack
                var pairTile = [Int16](repeating: 0, count: hp * wq * 32)
                got = [UInt8](repeating: 0xEE, count: sh.chans * oh * ow)
                isa.depthwisePairs16(tile, rows: hp, wp: wp, pairTile: &pairTile, wq: wq, g, outH: oh, pairs: pairs, w: wPairs, initial: initial,
                                     mult: mult, rightShift: rshift, zp: zp, lo: 0, hi: 255, &outTile)
                perch_qdw_tile16_unpack(outTile, oh * ow, sh.chans, oh * ow, &got)
                XCTAssertEqual(got, want, "\(isa) pairs \(sh)")
                // int8 outputs (signed packs and clamp; bytes are two's complement).
                got = [UInt8](repeating: 0xEE, count: sh.chans * oh * ow)
                isa.depthwisePairs16(tile, rows: hp, wp: wp, pairTile: &pairTile, wq: wq, g, outH: oh, pairs: pairs, w: wPairs, initial: initial,
                                     mult: mult, rightShift: rshift, zp: -5, lo: -128, hi: 127, &outTile)
                perch_qdw_tile16_unpack(outTile, oh * ow, sh.chans, oh * ow, &got)
                XCTAssertEqual(got, directSums(w, zp: -5, lo: -128, hi: 127), "\(isa) int8 pairs \(sh)")
                // The quad kernel (a kernel row per vpdpbusd) on int8 weights, for kernels at most 4 wide.
                guard isa == .avx512, sh.kW <= 4 else { continue }
                let w8 = w.map { Swift.min(127, Swift.max(-128, $0)) }
                var wQuads = [Int8](repeating: 0, count: sh.kH * 64)
                for kh in 0..<sh.kH { for c in 0..<16 { for kw in 0..<sh.kW { wQuads[(kh * 16 + c) * 4 + kw] = Int8(w8[(kh * sh.kW + kw) * 16 + c]) } } }
                var quadTile = [UInt8](repeating: 0, count: hp * ow * 64)
                got = [UInt8](repeating: 0xEE, count: sh.chans * oh * ow)
                isa.depthwiseQuads16(tile, rows: hp, wp: wp, quadTile: &quadTile, g, outH: oh, w: wQuads, initial: initial, mult: mult,
                                     rightShift: rshift, zp: zp, lo: 0, hi: 255, &outTile)
                perch_qdw_tile16_unpack(outTile, oh * ow, sh.chans, oh * ow, &got)
                XCTAssertEqual(got, directSums(w8), "quads \(sh)")
            }
        }
    }

    /// The depthwise tiles' transposes (NCHW planes ↔ [pixels][16 channels]) on every path this
    /// machine has against the portable ones: full and partial channel blocks, bands that start
    /// inside the padding or the map, rows narrower and wider than a vector, ragged pixel counts.
    func testDepthwiseTileTransposesMatchPortable() {
        var rng = SplitMix(seed: 25)
        let cases: [(chans: Int, h: Int, w: Int, p: Int, r0: Int, rows: Int, wp: Int)] = [
            (16, 40, 40, 1, 0, 22, 42), (16, 40, 40, 1, 19, 22, 42), (16, 80, 80, 1, 70, 12, 82), (16, 20, 37, 2, 3, 9, 41),
            (16, 10, 10, 1, 0, 12, 12), (7, 40, 40, 1, 5, 20, 42), (16, 5, 17, 0, 0, 5, 17), (16, 9, 16, 1, 0, 11, 18),
        ]
        for c in cases {
            let x = (0..<(c.chans * c.h * c.w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var want = [UInt8](repeating: 0, count: c.rows * c.wp * 16)
            perch_qdw_tile16_pack(x, c.chans, c.h * c.w, c.h, c.w, c.p, c.p, c.r0, c.rows, c.wp, 0x80, 9, &want)
            for isa in paths {
                var got = [UInt8](repeating: 0xEE, count: c.rows * c.wp * 16)
                x.withUnsafeBufferPointer { px in
                    var g = ConvGeometry()
                    g.inH = c.h; g.inW = c.w; g.pH = c.p; g.pW = c.p
                    isa.packTile16(px.baseAddress!, chans: c.chans, g, firstRow: c.r0, rows: c.rows, wp: c.wp, flip: 0x80, pad: 9, &got)
                }
                XCTAssertEqual(got, want, "pack \(isa) \(c)")
            }
        }
        for (pixels, chans) in [(16, 16), (1600, 16), (37, 16), (100, 16), (9, 16), (400, 5)] {
            let tile = (0..<(pixels * 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let planeSize = pixels + 3
            var want = [UInt8](repeating: 0xEE, count: chans * planeSize)
            perch_qdw_tile16_unpack(tile, pixels, chans, planeSize, &want)
            for isa in paths {
                var got = [UInt8](repeating: 0xEE, count: chans * planeSize)
                isa.unpackTile16(tile, pixels: pixels, chans: chans, planeSize: planeSize, &got)
                XCTAssertEqual(got, want, "unpack \(isa) pixels=\(pixels) chans=\(chans)")
            }
        }
    }

    func testRequantizationPathsAreBitExactWithSwiftReference() {
        var rng = SplitMix(seed: 23)
        let n = 141  // two 64-output steps, a 16-output step and a tail
        for trial in 0..<60 {
            // Multipliers from 1e-6 to ~40 (shift > 0 exercises the saturating left shift).
            let real = trial % 3 == 0 ? Double(rng.next() % 40000 + 1) / 1000 : Double(rng.next() % 1_000_000 + 1) / 1e7
            let q = QuantizedMultiplier(real)
            var acc = (0..<n).map { _ in Int32(truncatingIfNeeded: Int64(rng.next() % 4_000_000) - 2_000_000) }
            acc[0] = Int32.max; acc[1] = Int32.min; acc[2] = 0; acc[3] = -1
            if trial % 5 == 0 { for i in 4..<n { acc[i] = Int32(truncatingIfNeeded: rng.next()) } }
            let add = Int32(Int64(rng.next() % 2000) - 1000)
            var (zp, lo, hi): (Int32, Int32, Int32) = trial % 2 == 0 ? (Int32(rng.next() % 256), 0, 255) : (Int32(Int64(rng.next() % 256) - 128), -128, 127)
            if trial % 4 < 2 { (lo, hi) = (Swift.max(lo, zp), Swift.min(hi, zp + 90)) }  // a fused ReLU6-like range
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

/// The row-major (MatMul) int8 kernel and per-column requantization, and the constant folding
/// that lets QDQ fusion see weights stored as QuantizeLinear(ConstantOfShape).
final class QGemmFastTests: XCTestCase {
    func testRowMajorGemmAndColumnRequantAreBitExactWithScalar() {
        var rng = SplitMix(seed: 31)
        let isas = Int8GEMM.availableISAs()
        let paths = isas.filter { $0 != .scalar }.map { QConvISA.from($0) }
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (4, 32, 64), (9, 45, 130), (17, 100, 33), (3, 13, 9)] {
            let k4 = (k + 3) / 4, lda = k4 * 4
            var a = [UInt8](repeating: 0, count: m * lda)
            for r in 0..<m { for i in 0..<k { a[r * lda + i] = UInt8(truncatingIfNeeded: rng.next()) } }
            for i in 0..<k { a[i] = 255 }
            let qs = (0..<n).map { j in QuantizedMultiplier(j % 7 == 3 && n % 2 == 1 ? 1.7 : Double(j + 1) * 1.3e-4) }
            var layer = QLinearLayer(n: n, k: k, weight: { _, _ in Int32(Int8(truncatingIfNeeded: rng.next())) }, weightZero: { _ in 0 },
                                     weightsAreU8: false, activationZero: 3, bias: { j in Int32(j * 11) - 50 },
                                     multiplier: { j in j % 7 == 3 && n % 2 == 1 ? 1.7 : Double(j + 1) * 1.3e-4 },
                                     outZero: 7, lo: 0, hi: 255, int32Output: false, isa: .scalar)
            layer.packRowMajor()
            var want = [UInt8](repeating: 0, count: m * n)
            for r in 0..<m { for j in 0..<n {
                var acc: Int32 = 0
                for i in 0..<k { acc &+= Int32(a[r * lda + i]) * Int32(layer.weights[j * layer.kp + i]) }
                want[r * n + j] = UInt8(requantize(acc &+ layer.columnTerm[j], qs[j], zeroPoint: 7, lo: 0, hi: 255))
            } }
            for isa in [QConvISA.scalar] + paths {
                var acc = [Int32](repeating: 0, count: m * n)
                var out = [UInt8](repeating: 0, count: m * n)
                let sums = [Int32](repeating: 0, count: m)
                a.withUnsafeBufferPointer { pa in acc.withUnsafeMutableBufferPointer { pc in out.withUnsafeMutableBufferPointer { po in
                    sums.withUnsafeBufferPointer { ps in
                        layer.runRowMajor(m: m, a: pa.baseAddress!, lda: lda, rowSums: ps.baseAddress!, acc: pc.baseAddress!,
                                          out: po.baseAddress!, isa: isa)
                    }
                } } }
                XCTAssertEqual(out, want, "\(isa) m=\(m) n=\(n) k=\(k)")
            }
        }
    }

    /// x → Q → DQ → Conv(DQ(Q(ConstantOfShape))) → Q → DQ: the weight chain is folded before fusion
    /// (uint8 weights, so the pixel-sum correction runs), and the result matches fake-quant.
    func testConstantOfShapeWeightsAreFoldedAndFused() throws {
        let wShape = Tensor(shape: [4], values: [Int64(6), 3, 3, 3])
        var fill = Attributes()
        fill["value"] = .tensor(Tensor(shape: [1], values: [Float(0.02)]))
        var conv = Attributes()
        conv["pads"] = .ints([1, 1, 1, 1])
        let graph = Graph(
            name: "cos",
            nodes: [
                Node(name: "qx", op: .quantizeLinear, inputs: ["x", "xs", "xz"], outputs: ["xq"]),
                Node(name: "dqx", op: .dequantizeLinear, inputs: ["xq", "xs", "xz"], outputs: ["xd"]),
                Node(name: "cos", op: .constantOfShape, inputs: ["wshape"], outputs: ["wf"], attributes: fill),
                Node(name: "qw", op: .quantizeLinear, inputs: ["wf", "ws", "wz"], outputs: ["wq"]),
                Node(name: "dqw", op: .dequantizeLinear, inputs: ["wq", "ws", "wz"], outputs: ["wd"]),
                Node(name: "conv", op: .conv, inputs: ["xd", "wd"], outputs: ["c"], attributes: conv),
                Node(name: "qy", op: .quantizeLinear, inputs: ["c", "ys", "yz"], outputs: ["yq"]),
                Node(name: "dqy", op: .dequantizeLinear, inputs: ["yq", "ys", "yz"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 3, 9, 21]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, 6, 9, 21]))],
            initializers: [
                "wshape": wShape, "xs": Tensor(shape: [], values: [Float(0.01)]), "xz": Tensor(shape: [], values: [UInt8(20)]),
                "ws": Tensor(shape: [], values: [Float(0.0002)]), "wz": Tensor(shape: [], values: [UInt8(3)]),
                "ys": Tensor(shape: [], values: [Float(0.004)]), "yz": Tensor(shape: [], values: [UInt8(10)]),
            ])
        var rng = SplitMix(seed: 9)
        let x = Tensor(shape: [1, 3, 9, 21], values: (0..<(3 * 9 * 21)).map { _ in Float(rng.next() % 200) / 100 - 0.2 })
        let fused = try Session(graph: graph)
        XCTAssertEqual(fused.graph.nodes.filter { $0.op == .qLinearConv }.count, 1)
        XCTAssertEqual(fused.graph.nodes.filter { $0.op == .constantOfShape || $0.op == .conv }.count, 0)
        let got = try XCTUnwrap(try fused.run(["x": x])["y"]).floats
        let want = try XCTUnwrap(try Session(graph: graph, options: SessionOptions(fuseQuantized: false)).run(["x": x])["y"]).floats
        XCTAssertEqual(got.count, want.count)
        var worst: Float = 0
        for i in 0..<got.count { worst = max(worst, abs(got[i] - want[i])) }
        XCTAssertLessThanOrEqual(worst, 0.004 * 1.0001)
        XCTAssertGreaterThan(want.max()!, 0.1)  // not all clamped
    }
}

/// DQ → Div(scalar) → Erf → Q (GELU's inner part, as ORT's QDQ transformer leaves it) becomes
/// one QLinearLookup table; it must give what fake-quant gives (same float ops per code).
final class QDQChainFusionTests: XCTestCase {
    func testDivErfChainBecomesOneTable() throws {
        let graph = Graph(
            name: "chain",
            nodes: [
                Node(name: "qx", op: .quantizeLinear, inputs: ["x", "xs", "xz"], outputs: ["xq"]),
                Node(name: "dqx", op: .dequantizeLinear, inputs: ["xq", "xs", "xz"], outputs: ["xd"]),
                Node(name: "div", op: .div, inputs: ["xd", "sqrt2"], outputs: ["d"]),
                Node(name: "erf", op: .erf, inputs: ["d"], outputs: ["e"]),
                Node(name: "qy", op: .quantizeLinear, inputs: ["e", "ys", "yz"], outputs: ["yq"]),
                Node(name: "dqy", op: .dequantizeLinear, inputs: ["yq", "ys", "yz"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [256]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [256]))],
            initializers: [
                "xs": Tensor(shape: [], values: [Float(0.03)]), "xz": Tensor(shape: [], values: [UInt8(128)]),
                "sqrt2": Tensor(shape: [], values: [Float(1.4142135)]),
                "ys": Tensor(shape: [], values: [Float(2.0 / 255)]), "yz": Tensor(shape: [], values: [UInt8(127)]),
            ])
        // Every input code once: x = (code − 128) · 0.03.
        let x = Tensor(shape: [256], values: (0..<256).map { Float($0 - 128) * 0.03 })
        let fused = try Session(graph: graph)
        XCTAssertEqual(fused.graph.nodes.filter { $0.op == .qLinearLookup }.count, 1)
        XCTAssertEqual(fused.graph.nodes.filter { $0.op == .erf || $0.op == .div }.count, 0)
        let got = try XCTUnwrap(try fused.run(["x": x])["y"]).floats
        let want = try XCTUnwrap(try Session(graph: graph, options: SessionOptions(fuseQuantized: false)).run(["x": x])["y"]).floats
        XCTAssertEqual(got, want)
        // erf(3.84/√2) ≈ 0.9934 → code 254 → 0.9922; erf(−3.84/√2) → code 0 → −0.9961.
        XCTAssertEqual(got[255], Float(254 - 127) * Float(2.0 / 255), accuracy: 1e-6)
        XCTAssertEqual(got[0], Float(0 - 127) * Float(2.0 / 255), accuracy: 1e-6)
    }
}

/// QLinearAdd / QLinearMul (per-operand tables + vectorized requantization) against the
/// element-wise TFLite formulas, with broadcasting and both 8-bit types.
final class QBinaryTests: XCTestCase {
    /// One QLinearAdd / QLinearMul node with the tests' scales and zero points as constants
    /// (`za`, `zb`, `zy` in the data type's own range) and `a`, `b` as graph inputs.
    struct Setup {
        let graph: Graph
        let sa: Float, sb: Float, sy: Float
        let za: Int, zb: Int, zy: Int

        init(_ op: OpType, _ dtype: DType, a: [Int], b: [Int], out: [Int]) {
            (sa, sb, sy) = (0.02, 0.013, op == .qLinearAdd ? 0.03 : 0.005)
            (za, zb, zy) = (dtype == .u8 ? 100 : -28, dtype == .u8 ? 140 : 12, dtype == .u8 ? 120 : -8)
            let zero: (Int) -> Tensor = { v in dtype == .u8 ? Tensor(shape: [], values: [UInt8(v)]) : Tensor(shape: [], values: [Int8(v)]) }
            let node = Node(name: "q", op: op, inputs: ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], outputs: ["y"])
            var g = Graph(name: "t", nodes: [node],
                          inputs: [ValueInfo(name: "a", type: TensorType(dtype: dtype, shape: a)),
                                   ValueInfo(name: "b", type: TensorType(dtype: dtype, shape: b))],
                          outputs: [ValueInfo(name: "y", type: TensorType(dtype: dtype, shape: out))])
            g.initializers = ["as": Tensor(shape: [], values: [sa]), "az": zero(za), "bs": Tensor(shape: [], values: [sb]), "bz": zero(zb),
                              "ys": Tensor(shape: [], values: [sy]), "yz": zero(zy)]
            graph = g
        }
    }

    // 600 elements: the term-table path; 3×5×400 = 6000 (below): the 64 KiB pair-table path.
    func testQLinearAddMulMatchTheElementwiseFormulas() throws {
        var rng = SplitMix(seed: 51)
        for op in [OpType.qLinearAdd, .qLinearMul] {
            for (dtype, w) in [(DType.u8, 40), (.i8, 40), (.u8, 400), (.i8, 400)] {
                let a = Tensor(dtype: dtype, shape: [3, 5, w], bytes: (0..<(15 * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let b = Tensor(dtype: dtype, shape: [w], bytes: (0..<w).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let q = Setup(op, dtype, a: a.shape, b: b.shape, out: a.shape)
                let (sa, sb, sy, za, zb, zy) = (q.sa, q.sb, q.sy, q.za, q.zb, q.zy)
                let y = try XCTUnwrap(try Session(graph: q.graph).run(["a": a, "b": b])["y"]).int64s
                let av = a.int64s, bv = b.int64s
                let (lo, hi) = quantizedRange(dtype)
                for i in 0..<(15 * w) {
                    let xa = Int32(av[i]) - Int32(za), yb = Int32(bv[i % w]) - Int32(zb)
                    let want = tfliteQLinearBinary(op, xa, yb, sa: sa, sb: sb, sy: sy, zy: Int32(zy), lo: lo, hi: hi)
                    XCTAssertEqual(y[i], want, "\(op) \(dtype) i=\(i)")
                }
            }
        }
    }

    /// QLinearAdd / QLinearMul where one operand has one code per row of the other (a conv's
    /// per-channel bias Add, [N, C, H·W] + [N, C, 1], and the mirrored case): the 256-entry
    /// column and row LUTs, against the TFLite formulas, 1 and 2 threads.
    func testQLinearAddMulPerRowOperandsMatchTheElementwiseFormulas() throws {
        var rng = SplitMix(seed: 52)
        for op in [OpType.qLinearAdd, .qLinearMul] {
            for (dtype, aShape, bShape, out) in [(DType.u8, [2, 7, 300], [2, 7, 1], [2, 7, 300]), (.i8, [2, 7, 1], [2, 7, 300], [2, 7, 300]),
                                                 (.u8, [1, 9, 509], [9, 1], [1, 9, 509])] {
                let na = aShape.reduce(1, *), nb = bShape.reduce(1, *), total = out.reduce(1, *)
                let a = Tensor(dtype: dtype, shape: aShape, bytes: (0..<na).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let b = Tensor(dtype: dtype, shape: bShape, bytes: (0..<nb).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let q = Setup(op, dtype, a: aShape, b: bShape, out: out)
                let (sa, sb, sy, za, zb, zy) = (q.sa, q.sb, q.sy, q.za, q.zb, q.zy)
                let y = try XCTUnwrap(try Session(graph: q.graph).run(["a": a, "b": b])["y"])
                XCTAssertEqual(y.shape, out)
                let two = try XCTUnwrap(try Session(graph: q.graph, options: SessionOptions(threads: 2)).run(["a": a, "b": b])["y"])
                XCTAssertEqual(two.bytes, y.bytes, "\(op) \(aShape) \(bShape) on 2 threads")
                let av = a.int64s, bv = b.int64s, yv = y.int64s
                let (lo, hi) = quantizedRange(dtype)
                let inner = out[out.count - 1]
                for i in 0..<total {
                    // Rows of `inner` elements; a per-row operand has one element per row.
                    let row = i / inner
                    let ea = na == total ? av[i] : av[row], eb = nb == total ? bv[i] : bv[row]
                    let want = tfliteQLinearBinary(op, Int32(ea) - Int32(za), Int32(eb) - Int32(zb), sa: sa, sb: sb, sy: sy, zy: Int32(zy), lo: lo, hi: hi)
                    XCTAssertEqual(yv[i], want, "\(op) \(aShape) \(bShape) i=\(i)")
                }
            }
        }
    }
}

/// QLinearSoftmax's row kernel (C, contiguous rows) against its Swift reference (any stride).
final class QLinearSoftmaxRowTests: XCTestCase {
    func testRowKernelMatchesStridedReference() {
        var rng = SplitMix(seed: 28)
        for (n, stride, signed, xScale, yScale) in [(64, 1, false, Float(0.05), Float(1.0 / 256)), (37, 3, true, 0.11, 0.0035),
                                                     (1, 2, false, 0.3, 0.004), (200, 5, true, 0.013, 1.0 / 128)] {
            let table = QLinearSoftmaxOperator.expTable(xScale: xScale, length: n)
            let codes = (0..<(n * stride)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let y = perch_floorf(1 / yScale)
            let (lo, hi): (Int32, Int32) = signed ? (-128, 127) : (0, 255)
            let zero: Int32 = signed ? -128 : 3
            var want = [UInt8](repeating: 0, count: n * stride)
            var row = [UInt8](repeating: 0, count: n), got = row, tmp = [Float](repeating: 0, count: n)
            for i in 0..<n { row[i] = codes[i * stride] }
            codes.withUnsafeBufferPointer { c in table.withUnsafeBufferPointer { t in
                QLinearSoftmaxOperator.softmaxRow(c.baseAddress!, &want, n, stride: stride, signed: signed, table: t.baseAddress!, yScale: y,
                                                  zero: zero, lo: lo, hi: hi)
                perch_qsoftmax_row(row, n, signed ? 0x80 : 0, t.baseAddress!, y, Float(zero), Float(lo), Float(hi), &tmp, &got)
            } }
            XCTAssertEqual(got, (0..<n).map { want[$0 * stride] }, "n=\(n) signed=\(signed)")
            // Probabilities: no output below the zero point.
            XCTAssertTrue(got.allSatisfy { signed ? Int8(bitPattern: $0) >= Int8(zero) : Int32($0) >= zero })
        }
    }
}

import PerchEngine
import PerchGraph
import XCTest

/// Deterministic pseudo-random floats in [-1, 1) for agreement tests.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
    mutating func floats(_ n: Int) -> [Float] { (0..<n).map { _ in next() } }
}

final class GEMMTests: XCTestCase {
    func testPackedSgemmAgreesWithReference() {
        var rng = TestRandom(seed: 7)
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (3, 5, 7), (4, 16, 8), (17, 33, 9), (65, 70, 300), (130, 20, 5), (2, 2100, 3)]
        for (m, n, k) in sizes {
            for transA in [false, true] {
                for transB in [false, true] {
                    for accumulate in [false, true] {
                        let a = rng.floats(m * k)
                        let b = rng.floats(k * n)
                        let c0 = rng.floats(m * n)
                        var fast = c0
                        var ref = c0
                        var ws = [Float](repeating: .nan, count: sgemmWorkspaceCount(m: m, n: n, k: k))
                        let alpha: Float = accumulate ? 0.75 : 1
                        let aRow = transA ? 1 : k, aCol = transA ? m : 1
                        let bRow = transB ? 1 : n, bCol = transB ? k : 1
                        sgemm(m: m, n: n, k: k, alpha: alpha, a: a, aRowStride: aRow, aColStride: aCol,
                              b: b, bRowStride: bRow, bColStride: bCol, c: &fast, ldc: n, accumulate: accumulate, workspace: &ws)
                        sgemmReference(m: m, n: n, k: k, alpha: alpha, a: a, aRowStride: aRow, aColStride: aCol,
                                       b: b, bRowStride: bRow, bColStride: bCol, c: &ref, ldc: n, accumulate: accumulate)
                        assertClose(floats([m, n], fast), floats([m, n], ref), rtol: 1e-4, atol: 1e-4)
                    }
                }
            }
        }
    }

    /// The fused epilogue (bias per row as C's start, clamp of the final C) of every micro-kernel
    /// variant agrees with the reference plus a separate bias and clamp, also over several K
    /// blocks (k > 256) and clipped edge tiles; a NaN passes the clamp as it passes Clip.
    func testBiasAndClampEpilogueAgreesWithReference() {
        var rng = TestRandom(seed: 9)
        for (m, n, k) in [(1, 1, 1), (7, 33, 5), (13, 40, 300), (6, 16, 27), (20, 100, 600)] {
            let a = rng.floats(m * k), b = rng.floats(k * n), bias = rng.floats(m)
            for clamp in [nil, (Float(-0.5), Float(0.75)), (Float(0), Float.infinity)] as [(Float, Float)?] {
                var ref = [Float](repeating: 0, count: m * n)
                sgemmReference(m: m, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1,
                               c: &ref, ldc: n, accumulate: false)
                for i in 0..<m {
                    for j in 0..<n {
                        var v = ref[i * n + j] + bias[i]
                        if let (lo, hi) = clamp { v = v < lo ? lo : (v > hi ? hi : v) }
                        ref[i * n + j] = v
                    }
                }
                for variant in sgemmSupportedVariants() {
                    var ws = [Float](repeating: .nan, count: sgemmWorkspaceCount(m: m, n: n, k: k))
                    var c = [Float](repeating: .nan, count: m * n)
                    sgemm(m: m, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1,
                          c: &c, ldc: n, accumulate: false, workspace: &ws, bias: bias, clamp: clamp, variant: variant)
                    assertClose(floats([m, n], c), floats([m, n], ref), rtol: 1e-4, atol: 1e-4)
                }
            }
        }
        // NaN in A reaches C and passes the clamp.
        var ws = [Float](repeating: 0, count: sgemmWorkspaceCount(m: 6, n: 16, k: 2))
        var c = [Float](repeating: 0, count: 6 * 16)
        let a: [Float] = [.nan, 1] + [Float](repeating: 1, count: 10)
        for variant in sgemmSupportedVariants() {
            sgemm(m: 6, n: 16, k: 2, a: a, aRowStride: 2, aColStride: 1, b: [Float](repeating: 1, count: 32), bRowStride: 16, bColStride: 1,
                  c: &c, ldc: 16, accumulate: false, workspace: &ws, clamp: (0, 6), variant: variant)
            XCTAssertTrue(c[0].isNaN, "variant \(variant)")
            XCTAssertEqual(c[16], 2, "variant \(variant)")
        }
    }

    /// One row (the GEMV kernel, CPerchSGEMV.h) gives the bits that row gets inside a taller GEMM
    /// (the 6×16 micro-kernel) on every variant: ragged widths (8-, 4- and 1-panel groups, a
    /// partial panel), several K blocks, packed or per-call B, bias, clamp and accumulation.
    func testOneRowMatchesTheRowInsideATallerGemm() {
        var rng = TestRandom(seed: 17)
        for (n, k) in [(1, 1), (15, 3), (16, 64), (17, 128), (100, 700), (300, 33), (520, 129)] {
            let m = 7, row = 3
            let a = rng.floats(m * k), b = rng.floats(k * n), bias = rng.floats(m), c0 = rng.floats(m * n)
            var pb = [Float](repeating: .nan, count: sgemmPackedBCount(k: k, n: n))
            sgemmPackB(k: k, n: n, b: b, bRowStride: n, bColStride: 1, into: &pb)
            for variant in sgemmSupportedVariants() {
                for (accumulate, clamp) in [(false, nil), (true, nil), (false, (Float(-0.5), Float(0.75)))] as [(Bool, (Float, Float)?)] {
                    var ws = [Float](repeating: .nan, count: sgemmWorkspaceCount(m: m, n: n, k: k))
                    var tall = c0
                    sgemm(m: m, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1, c: &tall, ldc: n,
                          accumulate: accumulate, workspace: &ws, bias: accumulate ? nil : bias, clamp: clamp, variant: variant)
                    let want = Array(tall[(row * n)..<((row + 1) * n)])
                    for usePacked in [false, true] {
                        var one = Array(c0[(row * n)..<((row + 1) * n)])
                        pb.withUnsafeBufferPointer { pbp in
                            a.withUnsafeBufferPointer { ap in
                                bias.withUnsafeBufferPointer { biasp in
                                    sgemm(m: 1, n: n, k: k, a: ap.baseAddress! + row * k, aRowStride: k, aColStride: 1, b: b, bRowStride: n,
                                          bColStride: 1, c: &one, ldc: n, accumulate: accumulate, workspace: &ws,
                                          packed: usePacked ? SGEMMPrepacked(b: pbp.baseAddress, n: n) : SGEMMPrepacked(),
                                          bias: accumulate ? nil : biasp.baseAddress! + row, clamp: clamp, variant: variant)
                                }
                            }
                        }
                        XCTAssertEqual(one.map(\.bitPattern), want.map(\.bitPattern),
                                       "variant \(variant) 1×\(n)×\(k) accumulate \(accumulate) clamp \(clamp != nil) packed \(usePacked)")
                    }
                }
            }
        }
    }

    /// Prepacked weights (A, B or both, also for a row or column block of the problem as a
    /// thread computes it) give the same bits as packing on every call.
    func testPrepackedOperandsMatchPackingPerCall() {
        var rng = TestRandom(seed: 8)
        for (m, n, k) in [(1, 1, 1), (7, 33, 5), (13, 40, 300), (130, 20, 257), (1, 2100, 64)] {
            for (transA, transB) in [(false, false), (true, true)] {
                let a = rng.floats(m * k), b = rng.floats(k * n)
                let aRow = transA ? 1 : k, aCol = transA ? m : 1
                let bRow = transB ? 1 : n, bCol = transB ? k : 1
                var ws = [Float](repeating: .nan, count: sgemmWorkspaceCount(m: m, n: n, k: k))
                var plain = [Float](repeating: 0, count: m * n)
                sgemm(m: m, n: n, k: k, a: a, aRowStride: aRow, aColStride: aCol, b: b, bRowStride: bRow, bColStride: bCol,
                      c: &plain, ldc: n, accumulate: false, workspace: &ws)
                var pa = [Float](repeating: .nan, count: sgemmPackedACount(m: m, k: k))
                var pb = [Float](repeating: .nan, count: sgemmPackedBCount(k: k, n: n))
                sgemmPackA(m: m, k: k, a: a, aRowStride: aRow, aColStride: aCol, into: &pa)
                sgemmPackB(k: k, n: n, b: b, bRowStride: bRow, bColStride: bCol, into: &pb)
                pa.withUnsafeBufferPointer { pa in
                    pb.withUnsafeBufferPointer { pb in
                        for (useA, useB) in [(true, false), (false, true), (true, true)] {
                            let packed = SGEMMPrepacked(a: useA ? pa.baseAddress : nil, m: m, b: useB ? pb.baseAddress : nil, n: n)
                            var c = [Float](repeating: 0, count: m * n)
                            sgemm(m: m, n: n, k: k, a: a, aRowStride: aRow, aColStride: aCol, b: b, bRowStride: bRow, bColStride: bCol,
                                  c: &c, ldc: n, accumulate: false, workspace: &ws, packed: packed)
                            XCTAssertEqual(c, plain, "\(m)×\(n)×\(k) A \(useA) B \(useB)")
                        }
                        // A thread's block: rows from 6 on (A), columns from 16 on (B).
                        if m > 6 {
                            var c = plain
                            for i in (6 * n)..<(m * n) { c[i] = 0 }
                            c.withUnsafeMutableBufferPointer { cb in
                                sgemm(m: m - 6, n: n, k: k, a: a.withUnsafeBufferPointer { $0.baseAddress! } + 6 * aRow, aRowStride: aRow, aColStride: aCol,
                                      b: b, bRowStride: bRow, bColStride: bCol, c: cb.baseAddress! + 6 * n, ldc: n, accumulate: false, workspace: &ws,
                                      packed: SGEMMPrepacked(a: pa.baseAddress, m: m).rows(from: 6))
                            }
                            XCTAssertEqual(c, plain, "rows from 6 of \(m)×\(n)×\(k)")
                        }
                        if n > 16 {
                            var c = plain
                            for i in 0..<m { for j in 16..<n { c[i * n + j] = 0 } }
                            c.withUnsafeMutableBufferPointer { cb in
                                sgemm(m: m, n: n - 16, k: k, a: a, aRowStride: aRow, aColStride: aCol,
                                      b: b.withUnsafeBufferPointer { $0.baseAddress! } + 16 * bCol, bRowStride: bRow, bColStride: bCol,
                                      c: cb.baseAddress! + 16, ldc: n, accumulate: false, workspace: &ws,
                                      packed: SGEMMPrepacked(b: pb.baseAddress, n: n).columns(from: 16))
                            }
                            XCTAssertEqual(c, plain, "columns from 16 of \(m)×\(n)×\(k)")
                        }
                    }
                }
            }
        }
    }

    /// Gemm and MatMul with a constant weight (packed at prepare) give the bits they give when
    /// the weight is a run-time input.
    func testConstantWeightsGiveTheSameBitsAsInputs() throws {
        var rng = TestRandom(seed: 21)
        let a = floats([5, 37], rng.floats(5 * 37))
        let bt = floats([40, 37], rng.floats(40 * 37))
        let c = floats([40], rng.floats(40))
        let attrs: [String: Attribute] = ["transB": .int(1), "alpha": .float(0.5)]
        let asInput = try runSingleNode(.gemm, inputs: [("a", a), ("b", bt), ("c", c)], attributes: attrs)[0]
        let asConstant = try runSingleNode(.gemm, inputs: [("a", a), ("b", bt), ("c", c)], constants: ["b": bt, "c": c], attributes: attrs)[0]
        XCTAssertEqual(asConstant.bytes, asInput.bytes)
        let x = floats([2, 3, 37], rng.floats(2 * 3 * 37))
        let w = floats([37, 40], rng.floats(37 * 40))
        let m1 = try runSingleNode(.matMul, inputs: [("x", x), ("w", w)])[0]
        let m2 = try runSingleNode(.matMul, inputs: [("x", x), ("w", w)], constants: ["w": w])[0]
        XCTAssertEqual(m1.shape, [2, 3, 40])
        XCTAssertEqual(m2.bytes, m1.bytes)
    }

    func testGemmTransposesAlphaBetaVectorBias() throws {
        // numpy: 0.5 * A.T @ B.T + 2.0 * C with C of shape [N]
        let a = floats([4, 3], [0.05, 1.8, -1.42, 1.79, -0.75, -0.31, 1.31, -0.36, 0.2, -1.89, 1.01, 0.15])
        let b = floats([5, 4], [-0.68, 1.15, -0.79, -0.19, -1.46, -0.39, -1.19, -0.95, 1.0, -0.88, -0.06, 1.92, 1.85, 0.9, 0.16, -0.89, -1.36, 1.88, 0.06, -1.54])
        let c = floats([5], [0.49, 1.11, 0.45, 1.67, -1.84])
        let y = try runSingleNode(.gemm, inputs: [("a", a), ("b", b), ("c", c)],
                                  attributes: ["transA": .int(1), "transB": .int(1), "alpha": .float(0.5), "beta": .float(2)])
        assertClose(y[0], floats([3, 5], [1.65435, 1.95275, -1.7163, 5.1376, -0.5368, -0.017, 0.7867, 3.1104, 4.18925, -6.3975, 1.1913, 3.1268, 0.4644, 1.83625, -3.1153]), rtol: 1e-4, atol: 1e-4)
        // C of shape [M, 1] broadcast along N, default alpha/beta.
        let c2 = floats([3, 1], [0.11, -0.16, -1.75])
        let y2 = try runSingleNode(.gemm, inputs: [("a", a), ("b", b), ("c", c2)], attributes: ["transA": .int(1), "transB": .int(1)])
        assertClose(y2[0], floats([3, 5], [1.4587, -0.4245, -5.1226, 3.7052, 6.3964, -2.154, -3.0266, 4.2608, 1.5385, -5.595, -1.3274, 0.0636, -2.6212, -4.7575, -0.6206]), rtol: 1e-4, atol: 1e-4)
        // No C.
        let y3 = try runSingleNode(.gemm, inputs: [("a", floats([1, 2], [1, 2])), ("b", floats([2, 2], [3, 4, 5, 6]))])
        assertClose(y3[0], floats([1, 2], [13, 16]))
    }

    func testGemmDoubleAndInt64() throws {
        let a = Tensor(shape: [2, 2], values: [1.5, 2.0] + [3.0, -1.0] as [Double])
        let b = Tensor(shape: [2, 1], values: [2.0, 4.0] as [Double])
        let y = try runSingleNode(.gemm, inputs: [("a", a), ("b", b), ("c", Tensor(shape: [1], values: [0.25] as [Double]))])
        XCTAssertEqual(y[0].dtype, .f64)
        XCTAssertEqual(y[0].doubles, [11.25, 2.25])
        let ai = int64s([1, 2], [3_000_000_000, 2])
        let bi = int64s([2, 1], [3, 5])
        let yi = try runSingleNode(.gemm, inputs: [("a", ai), ("b", bi)])
        XCTAssertEqual(yi[0].int64s, [9_000_000_010])
    }

    func testMatMulBatchBroadcastAndVectors() throws {
        let a = floats([2, 1, 2, 3], [0.57, 1.41, 0.37, -0.96, 1.36, 0.04, 0.04, 1.01, -1.41, 1.28, 0.73, 1.15])
        let b = floats([3, 3, 2], [-1.23, 1.21, -1.23, -1.67, 1.42, 1.45, 1.51, -0.11, -0.9, -1.97, 0.58, 0.88, 1.34, -0.87, -1.14, 0.56, 1.22, 1.85])
        let y = try runSingleNode(.matMul, inputs: [("a", a), ("b", b)])
        assertClose(y[0], floats([2, 3, 2, 2], [-1.91, -1.1285, -0.4352, -3.3748, -0.1937, -2.5148, -2.6504, -2.5384, -0.3922, 0.9782, -2.788, 1.6708, -3.2937, -3.6828, -0.8393, 1.9972, -1.6664, -3.2349, 1.9428, -0.5669, -2.818, -2.0777, 2.286, 1.4227]), rtol: 1e-4, atol: 1e-4)
        let v = floats([3], [-1.4, -0.07, 1.58])
        let vb = try runSingleNode(.matMul, inputs: [("v", v), ("b", b)])
        assertClose(vb[0], floats([3, 2], [4.0517, 0.7139, -1.1346, 1.6823, 0.1314, 4.1018]), rtol: 1e-4, atol: 1e-4)
        let av = try runSingleNode(.matMul, inputs: [("a", a), ("v", v)])
        assertClose(av[0], floats([2, 1, 2], [-0.3121, 1.312, -2.3545, -0.0261]), rtol: 1e-4, atol: 1e-4)
        let dot = try runSingleNode(.matMul, inputs: [("v", v), ("w", v)])
        assertClose(dot[0], floats([], [1.96 + 0.0049 + 2.4964]), rtol: 1e-5)
    }

    func testMatMulFoldedBatchAndInt() throws {
        // [2,2,2] x [2,2] takes the folded single-GEMM path.
        let a = floats([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])
        let b = floats([2, 2], [1, 0, 1, 1])
        let y = try runSingleNode(.matMul, inputs: [("a", a), ("b", b)])
        assertClose(y[0], floats([2, 2, 2], [3, 2, 7, 4, 11, 6, 15, 8]))
        let yi = try runSingleNode(.matMul, inputs: [("a", int64s([1, 2], [1 << 40, 3])), ("b", int64s([2, 1], [2, 7]))])
        XCTAssertEqual(yi[0].dtype, .i64)
        XCTAssertEqual(yi[0].int64s, [(1 << 41) + 21])
    }

    func testMatMulRejectsMismatchedInner() {
        XCTAssertThrowsError(try runSingleNode(.matMul, inputs: [("a", floats([2, 3], [Float](repeating: 0, count: 6))), ("b", floats([2, 2], [0, 0, 0, 0]))]))
    }
}

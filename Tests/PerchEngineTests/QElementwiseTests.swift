import CPerchShims
import PerchGraph
import XCTest

@testable import PerchEngine

/// The SIMD elementwise kernels of CPerchElementwise.h against their scalar references (bit for
/// bit where the header promises it), and the QLinearAdd / QLinearMul paths (scalar operand
/// tables, SIMD Mul, pair table, threads) against the element-wise TFLite formulas.
final class QElementwiseKernelTests: XCTestCase {
    let simd = VectorISA.best()
    /// The AVX2 kernels alone (on an AVX-512 machine `best()` never picks them).
    var avx2: VectorISA? {
        #if arch(x86_64)
        if Int8GEMM.availableISAs().contains(.avx2) { return VectorISA(avx512: false, avx512vbmi: false, avx2: true, neon: false) }
        #endif
        return nil
    }
    var isas: [VectorISA] { [simd] + (avx2.map { [$0] } ?? []) }

    func bytes(_ n: Int, _ rng: inout SplitMix) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }

    func testLookupMatchesScalar() {
        var rng = SplitMix(seed: 7)
        let table = bytes(256, &rng)
        for n in [1, 15, 63, 64, 65, 200, 1000] {
            let src = bytes(n, &rng)
            var b = [UInt8](repeating: 0, count: n)
            VectorISA.scalar.lookup(src, n, table, &b)
            XCTAssertEqual(b, src.map { table[Int($0)] })
            for isa in isas {
                var a = [UInt8](repeating: 0, count: n)
                isa.lookup(src, n, table, &a)
                XCTAssertEqual(a, b, "n=\(n) \(isa)")
            }
        }
    }

    func testQMulMatchesScalar() {
        var rng = SplitMix(seed: 8)
        for (aS, bS, shift) in [(false, false, Int32(-9)), (true, true, -14), (false, true, 2), (true, false, -31)] {
            let n = 257
            let a = bytes(n, &rng), b = bytes(n, &rng)
            let q = QuantizedMultiplier(multiplier: 1_500_000_000 + Int32(rng.next() % 600_000_000), shift: shift)
            var y = [UInt8](repeating: 0, count: n)
            VectorISA.scalar.qmul(a, aSigned: aS, za: 3, b, bSigned: bS, zb: -7, n, q, zy: 5, lo: aS ? -128 : 0, hi: aS ? 127 : 255, &y)
            for isa in isas {
                var x = [UInt8](repeating: 0, count: n)
                isa.qmul(a, aSigned: aS, za: 3, b, bSigned: bS, zb: -7, n, q, zy: 5, lo: aS ? -128 : 0, hi: aS ? 127 : 255, &x)
                XCTAssertEqual(x, y, "signed \(aS) \(bS) shift \(shift) \(isa)")
            }
        }
    }

    func testQuantizeDequantizeMatchScalar() {
        var rng = SplitMix(seed: 9)
        let n = 301
        var f = (0..<n).map { _ in Float(Int(rng.next() % 4000) - 2000) * 0.0123 }
        f[3] = .nan; f[4] = .infinity; f[5] = -.infinity; f[6] = 0.025; f[7] = -0.075  // ties at scale 0.05
        for isa in isas {
        for (lo, hi, z) in [(Float(0), Float(255), Float(128)), (-128, 127, -3)] {
            var a = [UInt8](repeating: 0, count: n), b = a
            isa.quantize(f, n, scale: 0.05, zero: z, lo: lo, hi: hi, &a)
            VectorISA.scalar.quantize(f, n, scale: 0.05, zero: z, lo: lo, hi: hi, &b)
            XCTAssertEqual(a, b)
        }
        }
        let codes = bytes(n, &rng)
        for isa in isas {
        for signed in [false, true] {
            var a = [Float](repeating: 0, count: n), b = a
            isa.dequantize(codes, signed: signed, n, zero: 7, scale: 0.031, &a)
            VectorISA.scalar.dequantize(codes, signed: signed, n, zero: 7, scale: 0.031, &b)
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
            XCTAssertEqual(b[1], Float((signed ? Int32(Int8(bitPattern: codes[1])) : Int32(codes[1])) - 7) * 0.031)
        }
        }
    }

    func testExpPolynomialMatchesScalarAndLibm() throws {
        let xs = (0..<2000).map { Float($0) * 0.0875 - 90 } + [0, -0.0, 1e-8, -1e-8, 88, -87, -.infinity]
        var simdOut = [Float](repeating: 0, count: xs.count)
        #if arch(x86_64)
        if simd.avx512 { perch_expf_avx512(xs, xs.count, &simdOut) } else { simdOut = xs.map { perch_expf_poly($0) } }
        if avx2 != nil {
            var out2 = [Float](repeating: 0, count: xs.count)
            perch_expf_avx2(xs, xs.count, &out2)
            XCTAssertEqual(out2.map(\.bitPattern), xs.map { perch_expf_poly($0).bitPattern })
        }
        #else
        simdOut = xs.map { perch_expf_poly($0) }
        #endif
        for (i, x) in xs.enumerated() {
            let s = perch_expf_poly(x)
            XCTAssertEqual(simdOut[i].bitPattern, s.bitPattern, "x=\(x)")
            if x >= -87 && x <= 88 {
                let ref = exp(Double(x))
                XCTAssertLessThanOrEqual(abs(Double(s) - ref) / ref, 3e-7, "x=\(x)")
            } else if x < -87 {
                XCTAssertEqual(s, 0)
            }
        }
        XCTAssertTrue(perch_expf_poly(.nan).isNaN)
    }

    func testSoftmaxAndLayerNormRowsMatchDouble() {
        var rng = SplitMix(seed: 10)
        for n in [1, 16, 37, 64, 128, 1000] {
            let x = (0..<n).map { _ in Float(Int(rng.next() % 2000) - 1000) * 0.01 }
            for isa in isas + [VectorISA.scalar] {
                var y = [Float](repeating: 0, count: n)
                isa.softmaxRow(x, &y, n)
                let m = Double(x.max()!)
                let e = x.map { exp(Double($0) - m) }
                let s = e.reduce(0, +)
                for i in 0..<n { XCTAssertEqual(Double(y[i]), e[i] / s, accuracy: 1e-6, "softmax n=\(n)") }

                let g = (0..<n).map { Float($0 % 7) * 0.3 - 0.5 }, bias = (0..<n).map { Float($0 % 5) * 0.1 }
                var z = [Float](repeating: 0, count: n)
                let (mean, inv) = isa.layerNormRow(x, n, scale: g, bias: bias, epsilon: 1e-5, &z)
                let dm = x.reduce(0.0) { $0 + Double($1) } / Double(n)
                let dv = x.reduce(0.0) { $0 + (Double($1) - dm) * (Double($1) - dm) } / Double(n)
                let di = 1 / (dv + 1e-5).squareRoot()
                XCTAssertEqual(Double(mean), dm, accuracy: 1e-5)
                XCTAssertEqual(Double(inv), di, accuracy: 1e-4 * di)
                for i in 0..<n {
                    XCTAssertEqual(Double(z[i]), (Double(x[i]) - dm) * di * Double(g[i]) + Double(bias[i]), accuracy: 1e-4, "layernorm n=\(n)")
                }
            }
        }
    }
}

final class QElementwiseOperatorTests: XCTestCase {
    /// QLinearAdd/Mul over the paths the operator picks by shape: a one-element operand (a constant:
    /// table at prepare time; a graph input: table per run), two full tensors (SIMD Mul, pair table
    /// for Add), a broadcast row, small tensors (term tables), with 1 and 2 threads.
    func testQLinearAddMulPathsMatchTheElementwiseFormulas() throws {
        var rng = SplitMix(seed: 52)
        let cases: [([Int], [Int], Bool)] = [
            ([2, 64, 160], [], true), ([2, 64, 160], [], false), ([1], [4, 100], false),
            ([2, 64, 160], [2, 64, 160], false), ([2, 64, 160], [160], false), ([3, 50], [3, 50], false), ([3, 50], [1], true),
            ([4, 64, 160], [], true),  // a lookup large enough to split over 2 threads
        ]
        for op in [OpType.qLinearAdd, .qLinearMul] {
            for dtype in [DType.u8, .i8] {
                for (aShape, bShape, bConstant) in cases {
                    for threads in [1, 2] {
                        let a = Tensor(dtype: dtype, shape: aShape, bytes: (0..<aShape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                        let b = Tensor(dtype: dtype, shape: bShape, bytes: (0..<bShape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                        try check(op, dtype, a, b, bConstant: bConstant, threads: threads)
                        // The scalar operand first.
                        if bShape.reduce(1, *) == 1 { try check(op, dtype, b, a, bConstant: false, threads: threads) }
                    }
                }
            }
        }
    }

    func check(_ op: OpType, _ dtype: DType, _ a: Tensor, _ b: Tensor, bConstant: Bool, threads: Int) throws {
        let (sa, sb, sy): (Float, Float, Float) = (0.02, 0.013, op == .qLinearAdd ? 0.03 : 0.005)
        let zero: (Int) -> Tensor = { v in dtype == .u8 ? Tensor(shape: [], values: [UInt8(v)]) : Tensor(shape: [], values: [Int8(v)]) }
        let (za, zb, zy) = (dtype == .u8 ? 100 : -28, dtype == .u8 ? 140 : 12, dtype == .u8 ? 120 : -8)
        var consts: [String: Tensor] = ["as": Tensor(shape: [], values: [sa]), "az": zero(za), "bs": Tensor(shape: [], values: [sb]),
                                        "bz": zero(zb), "ys": Tensor(shape: [], values: [sy]), "yz": zero(zy)]
        let outShape = BroadcastPlan.broadcastShape([a.shape, b.shape])!
        let node = Node(name: "q", op: op, inputs: ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], outputs: ["y"])
        var inputs = [ValueInfo(name: "a", type: TensorType(dtype: dtype, shape: a.shape))]
        var feeds = ["a": a]
        if bConstant {
            consts["b"] = b
        } else {
            inputs.append(ValueInfo(name: "b", type: TensorType(dtype: dtype, shape: b.shape)))
            feeds["b"] = b
        }
        var g = Graph(name: "t", nodes: [node], inputs: inputs, outputs: [ValueInfo(name: "y", type: TensorType(dtype: dtype, shape: outShape))])
        g.initializers = consts
        let y = try XCTUnwrap(try Session(graph: g, options: SessionOptions(threads: threads)).run(feeds)["y"]).int64s
        let plan = BroadcastPlan(shapes: [a.shape, b.shape], to: outShape)
        let av = a.int64s, bv = b.int64s
        let (lo, hi) = quantizedRange(dtype)
        for o in 0..<plan.outer {
            for i in 0..<plan.inner {
                let xa = Int32(av[plan.rowOffsets[0][o] + i * plan.innerStrides[0]]) - Int32(za)
                let yb = Int32(bv[plan.rowOffsets[1][o] + i * plan.innerStrides[1]]) - Int32(zb)
                let expected = tfliteQLinearBinary(op, xa, yb, sa: sa, sb: sb, sy: sy, zy: Int32(zy), lo: lo, hi: hi)
                if y[o * plan.inner + i] != expected {
                    XCTFail("\(op) \(dtype) \(a.shape)×\(b.shape) threads \(threads) at \(o * plan.inner + i): \(y[o * plan.inner + i]) ≠ \(expected)")
                    return
                }
            }
        }
    }
}

/// QLookupMulFusion: QLinearMul(x, QLinearLookup(x)) — a quantized SiLU — becomes one lookup
/// giving the pair's bits for every code (uint8 and int8, either operand order, a Sigmoid
/// function lookup and a precomputed table); a lookup on another scale is left alone.
final class QLookupMulFusionTests: XCTestCase {
    func graph(_ dtype: DType, lookupFirst: Bool, lookupScale: Float = 0.05, tableLookup: Bool = false) -> Graph {
        let zero: (Int) -> Tensor = { v in dtype == .u8 ? Tensor(shape: [], values: [UInt8(v)]) : Tensor(shape: [], values: [Int8(v)]) }
        let (zx, zs, zy) = dtype == .u8 ? (128, 0, 30) : (0, -128, -98)
        var lookupInputs = ["x", "ls", "xz", "ss", "sz"]
        var attrs = Attributes(["function": .string("Sigmoid")])
        if tableLookup {
            lookupInputs.append("t")
            attrs = Attributes(["function": .string("Table")])
        }
        let lookup = Node(name: "sig", op: .qLinearLookup, inputs: lookupInputs, outputs: ["s"], attributes: attrs)
        let mulInputs = lookupFirst ? ["s", "ss", "sz", "x", "xs", "xz", "ys", "yz"] : ["x", "xs", "xz", "s", "ss", "sz", "ys", "yz"]
        let mul = Node(name: "mul", op: .qLinearMul, inputs: mulInputs, outputs: ["y"])
        var g = Graph(name: "silu", nodes: [lookup, mul], inputs: [ValueInfo(name: "x", type: TensorType(dtype: dtype, shape: [4, 300]))],
                      outputs: [ValueInfo(name: "y", type: TensorType(dtype: dtype, dims: []))])
        g.initializers = ["xs": Tensor(shape: [], values: [Float(0.05)]), "ls": Tensor(shape: [], values: [lookupScale]), "xz": zero(zx),
                          "ss": Tensor(shape: [], values: [Float(1.0 / 256)]), "sz": zero(zs),
                          "ys": Tensor(shape: [], values: [Float(0.027)]), "yz": zero(zy),
                          "t": Tensor(dtype: .u8, shape: [256], bytes: (0..<256).map { UInt8(($0 * 37 + 11) % 256) })]
        return g
    }

    func testFusedLookupGivesThePairsBits() throws {
        var rng = SplitMix(seed: 77)
        for dtype in [DType.u8, .i8] {
            let x = Tensor(dtype: dtype, shape: [4, 300], bytes: (0..<1200).map { $0 < 256 ? UInt8($0) : UInt8(truncatingIfNeeded: rng.next()) })
            for lookupFirst in [false, true] {
                for tableLookup in [false, true] {
                    let g = graph(dtype, lookupFirst: lookupFirst, tableLookup: tableLookup)
                    let fused = try Session(graph: g)
                    XCTAssertEqual(fused.graph.nodes.map(\.op), [.qLinearLookup], "\(dtype) lookup first \(lookupFirst)")
                    let want = try Session(graph: g, options: SessionOptions(fuseQuantized: false)).run(["x": x])["y"]!
                    let got = try fused.run(["x": x])["y"]!
                    XCTAssertEqual(got.dtype, dtype)
                    XCTAssertEqual(got.bytes, want.bytes, "\(dtype) lookup first \(lookupFirst) table \(tableLookup)")
                    XCTAssertGreaterThan(Set(got.bytes).count, 40, "a real curve, not a constant")
                }
            }
        }
        let other = try Session(graph: graph(.u8, lookupFirst: false, lookupScale: 0.06))
        XCTAssertEqual(other.graph.nodes.map(\.op), [.qLinearLookup, .qLinearMul], "another scale on the lookup's input: kept")
    }
}

/// QLinearMatMul with B computed at run time (QLinearMatMulDynamic) against the integer
/// definition, and the QDQ fusion of an activation × activation MatMul against the fake-quant graph.
final class QLinearMatMulDynamicTests: XCTestCase {
    func testRunTimeBMatchesTheIntegerDefinition() throws {
        var rng = SplitMix(seed: 61)
        let cases: [([Int], [Int])] = [([4, 64, 32], [4, 32, 64]), ([2, 5, 70], [2, 70, 33]), ([3, 7, 9], [9, 40]), ([6, 10], [2, 10, 12])]
        for (aType, bType) in [(DType.u8, DType.u8), (.i8, .i8), (.u8, .i8), (.i8, .u8)] {
            for (aShape, bShape) in cases {
                let a = Tensor(dtype: aType, shape: aShape, bytes: (0..<aShape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let b = Tensor(dtype: bType, shape: bShape, bytes: (0..<bShape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let zero: (DType, Int) -> Tensor = { t, v in t == .u8 ? Tensor(shape: [], values: [UInt8(v + 128)]) : Tensor(shape: [], values: [Int8(v)]) }
                let (sa, sb, sy): (Float, Float, Float) = (0.011, 0.02, 0.7)
                let (za, zb, zy) = (-9, 14, 3)
                let node = Node(name: "mm", op: .qLinearMatMul, inputs: ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], outputs: ["y"])
                let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1], n = bShape[bShape.count - 1]
                let batch = max(aShape.dropLast(2).reduce(1, *), bShape.dropLast(2).reduce(1, *))
                let outShape = (aShape.count >= bShape.count ? Array(aShape.dropLast(2)) : Array(bShape.dropLast(2))) + [m, n]
                var g = Graph(name: "t", nodes: [node],
                              inputs: [ValueInfo(name: "a", type: TensorType(dtype: aType, shape: aShape)),
                                       ValueInfo(name: "b", type: TensorType(dtype: bType, shape: bShape))],
                              outputs: [ValueInfo(name: "y", type: TensorType(dtype: .u8, shape: outShape))])
                g.initializers = ["as": Tensor(shape: [], values: [sa]), "az": zero(aType, za), "bs": Tensor(shape: [], values: [sb]),
                                  "bz": zero(bType, zb), "ys": Tensor(shape: [], values: [sy]), "yz": zero(.u8, zy)]
                // 2 threads: the 4×(64×32×64) case splits its matrices between them.
                for threads in [1, 2] {
                    let y = try XCTUnwrap(try Session(graph: g, options: SessionOptions(threads: threads)).run(["a": a, "b": b])["y"])
                    XCTAssertEqual(y.shape, outShape)
                    let yv = y.int64s, av = a.int64s, bv = b.int64s
                    let aZ = Int64(za) + (aType == .u8 ? 128 : 0), bZ = Int64(zb) + (bType == .u8 ? 128 : 0)
                    let q = QuantizedMultiplier(Double(sa) * Double(sb) / Double(sy))
                    let aBatch = aShape.dropLast(2).reduce(1, *), bBatch = bShape.dropLast(2).reduce(1, *)
                    var bad = 0
                    for bi in 0..<batch {
                        for r in 0..<m {
                            for c in 0..<n {
                                var acc: Int64 = 0
                                for i in 0..<k {
                                    acc += (av[(aBatch == 1 ? 0 : bi) * m * k + r * k + i] - aZ) * (bv[(bBatch == 1 ? 0 : bi) * k * n + i * n + c] - bZ)
                                }
                                let v = min(max(multiplyByQuantizedMultiplier(Int32(acc), q) + Int32(zy + 128), 0), 255)
                                if yv[bi * m * n + r * n + c] != Int64(v) { bad += 1 }
                            }
                        }
                    }
                    XCTAssertEqual(bad, 0, "\(aType)×\(bType) \(aShape)×\(bShape) threads \(threads)")
                }
            }
        }
    }

    /// A constant-B QLinearMatMul with a few rows (a classifier's GEMV: AVX2 packs B in column
    /// panels) against the integer definition: ragged panel tails, K not a multiple of 4, per-column
    /// scales, 1 and 2 threads (column ranges at panel boundaries).
    func testFewRowsConstantBMatchesTheIntegerDefinition() throws {
        var rng = SplitMix(seed: 64)
        // (64, 128, 128): a transformer's projection, 1M MACs, which row blocks split over 2 threads.
        for (m, k, n) in [(1, 1280, 1000), (2, 37, 13), (3, 5, 25), (1, 8, 12), (1, 3, 1), (2, 700, 389), (64, 128, 128)] {
            let a = Tensor(dtype: .u8, shape: [m, k], bytes: (0..<(m * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let w = Tensor(dtype: .i8, shape: [k, n], bytes: (0..<(k * n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let scales = (0..<n).map { j in Float(0.004 + 0.0001 * Float(j % 17)) }
            let node = Node(name: "mm", op: .qLinearMatMul, inputs: ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], outputs: ["y"])
            var g = Graph(name: "t", nodes: [node], inputs: [ValueInfo(name: "a", type: TensorType(dtype: .u8, shape: [m, k]))],
                          outputs: [ValueInfo(name: "y", type: TensorType(dtype: .u8, shape: [m, n]))])
            g.initializers = ["as": Tensor(shape: [], values: [Float(0.01)]), "az": Tensor(shape: [], values: [UInt8(120)]), "w": w,
                              "ws": Tensor(shape: [n], values: scales), "wz": Tensor(shape: [n], values: [Int8](repeating: 0, count: n)),
                              "ys": Tensor(shape: [], values: [Float(Double(k).squareRoot() * 0.05)]), "yz": Tensor(shape: [], values: [UInt8(128)])]
            let av = a.int64s, wv = w.int64s
            for threads in [1, 2] {
                let y = try XCTUnwrap(try Session(graph: g, options: SessionOptions(threads: threads)).run(["a": a])["y"]).int64s
                var bad = 0
                for r in 0..<m {
                    for c in 0..<n {
                        var acc: Int64 = 0
                        for i in 0..<k { acc += (av[r * k + i] - 120) * wv[i * n + c] }
                        let q = QuantizedMultiplier(Double(Float(0.01)) * Double(scales[c]) / Double(Float(Double(k).squareRoot() * 0.05)))
                        let v = min(max(multiplyByQuantizedMultiplier(Int32(acc), q) + 128, 0), 255)
                        if y[r * n + c] != Int64(v) { bad += 1 }
                    }
                }
                XCTAssertEqual(bad, 0, "\(m)×\(k)×\(n) threads \(threads)")
            }
        }
    }

    /// A constant-B QLinearMatMul above the threading threshold (256×256×128 ≈ 8.4M MACs): row
    /// blocks split over 2 and 3 threads give the bytes 1 thread gives; and so do the column
    /// ranges threads take on a classifier-like GEMV (1×1000 by 1000×700) and a few rows (3×640 by 640×520).
    func testLargeQLinearMatMulGivesTheSameBytesOnMoreThreads() throws {
        var rng = SplitMix(seed: 63)
        for (m, k, n) in [(256, 256, 128), (1, 1000, 700), (3, 640, 520)] {
            let a = Tensor(dtype: .u8, shape: [m, k], bytes: (0..<(m * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let w = Tensor(dtype: .i8, shape: [k, n], bytes: (0..<(k * n)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 64) })
            let node = Node(name: "mm", op: .qLinearMatMul, inputs: ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], outputs: ["y"])
            var g = Graph(name: "t", nodes: [node], inputs: [ValueInfo(name: "a", type: TensorType(dtype: .u8, shape: [m, k]))],
                          outputs: [ValueInfo(name: "y", type: TensorType(dtype: .u8, shape: [m, n]))])
            g.initializers = ["as": Tensor(shape: [], values: [Float(0.01)]), "az": Tensor(shape: [], values: [UInt8(128)]), "w": w,
                              "ws": Tensor(shape: [], values: [Float(0.02)]), "wz": Tensor(shape: [], values: [Int8(0)]),
                              "ys": Tensor(shape: [], values: [Float(0.5)]), "yz": Tensor(shape: [], values: [UInt8(128)])]
            let one = try XCTUnwrap(try Session(graph: g).run(["a": a])["y"])
            XCTAssertGreaterThan(Set(one.bytes).count, 10)
            for t in [2, 3] {
                XCTAssertEqual(try XCTUnwrap(try Session(graph: g, options: SessionOptions(threads: t)).run(["a": a])["y"]).bytes, one.bytes,
                               "\(m)×\(k)×\(n) on \(t) threads")
            }
        }
    }

    /// DQ(a), DQ(b) → MatMul → Q with both operands graph inputs: fused to one QLinearMatMul, within
    /// one quantization step of the float MatMul the unfused graph runs.
    func testActivationMatMulIsFusedAndAgreesWithFakeQuant() throws {
        var rng = SplitMix(seed: 62)
        let aShape = [2, 16, 24], bShape = [2, 24, 20]
        let a = Tensor(dtype: .u8, shape: aShape, bytes: (0..<aShape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let b = Tensor(dtype: .i8, shape: bShape, bytes: (0..<bShape.reduce(1, *)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let nodes = [
            Node(name: "dqa", op: .dequantizeLinear, inputs: ["a", "as", "az"], outputs: ["af"]),
            Node(name: "dqb", op: .dequantizeLinear, inputs: ["b", "bs", "bz"], outputs: ["bf"]),
            Node(name: "mm", op: .matMul, inputs: ["af", "bf"], outputs: ["yf"]),
            Node(name: "q", op: .quantizeLinear, inputs: ["yf", "ys", "yz"], outputs: ["y"]),
        ]
        var g = Graph(name: "t", nodes: nodes,
                      inputs: [ValueInfo(name: "a", type: TensorType(dtype: .u8, shape: aShape)),
                               ValueInfo(name: "b", type: TensorType(dtype: .i8, shape: bShape))],
                      outputs: [ValueInfo(name: "y", type: TensorType(dtype: .u8, shape: [2, 16, 20]))])
        g.initializers = ["as": Tensor(shape: [], values: [Float(0.01)]), "az": Tensor(shape: [], values: [UInt8(120)]),
                          "bs": Tensor(shape: [], values: [Float(0.02)]), "bz": Tensor(shape: [], values: [Int8(-3)]),
                          "ys": Tensor(shape: [], values: [Float(0.25)]), "yz": Tensor(shape: [], values: [UInt8(128)])]
        var fused = g
        QDQFusion.apply(&fused)
        XCTAssertEqual(fused.nodes.map(\.op), [.qLinearMatMul])
        let y = try XCTUnwrap(try Session(graph: g).run(["a": a, "b": b])["y"]).int64s
        let ref = try XCTUnwrap(try Session(graph: g, options: SessionOptions(fuseQuantized: false)).run(["a": a, "b": b])["y"]).int64s
        XCTAssertEqual(y.count, ref.count)
        XCTAssertLessThanOrEqual(zip(y, ref).map { abs($0 - $1) }.max() ?? 99, 1)
    }
}

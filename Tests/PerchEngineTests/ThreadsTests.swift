@testable import PerchEngine
import CPerchShims
import PerchGraph
import XCTest

final class ThreadsTests: XCTestCase {
    func testThreadPoolRunsEveryIndexOnce() {
        let pool = ThreadPool(threads: 3)
        for count in [1, 2, 3, 7, 100] {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
            hits.initialize(repeating: 0, count: count)
            for _ in 0..<50 {
                pool.parallelFor(count) { i in hits[i] += 1 }
            }
            for i in 0..<count { XCTAssertEqual(hits[i], 50, "count \(count) index \(i)") }
            hits.deallocate()
        }
    }

    func testSplitRangeCoversAlignedParts() {
        XCTAssertEqual((0..<3).map { splitRange(100, parts: 3, part: $0, align: 16) }, [0..<32, 32..<64, 64..<100])
        XCTAssertEqual((0..<2).map { splitRange(5, parts: 2, part: $0) }, [0..<2, 2..<5])
    }

    /// A small CNN + MLP head: conv 3×3 → relu → depthwise 3×3 → pointwise → global pool →
    /// Gemm → MatMul. Every fp32 kernel that splits work across threads must give bit-identical
    /// results with 1 and N threads (each output element sees the same operations in the same order).
    func testOneAndManyThreadsGiveIdenticalResults() throws {
        var rng = TestRandom(seed: 5)
        func weight(_ shape: [Int]) -> Tensor { floats(shape, rng.floats(elementCount(shape))) }
        var g = Graph(name: "threads")
        g.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 8, 30, 33]))]
        g.initializers = [
            "w1": weight([32, 8, 3, 3]), "b1": weight([32]),
            "w2": weight([32, 1, 3, 3]), "b2": weight([32]),
            "w3": weight([48, 32, 1, 1]),
            "w4": weight([48, 40]), "b4": weight([40]),
            "w5": weight([40, 70]),
        ]
        g.nodes = [
            Node(name: "c1", op: .conv, inputs: ["x", "w1", "b1"], outputs: ["c1"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])),
            Node(name: "r1", op: .relu, inputs: ["c1"], outputs: ["r1"]),
            Node(name: "c2", op: .conv, inputs: ["r1", "w2", "b2"], outputs: ["c2"], attributes: Attributes(["group": .int(32), "pads": .ints([1, 1, 1, 1])])),
            Node(name: "c3", op: .conv, inputs: ["c2", "w3"], outputs: ["c3"]),
            Node(name: "p", op: .globalAveragePool, inputs: ["c3"], outputs: ["p"]),
            Node(name: "f", op: .flatten, inputs: ["p"], outputs: ["f"]),
            Node(name: "gm", op: .gemm, inputs: ["f", "w4", "b4"], outputs: ["gm"]),
            Node(name: "mm", op: .matMul, inputs: ["gm", "w5"], outputs: ["y"]),
            Node(name: "mm2", op: .matMul, inputs: ["c3", "w3t"], outputs: ["z"]),
            // A grouped 1×1 conv whose groups are too small to split: groups go to threads.
            Node(name: "c4", op: .conv, inputs: ["c3", "w6", "b6"], outputs: ["g"], attributes: Attributes(["group": .int(4)])),
        ]
        g.initializers["w6"] = weight([24, 12, 1, 1])
        g.initializers["b6"] = weight([24])
        // Taller than wide (1000 outputs, 990 pixels) with packed weights: column blocks. And a
        // 3×3 one (implicit im2col B, 600 outputs on 990 pixels).
        g.nodes.append(Node(name: "c5", op: .conv, inputs: ["c3", "w7"], outputs: ["tall"]))
        g.initializers["w7"] = weight([1000, 48, 1, 1])
        g.nodes.append(Node(name: "c6", op: .conv, inputs: ["c3", "w8"], outputs: ["tall3"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])))
        g.initializers["w8"] = weight([600, 48, 3, 3])
        // 1440×33×192 ≈ 9M MACs: above sgemmParallel's threshold for splitting.
        g.initializers["w3t"] = weight([33, 192])
        g.outputs = ["y", "z", "g", "tall", "tall3"].map { ValueInfo(name: $0, type: TensorType(dtype: .f32, dims: [])) }
        let x = weight([1, 8, 30, 33])
        let one = try Session(graph: g).run(["x": x])
        for threads in [2, 3] {
            let many = try Session(graph: g, options: SessionOptions(threads: threads)).run(["x": x])
            for name in ["y", "z", "g", "tall", "tall3"] {
                XCTAssertEqual(one[name]!.shape, many[name]!.shape)
                XCTAssertEqual(one[name]!.bytes, many[name]!.bytes, "\(name) differs with \(threads) threads")
            }
        }
        // And the result is right: compare the conv chain's first stage with the reference kernel.
        XCTAssertEqual(one["y"]!.shape, [1, 70])
        XCTAssertEqual(one["z"]!.shape, [1, 48, 30, 192])
    }

    /// Small layers at the sizes where they now split across threads: an encoder's attention and
    /// FFN pieces (4 heads of 64×32 by 32×64 as whole batches per thread, a 4×64×64 softmax by rows,
    /// a 64×512 GELU by ranges; QLinearSoftmax and QLinearMul likewise) and a detector's 32K-element
    /// Sigmoid: the bytes of 1 thread on 2 and 3, and the float results against their definitions.
    func testSmallLayersGiveTheSameBytesOnMoreThreads() throws {
        var rng = TestRandom(seed: 23)
        var g = Graph(name: "attention")
        g.inputs = [ValueInfo(name: "q", type: TensorType(dtype: .f32, shape: [1, 4, 64, 32])),
                    ValueInfo(name: "k", type: TensorType(dtype: .f32, shape: [1, 4, 32, 64])),
                    ValueInfo(name: "h", type: TensorType(dtype: .f32, shape: [64, 512])),
                    ValueInfo(name: "c", type: TensorType(dtype: .u8, shape: [4, 64, 64])),
                    ValueInfo(name: "d", type: TensorType(dtype: .u8, shape: [64, 512]))]
        g.initializers = ["xs": Tensor(shape: [], values: [Float(0.05)]), "xz": Tensor(shape: [], values: [UInt8(128)]),
                          "ys": Tensor(shape: [], values: [Float(1.0 / 256)]), "yz": Tensor(shape: [], values: [UInt8(0)]),
                          "ms": Tensor(shape: [], values: [Float(0.3)]), "mz": Tensor(shape: [], values: [UInt8(100)])]
        g.nodes = [
            Node(name: "s", op: .matMul, inputs: ["q", "k"], outputs: ["s"]),
            Node(name: "p", op: .softmax, inputs: ["s"], outputs: ["p"], attributes: Attributes(["axis": .int(-1)])),
            Node(name: "gelu", op: .gelu, inputs: ["h"], outputs: ["g"]),
            Node(name: "sig", op: .sigmoid, inputs: ["h"], outputs: ["sg"]),
            Node(name: "qs", op: .qLinearSoftmax, inputs: ["c", "xs", "xz", "ys", "yz"], outputs: ["qs"],
                 attributes: Attributes(["axis": .int(-1), "opset": .int(13)])),
            Node(name: "qm", op: .qLinearMul, inputs: ["d", "xs", "xz", "c2", "xs", "xz", "ms", "mz"], outputs: ["qm"]),
        ]
        g.inputs.append(ValueInfo(name: "c2", type: TensorType(dtype: .u8, shape: [64, 512])))
        // fp32 elementwise ops past their 32K-element bar, on 3×7 rows of 1601 (thread ranges cut
        // rows): a per-row broadcast Add, a three-input Mean, a HardSwish.
        g.inputs += [ValueInfo(name: "e", type: TensorType(dtype: .f32, shape: [3, 7, 1601])),
                     ValueInfo(name: "eb", type: TensorType(dtype: .f32, shape: [7, 1]))]
        g.nodes += [Node(name: "ea", op: .add, inputs: ["e", "eb"], outputs: ["ea"]),
                    Node(name: "em", op: .mean, inputs: ["e", "ea", "eb"], outputs: ["em"]),
                    Node(name: "eh", op: .hardSwish, inputs: ["e"], outputs: ["eh"])]
        // A ConvTranspose whose col2im splits its 24 output channels: 2×2, stride 2, 40×40 → 80×80.
        g.inputs.append(ValueInfo(name: "t", type: TensorType(dtype: .f32, shape: [1, 24, 40, 40])))
        g.initializers["tw"] = floats([24, 24, 2, 2], rng.floats(24 * 24 * 4))
        g.initializers["tb"] = floats([24], rng.floats(24))
        g.nodes.append(Node(name: "ct", op: .convTranspose, inputs: ["t", "tw", "tb"], outputs: ["ct"],
                            attributes: Attributes(["strides": .ints([2, 2]), "kernel_shape": .ints([2, 2])])))
        // A nearest 2× Resize of it (rows split), and Concats along channels and along W.
        g.initializers["rs"] = floats([4], [1, 1, 2, 2])
        g.nodes += [Node(name: "up", op: .resize, inputs: ["t", "", "rs"], outputs: ["up"], attributes: Attributes(["mode": .string("nearest")])),
                    Node(name: "cc", op: .concat, inputs: ["up", "ct"], outputs: ["cc"], attributes: Attributes(["axis": .int(1)])),
                    Node(name: "cw", op: .concat, inputs: ["t", "t"], outputs: ["cw"], attributes: Attributes(["axis": .int(3)]))]
        let names = ["s", "p", "g", "sg", "qs", "qm", "ea", "em", "eh", "ct", "up", "cc", "cw"]
        g.outputs = names.map { ValueInfo(name: $0, type: TensorType(dtype: .f32, dims: [])) }
        func bytes(_ shape: [Int]) -> Tensor {
            Tensor(dtype: .u8, shape: shape, bytes: (0..<elementCount(shape)).map { _ in UInt8(truncatingIfNeeded: Int(rng.floats(1)[0] * 1000)) })
        }
        let feeds = ["q": floats([1, 4, 64, 32], rng.floats(4 * 64 * 32)), "k": floats([1, 4, 32, 64], rng.floats(4 * 32 * 64)),
                     "h": floats([64, 512], rng.floats(64 * 512)), "c": bytes([4, 64, 64]), "d": bytes([64, 512]), "c2": bytes([64, 512]),
                     "e": floats([3, 7, 1601], rng.floats(3 * 7 * 1601).map { $0 * 8 }), "eb": floats([7, 1], rng.floats(7)),
                     "t": floats([1, 24, 40, 40], rng.floats(24 * 1600))]
        let one = try Session(graph: g).run(feeds)
        for threads in [2, 3] {
            let many = try Session(graph: g, options: SessionOptions(threads: threads)).run(feeds)
            for name in names {
                let differing = zip(one[name]!.bytes, many[name]!.bytes).filter { $0 != $1 }.count
                XCTAssertEqual(differing, 0, "\(name): bytes differ with \(threads) threads")
            }
        }
        // The float results are the operators': each head's Q·K, rows of P summing to 1, x·Φ(x).
        let q = feeds["q"]!.floats, k = feeds["k"]!.floats, s = one["s"]!.floats, p = one["p"]!.floats
        var worst: Double = 0
        for b in 0..<4 { for i in 0..<64 { for j in 0..<64 {
            var want: Double = 0
            for t in 0..<32 { want += Double(q[(b * 64 + i) * 32 + t]) * Double(k[(b * 32 + t) * 64 + j]) }
            worst = Swift.max(worst, abs(Double(s[(b * 64 + i) * 64 + j]) - want))
        } } }
        XCTAssertLessThan(worst, 1e-4)
        for r in 0..<(4 * 64) { XCTAssertEqual(p[(r * 64)..<(r * 64 + 64)].reduce(0, +), 1, accuracy: 1e-4) }
        let h = feeds["h"]!.floats, gelu = one["g"]!.floats, sig = one["sg"]!.floats
        for i in stride(from: 0, to: h.count, by: 97) {
            let x = Double(h[i])
            XCTAssertEqual(Double(gelu[i]), x * 0.5 * (1 + erf(x / 2.0.squareRoot())), accuracy: 1e-5)
            XCTAssertEqual(Double(sig[i]), 1 / (1 + exp(-x)), accuracy: 1e-6)
        }
        let e = feeds["e"]!.floats, eb = feeds["eb"]!.floats, ea = one["ea"]!.floats, em = one["em"]!.floats, eh = one["eh"]!.floats
        for i in stride(from: 0, to: e.count, by: 89) {
            let x = Double(e[i]), bias = Double(eb[(i / 1601) % 7])
            XCTAssertEqual(Double(ea[i]), x + bias, accuracy: 1e-5)
            XCTAssertEqual(Double(em[i]), (x + (x + bias) + bias) / 3, accuracy: 1e-5)
            XCTAssertEqual(Double(eh[i]), x * Swift.max(0, Swift.min(1, x / 6 + 0.5)), accuracy: 1e-5)
        }
        // Each output of the 2×2/2 ConvTranspose has one tap: b[m] + Σ_c t[c][oh/2][ow/2]·w[c][m][oh%2][ow%2].
        let t = feeds["t"]!.floats, tw = g.initializers["tw"]!.floats, tb = g.initializers["tb"]!.floats, ct = one["ct"]!.floats
        for i in stride(from: 0, to: 24 * 6400, by: 61) {
            let m = i / 6400, oh = (i % 6400) / 80, ow = i % 80
            var want = Double(tb[m])
            for c in 0..<24 { want += Double(t[(c * 40 + oh / 2) * 40 + ow / 2]) * Double(tw[((c * 24 + m) * 2 + oh % 2) * 2 + ow % 2]) }
            XCTAssertEqual(Double(ct[i]), want, accuracy: 1e-4)
        }
        let up = one["up"]!.floats, cc = one["cc"]!.floats, cw = one["cw"]!.floats
        XCTAssertEqual(one["cc"]!.shape, [1, 48, 80, 80])
        XCTAssertEqual(one["cw"]!.shape, [1, 24, 40, 80])
        for i in stride(from: 0, to: 24 * 6400, by: 53) {
            let c = i / 6400, oh = (i % 6400) / 80, ow = i % 80
            XCTAssertEqual(up[i], t[(c * 40 + oh / 2) * 40 + ow / 2])  // nearest 2×: each source pixel twice each way
            XCTAssertEqual(cc[i], up[i])
            XCTAssertEqual(cc[24 * 6400 + i], ct[i])
        }
        for i in stride(from: 0, to: 24 * 3200, by: 29) {
            let c = i / 3200, h = (i % 3200) / 80, w = i % 80
            XCTAssertEqual(cw[i], t[(c * 40 + h) * 40 + w % 40])  // rows of t, then t again
        }
    }

    func testDepthwiseAgreesWithReferenceOnEveryEdge() throws {
        var rng = TestRandom(seed: 9)
        let pool = ThreadPool(threads: 2)
        // Widths around the 8- and 16-column vectors (whose last one overlaps the previous), both
        // strides, 3×3 and 5×5 (MobileNetV3/EfficientNet) kernels.
        for k in [3, 5] { for stride in [1, 2] { for (h, w, pad) in [(1, 1, 1), (2, 3, 1), (5, 9, 0), (7, 17, 1), (12, 31, 2), (4, 8, 1), (3, 2, 3),
                                                 (10, 10, 1), (6, 20, 1), (5, 23, 0), (4, 40, 1), (3, 37, 1)] where h + 2 * pad >= k && w + 2 * pad >= k {
            let x = floats([1, 5, h, w], rng.floats(5 * h * w))
            let wt = floats([5, 1, k, k], rng.floats(5 * k * k))
            let b = floats([5], rng.floats(5))
            let ctx = context(.conv, [x, wt, b], ["group": .int(5), "pads": .ints([pad, pad, pad, pad]), "strides": .ints([stride, stride])])
            let fast = try ConvOperator.prepareConv(ctx, reference: false)
            let ref = runPrepared(try ConvOperator.prepareConv(ctx, reference: true), [x, wt, b])
            assertClose(runPrepared(fast, [x, wt, b]), ref[0], "h \(h) w \(w) pad \(pad)")
            assertClose(runPrepared(fast, [x, wt, b], pool: pool), ref[0], "threaded h \(h) w \(w) pad \(pad)")
        } } }
    }

    /// The 16-channel tiled depthwise path (AVX-512, AVX2) is bit for bit the scalar reference kernel run
    /// channel by channel on padded planes: partial channel blocks, several row bands, strides 1–3,
    /// asymmetric pads, a fused Relu6, one and two threads.
    func testDepthwiseTilesAreBitExactWithScalarPlanes() throws {
        var rng = TestRandom(seed: 41)
        let pool = ThreadPool(threads: 2)
        let tilesApply = perch_sgemm_best() == Int32(PERCH_SGEMM_AVX512) || perch_sgemm_best() == Int32(PERCH_SGEMM_AVX2)
        for (c, h, w, k, s, pads) in [(37, 61, 70, 3, 1, [1, 1, 1, 1]), (16, 20, 20, 3, 2, [1, 1, 1, 1]), (5, 9, 33, 5, 3, [2, 0, 1, 2]),
                                      (48, 10, 10, 3, 1, [1, 1, 1, 1]), (20, 7, 129, 3, 2, [0, 1, 1, 0])] {
            let x = floats([1, c, h, w], rng.floats(c * h * w))
            let wt = floats([c, 1, k, k], rng.floats(c * k * k))
            let b = floats([c], rng.floats(c))
            let ctx = context(.conv, [x, wt, b], ["group": .int(c), "pads": .ints(pads), "strides": .ints([s, s]),
                                                  "_clamp_min": .float(0), "_clamp_max": .float(6)])
            let prepared = try ConvOperator.prepareConv(ctx, reference: false)
            let oh = (h + pads[0] + pads[2] - k) / s + 1, ow = (w + pads[1] + pads[3] - k) / s + 1
            // The reference: each channel padded into a plane, perch_dw_f32_scalar, then the clamp.
            let width = (ow - 1) * s + k, height = (oh - 1) * s + k
            var want = [Float](repeating: 0, count: c * oh * ow)
            var plane = [Float](repeating: 0, count: width * height)
            let xs = x.floats, ws = wt.floats, bs = b.floats
            for ch in 0..<c {
                Array(xs[(ch * h * w)..<((ch + 1) * h * w)]).withUnsafeBufferPointer { xc in
                    perch_dw_pad_plane_f32(xc.baseAddress!, h, w, pads[0], pads[1], width, height, &plane)
                }
                var out = [Float](repeating: 0, count: oh * ow)
                Array(ws[(ch * k * k)..<((ch + 1) * k * k)]).withUnsafeBufferPointer { wc in
                    perch_dw_f32_scalar(plane, width, s, oh, ow, k, k, wc.baseAddress!, bs[ch], &out)
                }
                for i in 0..<(oh * ow) { want[ch * oh * ow + i] = Swift.min(Swift.max(out[i], 0), 6) }
            }
            guard tilesApply else {
                // Without AVX2 + FMA the generic loop runs (its products are rounded before the
                // sums): close, not bit for bit.
                assertClose(runPrepared(prepared, [x, wt, b]), floats([1, c, oh, ow], want), "c \(c) \(h)×\(w) k \(k) s \(s)")
                assertClose(runPrepared(prepared, [x, wt, b], pool: pool), floats([1, c, oh, ow], want), "threaded c \(c) \(h)×\(w)")
                continue
            }
            XCTAssertEqual(runPrepared(prepared, [x, wt, b])[0].floats, want, "c \(c) \(h)×\(w) k \(k) s \(s)")
            XCTAssertEqual(runPrepared(prepared, [x, wt, b], pool: pool)[0].floats, want, "threaded c \(c) \(h)×\(w)")
        }
    }

    /// The depthwise kernel variants this CPU runs compute the same fused multiply-adds as the
    /// scalar reference: bit-identical, both strides, 3×3 (unrolled) and other sizes, rows shorter
    /// than, equal to and between vectors.
    func testDepthwiseVariantsAreBitExactWithScalar() {
        var rng = TestRandom(seed: 31)
        let variants = [Int32(PERCH_SGEMM_AVX2), Int32(PERCH_SGEMM_AVX512)].filter { perch_sgemm_supported($0) != 0 }
        for (kH, kW) in [(3, 3), (5, 5), (1, 7), (2, 3)] { for s in [1, 2] { for (outH, outW) in [(3, 5), (2, 8), (4, 13), (3, 16), (2, 23), (5, 40)] {
            let width = (outW - 1) * s + kW + 1, height = (outH - 1) * s + kH
            let plane = rng.floats(width * height), w = rng.floats(kH * kW)
            let bias: Float = 0.25
            var want = [Float](repeating: 0, count: outH * outW)
            perch_dw_f32_scalar(plane, width, s, outH, outW, kH, kW, w, bias, &want)
            // And the reference itself against a float64 sum.
            for oh in 0..<outH { for ow in 0..<outW {
                var d = Double(bias)
                for t in 0..<(kH * kW) { d += Double(w[t]) * Double(plane[(oh * s + t / kW) * width + ow * s + t % kW]) }
                XCTAssertEqual(Double(want[oh * outW + ow]), d, accuracy: 1e-5 * (1 + abs(d)))
            } }
            for v in variants {
                var got = [Float](repeating: .nan, count: outH * outW)
                perch_dw_f32(v, plane, width, s, outH, outW, kH, kW, w, bias, &got)
                XCTAssertEqual(got, want, "variant \(v) \(kH)×\(kW) stride \(s) \(outH)×\(outW)")
            }
        } } }
    }

    /// Every micro-kernel this CPU runs (scalar, AVX2+FMA, AVX-512, NEON) agrees with the
    /// Double-accumulating reference on edge tiles, K blocks and accumulation.
    func testSgemmMicroKernelVariantsAgreeWithReference() {
        var rng = TestRandom(seed: 3)
        let variants = sgemmSupportedVariants()
        XCTAssertTrue(variants.contains(0))
        #if arch(x86_64)
        // This machine class has AVX2 at least; the test documents which kernels it checked.
        XCTAssertTrue(variants.count >= 2, "variants \(variants)")
        #endif
        for (m, n, k) in [(1, 1, 1), (6, 16, 4), (7, 17, 300), (13, 50, 33), (64, 64, 520)] {
            let a = rng.floats(m * k), b = rng.floats(k * n), c0 = rng.floats(m * n)
            var ref = c0
            sgemmReference(m: m, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1,
                           c: &ref, ldc: n, accumulate: true)
            for v in variants {
                var out = c0
                var ws = [Float](repeating: .nan, count: sgemmWorkspaceCount(m: m, n: n, k: k))
                sgemm(m: m, n: n, k: k, a: a, aRowStride: k, aColStride: 1, b: b, bRowStride: n, bColStride: 1,
                      c: &out, ldc: n, accumulate: true, workspace: &ws, variant: v)
                assertClose(floats([m, n], out), floats([m, n], ref), rtol: 1e-4, atol: 1e-4)
            }
        }
    }
}

private func assertClose(_ a: [Tensor], _ e: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    assertClose(a[0], e, rtol: 1e-4, atol: 1e-4, file: file, line: line)
}

final class HalfWeightTests: XCTestCase {
    /// fp16 weight storage with fp32 compute: a Conv whose W is float16 gives the fp32 result of
    /// the same (half-rounded) weights, on the im2col, pointwise and depthwise paths.
    func testConvWithHalfWeightsMatchesFloatWeights() throws {
        var rng = TestRandom(seed: 21)
        for (xs, ws, attrs) in [([1, 4, 9, 9], [6, 4, 3, 3], ["pads": Attribute.ints([1, 1, 1, 1])]),
                                ([1, 4, 5, 5], [8, 4, 1, 1], [:]),
                                ([1, 4, 7, 7], [4, 1, 3, 3], ["group": Attribute.int(4), "pads": Attribute.ints([1, 1, 1, 1])])] {
            let x = floats(xs, rng.floats(elementCount(xs)))
            let halfBits = rng.floats(elementCount(ws)).map { HalfConversion.fromFloat($0) }
            let wf = floats(ws, halfBits.map { HalfConversion.toFloat($0) })
            var wh = Tensor(dtype: .f16, shape: ws)
            wh.bytes.withUnsafeMutableBytes { raw in
                for (i, b) in halfBits.enumerated() { raw.storeBytes(of: b, toByteOffset: 2 * i, as: UInt16.self) }
            }
            let expected = runPrepared(try ConvOperator.prepareConv(context(.conv, [x, wf, nil], attrs), reference: true), [x, wf, nil])
            let got = runPrepared(try ConvOperator.prepareConv(context(.conv, [x, wh, nil], attrs), reference: false), [x, wh, nil])
            assertClose(got[0], expected[0], rtol: 1e-5, atol: 1e-5)
        }
    }
}

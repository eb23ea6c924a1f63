import PerchGraph
@testable import PerchEngine
import XCTest

/// Requantization arithmetic and the int8 GEMM paths (every SIMD path against the scalar
/// reference, bit for bit) and quantized Conv against a direct integer reference.
final class Int8Tests: XCTestCase {
    // Literal values worked out by hand from TFLite's QuantizeMultiplier / gemmlowp.
    func testQuantizeMultiplier() {
        XCTAssertEqual(QuantizedMultiplier(0.5), QuantizedMultiplier(multiplier: 1 << 30, shift: 0))
        XCTAssertEqual(QuantizedMultiplier(0.25), QuantizedMultiplier(multiplier: 1 << 30, shift: -1))
        XCTAssertEqual(QuantizedMultiplier(3.0), QuantizedMultiplier(multiplier: 1610612736, shift: 2))
        // 0.1 = 0.8 * 2^-3; 0.8 * 2^31 = 1717986918.4 → 1717986918.
        XCTAssertEqual(QuantizedMultiplier(0.1), QuantizedMultiplier(multiplier: 1717986918, shift: -3))
        XCTAssertEqual(QuantizedMultiplier(0), QuantizedMultiplier(multiplier: 0, shift: 0))
    }

    /// One rounding, half up, of the exact product: worked by hand.
    func testSingleRoundingHalfUp() {
        let half = QuantizedMultiplier(multiplier: 1 << 30, shift: 0)  // × 0.5
        XCTAssertEqual(multiplyByQuantizedMultiplier(1, half), 1)  // 0.5 → 1
        XCTAssertEqual(multiplyByQuantizedMultiplier(-1, half), 0)  // −0.5 → 0 (half up)
        XCTAssertEqual(multiplyByQuantizedMultiplier(-3, half), -1)  // −1.5 → −1
        XCTAssertEqual(multiplyByQuantizedMultiplier(5, half), 3)  // 2.5 → 3
        let eighth = QuantizedMultiplier(multiplier: 1 << 30, shift: -2)  // × 0.125
        XCTAssertEqual(multiplyByQuantizedMultiplier(11, eighth), 1)  // 1.375 → 1
        XCTAssertEqual(multiplyByQuantizedMultiplier(12, eighth), 2)  // 1.5 → 2
        XCTAssertEqual(multiplyByQuantizedMultiplier(-13, eighth), -2)  // −1.625 → −2
        // The extreme accumulators with the smallest multiplier (a 62-bit shift).
        let tiny = QuantizedMultiplier(multiplier: 1 << 30, shift: -31)  // × 2^−32
        XCTAssertEqual(multiplyByQuantizedMultiplier(Int32.max, tiny), 0)  // 0.49999… → 0
        XCTAssertEqual(multiplyByQuantizedMultiplier(Int32.min, tiny), 0)  // −0.5 → 0
        // A positive shift saturates the left shift first.
        let big = QuantizedMultiplier(multiplier: 1 << 30, shift: 4)  // × 8
        XCTAssertEqual(multiplyByQuantizedMultiplier(3, big), 24)
        XCTAssertEqual(multiplyByQuantizedMultiplier(Int32.max / 4, big), Int32.max / 2 + 1)  // (2^31 − 1) · 0.5 rounded up
    }

    func testRequantizeMatchesRealArithmeticWithinHalfStep() {
        var rng = SplitMix(seed: 3)
        for _ in 0..<2000 {
            let real = Double(rng.next() % 100000 + 1) / 1e6  // (0, 0.1]
            let q = QuantizedMultiplier(real)
            let acc = Int32(Int64(rng.next() % 2_000_000) - 1_000_000)
            let got = multiplyByQuantizedMultiplier(acc, q)
            // One rounding of the exact product with the Q31 multiplier: at most half a step
            // plus |acc| · 2^(shift−32) (the multiplier's own rounding).
            let p = pow2(Int(q.shift))
            let bound = 0.5 + Double(abs(acc)) * p / 4294967296.0 + 1e-9
            XCTAssertLessThanOrEqual(abs(Double(got) - Double(acc) * real), bound, "acc \(acc) × \(real)")
        }
        XCTAssertEqual(requantize(1000, QuantizedMultiplier(0.01), zeroPoint: -128, lo: -128, hi: 127), -118)
        XCTAssertEqual(requantize(100000, QuantizedMultiplier(0.01), zeroPoint: 0, lo: 0, hi: 255), 255)
        XCTAssertEqual(requantize(-1000, QuantizedMultiplier(0.01), zeroPoint: 3, lo: 3, hi: 255), 3)
    }

    func testEverySIMDPathIsBitExactWithScalar() {
        let isas = Int8GEMM.availableISAs()
        print("int8 GEMM paths on this machine:", isas.map { $0.name })
        #if arch(x86_64)
        XCTAssertTrue(isas.contains(.avx2), "this x86-64 machine is expected to have AVX2")
        #endif
        var rng = SplitMix(seed: 11)
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (4, 4, 64), (9, 13, 100), (17, 33, 300), (64, 24, 144)] {
            let kp = Int8GEMM.paddedK(k)
            var a = [UInt8](repeating: 0, count: m * kp)
            var b = [Int8](repeating: 0, count: n * kp)
            for r in 0..<m { for i in 0..<k { a[r * kp + i] = UInt8(truncatingIfNeeded: rng.next()) } }
            for r in 0..<n { for i in 0..<k { b[r * kp + i] = Int8(truncatingIfNeeded: rng.next()) } }
            // Extremes: 255 × -128 everywhere in the first row (a maddubs path would saturate).
            for i in 0..<k { a[i] = 255; b[i] = -128 }
            var ref = [Int32](repeating: 0, count: m * n)
            for r in 0..<m { for c in 0..<n { var s: Int32 = 0; for i in 0..<k { s += Int32(a[r * kp + i]) * Int32(b[c * kp + i]) }; ref[r * n + c] = s } }
            for isa in isas {
                var c = [Int32](repeating: 7, count: m * n)
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            Int8GEMM.gemm(isa, m: m, n: n, k: kp, a: pa.baseAddress!, lda: kp, b: pb.baseAddress!, ldb: kp, c: pc.baseAddress!, ldc: n)
                        }
                    }
                }
                XCTAssertEqual(c, ref, "\(isa.name) m=\(m) n=\(n) k=\(k)")
            }
        }
    }

    /// QLinearConv (general, 1×1, grouped, depthwise; uint8 and int8 activations) against a direct
    /// integer reference computed here with the same requantization.
    func testQLinearConvMatchesDirectReference() throws {
        var rng = SplitMix(seed: 5)
        let cases: [(c: Int, m: Int, k: Int, group: Int, stride: Int, pad: Int, xType: DType)] = [
            (3, 8, 3, 1, 2, 1, .u8), (16, 24, 1, 1, 1, 0, .i8), (8, 8, 3, 8, 1, 1, .i8), (8, 8, 3, 8, 2, 1, .u8), (4, 6, 3, 2, 1, 1, .u8),
            // Depthwise 5×5 stride 2 (MobileNetV3/EfficientNet) and stride 3: every phase plane used.
            (8, 8, 5, 8, 2, 2, .u8), (6, 6, 3, 6, 3, 0, .i8),
            // Depthwise over more than one 16-channel tile (a full block and a partial one).
            (24, 24, 3, 24, 1, 1, .u8), (20, 20, 3, 20, 2, 1, .i8),
            // Enough output channels that threads split them on maps of one pixel block.
            (16, 48, 3, 1, 1, 1, .u8), (64, 64, 1, 1, 1, 0, .i8),
            // Stride-1 convolutions on the padded grid (taps path): a partial K4 channel group, no padding, 5×5.
            (10, 12, 3, 1, 1, 0, .i8), (12, 70, 5, 1, 1, 2, .u8),
            // 1×1 on small maps as pixels × channels: a channel tail past 64, and channels split by threads.
            (40, 80, 1, 1, 1, 0, .u8), (32, 144, 1, 1, 1, 0, .i8),
            // Input channels in fours per group, strided (AVX2 packs these from channel-interleaved planes).
            (16, 16, 3, 2, 2, 1, .i8), (8, 12, 3, 1, 2, 1, .u8),
        ]
        // 19×37: wider than one SIMD vector and not a multiple of it (the NCHW fast paths' tails);
        // 14×14: 1×1 convs as pixels × channels with too few channels to split, so threads split pixels.
        // `trained`: int8 weights as trained layers have them, mostly small with rare extremes, so
        // that AVX2 takes the split-weight vpmaddubsw GEMM (uniform bytes decline it).
        for (h, w, wU8, trained) in [(7, 6, false, false), (19, 37, false, false), (19, 37, true, false), (14, 14, false, false),
                                     (19, 37, false, true)] { for t in cases {
            let x = Tensor(dtype: t.xType, shape: [1, t.c, h, w], bytes: (0..<(t.c * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let cg = t.c / t.group
            let wt = Tensor(dtype: wU8 ? .u8 : .i8, shape: [t.m, cg, t.k, t.k], bytes: (0..<(t.m * cg * t.k * t.k)).map { _ in
                let r = rng.next()
                guard trained else { return UInt8(truncatingIfNeeded: r % 255) }
                let v: Int = r % 50 == 0 ? [127, -127, -128, 100][Int(r / 50 % 4)] : Int(r / 50 % 61) - 30
                return UInt8(bitPattern: Int8(v))
            })
            let xs: Float = 0.02, xz: Int32 = t.xType == .u8 ? 120 : -5, ys: Float = 0.05, yz: Int32 = t.xType == .u8 ? 100 : 3
            let wsc = (0..<t.m).map { Float($0 + 1) * 0.003 }
            let bias = (0..<t.m).map { Int32($0 * 37) - 100 }
            let zpT = t.xType == .u8 ? Tensor(shape: [], values: [UInt8(xz)]) : Tensor(shape: [], values: [Int8(xz)])
            let yzT = t.xType == .u8 ? Tensor(shape: [], values: [UInt8(yz)]) : Tensor(shape: [], values: [Int8(yz)])
            let values: [Tensor?] = [nil, Tensor(shape: [], values: [xs]), zpT, wt, Tensor(shape: [t.m], values: wsc),
                                     wU8 ? Tensor(shape: [t.m], values: (0..<t.m).map { UInt8(($0 * 37 + 90) % 256) }) : Tensor(shape: [t.m], values: [Int8](repeating: 0, count: t.m)),
                                     Tensor(shape: [], values: [ys]), yzT,
                                     Tensor(shape: [t.m], values: bias)]
            var attrs = Attributes()
            attrs["group"] = .int(t.group)
            attrs["strides"] = .ints([t.stride, t.stride])
            attrs["pads"] = .ints([t.pad, t.pad, t.pad, t.pad])
            let node = Node(name: "qc", op: .qLinearConv, inputs: ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], outputs: ["y"], attributes: attrs)
            var descs: [TensorDesc?] = [TensorDesc(dtype: x.dtype, shape: x.shape)]
            for v in values.dropFirst() { descs.append(TensorDesc(dtype: v!.dtype, shape: v!.shape)) }
            let got = try runOp(node, descs, values, x)
            for threads in [2, 3] {  // pixel blocks or channel ranges per thread: the same bytes
                XCTAssertEqual(try runOp(node, descs, values, x, threads: threads).bytes, got.bytes, "case \(t) with \(threads) threads")
            }
            let oh = (h + 2 * t.pad - t.k) / t.stride + 1, ow = (w + 2 * t.pad - t.k) / t.stride + 1
            XCTAssertEqual(got.shape, [1, t.m, oh, ow])
            let (lo, hi) = quantizedRange(t.xType)
            let xv = x.int64s, wv = wt.int64s, gv = got.int64s
            for oc in 0..<t.m {
                let gi = oc / (t.m / t.group)
                let q = QuantizedMultiplier(Double(xs) * Double(wsc[oc]) / Double(ys))
                for y in 0..<oh { for xx in 0..<ow {
                    var acc = bias[oc]
                    for ci in 0..<cg { for ky in 0..<t.k { for kx in 0..<t.k {
                        let iy = y * t.stride - t.pad + ky, ix = xx * t.stride - t.pad + kx
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                        acc += (Int32(xv[((gi * cg + ci) * h + iy) * w + ix]) - xz) * (Int32(wv[((oc * cg + ci) * t.k + ky) * t.k + kx]) - (wU8 ? Int32((oc * 37 + 90) % 256) : 0))
                    } } }
                    let want = requantize(acc, q, zeroPoint: yz, lo: lo, hi: hi)
                    XCTAssertEqual(Int32(gv[(oc * oh + y) * ow + xx]), want, "case \(t) oc=\(oc) y=\(y) x=\(xx)")
                } }
            }
        } }
    }

    /// A window down a one-pixel-wide map ([1, C, H, 1], kernel k×1: a 1-D conv exported as 2-D)
    /// is laid along W by the engine; the same bytes as the model written along W, for the split
    /// and widened AVX2 weights, strides, dilations and uneven pads, on 1 and 2 threads.
    func testWindowDownAOnePixelWideMapMatchesTheSameWindowAlongW() throws {
        var rng = SplitMix(seed: 77)
        for (c, h, m, k, stride, dilation, padBegin, padEnd, trained) in [(24, 60, 40, 5, 1, 1, 2, 2, true), (16, 37, 12, 3, 2, 2, 0, 3, false),
                                                                           (8, 9, 8, 9, 1, 1, 4, 4, true)] {
            let x = (0..<(c * h)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let wt = (0..<(m * c * k)).map { _ -> UInt8 in
                let r = rng.next()
                guard trained else { return UInt8(truncatingIfNeeded: r % 255) }
                return UInt8(bitPattern: Int8(r % 50 == 0 ? 127 : Int(r / 50 % 61) - 30))
            }
            func run(alongW: Bool, threads: Int) throws -> Tensor {
                let xShape = alongW ? [1, c, 1, h] : [1, c, h, 1], wShape = alongW ? [m, c, 1, k] : [m, c, k, 1]
                let values: [Tensor?] = [nil, Tensor(shape: [], values: [Float(0.03)]), Tensor(shape: [], values: [UInt8(110)]),
                                         Tensor(dtype: .i8, shape: wShape, bytes: wt), Tensor(shape: [m], values: (0..<m).map { Float($0 + 2) * 0.001 }),
                                         Tensor(shape: [m], values: [Int8](repeating: 0, count: m)), Tensor(shape: [], values: [Float(0.04)]),
                                         Tensor(shape: [], values: [UInt8(128)]), Tensor(shape: [m], values: (0..<m).map { Int32($0 * 53) - 300 })]
                var attrs = Attributes()
                attrs["strides"] = .ints(alongW ? [1, stride] : [stride, 1])
                attrs["dilations"] = .ints(alongW ? [1, dilation] : [dilation, 1])
                attrs["pads"] = .ints(alongW ? [0, padBegin, 0, padEnd] : [padBegin, 0, padEnd, 0])
                let node = Node(name: "qc", op: .qLinearConv, inputs: ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], outputs: ["y"], attributes: attrs)
                let input = Tensor(dtype: .u8, shape: xShape, bytes: x)
                var descs: [TensorDesc?] = [TensorDesc(dtype: .u8, shape: xShape)]
                for v in values.dropFirst() { descs.append(TensorDesc(dtype: v!.dtype, shape: v!.shape)) }
                return try runOp(node, descs, values, input, threads: threads)
            }
            let along = try run(alongW: true, threads: 1)
            let out = (h + padBegin + padEnd - dilation * (k - 1) - 1) / stride + 1
            XCTAssertEqual(along.shape, [1, m, 1, out])
            for threads in [1, 2] {
                let down = try run(alongW: false, threads: threads)
                XCTAssertEqual(down.shape, [1, m, out, 1])
                XCTAssertEqual(down.bytes, along.bytes, "c \(c) h \(h) k \(k) on \(threads) threads")
            }
        }
    }

    /// Depthwise QLinearConv on maps large enough that the channel-tiled kernel runs in bands of
    /// output rows (each band re-reads its halo rows), against direct sums, stride 1 and 2, odd sizes.
    func testDepthwiseOnLargeMapsMatchesDirectReference() throws {
        var rng = SplitMix(seed: 53)
        // 16 and 40 channels: one and three 16-channel blocks, so two threads split output rows.
        for (c, h, w, stride, k) in [(20, 71, 66, 1, 3), (18, 83, 90, 2, 3), (16, 64, 64, 1, 5), (40, 37, 45, 2, 3)] {
            let pad = k / 2
            let x = Tensor(dtype: .u8, shape: [1, c, h, w], bytes: (0..<(c * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let wt = Tensor(dtype: .i8, shape: [c, 1, k, k], bytes: (0..<(c * k * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let xs: Float = 0.02, xz: UInt8 = 117, ys: Float = 0.09, yz: UInt8 = 90
            let wsc = (0..<c).map { Float($0 + 1) * 0.002 }
            let bias = (0..<c).map { Int32($0 * 91) - 700 }
            let values: [Tensor?] = [nil, Tensor(shape: [], values: [xs]), Tensor(shape: [], values: [xz]), wt, Tensor(shape: [c], values: wsc),
                                     Tensor(shape: [c], values: [Int8](repeating: 0, count: c)), Tensor(shape: [], values: [ys]),
                                     Tensor(shape: [], values: [yz]), Tensor(shape: [c], values: bias)]
            var attrs = Attributes()
            attrs["group"] = .int(c)
            attrs["strides"] = .ints([stride, stride])
            attrs["pads"] = .ints([pad, pad, pad, pad])
            let node = Node(name: "dw", op: .qLinearConv, inputs: ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], outputs: ["y"], attributes: attrs)
            var descs: [TensorDesc?] = [TensorDesc(dtype: x.dtype, shape: x.shape)]
            for v in values.dropFirst() { descs.append(TensorDesc(dtype: v!.dtype, shape: v!.shape)) }
            let got = try runOp(node, descs, values, x, threads: 2).int64s
            let oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1
            let xv = x.int64s, wv = wt.int64s
            var bad = 0
            for ch in 0..<c {
                let q = QuantizedMultiplier(Double(xs) * Double(wsc[ch]) / Double(ys))
                for y in 0..<oh { for xx in 0..<ow {
                    var acc = bias[ch]
                    for ky in 0..<k { for kx in 0..<k {
                        let iy = y * stride - pad + ky, ix = xx * stride - pad + kx
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                        acc += (Int32(xv[(ch * h + iy) * w + ix]) - Int32(xz)) * Int32(wv[(ch * k + ky) * k + kx])
                    } }
                    if got[(ch * oh + y) * ow + xx] != Int64(requantize(acc, q, zeroPoint: Int32(yz), lo: 0, hi: 255)) { bad += 1 }
                } }
            }
            XCTAssertEqual(bad, 0, "c=\(c) \(h)×\(w) stride \(stride) k \(k)")
        }
    }

    /// QLinearGlobalAveragePool (uint8 and int8, NCHW and channels_last, spatial sizes with and
    /// without a 16-byte tail) against the mean computed here, rounded half to even as ORT does.
    func testQLinearGlobalAveragePoolMatchesMean() throws {
        var rng = SplitMix(seed: 52)
        for (xType, spatial, channelsLast) in [(DType.u8, 100, false), (.i8, 49, false), (.u8, 7, true), (.i8, 16, false)] {
            let c = 5
            let x = Tensor(dtype: xType, shape: channelsLast ? [2, spatial, 1, c] : [2, c, spatial, 1],
                           bytes: (0..<(2 * c * spatial)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let xs: Float = 0.04, ys: Float = 0.03
            let xz: Int32 = xType == .u8 ? 130 : -6, yz: Int32 = xType == .u8 ? 120 : 4
            func zp(_ v: Int32) -> Tensor { xType == .u8 ? Tensor(shape: [], values: [UInt8(v)]) : Tensor(shape: [], values: [Int8(v)]) }
            let values: [Tensor?] = [nil, Tensor(shape: [], values: [xs]), zp(xz), Tensor(shape: [], values: [ys]), zp(yz)]
            var attrs = Attributes()
            if channelsLast { attrs["channels_last"] = .int(1) }
            let node = Node(name: "gap", op: .qLinearGlobalAveragePool, inputs: ["x", "xs", "xz", "ys", "yz"], outputs: ["y"], attributes: attrs)
            var descs: [TensorDesc?] = [TensorDesc(dtype: x.dtype, shape: x.shape)]
            for v in values.dropFirst() { descs.append(TensorDesc(dtype: v!.dtype, shape: v!.shape)) }
            let got = try runOp(node, descs, values, x).int64s
            let xv = x.int64s
            let (lo, hi) = quantizedRange(xType)
            for b in 0..<2 { for ch in 0..<c {
                var sum: Int64 = 0
                for s in 0..<spatial { sum += xv[channelsLast ? (b * spatial + s) * c + ch : (b * c + ch) * spatial + s] - Int64(xz) }
                let mean = (Double(sum) * (Double(xs) / (Double(ys) * Double(spatial)))).rounded(.toNearestOrEven) + Double(yz)
                XCTAssertEqual(got[b * c + ch], Int64(Swift.min(Swift.max(mean, Double(lo)), Double(hi))), "\(xType) \(spatial) b\(b) c\(ch)")
            } }
        }
    }

    /// MaxPool on 8-bit codes (2×2 stride 2 has a 16-outputs-at-a-time path) against the direct max,
    /// for uint8 and int8 (whose codes compare after the sign flip), widths with and without tails.
    func testMaxPool8BitMatchesDirectMax() throws {
        var rng = SplitMix(seed: 51)
        for dtype in [DType.u8, .i8] { for (h, w) in [(4, 70), (6, 33), (2, 2), (5, 7)] {
            let x = Tensor(dtype: dtype, shape: [1, 3, h, w], bytes: (0..<(3 * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let y = try runSingleNode(.maxPool, inputs: [("x", x)], attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])[0]
            let oh = h / 2, ow = w / 2
            XCTAssertEqual(y.shape, [1, 3, oh, ow])
            let xv = x.int64s, yv = y.int64s
            for c in 0..<3 { for i in 0..<oh { for j in 0..<ow {
                var m = Int64.min
                for a in 0..<2 { for b in 0..<2 { m = max(m, xv[(c * h + 2 * i + a) * w + 2 * j + b]) } }
                XCTAssertEqual(yv[(c * oh + i) * ow + j], m, "\(dtype) \(h)×\(w) c\(c) (\(i), \(j))")
            } } }
        } }
    }

    func testLookupTableMatchesDequantizeFunctionQuantize() {
        let t = QElementwiseOperator.lookupTable({ 1 / (1 + Foundation_exp(-$0)) }, inType: .i8, inScale: 0.1, inZero: 0,
                                                 outType: .u8, outScale: 1.0 / 256, outZero: 0)
        XCTAssertEqual(t[0], 128)  // sigmoid(0) = 0.5 → 128
        XCTAssertEqual(t[127], 255)  // sigmoid(12.7) ≈ 1 → saturates
        XCTAssertEqual(t[Int(UInt8(bitPattern: -10))], 69)  // sigmoid(-1) = 0.2689 → 68.85 → 69
    }

    func runOp(_ node: Node, _ descs: [TensorDesc?], _ values: [Tensor?], _ x: Tensor, threads: Int = 1) throws -> Tensor {
        var g = Graph(name: "t", nodes: [node], inputs: [ValueInfo(name: "x", type: TensorType(dtype: x.dtype, dims: x.shape.map { .fixed($0) }))],
                      outputs: [ValueInfo(name: "y", type: TensorType(dtype: .u8, dims: []))])
        for (i, name) in node.inputs.enumerated() where i > 0 { g.initializers[name] = values[i]! }
        let s = try Session(graph: g, options: SessionOptions(threads: threads))
        return try XCTUnwrap(try s.run(["x": x])["y"])
    }
}

func pow2(_ e: Int) -> Double {
    var r = 1.0
    if e >= 0 { for _ in 0..<e { r *= 2 } } else { for _ in 0..<(-e) { r /= 2 } }
    return r
}

func Foundation_exp(_ x: Double) -> Double {
    // e^x by the standard library's series-free route: exp via pow is not available without Foundation.
    var sum = 1.0, term = 1.0
    for i in 1..<60 { term *= x / Double(i); sum += term }
    return sum
}

/// TFLite's element-wise QLinearAdd (inputs rescaled to a common 2^20-shifted scale) and
/// QLinearMul (the product requantized once) of centred codes `xa`, `yb`: the reference the engine's
/// table and SIMD paths are checked against.
func tfliteQLinearBinary(_ op: OpType, _ xa: Int32, _ yb: Int32, sa: Float, sb: Float, sy: Float, zy: Int32, lo: Int32, hi: Int32) -> Int64 {
    let v: Int32
    if op == .qLinearAdd {
        let twiceMax = 2 * Double(max(sa, sb))
        let s1 = multiplyByQuantizedMultiplier(xa << 20, QuantizedMultiplier(Double(sa) / twiceMax))
        let s2 = multiplyByQuantizedMultiplier(yb << 20, QuantizedMultiplier(Double(sb) / twiceMax))
        v = multiplyByQuantizedMultiplier(s1 &+ s2, QuantizedMultiplier(twiceMax / (Double(1 << 20) * Double(sy)))) + zy
    } else {
        v = multiplyByQuantizedMultiplier(xa * yb, QuantizedMultiplier(Double(sa) * Double(sb) / Double(sy))) + zy
    }
    return Int64(min(max(v, lo), hi))
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

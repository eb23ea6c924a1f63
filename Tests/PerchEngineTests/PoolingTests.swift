import CPerchShims
import PerchEngine
import PerchGraph
import XCTest

final class PoolingTests: XCTestCase {
    let x1d = floats([1, 1, 5], [1, 2, 3, 4, 5])
    let ceilAttrs: [String: Attribute] = ["kernel_shape": .ints([2]), "strides": .ints([2]), "pads": .ints([1, 1]), "ceil_mode": .int(1)]

    func testCeilModeDropsWindowStartingInEndPadding() throws {
        // span = 5 + 2 - 2 = 5 -> ceil(5/2) + 1 = 4 windows, but the 4th starts at 6 = in + pad_begin: dropped.
        let y = try runSingleNode(.maxPool, inputs: [("x", x1d)], attributes: ceilAttrs)
        assertClose(y[0], floats([1, 1, 3], [1, 3, 5]))
        let a = try runSingleNode(.averagePool, inputs: [("x", x1d)], attributes: ceilAttrs)
        assertClose(a[0], floats([1, 1, 3], [1, 2.5, 4.5]))
        var withPad = ceilAttrs
        withPad["count_include_pad"] = .int(1)
        let b = try runSingleNode(.averagePool, inputs: [("x", x1d)], attributes: withPad)
        assertClose(b[0], floats([1, 1, 3], [0.5, 2.5, 4.5]))
    }

    func testFloorModeAndDilatedAverage() throws {
        // kernel 2 dilation 2 over [1..5]: windows {1,3},{2,4},{3,5}
        let y = try runSingleNode(.averagePool, inputs: [("x", x1d)], attributes: ["kernel_shape": .ints([2]), "dilations": .ints([2])])
        assertClose(y[0], floats([1, 1, 3], [2, 3, 4]))
        let m = try runSingleNode(.maxPool, inputs: [("x", x1d)], attributes: ["kernel_shape": .ints([3]), "strides": .ints([2])])
        assertClose(m[0], floats([1, 1, 2], [3, 5]))
    }

    func testMaxPoolIndicesBothStorageOrders() throws {
        let x = floats([1, 2, 3, 3], [13, 10, 3, 7, 6, 15, 2, 9, 12, 16, 5, 17, 8, 11, 14, 4, 0, 1])
        let attrs: [String: Attribute] = ["kernel_shape": .ints([2, 2]), "pads": .ints([0, 0, 1, 1])]
        let r = try runSingleNode(.maxPool, inputs: [("x", x)], outputs: ["y", "i"], attributes: attrs)
        assertClose(r[0], floats([1, 2, 3, 3], [13, 15, 15, 9, 15, 15, 9, 12, 12, 16, 17, 17, 11, 14, 14, 4, 1, 1]))
        XCTAssertEqual(r[1].dtype, .i64)
        XCTAssertEqual(r[1].int64s, [0, 5, 5, 7, 5, 5, 7, 8, 8, 9, 11, 11, 13, 14, 14, 15, 17, 17])
        var cm = attrs
        cm["storage_order"] = .int(1)
        let c = try runSingleNode(.maxPool, inputs: [("x", x)], outputs: ["y", "i"], attributes: cm)
        XCTAssertEqual(c[1].int64s, [0, 7, 7, 5, 7, 7, 5, 8, 8, 9, 15, 15, 13, 16, 16, 11, 17, 17])
    }

    /// fp32 GlobalMaxPool of 1-D planes (Magika's [1, 512, 508]): each plane's maximum on 1 and
    /// 2 threads, a NaN first in its plane kept, a NaN later passed over (the window loop's rule).
    func testGlobalMaxPoolF32Planes() throws {
        var rng = TestRandom(seed: 31)
        var v = rng.floats(130 * 509)
        v[0] = .nan  // plane 0 starts with NaN
        v[509 + 7] = .nan  // plane 1 has one later
        let x = floats([1, 130, 509], v)
        var g = Graph(name: "gmp")
        g.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 130, 509]))]
        g.nodes = [Node(name: "p", op: .globalMaxPool, inputs: ["x"], outputs: ["y"])]
        g.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: []))]
        for threads in [1, 2] {
            let y = try Session(graph: g, options: SessionOptions(threads: threads)).run(["x": x])["y"]!
            XCTAssertEqual(y.shape, [1, 130, 1])
            let m = y.floats
            XCTAssertTrue(m[0].isNaN)
            for c in 1..<130 {
                let plane = v[(c * 509)..<((c + 1) * 509)].filter { !$0.isNaN }
                XCTAssertEqual(m[c], plane.max()!, "plane \(c), \(threads) threads")
            }
        }
    }

    func testSameUpperAndGlobalPoolsOtherTypes() throws {
        // SAME_UPPER, k=2, s=2 on 5: out 3, total pad 1 at the end -> windows {1,2},{3,4},{5}
        let y = try runSingleNode(.averagePool, inputs: [("x", x1d)], attributes: ["kernel_shape": .ints([2]), "strides": .ints([2]), "auto_pad": .string("SAME_UPPER")])
        assertClose(y[0], floats([1, 1, 3], [1.5, 3.5, 5]))
        let ySL = try runSingleNode(.averagePool, inputs: [("x", x1d)], attributes: ["kernel_shape": .ints([2]), "strides": .ints([2]), "auto_pad": .string("SAME_LOWER")])
        assertClose(ySL[0], floats([1, 1, 3], [1, 2.5, 4.5]))
        let d = Tensor(shape: [1, 2, 2, 2], values: [1, -2, 3, 4.5, -1, -7, -3, -2] as [Double])
        let gm = try runSingleNode(.globalMaxPool, inputs: [("x", d)])
        XCTAssertEqual(gm[0].dtype, .f64)
        XCTAssertEqual(gm[0].shape, [1, 2, 1, 1])
        XCTAssertEqual(gm[0].doubles, [4.5, -1])
        let ga = try runSingleNode(.globalAveragePool, inputs: [("x", d)])
        XCTAssertEqual(ga[0].doubles, [1.625, -3.25])
        let u = Tensor(shape: [1, 1, 4], values: [3, 250, 7, 9] as [UInt8])
        let mu = try runSingleNode(.maxPool, inputs: [("x", u)], attributes: ["kernel_shape": .ints([2]), "strides": .ints([2])])
        XCTAssertEqual(mu[0].dtype, .u8)
        XCTAssertEqual(mu[0].int64s, [250, 9])
        let g3 = try runSingleNode(.globalAveragePool, inputs: [("x", floats([1, 1, 2, 1, 2], [1, 2, 3, 6]))])
        assertClose(g3[0], floats([1, 1, 1, 1, 1], [3]))
        // fp32 planes longer than the 16 running sums, with a tail: the mean of 7×13 and 10×10.
        for (h, w) in [(7, 13), (10, 10)] {
            let values = (0..<(3 * h * w)).map { Float(($0 * 37) % 101) / 7 - 6 }
            let gp = try runSingleNode(.globalAveragePool, inputs: [("x", floats([1, 3, h, w], values))])
            let want = (0..<3).map { c in values[(c * h * w)..<((c + 1) * h * w)].reduce(0.0) { $0 + Double($1) } / Double(h * w) }
            assertClose(gp[0], floats([1, 3, 1, 1], want.map { Float($0) }), rtol: 1e-6, atol: 1e-6)
        }
    }

    /// 8-bit MaxPool (the path QDQ-fused models take): int8 and uint8, the no-padding plane kernel
    /// (2×2/2, 3×3/2) and the general one (padding), against a direct reference.
    func testEightBitMaxPoolMatchesDirectReference() throws {
        var rng = SplitMix(seed: 41)
        for dtype in [DType.u8, .i8] {
            for (k, s, p) in [(2, 2, 0), (3, 2, 0), (3, 2, 1), (2, 1, 0)] {
                let c = 3, h = 9, w = 13
                let x = Tensor(dtype: dtype, shape: [1, c, h, w], bytes: (0..<(c * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let y = try runSingleNode(.maxPool, inputs: [("x", x)], attributes: [
                    "kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p])])[0]
                let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
                XCTAssertEqual(y.shape, [1, c, oh, ow])
                let xv = x.int64s, yv = y.int64s
                for ch in 0..<c { for i in 0..<oh { for j in 0..<ow {
                    var m = Int64.min
                    for a in 0..<k { for b in 0..<k {
                        let r = i * s - p + a, q = j * s - p + b
                        if r >= 0 && r < h && q >= 0 && q < w { m = max(m, xv[(ch * h + r) * w + q]) }
                    } }
                    XCTAssertEqual(yv[(ch * oh + i) * ow + j], m, "\(dtype) k=\(k) s=\(s) p=\(p)")
                } } }
            }
        }
    }

    func testRejectsMissingKernelShape() {
        XCTAssertThrowsError(try runSingleNode(.maxPool, inputs: [("x", x1d)]))
        XCTAssertThrowsError(try runSingleNode(.averagePool, inputs: [("x", Tensor(shape: [1, 1, 2], values: [1, 2] as [UInt8]))], attributes: ["kernel_shape": .ints([2])]))
    }

    /// The float32 2-D MaxPool fast path (no Indices output) equals the general kernel (taken
    /// when Indices is asked for) bit for bit: 2×2/2 and 3×3/2 with pads, ceil mode, widths that
    /// use the 8-wide body and its edges, 3×3/1, and NaNs in and out of the first tap.
    func testMaxPool2DFastPathMatchesTheGeneralKernel() throws {
        var rng = TestRandom(seed: 9)
        let cases: [([Int], [String: Attribute])] = [
            ([1, 3, 8, 40], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            ([2, 2, 9, 41], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
            ([1, 2, 13, 37], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]),
            ([1, 2, 7, 35], ["kernel_shape": .ints([2, 3]), "strides": .ints([2, 2]), "pads": .ints([0, 2, 1, 1])]),
            ([1, 1, 6, 19], ["kernel_shape": .ints([3, 3]), "strides": .ints([1, 1]), "pads": .ints([1, 1, 1, 1])]),
            // Stride 1 takes eight windows at a time: wider rows, no padding, a 5×5 window.
            ([1, 2, 7, 43], ["kernel_shape": .ints([3, 3]), "strides": .ints([1, 1])]),
            ([1, 2, 9, 40], ["kernel_shape": .ints([5, 5]), "strides": .ints([1, 1]), "pads": .ints([2, 2, 2, 2])]),
            // The separable stride-1 kernel: YOLO's SPPF on a small map, windows wider than the
            // map, asymmetric pads, a 1-wide kernel axis.
            ([1, 3, 8, 8], ["kernel_shape": .ints([5, 5]), "strides": .ints([1, 1]), "pads": .ints([2, 2, 2, 2])]),
            ([1, 2, 3, 4], ["kernel_shape": .ints([5, 5]), "strides": .ints([1, 1]), "pads": .ints([2, 2, 2, 2])]),
            ([2, 2, 6, 11], ["kernel_shape": .ints([3, 4]), "strides": .ints([1, 1]), "pads": .ints([0, 3, 2, 1])]),
            ([1, 2, 9, 10], ["kernel_shape": .ints([1, 7]), "strides": .ints([1, 1]), "pads": .ints([0, 3, 0, 3])]),
            // SqueezeNet's 3×3/2 on a 111-wide row: 16 outputs per AVX-512 step plus a masked tail.
            ([1, 2, 5, 111], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])]),
        ]
        for (shape, attrs) in cases {
            var v = rng.floats(elementCount(shape))
            v[0] = .nan
            v[5] = .nan
            v[elementCount(shape) / 2] = .nan
            for i in stride(from: 7, to: v.count, by: 11) { v[i] = i % 2 == 0 ? 0 : -0.0 }  // signed zeros tie
            let x = floats(shape, v)
            let fast = try runSingleNode(.maxPool, inputs: [("x", x)], attributes: attrs)[0]
            let general = try runSingleNode(.maxPool, inputs: [("x", x)], outputs: ["y", "i"], attributes: attrs)[0]
            XCTAssertEqual(fast.shape, general.shape)
            XCTAssertEqual(fast.bytes, general.bytes, "\(shape) \(attrs)")
        }
    }
}

/// fp32 AveragePool (pads not counted) against the definition: stride 1 and 2, asymmetric pads,
/// ceil mode, windows larger than the map.
final class AveragePoolF32Tests: XCTestCase {
    func testAveragePoolMatchesDefinition() throws {
        let cases: [(h: Int, w: Int, k: Int, s: Int, p: [Int], ceil: Int)] = [
            (28, 28, 3, 1, [1, 1, 1, 1], 0), (13, 17, 3, 2, [0, 1, 1, 0], 1), (7, 7, 5, 1, [2, 2, 2, 2], 0), (9, 6, 2, 2, [0, 0, 0, 0], 1),
            (2, 3, 3, 1, [1, 1, 1, 1], 0),
        ]
        for c in cases {
            let chans = 3
            let values = (0..<(chans * c.h * c.w)).map { Float(($0 * 53) % 97) / 9 - 4 }
            let y = try runSingleNode(.averagePool, inputs: [("x", floats([1, chans, c.h, c.w], values))],
                                      attributes: ["kernel_shape": .ints([c.k, c.k]), "strides": .ints([c.s, c.s]), "pads": .ints(c.p),
                                                   "ceil_mode": .int(c.ceil)])[0]
            let oh = y.shape[2], ow = y.shape[3]
            var want = [Float]()
            for ch in 0..<chans { for oy in 0..<oh { for ox in 0..<ow {
                var sum = 0.0, n = 0
                for ky in 0..<c.k { for kx in 0..<c.k {
                    let iy = oy * c.s - c.p[0] + ky, ix = ox * c.s - c.p[1] + kx
                    guard iy >= 0, iy < c.h, ix >= 0, ix < c.w else { continue }
                    sum += Double(values[(ch * c.h + iy) * c.w + ix])
                    n += 1
                } }
                want.append(Float(sum / Double(n)))
            } } }
            assertClose(y, floats([1, chans, oh, ow], want), rtol: 1e-5, atol: 1e-5)
        }
    }

    /// The AVX-512 plane kernel against the portable one, bit for bit: maps narrower and wider
    /// than a vector, stride 1 (vector horizontal pass) and 2 (scalar), windows past the map.
    func testAVX512PlaneKernelMatchesPortableBits() throws {
        #if arch(x86_64)
        guard VectorISA.best().avx512 else { throw XCTSkip("no AVX-512 on this CPU") }
        let cases: [(h: Int, w: Int, k: Int, s: Int, pH: Int, pW: Int, outH: Int, outW: Int)] = [
            (28, 28, 3, 1, 1, 1, 28, 28), (14, 14, 3, 1, 1, 1, 14, 14), (7, 7, 3, 1, 1, 1, 7, 7), (7, 7, 7, 1, 0, 0, 1, 1),
            (13, 37, 5, 1, 2, 2, 13, 37), (13, 17, 3, 2, 0, 1, 7, 9), (3, 40, 3, 1, 1, 1, 5, 42), (2, 3, 3, 1, 1, 1, 2, 3),
        ]
        var rng = TestRandom(seed: 5)
        for c in cases {
            let x = rng.floats(c.h * c.w)
            let hp = (c.outH - 1) * c.s + c.k, wp = (c.outW - 1) * c.s + c.k
            var work = [Float](repeating: 0, count: hp * wp + wp + 16)
            var a = [Float](repeating: -1, count: c.outH * c.outW), b = a
            perch_avgpool_f32_plane_avx512(x, c.h, c.w, c.pH, c.pW, c.outH, c.outW, c.k, c.k, c.s, c.s, &a, &work)
            perch_avgpool_f32_plane(x, c.h, c.w, c.pH, c.pW, c.outH, c.outW, c.k, c.k, c.s, c.s, &b, &work)
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(c)")
        }
        #else
        throw XCTSkip("x86-64 only")
        #endif
    }
}

/// 8-bit MaxPool against the definition (each window's max over the positions inside the input):
/// the whole-plane stride-1 path with padding, the padded copy for other strides, the 3×3/2
/// and 2×2/2 vector rows, maps narrower and wider than a vector, int8 and uint8.
final class MaxPool8Tests: XCTestCase {
    func testEightBitMaxPoolMatchesDefinition() throws {
        var seed: UInt64 = 12345
        func next() -> UInt8 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: seed >> 33) }
        let cases: [(h: Int, w: Int, k: Int, s: Int, p: [Int])] = [
            (13, 13, 3, 1, [1, 1, 1, 1]), (27, 40, 3, 1, [1, 1, 1, 1]), (6, 6, 3, 1, [1, 1, 1, 1]), (9, 21, 5, 1, [2, 1, 0, 2]),
            (27, 27, 3, 2, [0, 0, 0, 0]), (55, 70, 3, 2, [0, 0, 1, 1]), (12, 40, 2, 2, [0, 0, 0, 0]), (11, 33, 3, 2, [1, 1, 1, 1]),
        ]
        for c in cases {
            for signed in [false, true] {
                let chans = 3
                let bytes = (0..<(chans * c.h * c.w)).map { _ in next() }
                let x = signed ? Tensor(shape: [1, chans, c.h, c.w], values: bytes.map { Int8(bitPattern: $0) })
                    : Tensor(shape: [1, chans, c.h, c.w], values: bytes)
                let y = try runSingleNode(.maxPool, inputs: [("x", x)],
                                          attributes: ["kernel_shape": .ints([c.k, c.k]), "strides": .ints([c.s, c.s]), "pads": .ints(c.p)])[0]
                let oh = (c.h + c.p[0] + c.p[2] - c.k) / c.s + 1, ow = (c.w + c.p[1] + c.p[3] - c.k) / c.s + 1
                XCTAssertEqual(y.shape, [1, chans, oh, ow])
                var want = [Int64]()
                for ch in 0..<chans { for oy in 0..<oh { for ox in 0..<ow {
                    var m = Int64.min
                    for ky in 0..<c.k { for kx in 0..<c.k {
                        let iy = oy * c.s - c.p[0] + ky, ix = ox * c.s - c.p[1] + kx
                        guard iy >= 0, iy < c.h, ix >= 0, ix < c.w else { continue }
                        let b = bytes[(ch * c.h + iy) * c.w + ix]
                        m = Swift.max(m, signed ? Int64(Int8(bitPattern: b)) : Int64(b))
                    } }
                    want.append(m)
                } } }
                XCTAssertEqual(y.int64s, want, "\(c) signed \(signed)")
            }
        }
    }
}

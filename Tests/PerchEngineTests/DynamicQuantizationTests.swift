import PerchEngine
import PerchGraph
import XCTest

/// What ONNX Runtime's `quantize_dynamic` produces: DynamicQuantizeLinear feeding its run-time
/// zero point to MatMulInteger and ConvInteger. Outputs against the integer definitions.
final class DynamicQuantizationTests: XCTestCase {
    func testDynamicQuantizeLinearFollowsTheFunctionBody() throws {
        let x = Tensor(shape: [2, 3], values: [Float(-1.5), 0.2, 3.7, 2.25, -0.75, 1])
        let out = try runSingleNode(.dynamicQuantizeLinear, inputs: [("x", x)], outputs: ["y", "s", "z"])
        let scale = Float(3.7 + 1.5) / 255
        XCTAssertEqual(out[1].floats, [scale])
        let zero = (0 - Float(-1.5) / scale).rounded(.toNearestOrEven)
        XCTAssertEqual(out[2].int64s, [Int64(zero)])
        XCTAssertEqual(out[0].int64s, x.floats.map { Int64(min(255, max(0, ($0 / scale).rounded(.toNearestOrEven) + zero))) })
        // All zeros: scale 0, zero point 0, codes 0 (no division by zero).
        let zeros = try runSingleNode(.dynamicQuantizeLinear, inputs: [("x", Tensor(shape: [4], values: [Float](repeating: 0, count: 4)))],
                                      outputs: ["y", "s", "z"])
        XCTAssertEqual(zeros[0].int64s, [0, 0, 0, 0])
        XCTAssertEqual(zeros[1].floats, [0])
        XCTAssertEqual(zeros[2].int64s, [0])
        // Infinities and NaN are bad input, not a crash: a scale of ∞, zero point 0, codes in range.
        let bad = try runSingleNode(.dynamicQuantizeLinear, inputs: [("x", Tensor(shape: [4], values: [-Float.infinity, 1, .nan, .infinity]))],
                                    outputs: ["y", "s", "z"])
        XCTAssertEqual(bad[1].floats, [.infinity])
        XCTAssertEqual(bad[2].int64s, [0])
        XCTAssertEqual(bad[0].shape, [4])
    }

    /// MatMulInteger's int32 sums on the row-major kernels (a GEMV's column panels below 4 rows,
    /// columns split across 2 threads for a wide B), zero point at run time and constant.
    func testMatMulIntegerWithARunTimeZeroPoint() throws {
        var rng = SplitMix(seed: 5)
        for (m, k, n) in [(5, 37, 70), (2, 64, 300), (1, 19, 9), (13, 130, 520)] {
            let a = (0..<(m * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let b = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            let bZero = (0..<n).map { _ in Int8(truncatingIfNeeded: rng.next() % 9) }
            for (za, constant) in [(UInt8(0), false), (131, false), (77, true)] {
                var constants = ["b": Tensor(shape: [k, n], values: b), "bz": Tensor(shape: [n], values: bZero)]
                if constant { constants["az"] = Tensor(dtype: .u8, shape: [], bytes: [za]) }
                func run(_ threads: Int) throws -> Tensor {
                    try runSingleNodeWithRunTimeInputs(.matMulInteger, inputs: [("a", Tensor(dtype: .u8, shape: [m, k], bytes: a)), ("b", Tensor(shape: [k, n], values: b)),
                                                                              ("az", Tensor(dtype: .u8, shape: [], bytes: [za])), ("bz", Tensor(shape: [n], values: bZero))],
                                                       runTime: constant ? [] : ["az"], constants: constants, threads: threads)
                }
                let y = try run(1)
                XCTAssertEqual(y.dtype, .i32)
                var want = [Int64]()
                for i in 0..<m { for j in 0..<n {
                    var s: Int64 = 0
                    for p in 0..<k { s += (Int64(a[i * k + p]) - Int64(za)) * (Int64(b[p * n + j]) - Int64(bZero[j])) }
                    want.append(s)
                } }
                XCTAssertEqual(y.int64s, want, "\(m)x\(k)x\(n) a_zero_point \(za)")
                XCTAssertEqual(try run(2).int64s, want, "\(m)x\(k)x\(n) on 2 threads")
            }
        }
    }

    /// ConvInteger's int32 sums, with the zero point known only at run time (fed through a Gather,
    /// so the session cannot fold it at prepare) and as a constant, on the
    /// NCHW GEMM (AVX2's split and widened weights, channel-interleaved planes, pointwise rows,
    /// groups, uint8 weights with per-channel zero points, int8 activations) and the direct loops
    /// of 3-D maps, against the definition; 1 and 2 threads give the same sums.
    func testConvIntegerWithARunTimeZeroPoint() throws {
        var rng = SplitMix(seed: 6)
        struct Case { var c, h, w, m, group, kH, kW: Int; var pads, strides: [Int]; var wU8 = false; var xI8 = false; var depth = 0 }
        let cases = [
            Case(c: 4, h: 6, w: 7, m: 6, group: 2, kH: 3, kW: 3, pads: [1, 0, 1, 2], strides: [1, 2]),
            Case(c: 16, h: 9, w: 11, m: 24, group: 1, kH: 3, kW: 3, pads: [1, 1, 1, 1], strides: [1, 1]),  // channels in fours
            Case(c: 12, h: 13, w: 10, m: 20, group: 1, kH: 3, kW: 3, pads: [1, 1, 1, 1], strides: [2, 2], wU8: true),
            Case(c: 40, h: 7, w: 9, m: 33, group: 1, kH: 1, kW: 1, pads: [0, 0, 0, 0], strides: [1, 1]),  // pointwise
            Case(c: 6, h: 8, w: 8, m: 6, group: 6, kH: 3, kW: 3, pads: [1, 1, 1, 1], strides: [1, 1], xI8: true),  // depthwise
            Case(c: 24, h: 30, w: 1, m: 16, group: 1, kH: 5, kW: 1, pads: [2, 0, 2, 0], strides: [1, 1], wU8: true),  // down a 1-wide map
            Case(c: 3, h: 4, w: 5, m: 4, group: 1, kH: 2, kW: 3, pads: [0, 1, 1, 0, 0, 1], strides: [1, 1, 2], depth: 3),  // 3-D: direct loops
        ]
        for t in cases {
            let cg = t.c / t.group
            let spatial = t.depth > 0 ? [t.depth, t.h, t.w] : [t.h, t.w]
            let kernel = t.depth > 0 ? [2, t.kH, t.kW] : [t.kH, t.kW]
            let taps = kernel.reduce(1, *), size = spatial.reduce(1, *)
            let x = (0..<(t.c * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Trained-like weights (mostly small, rare extremes) so AVX2 takes the split GEMM.
            let wt = (0..<(t.m * cg * taps)).map { _ -> UInt8 in
                let r = rng.next()
                let v = r % 40 == 0 ? [127, -127, -128, 100][Int(r / 40 % 4)] : Int(r / 40 % 61) - 30
                return t.wU8 ? UInt8(v + 128) : UInt8(bitPattern: Int8(v))
            }
            let wz: [UInt8] = t.wU8 ? (0..<t.m).map { UInt8(120 + $0 % 9) } : [3]
            let wType: DType = t.wU8 ? .u8 : .i8, xType: DType = t.xI8 ? .i8 : .u8
            let wTensor = Tensor(dtype: wType, shape: [t.m, cg] + kernel, bytes: wt)
            let wzTensor = Tensor(dtype: wType, shape: t.wU8 ? [t.m] : [], bytes: wz)
            var attrs: [String: Attribute] = ["group": .int(t.group), "pads": .ints(t.pads), "strides": .ints(t.strides)]
            if t.depth > 0 { attrs["kernel_shape"] = .ints(kernel) }
            let rank = spatial.count
            var outSpatial = [Int]()
            for i in 0..<rank { outSpatial.append((spatial[i] + t.pads[i] + t.pads[i + rank] - kernel[i]) / t.strides[i] + 1) }
            let outSize = outSpatial.reduce(1, *)
            for (za, constant) in [(UInt8(97), false), (UInt8(0), false), (UInt8(201), true)] {
                var constants = ["w": wTensor, "wz": wzTensor]
                if constant { constants["xz"] = Tensor(dtype: xType, shape: [], bytes: [za]) }
                func run(_ threads: Int) throws -> Tensor {
                    try runSingleNodeWithRunTimeInputs(.convInteger, inputs: [("x", Tensor(dtype: xType, shape: [1, t.c] + spatial, bytes: x)), ("w", wTensor),
                                                                            ("xz", Tensor(dtype: xType, shape: [], bytes: [za])), ("wz", wzTensor)],
                                                       runTime: constant ? [] : ["xz"], constants: constants, attributes: attrs, threads: threads)
                }
                let y = try run(1)
                XCTAssertEqual(y.shape, [1, t.m] + outSpatial)
                XCTAssertEqual(try run(2).int64s, y.int64s, "\(t) with 2 threads")
                func value(_ b: UInt8, _ signed: Bool) -> Int64 { signed ? Int64(Int8(bitPattern: b)) : Int64(b) }
                var want = [Int64]()
                for m in 0..<t.m {
                    let zw = value(wz[t.wU8 ? m : 0], !t.wU8)
                    for o in 0..<outSize {
                        // Output position o → per-axis coordinates (the last axis fastest).
                        var coords = [Int](repeating: 0, count: rank), rest = o
                        for i in stride(from: rank - 1, through: 0, by: -1) { coords[i] = rest % outSpatial[i]; rest /= outSpatial[i] }
                        var s: Int64 = 0
                        for ci in 0..<cg { for tap in 0..<taps {
                            var kc = [Int](repeating: 0, count: rank), tr = tap
                            for i in stride(from: rank - 1, through: 0, by: -1) { kc[i] = tr % kernel[i]; tr /= kernel[i] }
                            var inside = true, index = 0
                            for i in 0..<rank {
                                let p = coords[i] * t.strides[i] - t.pads[i] + kc[i]
                                if p < 0 || p >= spatial[i] { inside = false }
                                index = index * spatial[i] + p
                            }
                            guard inside else { continue }
                            let xc = (m / (t.m / t.group)) * cg + ci
                            s += (value(x[xc * size + index], t.xI8) - value(za, t.xI8)) * (value(wt[(m * cg + ci) * taps + tap], !t.wU8) - zw)
                        } }
                        want.append(s)
                    }
                }
                XCTAssertEqual(y.int64s, want, "\(t) zero point \(za)\(constant ? " (constant)" : "")")
            }
        }
    }
}

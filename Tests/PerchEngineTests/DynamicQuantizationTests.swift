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

    func testMatMulIntegerWithARunTimeZeroPoint() throws {
        var rng = SplitMix(seed: 5)
        let (m, k, n) = (5, 37, 70)
        let a = (0..<(m * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let b = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        let bZero = (0..<n).map { _ in Int8(truncatingIfNeeded: rng.next() % 9) }
        for za in [UInt8(0), 131] {
            let y = try runSingleNode(.matMulInteger, inputs: [("a", Tensor(dtype: .u8, shape: [m, k], bytes: a)), ("b", Tensor(shape: [k, n], values: b)),
                                                         ("az", Tensor(dtype: .u8, shape: [], bytes: [za])), ("bz", Tensor(shape: [n], values: bZero))],
                                      constants: ["b": Tensor(shape: [k, n], values: b), "bz": Tensor(shape: [n], values: bZero)])[0]
            XCTAssertEqual(y.dtype, .i32)
            var want = [Int64]()
            for i in 0..<m { for j in 0..<n {
                var s: Int64 = 0
                for p in 0..<k { s += (Int64(a[i * k + p]) - Int64(za)) * (Int64(b[p * n + j]) - Int64(bZero[j])) }
                want.append(s)
            } }
            XCTAssertEqual(y.int64s, want, "a_zero_point \(za)")
        }
    }

    func testConvIntegerWithARunTimeZeroPoint() throws {
        var rng = SplitMix(seed: 6)
        let (c, h, w, mOut, group) = (4, 6, 7, 6, 2)
        let x = (0..<(c * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let wt = (0..<(mOut * (c / group) * 9)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
        let za: UInt8 = 97, wz: Int8 = 3
        let attrs: [String: Attribute] = ["group": .int(group), "pads": .ints([1, 0, 1, 2]), "strides": .ints([1, 2])]
        let y = try runSingleNode(.convInteger, inputs: [("x", Tensor(dtype: .u8, shape: [1, c, h, w], bytes: x)), ("w", Tensor(shape: [mOut, c / group, 3, 3], values: wt)),
                                                    ("xz", Tensor(dtype: .u8, shape: [], bytes: [za])), ("wz", Tensor(shape: [], values: [wz]))],
                                  constants: ["w": Tensor(shape: [mOut, c / group, 3, 3], values: wt), "wz": Tensor(shape: [], values: [wz])],
                                  attributes: attrs)[0]
        let outH = h + 2 - 2, outW = (w + 2 - 3) / 2 + 1
        XCTAssertEqual(y.shape, [1, mOut, outH, outW])
        var want = [Int64]()
        for m in 0..<mOut { for oh in 0..<outH { for ow in 0..<outW {
            var s: Int64 = 0
            for ci in 0..<(c / group) { for kh in 0..<3 { for kw in 0..<3 {
                let ih = oh - 1 + kh, iw = ow * 2 + kw
                guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                let xc = (m / (mOut / group)) * (c / group) + ci
                s += (Int64(x[(xc * h + ih) * w + iw]) - Int64(za)) * (Int64(wt[((m * (c / group) + ci) * 3 + kh) * 3 + kw]) - Int64(wz))
            } } }
            want.append(s)
        } } }
        XCTAssertEqual(y.int64s, want)
    }
}

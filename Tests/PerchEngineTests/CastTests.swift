import PerchEngine
import PerchGraph
import XCTest

/// Reference values derived by hand and with NumPy (np.rint, astype).
final class CastTests: XCTestCase {
    func testCastFloatToIntTruncatesAndBack() throws {
        let x = floats([5], [1.9, -1.9, 0.5, 300.7, -0.2])
        let i = try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(7)])[0]
        XCTAssertEqual(i.dtype, .i64)
        XCTAssertEqual(i.int64s, [1, -1, 0, 300, 0])
        let i32 = try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(6)])[0]
        XCTAssertEqual(i32.dtype, .i32)
        XCTAssertEqual(i32.int64s, [1, -1, 0, 300, 0])
        let f = try runSingleNode(.cast, inputs: [("x", int64s([2], [-3, 1 << 40]))], attributes: ["to": .int(1)])[0]
        XCTAssertEqual(f.floats, [-3, 1_099_511_627_776])
        let b = try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(9)])[0]
        XCTAssertEqual(b.dtype, .bool)
        XCTAssertEqual(b.int64s, [1, 1, 1, 1, 1])
        let h = try runSingleNode(.cast, inputs: [("x", floats([2], [1.5, -2]))], attributes: ["to": .int(10)])[0]
        XCTAssertEqual(h.dtype, .f16)
        XCTAssertEqual(h.bytes, [0x00, 0x3E, 0x00, 0xC0])
        let d = try runSingleNode(.cast, inputs: [("x", h)], attributes: ["to": .int(11)])[0]
        XCTAssertEqual(d.doubles, [1.5, -2])
        let big = try runSingleNode(.cast, inputs: [("x", int64s([1], [9_007_199_254_740_993]))], attributes: ["to": .int(13)])[0]
        XCTAssertEqual(big.dtype, .u64)
        XCTAssertEqual(big.int64s, [9_007_199_254_740_993])
    }

    /// Narrow integers to float32 (the vectorized loop): values rounded once to nearest even,
    /// 2^24 + 1 → 2^24 and 2^24 + 3 → 2^24 + 4, extremes of each type.
    func testNarrowIntegersToFloat() throws {
        let i32: [Int32] = [0, -7, 16_777_217, 16_777_219, Int32.max, Int32.min, 123_456_789]
        let f = try runSingleNode(.cast, inputs: [("x", Tensor(shape: [i32.count], values: i32))], attributes: ["to": .int(1)])[0]
        XCTAssertEqual(f.floats, [0, -7, 16_777_216, 16_777_220, 2_147_483_648, -2_147_483_648, 123_456_792])
        for (x, want) in [(Tensor(shape: [3], values: [UInt8(0), 200, 255]), [Float(0), 200, 255]),
                          (Tensor(shape: [3], values: [Int8(-128), 5, 127]), [-128, 5, 127]),
                          (Tensor(shape: [3], values: [Int16(-32768), 9, 32767]), [-32768, 9, 32767]),
                          (Tensor(shape: [2], values: [UInt16(65535), 1]), [65535, 1])] {
            XCTAssertEqual(try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(1)])[0].floats, want, "\(x.dtype)")
        }
    }

    func testCastUnsupportedTypes() {
        XCTAssertThrowsError(try runSingleNode(.cast, inputs: [("x", floats([1], [1]))], attributes: ["to": .int(8)])) { error in
            XCTAssertTrue(String(describing: error).contains("string"))
        }
        XCTAssertThrowsError(try runSingleNode(.cast, inputs: [("x", floats([1], [1]))], attributes: ["to": .int(23)])) { error in
            XCTAssertTrue(String(describing: error).contains("float4"))
        }
    }

    func testCastToFloat8FollowsONNXTable() throws {
        // Expected bits from ONNX's test_cast_FLOAT_to_FLOAT8E4M3FN / _no_saturate_ data.
        let x = floats([6], [0.47892547, 0.8191054, 1_000_000, -1e-7, .infinity, -.infinity])
        let sat = try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(17)])[0]
        XCTAssertEqual(sat.dtype, .f8e4m3fn)
        XCTAssertEqual(sat.bytes, [47, 53, 126, 128, 126, 254])
        let noSat = try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(17), "saturate": .int(0)])[0]
        XCTAssertEqual(noSat.bytes, [47, 53, 127, 128, 127, 255])
        let e5m2 = try runSingleNode(.cast, inputs: [("x", x)], attributes: ["to": .int(19), "saturate": .int(0)])[0]
        XCTAssertEqual(Array(e5m2.bytes[4...]), [0x7C, 0xFC])  // ±inf exists in e5m2
        let back = try runSingleNode(.cast, inputs: [("x", sat)], attributes: ["to": .int(1)])[0]
        XCTAssertEqual(back.floats, [0.46875, 0.8125, 448, -0.0, 448, -448])
    }

    func testQuantizeLinear() throws {
        let x = floats([8], [0, 1.5, 2.5, -2.5, 300, -300, 3.49, 1000])
        let q = try runSingleNode(.quantizeLinear, inputs: [("x", x), ("s", floats([], [2])), ("z", Tensor(shape: [], values: [UInt8(128)]))])[0]
        XCTAssertEqual(q.dtype, .u8)
        XCTAssertEqual(q.int64s, [128, 129, 129, 127, 255, 0, 130, 255])
        let s = try runSingleNode(.quantizeLinear, inputs: [("x", x), ("s", floats([], [2])), ("z", Tensor(shape: [], values: [Int8(-1)]))])[0]
        XCTAssertEqual(s.dtype, .i8)
        XCTAssertEqual(s.int64s, [-1, 0, 0, -2, 127, -128, 1, 127])
        // No zero point: uint8, zero point 0.
        let d = try runSingleNode(.quantizeLinear, inputs: [("x", floats([3], [-1, 2, 7])), ("s", floats([], [1]))])[0]
        XCTAssertEqual(d.dtype, .u8)
        XCTAssertEqual(d.int64s, [0, 2, 7])
    }

    func testPerAxisQuantizeDequantize() throws {
        // x [2,3], axis 1 (default): per-column scales.
        let x = floats([2, 3], [1, 2, 3, -4, 5, 6])
        let scales = floats([3], [1, 2, 0.5])
        let zp = Tensor(shape: [3], values: [UInt8(0), 10, 100])
        let q = try runSingleNode(.quantizeLinear, inputs: [("x", x), ("s", scales), ("z", zp)])[0]
        XCTAssertEqual(q.int64s, [1, 11, 106, 0, 12, 112])
        let back = try runSingleNode(.dequantizeLinear, inputs: [("q", q), ("s", scales), ("z", zp)])[0]
        assertClose(back, floats([2, 3], [1, 2, 3, 0, 4, 6]))
        // axis 0 with int8.
        let q0 = Tensor(shape: [2, 2], values: [Int8(-3), 4, 10, -10])
        let d0 = try runSingleNode(.dequantizeLinear, inputs: [("q", q0), ("s", floats([2], [0.5, 2])), ("z", Tensor(shape: [2], values: [Int8(1), -2]))], attributes: ["axis": .int(0)])[0]
        assertClose(d0, floats([2, 2], [-2, 1.5, 24, -16]))
        // int32 input, no zero point.
        let d32 = try runSingleNode(.dequantizeLinear, inputs: [("q", Tensor(shape: [2], values: [Int32(-7), 100_000])), ("s", floats([], [0.5]))])[0]
        assertClose(d32, floats([2], [-3.5, 50_000]))
    }

    func testBlockedDequantize() throws {
        // x [2,4], axis 1, block_size 2: scale [2,2]; element (r, c) uses scale[r][c / 2].
        let q = Tensor(shape: [2, 4], values: [Int8(1), 2, 3, 4, -1, -2, -3, -4])
        let scale = floats([2, 2], [1, 10, 0.5, 2])
        let y = try runSingleNode(.dequantizeLinear, inputs: [("q", q), ("s", scale)], attributes: ["axis": .int(1), "block_size": .int(2)])[0]
        assertClose(y, floats([2, 4], [1, 2, 30, 40, -0.5, -1, -6, -8]))
        let back = try runSingleNode(.quantizeLinear, inputs: [("x", y), ("s", scale), ("z", Tensor(shape: [2, 2], values: [Int8(0), 0, 0, 0]))],
                                     attributes: ["axis": .int(1), "block_size": .int(2)])[0]
        XCTAssertEqual(back.int64s, [1, 2, 3, 4, -1, -2, -3, -4])
    }

    /// The per-tensor fast paths of QuantizeLinear/DequantizeLinear agree bit for bit with the
    /// general per-axis path (here forced by giving every channel the same scale and zero point).
    func testPerTensorFastPathsMatchTheGeneralPath() throws {
        var values = [Float]()
        var seed: UInt32 = 12345
        for _ in 0..<997 {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            values.append((Float(seed >> 8) / Float(1 << 24) - 0.5) * 80)
        }
        values += [.nan, .infinity, -.infinity, 1e30, -1e30, 0.25, 0.75, -0.25, 1.25]  // halves round to even
        let n = values.count
        let x = Tensor(shape: [1, n], values: values)
        for (zp, zps) in [(Tensor(shape: [], values: [UInt8(131)]), Tensor(shape: [n], values: [UInt8](repeating: 131, count: n))),
                          (Tensor(shape: [], values: [Int8(-7)]), Tensor(shape: [n], values: [Int8](repeating: -7, count: n)))] {
            let fast = try runSingleNode(.quantizeLinear, inputs: [("x", x), ("s", floats([], [0.5])), ("z", zp)])[0]
            let general = try runSingleNode(.quantizeLinear, inputs: [("x", x), ("s", floats([n], [Float](repeating: 0.5, count: n))), ("z", zps)],
                                            attributes: ["axis": .int(1)])[0]
            XCTAssertEqual(fast.dtype, zp.dtype)
            XCTAssertEqual(fast.bytes, general.bytes, zp.dtype.name)
            let dFast = try runSingleNode(.dequantizeLinear, inputs: [("x", fast), ("s", floats([], [0.37])), ("z", zp)])[0]
            let dGeneral = try runSingleNode(.dequantizeLinear, inputs: [("x", fast), ("s", floats([n], [Float](repeating: 0.37, count: n))), ("z", zps)],
                                             attributes: ["axis": .int(1)])[0]
            XCTAssertEqual(dFast.bytes, dGeneral.bytes, zp.dtype.name)
        }
    }
}

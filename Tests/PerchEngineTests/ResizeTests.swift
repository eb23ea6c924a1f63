import PerchEngine
import PerchGraph
import XCTest

/// Expected values from onnx.reference (opset 19) unless marked as hand-derived.
final class ResizeTests: XCTestCase {
    let x23 = floats([1, 1, 2, 3], [1, 2, 3, 4, 5, 6])

    func testBilinearHalfPixelNonIntegerScales() throws {
        let s = floats([4], [1, 1, 1.5, 1.7])
        let y = try runSingleNode(.resize, inputs: [("x", x23), ("", Tensor(dtype: .f32, shape: [0])), ("s", s)], constants: ["s": s],
                                  attributes: ["mode": .string("linear")])
        assertClose(y[0], floats([1, 1, 3, 5], [1, 1.382353, 1.9705882, 2.5588236, 3, 2.5, 2.8823528, 3.4705882, 4.0588236, 4.5, 4, 4.382353, 4.970588, 5.5588236, 6]))
    }

    func testNearestSizesWithAxesAlignCornersPreferCeil() throws {
        let z = int64s([2], [5, 3])
        let y = try runSingleNode(.resize, inputs: [("x", x23), ("", Tensor(dtype: .f32, shape: [0])), ("", Tensor(dtype: .f32, shape: [0])), ("z", z)], constants: ["z": z],
                                  attributes: ["mode": .string("nearest"), "nearest_mode": .string("round_prefer_ceil"),
                                               "coordinate_transformation_mode": .string("align_corners"), "axes": .ints([3, 2])])
        assertClose(y[0], floats([1, 1, 3, 5], [1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 4, 5, 5, 6, 6]))
    }

    func testPytorchHalfPixelLinearAndCubicExcludeOutside() throws {
        let x = floats([1, 2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7])
        let s = floats([4], [1, 1, 2, 2])
        let y = try runSingleNode(.resize, inputs: [("x", x), ("", Tensor(dtype: .f32, shape: [0])), ("s", s)], constants: ["s": s],
                                  attributes: ["mode": .string("linear"), "coordinate_transformation_mode": .string("pytorch_half_pixel")])
        assertClose(y[0], floats([1, 2, 4, 4], [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3, 4, 4.25, 4.75, 5, 4.5, 4.75, 5.25, 5.5, 5.5, 5.75, 6.25, 6.5, 6, 6.25, 6.75, 7]))
        let x1 = floats([1, 5], [0, 1, 4, 9, 16])
        let s1 = floats([2], [1, 0.6])
        let c = try runSingleNode(.resize, inputs: [("x", x1), ("", Tensor(dtype: .f32, shape: [0])), ("s", s1)], constants: ["s": s1],
                                  attributes: ["mode": .string("cubic"), "exclude_outside": .int(1), "cubic_coeff_a": .float(-0.5)])
        assertClose(c[0], floats([1, 3], [0.17241377, 3.9999995, 14.241378]), rtol: 1e-4, atol: 1e-4)
    }

    func testUInt8NearestFloorAsymmetric() throws {
        let u = Tensor(shape: [2, 3], values: [10, 20, 30, 40, 50, 60] as [UInt8])
        let s = floats([2], [2, 1.5])
        let y = try runSingleNode(.resize, inputs: [("x", u), ("", Tensor(dtype: .f32, shape: [0])), ("s", s)], constants: ["s": s],
                                  attributes: ["mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor")])
        XCTAssertEqual(y[0].dtype, .u8)
        XCTAssertEqual(y[0].shape, [4, 4])
        XCTAssertEqual(y[0].int64s, [10, 10, 20, 30, 10, 10, 20, 30, 40, 40, 50, 60, 40, 40, 50, 60])
    }

    /// Nearest runs as a raw-element gather: a 2× upsample of NCHW (YOLO's FPN) gives each value
    /// in a 2×2 block for 1-, 2-, 4- and 8-byte types; a 0.75× downsample of a 3-D tensor picks
    /// the elements the definition picks (half_pixel, round_prefer_floor).
    func testNearestGatherAcrossElementSizes() throws {
        let values = (0..<(2 * 3 * 4)).map { $0 * 7 - 40 }
        var want = [Int]()
        for c in 0..<2 { for h in 0..<6 { for w in 0..<8 { want.append(values[c * 12 + (h / 2) * 4 + w / 2]) } } }
        let s = floats([4], [1, 1, 2, 2])
        let inputs: [Tensor] = [
            Tensor(shape: [1, 2, 3, 4], values: values.map { Int8($0) }),
            Tensor(shape: [1, 2, 3, 4], values: values.map { Int16($0) }),
            Tensor(shape: [1, 2, 3, 4], values: values.map { Float($0) }),
            Tensor(shape: [1, 2, 3, 4], values: values.map { Int64($0) }),
        ]
        for x in inputs {
            let y = try runSingleNode(.resize, inputs: [("x", x), ("", Tensor(dtype: .f32, shape: [0])), ("s", s)], constants: ["s": s],
                                      attributes: ["mode": .string("nearest")])[0]
            XCTAssertEqual(y.dtype, x.dtype)
            XCTAssertEqual(y.shape, [1, 2, 6, 8])
            XCTAssertEqual(y.int64s, want.map { Int64($0) }, "\(x.dtype)")
        }
        // 0.75× on the last two axes of [2, 4, 8] → [2, 3, 6]: x_in = (o + 0.5)/0.75 − 0.5, ties down.
        let x3 = Tensor(shape: [2, 4, 8], values: (0..<64).map { Float($0) })
        let y3 = try runSingleNode(.resize, inputs: [("x", x3), ("", Tensor(dtype: .f32, shape: [0])), ("s", floats([3], [1, 0.75, 0.75]))],
                                   constants: ["s": floats([3], [1, 0.75, 0.75])], attributes: ["mode": .string("nearest")])[0]
        func src(_ o: Int, _ len: Int) -> Int {
            let v = (Double(o) + 0.5) / 0.75 - 0.5, f = v.rounded(.down)
            return Swift.min(len - 1, Swift.max(0, Int(v - f > 0.5 ? f + 1 : f)))
        }
        var want3 = [Float]()
        for b in 0..<2 { for h in 0..<3 { for w in 0..<6 { want3.append(Float(b * 32 + src(h, 4) * 8 + src(w, 8))) } } }
        XCTAssertEqual(y3.shape, [2, 3, 6])
        XCTAssertEqual(y3.floats, want3)
    }

    func testOpset10InputsAndUpsampleRewrite() throws {
        // Hand-derived. Opset 10: Resize(X, scales), asymmetric; nearest downsampling rounds up.
        let x = floats([1, 1, 1, 4], [1, 2, 3, 4])
        let s = floats([4], [1, 1, 1, 0.6])
        let y = try runSingleNode(.resize, inputs: [("x", x), ("s", s)], constants: ["s": s], attributes: ["_opset": .int(10)])
        assertClose(y[0], floats([1, 1, 1, 2], [1, 3]))
        // Upsample (importer rewrite): scales as input #2, asymmetric + floor.
        let x2 = floats([1, 2], [1, 3])
        let s2 = floats([2], [1, 2])
        let n = try runSingleNode(.resize, inputs: [("x", x2), ("", Tensor(dtype: .f32, shape: [0])), ("s", s2)], constants: ["s": s2],
                                  attributes: ["_upsample": .int(1), "_opset": .int(9), "mode": .string("nearest")])
        assertClose(n[0], floats([1, 4], [1, 1, 3, 3]))
        let l = try runSingleNode(.resize, inputs: [("x", x2), ("", Tensor(dtype: .f32, shape: [0])), ("s", s2)], constants: ["s": s2],
                                  attributes: ["_upsample": .int(1), "_opset": .int(7), "mode": .string("linear")])
        assertClose(l[0], floats([1, 4], [1, 2, 3, 3]))
    }

    func testTfCropAndResizeExtrapolatesOutsideRoi() throws {
        // Hand-derived: roi [-0.5, 1.5] on 3 values, 5 outputs: x_ori = -1, 0, 1, 2, 3 -> edges extrapolate.
        let x = floats([3], [10, 20, 30])
        let roi = floats([2], [-0.5, 1.5])
        let z = int64s([1], [5])
        let y = try runSingleNode(.resize, inputs: [("x", x), ("roi", roi), ("", Tensor(dtype: .f32, shape: [0])), ("z", z)], constants: ["roi": roi, "z": z],
                                  attributes: ["mode": .string("linear"), "coordinate_transformation_mode": .string("tf_crop_and_resize"), "extrapolation_value": .float(-1)])
        assertClose(y[0], floats([5], [-1, 10, 20, 30, -1]))
    }

    func testRejectsMissingScalesAndBadMode() {
        XCTAssertThrowsError(try runSingleNode(.resize, inputs: [("x", x23)]))
        let s = floats([4], [1, 1, 2, 2])
        XCTAssertThrowsError(try runSingleNode(.resize, inputs: [("x", x23), ("", Tensor(dtype: .f32, shape: [0])), ("s", s)], constants: ["s": s],
                                               attributes: ["mode": .string("area")]))
    }
}

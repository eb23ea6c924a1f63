import PerchEngine
import PerchGraph
import XCTest

/// Asserts exact equality of dtype, shape and elements (data movement never changes values).
func assertSameElements(_ actual: Tensor, _ expected: Tensor, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.dtype, expected.dtype, "dtype", file: file, line: line)
    XCTAssertEqual(actual.shape, expected.shape, "shape", file: file, line: line)
    XCTAssertEqual(actual.bytes, expected.bytes, "bytes", file: file, line: line)
}

/// 0, 1, 2, … as float32 of `shape`: distinct values show any misplaced element.
func arangeFloats(_ shape: [Int]) -> Tensor {
    floats(shape, (0..<elementCount(shape)).map { Float($0) })
}

private func f16Bits(_ shape: [Int], _ bits: [UInt16]) -> Tensor {
    Tensor(dtype: .f16, shape: shape, bytes: bits.withUnsafeBytes { [UInt8]($0) })
}

private let int64Max = Int64.max
private let int64Min = Int64.min

/// Hand-picked cases beyond ONNX's node tests (integer and half dtypes, attribute forms of old
/// opsets, clamping, zero-size tensors). Expected values from NumPy.
final class DataMovementTests: XCTestCase {
    func testConcatInt64WithEmptyInputNegativeAxis() throws {
        let a = int64s([2, 2], [0, 1, 2, 3])
        let b = Tensor(dtype: .i64, shape: [2, 0])
        let c = int64s([2, 3], [10, 11, 12, 13, 14, 15])
        let y = try runSingleNode(.concat, inputs: [("a", a), ("b", b), ("c", c)], attributes: ["axis": .int(-1)])[0]
        assertSameElements(y, int64s([2, 5], [0, 1, 10, 11, 12, 2, 3, 13, 14, 15]))
    }

    func testSplitAttributeFormOpset11() throws {
        let x = Tensor(shape: [3, 3], values: [Int32](0..<9))
        let ys = try runSingleNode(.split, inputs: [("x", x)], outputs: ["a", "b"],
                                   attributes: ["_opset": .int(11), "axis": .int(1), "split": .ints([1, 2])])
        assertSameElements(ys[0], Tensor(shape: [3, 1], values: [Int32]([0, 3, 6])))
        assertSameElements(ys[1], Tensor(shape: [3, 2], values: [Int32]([1, 2, 4, 5, 7, 8])))
    }

    func testSplitNumOutputsUneven() throws {
        let ys = try runSingleNode(.split, inputs: [("x", arangeFloats([5, 2]))], outputs: ["a", "b"],
                                   attributes: ["_opset": .int(18), "num_outputs": .int(2)])
        assertSameElements(ys[0], arangeFloats([3, 2]))
        assertSameElements(ys[1], floats([2, 2], [6, 7, 8, 9]))
    }

    func testSliceNegativeStepsAndInt64Sentinels() throws {
        let x = int64s([2, 3, 4], (0..<24).map { Int64($0) })
        let y = try runSingleNode(
            .slice,
            inputs: [("x", x), ("s", int64s([2], [int64Max, 0])), ("e", int64s([2], [int64Min, int64Max])),
                     ("a", int64s([2], [2, -2])), ("t", int64s([2], [-2, 2]))],
            constants: ["s": int64s([2], [int64Max, 0]), "e": int64s([2], [int64Min, int64Max]),
                        "a": int64s([2], [2, -2]), "t": int64s([2], [-2, 2])])[0]
        assertSameElements(y, int64s([2, 2, 2], [3, 1, 11, 9, 15, 13, 23, 21]))
    }

    func testSliceAttributeFormOpset9() throws {
        let x = int64s([2, 3, 4], (0..<24).map { Int64($0) })
        let y = try runSingleNode(.slice, inputs: [("x", x)],
                                  attributes: ["_opset": .int(9), "starts": .ints([0, 1]), "ends": .ints([1, -1]), "axes": .ints([0, 2])])[0]
        assertSameElements(y, int64s([1, 3, 2], [1, 2, 5, 6, 9, 10]))
    }

    func testSliceEmptyResult() throws {
        let y = try runSingleNode(.slice, inputs: [("x", arangeFloats([4])), ("s", int64s([1], [3])), ("e", int64s([1], [1]))],
                                  constants: ["s": int64s([1], [3]), "e": int64s([1], [1])])[0]
        assertSameElements(y, floats([0], []))
    }

    func testGatherHalfDataInt32NegativeIndices2D() throws {
        let data = f16Bits([3, 4], [0, 14336, 15360, 15872, 16384, 16640, 16896, 17152, 17408, 17536, 17664, 17792])
        let idx = Tensor(shape: [2, 2], values: [Int32]([0, -1, 2, 1]))
        let y = try runSingleNode(.gather, inputs: [("d", data), ("i", idx)], attributes: ["axis": .int(1)])[0]
        assertSameElements(y, f16Bits([3, 2, 2], [0, 15872, 15360, 14336, 16384, 17152, 16896, 16640, 17408, 17792, 17664, 17536]))
    }

    func testGatherScalarIndexDropsAxis() throws {
        let y = try runSingleNode(.gather, inputs: [("d", arangeFloats([3, 2])), ("i", int64s([], [-1]))])[0]
        assertSameElements(y, floats([2], [4, 5]))
    }

    func testReshapeZeroAndInferred() throws {
        let y = try runSingleNode(.reshape, inputs: [("x", arangeFloats([2, 3, 4])), ("s", int64s([3], [0, -1, 2]))],
                                  constants: ["s": int64s([3], [0, -1, 2])])[0]
        assertSameElements(y, arangeFloats([2, 6, 2]))
    }

    func testReshapeAllowZeroKeepsZero() throws {
        let x = Tensor(dtype: .f32, shape: [0, 3])
        let y = try runSingleNode(.reshape, inputs: [("x", x), ("s", int64s([2], [3, 0]))],
                                  constants: ["s": int64s([2], [3, 0])], attributes: ["allowzero": .int(1)])[0]
        XCTAssertEqual(y.shape, [3, 0])
    }

    func testFlattenAxes() throws {
        let y0 = try runSingleNode(.flatten, inputs: [("x", arangeFloats([2, 3, 4]))], attributes: ["axis": .int(0)])[0]
        assertSameElements(y0, arangeFloats([1, 24]))
        let y1 = try runSingleNode(.flatten, inputs: [("x", arangeFloats([2, 3, 4]))], attributes: ["axis": .int(-1)])[0]
        assertSameElements(y1, arangeFloats([6, 4]))
    }

    func testTransposeDefaultUInt8() throws {
        let x = Tensor(shape: [2, 3, 4], values: [UInt8](0..<24))
        let y = try runSingleNode(.transpose, inputs: [("x", x)])[0]
        assertSameElements(y, Tensor(shape: [4, 3, 2], values: [UInt8]([0, 12, 4, 16, 8, 20, 1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23])))
    }

    func testTransposePerm4D() throws {
        let y = try runSingleNode(.transpose, inputs: [("x", arangeFloats([2, 3, 4, 5]))], attributes: ["perm": .ints([0, 2, 3, 1])])[0]
        XCTAssertEqual(y.shape, [2, 4, 5, 3])
        let v = y.floats
        XCTAssertEqual(Array(v[0..<20]), [0, 20, 40, 1, 21, 41, 2, 22, 42, 3, 23, 43, 4, 24, 44, 5, 25, 45, 6, 26])
        XCTAssertEqual(Array(v[115...]), [98, 118, 79, 99, 119])
    }

    /// Transposes whose last two dimensions swap take 16 × 16 tiles: ragged tile edges, an outer
    /// dimension, 1-, 4- and 8-byte elements, each element against its index arithmetic.
    func testTiledTransposeOfTheLastTwoDimensions() throws {
        let (a, b, c) = (3, 37, 45)
        let y = try runSingleNode(.transpose, inputs: [("x", arangeFloats([a, b, c]))], attributes: ["perm": .ints([0, 2, 1])])[0]
        XCTAssertEqual(y.shape, [a, c, b])
        var want = [Float]()
        for i in 0..<a { for k in 0..<c { for j in 0..<b { want.append(Float((i * b + j) * c + k)) } } }
        XCTAssertEqual(y.floats, want)
        let bytes = Tensor(shape: [b, c], values: (0..<(b * c)).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let yb = try runSingleNode(.transpose, inputs: [("x", bytes)])[0]
        var wantBytes = [UInt8]()
        for q in 0..<(b * c) {
            let source: Int = (q % b) * c + q / b
            wantBytes.append(UInt8(truncatingIfNeeded: source * 7))
        }
        XCTAssertEqual(yb.bytes, wantBytes)
        let longs = Tensor(shape: [16, 17, 1], values: (0..<(16 * 17)).map { Int64($0) * 1_000_000_007 })
        let yl = try runSingleNode(.transpose, inputs: [("x", longs)], attributes: ["perm": .ints([1, 2, 0])])[0]
        var wantLongs = [Int64]()
        for q in 0..<(16 * 17) {
            let source: Int = (q % 16) * 17 + q / 16
            wantLongs.append(Int64(source) * 1_000_000_007)
        }
        XCTAssertEqual(yl.int64s, wantLongs)
    }

    func testSqueezeUnsqueezeAttributeForms() throws {
        let x = arangeFloats([1, 3, 1, 2])
        let s = try runSingleNode(.squeeze, inputs: [("x", x)], attributes: ["_opset": .int(11), "axes": .ints([-2])])[0]
        assertSameElements(s, arangeFloats([1, 3, 2]))
        let all = try runSingleNode(.squeeze, inputs: [("x", x)])[0]
        assertSameElements(all, arangeFloats([3, 2]))
        let u = try runSingleNode(.unsqueeze, inputs: [("x", arangeFloats([3, 2]))], attributes: ["_opset": .int(11), "axes": .ints([-1, 0])])[0]
        assertSameElements(u, arangeFloats([1, 3, 2, 1]))
        let u13 = try runSingleNode(.unsqueeze, inputs: [("x", arangeFloats([3, 2])), ("a", int64s([1], [1]))], constants: ["a": int64s([1], [1])])[0]
        assertSameElements(u13, arangeFloats([3, 1, 2]))
    }

    func testPadModesInt64() throws {
        let x = int64s([2, 3], [0, 1, 2, 3, 4, 5])
        func pad(_ mode: String, _ pads: [Int64], opset: Int = 11) throws -> Tensor {
            try runSingleNode(.pad, inputs: [("x", x), ("p", int64s([4], pads))], constants: ["p": int64s([4], pads)],
                              attributes: ["_opset": .int(opset), "mode": .string(mode)])[0]
        }
        assertSameElements(try pad("reflect", [1, 2, 1, 2]),
                           int64s([4, 7], [5, 4, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2, 1, 0, 5, 4, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2, 1, 0]))
        assertSameElements(try pad("edge", [0, 1, 1, 0]), int64s([3, 4], [0, 0, 1, 2, 3, 3, 4, 5, 3, 3, 4, 5]))
        assertSameElements(try pad("wrap", [1, 0, 0, 4], opset: 19),
                           int64s([3, 7], [3, 4, 5, 3, 4, 5, 3, 0, 1, 2, 0, 1, 2, 0, 3, 4, 5, 3, 4, 5, 3]))
    }

    func testPadConstantAxesAndOldAttributeForm() throws {
        let x = floats([2, 3], [0, 1, 2, 3, 4, 5])
        let expected = floats([2, 6], [7.5, 0, 1, 2, 7.5, 7.5, 7.5, 3, 4, 5, 7.5, 7.5])
        let y18 = try runSingleNode(.pad, inputs: [("x", x), ("p", int64s([2], [1, 2])), ("v", floats([], [7.5])), ("a", int64s([1], [-1]))],
                                    constants: ["p": int64s([2], [1, 2]), "a": int64s([1], [-1])], attributes: ["_opset": .int(18)])[0]
        assertSameElements(y18, expected)
        let y2 = try runSingleNode(.pad, inputs: [("x", x)], attributes: ["_opset": .int(2), "pads": .ints([0, 1, 0, 2]), "value": .float(7.5)])[0]
        assertSameElements(y2, expected)
    }

    func testPadNegativeCrops() throws {
        let y = try runSingleNode(.pad, inputs: [("x", arangeFloats([3, 4])), ("p", int64s([4], [-1, 1, 0, -2]))],
                                  constants: ["p": int64s([4], [-1, 1, 0, -2])])[0]
        assertSameElements(y, floats([2, 3], [0, 4, 5, 0, 8, 9]))
    }

    func testShapeStartEndAndSize() throws {
        let x = arangeFloats([2, 3, 4, 5])
        let s = try runSingleNode(.shape, inputs: [("x", x)], attributes: ["start": .int(-3), "end": .int(-1)])[0]
        assertSameElements(s, int64s([2], [3, 4]))
        let n = try runSingleNode(.size, inputs: [("x", x)])[0]
        assertSameElements(n, int64s([], [120]))
    }

    func testIdentityAndDropoutMask() throws {
        let x = Tensor(shape: [2, 2], values: [Int32]([1, -2, 3, -4]))
        assertSameElements(try runSingleNode(.identity, inputs: [("x", x)])[0], x)
        let ys = try runSingleNode(.dropout, inputs: [("x", arangeFloats([2, 3]))], outputs: ["y", "m"], attributes: ["_opset": .int(13)])
        assertSameElements(ys[0], arangeFloats([2, 3]))
        assertSameElements(ys[1], Tensor(shape: [2, 3], values: [Bool](repeating: true, count: 6)))
    }

    func testDropoutTrainingIsUnsupported() throws {
        let t = Tensor(shape: [], values: [true])
        XCTAssertThrowsError(try runSingleNode(.dropout, inputs: [("x", arangeFloats([2])), ("r", floats([], [0.3])), ("t", t)],
                                               constants: ["r": floats([], [0.3]), "t": t]))
    }

    func testExpandBidirectional() throws {
        let x = Tensor(shape: [3, 1], values: [Int32]([0, 1, 2]))
        let y = try runSingleNode(.expand, inputs: [("x", x), ("s", int64s([3], [2, 1, 4]))], constants: ["s": int64s([3], [2, 1, 4])])[0]
        assertSameElements(y, Tensor(shape: [2, 3, 4], values: [Int32]([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])))
        let y2 = try runSingleNode(.expand, inputs: [("x", arangeFloats([2, 3])), ("s", int64s([3], [3, 1, 1]))], constants: ["s": int64s([3], [3, 1, 1])])[0]
        assertSameElements(y2, floats([3, 2, 3], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]))
    }

    func testConstantOfShape() throws {
        let shape = int64s([2], [2, 3])
        let z = try runSingleNode(.constantOfShape, inputs: [("s", shape)], constants: ["s": shape])[0]
        assertSameElements(z, Tensor(dtype: .f32, shape: [2, 3]))
        let v = try runSingleNode(.constantOfShape, inputs: [("s", shape)], constants: ["s": shape],
                                  attributes: ["value": .tensor(int64s([1], [-7]))])[0]
        assertSameElements(v, int64s([2, 3], [Int64](repeating: -7, count: 6)))
        let scalarShape = int64s([0], [])
        let s = try runSingleNode(.constantOfShape, inputs: [("s", scalarShape)], constants: ["s": scalarShape],
                                  attributes: ["value": .tensor(floats([1], [2.5]))])[0]
        assertSameElements(s, floats([], [2.5]))
    }

    func testRange() throws {
        func range(_ a: Tensor, _ b: Tensor, _ c: Tensor) throws -> Tensor {
            try runSingleNode(.range, inputs: [("a", a), ("b", b), ("c", c)], constants: ["a": a, "b": b, "c": c])[0]
        }
        assertSameElements(try range(floats([], [5]), floats([], [1]), floats([], [-1.5])), floats([3], [5, 3.5, 2]))
        assertSameElements(try range(int64s([], [-3]), int64s([], [10]), int64s([], [4])), int64s([4], [-3, 1, 5, 9]))
        assertSameElements(try range(int64s([], [3]), int64s([], [1]), int64s([], [1])), int64s([0], []))
    }

    func testTileInt8() throws {
        let x = Tensor(shape: [2, 3], values: [Int8]([1, -2, 3, 4, 5, -6]))
        let r = int64s([2], [2, 2])
        let y = try runSingleNode(.tile, inputs: [("x", x), ("r", r)], constants: ["r": r])[0]
        assertSameElements(y, Tensor(shape: [4, 6], values: [Int8]([1, -2, 3, 1, -2, 3, 4, 5, -6, 4, 5, -6, 1, -2, 3, 1, -2, 3, 4, 5, -6, 4, 5, -6])))
        let r0 = int64s([2], [0, 1])
        let e = try runSingleNode(.tile, inputs: [("x", x), ("r", r0)], constants: ["r": r0])[0]
        XCTAssertEqual(e.shape, [0, 3])
    }

    func testConstantAttributes() throws {
        assertSameElements(try runSingleNode(.constant, inputs: [], attributes: ["value_ints": .ints([3, -1])])[0], int64s([2], [3, -1]))
        assertSameElements(try runSingleNode(.constant, inputs: [], attributes: ["value_float": .float(0.25)])[0], floats([], [0.25]))
    }
}

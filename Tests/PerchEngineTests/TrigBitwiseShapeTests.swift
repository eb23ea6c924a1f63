import PerchEngine
import PerchGraph
import XCTest

/// Trigonometric, bitwise and shape-generating operators: Tan, Acos, Acosh, Asin, Asinh, Atan,
/// Atanh, Cosh, Sinh, BitwiseAnd/Or/Xor/Not, BitShift, EyeLike, CenterCropPad and MaxUnpool.
/// References from NumPy, pasted as literals.
final class TrigBitwiseShapeTests: XCTestCase {
    let x = floats([4], [0.5, -0.3, 0.9, -0.99])

    func unary(_ op: OpType, _ input: Tensor) throws -> Tensor { try runSingleNode(op, inputs: [("x", input)])[0] }

    func testTrigonometricFunctions() throws {
        assertClose(try unary(.tan, x), floats([4], [0.546302, -0.309336, 1.260158, -1.523677]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.acos, x), floats([4], [1.047198, 1.875489, 0.451027, 3.000053]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.asin, x), floats([4], [0.523599, -0.304693, 1.11977, -1.429257]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.atan, x), floats([4], [0.463648, -0.291457, 0.732815, -0.780373]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.asinh, x), floats([4], [0.481212, -0.295673, 0.808867, -0.874285]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.atanh, x), floats([4], [0.549306, -0.30952, 1.472219, -2.646653]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.cosh, x), floats([4], [1.127626, 1.045338, 1.433086, 1.531406]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.sinh, x), floats([4], [0.521095, -0.30452, 1.026517, -1.159829]), rtol: 1e-5, atol: 1e-5)
        assertClose(try unary(.acosh, floats([4], [1, 1.5, 3, 10])), floats([4], [0, 0.962424, 1.762747, 2.993223]), rtol: 1e-5, atol: 1e-5)
        // Outside the domain: NaN.
        XCTAssertTrue(try unary(.acos, floats([1], [2])).doubles[0].isNaN)
    }

    func int8s(_ shape: [Int], _ v: [Int8]) -> Tensor { Tensor(shape: shape, values: v) }

    func testBitwiseOpsOnInt8WithBroadcast() throws {
        let a = int8s([2, 2], [-5, 3, 127, -128]), b = int8s([2], [6, -1])
        XCTAssertEqual(try runSingleNode(.bitwiseAnd, inputs: [("a", a), ("b", b)])[0].int64s, [2, 3, 6, -128])
        XCTAssertEqual(try runSingleNode(.bitwiseOr, inputs: [("a", a), ("b", b)])[0].int64s, [-1, -1, 127, -1])
        XCTAssertEqual(try runSingleNode(.bitwiseXor, inputs: [("a", a), ("b", b)])[0].int64s, [-3, -4, 121, 127])
        let not = try runSingleNode(.bitwiseNot, inputs: [("a", a)])[0]
        XCTAssertEqual(not.dtype, .i8)
        XCTAssertEqual(not.int64s, [4, -4, -128, 127])
    }

    func testBitShiftUInt8AndUInt64() throws {
        let u = Tensor(shape: [3], values: [UInt8(1), 255, 16]), s = Tensor(shape: [3], values: [UInt8(3), 1, 9])
        XCTAssertEqual(try runSingleNode(.bitShift, inputs: [("u", u), ("s", s)], attributes: ["direction": .string("LEFT")])[0].int64s, [8, 254, 0])
        XCTAssertEqual(try runSingleNode(.bitShift, inputs: [("u", u), ("s", s)], attributes: ["direction": .string("RIGHT")])[0].int64s, [0, 127, 0])
        let w = Tensor(shape: [3], values: [UInt64(1), 1 << 63, 12_345_678_901]), t = Tensor(shape: [3], values: [UInt64(63), 1, 3])
        let l = try runSingleNode(.bitShift, inputs: [("w", w), ("t", t)], attributes: ["direction": .string("LEFT")])[0]
        l.withUnsafeBufferPointer(of: UInt64.self) { XCTAssertEqual(Array($0), [1 << 63, 0, 98_765_431_208]) }
        let r = try runSingleNode(.bitShift, inputs: [("w", w), ("t", t)], attributes: ["direction": .string("RIGHT")])[0]
        r.withUnsafeBufferPointer(of: UInt64.self) { XCTAssertEqual(Array($0), [0, 1 << 62, 1_543_209_862]) }
    }

    func testEyeLikeOffDiagonalAndDtype() throws {
        let x = Tensor(shape: [3, 4], values: [Int32](repeating: 7, count: 12))
        let y = try runSingleNode(.eyeLike, inputs: [("x", x)], attributes: ["k": .int(1), "dtype": .int(1)])[0]
        XCTAssertEqual(y.dtype, .f32)
        assertClose(y, floats([3, 4], [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))
        let z = try runSingleNode(.eyeLike, inputs: [("x", x)], attributes: ["k": .int(-2)])[0]
        XCTAssertEqual(z.dtype, .i32)
        XCTAssertEqual(z.int64s, [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    func testCenterCropPadCropsAndPads() throws {
        var v = [Float]()
        for i in 0..<15 { v.append(Float(i)) }
        let x = floats([5, 3], v)
        // Rows 5 → 2 (crop from 1), columns 3 → 6 (pad 1 before, 2 after).
        let shape = int64s([2], [2, 6])
        let y = try runSingleNode(.centerCropPad, inputs: [("x", x), ("s", shape)], constants: ["s": shape])[0]
        assertClose(y, floats([2, 6], [0, 3, 4, 5, 0, 0, 0, 6, 7, 8, 0, 0]))
        // Shape fed at run time, one axis.
        let one = int64s([1], [4])
        let z = try runSingleNode(.centerCropPad, inputs: [("x", x), ("s", one)], attributes: ["axes": .ints([-2])])[0]
        assertClose(z, floats([4, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))
    }

    func testMaxUnpoolWithAndWithoutOutputShape() throws {
        let x = floats([1, 1, 2, 2], [5, 6, 7, 8])
        let i = int64s([1, 1, 2, 2], [5, 7, 13, 15])
        let attrs: [String: Attribute] = ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]
        let y = try runSingleNode(.maxUnpool, inputs: [("x", x), ("i", i)], attributes: attrs)[0]
        assertClose(y, floats([1, 1, 4, 4], [0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 7, 0, 8]))
        let shape = int64s([4], [1, 1, 5, 5])
        let z = try runSingleNode(.maxUnpool, inputs: [("x", x), ("i", i), ("s", shape)], constants: ["s": shape], attributes: attrs)[0]
        assertClose(z, floats([1, 1, 5, 5], [0, 0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 8, 0, 0, 0, 0, 0, 0]))
    }
}

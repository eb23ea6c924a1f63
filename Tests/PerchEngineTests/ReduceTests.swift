import PerchEngine
import PerchGraph
import XCTest

/// Reference values from NumPy (pasted literals).
final class ReduceTests: XCTestCase {
    let x = floats([2, 2, 3], [1, 2, 3, 4, 5, 7, 0, -1, 2, 3, 3, 3])

    func testAxesAttributeAndInput() throws {
        // Opset < 18 form: axes attribute.
        let m = try runSingleNode(.reduceMean, inputs: [("x", x)], attributes: ["axes": .ints([1])])[0]
        assertClose(m, floats([2, 1, 3], [2.5, 3.5, 5, 1.5, 1, 2.5]))
        // Opset >= 13 form: axes input (a small feed, known at prepare time), keepdims 0.
        let s = try runSingleNode(.reduceSum, inputs: [("x", x), ("axes", int64s([2], [0, -1]))], attributes: ["keepdims": .int(0)])[0]
        assertClose(s, floats([2], [7, 25]))
        let p = try runSingleNode(.reduceProd, inputs: [("x", x), ("axes", int64s([1], [0]))], constants: ["axes": int64s([1], [0])])[0]
        assertClose(p, floats([1, 2, 3], [0, -2, 6, 12, 15, 21]))
        let mn = try runSingleNode(.reduceMin, inputs: [("x", x)], attributes: ["axes": .ints([-1]), "keepdims": .int(0)])[0]
        assertClose(mn, floats([2, 2], [1, 4, -1, 3]))
    }

    func testReduceAllAndNoop() throws {
        let all = try runSingleNode(.reduceMax, inputs: [("x", x)])[0]
        assertClose(all, floats([1, 1, 1], [7]))
        let noop = try runSingleNode(.reduceSum, inputs: [("x", x), ("axes", int64s([0], []))], attributes: ["noop_with_empty_axes": .int(1)])[0]
        assertClose(noop, x)
        let empty = try runSingleNode(.reduceSum, inputs: [("x", floats([2, 0, 4], [])), ("axes", int64s([1], [1]))])[0]
        assertClose(empty, floats([2, 1, 4], [Float](repeating: 0, count: 8)))
        let emptyMax = try runSingleNode(.reduceMax, inputs: [("x", floats([2, 0], [])), ("axes", int64s([1], [1]))])[0]
        XCTAssertEqual(emptyMax.floats, [-Float.infinity, -Float.infinity])
    }

    func testIntegerAndBoolReductions() throws {
        let big = int64s([2, 2], [9_007_199_254_740_993, 1, 2, 3])
        XCTAssertEqual(try runSingleNode(.reduceSum, inputs: [("x", big)], attributes: ["axes": .ints([1]), "keepdims": .int(0)])[0].int64s, [9_007_199_254_740_994, 5])
        let b = Tensor(shape: [2, 2], values: [true, false, false, false])
        let r = try runSingleNode(.reduceMax, inputs: [("x", b)], attributes: ["axes": .ints([1])])[0]
        XCTAssertEqual(r.dtype, .bool)
        XCTAssertEqual(r.int64s, [1, 0])
    }

    func testArgMaxArgMin() throws {
        let v = floats([2, 3], [1, 3, 3, 2, 2, 0])
        let a = try runSingleNode(.argMax, inputs: [("x", v)], attributes: ["axis": .int(1)])[0]
        XCTAssertEqual(a.dtype, .i64)
        XCTAssertEqual(a.shape, [2, 1])
        XCTAssertEqual(a.int64s, [1, 0])
        let last = try runSingleNode(.argMax, inputs: [("x", v)], attributes: ["axis": .int(-1), "keepdims": .int(0), "select_last_index": .int(1)])[0]
        XCTAssertEqual(last.shape, [2])
        XCTAssertEqual(last.int64s, [2, 1])
        let mn = try runSingleNode(.argMin, inputs: [("x", x)], attributes: ["axis": .int(-1), "keepdims": .int(0)])[0]
        XCTAssertEqual(mn.int64s, [0, 0, 1, 0])
        let col = try runSingleNode(.argMin, inputs: [("x", int64s([3, 2], [5, 1, 2, 9, 4, 0]))])[0]
        XCTAssertEqual(col.shape, [1, 2])
        XCTAssertEqual(col.int64s, [1, 2])
    }
}

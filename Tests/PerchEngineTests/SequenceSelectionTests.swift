import PerchEngine
import PerchGraph
import XCTest

/// ReverseSequence (DataMovement), Compress and Unique (Indexing, value-dependent).
/// References from NumPy (`np.compress`, `np.unique(..., True, True, True)`),
/// pasted as literals.
final class SequenceSelectionTests: XCTestCase {
    func bools(_ shape: [Int], _ values: [Bool]) -> Tensor {
        Tensor(dtype: .bool, shape: shape, bytes: values.map { $0 ? 1 : 0 })
    }

    func testReverseSequenceTimeMajorAndBatchMajor() throws {
        var v = [Float]()
        for i in 0..<12 { v.append(Float(i)) }
        // time = 4, batch = 3; lengths 4, 1, 2.
        let t = try runSingleNode(.reverseSequence, inputs: [("x", floats([4, 3], v)), ("l", int64s([3], [4, 1, 2]))])[0]
        assertClose(t, floats([4, 3], [9, 1, 5, 6, 4, 2, 3, 7, 8, 0, 10, 11]))
        // batch = 2, time = 4; lengths 3, 0.
        let b = try runSingleNode(.reverseSequence, inputs: [("x", floats([2, 4], Array(v[0..<8]))), ("l", int64s([2], [3, 0]))],
                                  attributes: ["batch_axis": .int(0), "time_axis": .int(1)])[0]
        assertClose(b, floats([2, 4], [2, 1, 0, 3, 4, 5, 6, 7]))
    }

    func testCompressAxesAndFlattened() throws {
        let a = floats([3, 2], [1, 2, 3, 4, 5, 6])
        let c0 = bools([3], [false, true, true])
        let r0 = try runSingleNode(.compress, inputs: [("a", a), ("c", c0)], constants: ["c": c0], attributes: ["axis": .int(0)])[0]
        assertClose(r0, floats([2, 2], [3, 4, 5, 6]))
        let c1 = bools([2], [false, true])
        let r1 = try runSingleNode(.compress, inputs: [("a", a), ("c", c1)], constants: ["c": c1], attributes: ["axis": .int(-1)])[0]
        assertClose(r1, floats([3, 1], [2, 4, 6]))
        // Condition fed at run time: the node runs in a value-dependent stage.
        let c2 = bools([5], [true, false, false, true, true])
        let r2 = try runSingleNode(.compress, inputs: [("a", a), ("c", c2)])[0]
        assertClose(r2, floats([3], [1, 4, 5]))
    }

    func testUniqueSortedAndFirstOccurrenceOrder() throws {
        let x = floats([6], [2, 1, 1, 3, 4, 3])
        let s = try runSingleNode(.unique, inputs: [("x", x)], constants: ["x": x], outputs: ["y", "i", "inv", "n"])
        assertClose(s[0], floats([4], [1, 2, 3, 4]))
        XCTAssertEqual(s[1].int64s, [1, 0, 3, 4])
        XCTAssertEqual(s[2].int64s, [1, 0, 0, 2, 3, 2])
        XCTAssertEqual(s[3].int64s, [2, 1, 2, 1])
        let u = try runSingleNode(.unique, inputs: [("x", x)], outputs: ["y", "i", "inv", "n"], attributes: ["sorted": .int(0)])
        assertClose(u[0], floats([4], [2, 1, 3, 4]))
        XCTAssertEqual(u[1].int64s, [0, 1, 3, 4])
        XCTAssertEqual(u[2].int64s, [0, 1, 1, 2, 3, 2])
        XCTAssertEqual(u[3].int64s, [1, 2, 2, 1])
    }

    func testUniqueColumnsAlongAxis1() throws {
        let x = floats([3, 3], [1, 0, 0, 1, 0, 0, 2, 3, 4])
        let r = try runSingleNode(.unique, inputs: [("x", x)], outputs: ["y", "i", "inv", "n"], attributes: ["axis": .int(1)])
        assertClose(r[0], floats([3, 3], [0, 0, 1, 0, 0, 1, 3, 4, 2]))
        XCTAssertEqual(r[1].int64s, [1, 2, 0])
        XCTAssertEqual(r[2].int64s, [2, 0, 1])
        XCTAssertEqual(r[3].int64s, [1, 1, 1])
    }
}

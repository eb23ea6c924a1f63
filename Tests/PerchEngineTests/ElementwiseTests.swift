import PerchEngine
import PerchGraph
import XCTest

/// Reference values computed with NumPy (pasted as literals) or by hand.
final class ElementwiseTests: XCTestCase {
    let a = floats([2, 3], [1, 2, 3, 4, 5, 6])

    func testSubRowBroadcast() throws {
        let y = try runSingleNode(.sub, inputs: [("a", a), ("b", floats([3], [10, 20, 30]))])[0]
        assertClose(y, floats([2, 3], [-9, -18, -27, -6, -15, -24]))
    }

    func testDivScalarAndColumnPow() throws {
        let d = try runSingleNode(.div, inputs: [("a", a), ("b", floats([], [4]))])[0]
        assertClose(d, floats([2, 3], [0.25, 0.5, 0.75, 1, 1.25, 1.5]))
        let p = try runSingleNode(.pow, inputs: [("a", a), ("b", floats([2, 1], [2, 3]))])[0]
        assertClose(p, floats([2, 3], [1, 4, 9, 64, 125, 216]))
    }

    func testBothSidesBroadcast() throws {
        // [2,1,3] + [1,2,1] -> [2,2,3]
        let y = try runSingleNode(.add, inputs: [("a", floats([2, 1, 3], [1, 2, 3, 4, 5, 6])), ("b", floats([1, 2, 1], [10, 20]))])[0]
        assertClose(y, floats([2, 2, 3], [11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26]))
        let m = try runSingleNode(.mul, inputs: [("a", floats([3, 1], [1, 2, 3])), ("b", floats([1, 2], [10, -1]))])[0]
        assertClose(m, floats([3, 2], [10, -1, 20, -2, 30, -3]))
    }

    func testVariadic() throws {
        let b = floats([3], [10, 20, 30])
        let c = floats([2, 1], [2, 3])
        let mean = try runSingleNode(.mean, inputs: [("a", a), ("b", b), ("c", c)])[0]
        assertClose(mean, floats([2, 3], [4.3333335, 8, 11.666667, 5.6666665, 9.333333, 13]))
        let mx = try runSingleNode(.max, inputs: [("a", a), ("b", floats([1], [3.5])), ("c", floats([2, 1], [0, 5.5]))])[0]
        assertClose(mx, floats([2, 3], [3.5, 3.5, 3.5, 5.5, 5.5, 6]))
        let one = try runSingleNode(.sum, inputs: [("a", a)])[0]
        assertClose(one, a)
        let mn = try runSingleNode(.min, inputs: [("a", int64s([3], [5, -2, 7])), ("b", int64s([3], [1, 0, 9]))])[0]
        XCTAssertEqual(mn.int64s, [1, -2, 7])
    }

    func testIntegerDivTruncatesAndKeepsInt64Exact() throws {
        let y = try runSingleNode(.div, inputs: [("a", int64s([4], [7, -7, 9_007_199_254_740_993, 5])), ("b", int64s([4], [2, 2, 1, 0]))])[0]
        XCTAssertEqual(y.dtype, .i64)
        XCTAssertEqual(y.int64s, [3, -3, 9_007_199_254_740_993, 0])
        let u = try runSingleNode(.div, inputs: [("a", Tensor(shape: [2], values: [UInt8(200), 7])), ("b", Tensor(shape: [2], values: [UInt8(3), 2]))])[0]
        XCTAssertEqual(u.dtype, .u8)
        XCTAssertEqual(u.int64s, [66, 3])
    }

    func testPowTypes() throws {
        let f = try runSingleNode(.pow, inputs: [("x", floats([3], [1, 2, 3])), ("e", int64s([3], [4, 5, 6]))])[0]
        XCTAssertEqual(f.dtype, .f32)
        assertClose(f, floats([3], [1, 32, 729]))
        let i = try runSingleNode(.pow, inputs: [("x", Tensor(shape: [3], values: [Int32(1), 2, 3])), ("e", floats([3], [1, 2, 3]))])[0]
        XCTAssertEqual(i.dtype, .i32)
        XCTAssertEqual(i.int64s, [1, 4, 27])
        let ii = try runSingleNode(.pow, inputs: [("x", int64s([2], [3, -2])), ("e", int64s([2], [3, 5]))])[0]
        XCTAssertEqual(ii.int64s, [27, -32])
    }

    func testUnary() throws {
        let x = floats([4], [0.25, 1, 4, 2.5])
        assertClose(try runSingleNode(.sqrt, inputs: [("x", x)])[0], floats([4], [0.5, 1, 2, 1.5811388]))
        assertClose(try runSingleNode(.exp, inputs: [("x", floats([2], [0, 1]))])[0], floats([2], [1, 2.7182817]))
        assertClose(try runSingleNode(.log, inputs: [("x", floats([2], [1, 2.7182817]))])[0], floats([2], [0, 1]))
        assertClose(try runSingleNode(.reciprocal, inputs: [("x", x)])[0], floats([4], [4, 1, 0.25, 0.4]))
        assertClose(try runSingleNode(.floor, inputs: [("x", floats([3], [-1.5, 1.5, 2]))])[0], floats([3], [-2, 1, 2]))
        assertClose(try runSingleNode(.ceil, inputs: [("x", floats([3], [-1.5, 1.5, 2]))])[0], floats([3], [-1, 2, 2]))
        assertClose(try runSingleNode(.neg, inputs: [("x", floats([2], [-1.5, 2]))])[0], floats([2], [1.5, -2]))
        assertClose(try runSingleNode(.abs, inputs: [("x", floats([2], [-1.5, 2]))])[0], floats([2], [1.5, 2]))
        XCTAssertEqual(try runSingleNode(.abs, inputs: [("x", int64s([2], [-5, 3]))])[0].int64s, [5, 3])
        let d = try runSingleNode(.sqrt, inputs: [("x", Tensor(shape: [2], values: [Double(9), 2]))])[0]
        XCTAssertEqual(d.dtype, .f64)
        XCTAssertEqual(d.doubles, [3, 2.0.squareRoot()])
    }

    func testComparisonsAndLogic() throws {
        let x = floats([2, 2], [1, 2, 3, 4])
        let t = floats([2], [2, 3])
        XCTAssertEqual(try runSingleNode(.less, inputs: [("x", x), ("t", t)])[0].int64s, [1, 1, 0, 0])
        XCTAssertEqual(try runSingleNode(.greater, inputs: [("x", x), ("t", t)])[0].int64s, [0, 0, 1, 1])
        XCTAssertEqual(try runSingleNode(.lessOrEqual, inputs: [("x", x), ("t", t)])[0].int64s, [1, 1, 0, 0])
        XCTAssertEqual(try runSingleNode(.greaterOrEqual, inputs: [("x", x), ("t", t)])[0].int64s, [0, 0, 1, 1])
        let eq = try runSingleNode(.equal, inputs: [("x", int64s([3], [1, 2, 3])), ("t", int64s([1], [2]))])[0]
        XCTAssertEqual(eq.dtype, .bool)
        XCTAssertEqual(eq.int64s, [0, 1, 0])
        let p = Tensor(shape: [4], values: [true, true, false, false])
        let q = Tensor(shape: [4], values: [true, false, true, false])
        XCTAssertEqual(try runSingleNode(.and, inputs: [("p", p), ("q", q)])[0].int64s, [1, 0, 0, 0])
        XCTAssertEqual(try runSingleNode(.or, inputs: [("p", p), ("q", q)])[0].int64s, [1, 1, 1, 0])
        XCTAssertEqual(try runSingleNode(.xor, inputs: [("p", p), ("q", q)])[0].int64s, [0, 1, 1, 0])
        XCTAssertEqual(try runSingleNode(.not, inputs: [("p", p)])[0].int64s, [0, 0, 1, 1])
    }

    /// The typed comparison loops (int32, int64, uint8, float32) on the broadcasts a one-hot
    /// uses — Equal(Expand(bytes), range) as Magika's byte classifier writes it — and on
    /// NaN, then the bool → float Cast after them.
    func testTypedComparisonsAndOneHot() throws {
        let codes: [Int32] = [0, 5, 256, 7, 5, 300, -1, 256]
        let bytes = Tensor(shape: [1, 8, 1], values: codes)
        let range = Tensor(shape: [1, 1, 257], values: (0..<257).map { Int32($0) })
        let hot = try runSingleNode(.equal, inputs: [("b", bytes), ("r", range)])[0]
        XCTAssertEqual(hot.shape, [1, 8, 257])
        var want = [Int64](repeating: 0, count: 8 * 257)
        for (i, c) in codes.enumerated() where c >= 0 && c < 257 { want[i * 257 + Int(c)] = 1 }
        XCTAssertEqual(hot.int64s, want)
        let asFloat = try runSingleNode(.cast, inputs: [("h", hot)], attributes: ["to": .int(1)])[0]
        XCTAssertEqual(asFloat.floats, want.map { Float($0) })
        // Every comparison on each type: row broadcast [2, 3] against [3] and column [2, 1].
        let lhs: [Int64] = [1, 5, 3, 4, 2, 9], row: [Int64] = [3, 5, 2], col: [Int64] = [4, 2]
        func expect(_ op: OpType, _ f: (Int64, Int64) -> Bool) throws {
            let byRow = (0..<6).map { f(lhs[$0], row[$0 % 3]) ? Int64(1) : 0 }
            let byCol = (0..<6).map { f(lhs[$0], col[$0 / 3]) ? Int64(1) : 0 }
            let typed: [(Tensor, Tensor, Tensor)] = [
                (Tensor(shape: [2, 3], values: lhs.map { Int32($0) }), Tensor(shape: [3], values: row.map { Int32($0) }), Tensor(shape: [2, 1], values: col.map { Int32($0) })),
                (Tensor(shape: [2, 3], values: lhs), Tensor(shape: [3], values: row), Tensor(shape: [2, 1], values: col)),
                (Tensor(shape: [2, 3], values: lhs.map { UInt8($0) }), Tensor(shape: [3], values: row.map { UInt8($0) }), Tensor(shape: [2, 1], values: col.map { UInt8($0) })),
                (floats([2, 3], lhs.map { Float($0) }), floats([3], row.map { Float($0) }), floats([2, 1], col.map { Float($0) })),
            ]
            for (x, r, c) in typed {
                XCTAssertEqual(try runSingleNode(op, inputs: [("x", x), ("r", r)])[0].int64s, byRow, "\(op) \(x.dtype) by row")
                XCTAssertEqual(try runSingleNode(op, inputs: [("x", x), ("c", c)])[0].int64s, byCol, "\(op) \(x.dtype) by column")
            }
        }
        try expect(.equal) { $0 == $1 }
        try expect(.less) { $0 < $1 }
        try expect(.greater) { $0 > $1 }
        try expect(.lessOrEqual) { $0 <= $1 }
        try expect(.greaterOrEqual) { $0 >= $1 }
        // NaN is unequal and unordered.
        let nan = floats([3], [.nan, 1, .nan]), one = floats([3], [.nan, 1, 2])
        XCTAssertEqual(try runSingleNode(.equal, inputs: [("a", nan), ("b", one)])[0].int64s, [0, 1, 0])
        XCTAssertEqual(try runSingleNode(.lessOrEqual, inputs: [("a", nan), ("b", one)])[0].int64s, [0, 1, 0])
        XCTAssertEqual(try runSingleNode(.greater, inputs: [("a", nan), ("b", one)])[0].int64s, [0, 0, 0])
    }

    /// Add, Sub and Mul on int32 and int64 (typed loops): same shapes, a row, a column, a scalar on
    /// either side and a both-sides broadcast, against the definition with wrap-around in the
    /// element's width; a tensor large enough to split across 2 threads gives the same values.
    func testIntegerArithmeticBroadcastsAndWraps() throws {
        var rng = SplitMix(seed: 31)
        let big = Int64(Int32.max) - 5
        let a: [Int64] = (0..<12).map { i in i == 3 ? big : i == 8 ? -big : Int64(truncatingIfNeeded: rng.next() % 2001) - 1000 }
        let shapes: [([Int], [Int])] = [([3, 4], [3, 4]), ([3, 4], [4]), ([3, 4], [3, 1]), ([3, 4], []), ([], [3, 4]), ([3, 1], [1, 4])]
        for (op, f) in [(OpType.add, { (x: Int64, y: Int64) in x &+ y }), (.sub, { $0 &- $1 }), (.mul, { $0 &* $1 })] {
            for (sa, sb) in shapes {
                let na = sa.reduce(1, *), nb = sb.reduce(1, *)
                let av = Array(a.prefix(na)), bv: [Int64] = (0..<nb).map { i in i == 1 ? 7 : Int64(truncatingIfNeeded: rng.next() % 61) - 30 }
                let out = sa.count == 2 && sb.count == 2 && sa[1] == 1 ? [3, 4] : (sa.isEmpty ? sb : sa)
                var want = [Int64]()
                for i in 0..<out[0] { for j in 0..<out[1] {
                    func at(_ v: [Int64], _ s: [Int]) -> Int64 {
                        s.isEmpty ? v[0] : s.count == 1 ? v[j] : v[(s[0] == 1 ? 0 : i) * s[1] + (s[1] == 1 ? 0 : j)]
                    }
                    want.append(f(at(av, sa), at(bv, sb)))
                } }
                let y32 = try runSingleNode(op, inputs: [("a", Tensor(shape: sa, values: av.map { Int32($0) })), ("b", Tensor(shape: sb, values: bv.map { Int32($0) }))])[0]
                XCTAssertEqual(y32.dtype, .i32)
                XCTAssertEqual(y32.int64s, want.map { Int64(Int32(truncatingIfNeeded: $0)) }, "\(op) int32 \(sa) \(sb)")
                let y64 = try runSingleNode(op, inputs: [("a", Tensor(shape: sa, values: av)), ("b", Tensor(shape: sb, values: bv))])[0]
                XCTAssertEqual(y64.int64s, want, "\(op) int64 \(sa) \(sb)")
            }
        }
        // ConvInteger's bias Add: [1, C, H, W] + [1, C, 1, 1], split across threads.
        let (c, hw) = (64, 40 * 30)
        let sums = (0..<(c * hw)).map { _ in Int32(truncatingIfNeeded: rng.next() % 100_001) - 50_000 }
        let bias = (0..<c).map { Int32($0 * 1001) - 30_000 }
        let inputs = [("s", Tensor(shape: [1, c, 40, 30], values: sums)), ("b", Tensor(shape: [1, c, 1, 1], values: bias))]
        let one = try runSingleNode(.add, inputs: inputs)[0], two = try runSingleNode(.add, inputs: inputs, threads: 2)[0]
        XCTAssertEqual(one.int64s, (0..<(c * hw)).map { Int64(sums[$0]) + Int64(bias[$0 / hw]) })
        XCTAssertEqual(two.int64s, one.int64s)
    }

    func testWhereThreeWayBroadcast() throws {
        let c = Tensor(shape: [2, 1], values: [true, false])
        let x = floats([3], [1, 2, 3])
        let y = floats([2, 3], [10, 20, 30, 40, 50, 60])
        assertClose(try runSingleNode(.where, inputs: [("c", c), ("x", x), ("w", y)])[0], floats([2, 3], [1, 2, 3, 40, 50, 60]))
        let wi = try runSingleNode(.where, inputs: [("c", Tensor(shape: [3], values: [false, true, false])), ("x", int64s([1], [7])), ("w", int64s([3], [1, 2, 3]))])[0]
        XCTAssertEqual(wi.int64s, [1, 7, 3])
    }

    func testShapeMismatchIsInvalid() {
        XCTAssertThrowsError(try runSingleNode(.add, inputs: [("a", floats([2], [1, 2])), ("b", floats([3], [1, 2, 3]))]))
    }
}

import PerchEngine
import PerchGraph
import XCTest

/// Reference values from NumPy (exp / sum, pasted literals).
final class SoftmaxTests: XCTestCase {
    let x = floats([2, 2, 3], [1, 2, 3, 4, 5, 7, 0, -1, 2, 3, 3, 3])

    func testSoftmaxOpset13LastAxisAndAxis1() throws {
        let y = try runSingleNode(.softmax, inputs: [("x", x)])[0]
        assertClose(y, floats([2, 2, 3], [0.09003057317038046, 0.24472847105479764, 0.6652409557748218, 0.04201006613406605, 0.11419519938459449, 0.8437947344813395, 0.11419519938459449, 0.04201006613406605, 0.8437947344813395, 1.0 / 3, 1.0 / 3, 1.0 / 3]))
        let y1 = try runSingleNode(.softmax, inputs: [("x", x)], attributes: ["axis": .int(1)])[0]
        assertClose(y1, floats([2, 2, 3], [0.04742587317756679, 0.04742587317756679, 0.017986209962091555, 0.9525741268224334, 0.9525741268224334, 0.9820137900379085, 0.04742587317756679, 0.017986209962091555, 0.2689414213699951, 0.9525741268224334, 0.9820137900379085, 0.7310585786300049]))
    }

    func testSoftmaxBeforeOpset13CoercesTo2D() throws {
        // Default axis 1 with opset 11: each [2,3] block is one row of 6.
        let y = try runSingleNode(.softmax, inputs: [("x", x)], attributes: ["_opset": .int(11)])[0]
        assertClose(y, floats([2, 2, 3], [0.0020440709113515422, 0.005556360814408618, 0.015103754634168845, 0.04105626176356527, 0.1116024902963574, 0.8246370615801483, 0.014489908916040642, 0.0053305395946581305, 0.1070667498490197, 0.2910376005467605, 0.2910376005467605, 0.2910376005467605]))
        let l = try runSingleNode(.logSoftmax, inputs: [("x", x)], attributes: ["_opset": .int(11), "axis": .int(1)])[0]
        assertClose(l, floats([2, 2, 3], [-6.1928119148004015, -5.1928119148004015, -4.1928119148004015, -3.192811914800402, -2.1928119148004015, -0.19281191480040175, -4.234302808656836, -5.234302808656836, -2.234302808656836, -1.2343028086568364, -1.2343028086568364, -1.2343028086568364]), rtol: 1e-5, atol: 1e-5)
    }

    func testLogSoftmaxAndLargeNumbers() throws {
        let l = try runSingleNode(.logSoftmax, inputs: [("x", x)])[0]
        assertClose(l, floats([2, 2, 3], [-2.40760596444438, -1.4076059644443804, -0.40760596444438046, -3.1698460195562856, -2.1698460195562856, -0.16984601955628567, -2.1698460195562856, -3.1698460195562856, -0.16984601955628567, -1.0986122886681098, -1.0986122886681098, -1.0986122886681098]), rtol: 1e-5, atol: 1e-5)
        let big = try runSingleNode(.softmax, inputs: [("x", floats([2], [10000, 10001]))])[0]
        assertClose(big, floats([2], [0.2689414213699951, 0.7310585786300049]))
        let d = try runSingleNode(.softmax, inputs: [("x", Tensor(shape: [2], values: [Double(1), 2]))])[0]
        XCTAssertEqual(d.dtype, .f64)
        XCTAssertEqual(d.doubles[0], 0.2689414213699951, accuracy: 1e-12)
    }

    /// Rows of ≥ 16 along the last axis take the vector row kernel: it agrees with the float64
    /// path (the generic loop) on rows with and without a multiple-of-8 length and large values.
    func testContiguousRowKernelAgreesWithFloat64() throws {
        var rng = TestRandom(seed: 5)
        for (rows, n) in [(3, 37), (4, 64), (1, 16), (2, 1001)] {
            var v = rng.floats(rows * n).map { $0 * 12 }
            v[0] = 3000  // a large logit: the max shift keeps exp finite
            let y = try runSingleNode(.softmax, inputs: [("x", floats([rows, n], v))])[0].floats
            let d = try runSingleNode(.softmax, inputs: [("x", Tensor(shape: [rows, n], values: v.map { Double($0) }))])[0].doubles
            for i in 0..<(rows * n) {
                XCTAssertEqual(Double(y[i]), d[i], accuracy: 1e-6 * max(1, d[i]) + 1e-7, "row \(i / n) of \(n), element \(i % n)")
            }
            for r in 0..<rows { XCTAssertEqual(y[(r * n)..<((r + 1) * n)].reduce(0, +), 1, accuracy: 1e-5) }
        }
    }

    /// A non-last axis runs down the columns of each [n, inner] slab (the vector column kernel,
    /// blocks of 256 columns): against the float64 path, for 1 and 2 threads (same values), with
    /// inner sizes off the 8-column vectors and past one block, and a large logit in one column.
    func testNonLastAxisAgreesWithFloat64() throws {
        var rng = TestRandom(seed: 9)
        for (shape, axis) in [([2, 16, 4, 37], 1), ([1, 5, 600], 1), ([7, 1000], 0), ([3, 2, 9], 1)] {
            let count = shape.reduce(1, *)
            var v = rng.floats(count).map { $0 * 12 }
            v[1] = 3000
            let x = floats(shape, v)
            let y = try runSingleNode(.softmax, inputs: [("x", x)], attributes: ["axis": .int(axis)])[0].floats
            let two = try runSingleNode(.softmax, inputs: [("x", x)], attributes: ["axis": .int(axis)], threads: 2)[0].floats
            XCTAssertEqual(two, y, "\(shape) axis \(axis) on 2 threads")
            let d = try runSingleNode(.softmax, inputs: [("x", Tensor(shape: shape, values: v.map { Double($0) }))],
                                      attributes: ["axis": .int(axis)])[0].doubles
            for i in 0..<count {
                XCTAssertEqual(Double(y[i]), d[i], accuracy: 1e-6 * max(1, d[i]) + 1e-7, "\(shape) axis \(axis) element \(i)")
            }
            // Each slice along the axis sums to 1.
            let n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
            for o in 0..<(count / (n * inner)) { for j in 0..<inner {
                var sum: Float = 0
                for k in 0..<n { sum += y[(o * n + k) * inner + j] }
                XCTAssertEqual(sum, 1, accuracy: 1e-5)
            } }
        }
    }
}

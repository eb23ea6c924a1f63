import PerchEngine
import PerchGraph
import XCTest

/// HannWindow, HammingWindow, BlackmanWindow (Kernels/Signal), Det (Kernels/GEMM) and Col2Im
/// (Kernels/Conv). References from ONNX's reference evaluator and NumPy, pasted as literals.
final class WindowDetCol2ImTests: XCTestCase {
    func testWindowsPeriodicSymmetricAndFedSize() throws {
        let size = int64s([], [5])
        let hann = try runSingleNode(.hannWindow, inputs: [("s", size)], constants: ["s": size])[0]
        assertClose(hann, floats([5], [0, 0.345492, 0.904509, 0.904508, 0.345491]), rtol: 1e-5, atol: 1e-5)
        let hamming = try runSingleNode(.hammingWindow, inputs: [("s", size)], constants: ["s": size], attributes: ["periodic": .int(0)])[0]
        assertClose(hamming, floats([5], [0.086957, 0.543478, 1, 0.543478, 0.086957]), rtol: 1e-5, atol: 1e-5)
        // Size fed at run time: the node runs in a value-dependent stage; double output.
        let blackman = try runSingleNode(.blackmanWindow, inputs: [("s", size)], attributes: ["output_datatype": .int(11)])[0]
        XCTAssertEqual(blackman.dtype, .f64)
        assertClose(blackman, floats([5], [0, 0.20077, 0.84923, 0.84923, 0.20077]), rtol: 1e-5, atol: 1e-5)
    }

    func testDetBatchedPivotingAndSingular() throws {
        let x = floats([2, 3, 3], [2, 1, 0, 1, 3, 1, 0, 1, 4, 1, 2, 3, 4, 5, 6, 7, 8, 10])
        assertClose(try runSingleNode(.det, inputs: [("x", x)])[0], floats([2], [18, -3]), rtol: 1e-5, atol: 1e-5)
        // A zero first pivot needs a row swap (sign flips); a singular matrix gives 0.
        assertClose(try runSingleNode(.det, inputs: [("x", floats([2, 2], [0, 1, 2, 3]))])[0], floats([], [-2]))
        assertClose(try runSingleNode(.det, inputs: [("x", floats([2, 2], [1, 2, 2, 4]))])[0], floats([], [0]))
    }

    func testCol2ImOverlapsPadsStridesDilations() throws {
        var v = [Float]()
        for i in 0..<32 { v.append(Float(i)) }
        let image = int64s([2], [3, 3]), block = int64s([2], [2, 2])
        let y = try runSingleNode(.col2Im, inputs: [("x", floats([1, 8, 4], v)), ("i", image), ("b", block)],
                                  constants: ["i": image, "b": block])[0]
        assertClose(y, floats([1, 2, 3, 3], [0, 5, 5, 10, 30, 20, 10, 25, 15, 16, 37, 21, 42, 94, 52, 26, 57, 31]))
        let image2 = int64s([2], [3, 4])
        let z = try runSingleNode(.col2Im, inputs: [("x", floats([1, 4, 4], Array(v[0..<16]))), ("i", image2), ("b", block)],
                                  constants: ["i": image2, "b": block],
                                  attributes: ["pads": .ints([0, 1, 1, 1]), "strides": .ints([2, 2]), "dilations": .ints([1, 2])])[0]
        assertClose(z, floats([1, 1, 3, 4], [0, 5, 0, 5, 0, 21, 0, 13, 0, 9, 0, 7]))
    }
}

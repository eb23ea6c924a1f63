import PerchEngine
import PerchGraph
import XCTest

/// DFT (opset 17–19 attribute axis, opset 20 input axis), STFT and MelWeightMatrix. References
/// from `np.fft` and ONNX's reference evaluator, pasted as literals.
final class DFTTests: XCTestCase {
    let signal = floats([1, 5, 1], [1, 2, 0, -1, 3])

    func testDFTRealFullAndOnesidedPadded() throws {
        let y = try runSingleNode(.dft, inputs: [("x", signal)], attributes: ["axis": .int(1), "_opset": .int(17)])[0]
        assertClose(y, floats([1, 5, 2], [5, 0, 3.3541, 0.36327, -3.3541, 1.53884, -3.3541, -1.53884, 3.3541, -0.36327]), rtol: 1e-4, atol: 1e-4)
        // Opset 20: axis as input 2 (−2 here), dft_length 6 zero-pads.
        let n = int64s([], [6]), axis = int64s([], [-2])
        let o = try runSingleNode(.dft, inputs: [("x", signal), ("n", n), ("a", axis)], constants: ["n": n, "a": axis],
                                  attributes: ["onesided": .int(1), "_opset": .int(20)])[0]
        assertClose(o, floats([1, 4, 2], [5, 0, 1.5, 0.86603, -2.5, -4.33013, 3, 0]), rtol: 1e-4, atol: 1e-4)
    }

    func testDFTInverseOfComplexWithFedAxis() throws {
        let z = floats([1, 4, 2], [1, 1, 2, -1, 0, 0.5, -1, 0])
        // Axis fed at run time: the node runs in a value-dependent stage.
        let y = try runSingleNode(.dft, inputs: [("x", z), ("", z), ("a", int64s([], [1]))], attributes: ["inverse": .int(1), "_opset": .int(20)])[0]
        assertClose(y, floats([1, 4, 2], [0.5, 0.125, 0.5, 0.875, 0, 0.625, 0, -0.625]), rtol: 1e-4, atol: 1e-4)
    }

    func testSTFTWithWindowOnesided() throws {
        let s = floats([1, 9, 1], [0, 1, 2, 3, 2, 1, 0, -1, -2])
        let step = int64s([], [2])
        let y = try runSingleNode(.stft, inputs: [("s", s), ("step", step), ("w", floats([4], [0, 0.5, 1, 0.5]))], constants: ["step": step])[0]
        assertClose(y, floats([1, 3, 3, 2], [4, 0, -2, 1, 0, 0, 4, 0, -2, -1, 0, 0, 0, 0, 0, -1, 0, 0]), rtol: 1e-4, atol: 1e-4)
    }

    func testMelWeightMatrixTriangles() throws {
        let scalars = [("m", Tensor(shape: [], values: [Int32(3)])), ("n", Tensor(shape: [], values: [Int32(32)])),
                       ("r", Tensor(shape: [], values: [Int32(1600)])), ("lo", floats([], [50])), ("hi", floats([], [800]))]
        var constants = [String: Tensor]()
        for (name, t) in scalars { constants[name] = t }
        let y = try runSingleNode(.melWeightMatrix, inputs: scalars, constants: constants)[0]
        var expected = [Float](repeating: 0, count: 51)
        let nonzero: [(Int, Float)] = [(6, 0.5), (9, 1), (12, 0.5), (13, 0.5), (16, 1), (19, 0.75), (20, 0.25), (22, 0.5), (23, 0.5),
                                       (25, 0.25), (26, 0.75), (29, 1), (32, 2.0 / 3), (35, 1.0 / 3)]
        for (i, v) in nonzero { expected[i] = v }
        assertClose(y, floats([17, 3], expected), rtol: 1e-5, atol: 1e-5)
    }
}

import PerchEngine
import PerchGraph
import XCTest

/// Reference values from NumPy formulas of the ONNX spec (pasted literals).
final class NormalizationTests: XCTestCase {
    let x = floats([1, 2, 2, 3], (0..<12).map { Float($0) - 5 })
    let scale = floats([2], [1.5, -0.5])
    let bias = floats([2], [0.1, 0.2])
    let mean = floats([2], [0.5, 1])
    let variance = floats([2], [2, 0.25])

    func testBatchNormInference() throws {
        let y = try runSingleNode(.batchNormalization, inputs: [("x", x), ("s", scale), ("b", bias), ("m", mean), ("v", variance)])[0]
        assertClose(y, floats([1, 2, 2, 3], [-5.733616360766345, -4.67295884062701, -3.6123013204876737, -2.5516438003483386, -1.490986280209003, -0.4303287600696677, 0.2, -0.79998000059998, -1.79996000119996, -2.7999400017999396, -3.7999200023999196, -4.799900002999899]), rtol: 1e-5, atol: 1e-5)
        // Same values when the parameters are constants (weights buffer path).
        let c = try runSingleNode(.batchNormalization, inputs: [("x", x), ("s", scale), ("b", bias), ("m", mean), ("v", variance)],
                                  constants: ["s": scale, "b": bias, "m": mean, "v": variance])[0]
        assertClose(c, y)
    }

    func testBatchNormTrainingMode() throws {
        let r = try runSingleNode(.batchNormalization, inputs: [("x", x), ("s", scale), ("b", bias), ("m", mean), ("v", variance)],
                                  outputs: ["y", "rm", "rv"], attributes: ["training_mode": .int(1)])
        assertClose(r[0], floats([1, 2, 2, 3], [-2.0957713999578833, -1.21746283997473, -0.33915427999157666, 0.5391542799915767, 1.4174628399747302, 2.2957713999578835, 0.9319237999859611, 0.6391542799915767, 0.3463847599971922, 0.05361524000280779, -0.23915427999157668, -0.5319237999859612]), rtol: 1e-5, atol: 1e-5)
        assertClose(r[1], floats([2], [0.2, 1.25]))
        assertClose(r[2], floats([2], [2.091666666666667, 0.5166666666666667]))
    }

    func testLayerNormAxis1WithBroadcastScaleAndStats() throws {
        let v = floats([2, 2, 3], [1, 2, 3, 4, 5, 7, 0, -1, 2, 3, 3, 3])
        let r = try runSingleNode(.layerNormalization, inputs: [("x", v), ("w", floats([3], [1, 2, -1])), ("b", floats([3], [0.5, 0, 0]))],
                                  outputs: ["y", "mean", "inv"], attributes: ["axis": .int(1)])
        assertClose(r[0], floats([2, 2, 3], [-0.8522450689659409, -1.6903063362074262, 0.33806126724148516, 0.6690306336207427, 1.352245068965941, -1.6903063362074264, -0.5425700304764403, -3.336224097524609, -0.20851400609528797, 1.3340560243811521, 1.6681120487623042, -0.8340560243811521]), rtol: 1e-4, atol: 1e-5)
        assertClose(r[1], floats([2, 1, 1], [3.6666666666666665, 1.6666666666666667]))
        assertClose(r[2], floats([2, 1, 1], [0.5070919008622279, 0.6255420182858641]), rtol: 1e-4)
        // Default axis -1, no bias: rows [1,2,3] -> (x-2)/sqrt(2/3+eps).
        let d = try runSingleNode(.layerNormalization, inputs: [("x", floats([1, 3], [1, 2, 3])), ("w", floats([3], [1, 1, 1]))])[0]
        let inv = 1 / (2.0 / 3.0 + 1e-5).squareRoot()
        assertClose(d, floats([1, 3], [Float(-inv), 0, Float(inv)]), rtol: 1e-4)
    }

    func testLRN() throws {
        let z = floats([1, 4, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8])
        let y = try runSingleNode(.lrn, inputs: [("x", z)], attributes: ["size": .int(3), "alpha": .float(0.1)])[0]
        assertClose(y, floats([1, 4, 1, 2], [0.8059274488676564, 1.3634632397609994, 1.679875817440657, 1.8156289292314263, 1.8492776153534711, 1.8311652982413276, 2.7552688138931662, 2.6636270325619216]), rtol: 1e-5)
    }
}

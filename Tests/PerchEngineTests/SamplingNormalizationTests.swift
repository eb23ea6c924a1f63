import PerchEngine
import PerchGraph
import XCTest

/// GridSample, AffineGrid, RoiAlign, DeformConv, GroupNormalization, MeanVarianceNormalization,
/// LpNormalization and LpPool. References from ONNX's reference evaluator (onnx 1.17) or NumPy, pasted as literals.
final class SamplingNormalizationTests: XCTestCase {
    var image: Tensor {
        var v = [Float]()
        for i in 0..<12 { v.append(Float(i)) }
        return floats([1, 1, 3, 4], v)
    }
    let grid = floats([1, 2, 4, 2], [-1, -1, 0.3, -0.2, 1.2, 0.9, -0.8, 0.5, 0.1, 1.0, -1.3, -0.4, 0.6, 0.05, 2.0, -2.5])

    func sample(_ mode: String, _ padding: String, _ alignCorners: Int) throws -> Tensor {
        try runSingleNode(.gridSample, inputs: [("x", image), ("g", grid)],
                          attributes: ["mode": .string(mode), "padding_mode": .string(padding), "align_corners": .int(alignCorners)])[0]
    }

    func testGridSampleModesAndPadding() throws {
        assertClose(try sample("linear", "zeros", 0), floats([1, 1, 2, 4], [0, 4.9, 0.715, 6.3, 4.85, 0, 7, 0]), rtol: 1e-4, atol: 1e-4)
        assertClose(try sample("bilinear", "reflection", 1), floats([1, 1, 2, 4], [0, 5.15, 10.3, 6.3, 9.65, 2.85, 6.6, 7.5]), rtol: 1e-4, atol: 1e-4)
        assertClose(try sample("nearest", "reflection", 0), floats([1, 1, 2, 4], [0, 6, 11, 8, 10, 0, 7, 9]))
        assertClose(try sample("nearest", "zeros", 1), floats([1, 1, 2, 4], [0, 6, 11, 8, 10, 4, 6, 0]))
        assertClose(try sample("bicubic", "border", 1),
                    floats([1, 1, 2, 4], [0, 4.84062, 10.699, 6.60675, 9.61588, 2.016, 6.78862, 3]), rtol: 1e-4, atol: 1e-4)
        assertClose(try sample("cubic", "reflection", 0),
                    floats([1, 1, 2, 4], [-0.9375, 4.58575, 11.75, 7.16688, 10.408, 1.33925, 7.20181, 8.73438]), rtol: 1e-4, atol: 1e-4)
    }

    let rois = floats([3, 4], [0.5, 0.5, 4.2, 3.1, 1, 0, 5.5, 4.9, -1, 2, 2, 6])
    let batchIndices = int64s([3], [0, 1, 1])
    var roiImage: Tensor {
        var v = [Float]()
        for i in 0..<60 { v.append(Float(i % 7)) }
        return floats([2, 1, 5, 6], v)
    }

    func roiAlign(_ ctm: String, _ mode: String) throws -> Tensor {
        try runSingleNode(.roiAlign, inputs: [("x", roiImage), ("r", rois), ("b", batchIndices)],
                          attributes: ["coordinate_transformation_mode": .string(ctm), "mode": .string(mode),
                                       "output_height": .int(2), "output_width": .int(3)])[0]
    }

    func testRoiAlignAvgMaxAndCoordinateModes() throws {
        assertClose(try roiAlign("half_pixel", "avg"), floats([3, 1, 2, 3], [
            1.71083, 1.2, 2.43333, 4.85729, 1.86911, 1.24161, 2.49444, 3.99444, 4.56476, 2.12031, 1.575, 3.075, 3, 3, 0.5, 5, 5, 6,
        ]), rtol: 1e-4, atol: 1e-4)
        assertClose(try roiAlign("output_half_pixel", "avg"), floats([3, 1, 2, 3], [
            1.7287, 1.2, 2.43333, 4.84854, 1.9475, 1.13333, 2.525, 4.025, 4.51337, 1.46024, 1.73889, 3.17639, 4.25, 3, 1.375, 2.5, 2.75, 1.5,
        ]), rtol: 1e-4, atol: 1e-4)
        assertClose(try roiAlign("output_half_pixel", "max"), floats([3, 1, 2, 3], [
            2.30375, 1.08625, 2.20687, 4.24375, 4.45625, 1.56042, 2.07083, 2.7125, 4.79167, 3.75, 1.60938, 3.43333, 3, 1.5, 1.5, 5, 3, 3,
        ]), rtol: 1e-4, atol: 1e-4)
        // float64 runs the generic path.
        let d = try runSingleNode(.roiAlign, inputs: [("x", Tensor(shape: roiImage.shape, values: roiImage.doubles)),
                                                      ("r", Tensor(shape: rois.shape, values: rois.doubles)), ("b", batchIndices)],
                                  attributes: ["coordinate_transformation_mode": .string("output_half_pixel"), "mode": .string("max"),
                                               "output_height": .int(2), "output_width": .int(3)])[0]
        assertClose(d, floats([3, 1, 2, 3], [
            2.30375, 1.08625, 2.20687, 4.24375, 4.45625, 1.56042, 2.07083, 2.7125, 4.79167, 3.75, 1.60938, 3.43333, 3, 1.5, 1.5, 5, 3, 3,
        ]), rtol: 1e-4, atol: 1e-4)
        let fixed = try runSingleNode(.roiAlign, inputs: [("x", roiImage), ("r", rois), ("b", batchIndices)],
                                      attributes: ["output_height": .int(2), "output_width": .int(2), "sampling_ratio": .int(2),
                                                   "spatial_scale": .float(0.5)])[0]
        assertClose(fixed, floats([3, 1, 2, 2], [0.74994, 1.05771, 3.44586, 0.65039, 2.35313, 3.47812, 1.225, 2.35, 1, 1.15625, 0.875, 0.89453]),
                    rtol: 1e-4, atol: 1e-4)
    }

    func testAffineGridAlignCornersAndFedSize() throws {
        let theta = floats([1, 2, 3], [0.9, -0.2, 0.1, 0.3, 1.1, -0.4])
        let size = int64s([4], [1, 1, 2, 3])
        let a = try runSingleNode(.affineGrid, inputs: [("t", theta), ("s", size)], constants: ["s": size])[0]
        assertClose(a, floats([1, 2, 3, 2], [-0.4, -1.15, 0.2, -0.95, 0.8, -0.75, -0.6, -0.05, 0, 0.15, 0.6, 0.35]), rtol: 1e-5, atol: 1e-5)
        // Size fed at run time: planned in a value-dependent stage.
        let c = try runSingleNode(.affineGrid, inputs: [("t", theta), ("s", size)], attributes: ["align_corners": .int(1)])[0]
        assertClose(c, floats([1, 2, 3, 2], [-0.6, -1.8, 0.3, -1.5, 1.2, -1.2, -1, 0.4, -0.1, 0.7, 0.8, 1]), rtol: 1e-5, atol: 1e-5)
    }

    func testDeformConvOffsetGroupsMaskBiasAndGroups() throws {
        var xv = [Float](), ov = [Float](), mv = [Float]()
        for i in 0..<32 { xv.append(Float(i) / 8) }
        for i in 0..<64 { ov.append(Float((i * 37) % 29 - 14) / 10) }
        for i in 0..<32 { mv.append(Float((i * 13) % 11) / 10) }
        let x = floats([1, 2, 4, 4], xv)
        let w = floats([2, 2, 2, 2], [1, -1, 0.5, 2, 0.25, 0.5, -0.75, 1, -1, 0.5, 0.25, 1, 2, 0, 1, -0.5])
        let attrs: [String: Attribute] = ["kernel_shape": .ints([2, 2]), "offset_group": .int(2), "pads": .ints([0, 0, 1, 1]), "strides": .ints([2, 2])]
        let y = try runSingleNode(.deformConv, inputs: [("x", x), ("w", w), ("o", floats([1, 16, 2, 2], ov)), ("b", floats([2], [0.5, -1])),
                                                          ("m", floats([1, 8, 2, 2], mv))], attributes: attrs)[0]
        assertClose(y, floats([1, 2, 2, 2], [1.49675, 0.94762, 3.3735, 4.09163, 4.95006, 1.54769, 0.65012, 4.86987]), rtol: 1e-4, atol: 1e-4)
        // group = 2, one offset group, no bias or mask: W[:, :1] and the first 8 offset channels.
        let w1 = floats([2, 1, 2, 2], [1, -1, 0.5, 2, -1, 0.5, 0.25, 1])
        let g = try runSingleNode(.deformConv, inputs: [("x", x), ("w", w1), ("o", floats([1, 8, 2, 2], Array(ov[0..<32])))],
                                  attributes: ["group": .int(2), "pads": .ints([0, 0, 1, 1]), "strides": .ints([2, 2])])[0]
        assertClose(g, floats([1, 2, 2, 2], [2.01875, 3.00375, 1.7, 4.3075, 3.72188, 4.03687, 1.76875, 2.485]), rtol: 1e-4, atol: 1e-4)
        // The same in float64 (the per-position Double path instead of fp32's sgemm).
        func f64(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, values: t.doubles) }
        let d = try runSingleNode(.deformConv, inputs: [("x", f64(x)), ("w", f64(w1)), ("o", f64(floats([1, 8, 2, 2], Array(ov[0..<32]))))],
                                  attributes: ["group": .int(2), "pads": .ints([0, 0, 1, 1]), "strides": .ints([2, 2])])[0]
        XCTAssertEqual(d.dtype, .f64)
        assertClose(d, floats([1, 2, 2, 2], [2.01875, 3.00375, 1.7, 4.3075, 3.72188, 4.03687, 1.76875, 2.485]), rtol: 1e-4, atol: 1e-4)
    }

    let groupInput = floats([1, 6, 2, 2], [0.5, -1, 2, 3, 1, 1, 4, -2, 0, 2, 2, 2, -3, 1, 0, 5, 1, 2, 3, 4, 6, 0, -1, 2])

    func testGroupNormalizationPerChannelAndPerGroupScale() throws {
        let c = try runSingleNode(.groupNormalization, inputs: [("x", groupInput), ("s", floats([6], [1, 2, 0.5, 1, -1, 3])),
                                                                 ("b", floats([6], [0, 1, 0, -1, 0, 2]))], attributes: ["num_groups": .int(3)])[0]
        assertClose(c, floats([1, 6, 2, 2], [
            -0.30495, -1.11816, 0.50825, 1.05039, 0.93223, 0.93223, 4.18506, -2.3206, -0.262, 0.20378, 0.20378, 0.20378,
            -2.92133, -1.05822, -1.524, 0.80489, 0.53882, 0.05987, -0.41908, -0.89803, 7.56776, -1.05329, -2.49013, 1.82039,
        ]), rtol: 1e-4, atol: 1e-4)
        let g = try runSingleNode(.groupNormalization, inputs: [("x", groupInput), ("s", floats([3], [2, 0.5, -1])), ("b", floats([3], [1, 0, 3]))],
                                  attributes: ["num_groups": .int(3)])[0]
        assertClose(g, floats([1, 6, 2, 2], [
            0.39009, -1.23632, 2.01651, 3.10079, 0.93223, 0.93223, 4.18506, -2.3206, -0.262, 0.20378, 0.20378, 0.20378,
            -0.96067, -0.02911, -0.262, 0.90244, 3.53882, 3.05987, 2.58092, 2.10197, 1.14408, 4.01776, 4.49671, 3.05987,
        ]), rtol: 1e-4, atol: 1e-4)
    }

    let small = floats([2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1, 0])

    func testMeanVarianceAndLpNormalization() throws {
        let m = try runSingleNode(.meanVarianceNormalization, inputs: [("x", small)], attributes: ["axes": .ints([0, 2])])[0]
        assertClose(m, floats([2, 3, 2], [-1.15079, -0.82199, -1.15079, -0.82199, 0.82199, 1.15079, 0.82199, 1.15079, 0.82199, 1.15079, -1.15079, -0.82199]),
                    rtol: 1e-4, atol: 1e-4)
        let l2 = try runSingleNode(.lpNormalization, inputs: [("x", small)], attributes: ["axis": .int(1)])[0]
        assertClose(l2, floats([2, 3, 2], [0.16903, 0.26726, 0.50709, 0.53452, 0.84515, 0.80178, 0.61159, 0.6247, 0.78633, 0.78087, -0.08737, 0]),
                    rtol: 1e-4, atol: 1e-4)
        let l1 = try runSingleNode(.lpNormalization, inputs: [("x", small)], attributes: ["p": .int(1)])[0]
        assertClose(l1, floats([2, 3, 2], [0.33333, 0.66667, 0.42857, 0.57143, 0.45455, 0.54545, 0.46667, 0.53333, 0.47368, 0.52632, -1, 0]),
                    rtol: 1e-4, atol: 1e-4)
    }

    func testLpPoolCeilModeAndDilations() throws {
        let x = floats([1, 1, 3, 4], [1, -2, 3, 0.5, -1, 2, 0, 4, 1, 1, -3, 2])
        let c = try runSingleNode(.lpPool, inputs: [("x", x)],
                                  attributes: ["kernel_shape": .ints([2, 2]), "p": .int(3), "strides": .ints([2, 2]), "ceil_mode": .int(1)])[0]
        assertClose(c, floats([1, 1, 2, 2], [2.62074, 4.5, 1.25992, 3.27107]), rtol: 1e-4, atol: 1e-4)
        let d = try runSingleNode(.lpPool, inputs: [("x", x)], attributes: ["kernel_shape": .ints([2, 2]), "dilations": .ints([2, 2])])[0]
        assertClose(d, floats([1, 1, 1, 2], [4.47214, 3.04138]), rtol: 1e-4, atol: 1e-4)
    }
}

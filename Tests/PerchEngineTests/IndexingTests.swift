import PerchEngine
import PerchGraph
import XCTest

/// The Indexing family (TopK, GatherElements, GatherND, ScatterND, ScatterElements, OneHot,
/// CumSum, Trilu, DepthToSpace, SpaceToDepth). References from NumPy, pasted as literals.
final class IndexingTests: XCTestCase {
    let row8 = floats([2, 8], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3])

    func testTopKLargestSmallestAndTies() throws {
        let k = int64s([1], [3])
        let r = try runSingleNode(.topK, inputs: [("x", row8), ("k", k)], constants: ["k": k], outputs: ["v", "i"])
        assertClose(r[0], floats([2, 3], [9, 6, 5, 9, 9, 8]))
        XCTAssertEqual(r[1].dtype, .i64)
        // Row 2 holds 9 twice: the lower index (4) comes first.
        XCTAssertEqual(r[1].int64s, [5, 7, 4, 4, 6, 3])
        let s = try runSingleNode(.topK, inputs: [("x", row8), ("k", k)], constants: ["k": k], outputs: ["v", "i"],
                                  attributes: ["largest": .int(0)])
        assertClose(s[0], floats([2, 3], [1, 1, 2, 3, 3, 5]))
        XCTAssertEqual(s[1].int64s, [1, 3, 6, 1, 7, 0])
    }

    func testTopKAxis0IntegerAndAttributeK() throws {
        let x = floats([3, 2], [1, 6, 4, 2, 4, 5])
        let k = int64s([1], [2])
        let r = try runSingleNode(.topK, inputs: [("x", x), ("k", k)], constants: ["k": k], outputs: ["v", "i"], attributes: ["axis": .int(0)])
        assertClose(r[0], floats([2, 2], [4, 6, 4, 5]))
        XCTAssertEqual(r[1].int64s, [1, 0, 2, 2])
        // Opset 1 form (attribute k) on int64 values beyond Double's exact range.
        let big = int64s([4], [9_007_199_254_740_993, 9_007_199_254_740_992, -5, 9_007_199_254_740_993])
        let b = try runSingleNode(.topK, inputs: [("x", big)], outputs: ["v", "i"], attributes: ["k": .int(3)])
        XCTAssertEqual(b[0].int64s, [9_007_199_254_740_993, 9_007_199_254_740_993, 9_007_199_254_740_992])
        XCTAssertEqual(b[1].int64s, [0, 3, 1])
    }

    func testGatherElementsNegativeIndices() throws {
        let d = floats([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let i = int64s([3, 2], [-1, 0, 1, 2, 0, 0])
        let y = try runSingleNode(.gatherElements, inputs: [("d", d), ("i", i)], attributes: ["axis": .int(1)])[0]
        assertClose(y, floats([3, 2], [3, 1, 5, 6, 7, 7]))
    }

    func testGatherNDWithAndWithoutBatchDims() throws {
        let d = int64s([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7])
        let b1 = try runSingleNode(.gatherND, inputs: [("d", d), ("i", int64s([2, 1], [1, 0]))], attributes: ["batch_dims": .int(1)])[0]
        XCTAssertEqual(b1.shape, [2, 2])
        XCTAssertEqual(b1.int64s, [2, 3, 4, 5])
        let full = try runSingleNode(.gatherND, inputs: [("d", d), ("i", int64s([2, 3], [1, 0, 1, 0, 1, -1]))])[0]
        XCTAssertEqual(full.shape, [2])
        XCTAssertEqual(full.int64s, [5, 3])
    }

    func testScatterNDNoneAndAdd() throws {
        let d = floats([4, 2], [0, 1, 2, 3, 4, 5, 6, 7])
        let i = int64s([3, 1], [1, 3, 1])
        let u = floats([3, 2], [1, 1, 2, 2, 5, 5])
        let none = try runSingleNode(.scatterND, inputs: [("d", d), ("i", i), ("u", u)])[0]
        assertClose(none, floats([4, 2], [0, 1, 5, 5, 4, 5, 2, 2]))
        let add = try runSingleNode(.scatterND, inputs: [("d", d), ("i", i), ("u", u)], attributes: ["reduction": .string("add")])[0]
        assertClose(add, floats([4, 2], [0, 1, 8, 9, 4, 5, 8, 9]))
    }

    func testScatterElementsReductions() throws {
        let d = floats([1, 5], [1, 2, 3, 4, 5])
        let i = int64s([1, 3], [1, 3, 1])
        let u = floats([1, 3], [1.1, 2, 3])
        let mul = try runSingleNode(.scatterElements, inputs: [("d", d), ("i", i), ("u", u)],
                                    attributes: ["axis": .int(1), "reduction": .string("mul")])[0]
        assertClose(mul, floats([1, 5], [1, 6.6, 3, 8, 5]))
        let mx = try runSingleNode(.scatterElements, inputs: [("d", d), ("i", i), ("u", u)],
                                   attributes: ["axis": .int(-1), "reduction": .string("max")])[0]
        assertClose(mx, floats([1, 5], [1, 3, 3, 4, 5]))
        let none = try runSingleNode(.scatterElements, inputs: [("d", d), ("i", int64s([1, 2], [-1, 0])), ("u", floats([1, 2], [9, 8]))],
                                     attributes: ["axis": .int(1)])[0]
        assertClose(none, floats([1, 5], [8, 2, 3, 4, 9]))
    }

    func testOneHotAxis0NegativeAndOutOfRange() throws {
        let depth = int64s([], [3])
        let y = try runSingleNode(.oneHot, inputs: [("i", int64s([3], [1, -1, 5])), ("depth", depth), ("v", floats([2], [-2, 7]))],
                                  constants: ["depth": depth], attributes: ["axis": .int(0)])[0]
        assertClose(y, floats([3, 3], [-2, -2, -2, 7, -2, -2, -2, 7, -2]))
    }

    func testCumSumExclusiveReverseAndAxis0() throws {
        let x = floats([2, 3], [1, 2, 3, 4, 5, 6])
        let a1 = int64s([], [1]), a0 = int64s([], [0])
        let r = try runSingleNode(.cumSum, inputs: [("x", x), ("a", a1)], constants: ["a": a1],
                                  attributes: ["exclusive": .int(1), "reverse": .int(1)])[0]
        assertClose(r, floats([2, 3], [5, 3, 0, 11, 6, 0]))
        let c = try runSingleNode(.cumSum, inputs: [("x", x), ("a", a0)], constants: ["a": a0])[0]
        assertClose(c, floats([2, 3], [1, 2, 3, 5, 7, 9]))
        let i = try runSingleNode(.cumSum, inputs: [("x", int64s([3], [1 << 60, 1, 2])), ("a", a0)], constants: ["a": a0])[0]
        XCTAssertEqual(i.int64s, [1 << 60, (1 << 60) + 1, (1 << 60) + 3])
    }

    func testTriluLowerAndUpperWithK() throws {
        var v = [Float]()
        for i in 1...12 { v.append(Float(i)) }
        let x = floats([3, 4], v)
        let lower = try runSingleNode(.trilu, inputs: [("x", x), ("k", int64s([], [-1]))], attributes: ["upper": .int(0)])[0]
        assertClose(lower, floats([3, 4], [0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0]))
        let upper = try runSingleNode(.trilu, inputs: [("x", x), ("k", int64s([], [1]))])[0]
        assertClose(upper, floats([3, 4], [0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12]))
        let plain = try runSingleNode(.trilu, inputs: [("x", x)])[0]
        assertClose(plain, floats([3, 4], [1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12]))
    }

    func testDepthToSpaceModesAndSpaceToDepth() throws {
        var v = [Float]()
        for i in 0..<16 { v.append(Float(i)) }
        let x = floats([1, 8, 1, 2], v)
        let dcr = try runSingleNode(.depthToSpace, inputs: [("x", x)], attributes: ["blocksize": .int(2)])[0]
        assertClose(dcr, floats([1, 2, 2, 4], [0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15]))
        let crd = try runSingleNode(.depthToSpace, inputs: [("x", x)], attributes: ["blocksize": .int(2), "mode": .string("CRD")])[0]
        assertClose(crd, floats([1, 2, 2, 4], [0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15]))
        let s2d = try runSingleNode(.spaceToDepth, inputs: [("x", floats([1, 1, 4, 4], v))], attributes: ["blocksize": .int(2)])[0]
        assertClose(s2d, floats([1, 4, 2, 2], [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]))
        // SpaceToDepth undoes DepthToSpace in DCR mode.
        let back = try runSingleNode(.spaceToDepth, inputs: [("x", dcr)], attributes: ["blocksize": .int(2)])[0]
        assertClose(back, x)
    }
}

/// NonZero and NonMaxSuppression: output shapes that depend on input values.
final class DataDependentShapeTests: XCTestCase {
    func testNonZeroOfAKnownInput() throws {
        let x = floats([2, 3], [0, 1.5, 0, -2, 0, 3])
        let y = try runSingleNode(.nonZero, inputs: [("x", x)], constants: ["x": x])[0]
        XCTAssertEqual(y.shape, [2, 3])
        XCTAssertEqual(y.int64s, [0, 1, 1, 1, 0, 2])
    }

    func testNonZeroOfALargeRuntimeInput() throws {
        // 100 elements: more than the session reads of a feed while planning, so NonZero waits
        // for the value in a ValueDependentStage.
        var v = [Float](repeating: 0, count: 100)
        v[3] = 1
        v[97] = -2
        let y = try runSingleNode(.nonZero, inputs: [("x", floats([100], v))])[0]
        XCTAssertEqual(y.shape, [1, 2])
        XCTAssertEqual(y.int64s, [3, 97])
    }

    func testNonMaxSuppressionOfSmallFeeds() throws {
        // ONNX's suppress_by_IOU example: boxes 1 and 2 overlap box 0, box 4 overlaps box 3.
        let boxes = floats([1, 6, 4], [0, 0, 1, 1, 0, 0.1, 1, 1.1, 0, -0.1, 1, 0.9, 0, 10, 1, 11, 0, 10.1, 1, 11.1, 0, 100, 1, 101])
        let scores = floats([1, 1, 6], [0.9, 0.75, 0.6, 0.95, 0.5, 0.3])
        let feeds: [(String, Tensor)] = [("b", boxes), ("s", scores), ("m", int64s([1], [3])), ("iou", floats([1], [0.5])), ("st", floats([1], [0]))]
        let y = try runSingleNode(.nonMaxSuppression, inputs: feeds)[0]
        XCTAssertEqual(y.shape, [3, 3])
        XCTAssertEqual(y.int64s, [0, 0, 3, 0, 0, 0, 0, 0, 5])
        // Center-point boxes, a score threshold that drops box 5, and two boxes per class at most.
        let centers = floats([1, 3, 4], [0.5, 0.5, 1, 1, 0.6, 0.5, 1, 1, 5, 5, 1, 1])
        let s2 = floats([1, 1, 3], [0.8, 0.9, 0.1])
        let c = try runSingleNode(.nonMaxSuppression, inputs: [("b", centers), ("s", s2), ("m", int64s([1], [2])), ("iou", floats([1], [0.5])), ("st", floats([1], [0.2]))],
                                  attributes: ["center_point_box": .int(1)])[0]
        XCTAssertEqual(c.int64s, [0, 0, 1])
    }
}

final class EinsumTests: XCTestCase {
    func einsum(_ equation: String, _ operands: [Tensor]) throws -> Tensor {
        var inputs = [(String, Tensor)]()
        for (i, t) in operands.enumerated() { inputs.append(("x" + String(i), t)) }
        return try runSingleNode(.einsum, inputs: inputs, attributes: ["equation": .string(equation)])[0]
    }

    func testBatchMatMulDiagonalTransposeAndImplicitOutputs() throws {
        let a = floats([2, 2, 3], [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
        var bv = [Float]()
        for i in 0..<12 { bv.append(Float(i) / 3) }
        let b = floats([2, 3, 2], bv)
        assertClose(try einsum("bij, bjk -> bik", [a, b]), floats([2, 2, 2], [
            -1.1666667461395264, -1.9166667461395264, 0.3333333432674408, 0.3333333134651184,
            6.3333330154418945, 7.0833330154418945, 12.333333015441895, 13.833333969116211]))
        var dv = [Float]()
        for i in 0..<18 { dv.append(Float(i)) }
        assertClose(try einsum("...ii->...i", [floats([2, 3, 3], dv)]), floats([2, 3], [0, 4, 8, 9, 13, 17]))
        let m = floats([2, 3], [0, 1, 2, 3, 4, 5])
        assertClose(try einsum("ij,jk", [m, floats([3, 2], [1, 2, 3, 4, 5, 6])]), floats([2, 2], [13, 16, 40, 52]))
        assertClose(try einsum("ij->ji", [m]), floats([3, 2], [0, 3, 1, 4, 2, 5]))
        assertClose(try einsum("i,i", [floats([3], [1, 2, 3]), floats([3], [4, -5, 6])]), floats([], [12]))
        assertClose(try einsum("...j,j->...", [floats([2, 2, 3], Array(dv[0..<12])), floats([3], [1, 0, -1])]), floats([2, 2], [-2, -2, -2, -2]))
        XCTAssertEqual(try einsum("ij->i", [int64s([2, 3], [1, 2, 3, 4, 5, 6])]).int64s, [6, 15])
    }

    func testMismatchedSubscriptsAreInvalid() {
        XCTAssertThrowsError(try einsum("ij,jk->ik", [floats([2, 3], [0, 0, 0, 0, 0, 0]), floats([2, 2], [0, 0, 0, 0])]))
        XCTAssertThrowsError(try einsum("ijk->i", [floats([2, 3], [0, 0, 0, 0, 0, 0])]))
    }
}

/// Sin, Cos, Round, Sign, Mod, Mish, Hardmax, InstanceNormalization and the added reductions.
final class DetectionMathTests: XCTestCase {
    func testSinCosRoundSign() throws {
        let x = floats([9], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.3, -0.7, 0])
        assertClose(try runSingleNode(.round, inputs: [("x", x)])[0], floats([9], [-2, -2, 0, 0, 2, 2, 0, -1, 0]), atol: 0)
        assertClose(try runSingleNode(.sin, inputs: [("x", x)])[0], floats([9], [
            -0.5984721779823303, -0.9974949955940247, -0.4794255495071411, 0.4794255495071411, 0.9974949955940247,
            0.5984721779823303, 0.29552021622657776, -0.6442176699638367, 0.0]))
        assertClose(try runSingleNode(.cos, inputs: [("x", x)])[0], floats([9], [
            -0.8011435866355896, 0.07073719799518585, 0.8775825500488281, 0.8775825500488281, 0.07073719799518585,
            -0.8011435866355896, 0.9553365111351013, 0.7648422122001648, 1.0]))
        assertClose(try runSingleNode(.sign, inputs: [("x", x)])[0], floats([9], [-1, -1, -1, 1, 1, 1, 1, -1, 0]), atol: 0)
        XCTAssertEqual(try runSingleNode(.sign, inputs: [("x", int64s([3], [-7, 0, 9]))])[0].int64s, [-1, 0, 1])
    }

    func testModIntegerBothSignsAndFloatFmod() throws {
        let a = int64s([6], [-4, 7, 5, 4, -7, 8]), b = int64s([6], [2, -3, 8, -2, 3, 5])
        XCTAssertEqual(try runSingleNode(.mod, inputs: [("a", a), ("b", b)])[0].int64s, [0, -2, 5, 0, 2, 3])
        XCTAssertEqual(try runSingleNode(.mod, inputs: [("a", a), ("b", b)], attributes: ["fmod": .int(1)])[0].int64s, [0, 1, 5, 0, -1, 3])
        let af = floats([4], [-4.5, 7.25, 5, -7]), bf = floats([4], [2, -3, -2.5, 3])
        assertClose(try runSingleNode(.mod, inputs: [("a", af), ("b", bf)], attributes: ["fmod": .int(1)])[0], floats([4], [-0.5, 1.25, 0, -1]))
        // Broadcast of a scalar divisor.
        let s = try runSingleNode(.mod, inputs: [("a", int64s([2, 2], [5, -5, 9, -9])), ("b", int64s([], [4]))])[0]
        XCTAssertEqual(s.int64s, [1, 3, 1, 3])
    }

    func testCastLikeTakesTheSecondInputsType() throws {
        let y = try runSingleNode(.castLike, inputs: [("x", floats([4], [1.9, -2.7, 300, 0])), ("like", int64s([1], [0]))])[0]
        XCTAssertEqual(y.dtype, .i64)
        XCTAssertEqual(y.int64s, [1, -2, 300, 0])
        let h = try runSingleNode(.castLike, inputs: [("x", int64s([2], [3, -1])), ("like", Tensor(shape: [1], values: [Double(0)]))])[0]
        XCTAssertEqual(h.dtype, .f64)
        XCTAssertEqual(h.doubles, [3, -1])
    }

    func testIsNaNIsInfShrinkCeluThresholdedRelu() throws {
        let special = floats([4], [Float.nan, Float.infinity, -Float.infinity, 1])
        XCTAssertEqual(try runSingleNode(.isNaN, inputs: [("x", special)])[0].int64s, [1, 0, 0, 0])
        XCTAssertEqual(try runSingleNode(.isInf, inputs: [("x", special)])[0].int64s, [0, 1, 1, 0])
        let negOnly = try runSingleNode(.isInf, inputs: [("x", special)], attributes: ["detect_positive": .int(0)])[0]
        XCTAssertEqual(negOnly.dtype, .bool)
        XCTAssertEqual(negOnly.int64s, [0, 0, 1, 0])
        let x = floats([6], [-3, -1, -0.2, 0.3, 0.5, 2])
        assertClose(try runSingleNode(.celu, inputs: [("x", x)], attributes: ["alpha": .float(2)])[0],
                    floats([6], [-1.5537396797031404, -0.7869386805747332, -0.19032516662470655, 0.30000001192092896, 0.5, 2.0]))
        assertClose(try runSingleNode(.shrink, inputs: [("x", x)], attributes: ["lambd": .float(1), "bias": .float(0.5)])[0],
                    floats([6], [-2.5, 0, 0, 0, 0, 1.5]))
        assertClose(try runSingleNode(.thresholdedRelu, inputs: [("x", x)], attributes: ["alpha": .float(0.4)])[0],
                    floats([6], [0, 0, 0, 0, 0.5, 2]))
    }

    func testMish() throws {
        let y = try runSingleNode(.mish, inputs: [("x", floats([6], [-3, -1, 0, 0.5, 2, 10]))])[0]
        assertClose(y, floats([6], [-0.1456474612756246, -0.30340146137410895, 0.0, 0.3752452113048951, 1.9439589595339946, 9.99999995878067]))
    }

    func testHardmaxAxisAndFirstOfTies() throws {
        let x = floats([2, 3, 2], [1, 5, 3, 5, 2, 0, 0, 0, -1, 1, 4, -2])
        let y = try runSingleNode(.hardmax, inputs: [("x", x)], attributes: ["axis": .int(1)])[0]
        assertClose(y, floats([2, 3, 2], [0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0]), atol: 0)
        // Opset 11: the input is coerced to 2-D at axis 1, so each batch of 6 gets one 1.
        let old = try runSingleNode(.hardmax, inputs: [("x", x)], attributes: ["axis": .int(1), "_opset": .int(11)])[0]
        assertClose(old, floats([2, 3, 2], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), atol: 0)
    }

    func testInstanceNormalization() throws {
        let x = floats([1, 2, 2, 3], [0.0, 0.1428571492433548, 0.4040610194206238, 0.7423075437545776, 1.1428571939468384, 1.5971914529800415,
                                      2.099562644958496, 2.6457512378692627, 3.2324881553649902, 3.857142925262451, 4.5175395011901855, 5.211838722229004])
        let y = try runSingleNode(.instanceNormalization, inputs: [("x", x), ("s", floats([2], [0.5, -2])), ("b", floats([2], [1, 0.25]))],
                                  attributes: ["epsilon": .float(1e-2)])[0]
        assertClose(y, floats([1, 2, 2, 3], [0.41040968894958496, 0.5358325242996216, 0.7651591300964355, 1.0621260404586792, 1.413792610168457,
                                             1.8126800060272217, 3.0447885990142822, 2.023383140563965, 0.926149845123291, -0.24199211597442627,
                                             -1.4769734144210815, -2.7753546237945557]), rtol: 1e-5, atol: 1e-5)
    }

    func testReduceL1L2SumSquareLogSumExpLogSum() throws {
        let x = floats([2, 3], [1, -2, 3, 0.5, 4, -1])
        let attrs: [String: Attribute] = ["axes": .ints([1]), "keepdims": .int(0)]
        assertClose(try runSingleNode(.reduceL1, inputs: [("x", x)], attributes: attrs)[0], floats([2], [6, 5.5]))
        assertClose(try runSingleNode(.reduceL2, inputs: [("x", x)], attributes: attrs)[0], floats([2], [3.7416574954986572, 4.153311729431152]))
        assertClose(try runSingleNode(.reduceSumSquare, inputs: [("x", x)], attributes: attrs)[0], floats([2], [14, 17.25]))
        // Opset 18 form: axes as an input.
        let axes = int64s([1], [-1])
        assertClose(try runSingleNode(.reduceLogSumExp, inputs: [("x", x), ("a", axes)], constants: ["a": axes], attributes: ["keepdims": .int(0)])[0],
                    floats([2], [3.1328452337275756, 4.036269565124779]))
        let abs = floats([2, 3], [1, 2, 3, 0.5, 4, 1])
        assertClose(try runSingleNode(.reduceLogSum, inputs: [("x", abs)])[0], floats([1, 1], [2.4423470497131348]))
        let ints = int64s([2, 2], [3, -4, 1, 2])
        XCTAssertEqual(try runSingleNode(.reduceL1, inputs: [("x", ints)], attributes: ["axes": .ints([0])])[0].int64s, [4, 6])
        XCTAssertEqual(try runSingleNode(.reduceSumSquare, inputs: [("x", ints)], attributes: ["axes": .ints([0])])[0].int64s, [10, 20])
        let empty = try runSingleNode(.reduceLogSumExp, inputs: [("x", floats([2, 0], [])), ("a", axes)], constants: ["a": axes])[0]
        XCTAssertEqual(empty.floats, [-Float.infinity, -Float.infinity])
    }
}

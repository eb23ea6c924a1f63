import PerchGraph
import XCTest

final class PerchModelFileTests: XCTestCase {
    func sampleGraph() -> Graph {
        var w = Tensor(shape: [4, 3], values: (0..<12).map { Float($0) * 0.5 })
        w.quantization = QuantizationParameters(scales: [0.1, 0.2, 0.3, 0.4], zeroPoints: [0, 0, 0, 0], axis: 0)
        return Graph(
            name: "g",
            nodes: [
                Node(name: "mm", op: .gemm, inputs: ["x", "w", ""], outputs: ["y"],
                     attributes: Attributes(["transB": .int(1), "alpha": .float(0.5), "note": .string("é"), "ks": .ints([1, -2]),
                                             "t": .tensor(Tensor(shape: [2], values: [Int64(7), -8]))])),
                Node(name: "r", op: .relu, inputs: ["y"], outputs: ["z"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, dims: [.symbolic("batch"), .fixed(3)]))],
            outputs: [ValueInfo(name: "z", type: TensorType(dtype: .f32, dims: [.symbolic("batch"), .fixed(4)]))],
            initializers: ["w": w, "b": Tensor(shape: [3], values: [Int8(1), -2, 3])],
            metadata: ["producer": "test"]
        )
    }

    func testRoundTripPreservesEverything() throws {
        let g = sampleGraph()
        let bytes = PerchModelFile.encode(g)
        XCTAssertEqual(Array(bytes[0..<8]), PerchModelFile.magic)
        XCTAssertEqual(try PerchModelFile.decode(bytes), g)
    }

    func testEncodingIsDeterministicAndWeightsAligned() throws {
        let a = PerchModelFile.encode(sampleGraph())
        XCTAssertEqual(a, PerchModelFile.encode(sampleGraph()))
        // Weights offset in the header is 64-byte aligned.
        let weightsOffset = a[32..<40].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(weightsOffset % 64, 0)
    }

    func testCorruptionIsDetected() {
        var bytes = PerchModelFile.encode(sampleGraph())
        bytes[bytes.count - 3] ^= 0x40
        XCTAssertThrowsError(try PerchModelFile.decode(bytes)) { XCTAssertEqual($0 as? GraphError, .checksumMismatch) }
    }

    func testTruncationAndGarbageAreErrorsNotCrashes() {
        let bytes = PerchModelFile.encode(sampleGraph())
        for cut in [0, 7, 63, 64, 100, bytes.count - 1] {
            XCTAssertThrowsError(try PerchModelFile.decode(Array(bytes[0..<cut])), "cut at \(cut)")
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let junk = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            XCTAssertThrowsError(try PerchModelFile.decode(PerchModelFile.magic + junk))
        }
    }
}

final class NPYTests: XCTestCase {
    func testRoundTrip() throws {
        for t in [
            Tensor(shape: [2, 3], values: [Float(1), 2, 3, 4, 5, 6]),
            Tensor(shape: [], values: [Int64(42)]),
            Tensor(shape: [3], values: [true, false, true]),
            Tensor(shape: [1, 0, 2], values: [Int8]()),
        ] {
            let decoded = try NPY.decode(NPY.encode(t), what: "t")
            XCTAssertEqual(decoded, t)
        }
    }

    func testReadsNumPyWrittenHeader() throws {
        // Header as numpy 2.x writes it for np.arange(6, dtype=np.int32).reshape(2, 3).
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let padded = header + String(repeating: " ", count: 128 - 10 - header.utf8.count - 1) + "\n"
        bytes += [UInt8(padded.utf8.count & 0xFF), UInt8(padded.utf8.count >> 8)] + Array(padded.utf8)
        for v in Int32(0)..<6 { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        let t = try NPY.decode(bytes, what: "x.npy")
        XCTAssertEqual(t.dtype, .i32)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.int64s, [0, 1, 2, 3, 4, 5])
    }

    func testRejectsBadFiles() {
        XCTAssertThrowsError(try NPY.decode(Array("hello".utf8), what: "x.npy"))
        let good = NPY.encode(Tensor(shape: [4], values: [Float(1), 2, 3, 4]))
        XCTAssertThrowsError(try NPY.decode(Array(good.dropLast(2)), what: "x.npy"))
        let bigEndian = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "<f4", with: ">f4")
        XCTAssertThrowsError(try NPY.decode(Array(bigEndian.utf8), what: "x.npy"))
    }
}

final class GraphTests: XCTestCase {
    func testTopologicalSortOrdersProducersFirst() throws {
        var g = Graph(
            nodes: [
                Node(name: "b", op: .relu, inputs: ["t"], outputs: ["y"]),
                Node(name: "a", op: .neg, inputs: ["x"], outputs: ["t"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1]))])
        try g.validate()
        XCTAssertEqual(g.nodes.map(\.name), ["a", "b"])
    }

    func testCycleAndUndefinedValuesAreReported() {
        var cyclic = Graph(
            nodes: [
                Node(name: "a", op: .relu, inputs: ["q"], outputs: ["p"]),
                Node(name: "b", op: .relu, inputs: ["p"], outputs: ["q"]),
            ],
            outputs: [ValueInfo(name: "q", type: TensorType(dtype: .f32, shape: [1]))])
        XCTAssertThrowsError(try cyclic.validate()) { error in
            guard case .cycle(let nodes)? = error as? GraphError else { return XCTFail("\(error)") }
            XCTAssertEqual(Set(nodes), ["a", "b"])
        }
        var undefined = Graph(nodes: [Node(name: "a", op: .relu, inputs: ["nope"], outputs: ["y"])])
        XCTAssertThrowsError(try undefined.validate()) {
            XCTAssertEqual($0 as? GraphError, .undefinedValue(node: "a", value: "nope"))
        }
    }

    func testHalfConversionRoundTrips() {
        for v: Float in [0, 1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, .infinity] {
            XCTAssertEqual(HalfConversion.toFloat(HalfConversion.fromFloat(v)), v)
        }
        XCTAssertEqual(HalfConversion.fromFloat(1.0), 0x3C00)
        XCTAssertTrue(HalfConversion.toFloat(HalfConversion.fromFloat(.nan)).isNaN)
        XCTAssertEqual(HalfConversion.bfloat16ToFloat(HalfConversion.floatToBFloat16(3.0)), 3.0)
    }
}

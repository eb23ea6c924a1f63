import Foundation
import PerchEngine
import PerchGraph
@testable import PerchONNX
import XCTest

/// Builds small ONNX models in memory with the generated protobuf types.
enum ModelBuilder {
    static func valueInfo(_ name: String, _ shape: [Int64], elem: Int32 = 1) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type.tensorType.elemType = elem
        v.type.tensorType.shape.dim = shape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            dim.dimValue = d
            return dim
        }
        return v
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "") -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name
        n.domain = domain
        return n
    }

    static func model(nodes: [Onnx_NodeProto], inputs: [Onnx_ValueInfoProto], outputs: [Onnx_ValueInfoProto],
                      initializers: [Onnx_TensorProto] = [], opset: Int64 = 17) -> Data {
        var m = Onnx_ModelProto()
        m.irVersion = 8
        var o = Onnx_OperatorSetIdProto()
        o.domain = ""
        o.version = opset
        m.opsetImport = [o]
        m.graph.name = "g"
        m.graph.node = nodes
        m.graph.input = inputs
        m.graph.output = outputs
        m.graph.initializer = initializers
        return try! m.serializedData()
    }
}

final class ONNXImporterTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testImportsExampleModelAndMatchesONNXRuntime() throws {
        let root = Self.repoRoot.path
        let graph = try ONNXImporter.importModel(atPath: root + "/examples/tiny-cnn.onnx")
        XCTAssertEqual(graph.runtimeInputs.map(\.name), ["image"])
        XCTAssertEqual(graph.runtimeInputs[0].type.dims, [.symbolic("batch"), .fixed(3), .fixed(32), .fixed(32)])
        let x = try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/examples/tiny-cnn-input.npy"))), what: "input")
        let expected = try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/examples/tiny-cnn-expected-ort.npy"))), what: "expected")
        let session = try Session(graph: graph)
        let y = try session.run(["image": x])["probabilities"]!
        XCTAssertEqual(y.shape, [1, 10])
        for (a, e) in zip(y.floats, expected.floats) { XCTAssertEqual(a, e, accuracy: 1e-5 + 1e-4 * abs(e)) }
    }

    /// Paddle2ONNX marks every unknown dimension "?": two of them are not one dimension (a
    /// 48×192 text-direction classifier input was refused), while a repeated real name still
    /// binds one size.
    func testQuestionMarkDimensionsAreIndependent() throws {
        func dims(_ names: [String]) -> Onnx_ValueInfoProto {
            var v = ModelBuilder.valueInfo("x", [])
            v.type.tensorType.shape.dim = names.map { n in
                var d = Onnx_TensorShapeProto.Dimension()
                if let v = Int64(n) { d.dimValue = v } else { d.dimParam = n }
                return d
            }
            return v
        }
        func session(_ names: [String]) throws -> Session {
            let data = ModelBuilder.model(nodes: [ModelBuilder.node("Relu", ["x"], ["y"])], inputs: [dims(names)],
                                          outputs: [ModelBuilder.valueInfo("y", [])])
            return try Session(graph: try ONNXImporter.importModel(data: data, path: "m.onnx", baseDirectory: nil))
        }
        var x = Tensor(dtype: .f32, shape: [1, 3, 2, 5])
        x.bytes.withUnsafeMutableBytes { raw in
            let f = raw.bindMemory(to: Float.self)
            for i in 0..<f.count { f[i] = Float(i % 7) - 3 }
        }
        let y = try session(["?", "3", "?", "?"]).run(["x": x])["y"]!
        XCTAssertEqual(y.shape, [1, 3, 2, 5])
        XCTAssertEqual(y.floats, x.floats.map { Swift.max($0, 0) })
        XCTAssertThrowsError(try session(["n", "3", "h", "h"]).run(["x": x])) { error in
            XCTAssertTrue("\(error)".contains("'h' is 2 elsewhere but 5 here"), "\(error)")
        }
    }

    func testUnsupportedOperatorsAreReportedTogether() {
        let data = ModelBuilder.model(
            nodes: [
                ModelBuilder.node("Relu", ["x"], ["a"], name: "ok"),
                ModelBuilder.node("FancyOp", ["a"], ["b"], name: "f1"),
                ModelBuilder.node("FancyOp", ["b"], ["c"], name: "f2"),
                ModelBuilder.node("TreeEnsembleClassifier", ["c"], ["y"], name: "tree", domain: "ai.onnx.ml"),
            ],
            inputs: [ModelBuilder.valueInfo("x", [1, 4])], outputs: [ModelBuilder.valueInfo("y", [1, 4])])
        XCTAssertThrowsError(try ONNXImporter.importModel(data: data, path: "m.onnx", baseDirectory: nil)) { error in
            guard case .unsupportedOperators(_, let nodes)? = error as? ONNXImportError else { return XCTFail("\(error)") }
            XCTAssertEqual(nodes.map(\.nodeName), ["f1", "f2", "tree"])
            let message = String(describing: error)
            XCTAssertTrue(message.contains("FancyOp (2 nodes: 'f1', 'f2')"), message)
            XCTAssertTrue(message.contains("ai.onnx.ml.TreeEnsembleClassifier"), message)
        }
    }

    func testOpsetOutOfRangeIsRejected() {
        for opset: Int64 in [5, 23, 99] {
            let data = ModelBuilder.model(nodes: [ModelBuilder.node("Relu", ["x"], ["y"])],
                                          inputs: [ModelBuilder.valueInfo("x", [2])], outputs: [ModelBuilder.valueInfo("y", [2])], opset: opset)
            XCTAssertThrowsError(try ONNXImporter.importModel(data: data, path: "m.onnx", baseDirectory: nil)) { error in
                guard case .unsupportedOpset(_, _, let v, _)? = error as? ONNXImportError else { return XCTFail("\(error)") }
                XCTAssertEqual(v, Int(opset))
            }
        }
    }

    func testOpset1ModelOfUnchangedOperatorsIsImported() throws {
        let notModel = ModelBuilder.model(nodes: [ModelBuilder.node("Not", ["x"], ["y"])],
                                          inputs: [ModelBuilder.valueInfo("x", [2], elem: 9)], outputs: [ModelBuilder.valueInfo("y", [2], elem: 9)], opset: 1)
        let graph = try ONNXImporter.importModel(data: notModel, path: "m.onnx", baseDirectory: nil)
        XCTAssertEqual(graph.nodes.map(\.op), [.not])
        // One operator whose opset-1 form differs (Relu's consumed_inputs) rejects the whole model.
        let mixed = ModelBuilder.model(nodes: [ModelBuilder.node("Not", ["x"], ["t"]), ModelBuilder.node("Relu", ["t"], ["y"])],
                                       inputs: [ModelBuilder.valueInfo("x", [2], elem: 9)], outputs: [ModelBuilder.valueInfo("y", [2], elem: 9)], opset: 1)
        XCTAssertThrowsError(try ONNXImporter.importModel(data: mixed, path: "m.onnx", baseDirectory: nil)) { error in
            guard case .unsupportedOpset(_, _, 1, _)? = error as? ONNXImportError else { return XCTFail("\(error)") }
        }
    }

    func testTruncatedAndRandomBytesAreErrors() throws {
        let good = try Data(contentsOf: Self.repoRoot.appendingPathComponent("examples/tiny-cnn.onnx"))
        for cut in [1, 10, good.count / 3, good.count / 2, good.count - 7] {
            XCTAssertThrowsError(try ONNXImporter.importModel(data: good.prefix(cut), path: "t.onnx", baseDirectory: nil), "cut \(cut)")
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<30 {
            let junk = Data((0..<Int.random(in: 1..<2000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            XCTAssertThrowsError(try ONNXImporter.importModel(data: junk, path: "r.onnx", baseDirectory: nil))
        }
    }

    func testExternalDataIsReadBesideTheModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("perch-ext-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights: [Float] = [1, -2, 3, -4]
        var blob = Data(repeating: 0, count: 16)
        weights.withUnsafeBytes { blob.append(contentsOf: $0) }
        try blob.write(to: dir.appendingPathComponent("weights.bin"))
        var t = Onnx_TensorProto()
        t.name = "w"
        t.dataType = 1
        t.dims = [4]
        t.dataLocation = .external
        t.externalData = [("location", "weights.bin"), ("offset", "16"), ("length", "16")].map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
        let data = ModelBuilder.model(nodes: [ModelBuilder.node("Add", ["x", "w"], ["y"])],
                                      inputs: [ModelBuilder.valueInfo("x", [4])], outputs: [ModelBuilder.valueInfo("y", [4])],
                                      initializers: [t])
        let graph = try ONNXImporter.importModel(data: data, path: "m.onnx", baseDirectory: dir.path)
        XCTAssertEqual(graph.initializers["w"]?.floats, weights)
        // A location escaping the model directory is refused.
        t.externalData[0].value = "../weights.bin"
        let evil = ModelBuilder.model(nodes: [ModelBuilder.node("Add", ["x", "w"], ["y"])],
                                      inputs: [ModelBuilder.valueInfo("x", [4])], outputs: [ModelBuilder.valueInfo("y", [4])],
                                      initializers: [t])
        XCTAssertThrowsError(try ONNXImporter.importModel(data: evil, path: "m.onnx", baseDirectory: dir.path))
    }

    func testConstantNodesBecomeInitializersAndOpsetIsRecorded() throws {
        var c = ModelBuilder.node("Constant", [], ["k"])
        var a = Onnx_AttributeProto()
        a.name = "value_floats"
        a.type = .floats
        a.floats = [1, 2]
        c.attribute = [a]
        let data = ModelBuilder.model(nodes: [c, ModelBuilder.node("Mul", ["x", "k"], ["y"])],
                                      inputs: [ModelBuilder.valueInfo("x", [2])], outputs: [ModelBuilder.valueInfo("y", [2])], opset: 13)
        let graph = try ONNXImporter.importModel(data: data, path: "m.onnx", baseDirectory: nil)
        XCTAssertEqual(graph.initializers["k"]?.floats, [1, 2])
        XCTAssertEqual(graph.nodes.count, 1)
        XCTAssertEqual(graph.nodes[0].attributes.int("_opset", default: 0), 13)
    }
}

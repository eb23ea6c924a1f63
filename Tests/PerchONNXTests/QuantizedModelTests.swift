import Foundation
import PerchEngine
import PerchGraph
@testable import PerchONNX
import XCTest

/// Acceptance tests of int8 execution: models quantized by ONNX Runtime's `quantize_static`
/// (scripts/make-int8-fixtures.py) run in Perch, and the output must be within one quantization
/// step (of the output's scale) of ONNX Runtime's output on the same input.
final class QuantizedModelTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/int8").path

    func load(_ name: String) throws -> Tensor {
        try NPY.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.root + "/" + name))), what: name)
    }

    /// The scale of the DequantizeLinear that produces the graph's output.
    func outputScale(_ graph: Graph) throws -> Double {
        let out = graph.outputs[0].name
        let dq = try XCTUnwrap(graph.nodes.first { $0.outputs.contains(out) && $0.op == .dequantizeLinear })
        return try XCTUnwrap(graph.initializers[dq.inputs[1]]).doubles[0]
    }

    /// Runs `model` on `input` and returns (max |Perch − ORT| in output steps, the fused graph).
    func steps(model: String, input: String, expected: String, inputName: String,
               options: SessionOptions = SessionOptions()) throws -> (Double, Graph) {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/" + model)
        let scale = try outputScale(graph)
        let session = try Session(graph: graph, options: options)
        let x = try load(input)
        let want = try load(expected)
        let got = try XCTUnwrap(try session.run([inputName: x])[graph.outputs[0].name])
        XCTAssertEqual(got.shape, want.shape)
        var worst = 0.0
        var diffs = [Int]()
        for (a, b) in zip(got.doubles, want.doubles) {
            worst = max(worst, abs(a - b) / scale)
            diffs.append(Int(((a - b) / scale).rounded()))
        }
        if worst > 1.0001 { print(model, "differences from ONNX Runtime in output steps:", diffs.filter { $0 != 0 }.count, "of", diffs.count, "nonzero; first:", Array(diffs.prefix(16))) }
        return (worst, session.graph)
    }

    func count(_ g: Graph, _ op: OpType) -> Int { g.nodes.filter { $0.op == op }.count }

    func testCNNQDQWithinOneStepOfONNXRuntime() throws {
        let (s, g) = try steps(model: "tiny-cnn-qdq.onnx", input: "tiny-cnn-input.npy",
                               expected: "tiny-cnn-qdq-expected-ort.npy", inputName: "image")
        // Perch requantizes in fixed point with one rounding, ONNX Runtime in float32 with ties to
        // even: they differ only on exact ties and multiplier rounding. (With gemmlowp's two
        // roundings a one-step difference in the pooled features became 2 steps on some logits.)
        XCTAssertLessThanOrEqual(s, 1.0001, "max difference in output quantization steps")
        // The pass must have turned every Conv and the Gemm into integer ops.
        XCTAssertEqual(count(g, .conv), 0)
        XCTAssertEqual(count(g, .gemm), 0)
        XCTAssertEqual(count(g, .qLinearConv), 7)
        XCTAssertEqual(count(g, .qLinearMatMul), 1)
        XCTAssertGreaterThan(count(g, .qLinearLookup), 0)
    }

    /// MaxPool, Concat, nearest Resize between Q/DQ pairs of one scale run on the quantized bytes:
    /// after fusion only the input's QuantizeLinear and the output's DequantizeLinear are left.
    func testPoolConcatResizeQDQRunOnQuantizedBytes() throws {
        let (s, g) = try steps(model: "tiny-pool-qdq.onnx", input: "tiny-pool-input.npy",
                               expected: "tiny-pool-qdq-expected-ort.npy", inputName: "x")
        XCTAssertLessThanOrEqual(s, 1.0001, "max difference in output quantization steps")
        XCTAssertEqual(count(g, .quantizeLinear), 1)
        XCTAssertEqual(count(g, .dequantizeLinear), 1)
        XCTAssertEqual(count(g, .maxPool), 2)
        XCTAssertEqual(count(g, .concat), 1)
        XCTAssertEqual(count(g, .resize), 1)
        XCTAssertEqual(count(g, .qLinearConv), 4)
        // And the fused graph agrees with the same model run as fake-quant in float.
        let (f, _) = try steps(model: "tiny-pool-qdq.onnx", input: "tiny-pool-input.npy",
                               expected: "tiny-pool-qdq-expected-ort.npy", inputName: "x", options: SessionOptions(fuseQuantized: false))
        XCTAssertLessThanOrEqual(f, 1.0001)
    }

    /// One attention head with uint8 activations: ONNX Runtime runs DQ → Softmax → Q as its table
    /// softmax, and so does Perch (QLinearSoftmax from the QDQ pass, or read from the QOperator
    /// file), giving ORT's bytes. Exact float softmax is a step off on 56 of the 512 outputs.
    func testAttentionSoftmaxGivesONNXRuntimesBytes() throws {
        for (model, expected) in [("tiny-attn-qdq.onnx", "tiny-attn-qdq-expected-ort.npy"), ("tiny-attn-qop.onnx", "tiny-attn-qop-expected-ort.npy")] {
            let (s, g) = try steps(model: model, input: "tiny-attn-input.npy", expected: expected, inputName: "x")
            XCTAssertEqual(s, 0, model + ": max difference in output quantization steps")
            XCTAssertEqual(count(g, .qLinearSoftmax), 1, model)
            XCTAssertEqual(count(g, .softmax), 0, model)
        }
    }

    /// The int8 conv and MatMul kernels split pixel blocks / channels / row blocks over the pool's
    /// threads with one scratch slot each: 2 and 3 threads must give the bytes 1 thread gives.
    func testQuantizedConvsGiveTheSameOutputOnMoreThreads() throws {
        for model in ["tiny-pool-qdq.onnx", "tiny-cnn-qdq.onnx", "tiny-mlp-qdq.onnx"] {
            let graph = try ONNXImporter.importModel(atPath: Self.root + "/" + model)
            let input = model.hasPrefix("tiny-pool") ? ("x", "tiny-pool-input.npy")
                : model.hasPrefix("tiny-mlp") ? ("x", "tiny-mlp-input.npy") : ("image", "tiny-cnn-input.npy")
            let x = try load(input.1)
            let out = graph.outputs[0].name
            let one = try XCTUnwrap(try Session(graph: graph, options: SessionOptions(threads: 1)).run([input.0: x])[out])
            for t in [2, 3] {
                let many = try XCTUnwrap(try Session(graph: graph, options: SessionOptions(threads: t)).run([input.0: x])[out])
                XCTAssertEqual(many.bytes, one.bytes, model + " threads " + String(t))
            }
        }
    }

    func testCNNQDQFakeQuantAlsoAgrees() throws {
        let (s, g) = try steps(model: "tiny-cnn-qdq.onnx", input: "tiny-cnn-input.npy",
                               expected: "tiny-cnn-qdq-expected-ort.npy", inputName: "image",
                               options: SessionOptions(fuseQuantized: false))
        XCTAssertEqual(count(g, .qLinearConv), 0)
        XCTAssertLessThanOrEqual(s, 2.0001)
    }

    func testCNNQOperatorWithinOneStepOfONNXRuntime() throws {
        let (s, g) = try steps(model: "tiny-cnn-qop.onnx", input: "tiny-cnn-input.npy",
                               expected: "tiny-cnn-qop-expected-ort.npy", inputName: "image")
        XCTAssertLessThanOrEqual(s, 2.0001)  // same gap as the QDQ CNN (identical integer results)
        XCTAssertEqual(count(g, .qLinearConv), 7)
        XCTAssertEqual(count(g, .qGemm), 1)
    }

    func testMLPQDQWithinOneStepOfONNXRuntime() throws {
        let (s, g) = try steps(model: "tiny-mlp-qdq.onnx", input: "tiny-mlp-input.npy",
                               expected: "tiny-mlp-qdq-expected-ort.npy", inputName: "x")
        XCTAssertLessThanOrEqual(s, 1.0001)
        XCTAssertEqual(count(g, .qLinearMatMul), 2)
        XCTAssertEqual(count(g, .qLinearAdd), 2)
        XCTAssertEqual(count(g, .matMul), 0)
    }

    func testMLPQOperatorWithinOneStepOfONNXRuntime() throws {
        let (s, _) = try steps(model: "tiny-mlp-qop.onnx", input: "tiny-mlp-input.npy",
                               expected: "tiny-mlp-qop-expected-ort.npy", inputName: "x")
        XCTAssertLessThanOrEqual(s, 1.0001)
    }

    /// QLinearConcat and QLinearAveragePool (com.microsoft, as in the ONNX model zoo's -int8
    /// models) are imported as DequantizeLinear → Concat/AveragePool → QuantizeLinear; the Concat
    /// then runs on the bytes again (the pass requantizes the input whose scale differs).
    func testContribQOperatorsWithinOneStepOfONNXRuntime() throws {
        let (s, g) = try steps(model: "tiny-contrib-qop.onnx", input: "tiny-contrib-input.npy",
                               expected: "tiny-contrib-qop-expected-ort.npy", inputName: "x")
        XCTAssertLessThanOrEqual(s, 1.0001)
        XCTAssertEqual(count(g, .concat), 1)
        XCTAssertEqual(count(g, .qLinearConv), 4)
        let concat = try XCTUnwrap(g.nodes.first { $0.op == .concat })
        XCTAssertTrue(concat.inputs.allSatisfy { name in g.nodes.first { $0.outputs.contains(name) }?.op != .dequantizeLinear },
                      "Concat reads the quantized bytes")
    }

    /// quantize_dynamic's DynamicQuantizeLSTM (int8 weights) runs as an LSTM on the dequantized
    /// weights: within 0.02 of ONNX Runtime, which also quantizes the activations, and of fp32.
    func testDynamicQuantizeLSTMCloseToONNXRuntime() throws {
        let graph = try ONNXImporter.importModel(atPath: Self.root + "/tiny-lstm-dyn.onnx")
        XCTAssertEqual(count(graph, .lstm), 1)
        let session = try Session(graph: graph)
        let y = try XCTUnwrap(try session.run(["x": try load("tiny-lstm-input.npy")])["y"])
        for reference in ["tiny-lstm-dyn-expected-ort.npy", "tiny-lstm-f32-expected-ort.npy"] {
            let want = try load(reference)
            XCTAssertEqual(y.shape, want.shape)
            var worst = 0.0
            for (a, b) in zip(y.doubles, want.doubles) { worst = max(worst, abs(a - b)) }
            XCTAssertLessThan(worst, 0.02, reference)
        }
    }

    func testOtherMicrosoftOpsAreStillRejected() {
        var m = Onnx_ModelProto()
        m.irVersion = 8
        var o = Onnx_OperatorSetIdProto(); o.version = 17; m.opsetImport = [o]
        var n = Onnx_NodeProto(); n.opType = "FusedConv"; n.domain = "com.microsoft"; n.input = ["x"]; n.output = ["y"]
        m.graph.node = [n]
        var vi = Onnx_ValueInfoProto(); vi.name = "y"; m.graph.output = [vi]
        XCTAssertThrowsError(try ONNXImporter.importModel(data: try m.serializedData(), path: "m.onnx", baseDirectory: nil))
    }
}

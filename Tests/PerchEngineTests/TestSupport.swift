import PerchEngine
import PerchGraph
import XCTest

/// Builds a one-node graph whose inputs are all runtime inputs (or constants when given in
/// `constants`), runs it on `feeds`, and returns the outputs in node order. The inputs named in
/// `runTime` are values the session cannot know before running: each is fed as element 0 of a
/// 65-element tensor (too large to be peeked at prepare) and taken out by a Gather, as a
/// DynamicQuantizeLinear's zero point reaches its consumers.
func runSingleNode(
    _ op: OpType,
    inputs: [(String, Tensor)],
    constants: [String: Tensor] = [:],
    runTime: Set<String> = [],
    outputs: [String] = ["y"],
    attributes: [String: Attribute] = [:],
    threads: Int = 1,
    file: StaticString = #filePath,
    line: UInt = #line
) throws -> [Tensor] {
    var graph = Graph(name: "test")
    var feeds: [String: Tensor] = [:]
    var inputNames = [String]()
    for (name, t) in inputs {
        inputNames.append(name)
        if name.isEmpty { continue }
        if let c = constants[name] {
            graph.initializers[name] = c
        } else if runTime.contains(name) {
            let pool = name + "_pool", index = name + "_index"
            var bytes = [UInt8](repeating: 0, count: 65 * t.dtype.byteSize)
            for (i, b) in t.bytes.enumerated() { bytes[i] = b }
            feeds[pool] = Tensor(dtype: t.dtype, shape: [65], bytes: bytes)
            graph.inputs.append(ValueInfo(name: pool, type: TensorType(dtype: t.dtype, shape: [65])))
            graph.initializers[index] = Tensor(shape: [], values: [Int64(0)])
            graph.nodes.append(Node(name: name + "_gather", op: .gather, inputs: [pool, index], outputs: [name]))
        } else {
            graph.inputs.append(ValueInfo(name: name, type: TensorType(dtype: t.dtype, shape: t.shape)))
            feeds[name] = t
        }
    }
    graph.nodes.append(Node(name: "n", op: op, inputs: inputNames, outputs: outputs, attributes: Attributes(attributes)))
    graph.outputs = outputs.map { ValueInfo(name: $0, type: TensorType(dtype: .f32, dims: [])) }
    let session = try Session(graph: graph, options: SessionOptions(threads: threads))
    let result = try session.run(feeds)
    return outputs.map { result[$0]! }
}

/// `runSingleNode` with the inputs named in `runTime` known only when the session runs; its one output.
func runSingleNodeWithRunTimeInputs(
    _ op: OpType,
    inputs: [(String, Tensor)],
    runTime: Set<String>,
    constants: [String: Tensor] = [:],
    attributes: [String: Attribute] = [:],
    threads: Int = 1
) throws -> Tensor {
    try runSingleNode(op, inputs: inputs, constants: constants, runTime: runTime, attributes: attributes, threads: threads)[0]
}

/// Asserts two float tensors have the same shape and values within tolerance.
func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-5, atol: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shape", file: file, line: line)
    let a = actual.doubles
    let e = expected.doubles
    guard a.count == e.count else { return XCTFail("count \(a.count) vs \(e.count)", file: file, line: line) }
    for i in 0..<a.count {
        if a[i].isNaN && e[i].isNaN { continue }
        if abs(a[i] - e[i]) > atol + rtol * abs(e[i]) {
            return XCTFail("element \(i): \(a[i]) vs expected \(e[i])", file: file, line: line)
        }
    }
}

func floats(_ shape: [Int], _ values: [Float]) -> Tensor { Tensor(shape: shape, values: values) }
func int64s(_ shape: [Int], _ values: [Int64]) -> Tensor { Tensor(shape: shape, values: values) }

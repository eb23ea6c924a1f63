import Foundation
import PerchGraph

/// Imports ONNX models (`ModelProto`) into Perch's IR.
///
/// What the engine needs to know about opset-dependent semantics travels on each node as the
/// attribute `_opset` (the model's default-domain opset). Spellings that Perch folds into one
/// operator are rewritten here: `Upsample` becomes `Resize` (marked `_upsample`), `Scatter`
/// becomes `ScatterElements`, `Constant` becomes an initializer.
public enum ONNXImporter {
    /// Default-domain opsets whose semantics Perch implements (6 for the PyTorch-exported models
    /// of ONNX's own test data; 7–22 as the contract promises).
    public static let supportedOpsets: ClosedRange<Int> = 6...22

    /// Operators whose ONNX definition is the same from opset 1 to opset 6: a model of opset 1–5
    /// that uses only these is imported too (ONNX's own `Not` tests are opset 1).
    static let unchangedSinceOpset1: Set<String> = ["Not", "Identity", "Transpose", "Softsign", "Softplus", "Shape", "Size"]

    /// Reads and imports a model file. External data files are resolved beside it.
    public static func importModel(atPath path: String) throws(ONNXImportError) -> Graph {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file")
        }
        if isDirectory.boolValue { throw .unreadable(path: path, reason: "is a directory, not an .onnx file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: "permission denied or not readable")
        }
        let base = (path as NSString).deletingLastPathComponent
        return try importModel(data: data, path: path, baseDirectory: base.isEmpty ? "." : base)
    }

    /// Imports a serialized model. `path` is used in messages only.
    public static func importModel(data: Data, path: String, baseDirectory: String?) throws(ONNXImportError) -> Graph {
        if data.isEmpty { throw .notAModel(path: path, reason: "the file is empty") }
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw .notAModel(path: path, reason: "protobuf parse failed: truncated or not an ONNX file")
        }
        guard model.hasGraph, !model.graph.node.isEmpty || !model.graph.output.isEmpty else {
            throw .notAModel(path: path, reason: model.hasIrVersion ? "the model has no graph" : "no ONNX model structure found (truncated or not an ONNX file)")
        }
        var opset = -1
        for entry in model.opsetImport where entry.domain.isEmpty || entry.domain == "ai.onnx" {
            opset = Int(entry.version)
        }
        if opset < 0 {
            // IR version 1–2 models had no opset_import; the ONNX default is opset 1.
            opset = 1
        }
        let legacyButUnchanged = opset >= 1 && opset < supportedOpsets.lowerBound
            && model.graph.node.allSatisfy { ($0.domain.isEmpty || $0.domain == "ai.onnx") && unchangedSinceOpset1.contains($0.opType) }
        guard supportedOpsets.contains(opset) || legacyButUnchanged else {
            throw .unsupportedOpset(path: path, domain: "", version: opset, supported: supportedOpsets)
        }

        var converter = GraphConverter(path: path, baseDirectory: baseDirectory, opset: opset)
        var graph = try converter.convert(model.graph)
        graph.metadata["producer"] = model.producerName + (model.producerVersion.isEmpty ? "" : " " + model.producerVersion)
        graph.metadata["opset"] = String(opset)
        if model.modelVersion != 0 { graph.metadata["model_version"] = String(model.modelVersion) }
        do {
            try graph.validate()
        } catch {
            throw .invalidGraph(path: path, error: error)
        }
        return graph
    }
}

/// Converts one `GraphProto`, collecting every unsupported operator before failing.
struct GraphConverter {
    let path: String
    let baseDirectory: String?
    let opset: Int
    var unsupported = [ONNXImportError.UnsupportedNode]()
    var generatedNames = 0

    init(path: String, baseDirectory: String?, opset: Int) {
        self.path = path
        self.baseDirectory = baseDirectory
        self.opset = opset
    }

    mutating func convert(_ proto: Onnx_GraphProto) throws(ONNXImportError) -> Graph {
        let graph = try convertGraph(proto)
        if !unsupported.isEmpty {
            throw .unsupportedOperators(path: path, nodes: unsupported)
        }
        return graph
    }

    /// Converts a graph or a body graph, adding unsupported nodes to `unsupported`.
    mutating func convertGraph(_ proto: Onnx_GraphProto) throws(ONNXImportError) -> Graph {
        var graph = Graph(name: proto.name)
        for initializer in proto.initializer {
            graph.initializers[initializer.name] = try TensorProtoDecoding.tensor(from: initializer, baseDirectory: baseDirectory)
        }
        if !proto.sparseInitializer.isEmpty {
            unsupported.append(.init(nodeName: proto.sparseInitializer[0].values.name, opType: "sparse_initializer", domain: ""))
        }
        for input in proto.input {
            graph.inputs.append(try valueInfo(input))
        }
        for output in proto.output {
            graph.outputs.append(try valueInfo(output))
        }
        for node in proto.node {
            if let converted = try convertNode(node, into: &graph) {
                graph.nodes.append(converted)
            }
        }
        return graph
    }

    func valueInfo(_ proto: Onnx_ValueInfoProto) throws(ONNXImportError) -> ValueInfo {
        guard proto.type.tensorType.hasElemType else {
            // Untyped outputs occur in hand-written models; let shape inference decide.
            return ValueInfo(name: proto.name, type: TensorType(dtype: .f32, dims: []))
        }
        let elem = Int(proto.type.tensorType.elemType)
        guard let dtype = TensorProtoDecoding.dtype(onnxType: elem) else {
            throw .invalidTensor(name: proto.name, reason: "element type " + TensorProtoDecoding.onnxTypeName(elem) + " is not supported")
        }
        var dims = [Dim]()
        for (i, d) in proto.type.tensorType.shape.dim.enumerated() {
            switch d.value {
            case .dimValue(let v)?: dims.append(.fixed(Int(v)))
            // Paddle2ONNX writes "?" for every unknown dimension; it names no dimension, so two
            // of them need not be equal (ONNX Runtime binds neither).
            case .dimParam(let p)? where !p.isEmpty && p != "?": dims.append(.symbolic(p))
            case .dimParam, nil: dims.append(.symbolic(proto.name + ":" + String(i)))
            }
        }
        return ValueInfo(name: proto.name, type: TensorType(dtype: dtype, dims: dims))
    }

    /// The com.microsoft operators Perch implements (ONNX Runtime's quantized QOperator ops);
    /// `expandedMicrosoftOps` are imported as their QDQ form; any other op of that domain is
    /// reported as unsupported.
    static let microsoftOps: Set<String> = [
        "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QGemm",
    ]

    mutating func convertNode(_ proto: Onnx_NodeProto, into graph: inout Graph) throws(ONNXImportError) -> Node? {
        let domain = proto.domain
        let name = proto.name
        let expanded = domain == "com.microsoft" && Self.expandedMicrosoftOps.contains(proto.opType)
        guard domain.isEmpty || domain == "ai.onnx" || (domain == "com.microsoft" && Self.microsoftOps.contains(proto.opType)) || expanded else {
            unsupported.append(.init(nodeName: name.isEmpty ? proto.output.first ?? "" : name, opType: proto.opType, domain: domain))
            return nil
        }
        var attributes = Attributes()
        for a in proto.attribute {
            if let value = try attribute(a) { attributes[a.name] = value }
        }
        attributes["_opset"] = .int(opset)
        if expanded {
            attributes["_opset"] = nil
            try expandMicrosoftQuantized(proto, attributes: attributes, into: &graph)
            return nil
        }

        var opName = proto.opType
        var inputs = proto.input
        switch proto.opType {
        case "Constant":
            guard let value = try constantValue(attributes, node: name) else {
                unsupported.append(.init(nodeName: name, opType: "Constant (sparse or string value)", domain: ""))
                return nil
            }
            if let out = proto.output.first { graph.initializers[out] = value }
            return nil
        case "Upsample":
            opName = "Resize"
            attributes["_upsample"] = .int(1)
            if let scales = attributes.floats("scales") {
                let scalesName = "_upsample_scales_" + String(generatedNames)
                generatedNames += 1
                graph.initializers[scalesName] = Tensor(shape: [scales.count], values: scales)
                inputs = [inputs.first ?? "", "", scalesName]
            } else if inputs.count >= 2 {
                inputs = [inputs[0], "", inputs[1]]
            }
            attributes["scales"] = nil
        case "Scatter":
            // Opset 9–10 Scatter is ScatterElements without `reduction`.
            opName = "ScatterElements"
        default:
            break
        }
        guard let op = OpType(rawValue: opName) else {
            unsupported.append(.init(nodeName: name.isEmpty ? (proto.output.first ?? "") : name, opType: proto.opType, domain: ""))
            return nil
        }
        var node = Node(name: name, op: op, inputs: inputs, outputs: proto.output, attributes: attributes)
        BodyGraphs.captureFreeValues(&node)
        return node
    }

    func constantValue(_ attributes: Attributes, node: String) throws(ONNXImportError) -> Tensor? {
        if let t = attributes.tensor("value") { return t }
        switch attributes["value_float"] {
        case .float(let v)?: return Tensor(shape: [], values: [v])
        default: break
        }
        if case .floats(let v)? = attributes["value_floats"] { return Tensor(shape: [v.count], values: v) }
        if case .int(let v)? = attributes["value_int"] { return Tensor(shape: [], values: [Int64(v)]) }
        if case .ints(let v)? = attributes["value_ints"] { return Tensor(shape: [v.count], values: v.map { Int64($0) }) }
        return nil
    }

    mutating func attribute(_ a: Onnx_AttributeProto) throws(ONNXImportError) -> Attribute? {
        var type = a.type
        if type == .undefined {
            // Pre-IR-3 models leave `type` unset: infer it from the field that holds data.
            if a.hasF { type = .float } else if a.hasI { type = .int } else if a.hasS { type = .string }
            else if a.hasT { type = .tensor } else if !a.floats.isEmpty { type = .floats }
            else if !a.ints.isEmpty { type = .ints } else if !a.strings.isEmpty { type = .strings }
            else if a.hasG { type = .graph }
        }
        switch type {
        case .float: return .float(a.f)
        case .int: return .int(Int(clamping: a.i))
        case .string: return .string(String(decoding: a.s, as: UTF8.self))
        case .floats: return .floats(a.floats)
        case .ints: return .ints(a.ints.map { Int(clamping: $0) })
        case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensor: return .tensor(try TensorProtoDecoding.tensor(from: a.t, baseDirectory: baseDirectory))
        case .graph: return .graph(try convertGraph(a.g))
        default: return nil  // lists of graphs, sparse tensors, type protos: no supported op uses them
        }
    }
}

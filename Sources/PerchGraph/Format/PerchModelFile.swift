/// The `.perchm` model file: what `perch import`/`optimize` write and the engine and agent load.
///
/// Layout (all integers little-endian):
/// ```
/// 0   magic "PERCHM\r\n" (8 bytes)
/// 8   u32 format version (1; 2 when a node carries a body graph, which version-1 readers lack)
/// 12  u32 flags (0)
/// 16  u64 structure offset   24 u64 structure length
/// 32  u64 weights offset     40 u64 weights length
/// 48  u64 checksum of bytes [64, end of file)
/// 56  8 bytes reserved, zero
/// 64  structure: graph name, metadata, inputs, outputs, nodes, tensor table
/// …   weights: every initializer's bytes, each starting at a 64-byte-aligned file offset
/// ```
/// The weights section starts 64-byte aligned and every tensor in it too, so a device can `mmap`
/// the file and use weights in place with aligned SIMD loads.
public enum PerchModelFile {
    public static let magic: [UInt8] = [0x50, 0x45, 0x52, 0x43, 0x48, 0x4D, 0x0D, 0x0A]  // "PERCHM\r\n"
    /// The newest version this build reads and writes.
    public static let formatVersion: UInt32 = 2
    public static let alignment = 64
    static let headerSize = 64

    /// Serializes a graph. Initializers are written in name order so output is deterministic.
    public static func encode(_ graph: Graph) -> [UInt8] {
        let names = graph.initializers.keys.sorted()
        // Lay out weights first to know their offsets relative to the weights section.
        var weightOffsets = [Int]()
        var weightsLength = 0
        for name in names {
            weightsLength = align(weightsLength)
            weightOffsets.append(weightsLength)
            weightsLength += graph.initializers[name]!.bytes.count
        }

        var s = ByteWriter()
        s.string(graph.name)
        let metaKeys = graph.metadata.keys.sorted()
        s.varint(metaKeys.count)
        for key in metaKeys {
            s.string(key)
            s.string(graph.metadata[key]!)
        }
        writeValueInfos(&s, graph.inputs)
        writeValueInfos(&s, graph.outputs)
        writeNodes(&s, graph.nodes)
        s.varint(names.count)
        for (i, name) in names.enumerated() {
            let t = graph.initializers[name]!
            s.string(name)
            writeTensorHeader(&s, t)
            s.u64(UInt64(weightOffsets[i]))
            s.u64(UInt64(t.bytes.count))
        }

        let structureOffset = headerSize
        let structureLength = s.bytes.count
        let weightsOffset = align(structureOffset + structureLength)

        var file = [UInt8](repeating: 0, count: weightsOffset + weightsLength)
        file.replaceSubrange(structureOffset..<structureOffset + structureLength, with: s.bytes)
        for (i, name) in names.enumerated() {
            let b = graph.initializers[name]!.bytes
            let start = weightsOffset + weightOffsets[i]
            file.replaceSubrange(start..<start + b.count, with: b)
        }
        var h = ByteWriter()
        h.raw(magic)
        h.u32(hasBodyGraphs(graph.nodes) ? 2 : 1)
        h.u32(0)
        h.u64(UInt64(structureOffset))
        h.u64(UInt64(structureLength))
        h.u64(UInt64(weightsOffset))
        h.u64(UInt64(weightsLength))
        h.u64(perchChecksum(file, from: headerSize, to: file.count))
        h.u64(0)
        file.replaceSubrange(0..<headerSize, with: h.bytes)
        return file
    }

    /// Parses and checks a `.perchm` file. Throws on a bad magic, a newer version, a checksum
    /// mismatch or any truncation.
    public static func decode(_ file: [UInt8]) throws(GraphError) -> Graph {
        let what = "model file"
        if file.count < headerSize || Array(file[0..<8]) != magic {
            throw .malformedFile(what: what, reason: "not a Perch model (.perchm): bad magic")
        }
        var h = ByteReader(file, from: 8, to: headerSize, what: what)
        let version = try h.u32()
        if version > formatVersion { throw .unsupportedFormatVersion(Int(version)) }
        _ = try h.u32()
        let structureOffset = Int(clamping: try h.u64())
        let structureLength = Int(clamping: try h.u64())
        let weightsOffset = Int(clamping: try h.u64())
        let weightsLength = Int(clamping: try h.u64())
        let checksum = try h.u64()
        guard structureOffset >= headerSize, structureLength >= 0, structureOffset <= file.count,
            structureLength <= file.count - structureOffset, weightsOffset <= file.count,
            weightsLength <= file.count - weightsOffset
        else { throw .malformedFile(what: what, reason: "section table points outside the file (truncated?)") }
        if perchChecksum(file, from: headerSize, to: file.count) != checksum { throw .checksumMismatch }

        var r = ByteReader(file, from: structureOffset, to: structureOffset + structureLength, what: what)
        var graph = Graph()
        graph.name = try r.string()
        let metaCount = try r.count()
        for _ in 0..<metaCount {
            let key = try r.string()
            graph.metadata[key] = try r.string()
        }
        graph.inputs = try readValueInfos(&r)
        graph.outputs = try readValueInfos(&r)
        graph.nodes = try readNodes(&r, depth: 0)
        let tensorCount = try r.count()
        for _ in 0..<tensorCount {
            let name = try r.string()
            var t = try readTensorHeader(&r)
            let offset = Int(clamping: try r.u64())
            let length = Int(clamping: try r.u64())
            guard offset <= weightsLength, length <= weightsLength - offset,
                length == elementCount(t.shape) * t.dtype.byteSize
            else { throw .malformedFile(what: what, reason: "tensor '" + name + "' lies outside the weights section") }
            t.bytes = Array(file[weightsOffset + offset..<weightsOffset + offset + length])
            graph.initializers[name] = t
        }
        return graph
    }

    static func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    static func hasBodyGraphs(_ nodes: [Node]) -> Bool {
        for node in nodes {
            for (_, a) in node.attributes.values {
                if case .graph = a { return true }
            }
        }
        return false
    }

    static func writeNodes(_ s: inout ByteWriter, _ nodes: [Node]) {
        s.varint(nodes.count)
        for node in nodes {
            s.string(node.name)
            s.string(node.op.rawValue)
            writeStrings(&s, node.inputs)
            writeStrings(&s, node.outputs)
            let keys = node.attributes.values.keys.sorted()
            s.varint(keys.count)
            for key in keys {
                s.string(key)
                writeAttribute(&s, node.attributes.values[key]!)
            }
        }
    }

    /// Body graphs nest (a Loop in an If branch); a file nesting deeper than this is refused
    /// rather than recursing without bound.
    static let maxBodyDepth = 32

    static func readNodes(_ r: inout ByteReader, depth: Int) throws(GraphError) -> [Node] {
        var nodes = [Node]()
        let nodeCount = try r.count()
        for _ in 0..<nodeCount {
            let name = try r.string()
            let opName = try r.string()
            guard let op = OpType(rawValue: opName) else {
                throw .malformedFile(what: "model file", reason: "unknown operator '" + opName + "' (file from a newer Perch?)")
            }
            let inputs = try readStrings(&r)
            let outputs = try readStrings(&r)
            var attributes = Attributes()
            let attributeCount = try r.count()
            for _ in 0..<attributeCount {
                let key = try r.string()
                attributes[key] = try readAttribute(&r, depth: depth)
            }
            nodes.append(Node(name: name, op: op, inputs: inputs, outputs: outputs, attributes: attributes))
        }
        return nodes
    }

    /// A body graph: name, inputs, outputs, nodes, then its (small) constants inline.
    static func writeBodyGraph(_ s: inout ByteWriter, _ g: Graph) {
        s.string(g.name)
        writeValueInfos(&s, g.inputs)
        writeValueInfos(&s, g.outputs)
        writeNodes(&s, g.nodes)
        let names = g.initializers.keys.sorted()
        s.varint(names.count)
        for name in names {
            let t = g.initializers[name]!
            s.string(name)
            writeTensorHeader(&s, t)
            s.varint(t.bytes.count)
            s.raw(t.bytes)
        }
    }

    static func readBodyGraph(_ r: inout ByteReader, depth: Int) throws(GraphError) -> Graph {
        guard depth < maxBodyDepth else {
            throw .malformedFile(what: "model file", reason: "body graphs nest deeper than " + String(maxBodyDepth))
        }
        var g = Graph()
        g.name = try r.string()
        g.inputs = try readValueInfos(&r)
        g.outputs = try readValueInfos(&r)
        g.nodes = try readNodes(&r, depth: depth + 1)
        let count = try r.count()
        for _ in 0..<count {
            let name = try r.string()
            g.initializers[name] = try readInlineTensor(&r)
        }
        return g
    }

    static func readInlineTensor(_ r: inout ByteReader) throws(GraphError) -> Tensor {
        var t = try readTensorHeader(&r)
        let n = try r.count()
        guard n == elementCount(t.shape) * t.dtype.byteSize else {
            throw .malformedFile(what: "model file", reason: "attribute tensor size mismatch")
        }
        t.bytes = try r.raw(n)
        return t
    }

    static func writeStrings(_ s: inout ByteWriter, _ values: [String]) {
        s.varint(values.count)
        for v in values { s.string(v) }
    }

    static func readStrings(_ r: inout ByteReader) throws(GraphError) -> [String] {
        let n = try r.count()
        var out = [String]()
        for _ in 0..<n { out.append(try r.string()) }
        return out
    }

    static func writeValueInfos(_ s: inout ByteWriter, _ infos: [ValueInfo]) {
        s.varint(infos.count)
        for info in infos {
            s.string(info.name)
            s.u8(info.type.dtype.rawValue)
            s.varint(info.type.dims.count)
            for d in info.type.dims {
                switch d {
                case .fixed(let v):
                    s.u8(0)
                    s.varint(v)
                case .symbolic(let name):
                    s.u8(1)
                    s.string(name)
                }
            }
        }
    }

    static func readValueInfos(_ r: inout ByteReader) throws(GraphError) -> [ValueInfo] {
        let n = try r.count()
        var out = [ValueInfo]()
        for _ in 0..<n {
            let name = try r.string()
            let dtype = try readDType(&r)
            let rank = try r.count(max: 64)
            var dims = [Dim]()
            for _ in 0..<rank {
                let tag = try r.u8()
                if tag == 0 { dims.append(.fixed(try r.varint())) } else { dims.append(.symbolic(try r.string())) }
            }
            out.append(ValueInfo(name: name, type: TensorType(dtype: dtype, dims: dims)))
        }
        return out
    }

    static func readDType(_ r: inout ByteReader) throws(GraphError) -> DType {
        let raw = try r.u8()
        guard let d = DType(rawValue: raw) else {
            throw .malformedFile(what: "model file", reason: "unknown element type " + String(raw))
        }
        return d
    }

    static func writeTensorHeader(_ s: inout ByteWriter, _ t: Tensor) {
        s.u8(t.dtype.rawValue)
        s.varint(t.shape.count)
        for d in t.shape { s.varint(d) }
        if let q = t.quantization {
            s.u8(1)
            s.varint(q.axis)
            s.varint(q.scales.count)
            for v in q.scales { s.f32(v) }
            s.varint(q.zeroPoints.count)
            for v in q.zeroPoints { s.i64(Int64(v)) }
        } else {
            s.u8(0)
        }
    }

    static func readTensorHeader(_ r: inout ByteReader) throws(GraphError) -> Tensor {
        let dtype = try readDType(&r)
        let rank = try r.count(max: 64)
        var shape = [Int]()
        for _ in 0..<rank {
            let d = try r.varint()
            if d < 0 { throw .malformedFile(what: "model file", reason: "negative dimension") }
            shape.append(d)
        }
        var t = Tensor(dtype: dtype, shape: [0])
        t.shape = shape
        if try r.u8() == 1 {
            let axis = try r.varint()
            let ns = try r.count()
            var scales = [Float]()
            for _ in 0..<ns { scales.append(try r.f32()) }
            let nz = try r.count()
            var zps = [Int32]()
            for _ in 0..<nz { zps.append(Int32(truncatingIfNeeded: try r.i64())) }
            t.quantization = QuantizationParameters(scales: scales, zeroPoints: zps, axis: axis)
        }
        return t
    }

    static func writeAttribute(_ s: inout ByteWriter, _ a: Attribute) {
        switch a {
        case .int(let v):
            s.u8(1)
            s.i64(Int64(v))
        case .float(let v):
            s.u8(2)
            s.f32(v)
        case .string(let v):
            s.u8(3)
            s.string(v)
        case .ints(let v):
            s.u8(4)
            s.varint(v.count)
            for x in v { s.i64(Int64(x)) }
        case .floats(let v):
            s.u8(5)
            s.varint(v.count)
            for x in v { s.f32(x) }
        case .strings(let v):
            s.u8(6)
            writeStrings(&s, v)
        case .tensor(let t):
            s.u8(7)
            writeTensorHeader(&s, t)
            s.varint(t.bytes.count)
            s.raw(t.bytes)
        case .graph(let g):
            s.u8(8)
            writeBodyGraph(&s, g)
        }
    }

    static func readAttribute(_ r: inout ByteReader, depth: Int) throws(GraphError) -> Attribute {
        let tag = try r.u8()
        switch tag {
        case 1: return .int(Int(try r.i64()))
        case 2: return .float(try r.f32())
        case 3: return .string(try r.string())
        case 4:
            let n = try r.count()
            var v = [Int]()
            for _ in 0..<n { v.append(Int(try r.i64())) }
            return .ints(v)
        case 5:
            let n = try r.count()
            var v = [Float]()
            for _ in 0..<n { v.append(try r.f32()) }
            return .floats(v)
        case 6: return .strings(try readStrings(&r))
        case 7: return .tensor(try readInlineTensor(&r))
        case 8: return .graph(try readBodyGraph(&r, depth: depth))
        default:
            throw .malformedFile(what: "model file", reason: "unknown attribute kind " + String(tag))
        }
    }
}

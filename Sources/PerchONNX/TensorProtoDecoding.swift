import Foundation
import PerchGraph

/// Converts ONNX `TensorProto`s (initializers, `Constant` values, test data `.pb` files) to
/// Perch tensors, including raw data, typed fields and external data files.
public enum TensorProtoDecoding {
    /// Maps an ONNX `TensorProto.DataType` number to a Perch dtype; nil for types Perch lacks
    /// (string, complex, float8, int4).
    public static func dtype(onnxType: Int) -> DType? {
        switch onnxType {
        case 1: return .f32
        case 2: return .u8
        case 3: return .i8
        case 4: return .u16
        case 5: return .i16
        case 6: return .i32
        case 7: return .i64
        case 9: return .bool
        case 10: return .f16
        case 11: return .f64
        case 12: return .u32
        case 13: return .u64
        case 16: return .bf16
        case 17: return .f8e4m3fn
        case 18: return .f8e4m3fnuz
        case 19: return .f8e5m2
        case 20: return .f8e5m2fnuz
        case 21: return .u4
        case 22: return .i4
        default: return nil
        }
    }

    public static func onnxTypeName(_ t: Int) -> String {
        switch t {
        case 8: return "string"
        case 14: return "complex64"
        case 15: return "complex128"
        case 23: return "float4"
        default: return "type " + String(t)
        }
    }

    /// Reads a serialized `TensorProto` file (ONNX test data `input_0.pb`).
    public static func decodeFile(_ path: String) throws(ONNXImportError) -> (name: String, tensor: Tensor) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: "no such file or not readable")
        }
        let proto: Onnx_TensorProto
        do {
            proto = try Onnx_TensorProto(serializedBytes: data)
        } catch {
            throw .notAModel(path: path, reason: "not a serialized TensorProto")
        }
        return (proto.name, try tensor(from: proto, baseDirectory: nil))
    }

    /// Converts one `TensorProto`. `baseDirectory` resolves external data locations.
    public static func tensor(from proto: Onnx_TensorProto, baseDirectory: String?) throws(ONNXImportError) -> Tensor {
        let name = proto.name
        guard let dtype = dtype(onnxType: Int(proto.dataType)) else {
            throw .invalidTensor(name: name, reason: "element type " + onnxTypeName(Int(proto.dataType)) + " is not supported")
        }
        var shape = [Int]()
        for d in proto.dims {
            guard d >= 0 && d < (1 << 40) else { throw .invalidTensor(name: name, reason: "invalid dimension " + String(d)) }
            shape.append(Int(d))
        }
        let count = elementCount(shape)
        let byteCount = count * dtype.byteSize

        if proto.hasDataLocation && proto.dataLocation == .external {
            return try externalTensor(proto, dtype: dtype, shape: shape, byteCount: byteCount, baseDirectory: baseDirectory)
        }
        if dtype == .i4 || dtype == .u4 {
            return try unpackInt4(proto, dtype: dtype, shape: shape)
        }
        if proto.hasRawData {
            let raw = proto.rawData
            guard raw.count == byteCount else {
                throw .invalidTensor(name: name, reason: "raw data has " + String(raw.count) + " bytes, shape " + shapeString(shape) + " needs " + String(byteCount))
            }
            return Tensor(dtype: dtype, shape: shape, bytes: [UInt8](raw))
        }
        var t = Tensor(dtype: dtype, shape: shape)
        func mismatch(_ n: Int) -> ONNXImportError {
            .invalidTensor(name: name, reason: "has " + String(n) + " values, shape " + shapeString(shape) + " needs " + String(count))
        }
        switch dtype {
        case .f32:
            guard proto.floatData.count == count else { throw mismatch(proto.floatData.count) }
            t = Tensor(shape: shape, values: proto.floatData)
        case .f64:
            guard proto.doubleData.count == count else { throw mismatch(proto.doubleData.count) }
            t = Tensor(shape: shape, values: proto.doubleData)
        case .i64:
            guard proto.int64Data.count == count else { throw mismatch(proto.int64Data.count) }
            t = Tensor(shape: shape, values: proto.int64Data)
        case .u32, .u64:
            guard proto.uint64Data.count == count else { throw mismatch(proto.uint64Data.count) }
            t.bytes.withUnsafeMutableBytes { raw in
                for (i, v) in proto.uint64Data.enumerated() { writeElementFromInt64(raw.baseAddress!, dtype, i, Int64(bitPattern: v)) }
            }
        case .f16, .bf16:
            // Stored as bit patterns in int32_data.
            guard proto.int32Data.count == count else { throw mismatch(proto.int32Data.count) }
            t.bytes.withUnsafeMutableBytes { raw in
                for (i, v) in proto.int32Data.enumerated() {
                    raw.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: i * 2, as: UInt16.self)
                }
            }
        default:
            guard proto.int32Data.count == count else { throw mismatch(proto.int32Data.count) }
            t.bytes.withUnsafeMutableBytes { raw in
                for (i, v) in proto.int32Data.enumerated() { writeElementFromInt64(raw.baseAddress!, dtype, i, Int64(v)) }
            }
        }
        return t
    }

    /// int4/uint4 are packed two per byte, low nibble first (raw data or int32_data bytes);
    /// Perch keeps one value per byte.
    static func unpackInt4(_ proto: Onnx_TensorProto, dtype: DType, shape: [Int]) throws(ONNXImportError) -> Tensor {
        let count = elementCount(shape)
        var packed: [UInt8]
        if proto.hasRawData {
            packed = [UInt8](proto.rawData)
        } else {
            packed = proto.int32Data.map { UInt8(truncatingIfNeeded: $0) }
        }
        guard packed.count == (count + 1) / 2 else {
            throw .invalidTensor(name: proto.name, reason: "packed 4-bit data has " + String(packed.count) + " bytes, shape " + shapeString(shape) + " needs " + String((count + 1) / 2))
        }
        var t = Tensor(dtype: dtype, shape: shape)
        for i in 0..<count {
            var nibble = (packed[i / 2] >> UInt8((i % 2) * 4)) & 0x0F
            if dtype == .i4 && nibble >= 8 { nibble |= 0xF0 }  // sign-extend
            t.bytes[i] = nibble
        }
        return t
    }

    static func externalTensor(_ proto: Onnx_TensorProto, dtype: DType, shape: [Int], byteCount: Int, baseDirectory: String?) throws(ONNXImportError) -> Tensor {
        let name = proto.name
        var location = ""
        var offset = 0
        var length = -1
        for entry in proto.externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset": offset = Int(entry.value) ?? -1
            case "length": length = Int(entry.value) ?? -1
            default: break
            }
        }
        guard !location.isEmpty else { throw .externalData(tensor: name, reason: "no location given") }
        // External data must stay beside the model: no absolute paths, no '..'.
        if location.hasPrefix("/") || location.split(separator: "/").contains("..") {
            throw .externalData(tensor: name, reason: "location '" + location + "' points outside the model's directory")
        }
        guard offset >= 0 else { throw .externalData(tensor: name, reason: "invalid offset") }
        let path = (baseDirectory ?? ".") + "/" + location
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .externalData(tensor: name, reason: "file '" + path + "' not found (keep it beside the model)")
        }
        defer { try? handle.close() }
        let want = length >= 0 ? length : byteCount
        guard want == byteCount else {
            throw .externalData(tensor: name, reason: "length " + String(want) + " does not match shape " + shapeString(shape) + " (" + String(byteCount) + " bytes)")
        }
        let data: Data
        do {
            try handle.seek(toOffset: UInt64(offset))
            data = try handle.read(upToCount: want) ?? Data()
        } catch {
            throw .externalData(tensor: name, reason: "cannot read '" + path + "'")
        }
        guard data.count == want else {
            throw .externalData(tensor: name, reason: "file '" + path + "' is too short (truncated?)")
        }
        return Tensor(dtype: dtype, shape: shape, bytes: [UInt8](data))
    }

    static func shapeString(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ", ") + "]"
    }
}

/// NumPy `.npy` encoding and decoding (format versions 1–3, little-endian, C order), the tensor
/// exchange format of CONTRACTS.md. Pure bytes in and out: callers do the file I/O.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Decodes an `.npy` file's bytes. `what` names the file in error messages.
    public static func decode(_ bytes: [UInt8], what: String) throws(GraphError) -> Tensor {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw .malformedFile(what: what, reason: "not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        var headerLength: Int
        var headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .malformedFile(what: what, reason: "truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw .malformedFile(what: what, reason: "unsupported .npy version " + String(major))
        }
        guard headerStart + headerLength <= bytes.count else {
            throw .malformedFile(what: what, reason: "truncated header")
        }
        let header = String(decoding: bytes[headerStart..<headerStart + headerLength], as: UTF8.self)
        guard let descr = quotedValue(header, key: "descr") else {
            throw .malformedFile(what: what, reason: "header has no 'descr'")
        }
        if find(Array("'fortran_order': True".utf8), in: Array(header.utf8), from: 0) != nil {
            throw .malformedFile(what: what, reason: "Fortran-order arrays are not supported; save with np.ascontiguousarray")
        }
        guard let dtype = dtype(forDescr: descr) else {
            throw .malformedFile(what: what, reason: "unsupported dtype '" + descr + "' (need little-endian float32, float16, float64, int8, uint8, int16, int32, int64 or bool)")
        }
        guard let shape = parseShape(header) else {
            throw .malformedFile(what: what, reason: "header has no valid 'shape'")
        }
        let dataStart = headerStart + headerLength
        let expected = elementCount(shape) * dtype.byteSize
        guard bytes.count - dataStart >= expected else {
            throw .malformedFile(what: what, reason: "truncated data: expected " + String(expected) + " bytes, found " + String(bytes.count - dataStart))
        }
        return Tensor(dtype: dtype, shape: shape, bytes: Array(bytes[dataStart..<dataStart + expected]))
    }

    /// Encodes a tensor as a version 1.0 `.npy` file. Types NumPy lacks travel as their carrier
    /// integer type (`DType.npyCarrier`), as ONNX's numpy_helper does.
    public static func encode(_ tensor: Tensor) -> [UInt8] {
        var t = tensor
        if let carrier = t.dtype.npyCarrier { t.dtype = carrier }
        var shapeText = "("
        for (i, d) in t.shape.enumerated() {
            shapeText += String(d)
            if t.shape.count == 1 || i < t.shape.count - 1 { shapeText += "," }
            if i < t.shape.count - 1 { shapeText += " " }
        }
        shapeText += ")"
        var header = "{'descr': '" + descr(for: t.dtype) + "', 'fortran_order': False, 'shape': " + shapeText + ", }"
        // Pad so that data starts 64-byte aligned; header ends with a newline.
        let total = 10 + header.utf8.count + 1
        let padding = (64 - total % 64) % 64
        for _ in 0..<padding { header += " " }
        header += "\n"
        var out = magic
        out.append(1)
        out.append(0)
        let n = header.utf8.count
        out.append(UInt8(n & 0xFF))
        out.append(UInt8(n >> 8))
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: t.bytes)
        return out
    }

    public static func descr(for dtype: DType) -> String {
        switch dtype {
        case .f32: return "<f4"
        case .bf16: return "<u2"
        case .f8e4m3fn, .f8e4m3fnuz, .f8e5m2, .f8e5m2fnuz, .u4: return "|u1"
        case .i4: return "|i1"
        case .f16: return "<f2"
        case .f64: return "<f8"
        case .i8: return "|i1"
        case .u8: return "|u1"
        case .i16: return "<i2"
        case .u16: return "<u2"
        case .i32: return "<i4"
        case .u32: return "<u4"
        case .i64: return "<i8"
        case .u64: return "<u8"
        case .bool: return "|b1"
        }
    }

    static func dtype(forDescr d: String) -> DType? {
        switch d {
        case "<f4", "f4", "=f4": return .f32
        case "<f2", "f2", "=f2": return .f16
        case "<f8", "f8", "=f8": return .f64
        case "|i1", "i1", "<i1": return .i8
        case "|u1", "u1", "<u1": return .u8
        case "<i2", "i2": return .i16
        case "<u2", "u2": return .u16
        case "<i4", "i4", "=i4": return .i32
        case "<u4", "u4": return .u32
        case "<i8", "i8", "=i8": return .i64
        case "<u8", "u8": return .u64
        case "|b1", "b1", "?", "|?": return .bool
        default: return nil
        }
    }

    static func quotedValue(_ header: String, key: String) -> String? {
        let chars = Array(header.utf8)
        let pattern = Array(("'" + key + "'").utf8)
        guard let keyEnd = find(pattern, in: chars, from: 0) else { return nil }
        var i = keyEnd
        while i < chars.count && chars[i] != UInt8(ascii: "'") { i += 1 }
        let start = i + 1
        var j = start
        while j < chars.count && chars[j] != UInt8(ascii: "'") { j += 1 }
        guard j < chars.count else { return nil }
        return String(decoding: chars[start..<j], as: UTF8.self)
    }

    static func parseShape(_ header: String) -> [Int]? {
        let chars = Array(header.utf8)
        guard let keyEnd = find(Array("'shape'".utf8), in: chars, from: 0) else { return nil }
        var i = keyEnd
        while i < chars.count && chars[i] != UInt8(ascii: "(") { i += 1 }
        guard i < chars.count else { return nil }
        i += 1
        var shape = [Int]()
        var current = -1
        while i < chars.count && chars[i] != UInt8(ascii: ")") {
            let c = chars[i]
            if c >= 48 && c <= 57 {
                current = (current < 0 ? 0 : current) * 10 + Int(c - 48)
                if current > (1 << 40) { return nil }
            } else if c == UInt8(ascii: ",") {
                if current >= 0 { shape.append(current) }
                current = -1
            } else if c != UInt8(ascii: " ") && c != UInt8(ascii: "L") {
                return nil
            }
            i += 1
        }
        if i >= chars.count { return nil }
        if current >= 0 { shape.append(current) }
        return shape
    }

    static func find(_ pattern: [UInt8], in chars: [UInt8], from: Int) -> Int? {
        if pattern.count > chars.count { return nil }
        var i = from
        while i + pattern.count <= chars.count {
            var match = true
            for k in 0..<pattern.count where chars[i + k] != pattern[k] {
                match = false
                break
            }
            if match { return i + pattern.count }
            i += 1
        }
        return nil
    }
}

extension NPY {
    /// CONTRACTS.md's name for the `.npy` file holding a tensor: every character outside
    /// `[A-Za-z0-9._-]` becomes `_` (`gpu_0/data_0` → `gpu_0_data_0`, one `_` per non-ASCII
    /// character). One rule for the CLI, the optimizer's datasets and the agent, so a file one of
    /// them writes is the file the others look for.
    public static func fileName(forTensor name: String) -> String {
        var out: [UInt8] = []
        for b in name.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x2D: out.append(b)
            case 0x80...0xBF: continue  // a continuation byte of a character already replaced
            default: out.append(0x5F)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Little-endian encoding helpers for Perch's own binary formats. Kept dependency-free so the
/// device agent (Embedded Swift) reads exactly what the host wrote.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u32(_ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }

    public mutating func u64(_ v: UInt64) {
        for s in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }

    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }

    /// Unsigned LEB128.
    public mutating func varint(_ v: Int) {
        var x = UInt64(bitPattern: Int64(v))
        while x >= 0x80 {
            bytes.append(UInt8(x & 0x7F) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }

    public mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        varint(utf8.count)
        bytes.append(contentsOf: utf8)
    }

    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    public mutating func pad(toMultipleOf alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}

/// Reads what `ByteWriter` wrote, with bounds checks that turn a truncated or corrupt file into
/// a `GraphError` instead of a crash.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var position: Int
    let limit: Int
    let what: String

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil, what: String) {
        self.bytes = bytes
        self.position = start
        self.limit = end ?? bytes.count
        self.what = what
    }

    public var isAtEnd: Bool { position >= limit }

    mutating func need(_ n: Int) throws(GraphError) {
        if n < 0 || position + n > limit { throw .malformedFile(what: what, reason: "truncated at byte " + String(position)) }
    }

    public mutating func u8() throws(GraphError) -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u32() throws(GraphError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[position + i]) << UInt32(8 * i) }
        position += 4
        return v
    }

    public mutating func u64() throws(GraphError) -> UInt64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << UInt64(8 * i) }
        position += 8
        return v
    }

    public mutating func i64() throws(GraphError) -> Int64 { Int64(bitPattern: try u64()) }
    public mutating func f32() throws(GraphError) -> Float { Float(bitPattern: try u32()) }

    public mutating func varint() throws(GraphError) -> Int {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { break }
            shift += 7
            if shift > 63 { throw .malformedFile(what: what, reason: "bad varint at byte " + String(position)) }
        }
        return Int(Int64(bitPattern: result))
    }

    /// A count that must be plausible for the bytes left (guards against huge allocations).
    public mutating func count(max: Int = 1 << 40) throws(GraphError) -> Int {
        let n = try varint()
        if n < 0 || n > max || n > limit - position + 1_000_000 {
            throw .malformedFile(what: what, reason: "implausible count " + String(n) + " at byte " + String(position))
        }
        return n
    }

    public mutating func string() throws(GraphError) -> String {
        let n = try count()
        try need(n)
        let s = String(decoding: bytes[position..<position + n], as: UTF8.self)
        position += n
        return s
    }

    public mutating func raw(_ n: Int) throws(GraphError) -> [UInt8] {
        try need(n)
        defer { position += n }
        return Array(bytes[position..<position + n])
    }
}

/// A 64-bit checksum of a byte range (FNV-1a over 8-byte words with a final avalanche).
/// Detects truncation and bit flips; not a cryptographic hash (bundles sign with SHA-256).
public func perchChecksum(_ bytes: [UInt8], from start: Int, to end: Int) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    let prime: UInt64 = 0x0000_0100_0000_01b3
    bytes.withUnsafeBytes { raw in
        var i = start
        while i + 8 <= end {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ w) &* prime
            h ^= h >> 29
            i += 8
        }
        while i < end {
            h = (h ^ UInt64(raw[i])) &* prime
            i += 1
        }
    }
    h ^= h >> 33
    h = h &* 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    return h
}

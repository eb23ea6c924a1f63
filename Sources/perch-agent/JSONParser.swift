/// A parsed JSON value. Numbers keep their text; `int` reads integers.
enum JSONValue {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    subscript(key: String) -> JSONValue? {
        if case .object(let pairs) = self {
            for (k, v) in pairs where k == key { return v }
        }
        return nil
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var int: Int? {
        if case .number(let s) = self { return Int(s) }
        return nil
    }

    var pairs: [(String, JSONValue)]? {
        if case .object(let p) = self { return p }
        return nil
    }
}

/// A small strict JSON parser (RFC 8259: objects, arrays, strings with escapes, numbers, literals),
/// with a nesting limit so hostile input cannot exhaust the stack.
struct JSONParser {
    let bytes: [UInt8]
    var i = 0
    var depth = 0

    static func parse(_ bytes: [UInt8]) throws(AgentError) -> JSONValue {
        var p = JSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        if p.i != bytes.count { throw p.fail("trailing characters") }
        return v
    }

    func fail(_ what: String) -> AgentError {
        AgentError.integrity("manifest.json is not valid JSON (" + what + " at byte " + String(i) + ")")
    }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func literal(_ word: String, _ v: JSONValue) throws(AgentError) -> JSONValue {
        for b in word.utf8 {
            guard i < bytes.count, bytes[i] == b else { throw fail("bad literal") }
            i += 1
        }
        return v
    }

    mutating func value() throws(AgentError) -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end") }
        switch bytes[i] {
        case 0x7B: return try object()
        case 0x5B: return try array()
        case 0x22: return .string(try string())
        case 0x74: return try literal("true", .bool(true))
        case 0x66: return try literal("false", .bool(false))
        case 0x6E: return try literal("null", .null)
        default: return try number()
        }
    }

    mutating func object() throws(AgentError) -> JSONValue {
        depth += 1
        if depth > 64 { throw fail("nesting too deep") }
        i += 1
        var pairs: [(String, JSONValue)] = []
        skipSpace()
        if i < bytes.count, bytes[i] == 0x7D {
            i += 1
            depth -= 1
            return .object(pairs)
        }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == 0x22 else { throw fail("expected a key") }
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == 0x3A else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            let v = try value()
            for (k, _) in pairs where k == key { throw fail("duplicate key '" + key + "'") }
            pairs.append((key, v))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end") }
            if bytes[i] == 0x2C { i += 1; continue }
            if bytes[i] == 0x7D { i += 1; break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        return .object(pairs)
    }

    mutating func array() throws(AgentError) -> JSONValue {
        depth += 1
        if depth > 64 { throw fail("nesting too deep") }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == 0x5D {
            i += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end") }
            if bytes[i] == 0x2C { i += 1; continue }
            if bytes[i] == 0x5D { i += 1; break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        return .array(items)
    }

    mutating func hex4() throws(AgentError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw fail("bad \\u escape") }
            let c = bytes[i]
            var d: UInt32
            if c >= 48 && c <= 57 { d = UInt32(c - 48) } else if c >= 97 && c <= 102 { d = UInt32(c - 87) } else if c >= 65 && c <= 70 { d = UInt32(c - 55) } else { throw fail("bad \\u escape") }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    mutating func string() throws(AgentError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            i += 1
            if c == 0x22 { break }
            if c < 0x20 { throw fail("control character in string") }
            if c != 0x5C {
                out.append(c)
                continue
            }
            guard i < bytes.count else { throw fail("unterminated string") }
            let e = bytes[i]
            i += 1
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)
            case 0x62: out.append(8)
            case 0x66: out.append(12)
            case 0x6E: out.append(10)
            case 0x72: out.append(13)
            case 0x74: out.append(9)
            case 0x75:
                var cp = try hex4()
                if cp >= 0xD800 && cp < 0xDC00 {
                    guard i + 1 < bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75 else { throw fail("lone surrogate") }
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("bad surrogate pair") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(cp) else { throw fail("bad code point") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("bad escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func number() throws(AgentError) -> JSONValue {
        let start = i
        if i < bytes.count, bytes[i] == 0x2D { i += 1 }
        var digits = 0
        while i < bytes.count {
            let c = bytes[i]
            if (c >= 48 && c <= 57) { digits += 1; i += 1; continue }
            if c == 0x2E || c == 0x65 || c == 0x45 || c == 0x2B || c == 0x2D { i += 1; continue }
            break
        }
        if digits == 0 { throw fail("unexpected character") }
        return .number(String(decoding: bytes[start..<i], as: UTF8.self))
    }
}

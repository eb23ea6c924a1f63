import CPerchAgentShims

/// Writes text to stdout/stderr without Foundation.
enum Out {
    static func stdout(_ s: String) {
        var s = s
        s.withUTF8 { pa_write_stdout(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
    }

    static func stderr(_ s: String) {
        var s = s
        s.withUTF8 { pa_write_stderr(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
    }
}

/// Builds JSON text by hand (keys in the order written).
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    mutating func beginObject(_ key: String? = nil) {
        separator()
        if let key { text += JSONWriter.quote(key) + ":" }
        text += "{"
        needsComma.append(false)
    }

    mutating func endObject() {
        needsComma.removeLast()
        text += "}"
    }

    mutating func beginArray(_ key: String? = nil) {
        separator()
        if let key { text += JSONWriter.quote(key) + ":" }
        text += "["
        needsComma.append(false)
    }

    mutating func endArray() {
        needsComma.removeLast()
        text += "]"
    }

    mutating func raw(_ key: String?, _ value: String) {
        separator()
        if let key { text += JSONWriter.quote(key) + ":" }
        text += value
    }

    mutating func string(_ key: String?, _ value: String) { raw(key, JSONWriter.quote(value)) }
    mutating func int(_ key: String?, _ value: Int) { raw(key, String(value)) }
    mutating func bool(_ key: String?, _ value: Bool) { raw(key, value ? "true" : "false") }
    mutating func null(_ key: String?) { raw(key, "null") }
    mutating func double(_ key: String?, _ value: Double, decimals: Int = 4) { raw(key, formatDouble(value, decimals: decimals)) }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            default:
                if scalar.value < 0x20 { out += "\\u00" + hexByte(UInt8(scalar.value)) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

func hexByte(_ b: UInt8) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    return String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
}

/// Fixed-point text for a double (Embedded Swift has no float-to-text), e.g. 1.2346 for 4 decimals.
func formatDouble(_ value: Double, decimals: Int) -> String {
    if !value.isFinite { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let negative = value < 0
    let scaled = ((negative ? -value : value) * scale).rounded()
    if scaled >= 9.0e18 { return negative ? "-9e18" : "9e18" }
    let n = Int(scaled)
    let p = Int(scale)
    var frac = String(n % p)
    while frac.count < decimals { frac = "0" + frac }
    return (negative && n != 0 ? "-" : "") + String(n / p) + (decimals > 0 ? "." + frac : "")
}

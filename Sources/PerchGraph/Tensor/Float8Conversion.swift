/// The four 8-bit float formats of ONNX (opset 19+), decoded and encoded exactly as the ONNX spec's
/// Cast table says: round to nearest even; with `saturate`, out-of-range values become ±max.
///
/// Encoding searches a sorted table of the format's 127 positive finite values, which keeps the
/// rounding rule obviously right; these types appear in Cast and QDQ plumbing, not in hot loops.
public enum Float8Format: Sendable {
    case e4m3fn, e4m3fnuz, e5m2, e5m2fnuz

    var exponentBits: Int { self == .e4m3fn || self == .e4m3fnuz ? 4 : 5 }
    var mantissaBits: Int { 7 - exponentBits }
    var bias: Int {
        switch self {
        case .e4m3fn: return 7
        case .e4m3fnuz: return 8
        case .e5m2: return 15
        case .e5m2fnuz: return 16
        }
    }
    /// "fnuz" formats have one NaN (0x80) and no negative zero or infinities.
    var isFNUZ: Bool { self == .e4m3fnuz || self == .e5m2fnuz }
}

public enum Float8Conversion {
    /// Decodes one 8-bit float.
    public static func decode(_ bits: UInt8, _ format: Float8Format) -> Float {
        let sign: Float = bits & 0x80 != 0 ? -1 : 1
        let e = Int((bits >> UInt8(format.mantissaBits)) & UInt8((1 << format.exponentBits) - 1))
        let m = Int(bits & UInt8((1 << format.mantissaBits) - 1))
        switch format {
        case .e4m3fn:
            if bits & 0x7F == 0x7F { return .nan }
        case .e5m2:
            if e == 31 { return m == 0 ? sign * .infinity : .nan }
        case .e4m3fnuz, .e5m2fnuz:
            if bits == 0x80 { return .nan }
        }
        let mantissaScale = Float(1 << format.mantissaBits)
        if e == 0 {
            return sign * Float(m) / mantissaScale * pow2(1 - format.bias)
        }
        return sign * (1 + Float(m) / mantissaScale) * pow2(e - format.bias)
    }

    /// Encodes a float; NaN stays NaN.
    public static func encode(_ x: Float, _ format: Float8Format, saturate: Bool = true) -> UInt8 {
        let negative = x < 0 || (x == 0 && x.sign == .minus)
        let signBit: UInt8 = negative ? 0x80 : 0
        // NaN: e4m3fn keeps the sign (S.1111.111), e5m2 uses S.11111.11, fnuz formats 0x80.
        let nanCode: UInt8 = format.isFNUZ ? 0x80 : (format == .e4m3fn ? 0x7F : 0x7F) | signBit
        if x.isNaN { return format.isFNUZ ? 0x80 : (format == .e4m3fn ? 0x7F : 0x7F) }
        let table = positiveValues(format)
        let maxValue = table[table.count - 1]
        let maxCode = UInt8(table.count - 1)
        let magnitude = x.magnitude
        if x.isInfinite {
            if saturate { return signBit | maxCode }
            if format == .e5m2 { return signBit | 0x7C }
            return nanCode
        }
        var code: UInt8
        if magnitude >= maxValue {
            // Round to nearest even first: values within half an ulp above max round to max.
            let ulp = maxValue - table[table.count - 2]
            if magnitude > maxValue + ulp / 2 || (magnitude == maxValue + ulp / 2 && (maxCode & 1) == 1) {
                if saturate { return signBit | maxCode }
                if format == .e5m2 { return signBit | 0x7C }
                return nanCode
            }
            code = maxCode
        } else {
            // Binary search for the first value >= magnitude.
            var lo = 0, hi = table.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if table[mid] < magnitude { lo = mid + 1 } else { hi = mid }
            }
            if lo == 0 {
                code = 0
            } else {
                let below = table[lo - 1], above = table[lo]
                let dBelow = magnitude - below, dAbove = above - magnitude
                if dBelow < dAbove { code = UInt8(lo - 1) }
                else if dAbove < dBelow { code = UInt8(lo) }
                else { code = UInt8((lo - 1) & 1 == 0 ? lo - 1 : lo) }
            }
        }
        if code == 0 { return format.isFNUZ ? 0 : signBit }
        return signBit | code
    }

    /// Positive finite values by code (index = code), ascending.
    static func positiveValues(_ format: Float8Format) -> [Float] {
        switch format {
        case .e4m3fn: return e4m3fnTable
        case .e4m3fnuz: return e4m3fnuzTable
        case .e5m2: return e5m2Table
        case .e5m2fnuz: return e5m2fnuzTable
        }
    }

    static let e4m3fnTable = makeTable(.e4m3fn)
    static let e4m3fnuzTable = makeTable(.e4m3fnuz)
    static let e5m2Table = makeTable(.e5m2)
    static let e5m2fnuzTable = makeTable(.e5m2fnuz)

    static func makeTable(_ format: Float8Format) -> [Float] {
        var values = [Float]()
        for code in 0..<128 {
            let v = decode(UInt8(code), format)
            if v.isNaN || v.isInfinite { break }
            values.append(v)
        }
        return values
    }

    static func pow2(_ e: Int) -> Float {
        var r: Float = 1
        if e >= 0 { for _ in 0..<e { r *= 2 } } else { for _ in 0..<(-e) { r /= 2 } }
        return r
    }
}

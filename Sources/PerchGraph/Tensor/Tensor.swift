/// A tensor with its data held in memory: weights, folded constants, inputs and outputs.
///
/// Data is kept as raw little-endian bytes in row-major order so that it can be written to a
/// `.perchm` file or an `.npy` file without conversion. Typed views are available through
/// `withUnsafeBufferPointer(of:)` and the `floats`/`int64s` conveniences.
public struct Tensor: Sendable, Equatable {
    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]
    public var quantization: QuantizationParameters?

    /// A tensor of zeros.
    public init(dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = [UInt8](repeating: 0, count: elementCount(shape) * dtype.byteSize)
        self.quantization = nil
    }

    /// Wraps existing bytes; `bytes.count` must equal `elementCount(shape) * dtype.byteSize`.
    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(bytes.count == elementCount(shape) * dtype.byteSize, "tensor byte count does not match its shape")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.quantization = nil
    }

    public init<T: TensorElement>(shape: [Int], values: [T]) {
        precondition(values.count == elementCount(shape), "tensor value count does not match its shape")
        self.dtype = T.dtype
        self.shape = shape
        self.bytes = values.withUnsafeBytes { [UInt8]($0) }
        self.quantization = nil
    }

    public var count: Int { elementCount(shape) }
    public var rank: Int { shape.count }

    public func withUnsafeBufferPointer<T: TensorElement, R>(of type: T.Type, _ body: (UnsafeBufferPointer<T>) -> R) -> R {
        precondition(T.dtype == dtype || T.dtype.byteSize == dtype.byteSize, "typed access with a mismatched element type")
        return bytes.withUnsafeBytes { raw in
            body(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: T.self), count: count))
        }
    }

    public mutating func withUnsafeMutableBufferPointer<T: TensorElement, R>(of type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) -> R) -> R {
        precondition(T.dtype == dtype || T.dtype.byteSize == dtype.byteSize, "typed access with a mismatched element type")
        let n = count
        return bytes.withUnsafeMutableBytes { raw in
            body(UnsafeMutableBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: T.self), count: n))
        }
    }

    /// Values converted to Double, whatever the dtype. For shape arithmetic and tests, not hot paths.
    public var doubles: [Double] {
        var out = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<out.count { out[i] = readElementAsDouble(raw.baseAddress!, dtype, i) }
        }
        return out
    }

    /// Values converted to Int64 (truncating floats). For shape-like tensors.
    public var int64s: [Int64] {
        var out = [Int64](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<out.count { out[i] = readElementAsInt64(raw.baseAddress!, dtype, i) }
        }
        return out
    }

    /// Values converted to Float.
    public var floats: [Float] { doubles.map { Float($0) } }

    /// Values as `Int` (for shapes, axes, indices).
    public var ints: [Int] { int64s.map { Int($0) } }
}

/// A Swift type that is the storage of one `DType`.
public protocol TensorElement {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .f32 } }
extension Double: TensorElement { public static var dtype: DType { .f64 } }
extension Int8: TensorElement { public static var dtype: DType { .i8 } }
extension UInt8: TensorElement { public static var dtype: DType { .u8 } }
extension Int16: TensorElement { public static var dtype: DType { .i16 } }
extension UInt16: TensorElement { public static var dtype: DType { .u16 } }
extension Int32: TensorElement { public static var dtype: DType { .i32 } }
extension UInt32: TensorElement { public static var dtype: DType { .u32 } }
extension Int64: TensorElement { public static var dtype: DType { .i64 } }
extension UInt64: TensorElement { public static var dtype: DType { .u64 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }

/// Reads element `i` of a buffer of `dtype` as a Double.
@inlinable
public func readElementAsDouble(_ base: UnsafeRawPointer, _ dtype: DType, _ i: Int) -> Double {
    switch dtype {
    case .f32: return Double(base.load(fromByteOffset: i * 4, as: Float.self))
    case .f64: return base.load(fromByteOffset: i * 8, as: Double.self)
    case .f16: return Double(HalfConversion.toFloat(base.load(fromByteOffset: i * 2, as: UInt16.self)))
    case .bf16: return Double(HalfConversion.bfloat16ToFloat(base.load(fromByteOffset: i * 2, as: UInt16.self)))
    case .i8: return Double(base.load(fromByteOffset: i, as: Int8.self))
    case .u8: return Double(base.load(fromByteOffset: i, as: UInt8.self))
    case .i16: return Double(base.load(fromByteOffset: i * 2, as: Int16.self))
    case .u16: return Double(base.load(fromByteOffset: i * 2, as: UInt16.self))
    case .i32: return Double(base.load(fromByteOffset: i * 4, as: Int32.self))
    case .u32: return Double(base.load(fromByteOffset: i * 4, as: UInt32.self))
    case .i64: return Double(base.load(fromByteOffset: i * 8, as: Int64.self))
    case .u64: return Double(base.load(fromByteOffset: i * 8, as: UInt64.self))
    case .bool: return base.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
    case .f8e4m3fn, .f8e4m3fnuz, .f8e5m2, .f8e5m2fnuz:
        return Double(Float8Conversion.decode(base.load(fromByteOffset: i, as: UInt8.self), dtype.float8Format!))
    case .i4: return Double(base.load(fromByteOffset: i, as: Int8.self))
    case .u4: return Double(base.load(fromByteOffset: i, as: UInt8.self))
    }
}

/// Reads element `i` of a buffer of `dtype` as an Int64 (floats truncate toward zero, saturating).
@inlinable
public func readElementAsInt64(_ base: UnsafeRawPointer, _ dtype: DType, _ i: Int) -> Int64 {
    switch dtype {
    case .i64: return base.load(fromByteOffset: i * 8, as: Int64.self)
    case .i32: return Int64(base.load(fromByteOffset: i * 4, as: Int32.self))
    case .u64: return Int64(truncatingIfNeeded: base.load(fromByteOffset: i * 8, as: UInt64.self))
    default:
        let d = readElementAsDouble(base, dtype, i)
        if d != d { return 0 }
        if d >= 9.2e18 { return Int64.max }
        if d <= -9.2e18 { return Int64.min }
        return Int64(d)
    }
}

/// Writes `value` as element `i` of a buffer of `dtype`, with ONNX Cast semantics for integers
/// (truncation toward zero, wrapping on overflow as NumPy's `astype` does).
@inlinable
public func writeElementFromDouble(_ base: UnsafeMutableRawPointer, _ dtype: DType, _ i: Int, _ value: Double) {
    switch dtype {
    case .f32: base.storeBytes(of: Float(value), toByteOffset: i * 4, as: Float.self)
    case .f64: base.storeBytes(of: value, toByteOffset: i * 8, as: Double.self)
    case .f16: base.storeBytes(of: HalfConversion.fromFloat(Float(value)), toByteOffset: i * 2, as: UInt16.self)
    case .bf16:
        // Truncation, as ONNX's reference Cast does (its test data expects it).
        let f = Float(value)
        let bits: UInt16 = f.isNaN ? 0x7FC0 : UInt16(f.bitPattern >> 16)
        base.storeBytes(of: bits, toByteOffset: i * 2, as: UInt16.self)
    case .bool: base.storeBytes(of: value != 0 ? UInt8(1) : UInt8(0), toByteOffset: i, as: UInt8.self)
    case .f8e4m3fn, .f8e4m3fnuz, .f8e5m2, .f8e5m2fnuz:
        base.storeBytes(of: Float8Conversion.encode(Float(value), dtype.float8Format!), toByteOffset: i, as: UInt8.self)
    case .i4, .u4:
        // ONNX rounds to nearest even and clamps to the 4-bit range.
        var r = value.rounded(.toNearestOrEven)
        if r != r { r = 0 }
        writeElementFromInt64(base, dtype, i, saturatingInt64(r))
    default:
        let v = saturatingInt64(value)
        writeElementFromInt64(base, dtype, i, v)
    }
}

/// Writes `value` as element `i` of a buffer of `dtype`; integer targets wrap.
@inlinable
public func writeElementFromInt64(_ base: UnsafeMutableRawPointer, _ dtype: DType, _ i: Int, _ value: Int64) {
    switch dtype {
    case .i8: base.storeBytes(of: Int8(truncatingIfNeeded: value), toByteOffset: i, as: Int8.self)
    case .u8: base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: i, as: UInt8.self)
    case .i16: base.storeBytes(of: Int16(truncatingIfNeeded: value), toByteOffset: i * 2, as: Int16.self)
    case .u16: base.storeBytes(of: UInt16(truncatingIfNeeded: value), toByteOffset: i * 2, as: UInt16.self)
    case .i32: base.storeBytes(of: Int32(truncatingIfNeeded: value), toByteOffset: i * 4, as: Int32.self)
    case .u32: base.storeBytes(of: UInt32(truncatingIfNeeded: value), toByteOffset: i * 4, as: UInt32.self)
    case .i64: base.storeBytes(of: value, toByteOffset: i * 8, as: Int64.self)
    case .u64: base.storeBytes(of: UInt64(bitPattern: value), toByteOffset: i * 8, as: UInt64.self)
    case .bool: base.storeBytes(of: value != 0 ? UInt8(1) : UInt8(0), toByteOffset: i, as: UInt8.self)
    case .i4: base.storeBytes(of: Int8(Swift.min(Swift.max(value, -8), 7)), toByteOffset: i, as: Int8.self)
    case .u4: base.storeBytes(of: UInt8(Swift.min(Swift.max(value, 0), 15)), toByteOffset: i, as: UInt8.self)
    default: writeElementFromDouble(base, dtype, i, Double(value))
    }
}

@inlinable
public func saturatingInt64(_ d: Double) -> Int64 {
    if d != d { return 0 }
    if d >= 9.2e18 { return Int64.max }
    if d <= -9.2e18 { return Int64.min }
    return Int64(d)
}

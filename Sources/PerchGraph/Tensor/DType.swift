/// The element types a Perch tensor can hold.
///
/// Raw values are part of the `.perchm` file format: never renumber a case, only append.
public enum DType: UInt8, Sendable, Equatable, Hashable {
    case f32 = 1
    case f16 = 2
    case bf16 = 3
    case i8 = 4
    case u8 = 5
    case i32 = 6
    case i64 = 7
    case bool = 8
    /// Accepted so that ONNX models and test data using doubles load; computed in f64.
    case f64 = 9
    case i16 = 10
    case u16 = 11
    case u32 = 12
    case u64 = 13
    /// 8-bit floats (ONNX opset 19+); stored one byte per element.
    case f8e4m3fn = 14
    case f8e4m3fnuz = 15
    case f8e5m2 = 16
    case f8e5m2fnuz = 17
    /// 4-bit integers (ONNX opset 21+); stored unpacked, one byte per element.
    case i4 = 18
    case u4 = 19

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .i8, .u8, .bool, .f8e4m3fn, .f8e4m3fnuz, .f8e5m2, .f8e5m2fnuz, .i4, .u4: return 1
        case .f16, .bf16, .i16, .u16: return 2
        case .f32, .i32, .u32: return 4
        case .i64, .f64, .u64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .f8e4m3fn, .f8e4m3fnuz, .f8e5m2, .f8e5m2fnuz: return true
        default: return false
        }
    }

    /// The 8-bit float format of an f8 dtype.
    public var float8Format: Float8Format? {
        switch self {
        case .f8e4m3fn: return .e4m3fn
        case .f8e4m3fnuz: return .e4m3fnuz
        case .f8e5m2: return .e5m2
        case .f8e5m2fnuz: return .e5m2fnuz
        default: return nil
        }
    }

    /// The plain integer type that carries this dtype's bits in `.npy` files (NumPy has no
    /// bfloat16, float8 or int4): uint16 bit patterns, uint8 bit patterns, one int8/uint8 per value.
    public var npyCarrier: DType? {
        switch self {
        case .bf16: return .u16
        case .f8e4m3fn, .f8e4m3fnuz, .f8e5m2, .f8e5m2fnuz: return .u8
        case .i4: return .i8
        case .u4: return .u8
        default: return nil
        }
    }

    public var isInteger: Bool {
        switch self {
        case .i8, .u8, .i16, .u16, .i32, .u32, .i64, .u64, .i4, .u4: return true
        default: return false
        }
    }

    /// The short name used in messages and in NumPy-facing code (`float32`, `int64`, …).
    public var name: String {
        switch self {
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .i8: return "int8"
        case .u8: return "uint8"
        case .i32: return "int32"
        case .i64: return "int64"
        case .bool: return "bool"
        case .f64: return "float64"
        case .i16: return "int16"
        case .u16: return "uint16"
        case .u32: return "uint32"
        case .u64: return "uint64"
        case .f8e4m3fn: return "float8e4m3fn"
        case .f8e4m3fnuz: return "float8e4m3fnuz"
        case .f8e5m2: return "float8e5m2"
        case .f8e5m2fnuz: return "float8e5m2fnuz"
        case .i4: return "int4"
        case .u4: return "uint4"
        }
    }
}

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

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .i8, .u8, .bool: return 1
        case .f16, .bf16, .i16, .u16: return 2
        case .f32, .i32, .u32: return 4
        case .i64, .f64, .u64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }

    public var isInteger: Bool {
        switch self {
        case .i8, .u8, .i16, .u16, .i32, .u32, .i64, .u64: return true
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
        }
    }
}

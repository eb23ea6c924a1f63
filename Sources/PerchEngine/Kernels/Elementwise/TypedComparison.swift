import PerchGraph

/// Equal, Less, Greater, LessOrEqual and GreaterOrEqual on int32, int64, uint8 and float32 in
/// typed loops over the broadcast rows, split across threads like the fp32 arithmetic.
///
/// The generic path reads and writes every element through Int64 or Double accessors (~9 ns an
/// element): a one-hot written as `Equal(Expand(bytes), range(257))` — Magika's byte classifier,
/// 2048 × 257 comparisons — took 4.6 ms, more than half of its 1×5 convolution. Results are the
/// generic path's: the same comparison in the element's own type (every int32, uint8 and float
/// value is exact in Int64 or Double), NaN unequal and unordered.
enum TypedComparison {
    static func prepare(_ op: OpType, _ plan: BroadcastPlan, _ out: TensorDesc, _ dtype: DType) -> PreparedOp? {
        switch dtype {
        case .i32: return rows(op, plan, out, Int32.self)
        case .i64: return rows(op, plan, out, Int64.self)
        case .u8: return rows(op, plan, out, UInt8.self)
        case .f32: return rows(op, plan, out, Float.self)
        default: return nil
        }
    }

    static func rows<T: Comparable>(_ op: OpType, _ plan: BroadcastPlan, _ out: TensorDesc, _: T.Type) -> PreparedOp? {
        switch op {
        case .equal: return rows(plan, out, T.self, EqualTo.self)
        case .less: return rows(plan, out, T.self, LessThan.self)
        case .greater: return rows(plan, out, T.self, GreaterThan.self)
        case .lessOrEqual: return rows(plan, out, T.self, AtMost.self)
        case .greaterOrEqual: return rows(plan, out, T.self, AtLeast.self)
        default: return nil
        }
    }

    /// One comparison, a type so each loop is specialized for it (a closure cost a call per element).
    protocol Comparison {
        static func holds<T: Comparable>(_ a: T, _ b: T) -> Bool
    }
    enum EqualTo: Comparison { @inline(__always) static func holds<T: Comparable>(_ a: T, _ b: T) -> Bool { a == b } }
    enum LessThan: Comparison { @inline(__always) static func holds<T: Comparable>(_ a: T, _ b: T) -> Bool { a < b } }
    enum GreaterThan: Comparison { @inline(__always) static func holds<T: Comparable>(_ a: T, _ b: T) -> Bool { a > b } }
    enum AtMost: Comparison { @inline(__always) static func holds<T: Comparable>(_ a: T, _ b: T) -> Bool { a <= b } }
    enum AtLeast: Comparison { @inline(__always) static func holds<T: Comparable>(_ a: T, _ b: T) -> Bool { a >= b } }

    /// Comparison C on T, as a byte (the bool output).
    enum ByteResult<T: Comparable, C: Comparison>: BroadcastPairOp {
        @inline(__always) static func apply(_ a: T, _ b: T) -> UInt8 { C.holds(a, b) ? 1 : 0 }
    }

    static func rows<T: Comparable, C: Comparison>(_ plan: BroadcastPlan, _ out: TensorDesc, _: T.Type, _: C.Type) -> PreparedOp {
        PreparedOp(outputs: [out]) { args in broadcastPairRows(plan, args, ByteResult<T, C>.self) }
    }
}

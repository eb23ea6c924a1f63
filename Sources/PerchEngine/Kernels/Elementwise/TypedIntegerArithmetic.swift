import PerchGraph

/// Add, Sub and Mul on int32 and int64 in typed loops over the broadcast rows, split across
/// threads like the fp32 arithmetic.
///
/// The generic path reads and writes every element through Int64 accessors (~9 ns an element):
/// `quantize_dynamic`'s convolutions add their int32 bias to ConvInteger's sums with such an Add —
/// a 64-channel 32×80 map took 1.1 ms, twice its ConvInteger. Results are the generic path's:
/// two's-complement wrap-around in the element's own width (int32 sums wrap at 32 bits there too,
/// as the generic path truncates its Int64 result to the output type).
enum TypedIntegerArithmetic {
    static func prepare(_ op: OpType, _ plan: BroadcastPlan, _ out: TensorDesc, _ dtype: DType) -> PreparedOp? {
        guard plan.rowOffsets.count == 2 else { return nil }
        switch dtype {
        case .i32: return rows(op, plan, out, Int32.self)
        case .i64: return rows(op, plan, out, Int64.self)
        default: return nil
        }
    }

    static func rows<T: FixedWidthInteger>(_ op: OpType, _ plan: BroadcastPlan, _ out: TensorDesc, _: T.Type) -> PreparedOp? {
        switch op {
        case .add: return rows(plan, out, T.self, Plus.self)
        case .sub: return rows(plan, out, T.self, Minus.self)
        case .mul: return rows(plan, out, T.self, Times.self)
        default: return nil
        }
    }

    /// One operation, a type so each loop is specialized for it (a closure cost a call per element).
    protocol Operation {
        static func apply<T: FixedWidthInteger>(_ a: T, _ b: T) -> T
    }
    enum Plus: Operation { @inline(__always) static func apply<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { a &+ b } }
    enum Minus: Operation { @inline(__always) static func apply<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { a &- b } }
    enum Times: Operation { @inline(__always) static func apply<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { a &* b } }

    /// Operation F on T.
    enum Typed<T: FixedWidthInteger, F: Operation>: BroadcastPairOp {
        @inline(__always) static func apply(_ a: T, _ b: T) -> T { F.apply(a, b) }
    }

    static func rows<T: FixedWidthInteger, F: Operation>(_ plan: BroadcastPlan, _ out: TensorDesc, _: T.Type, _: F.Type) -> PreparedOp {
        PreparedOp(outputs: [out]) { args in broadcastPairRows(plan, args, Typed<T, F>.self) }
    }
}

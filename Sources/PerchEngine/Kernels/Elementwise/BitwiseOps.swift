import PerchGraph

/// BitwiseAnd, BitwiseOr, BitwiseXor (broadcasting), BitwiseNot and BitShift on integer tensors.
/// Values go through Int64 and are truncated back to the element width, so every integer type
/// is exact. BitShift (unsigned types) shifts by the second input; a shift of the element width
/// or more gives 0.
extension ElementwiseOperator {
    public static func prepareBitwise(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let op = ctx.node.op
        let a = try ctx.input(0)
        guard a.dtype.isInteger else { throw ctx.invalid("needs integer inputs, got " + a.dtype.name) }
        if op == .bitwiseNot {
            let n = a.count
            return PreparedOp(outputs: [a]) { args in
                let src = args.input(0), dst = args.output(0)
                for i in 0..<n { dst.setInt64(i, ~src.int64(i)) }
            }
        }
        let b = try ctx.input(1)
        guard a.dtype == b.dtype else { throw ctx.invalid("input types differ: " + a.dtype.name + " vs " + b.dtype.name) }
        guard let shape = BroadcastPlan.broadcastShape([a.shape, b.shape]) else {
            throw ctx.invalid("shapes " + shapeText(a.shape) + " and " + shapeText(b.shape) + " do not broadcast")
        }
        enum Kind { case and, or, xor, left, right }
        let kind: Kind
        switch op {
        case .bitwiseAnd: kind = .and
        case .bitwiseOr: kind = .or
        case .bitwiseXor: kind = .xor
        case .bitShift:
            let direction = ctx.attributes.string("direction", default: "")
            switch direction {
            case "LEFT": kind = .left
            case "RIGHT": kind = .right
            default: throw ctx.invalid("direction must be LEFT or RIGHT, got \"" + direction + "\"")
            }
        default: throw ctx.unsupported("not a bitwise operator")
        }
        let bits = UInt64(a.dtype.byteSize * 8)
        // Zero-extends a value read as Int64 (sign-extended for signed types) to the element width.
        let mask: UInt64 = bits >= 64 ? ~0 : (1 << bits) - 1
        let plan = BroadcastPlan(shapes: [a.shape, b.shape], to: shape)
        let outer = plan.outer, inner = plan.inner
        let offA = plan.rowOffsets[0], offB = plan.rowOffsets[1]
        let sA = plan.innerStrides[0], sB = plan.innerStrides[1]
        return PreparedOp(outputs: [TensorDesc(dtype: a.dtype, shape: shape)]) { args in
            let ta = args.input(0), tb = args.input(1), ty = args.output(0)
            for o in 0..<outer {
                let ra = offA[o], rb = offB[o], ry = o * inner
                for i in 0..<inner {
                    let x = ta.int64(ra + i * sA), y = tb.int64(rb + i * sB)
                    let r: Int64
                    switch kind {
                    case .and: r = x & y
                    case .or: r = x | y
                    case .xor: r = x ^ y
                    case .left, .right:
                        let ux = UInt64(bitPattern: x) & mask, s = UInt64(bitPattern: y) & mask
                        let v: UInt64 = s >= bits ? 0 : (kind == .left ? ux << s : ux >> s)
                        r = Int64(bitPattern: v & mask)
                    }
                    ty.setInt64(ry + i, r)
                }
            }
        }
    }
}

import PerchGraph

/// PRelu: `y = x < 0 ? slope * x : x`, with `slope` broadcast to `x` (unidirectionally; a
/// per-channel slope of shape `[C,1,1]` or `[C]` for opset < 7 style models is the common case).
public enum PReluOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        var slope = try ctx.input(1)
        guard x.dtype.isFloatingPoint, slope.dtype == x.dtype else {
            throw ctx.unsupported("input types " + x.dtype.name + " and " + slope.dtype.name)
        }
        // Old exporters give a per-channel slope [C] for an NCHW input; ONNX broadcasting would
        // align it with W, so treat [C] as [C,1,...] when it matches dim 1 and not the last dim.
        if slope.rank == 1 && x.rank > 2 && slope.shape[0] == x.shape[1] && slope.shape[0] != x.shape[x.rank - 1] {
            slope.shape = [slope.shape[0]] + [Int](repeating: 1, count: x.rank - 2)
        }
        guard let shape = BroadcastPlan.broadcastShape([x.shape, slope.shape]), shape == x.shape else {
            throw ctx.invalid("slope shape " + shapeText(slope.shape) + " does not broadcast to input " + shapeText(x.shape))
        }
        let plan = BroadcastPlan(shapes: [x.shape, slope.shape], to: x.shape)
        let outer = plan.outer, inner = plan.inner
        let offX = plan.rowOffsets[0], offS = plan.rowOffsets[1]
        let sX = plan.innerStrides[0], sS = plan.innerStrides[1]
        let isF32 = x.dtype == .f32
        return PreparedOp(outputs: [x]) { args in
            let xv = args.input(0), sv = args.input(1), yv = args.output(0)
            if isF32 {
                let xp = xv.pointer(as: Float.self), sp = sv.pointer(as: Float.self), yp = yv.pointer(as: Float.self)
                for o in 0..<outer {
                    let xb = offX[o], sb = offS[o], yb = o * inner
                    for i in 0..<inner {
                        let v = xp[xb + i * sX]
                        yp[yb + i] = v < 0 ? v * sp[sb + i * sS] : v
                    }
                }
            } else {
                for o in 0..<outer {
                    for i in 0..<inner {
                        let v = xv.double(offX[o] + i * sX)
                        yv.setDouble(o * inner + i, v < 0 ? v * sv.double(offS[o] + i * sS) : v)
                    }
                }
            }
        }
    }
}

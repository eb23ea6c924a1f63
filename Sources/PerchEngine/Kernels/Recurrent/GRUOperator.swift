import CPerchShims
import PerchGraph

/// ONNX GRU (float32): forward, reverse or bidirectional, `layout` 0 ([S, B, I]) or 1 ([B, S, I]),
/// optional bias, `sequence_lens`, `initial_h`, `clip`, `linear_before_reset` 0 and 1, `activations`
/// (f, g; default Sigmoid, Tanh; see `RecurrentActivation`). Gates are z, r, h as ONNX orders W, R
/// and B:
///
///     z = f(Xt·Wzᵀ + H·Rzᵀ + Wbz + Rbz)          r = f(Xt·Wrᵀ + H·Rrᵀ + Wbr + Rbr)
///     h = g(Xt·Whᵀ + (r ⊙ H)·Rhᵀ + Rbh + Wbh)     (linear_before_reset = 0)
///     h = g(Xt·Whᵀ + r ⊙ (H·Rhᵀ + Rbh) + Wbh)     (linear_before_reset ≠ 0)
///     H = (1 − z) ⊙ h + z ⊙ H
///
/// The input projection of every step is one GEMM before the recurrence. Per step, linear_before_reset
/// ≠ 0 needs one B-row GEMM (H·Rᵀ over all three gates); = 0 needs two: H·R_zrᵀ, then (r ⊙ H)·R_hᵀ.
/// Past a batch entry's `sequence_lens` its Y rows are 0 and Y_h keeps its last valid step.
enum GRUOperator {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let shape = try RecurrentShape(ctx, gates: 3, opName: "GRU")
        let acts = try RecurrentActivation.parse(ctx, defaults: [.sigmoid, .tanh], directions: shape.dirs)
        let linearBeforeReset = ctx.attributes.int("linear_before_reset", default: 0) != 0
        let (seq, batch, hidden, dirs) = (shape.seq, shape.batch, shape.hidden, shape.dirs)
        let outputs = [TensorDesc(dtype: .f32, shape: shape.yShape), TensorDesc(dtype: .f32, shape: shape.stateShape)]
        let g3 = 3 * hidden
        // Scratch (floats): the input projections of all steps, one step's gates, H, r ⊙ H, GEMM workspace.
        let projCount = seq * batch * g3, gateCount = batch * g3, stateCount = batch * hidden
        let scratchFloats = projCount + gateCount + 2 * stateCount + shape.workspaceCount + 16
        // Block 0: the gates H·Rᵀ gives directly (all three with linear_before_reset, else z and r);
        // block 1 (linear_before_reset = 0): R_h, multiplied by r ⊙ H.
        let packedW = RecurrentPackedW(ctx, shape)
        let packedR = RecurrentPackedR(ctx, shape, blocks: linearBeforeReset ? [(rowStart: 0, rows: g3)]
                                                                             : [(rowStart: 0, rows: 2 * hidden), (rowStart: 2 * hidden, rows: hidden)])
        let vector = VectorISA.best()
        let slots = shape.slots(threads: ctx.threads), slotFloats = MemoryPlanner.roundUp(scratchFloats, 16)
        return PreparedOp(outputs: outputs, scratchBytes: slotFloats * slots * 4) { args in
            let y = args.output(0).pointer(as: Float.self), yh = args.output(1).pointer(as: Float.self)
            y.update(repeating: 0, count: seq * dirs * batch * hidden)
            shape.forEachDirection(args, slots: slots, slotFloats: slotFloats) { d, s in
                let proj = s, gates = s + projCount, h = gates + gateCount, rh = h + stateCount, work = rh + stateCount
                let reverse = shape.isReverse(d)
                let f = acts[2 * d], g = acts[2 * d + 1]
                // Rb_h stays out of the projection with linear_before_reset: it is inside r ⊙ (…).
                shape.projectInputs(args, direction: d, recurrentBiasColumns: linearBeforeReset ? 2 * hidden : g3, packedW: packedW, into: proj, workspace: work)
                let rbh: UnsafeMutablePointer<Float>? = shape.hasBias && linearBeforeReset
                    ? args.input(3).pointer(as: Float.self) + d * 2 * g3 + g3 + 2 * hidden : nil
                shape.loadState(args, input: 5, present: shape.hasInitialH, direction: d, into: h)
                for step in 0..<seq {
                    // gates[b] = H[b]·R_dᵀ (z, r and, with linear_before_reset, h); rows past their length are unused.
                    packedR.multiply(args, shape, direction: d, block: 0, a: h, c: gates, ldc: g3, workspace: work)
                    if linearBeforeReset {
                        for b in 0..<batch {
                            let len = shape.length(args, b)
                            guard step < len else { continue }
                            let t = reverse ? len - 1 - step : step
                            let gp = gates + b * g3, pp = proj + shape.xRow(t, b) * g3
                            let hb = h + b * hidden, yRow = y + shape.yOffset(t, d, b)
                            // z and r (contiguous), then h's pre-activation Xh + Wbh + r ⊙ (H·Rhᵀ + Rbh) in place.
                            for j in 0..<(2 * hidden) { gp[j] += pp[j] }
                            shape.applyClip(gp, 2 * hidden)
                            f.apply(gp, 2 * hidden, vector)
                            let z = gp, r = gp + hidden, hp = gp + 2 * hidden
                            for j in 0..<hidden { hp[j] = pp[2 * hidden + j] + r[j] * (hp[j] + (rbh?[j] ?? 0)) }
                            shape.applyClip(hp, hidden)
                            g.apply(hp, hidden, vector)
                            for j in 0..<hidden {
                                hb[j] = (1 - z[j]) * hp[j] + z[j] * hb[j]
                                yRow[j] = hb[j]
                            }
                        }
                        continue
                    }
                    // z and r, r ⊙ H into rh (0 for rows past their length), then (r ⊙ H)·R_hᵀ.
                    for b in 0..<batch {
                        let len = shape.length(args, b)
                        let rhb = rh + b * hidden
                        guard step < len else {
                            rhb.update(repeating: 0, count: hidden)
                            continue
                        }
                        let t = reverse ? len - 1 - step : step
                        let gp = gates + b * g3, pp = proj + shape.xRow(t, b) * g3, hb = h + b * hidden
                        for j in 0..<(2 * hidden) { gp[j] += pp[j] }
                        shape.applyClip(gp, 2 * hidden)
                        f.apply(gp, 2 * hidden, vector)
                        for j in 0..<hidden { rhb[j] = gp[hidden + j] * hb[j] }
                    }
                    packedR.multiply(args, shape, direction: d, block: 1, a: rh, c: gates + 2 * hidden, ldc: g3, workspace: work)
                    for b in 0..<batch {
                        let len = shape.length(args, b)
                        guard step < len else { continue }
                        let t = reverse ? len - 1 - step : step
                        let gp = gates + b * g3, pp = proj + shape.xRow(t, b) * g3
                        let hb = h + b * hidden, yRow = y + shape.yOffset(t, d, b)
                        let z = gp, hp = gp + 2 * hidden
                        for j in 0..<hidden { hp[j] += pp[2 * hidden + j] }
                        shape.applyClip(hp, hidden)
                        g.apply(hp, hidden, vector)
                        for j in 0..<hidden {
                            hb[j] = (1 - z[j]) * hp[j] + z[j] * hb[j]
                            yRow[j] = hb[j]
                        }
                    }
                }
                shape.storeState(h, direction: d, into: yh)
            }
        }
    }
}

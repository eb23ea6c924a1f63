import CPerchShims
import PerchGraph

/// ONNX LSTM (float32; R may come as 8-bit codes, `RecurrentQuantizedR`): forward, reverse or bidirectional, `layout` 0 ([S, B, I]) or 1 ([B, S, I]),
/// optional bias, `sequence_lens`, initial states and peepholes, `clip`, `activations` (f, g, h;
/// default Sigmoid, Tanh, Tanh; see `RecurrentActivation`), and `input_forget` = 0.
///
/// The input projection of every time step is one GEMM (X·Wᵀ, S·B rows) before the recurrence; each
/// step then adds H·Rᵀ (a B-row GEMM) and runs the gate arithmetic. Gates are stored i, o, f, c as
/// ONNX orders W, R and B; peepholes i, o, f. Past a batch entry's `sequence_lens` its Y rows are 0
/// and its state stops changing (Y_h, Y_c keep the last valid step).
enum LSTMOperator {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let shape = try RecurrentShape(ctx, gates: 4, opName: "LSTM")
        let a = ctx.attributes
        guard a.int("input_forget", default: 0) == 0 else { throw ctx.unsupported("input_forget = 1") }
        let acts = try RecurrentActivation.parse(ctx, defaults: [.sigmoid, .tanh, .tanh], directions: shape.dirs)
        let (seq, batch, hidden, dirs) = (shape.seq, shape.batch, shape.hidden, shape.dirs)
        let hasC0 = ctx.has(6), hasP = ctx.has(7)
        if hasC0 { guard try ctx.input(6).shape == shape.stateShape else { throw ctx.invalid("initial_c must be " + shapeText(shape.stateShape)) } }
        if hasP { guard try ctx.input(7).shape == [dirs, 3 * hidden] else { throw ctx.invalid("P must be [num_directions, 3·hidden]") } }
        let outputs = [TensorDesc(dtype: .f32, shape: shape.yShape), TensorDesc(dtype: .f32, shape: shape.stateShape),
                       TensorDesc(dtype: .f32, shape: shape.stateShape)]
        let g4 = 4 * hidden
        // Scratch (floats): the input projections of all steps, one step's gates, H and C, GEMM workspace.
        let projCount = seq * batch * g4, gateCount = batch * g4, stateCount = batch * hidden
        let scratchFloats = projCount + gateCount + 2 * stateCount + shape.workspaceCount + 16
        let packedW = RecurrentPackedW(ctx, shape)
        let packedR = RecurrentPackedR(ctx, shape, blocks: [(rowStart: 0, rows: g4)])
        let quantizedR = RecurrentQuantizedR.present(ctx) ? try RecurrentQuantizedR(ctx, shape) : nil
        let variant = perch_sgemm_best()
        let vector = VectorISA.best()
        let slots = shape.slots(threads: ctx.threads), slotFloats = MemoryPlanner.roundUp(scratchFloats, 16)
        return PreparedOp(outputs: outputs, scratchBytes: slotFloats * slots * 4) { args in
            let y = args.output(0).pointer(as: Float.self), yh = args.output(1).pointer(as: Float.self)
            let yc = args.output(2).pointer(as: Float.self)
            y.update(repeating: 0, count: seq * dirs * batch * hidden)
            shape.forEachDirection(args, slots: slots, slotFloats: slotFloats) { d, s in
                let proj = s, gates = s + projCount, h = gates + gateCount, c = h + stateCount, work = c + stateCount
                let reverse = shape.isReverse(d)
                let f = acts[3 * d], g = acts[3 * d + 1], hAct = acts[3 * d + 2]
                shape.projectInputs(args, direction: d, recurrentBiasColumns: g4, packedW: packedW, into: proj, workspace: work)
                shape.loadState(args, input: 5, present: shape.hasInitialH, direction: d, into: h)
                shape.loadState(args, input: 6, present: hasC0, direction: d, into: c)
                let peep: UnsafeMutablePointer<Float>? = hasP ? args.input(7).pointer(as: Float.self) + d * 3 * hidden : nil
                for step in 0..<seq {
                    // gates = H·R_dᵀ (every batch row; rows past their length are not used).
                    if let quantizedR {
                        quantizedR.multiply(shape, direction: d, a: h, c: gates, ldc: g4, variant: variant)
                    } else {
                        packedR.multiply(args, shape, direction: d, block: 0, a: h, c: gates, ldc: g4, workspace: work)
                    }
                    for b in 0..<batch {
                        let len = shape.length(args, b)
                        guard step < len else { continue }
                        let t = reverse ? len - 1 - step : step
                        let gp = gates + b * g4, pp = proj + shape.xRow(t, b) * g4
                        let hb = h + b * hidden, cb = c + b * hidden
                        let yRow = y + shape.yOffset(t, d, b)
                        // Gate pre-activations, then the activations on whole segments.
                        for j in 0..<g4 { gp[j] += pp[j] }
                        let gi = gp, go = gp + hidden, gf = gp + 2 * hidden, gc = gp + 3 * hidden
                        if let p = peep {
                            for j in 0..<hidden {
                                gi[j] += p[j] * cb[j]
                                gf[j] += p[2 * hidden + j] * cb[j]
                            }
                            // o is clipped once its peephole term on the new cell state is in (below).
                            shape.applyClip(gi, hidden); shape.applyClip(gf, hidden)
                            f.apply(gi, hidden, vector); f.apply(gf, hidden, vector)
                        } else {
                            // i, o, f are contiguous.
                            shape.applyClip(gi, 3 * hidden)
                            f.apply(gi, 3 * hidden, vector)
                        }
                        shape.applyClip(gc, hidden)
                        g.apply(gc, hidden, vector)
                        for j in 0..<hidden { cb[j] = gf[j] * cb[j] + gi[j] * gc[j] }
                        if let p = peep {
                            for j in 0..<hidden { go[j] += p[hidden + j] * cb[j] }
                            shape.applyClip(go, hidden)
                            f.apply(go, hidden, vector)
                        }
                        hAct.apply(cb, hidden, hb, vector)
                        for j in 0..<hidden {
                            hb[j] *= go[j]
                            yRow[j] = hb[j]
                        }
                    }
                }
                shape.storeState(h, direction: d, into: yh)
                shape.storeState(c, direction: d, into: yc)
            }
        }
    }
}

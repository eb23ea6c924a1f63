import CPerchShims
import PerchGraph

/// ONNX RNN (float32), the simple recurrence H = f(Xt·Wᵀ + H·Rᵀ + Wb + Rb): forward, reverse or
/// bidirectional, `layout` 0 ([S, B, I]) or 1 ([B, S, I]), optional bias, `sequence_lens`,
/// `initial_h`, `clip`, `activations` (f; default Tanh; see `RecurrentActivation`).
///
/// The input projection of every step is one GEMM before the recurrence; each step then adds H·Rᵀ
/// (a B-row GEMM, R packed once when constant). Past a batch entry's `sequence_lens` its Y rows are 0
/// and Y_h keeps its last valid step.
enum RNNOperator {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let shape = try RecurrentShape(ctx, gates: 1, opName: "RNN")
        let acts = try RecurrentActivation.parse(ctx, defaults: [.tanh], directions: shape.dirs)
        let (seq, batch, hidden, dirs) = (shape.seq, shape.batch, shape.hidden, shape.dirs)
        let outputs = [TensorDesc(dtype: .f32, shape: shape.yShape), TensorDesc(dtype: .f32, shape: shape.stateShape)]
        // Scratch (floats): the input projections of all steps, one step's H·Rᵀ, H, GEMM workspace.
        let projCount = seq * batch * hidden, stateCount = batch * hidden
        let scratchFloats = projCount + 2 * stateCount + shape.workspaceCount + 16
        let packedW = RecurrentPackedW(ctx, shape)
        let packedR = RecurrentPackedR(ctx, shape, blocks: [(rowStart: 0, rows: hidden)])
        let vector = VectorISA.best()
        let slots = shape.slots(threads: ctx.threads), slotFloats = MemoryPlanner.roundUp(scratchFloats, 16)
        return PreparedOp(outputs: outputs, scratchBytes: slotFloats * slots * 4) { args in
            let y = args.output(0).pointer(as: Float.self), yh = args.output(1).pointer(as: Float.self)
            y.update(repeating: 0, count: seq * dirs * batch * hidden)
            shape.forEachDirection(args, slots: slots, slotFloats: slotFloats) { d, s in
                let proj = s, gates = s + projCount, h = gates + stateCount, work = h + stateCount
                let reverse = shape.isReverse(d), f = acts[d]
                shape.projectInputs(args, direction: d, recurrentBiasColumns: hidden, packedW: packedW, into: proj, workspace: work)
                shape.loadState(args, input: 5, present: shape.hasInitialH, direction: d, into: h)
                for step in 0..<seq {
                    packedR.multiply(args, shape, direction: d, block: 0, a: h, c: gates, ldc: hidden, workspace: work)
                    for b in 0..<batch {
                        let len = shape.length(args, b)
                        guard step < len else { continue }
                        let t = reverse ? len - 1 - step : step
                        let gp = gates + b * hidden, pp = proj + shape.xRow(t, b) * hidden
                        let hb = h + b * hidden, yRow = y + shape.yOffset(t, d, b)
                        for j in 0..<hidden { gp[j] += pp[j] }
                        shape.applyClip(gp, hidden)
                        f.apply(gp, hidden, hb, vector)
                        yRow.update(from: hb, count: hidden)
                    }
                }
                shape.storeState(h, direction: d, into: yh)
            }
        }
    }
}

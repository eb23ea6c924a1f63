import CPerchShims
import PerchGraph

/// ONNX LSTM (float32): forward, reverse or bidirectional, `layout` 0 ([S, B, I]) or 1 ([B, S, I]),
/// optional bias, `sequence_lens`, initial states and peepholes, `clip`; the default activations
/// (Sigmoid, Tanh, Tanh) only, and `input_forget` = 0.
///
/// The input projection of every time step is one GEMM (X·Wᵀ, S·B rows) before the recurrence; each
/// step then adds H·Rᵀ (a B-row GEMM) and runs the gate arithmetic. Gates are stored i, o, f, c as
/// ONNX orders W, R and B; peepholes i, o, f. Past a batch entry's `sequence_lens` its Y rows are 0
/// and its state stops changing (Y_h, Y_c keep the last valid step).
enum LSTMOperator {
    static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0), w = try ctx.input(1), r = try ctx.input(2)
        guard x.dtype == .f32, w.dtype == .f32, r.dtype == .f32 else { throw ctx.unsupported("LSTM on " + x.dtype.name + " (float32 only)") }
        let a = ctx.attributes
        if let acts = a["activations"] {
            guard case .strings(let names) = acts, names.allSatisfy({ ["Sigmoid", "Tanh"].contains($0) }),
                  names.enumerated().allSatisfy({ $0.element == ($0.offset % 3 == 0 ? "Sigmoid" : "Tanh") }) else {
                throw ctx.unsupported("activations other than the default (Sigmoid, Tanh, Tanh)")
            }
        }
        guard a.int("input_forget", default: 0) == 0 else { throw ctx.unsupported("input_forget = 1") }
        let direction = a.string("direction", default: "forward")
        guard ["forward", "reverse", "bidirectional"].contains(direction) else { throw ctx.invalid("direction \"" + direction + "\"") }
        let dirs = direction == "bidirectional" ? 2 : 1
        let layout = a.int("layout", default: 0)
        guard x.shape.count == 3, layout == 0 || layout == 1 else { throw ctx.invalid("X must be 3-D, layout 0 or 1") }
        let seq = layout == 0 ? x.shape[0] : x.shape[1], batch = layout == 0 ? x.shape[1] : x.shape[0], inSize = x.shape[2]
        let hidden = a.int("hidden_size", default: r.shape.count == 3 ? r.shape[2] : 0)
        guard hidden > 0, w.shape == [dirs, 4 * hidden, inSize], r.shape == [dirs, 4 * hidden, hidden] else {
            throw ctx.invalid("W " + shapeText(w.shape) + " / R " + shapeText(r.shape) + " do not match hidden_size " + String(hidden))
        }
        let hasB = ctx.has(3), hasLens = ctx.has(4), hasH0 = ctx.has(5), hasC0 = ctx.has(6), hasP = ctx.has(7)
        if hasB { guard try ctx.input(3).shape == [dirs, 8 * hidden] else { throw ctx.invalid("B must be [num_directions, 8·hidden]") } }
        if hasP { guard try ctx.input(7).shape == [dirs, 3 * hidden] else { throw ctx.invalid("P must be [num_directions, 3·hidden]") } }
        let clip: Float? = a.has("clip") ? a.float("clip", default: 0) : nil
        let yShape = layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]
        let stateShape = layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden]
        let outputs = [TensorDesc(dtype: .f32, shape: yShape), TensorDesc(dtype: .f32, shape: stateShape),
                       TensorDesc(dtype: .f32, shape: stateShape)]
        let g4 = 4 * hidden
        // Scratch (floats): the input projections of all steps, one step's gates, H and C, GEMM workspace.
        let projCount = seq * batch * g4, gateCount = batch * g4, stateCount = batch * hidden
        let ws = Swift.max(sgemmWorkspaceCount(m: seq * batch, n: g4, k: inSize), sgemmWorkspaceCount(m: batch, n: g4, k: hidden))
        let scratchFloats = projCount + gateCount + 2 * stateCount + ws + 16
        // R packed once per direction when it is a constant (each step's B-row GEMM then packs
        // only H): repacking 4H×H floats every step made a 64-step LSTM 13× slower than ORT's.
        var packedR = [[Float]]()
        if let rv = ctx.value(2), rv.dtype == .f32 {
            rv.withUnsafeBufferPointer(of: Float.self) { src in
                for d in 0..<dirs {
                    var packed = [Float](repeating: 0, count: sgemmPackedBCount(k: hidden, n: g4))
                    packed.withUnsafeMutableBufferPointer { dst in
                        sgemmPackB(k: hidden, n: g4, b: src.baseAddress! + d * g4 * hidden, bRowStride: 1, bColStride: hidden, into: dst.baseAddress!)
                    }
                    packedR.append(packed)
                }
            }
        }
        /// Index of (direction, batch, unit) in a state tensor of this layout.
        let vector = VectorISA.best()
        let stateIndex = { (d: Int, b: Int, j: Int) -> Int in layout == 0 ? (d * batch + b) * hidden + j : (b * dirs + d) * hidden + j }
        return PreparedOp(outputs: outputs, scratchBytes: scratchFloats * 4) { args in
            let xp = args.input(0).pointer(as: Float.self), wp = args.input(1).pointer(as: Float.self)
            let rp = args.input(2).pointer(as: Float.self)
            let y = args.output(0).pointer(as: Float.self), yh = args.output(1).pointer(as: Float.self)
            let yc = args.output(2).pointer(as: Float.self)
            let s = args.scratch!.assumingMemoryBound(to: Float.self)
            let proj = s, gates = s + projCount, h = gates + gateCount, c = h + stateCount, work = c + stateCount
            y.update(repeating: 0, count: seq * dirs * batch * hidden)
            // Row (t, b) of X and of the projections: X is [S, B, I] or [B, S, I].
            let xRow = { (t: Int, b: Int) -> Int in layout == 0 ? t * batch + b : b * seq + t }
            for d in 0..<dirs {
                let reverse = direction == "reverse" || d == 1
                // proj[(t, b)] = X[t, b]·W_dᵀ + Wb + Rb, rows in X's own order.
                sgemm(m: seq * batch, n: g4, k: inSize, a: xp, aRowStride: inSize, aColStride: 1,
                      b: wp + d * g4 * inSize, bRowStride: 1, bColStride: inSize, c: proj, ldc: g4, accumulate: false, workspace: work)
                if hasB {
                    let bp = args.input(3).pointer(as: Float.self) + d * 2 * g4
                    for row in 0..<(seq * batch) {
                        let p = proj + row * g4
                        for j in 0..<g4 { p[j] += bp[j] + bp[g4 + j] }
                    }
                }
                for b in 0..<batch {
                    for j in 0..<hidden {
                        h[b * hidden + j] = hasH0 ? args.input(5).pointer(as: Float.self)[stateIndex(d, b, j)] : 0
                        c[b * hidden + j] = hasC0 ? args.input(6).pointer(as: Float.self)[stateIndex(d, b, j)] : 0
                    }
                }
                let peep: UnsafeMutablePointer<Float>? = hasP ? args.input(7).pointer(as: Float.self) + d * 3 * hidden : nil
                for step in 0..<seq {
                    // gates = H·R_dᵀ (every batch row; rows past their length are not used).
                    if packedR.isEmpty {
                        sgemm(m: batch, n: g4, k: hidden, a: h, aRowStride: hidden, aColStride: 1,
                              b: rp + d * g4 * hidden, bRowStride: 1, bColStride: hidden, c: gates, ldc: g4, accumulate: false, workspace: work)
                    } else {
                        packedR[d].withUnsafeBufferPointer { pr in
                            sgemm(m: batch, n: g4, k: hidden, a: h, aRowStride: hidden, aColStride: 1,
                                  b: rp + d * g4 * hidden, bRowStride: 1, bColStride: hidden, c: gates, ldc: g4, accumulate: false, workspace: work,
                                  packed: SGEMMPrepacked(b: pr.baseAddress!, n: g4))
                        }
                    }
                    for b in 0..<batch {
                        // A length outside 0...S (invalid input) is clamped rather than read past X.
                        let len = hasLens ? Swift.min(seq, Swift.max(0, Int(args.input(4).int64(b)))) : seq
                        guard step < len else { continue }
                        let t = reverse ? len - 1 - step : step
                        let gp = gates + b * g4, pp = proj + xRow(t, b) * g4
                        let hb = h + b * hidden, cb = c + b * hidden
                        let yRow = layout == 0 ? y + ((t * dirs + d) * batch + b) * hidden : y + ((b * seq + t) * dirs + d) * hidden
                        // Gate pre-activations, then the curves on whole segments (CPerchSigmoidTanh.h).
                        for j in 0..<g4 { gp[j] += pp[j] }
                        let gi = gp, go = gp + hidden, gf = gp + 2 * hidden, gc = gp + 3 * hidden
                        if let p = peep {
                            for j in 0..<hidden {
                                gi[j] += p[j] * cb[j]
                                gf[j] += p[2 * hidden + j] * cb[j]
                            }
                        }
                        if let k = clip {
                            // With peepholes, o is clipped once its peephole term is in (below).
                            for j in 0..<g4 where peep == nil || j < hidden || j >= 2 * hidden { gp[j] = Swift.min(Swift.max(gp[j], -k), k) }
                        }
                        // i, o, f are contiguous; o waits for its peephole on the new cell state.
                        if peep == nil {
                            vector.sigmoidTanh(gi, 3 * hidden, .sigmoid, gi)
                        } else {
                            vector.sigmoidTanh(gi, hidden, .sigmoid, gi)
                            vector.sigmoidTanh(gf, hidden, .sigmoid, gf)
                        }
                        vector.sigmoidTanh(gc, hidden, .tanh, gc)
                        for j in 0..<hidden { cb[j] = gf[j] * cb[j] + gi[j] * gc[j] }
                        if let p = peep {
                            for j in 0..<hidden { go[j] += p[hidden + j] * cb[j] }
                            if let k = clip {
                                for j in 0..<hidden { go[j] = Swift.min(Swift.max(go[j], -k), k) }
                            }
                            vector.sigmoidTanh(go, hidden, .sigmoid, go)
                        }
                        vector.sigmoidTanh(cb, hidden, .tanh, hb)
                        for j in 0..<hidden {
                            hb[j] *= go[j]
                            yRow[j] = hb[j]
                        }
                    }
                }
                for b in 0..<batch {
                    for j in 0..<hidden {
                        yh[stateIndex(d, b, j)] = h[b * hidden + j]
                        yc[stateIndex(d, b, j)] = c[b * hidden + j]
                    }
                }
            }
        }
    }
}

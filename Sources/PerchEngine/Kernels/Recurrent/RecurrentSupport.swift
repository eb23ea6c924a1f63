import CPerchShims
import PerchGraph

/// One activation of ONNX's recurrent operators (the `activations` attribute of LSTM, GRU and RNN)
/// with its alpha and beta. Parsed once at prepare; `apply` neither allocates nor throws.
enum RecurrentActivation: Equatable {
    case sigmoid, tanh, relu, softsign, softplus
    case leakyRelu(Float), thresholdedRelu(Float), elu(Float)
    case hardSigmoid(Float, Float), affine(Float, Float), scaledTanh(Float, Float)

    /// dst[0..<n] = f(src[0..<n]) (dst may be src): Sigmoid and Tanh through the vectorized
    /// kernels of CPerchSigmoidTanh.h, the others element by element.
    @inline(__always)
    func apply(_ src: UnsafePointer<Float>, _ n: Int, _ dst: UnsafeMutablePointer<Float>, _ vector: VectorISA) {
        switch self {
        case .sigmoid: vector.sigmoidTanh(src, n, .sigmoid, dst)
        case .tanh: vector.sigmoidTanh(src, n, .tanh, dst)
        default: for j in 0..<n { dst[j] = apply(src[j]) }
        }
    }

    /// x[0..<n] = f(x[0..<n]).
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ vector: VectorISA) { apply(x, n, x, vector) }

    /// One element, with the same bits as the segment form.
    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .sigmoid: return perch_sigmoid_f32_one(x)
        case .tanh: return perch_tanh_f32_one(x)
        case .relu: return x > 0 ? x : 0
        case .softsign: return SoftsignMap().apply(x)
        case .softplus: return SoftplusMap().apply(x)
        case .leakyRelu(let a): return x >= 0 ? x : a * x
        case .thresholdedRelu(let a): return x >= a ? x : 0
        case .elu(let a): return x >= 0 ? x : a * (perch_expf(x) - 1)
        case .hardSigmoid(let a, let b): return HardSigmoidMap(alpha: a, beta: b).apply(x)
        case .affine(let a, let b): return a * x + b
        case .scaledTanh(let a, let b): return a * perch_tanhf(b * x)
        }
    }

    /// The activations of every direction, `perDirection.count` for each, direction-major:
    /// direction d's k-th function is element `d · perDirection.count + k`.
    ///
    /// Names match case-insensitively. `activation_alpha` / `activation_beta` are consumed in list
    /// order, one value by each function that takes one (as ONNX Runtime does); missing values take
    /// the defaults of the ONNX operator of that name (LeakyRelu 0.01, HardSigmoid 0.2 / 0.5, Elu 1,
    /// ThresholdedRelu 1; Affine 1 / 0 and ScaledTanh 1 / 1, which have no operator). A
    /// bidirectional op given one direction's list uses it for both.
    static func parse(_ ctx: OpContext, defaults perDirection: [RecurrentActivation], directions: Int) throws(EngineError) -> [RecurrentActivation] {
        let a = ctx.attributes
        guard a.has("activations") else {
            var all = [RecurrentActivation]()
            for _ in 0..<directions { all += perDirection }
            return all
        }
        guard case .strings(let names) = a["activations"]! else { throw ctx.invalid("activations must be a list of strings") }
        let n = perDirection.count
        guard names.count == n * directions || names.count == n else {
            throw ctx.invalid("activations has " + String(names.count) + " names, expected " + String(n * directions))
        }
        let alphas = a.floats("activation_alpha") ?? [], betas = a.floats("activation_beta") ?? []
        var ai = 0, bi = 0
        func nextAlpha(_ d: Float) -> Float {
            defer { ai += 1 }
            return ai < alphas.count ? alphas[ai] : d
        }
        func nextBeta(_ d: Float) -> Float {
            defer { bi += 1 }
            return bi < betas.count ? betas[bi] : d
        }
        var result = [RecurrentActivation]()
        for name in names {
            switch asciiLowercased(name) {
            case "sigmoid": result.append(.sigmoid)
            case "tanh": result.append(.tanh)
            case "relu": result.append(.relu)
            case "softsign": result.append(.softsign)
            case "softplus": result.append(.softplus)
            case "leakyrelu": result.append(.leakyRelu(nextAlpha(0.01)))
            case "thresholdedrelu": result.append(.thresholdedRelu(nextAlpha(1)))
            case "elu": result.append(.elu(nextAlpha(1)))
            case "hardsigmoid":
                let al = nextAlpha(0.2)
                result.append(.hardSigmoid(al, nextBeta(0.5)))
            case "affine":
                let al = nextAlpha(1)
                result.append(.affine(al, nextBeta(0)))
            case "scaledtanh":
                let al = nextAlpha(1)
                result.append(.scaledTanh(al, nextBeta(1)))
            default:
                throw ctx.unsupported("activation \"" + name + "\" (Perch has Sigmoid, Tanh, Relu, LeakyRelu, ThresholdedRelu, Elu, "
                                      + "HardSigmoid, Affine, ScaledTanh, Softsign, Softplus)")
            }
        }
        if result.count == n && directions == 2 { result += result }
        return result
    }

    private static func asciiLowercased(_ s: String) -> String {
        var bytes = [UInt8]()
        for c in s.utf8 { bytes.append(c >= 65 && c <= 90 ? c + 32 : c) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What ONNX's recurrent operators (LSTM, GRU, RNN) share: the checked shapes and attributes
/// (`direction`, `layout`, `hidden_size`, `clip`), where a (time, batch) row lives in X, Y and the
/// state tensors for `layout` 0 ([S, B, ·]) or 1 ([B, S, ·]), `sequence_lens`, the initial-state
/// load and final-state store, the input projection of all steps as one GEMM, and R packed once
/// per direction when it is a constant.
///
/// Inputs are X, W, R, B, sequence_lens, initial_h (, LSTM: initial_c, P); W is
/// [dirs, gates·hidden, input], R [dirs, gates·hidden, hidden], B [dirs, 2·gates·hidden] (Wb then Rb).
struct RecurrentShape {
    let dirs: Int, seq: Int, batch: Int, inSize: Int, hidden: Int, layout: Int
    /// Gates per direction (LSTM 4, GRU 3, RNN 1); W and R have `gates · hidden` rows per direction.
    let gates: Int
    /// `direction` = "reverse": the only direction runs backwards. In a bidirectional op direction 1 does.
    let reverseOnly: Bool
    let clip: Float?
    let hasBias: Bool, hasLens: Bool, hasInitialH: Bool

    init(_ ctx: OpContext, gates: Int, opName: String) throws(EngineError) {
        let x = try ctx.input(0), w = try ctx.input(1), r = try ctx.input(2)
        // An LSTM's R may be 8-bit codes with their scale and zero point beside (RecurrentQuantizedR).
        guard x.dtype == .f32, w.dtype == .f32, r.dtype == .f32 || (gates == 4 && RecurrentQuantizedR.present(ctx)) else {
            throw ctx.unsupported(opName + " on " + x.dtype.name + " (float32 only)")
        }
        let a = ctx.attributes
        let direction = a.string("direction", default: "forward")
        guard direction == "forward" || direction == "reverse" || direction == "bidirectional" else { throw ctx.invalid("direction \"" + direction + "\"") }
        dirs = direction == "bidirectional" ? 2 : 1
        reverseOnly = direction == "reverse"
        layout = a.int("layout", default: 0)
        guard x.shape.count == 3, layout == 0 || layout == 1 else { throw ctx.invalid("X must be 3-D, layout 0 or 1") }
        seq = layout == 0 ? x.shape[0] : x.shape[1]
        batch = layout == 0 ? x.shape[1] : x.shape[0]
        inSize = x.shape[2]
        self.gates = gates
        hidden = a.int("hidden_size", default: r.shape.count == 3 ? r.shape[2] : 0)
        guard hidden > 0, w.shape == [dirs, gates * hidden, inSize], r.shape == [dirs, gates * hidden, hidden] else {
            throw ctx.invalid("W " + shapeText(w.shape) + " / R " + shapeText(r.shape) + " do not match hidden_size " + String(hidden))
        }
        clip = a.has("clip") ? a.float("clip", default: 0) : nil
        hasBias = ctx.has(3)
        hasLens = ctx.has(4)
        hasInitialH = ctx.has(5)
        if hasBias {
            guard try ctx.input(3).shape == [dirs, 2 * gates * hidden] else {
                throw ctx.invalid("B must be [num_directions, " + String(2 * gates) + "·hidden_size]")
            }
        }
        if hasLens {
            guard try ctx.input(4).shape == [batch] else { throw ctx.invalid("sequence_lens must be [batch_size]") }
        }
        if hasInitialH {
            guard try ctx.input(5).shape == stateShape else { throw ctx.invalid("initial_h must be " + shapeText(stateShape)) }
        }
    }

    /// Scratch slots a kernel asks for: one per direction when a bidirectional op has two threads
    /// (the directions are independent recurrences, each a chain of small GEMMs that one thread
    /// cannot split usefully), else one.
    func slots(threads: Int) -> Int { dirs == 2 && threads > 1 ? 2 : 1 }

    /// Runs `body(direction, scratch)` for every direction: with two slots on two threads side by
    /// side, each in its own `slotFloats` of scratch, else one after another in the first slot.
    func forEachDirection(_ args: KernelArgs, slots: Int, slotFloats: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let base = args.scratch!.assumingMemoryBound(to: Float.self)
        if slots == 2 && args.threads > 1 {
            args.parallelFor(2) { d in body(d, base + d * slotFloats) }
        } else {
            for d in 0..<dirs { body(d, base) }
        }
    }

    var yShape: [Int] { layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden] }
    var stateShape: [Int] { layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden] }
    /// Columns of W, R and B for one direction.
    var gateColumns: Int { gates * hidden }

    @inline(__always) func isReverse(_ d: Int) -> Bool { reverseOnly || d == 1 }
    /// Row (t, b) of X and of the input projections, in X's own order.
    @inline(__always) func xRow(_ t: Int, _ b: Int) -> Int { layout == 0 ? t * batch + b : b * seq + t }
    /// Offset of Y's row (t, d, b).
    @inline(__always) func yOffset(_ t: Int, _ d: Int, _ b: Int) -> Int {
        layout == 0 ? ((t * dirs + d) * batch + b) * hidden : ((b * seq + t) * dirs + d) * hidden
    }
    /// Offset of the (d, b) row of a state tensor (initial_h, Y_h, …).
    @inline(__always) func stateOffset(_ d: Int, _ b: Int) -> Int { layout == 0 ? (d * batch + b) * hidden : (b * dirs + d) * hidden }
    /// x[0..<n] clamped to ±clip when the op has `clip`.
    @inline(__always) func applyClip(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard let k = clip else { return }
        for j in 0..<n { x[j] = Swift.min(Swift.max(x[j], -k), k) }
    }

    /// Steps batch entry `b` runs: its `sequence_lens` entry, an entry outside 0...S (invalid
    /// input) clamped rather than read past X.
    @inline(__always) func length(_ args: KernelArgs, _ b: Int) -> Int {
        hasLens ? Swift.min(seq, Swift.max(0, Int(args.input(4).int64(b)))) : seq
    }

    /// Direction d's initial state ([batch, hidden], from state input `input` or zeros).
    func loadState(_ args: KernelArgs, input: Int, present: Bool, direction d: Int, into dst: UnsafeMutablePointer<Float>) {
        guard present else {
            dst.update(repeating: 0, count: batch * hidden)
            return
        }
        let src = args.input(input).pointer(as: Float.self)
        for b in 0..<batch { (dst + b * hidden).update(from: src + stateOffset(d, b), count: hidden) }
    }

    /// Writes direction d's state ([batch, hidden]) into a state output (Y_h, Y_c).
    func storeState(_ src: UnsafeMutablePointer<Float>, direction d: Int, into dst: UnsafeMutablePointer<Float>) {
        for b in 0..<batch { (dst + stateOffset(d, b)).update(from: src + b * hidden, count: hidden) }
    }

    /// Floats of GEMM workspace: the input projection (S·B rows) and the per-step B-row products.
    var workspaceCount: Int {
        Swift.max(sgemmWorkspaceCount(m: seq * batch, n: gateColumns, k: inSize), sgemmWorkspaceCount(m: batch, n: gateColumns, k: hidden))
    }

    /// proj[row] = X[row]·W_dᵀ + Wb_d + Rb_d (Rb only in the first `recurrentBiasColumns` columns:
    /// GRU with linear_before_reset keeps Rb_h inside the reset product) for all S·B rows of X.
    /// The bias is written into every row first and the GEMM accumulates onto it (a separate add
    /// pass over the projections cost as much as the GEMM itself).
    func projectInputs(_ args: KernelArgs, direction d: Int, recurrentBiasColumns: Int, packedW: RecurrentPackedW,
                       into proj: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>) {
        let n = gateColumns, rows = seq * batch
        if hasBias && rows > 0 {
            let bp = args.input(3).pointer(as: Float.self) + d * 2 * n
            for j in 0..<recurrentBiasColumns { proj[j] = bp[j] + bp[n + j] }
            for j in recurrentBiasColumns..<n { proj[j] = bp[j] }
            for row in 1..<rows { (proj + row * n).update(from: proj, count: n) }
        }
        let x = args.input(0).pointer(as: Float.self), w = args.input(1).pointer(as: Float.self) + d * n * inSize
        if packedW.packed.isEmpty {
            sgemm(m: rows, n: n, k: inSize, a: x, aRowStride: inSize, aColStride: 1, b: w, bRowStride: 1, bColStride: inSize,
                  c: proj, ldc: n, accumulate: hasBias, workspace: workspace)
            return
        }
        packedW.packed[d].withUnsafeBufferPointer { pw in
            sgemm(m: rows, n: n, k: inSize, a: x, aRowStride: inSize, aColStride: 1, b: w, bRowStride: 1, bColStride: inSize,
                  c: proj, ldc: n, accumulate: hasBias, workspace: workspace, packed: SGEMMPrepacked(b: pw.baseAddress!, n: n))
        }
    }
}

/// W (input 1) of each direction packed once at prepare as the B operand of X·Wᵀ when W is a
/// constant. W is stored transposed for that product, and packing it on every run walked each of
/// its 4H rows with a scalar strided copy: a text recognizer's 2×2048×512 W took 10% of the
/// model's time. Empty when W is known only at run time.
struct RecurrentPackedW {
    /// Per direction.
    var packed = [[Float]]()

    init(_ ctx: OpContext, _ shape: RecurrentShape) {
        guard let wv = ctx.value(1), wv.dtype == .f32 else { return }
        let n = shape.gateColumns, k = shape.inSize
        guard n > 0, k > 0 else { return }
        var all = [[Float]]()
        wv.withUnsafeBufferPointer(of: Float.self) { src in
            for d in 0..<shape.dirs {
                var p = [Float](repeating: 0, count: sgemmPackedBCount(k: k, n: n))
                p.withUnsafeMutableBufferPointer { dst in
                    sgemmPackB(k: k, n: n, b: src.baseAddress! + d * n * k, bRowStride: 1, bColStride: k, into: dst.baseAddress!)
                }
                all.append(p)
            }
        }
        packed = all
    }
}

/// R (input 2) of each direction, rows `rowStart ..< rowStart + rows` (a block of gates), packed
/// once at prepare as the B operand of H·Rᵀ when R is a constant — repacking 4H×H floats every
/// step made a 64-step LSTM 13× slower than ONNX Runtime's. Empty when R is known only at run time.
struct RecurrentPackedR {
    /// Per direction, then per block: `packed[d * blocks + i]`.
    var packed = [[Float]]()
    let blocks: [(rowStart: Int, rows: Int)]

    init(_ ctx: OpContext, _ shape: RecurrentShape, blocks: [(rowStart: Int, rows: Int)]) {
        self.blocks = blocks
        guard let rv = ctx.value(2), rv.dtype == .f32 else { return }
        let h = shape.hidden, perDir = shape.gateColumns * h
        var all = [[Float]]()
        rv.withUnsafeBufferPointer(of: Float.self) { src in
            for d in 0..<shape.dirs {
                for block in blocks {
                    var p = [Float](repeating: 0, count: sgemmPackedBCount(k: h, n: block.rows))
                    p.withUnsafeMutableBufferPointer { dst in
                        sgemmPackB(k: h, n: block.rows, b: src.baseAddress! + d * perDir + block.rowStart * h,
                                   bRowStride: 1, bColStride: h, into: dst.baseAddress!)
                    }
                    all.append(p)
                }
            }
        }
        packed = all
    }

    /// c[b, 0..<rows] = a[b]·R_d[block]ᵀ for the `batch` rows of `a` ([batch, hidden]); c's row stride `ldc`.
    @inline(__always)
    func multiply(_ args: KernelArgs, _ shape: RecurrentShape, direction d: Int, block i: Int, a: UnsafePointer<Float>,
                  c: UnsafeMutablePointer<Float>, ldc: Int, workspace: UnsafeMutablePointer<Float>) {
        let h = shape.hidden, block = blocks[i]
        let r = args.input(2).pointer(as: Float.self) + d * shape.gateColumns * h + block.rowStart * h
        if packed.isEmpty {
            sgemm(m: shape.batch, n: block.rows, k: h, a: a, aRowStride: h, aColStride: 1, b: r, bRowStride: 1, bColStride: h,
                  c: c, ldc: ldc, accumulate: false, workspace: workspace)
        } else {
            packed[d * blocks.count + i].withUnsafeBufferPointer { pr in
                sgemm(m: shape.batch, n: block.rows, k: h, a: a, aRowStride: h, aColStride: 1, b: r, bRowStride: 1, bColStride: h,
                      c: c, ldc: ldc, accumulate: false, workspace: workspace, packed: SGEMMPrepacked(b: pr.baseAddress!, n: block.rows))
            }
        }
    }
}

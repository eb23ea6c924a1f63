import PerchGraph

/// Constant float32 weights of the multiplying ops, with their subnormal values (0 < |w| < 2⁻¹²⁶)
/// replaced by zero before the ops are prepared.
///
/// An x86 core multiplies a subnormal operand through a microcode assist costing on the order of
/// a hundred cycles, so a few such weights make a GEMM crawl. Trained weights decay into that range
/// under weight decay: PP-OCRv4's recognizer carries 31,350 of them, 22% of one squeeze-excitation
/// block's 480→120 1×1 conv, which took 0.55 ms instead of a few µs. Their products are below
/// 2⁻¹²⁶·|x|, invisible in any float32 sum they join unless every other term is as small. The
/// constant in `constants` itself is replaced, so every reader (the kernels' packed copies and any
/// other op reading the same constant) sees the same values.
enum SubnormalWeights {
    /// The inputs of `op` that hold weights when constant.
    static func weightInputs(of op: OpType) -> [Int] {
        switch op {
        case .conv, .convTranspose: return [1]
        case .gemm, .matMul: return [0, 1]
        case .lstm, .gru, .rnn: return [1, 2]
        default: return []
        }
    }

    /// Flushes the subnormals of `node`'s constant float32 weights in `constants`.
    static func flush(_ node: Node, in constants: inout [String: Tensor]) {
        for i in weightInputs(of: node.op) where i < node.inputs.count && !node.inputs[i].isEmpty {
            let name = node.inputs[i]
            guard var t = constants[name], t.dtype == .f32 else { continue }
            let any = t.withUnsafeBufferPointer(of: Float.self) { w in w.contains { $0.isSubnormal } }
            guard any else { continue }
            t.withUnsafeMutableBufferPointer(of: Float.self) { w in
                for j in w.indices where w[j].isSubnormal { w[j] = 0 }
            }
            constants[name] = t
        }
    }
}

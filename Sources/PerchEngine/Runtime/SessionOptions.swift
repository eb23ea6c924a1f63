/// How a `Session` runs a model.
public struct SessionOptions: Sendable, Equatable {
    /// Threads that run kernels (the caller plus `threads - 1` pool workers); at least 1.
    public var threads: Int
    /// Rewrites QDQ patterns (DequantizeLinear → op → QuantizeLinear) into integer ops before
    /// planning (see `QDQFusion`). Off: QDQ models run as fake-quant in float32.
    public var fuseQuantized: Bool

    public init(threads: Int = 1, fuseQuantized: Bool = true) {
        self.threads = threads < 1 ? 1 : threads
        self.fuseQuantized = fuseQuantized
    }
}

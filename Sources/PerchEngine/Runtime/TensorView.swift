import PerchGraph

/// A concrete tensor type: element type and shape, both fixed once a session is prepared.
public struct TensorDesc: Sendable, Equatable {
    public var dtype: DType
    public var shape: [Int]

    public init(dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }

    public var count: Int { elementCount(shape) }
    public var byteCount: Int { count * dtype.byteSize }
    public var rank: Int { shape.count }
}

/// A tensor in engine-owned memory (the arena or the weights buffer). Views are created once
/// when a session is planned, so kernels read shapes without allocating.
///
/// The memory is owned by the `Session`; a view must not outlive it.
public struct TensorView {
    public let data: UnsafeMutableRawPointer
    public let desc: TensorDesc

    public init(data: UnsafeMutableRawPointer, desc: TensorDesc) {
        self.data = data
        self.desc = desc
    }

    public var dtype: DType { desc.dtype }
    public var shape: [Int] { desc.shape }
    public var count: Int { desc.count }
    public var rank: Int { desc.shape.count }

    @inline(__always)
    public func pointer<T>(as type: T.Type) -> UnsafeMutablePointer<T> {
        data.assumingMemoryBound(to: T.self)
    }

    /// Element `i` as Double whatever the dtype (slow, generic paths only).
    @inline(__always)
    public func double(_ i: Int) -> Double { readElementAsDouble(UnsafeRawPointer(data), desc.dtype, i) }

    @inline(__always)
    public func int64(_ i: Int) -> Int64 { readElementAsInt64(UnsafeRawPointer(data), desc.dtype, i) }

    @inline(__always)
    public func setDouble(_ i: Int, _ v: Double) { writeElementFromDouble(data, desc.dtype, i, v) }

    @inline(__always)
    public func setInt64(_ i: Int, _ v: Int64) { writeElementFromInt64(data, desc.dtype, i, v) }

    /// A copy of the contents as a host `Tensor`.
    public func toTensor() -> Tensor {
        var t = Tensor(dtype: desc.dtype, shape: desc.shape)
        let n = desc.byteCount
        if n > 0 {
            t.bytes.withUnsafeMutableBytes { dst in
                dst.baseAddress!.copyMemory(from: UnsafeRawPointer(data), byteCount: n)
            }
        }
        return t
    }
}

/// What a kernel reads and writes on each run. Absent optional inputs are nil.
public struct KernelArgs {
    public let inputs: [TensorView?]
    public let outputs: [TensorView]
    /// Per-step workspace of the size the op asked for at prepare time (nil if none).
    public let scratch: UnsafeMutableRawPointer?
    /// The session's thread pool when it has more than one thread (nil: run serially). Kernels
    /// reach it through `parallelFor` and `threads`; a kernel that splits work into per-thread
    /// workspace slots sizes its scratch from `OpContext.threads` at prepare time.
    public let pool: ThreadPool?

    public init(inputs: [TensorView?], outputs: [TensorView], scratch: UnsafeMutableRawPointer?, pool: ThreadPool? = nil) {
        self.inputs = inputs
        self.outputs = outputs
        self.scratch = scratch
        self.pool = pool
    }

    /// Required input `i` (checked present at prepare time).
    @inline(__always)
    public func input(_ i: Int) -> TensorView { inputs[i]! }

    @inline(__always)
    public func output(_ i: Int) -> TensorView { outputs[i] }
}

/// The compiled work of one node: called once per run with its bound tensors.
public typealias Kernel = (KernelArgs) -> Void

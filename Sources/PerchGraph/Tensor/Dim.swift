/// One dimension of a declared tensor shape: a fixed size or a named symbol (such as `batch`)
/// that is bound to a size when a model is loaded.
public enum Dim: Sendable, Equatable, Hashable {
    case fixed(Int)
    case symbolic(String)

    /// The size when it is known without bindings.
    public var value: Int? {
        if case .fixed(let v) = self { return v }
        return nil
    }
}

/// The declared type of a graph input or output.
public struct TensorType: Sendable, Equatable {
    public var dtype: DType
    public var dims: [Dim]

    public init(dtype: DType, dims: [Dim]) {
        self.dtype = dtype
        self.dims = dims
    }

    public init(dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.dims = shape.map { Dim.fixed($0) }
    }

    /// The shape Perch uses when it must make an input up (`perch import`'s check, `perch bench`
    /// and the agent's `bench` without inputs, synthetic calibration): a symbolic batch (first)
    /// dimension is 1, and the other symbolic dimensions of a 4-D floating-point or uint8 input —
    /// an image, NCHW or NHWC, of a model exported with dynamic height and width — are 224, as a
    /// 1×1 image would not pass a detector's strides and pools. Other symbolic dimensions are 1.
    public func exampleShape() -> [Int] {
        let image = dims.count == 4 && (dtype.isFloatingPoint || dtype == .u8)
        var shape = [Int]()
        for (i, dim) in dims.enumerated() {
            switch dim {
            case .fixed(let v): shape.append(v)
            case .symbolic: shape.append(image && i > 0 ? 224 : 1)
            }
        }
        return shape
    }

    /// Resolves symbolic dimensions with `bindings`; unknown symbols default to `defaultSize`.
    public func concreteShape(bindings: [String: Int] = [:], defaultSize: Int = 1) -> [Int] {
        dims.map { dim in
            switch dim {
            case .fixed(let v): return v
            case .symbolic(let name): return bindings[name] ?? defaultSize
            }
        }
    }
}

/// Number of elements of a shape (1 for a scalar).
@inlinable
public func elementCount(_ shape: [Int]) -> Int {
    var n = 1
    for d in shape { n *= d }
    return n
}

/// Row-major strides of a shape, in elements.
@inlinable
public func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    var i = shape.count - 1
    while i >= 0 {
        strides[i] = s
        s *= shape[i]
        i -= 1
    }
    return strides
}

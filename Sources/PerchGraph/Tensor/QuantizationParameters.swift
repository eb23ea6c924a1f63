/// Affine quantization of a tensor: `real = scale * (q - zeroPoint)`.
///
/// Per-tensor parameters have one scale and one zero point; per-channel parameters have one of
/// each per index of `axis` (weights are quantized per output channel, symmetric, zero point 0).
public struct QuantizationParameters: Sendable, Equatable {
    public var scales: [Float]
    public var zeroPoints: [Int32]
    /// The channel axis for per-channel parameters; ignored when there is one scale.
    public var axis: Int

    public init(scale: Float, zeroPoint: Int32) {
        self.scales = [scale]
        self.zeroPoints = [zeroPoint]
        self.axis = 0
    }

    public init(scales: [Float], zeroPoints: [Int32], axis: Int) {
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
    }

    public var isPerChannel: Bool { scales.count > 1 }
}

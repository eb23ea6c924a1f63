import PerchGraph

/// Shapes and window parameters of one Conv or ConvTranspose node, with 1-D and 2-D spatial
/// shapes normalized to 3-D (leading spatial dims of size 1) so that every kernel loops over
/// depth, height and width.
struct ConvGeometry {
    var batch = 1
    /// Input channels (C) and output channels (M).
    var inChannels = 1
    var outChannels = 1
    var group = 1
    /// Spatial rank of the model's tensors (1, 2 or 3).
    var spatialRank = 2
    /// [D, H, W] of input, output, kernel; strides, dilations and leading pads per axis.
    var inD = 1, inH = 1, inW = 1
    var outD = 1, outH = 1, outW = 1
    var kD = 1, kH = 1, kW = 1
    var sD = 1, sH = 1, sW = 1
    var dD = 1, dH = 1, dW = 1
    var pD = 0, pH = 0, pW = 0

    var inSize: Int { inD * inH * inW }
    var outSize: Int { outD * outH * outW }
    var kernelSize: Int { kD * kH * kW }
    var inPerGroup: Int { inChannels / group }
    var outPerGroup: Int { outChannels / group }

    mutating func setSpatial(input: [Int], output: [Int], kernel: [Int], strides: [Int], dilations: [Int], padsBegin: [Int]) {
        func at(_ a: [Int], _ i: Int, _ fill: Int) -> Int {
            let j = i - (3 - a.count)
            return j >= 0 ? a[j] : fill
        }
        inD = at(input, 0, 1); inH = at(input, 1, 1); inW = at(input, 2, 1)
        outD = at(output, 0, 1); outH = at(output, 1, 1); outW = at(output, 2, 1)
        kD = at(kernel, 0, 1); kH = at(kernel, 1, 1); kW = at(kernel, 2, 1)
        sD = at(strides, 0, 1); sH = at(strides, 1, 1); sW = at(strides, 2, 1)
        dD = at(dilations, 0, 1); dH = at(dilations, 1, 1); dW = at(dilations, 2, 1)
        pD = at(padsBegin, 0, 0); pH = at(padsBegin, 1, 0); pW = at(padsBegin, 2, 0)
    }

    /// Lays a window that runs down a one-pixel-wide map along W instead: [C, H, 1] and [C, 1, H]
    /// are the same bytes, as are the weights [M, C, kH, 1] and [M, C, 1, kH]. Kernels walk W
    /// as their contiguous rows — Magika's 5×1 conv over a 512×1 map (a 1-D conv exported as
    /// 2-D) packed its im2col one 4-byte pixel per row, a third of the layer's time. Only for a
    /// window of width 1 with no W padding or stride, where the result is the same conv.
    mutating func layAlongWidth() {
        guard inD == 1, outD == 1, kD == 1, inW == 1, outW == 1, kW == 1, sW == 1, pW == 0, inH > 1 else { return }
        swap(&inH, &inW); swap(&outH, &outW); swap(&kH, &kW); swap(&sH, &sW); swap(&dH, &dW); swap(&pH, &pW)
    }
}

/// Reads the window attributes shared by Conv, ConvTranspose and the pooling ops.
struct WindowAttributes {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    /// 2 * rank values: all begins, then all ends (ONNX order).
    var pads: [Int]
    var autoPad: String

    init(_ ctx: OpContext, rank: Int, kernel: [Int]) throws(EngineError) {
        self.kernel = kernel
        strides = ctx.attributes.ints("strides") ?? [Int](repeating: 1, count: rank)
        dilations = ctx.attributes.ints("dilations") ?? [Int](repeating: 1, count: rank)
        pads = ctx.attributes.ints("pads") ?? [Int](repeating: 0, count: 2 * rank)
        autoPad = ctx.attributes.string("auto_pad", default: "NOTSET")
        guard kernel.count == rank else {
            throw ctx.invalid("kernel_shape has " + String(kernel.count) + " values for " + String(rank) + " spatial dims")
        }
        guard strides.count == rank, dilations.count == rank, pads.count == 2 * rank else {
            throw ctx.invalid("strides, dilations and pads must have one value (pads: two) per spatial dim")
        }
        for i in 0..<rank {
            guard kernel[i] >= 1, strides[i] >= 1, dilations[i] >= 1 else {
                throw ctx.invalid("kernel_shape, strides and dilations must be positive")
            }
            guard pads[i] >= 0, pads[i + rank] >= 0 else { throw ctx.invalid("pads must be non-negative") }
        }
        switch autoPad {
        case "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID": break
        default: throw ctx.invalid("unknown auto_pad '" + autoPad + "'")
        }
    }

    /// Output spatial shape of a sliding window (Conv, pooling), resolving auto_pad into `pads`.
    mutating func resolveOutput(_ ctx: OpContext, input: [Int], ceilMode: Bool = false) throws(EngineError) -> [Int] {
        let rank = input.count
        var out = [Int](repeating: 0, count: rank)
        for i in 0..<rank {
            let window = dilations[i] * (kernel[i] - 1) + 1
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                out[i] = (input[i] + strides[i] - 1) / strides[i]
                let total = max(0, (out[i] - 1) * strides[i] + window - input[i])
                let small = total / 2
                pads[i] = autoPad == "SAME_UPPER" ? small : total - small
                pads[i + rank] = total - pads[i]
            case "VALID":
                pads[i] = 0
                pads[i + rank] = 0
                out[i] = input[i] >= window ? (input[i] - window) / strides[i] + 1 : 0
            default:
                let span = input[i] + pads[i] + pads[i + rank] - window
                guard span >= 0 else {
                    throw ctx.invalid("window of size " + String(window) + " is larger than the padded input (" + String(input[i] + pads[i] + pads[i + rank]) + ")")
                }
                if ceilMode {
                    out[i] = (span + strides[i] - 1) / strides[i] + 1
                    // A window that would start inside the end padding is dropped.
                    if (out[i] - 1) * strides[i] >= input[i] + pads[i] { out[i] -= 1 }
                } else {
                    out[i] = span / strides[i] + 1
                }
            }
        }
        return out
    }
}

import PerchGraph

/// Col2Im (opset 18): the inverse of im2col (PyTorch's `fold`). Input [N, C·prod(block), L]
/// holds, for each of the L sliding-block positions, the block's values; they are summed into
/// an image [N, C, image…] (overlaps add). `image_shape` and `block_shape` (inputs 1 and 2) must
/// be known before running (else the node runs in a value-dependent stage); `dilations`, `pads`
/// (begins then ends) and `strides` as for Conv. Any number of spatial dims.
public enum Col2ImOperator {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        let x = try ctx.input(0)
        let image = try IndexingOperator.dataDependent(ctx, input: 1).int64s.map { Int(clamping: $0) }
        let block = try IndexingOperator.dataDependent(ctx, input: 2).int64s.map { Int(clamping: $0) }
        let r = image.count
        guard r >= 1 && block.count == r else { throw ctx.invalid("image_shape and block_shape must have the same number of values") }
        guard x.rank == 3 else { throw ctx.invalid("input must be [N, C·prod(block_shape), L], got " + shapeText(x.shape)) }
        let dilations = ctx.attributes.ints("dilations") ?? [Int](repeating: 1, count: r)
        let strides = ctx.attributes.ints("strides") ?? [Int](repeating: 1, count: r)
        let pads = ctx.attributes.ints("pads") ?? [Int](repeating: 0, count: 2 * r)
        guard dilations.count == r && strides.count == r && pads.count == 2 * r else {
            throw ctx.invalid("dilations, strides and pads must have one value (pads: two) per spatial dim")
        }
        let kernel = product(block[...])
        guard kernel > 0 && x.shape[1] % kernel == 0 else {
            throw ctx.invalid("input dimension 1 (" + String(x.shape[1]) + ") must be a multiple of prod(block_shape) " + String(kernel))
        }
        var blocks = [Int]()
        for d in 0..<r {
            guard block[d] >= 1 && dilations[d] >= 1 && strides[d] >= 1 && image[d] >= 0 else {
                throw ctx.invalid("block_shape, dilations and strides must be positive")
            }
            blocks.append((image[d] + pads[d] + pads[d + r] - dilations[d] * (block[d] - 1) - 1) / strides[d] + 1)
        }
        let positions = product(blocks[...])
        guard blocks.allSatisfy({ $0 >= 1 }) && x.shape[2] == positions else {
            throw ctx.invalid("input dimension 2 (" + String(x.shape[2]) + ") must be the number of sliding blocks " + String(positions))
        }
        let n = x.shape[0], channels = x.shape[1] / kernel
        let plane = product(image[...])
        let imageStrides = contiguousStrides(image)
        let blockStrides = contiguousStrides(block)
        let positionStrides = contiguousStrides(blocks)
        let out = TensorDesc(dtype: x.dtype, shape: [n, channels] + image)
        guard x.dtype.isFloatingPoint || x.dtype.isInteger else { throw ctx.unsupported("input type " + x.dtype.name) }
        let isFloat = x.dtype.isFloatingPoint
        return PreparedOp(outputs: [out]) { args in
            let xv = args.input(0), yv = args.output(0)
            for i in 0..<(n * channels * plane) {
                if isFloat { yv.setDouble(i, 0) } else { yv.setInt64(i, 0) }
            }
            for nc in 0..<(n * channels) {
                for k in 0..<kernel {
                    let row = (nc * kernel + k) * positions
                    for l in 0..<positions {
                        var at = nc * plane
                        var inside = true
                        for d in 0..<r {
                            let kd = (k / blockStrides[d]) % block[d]
                            let ld = (l / positionStrides[d]) % blocks[d]
                            let p = ld * strides[d] - pads[d] + kd * dilations[d]
                            if p < 0 || p >= image[d] {
                                inside = false
                                break
                            }
                            at += p * imageStrides[d]
                        }
                        if !inside { continue }
                        if isFloat {
                            yv.setDouble(at, yv.double(at) + xv.double(row + l))
                        } else {
                            yv.setInt64(at, yv.int64(at) &+ xv.int64(row + l))
                        }
                    }
                }
            }
        }
    }
}

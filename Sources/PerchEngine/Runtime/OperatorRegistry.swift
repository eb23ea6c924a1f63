import PerchGraph

/// Maps each operator to the kernel family that prepares it. One family per folder under
/// `Kernels/`; a family's `prepare` switches on `ctx.node.op` for the ops it owns.
public enum OperatorRegistry {
    public static func prepare(_ ctx: OpContext) throws(EngineError) -> PreparedOp {
        switch ctx.node.op {
        case .conv, .convTranspose:
            return try ConvOperator.prepare(ctx)
        case .gemm, .matMul:
            return try GemmOperator.prepare(ctx)
        case .maxPool, .averagePool, .globalAveragePool, .globalMaxPool:
            return try PoolingOperator.prepare(ctx)
        case .resize:
            return try ResizeOperator.prepare(ctx)
        case .batchNormalization, .layerNormalization, .lrn:
            return try NormalizationOperator.prepare(ctx)
        case .relu, .leakyRelu, .clip, .sigmoid, .hardSigmoid, .hardSwish, .tanh, .erf, .gelu, .elu, .selu, .softplus, .softsign:
            return try ActivationOperator.prepare(ctx)
        case .prelu:
            return try PReluOperator.prepare(ctx)
        case .softmax, .logSoftmax:
            return try SoftmaxOperator.prepare(ctx)
        case .qLinearSoftmax:
            return try QLinearSoftmaxOperator.prepare(ctx)
        case .add, .sub, .mul, .div, .pow, .sqrt, .exp, .log, .neg, .abs, .min, .max, .sum, .mean,
            .reciprocal, .floor, .ceil, .not, .and, .or, .xor, .equal, .less, .greater, .lessOrEqual,
            .greaterOrEqual, .where:
            return try ElementwiseOperator.prepare(ctx)
        case .reduceMean, .reduceSum, .reduceMax, .reduceMin, .reduceProd, .argMax, .argMin:
            return try ReduceOperator.prepare(ctx)
        case .cast, .quantizeLinear, .dequantizeLinear, .dynamicQuantizeLinear:
            return try CastOperator.prepare(ctx)
        case .qLinearMatMul, .matMulInteger, .qGemm:
            return try QGemmOperator.prepare(ctx)
        case .qLinearConv, .convInteger:
            return try QConvOperator.prepare(ctx)
        case .qLinearAdd, .qLinearMul, .qLinearGlobalAveragePool, .qLinearSigmoid, .qLinearLeakyRelu, .qLinearLookup:
            return try QElementwiseOperator.prepare(ctx)
        case .lstm:
            return try LSTMOperator.prepare(ctx)
        case .gru:
            return try GRUOperator.prepare(ctx)
        case .rnn:
            return try RNNOperator.prepare(ctx)
        case .topK, .gatherElements, .gatherND, .scatterND, .scatterElements, .oneHot, .cumSum, .trilu,
            .depthToSpace, .spaceToDepth, .nonZero, .nonMaxSuppression, .einsum, .compress, .unique:
            return try IndexingOperator.prepare(ctx)
        case .if, .loop, .scan:
            return try ControlFlowOperator.prepare(ctx)
        case .castLike:
            return try CastOperator.prepareCastLike(ctx)
        case .instanceNormalization:
            return try InstanceNormalizationOperator.prepare(ctx)
        case .sin, .cos, .round, .sign, .mod, .isNaN, .isInf, .shrink, .celu, .thresholdedRelu:
            return try ElementwiseOperator.prepareMath(ctx)
        case .mish:
            return try ActivationOperator.prepare(ctx)
        case .hardmax:
            return try HardmaxOperator.prepare(ctx)
        case .reduceL1, .reduceL2, .reduceSumSquare, .reduceLogSumExp, .reduceLogSum:
            return try ReduceOperator.prepare(ctx)
        case .gridSample:
            return try GridSampleOperator.prepare(ctx)
        case .affineGrid:
            return try GridSampleOperator.prepareAffineGrid(ctx)
        case .deformConv:
            return try DeformConvOperator.prepare(ctx)
        case .col2Im:
            return try Col2ImOperator.prepare(ctx)
        case .det:
            return try DeterminantOperator.prepare(ctx)
        case .hannWindow, .hammingWindow, .blackmanWindow:
            return try WindowOperator.prepare(ctx)
        case .dft, .stft:
            return try DFTOperator.prepare(ctx)
        case .melWeightMatrix:
            return try MelWeightMatrixOperator.prepare(ctx)
        case .roiAlign:
            return try RoiAlignOperator.prepare(ctx)
        case .lpPool:
            return try LpPoolOperator.prepare(ctx)
        case .groupNormalization, .meanVarianceNormalization, .lpNormalization:
            return try MomentNormalizationOperator.prepare(ctx)
        case .tan, .acos, .acosh, .asin, .asinh, .atan, .atanh, .cosh, .sinh:
            return try ElementwiseOperator.prepareTrig(ctx)
        case .bitwiseAnd, .bitwiseOr, .bitwiseXor, .bitwiseNot, .bitShift:
            return try ElementwiseOperator.prepareBitwise(ctx)
        case .maxUnpool:
            return try MaxUnpoolOperator.prepare(ctx)
        case .concat, .split, .slice, .gather, .reshape, .flatten, .transpose, .squeeze, .unsqueeze,
            .pad, .shape, .size, .identity, .expand, .constantOfShape, .range, .tile, .constant, .dropout,
            .reverseSequence, .eyeLike, .centerCropPad:
            return try DataMovementOperator.prepare(ctx)
        }
    }
}

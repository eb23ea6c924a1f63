@testable import PerchEngine
import PerchGraph
import XCTest

/// Runs a prepared kernel on host tensors (for comparing a family's fast and reference kernels).
func runPrepared(_ p: PreparedOp, _ inputs: [Tensor?], pool: ThreadPool? = nil) -> [Tensor] {
    var buffers = [UnsafeMutableRawPointer]()
    defer { for b in buffers { b.deallocate() } }
    func alloc(_ bytes: Int) -> UnsafeMutableRawPointer {
        let b = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        buffers.append(b)
        return b
    }
    var views = [TensorView?]()
    for t in inputs {
        guard let t else { views.append(nil); continue }
        let b = alloc(t.bytes.count)
        t.bytes.withUnsafeBytes { b.copyMemory(from: $0.baseAddress!, byteCount: t.bytes.count) }
        views.append(TensorView(data: b, desc: TensorDesc(dtype: t.dtype, shape: t.shape)))
    }
    let outs = p.outputs.map { d -> TensorView in
        let b = alloc(d.byteCount)
        b.initializeMemory(as: UInt8.self, repeating: 0xFF, count: d.byteCount)  // NaN-filled: catches unwritten outputs
        return TensorView(data: b, desc: d)
    }
    let scratch: UnsafeMutableRawPointer? = p.scratchBytes > 0 ? alloc(p.scratchBytes) : nil
    p.kernel(KernelArgs(inputs: views, outputs: outs, scratch: scratch, pool: pool))
    return outs.map { $0.toTensor() }
}

func context(_ op: OpType, _ inputs: [Tensor?], _ attributes: [String: Attribute]) -> OpContext {
    let names = inputs.enumerated().map { $0.element == nil ? "" : "i" + String($0.offset) }
    let node = Node(name: "n", op: op, inputs: names, outputs: ["y"], attributes: Attributes(attributes))
    return OpContext(node: node, inputs: inputs.map { $0.map { TensorDesc(dtype: $0.dtype, shape: $0.shape) } }, knownValues: inputs)
}

final class ConvTests: XCTestCase {
    struct Config {
        var x: [Int]
        var w: [Int]
        var attrs: [String: Attribute]
        var bias = true
    }

    func testFastConvAgreesWithReference() throws {
        let configs: [Config] = [
            Config(x: [2, 3, 9, 10], w: [8, 3, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])]),
            Config(x: [1, 4, 11, 9], w: [6, 2, 3, 2], attrs: ["group": .int(2), "strides": .ints([2, 3]), "pads": .ints([0, 2, 1, 0])]),
            Config(x: [1, 3, 12, 12], w: [5, 3, 3, 3], attrs: ["dilations": .ints([2, 3]), "pads": .ints([2, 1, 3, 2])], bias: false),
            Config(x: [2, 16, 7, 7], w: [20, 16, 1, 1], attrs: [:]),  // pointwise: no im2col
            Config(x: [1, 8, 7, 7], w: [4, 8, 1, 1], attrs: ["strides": .ints([2, 2])]),
            Config(x: [1, 6, 10, 8], w: [6, 1, 3, 3], attrs: ["group": .int(6), "pads": .ints([1, 1, 1, 1])]),  // depthwise
            // depthwise 3×3 stride 2 (vector body + edges): odd/even widths, pads 0/1/asymmetric, one row above the image
            Config(x: [1, 3, 11, 41], w: [3, 1, 3, 3], attrs: ["group": .int(3), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
            Config(x: [2, 2, 8, 40], w: [2, 1, 3, 3], attrs: ["group": .int(2), "strides": .ints([2, 2])]),
            Config(x: [1, 2, 7, 37], w: [2, 1, 3, 3], attrs: ["group": .int(2), "strides": .ints([2, 2]), "pads": .ints([2, 0, 1, 3])], bias: false),
            Config(x: [2, 4, 9, 9], w: [8, 1, 3, 5], attrs: ["group": .int(4), "strides": .ints([2, 2]), "dilations": .ints([1, 2]), "auto_pad": .string("SAME_UPPER")]),  // depthwise x2
            Config(x: [1, 3, 20], w: [4, 3, 5], attrs: ["strides": .ints([3]), "auto_pad": .string("SAME_LOWER")]),  // 1-D
            Config(x: [1, 2, 5, 6, 7], w: [3, 2, 2, 3, 2], attrs: ["pads": .ints([1, 0, 1, 0, 2, 1]), "strides": .ints([1, 2, 1])]),  // 3-D
            Config(x: [1, 70, 6, 6], w: [40, 70, 3, 3], attrs: ["auto_pad": .string("VALID")]),  // k > one sgemm K block when 70*9 > 256
            // implicit im2col: 2 500 output columns (more than one 2 048-column B block), end padding read as zeros
            Config(x: [1, 3, 50, 50], w: [7, 3, 3, 3], attrs: ["pads": .ints([1, 0, 2, 1])]),
            Config(x: [1, 5, 13, 17], w: [9, 5, 5, 5], attrs: ["strides": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])], bias: false),
            Config(x: [1, 3, 40, 70], w: [4, 3, 3, 3], attrs: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),  // stem: whole stride-2 panels
            // direct conv (AVX-512): two 32-channel blocks, the second one vector wide; 14-wide rows in tiles of 7
            Config(x: [1, 40, 14, 14], w: [45, 40, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])]),
            Config(x: [2, 24, 6, 7], w: [10, 24, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])]),  // direct, batch of 2
            Config(x: [1, 24, 15, 29], w: [33, 24, 3, 3], attrs: ["strides": .ints([2, 2]), "dilations": .ints([1, 2]), "pads": .ints([0, 1, 2, 1])], bias: false),
            // 1×1 convs with ≥ 1024 input channels take the direct kernel too, strided or not
            Config(x: [1, 1024, 3, 5], w: [20, 1024, 1, 1], attrs: [:]),
            Config(x: [1, 80, 5, 7], w: [24, 80, 1, 1], attrs: [:]),  // and narrow ones (≤ 48 outputs) with ≥ 64
            Config(x: [1, 1024, 5, 5], w: [40, 1024, 1, 1], attrs: ["strides": .ints([2, 2])]),
            // direct conv on AVX2 (6 pixels × 16 channels): k×k with 16 or 32 outputs and ≥ 72 taps;
            // rows of 14 in tiles of 4, 5, 5; stride 2 with both 16-channel halves
            Config(x: [1, 16, 13, 14], w: [16, 16, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])]),
            Config(x: [1, 8, 17, 19], w: [32, 8, 3, 3], attrs: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], bias: false),
            // stem kernel (AVX2, ≤ 32 taps, rows of ≥ 8): 10 channels (4-channel tiles and a rest of 2),
            // 19-wide rows (a whole and a masked vector), odd input sizes, batch of 2; a 1-channel one
            Config(x: [2, 3, 37, 38], w: [10, 3, 3, 3], attrs: ["strides": .ints([2, 2]), "pads": .ints([1, 0, 1, 1])]),
            Config(x: [1, 1, 6, 33], w: [5, 1, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])], bias: false),
            Config(x: [1, 16, 9, 24], w: [12, 16, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])]),  // stride 1, 144 taps: the same kernel
            Config(x: [1, 16, 9, 20], w: [12, 16, 3, 3], attrs: ["pads": .ints([1, 1, 1, 1])]),  // 20-wide rows: the GEMM
            // a window down a one-pixel-wide map (a 1-D conv exported as 2-D): laid along W
            Config(x: [1, 12, 40, 1], w: [9, 12, 5, 1], attrs: ["pads": .ints([2, 0, 1, 0])]),
            Config(x: [2, 6, 33, 1], w: [4, 6, 3, 1], attrs: ["strides": .ints([2, 1]), "dilations": .ints([2, 1]), "pads": .ints([1, 0, 3, 0])], bias: false),
        ]
        var rng = TestRandom(seed: 11)
        // Every config twice: as dispatched, and with the stem kernel off (PERCH_CONV_STEM=0), so
        // the 3-channel configs still exercise the GEMM path's implicit im2col.
        for stem in [true, false] {
            if !stem { setenv("PERCH_CONV_STEM", "0", 1) }
            defer { unsetenv("PERCH_CONV_STEM") }
            for cfg in configs {
                let x = floats(cfg.x, rng.floats(elementCount(cfg.x)))
                let w = floats(cfg.w, rng.floats(elementCount(cfg.w)))
                let b: Tensor? = cfg.bias ? floats([cfg.w[0]], rng.floats(cfg.w[0])) : nil
                let ctx = context(.conv, [x, w, b], cfg.attrs)
                let fast = runPrepared(try ConvOperator.prepareConv(ctx, reference: false), [x, w, b])
                let ref = runPrepared(try ConvOperator.prepareConv(ctx, reference: true), [x, w, b])
                assertClose(fast[0], ref[0], rtol: 1e-4, atol: 1e-4)
                // Weights only known at run time: packed on every run instead of once at prepare.
                let runtimeWeights = OpContext(node: ctx.node, inputs: [x, w, b].map { $0.map { TensorDesc(dtype: $0.dtype, shape: $0.shape) } },
                                               knownValues: [x, nil, b])
                let unpacked = runPrepared(try ConvOperator.prepareConv(runtimeWeights, reference: false), [x, w, b])
                XCTAssertEqual(unpacked[0].bytes, fast[0].bytes, "\(cfg.x) \(cfg.w)")
            }
        }
    }

    func testFastConvTransposeAgreesWithReference() throws {
        let configs: [Config] = [
            Config(x: [2, 3, 4, 5], w: [3, 4, 3, 3], attrs: ["strides": .ints([2, 2]), "pads": .ints([1, 0, 1, 1])]),
            Config(x: [1, 4, 3, 3], w: [4, 3, 2, 3], attrs: ["group": .int(2), "strides": .ints([3, 2]), "dilations": .ints([2, 1]), "output_padding": .ints([1, 1])]),
            Config(x: [1, 2, 7], w: [2, 3, 4], attrs: ["strides": .ints([2]), "auto_pad": .string("SAME_UPPER")], bias: false),
            Config(x: [1, 2, 3, 2, 3], w: [2, 2, 2, 2, 3], attrs: ["strides": .ints([1, 2, 2]), "output_shape": .ints([5, 4, 8])]),
            // Kernel = stride, no pads (one tap per output): 2×2/2 with groups, 3×3/3, 1-D 2/2, no bias.
            Config(x: [1, 6, 5, 7], w: [6, 3, 2, 2], attrs: ["strides": .ints([2, 2]), "group": .int(2)]),
            Config(x: [2, 3, 4, 3], w: [3, 5, 3, 3], attrs: ["strides": .ints([3, 3])]),
            Config(x: [1, 2, 9], w: [2, 3, 2], attrs: ["strides": .ints([2])], bias: false),
        ]
        var rng = TestRandom(seed: 12)
        for cfg in configs {
            let x = floats(cfg.x, rng.floats(elementCount(cfg.x)))
            let w = floats(cfg.w, rng.floats(elementCount(cfg.w)))
            let m = cfg.w[1] * (cfg.attrs["group"].map { if case .int(let g) = $0 { return g } else { return 1 } } ?? 1)
            let b: Tensor? = cfg.bias ? floats([m], rng.floats(m)) : nil
            let ctx = context(.convTranspose, [x, w, b], cfg.attrs)
            let fast = runPrepared(try ConvOperator.prepareTranspose(ctx, reference: false), [x, w, b])
            let ref = runPrepared(try ConvOperator.prepareTranspose(ctx, reference: true), [x, w, b])
            assertClose(fast[0], ref[0], rtol: 1e-4, atol: 1e-4)
        }
    }

    // Expected values below come from onnx.reference (Conv) and a numpy scatter (ConvTranspose).

    func testDepthwiseMultiplierStridesPadsBias() throws {
        let x = floats([1, 2, 4, 4], [-0.8, -0.5, 0.6, 0.2, -0.8, -0.1, 0, -0.7, 0.5, -0.8, -0.2, 0, -0.1, 0.2, 0.5, 0.9, -0.4, 0.3, 0.4, -0.4, -1, 0.9, -0.4, -0.4, 0.8, 0.2, -0.1, 0.5, -0.9, 0.4, -0.3, -0.8])
        let w = floats([4, 1, 2, 2], [0.3, 0.9, -0.6, 0.3, -0.4, 0.5, 0.4, -0.6, 0.7, 0.3, 0.4, 0.6, -0.1, 0.5, 0.8, -0.8])
        let b = floats([4], [0.5, -0.5, 1, 0])
        let y = try runSingleNode(.conv, inputs: [("x", x), ("w", w), ("b", b)], attributes: ["group": .int(2), "pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
        assertClose(y[0], floats([1, 4, 3, 3], [0.26, 0.98, 0.38, -0.07, 0.89, 0.29, 0.41, 1.01, 0.77, -0.02, -1.06, -0.42, -1.2, -0.66, -0.22, -0.55, -0.33, -0.86, 0.76, 1.36, 0.84, 1.18, 1.53, 0.92, 0.73, 1.19, 0.44, 0.32, -0.08, -0.32, -1.14, -0.05, 0.44, -0.45, -0.19, 0.08]), rtol: 1e-4, atol: 1e-5)
    }

    func testConv1DDilatedSameLowerStrided() throws {
        let x = floats([1, 2, 6], [0.7, -0.2, 0, -0.7, 0.4, -0.4, 0.7, -0.4, 0.1, -0.2, 0.2, -0.6])
        let w = floats([3, 2, 3], [-0.6, 0.5, 0.5, 0.1, 0.8, -0.6, 0.7, -0.7, 0.9, 0.2, 0.2, 0.9, 0.6, 0.6, -0.9, -0.3, -0.8, -0.6])
        let y = try runSingleNode(.conv, inputs: [("x", x), ("w", w)], attributes: ["dilations": .ints([2]), "auto_pad": .string("SAME_LOWER"), "strides": .ints([2])])
        assertClose(y[0], floats([1, 3, 3], [0.85, -0.19, 0.37, -0.26, 1.19, -0.22, -0.2, -0.35, 0.05]), rtol: 1e-4, atol: 1e-5)
    }

    func testConv3DAsymmetricPads() throws {
        let x = floats([1, 1, 3, 3, 3], [-0.6, 0.7, -0.7, -0.4, 0, 0.7, 0.9, 0.4, -0.6, 0.1, 0.4, -0.9, 0.4, -0.3, 0.2, 0.3, 0.3, 0, 0.1, -0.6, 0, -0.7, 0, 0.1, 0.5, -0.2, -1])
        let w = floats([2, 1, 2, 2, 2], [0.1, -0.6, 0.5, -0.2, -0.2, 0.8, -0.2, -0.3, -0.3, 0, -0.8, 0.1, 0.8, 0.1, 0.5, 0.9])
        let y = try runSingleNode(.conv, inputs: [("x", x), ("w", w)], attributes: ["pads": .ints([1, 0, 0, 0, 1, 0])])
        assertClose(y[0], floats([1, 2, 3, 3, 2], [0.76, -0.91, -0.22, 0.66, 0.14, -0.56, -0.37, -0.45, -0.14, 0.06, 0.03, 0.34, -0.33, 0.48, 0.41, 0.42, -0.41, -0.73, -0.61, 1.12, 0.49, -0.27, 0.76, 0.26, 0.55, 0.12, 0.15, -0.45, 0, 0.12, -0.71, -0.25, -0.82, -1.14, 0.29, -0.35]), rtol: 1e-4, atol: 1e-5)
    }

    func testConvTransposeGroupsStridesOutputPaddingPadsBias() throws {
        let x = floats([1, 2, 2, 3], [0.6, 0.6, 0, -0.4, -0.9, -0.2, -0.2, -0.9, -0.9, 1, 0.3, -0.5])
        let w = floats([2, 2, 3, 2], [-0.1, 0.9, 0.8, 0.7, -0.2, 0, 0.4, -0.9, 0.1, -0.5, 0.8, -0.9, 0.4, 0.7, -0.5, 0.8, 0.7, -1, 0.4, -1, 0, -0.1, -0.6, -0.4])
        let b = floats([4], [0.1, 0.2, 0.3, 0.4])
        let y = try runSingleNode(.convTranspose, inputs: [("x", x), ("w", w), ("b", b)],
                                  attributes: ["group": .int(2), "strides": .ints([2, 2]), "output_padding": .ints([1, 0]), "pads": .ints([1, 0, 0, 1])])
        assertClose(y[0], floats([1, 4, 5, 5], [0.58, 0.52, 0.58, 0.52, 0.1, 0.02, -0.26, 0.07, -0.71, 0.12, -0.22, -0.18, -0.62, -0.53, -0.06, 0.18, 0.1, 0.28, 0.1, 0.14, 0.1, 0.1, 0.1, 0.1, 0.1, 0.26, -0.1, 0.26, -0.1, 0.2, 0.52, 0.02, 0.32, 0.47, 0.12, 0.16, 0.4, 0.11, 0.65, 0.18, -0.12, 0.56, -0.52, 1.01, 0.04, 0.2, 0.2, 0.2, 0.2, 0.2, 0.4, 0.14, 0.75, -0.42, 0.75, 0.56, 1.2, -0.21, 1.41, -0.53, -0.2, 1.1, 0.15, 0.54, 0.55, 1, -0.7, 0.51, 0, -0.05, 0.3, 0.3, 0.3, 0.3, 0.3, 0.4, 0.42, 0.4, 0.49, 0.4, 0.92, -0.52, 1.06, 0.46, 0.74, 0.4, 0.3, 0.4, 0.37, 0.4, -0.2, 0, 0.22, 0.28, 0.7, 0.4, 0.4, 0.4, 0.4, 0.4]), rtol: 1e-4, atol: 1e-5)
    }

    func testRejectsNonFloat32AndBadShapes() {
        let x = Tensor(shape: [1, 1, 3, 3], values: [Double](repeating: 1, count: 9))
        let w = Tensor(shape: [1, 1, 2, 2], values: [Double](repeating: 1, count: 4))
        XCTAssertThrowsError(try runSingleNode(.conv, inputs: [("x", x), ("w", w)])) { e in
            XCTAssertTrue(String(describing: e).contains("float32"))
        }
        XCTAssertThrowsError(try runSingleNode(.conv, inputs: [("x", floats([1, 2, 3, 3], [Float](repeating: 0, count: 18))), ("w", floats([1, 3, 2, 2], [Float](repeating: 0, count: 12)))]))
    }
}

import PerchEngine
import PerchGraph
import XCTest

@testable import PerchOptimize

/// Every pass keeps the model's outputs (engine before vs after, ≤ 1e-5) and makes the rewrite
/// it promises.
final class PassesTests: XCTestCase {
    func testTinyCNNMatchesONNXRuntimeAfterAllPasses() throws {
        var g = try Fixtures.onnx("examples/tiny-cnn.onnx")
        let counts = try Simplifier.simplify(&g)
        XCTAssertFalse(g.nodes.contains { $0.op == .batchNormalization })
        XCTAssertEqual(counts.first { $0.0 == "batchnorm-folding" }?.1, 4)
        let out = try Fixtures.run(g, try Fixtures.tinyCNNInput())["probabilities"]!
        Fixtures.assertClose(out, try Fixtures.npy("examples/tiny-cnn-expected-ort.npy"), tolerance: 1e-5)
    }

    func testBatchNormFoldingPreservesTinyCNN() throws {
        let g = try Fixtures.onnx("examples/tiny-cnn.onnx")
        try Fixtures.assertPreserves(g, try Fixtures.tinyCNNInput()) { g in
            XCTAssertEqual(try BatchNormFolding().run(&g), 4)
            XCTAssertEqual(g.nodes.count, 18)
        }
    }

    /// BatchNorm after a Gemm with transB = 0 and a bias: the channel is W's axis 1.
    func testBatchNormFoldingIntoGemm() throws {
        let w = Fixtures.randomTensor([6, 4], seed: 3)
        var inits: [String: Tensor] = ["w": w, "b": Fixtures.randomTensor([4], seed: 4)]
        inits["gamma"] = Tensor(shape: [4], values: [1.5, 0.5, -1, 2] as [Float])
        inits["beta"] = Tensor(shape: [4], values: [0.1, 0.2, 0.3, 0.4] as [Float])
        inits["mean"] = Tensor(shape: [4], values: [0.5, -0.5, 0, 1] as [Float])
        inits["var"] = Tensor(shape: [4], values: [1, 2, 0.5, 4] as [Float])
        let g = Graph(
            nodes: [
                Node(name: "fc", op: .gemm, inputs: ["x", "w", "b"], outputs: ["h"], attributes: Attributes(["beta": .float(0.5)])),
                Node(name: "bn", op: .batchNormalization, inputs: ["h", "gamma", "beta", "mean", "var"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [3, 6]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [3, 4]))], initializers: inits)
        try Fixtures.assertPreserves(g, ["x": Fixtures.randomTensor([3, 6], seed: 5)]) { g in
            XCTAssertEqual(try BatchNormFolding().run(&g), 1)
            XCTAssertEqual(g.nodes.map(\.op), [.gemm])
        }
    }

    /// Weights built by ConstantOfShape (as the ONNX light models do): folding only those nodes
    /// makes them initializers, and the BatchNorm after the Conv then folds too.
    func testConstantOfShapeWeightsLetBatchNormFold() throws {
        var inits: [String: Tensor] = ["wshape": Tensor(shape: [4], values: [3, 2, 3, 3] as [Int64])]
        inits["gamma"] = Tensor(shape: [3], values: [1.5, 0.5, -1] as [Float])
        inits["beta"] = Tensor(shape: [3], values: [0.1, 0.2, 0.3] as [Float])
        inits["mean"] = Tensor(shape: [3], values: [0.5, -0.5, 0] as [Float])
        inits["var"] = Tensor(shape: [3], values: [1, 2, 0.5] as [Float])
        let g = Graph(
            nodes: [
                Node(name: "w", op: .constantOfShape, inputs: ["wshape"], outputs: ["w"],
                     attributes: Attributes(["value": .tensor(Tensor(shape: [1], values: [Float(0.02)]))])),
                Node(name: "conv", op: .conv, inputs: ["x", "w"], outputs: ["h"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])),
                Node(name: "bn", op: .batchNormalization, inputs: ["h", "gamma", "beta", "mean", "var"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 2, 5, 5]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, 3, 5, 5]))], initializers: inits)
        try Fixtures.assertPreserves(g, ["x": Fixtures.randomTensor([1, 2, 5, 5], seed: 6)]) { g in
            _ = try Simplifier.simplify(&g, passes: [ConstantFolding(onlyOps: [.constantOfShape]), BatchNormFolding(), DeadNodeRemoval()])
            XCTAssertEqual(g.nodes.map(\.op), [.conv])
        }
        // Other constant nodes are left alone when only ConstantOfShape is asked for.
        var h = g
        h.nodes.insert(Node(name: "neg", op: .neg, inputs: ["gamma"], outputs: ["ng"]), at: 0)
        h.outputs.append(ValueInfo(name: "ng", type: TensorType(dtype: .f32, shape: [3])))
        XCTAssertEqual(try ConstantFolding(onlyOps: [.constantOfShape]).run(&h), 1)
        XCTAssertTrue(h.nodes.contains { $0.op == .neg })
    }

    /// Caffe2's BatchNorm export: Conv → Mul(Unsqueeze(scale)) → Add([1, C, 1, 1]) → Relu. After
    /// model loading's folds the Mul and Add are in the Conv's weights and bias; a constant that
    /// varies over space, or a Conv output read twice, is left alone.
    func testChannelAffineFoldingTakesChannelMulAndAdd() throws {
        var inits: [String: Tensor] = ["w": Fixtures.randomTensor([3, 2, 3, 3], seed: 21), "b": Fixtures.randomTensor([3], seed: 22)]
        inits["scale"] = Tensor(shape: [3], values: [1.5, -0.5, 2] as [Float])
        inits["shift"] = Tensor(shape: [1, 3, 1, 1], values: [0.1, -0.2, 0.3] as [Float])
        inits["axes"] = Tensor(shape: [2], values: [1, 2] as [Int64])
        inits["spatial"] = Fixtures.randomTensor([1, 1, 5, 5], seed: 23)
        let g = Graph(
            nodes: [
                Node(name: "conv", op: .conv, inputs: ["x", "w", "b"], outputs: ["h"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])),
                Node(name: "unsq", op: .unsqueeze, inputs: ["scale", "axes"], outputs: ["s"]),
                Node(name: "mul", op: .mul, inputs: ["h", "s"], outputs: ["m"]),
                Node(name: "add", op: .add, inputs: ["shift", "m"], outputs: ["a"]),
                Node(name: "relu", op: .relu, inputs: ["a"], outputs: ["r"]),
                Node(name: "conv2", op: .conv, inputs: ["r", "w"], outputs: ["h2"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])),
                Node(name: "sp", op: .mul, inputs: ["h2", "spatial"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 2, 5, 5]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, 3, 5, 5]))], initializers: inits)
        // conv2 reads r with 3 input channels: give it fitting weights.
        var h = g
        h.initializers["w2"] = Fixtures.randomTensor([3, 3, 3, 3], seed: 24)
        h.nodes[5].inputs[1] = "w2"
        try Fixtures.assertPreserves(h, ["x": Fixtures.randomTensor([1, 2, 5, 5], seed: 25)]) { g in
            _ = try Simplifier.simplify(&g, passes: [ConstantFolding(onlyOps: [.unsqueeze]), ChannelAffineFolding(), DeadNodeRemoval()])
            XCTAssertEqual(g.nodes.map(\.op), [.conv, .relu, .conv, .mul])
        }
        // The Conv output read by two nodes keeps its Mul.
        var twice = h
        twice.nodes.append(Node(name: "extra", op: .relu, inputs: ["h"], outputs: ["e"]))
        twice.outputs.append(ValueInfo(name: "e", type: TensorType(dtype: .f32, shape: [1, 3, 5, 5])))
        _ = try ConstantFolding(onlyOps: [.unsqueeze]).run(&twice)
        XCTAssertEqual(try ChannelAffineFolding().run(&twice), 0)
    }

    /// GELU's erf form in both exporter spellings — (x·(1 + erf(x/√2)))·0.5 and
    /// (x·0.5)·(1 + erf(x·(1/√2))) — becomes one Gelu node with the same values; a chain whose
    /// Erf output is also a graph output, or whose constant is not 1, is left alone.
    func testGeluFusionTakesBothErfSpellings() throws {
        let inits: [String: Tensor] = ["sqrt2": Tensor(shape: [], values: [Float(1.4142135)]), "rsqrt2": Tensor(shape: [], values: [Float(0.70710677)]),
                                       "one": Tensor(shape: [], values: [Float(1)]), "half": Tensor(shape: [], values: [Float(0.5)]),
                                       "two": Tensor(shape: [], values: [Float(2)])]
        let io = (inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [4, 33]))],
                  outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [4, 33]))])
        let first = Graph(nodes: [
            Node(name: "d", op: .div, inputs: ["x", "sqrt2"], outputs: ["d"]), Node(name: "e", op: .erf, inputs: ["d"], outputs: ["e"]),
            Node(name: "a", op: .add, inputs: ["e", "one"], outputs: ["a"]), Node(name: "m", op: .mul, inputs: ["x", "a"], outputs: ["m"]),
            Node(name: "h", op: .mul, inputs: ["m", "half"], outputs: ["y"]),
        ], inputs: io.inputs, outputs: io.outputs, initializers: inits)
        let second = Graph(nodes: [
            Node(name: "h", op: .mul, inputs: ["half", "x"], outputs: ["h"]), Node(name: "d", op: .mul, inputs: ["x", "rsqrt2"], outputs: ["d"]),
            Node(name: "e", op: .erf, inputs: ["d"], outputs: ["e"]), Node(name: "a", op: .add, inputs: ["one", "e"], outputs: ["a"]),
            Node(name: "m", op: .mul, inputs: ["a", "h"], outputs: ["y"]),
        ], inputs: io.inputs, outputs: io.outputs, initializers: inits)
        let x = Fixtures.randomTensor([4, 33], seed: 41)
        for g in [first, second] {
            try Fixtures.assertPreserves(g, ["x": x]) { g in
                XCTAssertEqual(try GeluFusion().run(&g), 1)
                XCTAssertEqual(g.nodes.map(\.op), [.gelu])
                XCTAssertEqual(g.nodes[0].inputs, ["x"])
            }
        }
        var shared = first
        shared.outputs.append(ValueInfo(name: "e", type: TensorType(dtype: .f32, shape: [4, 33])))
        XCTAssertEqual(try GeluFusion().run(&shared), 0)
        var notOne = first
        notOne.nodes[2].inputs[1] = "two"
        XCTAssertEqual(try GeluFusion().run(&notOne), 0)
    }

    /// HardSwish in Paddle's spelling (Add 3 → Clip [0, 6] → Mul x → Div 6), with the sixth
    /// first (Div 6 or Mul 1/6, then Mul x), and as Mul(x, HardSigmoid(1/6, 1/2)): each becomes
    /// one HardSwish node of x with the same values; a chain whose clipped value is also a graph
    /// output, or whose Clip stops at 5, is left alone.
    func testHardSwishFusionTakesTheExportersSpellings() throws {
        let inits: [String: Tensor] = ["three": Tensor(shape: [], values: [Float(3)]), "zero": Tensor(shape: [], values: [Float(0)]),
                                       "six": Tensor(shape: [], values: [Float(6)]), "five": Tensor(shape: [], values: [Float(5)]),
                                       "sixth": Tensor(shape: [], values: [Float(1.0 / 6.0)])]
        let io = (inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [3, 40]))],
                  outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [3, 40]))])
        func graph(_ nodes: [Node]) -> Graph { Graph(nodes: nodes, inputs: io.inputs, outputs: io.outputs, initializers: inits) }
        let add = Node(name: "a", op: .add, inputs: ["x", "three"], outputs: ["a"])
        let clip = Node(name: "c", op: .clip, inputs: ["a", "zero", "six"], outputs: ["c"])
        let paddle = graph([add, clip, Node(name: "m", op: .mul, inputs: ["x", "c"], outputs: ["m"]),
                            Node(name: "d", op: .div, inputs: ["m", "six"], outputs: ["y"])])
        let sixthFirst = graph([Node(name: "a", op: .add, inputs: ["three", "x"], outputs: ["a"]), clip,
                                Node(name: "d", op: .mul, inputs: ["sixth", "c"], outputs: ["d"]),
                                Node(name: "m", op: .mul, inputs: ["d", "x"], outputs: ["y"])])
        var hardSigmoid = Node(name: "h", op: .hardSigmoid, inputs: ["x"], outputs: ["h"])
        hardSigmoid.attributes.values["alpha"] = .float(1.0 / 6.0)
        let torch = graph([hardSigmoid, Node(name: "m", op: .mul, inputs: ["x", "h"], outputs: ["y"])])
        let x = Tensor(shape: [3, 40], values: Fixtures.randomTensor([3, 40], seed: 43).floats.map { $0 * 5 })  // [-5, 5]: both bends
        for g in [paddle, sixthFirst, torch] {
            try Fixtures.assertPreserves(g, ["x": x], tolerance: 1e-6) { g in
                XCTAssertEqual(try HardSwishFusion().run(&g), 1)
                XCTAssertEqual(g.nodes.map(\.op), [.hardSwish])
                XCTAssertEqual(g.nodes[0].inputs, ["x"])
                XCTAssertEqual(g.nodes[0].outputs, ["y"])
            }
        }
        var shared = paddle
        shared.outputs.append(ValueInfo(name: "c", type: TensorType(dtype: .f32, shape: [3, 40])))
        XCTAssertEqual(try HardSwishFusion().run(&shared), 0)
        var five = paddle
        five.nodes[1].inputs[2] = "five"
        XCTAssertEqual(try HardSwishFusion().run(&five), 0)
    }

    /// DenseNet's pre-activation: Concat → BatchNorm → Mul([C, 1, 1]) → Add([C, 1, 1]) → Relu → Conv.
    /// The BatchNorm's input rank comes from the Concat of Conv outputs, so the Mul and Add fold
    /// into its scale and bias; with the input's rank unknown a [C, 1, 1] constant stays a Mul.
    func testChannelAffineFoldingIntoBatchNorm() throws {
        var inits: [String: Tensor] = ["w": Fixtures.randomTensor([2, 2, 1, 1], seed: 31), "w2": Fixtures.randomTensor([3, 4, 3, 3], seed: 32)]
        inits["gamma"] = Tensor(shape: [4], values: [1.5, 0.5, -1, 2] as [Float])
        inits["beta"] = Tensor(shape: [4], values: [0.1, 0.2, 0.3, 0.4] as [Float])
        inits["mean"] = Tensor(shape: [4], values: [0.5, -0.5, 0, 1] as [Float])
        inits["var"] = Tensor(shape: [4], values: [1, 2, 0.5, 4] as [Float])
        inits["m"] = Tensor(shape: [4, 1, 1], values: [2, -1, 0.5, 3] as [Float])
        inits["a"] = Tensor(shape: [4, 1, 1], values: [0.25, -0.5, 1, 0] as [Float])
        let g = Graph(
            nodes: [
                Node(name: "c1", op: .conv, inputs: ["x", "w"], outputs: ["h"]),
                Node(name: "cat", op: .concat, inputs: ["x", "h"], outputs: ["k"], attributes: Attributes(["axis": .int(1)])),
                Node(name: "bn", op: .batchNormalization, inputs: ["k", "gamma", "beta", "mean", "var"], outputs: ["n"]),
                Node(name: "mul", op: .mul, inputs: ["n", "m"], outputs: ["p"]),
                Node(name: "add", op: .add, inputs: ["p", "a"], outputs: ["q"]),
                Node(name: "relu", op: .relu, inputs: ["q"], outputs: ["r"]),
                Node(name: "c2", op: .conv, inputs: ["r", "w2"], outputs: ["y"], attributes: Attributes(["pads": .ints([1, 1, 1, 1])])),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [1, 2, 5, 5]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [1, 3, 5, 5]))], initializers: inits)
        try Fixtures.assertPreserves(g, ["x": Fixtures.randomTensor([1, 2, 5, 5], seed: 33)]) { g in
            XCTAssertEqual(try ChannelAffineFolding().run(&g), 2)
            XCTAssertEqual(g.nodes.map(\.op), [.conv, .concat, .batchNormalization, .relu, .conv])
        }
        var unknown = g
        unknown.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .f32, dims: []))]
        unknown.nodes[1].inputs = ["h", "h"]
        unknown.nodes[0].inputs[1] = "nope"
        XCTAssertEqual(try ChannelAffineFolding().run(&unknown), 0)
    }

    func testIdentityDropoutAndTransposeCancellation() throws {
        let g = Graph(
            nodes: [
                Node(name: "id", op: .identity, inputs: ["x"], outputs: ["a"]),
                Node(name: "t1", op: .transpose, inputs: ["a"], outputs: ["b"], attributes: Attributes(["perm": .ints([0, 2, 3, 1])])),
                Node(name: "t2", op: .transpose, inputs: ["b"], outputs: ["c"], attributes: Attributes(["perm": .ints([0, 3, 1, 2])])),
                Node(name: "drop", op: .dropout, inputs: ["c"], outputs: ["d"]),
                Node(name: "relu", op: .relu, inputs: ["d"], outputs: ["e"]),
                Node(name: "t3", op: .transpose, inputs: ["e"], outputs: ["f"], attributes: Attributes(["perm": .ints([1, 0, 2, 3])])),
                Node(name: "t4", op: .transpose, inputs: ["f"], outputs: ["y"], attributes: Attributes(["perm": .ints([0, 1, 3, 2])])),
                Node(name: "unused", op: .relu, inputs: ["x"], outputs: ["z"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [2, 3, 4, 5]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [3, 2, 5, 4]))])
        try Fixtures.assertPreserves(g, ["x": Fixtures.randomTensor([2, 3, 4, 5], seed: 9)], tolerance: 0) { g in
            _ = try Simplifier.simplify(&g)
            // Identity, Dropout, t1∘t2 (identity) and the unused Relu go; t3∘t4 merge into one.
            XCTAssertEqual(g.nodes.map(\.op), [.relu, .transpose])
            XCTAssertEqual(g.nodes[1].attributes.ints("perm"), [1, 0, 3, 2])
        }
    }

    /// A Dropout in training mode (a true training_mode input, or one only known at run time) is
    /// not the identity and stays; with a constant false one it goes.
    func testDropoutInTrainingModeIsKept() throws {
        for (mode, kept) in [(Tensor(shape: [], values: [true]), true), (Tensor(shape: [], values: [false]), false)] {
            var g = Graph(
                nodes: [Node(name: "drop", op: .dropout, inputs: ["x", "", "mode"], outputs: ["y"])],
                inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [2, 3]))],
                outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [2, 3]))], initializers: ["mode": mode])
            g.nodes.insert(Node(name: "relu", op: .relu, inputs: ["x"], outputs: ["r"]), at: 0)
            g.nodes[1].inputs[0] = "r"
            XCTAssertEqual(try IdentityRemoval().run(&g), kept ? 0 : 1)
            XCTAssertEqual(g.nodes.contains { $0.op == .dropout }, kept)
        }
        var runtime = Graph(
            nodes: [Node(name: "relu", op: .relu, inputs: ["x"], outputs: ["r"]),
                    Node(name: "drop", op: .dropout, inputs: ["r", "", "mode"], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [2, 3])),
                     ValueInfo(name: "mode", type: TensorType(dtype: .bool, shape: []))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [2, 3]))])
        XCTAssertEqual(try IdentityRemoval().run(&runtime), 0)
    }

    func testReshapeOfReshapeAndConstantFolding() throws {
        let g = Graph(
            nodes: [
                Node(name: "s1", op: .reshape, inputs: ["x", "shape1"], outputs: ["a"]),
                Node(name: "s2", op: .reshape, inputs: ["a", "shape2"], outputs: ["b"]),
                // A constant subgraph: k = 2 * c + 1, folded into one initializer.
                Node(name: "mul", op: .mul, inputs: ["c", "two"], outputs: ["c2"]),
                Node(name: "add", op: .add, inputs: ["c2", "one"], outputs: ["k"]),
                Node(name: "scale", op: .mul, inputs: ["b", "k"], outputs: ["y"]),
            ],
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [2, 6]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, shape: [3, 4]))],
            initializers: [
                "shape1": Tensor(shape: [3], values: [2, 3, 2] as [Int64]),
                "shape2": Tensor(shape: [2], values: [3, -1] as [Int64]),
                "c": Tensor(shape: [4], values: [1, 2, 3, 4] as [Float]),
                "two": Tensor(shape: [], values: [2] as [Float]),
                "one": Tensor(shape: [], values: [1] as [Float]),
            ])
        try Fixtures.assertPreserves(g, ["x": Fixtures.randomTensor([2, 6], seed: 11)], tolerance: 0) { g in
            _ = try Simplifier.simplify(&g)
            XCTAssertEqual(g.nodes.map(\.op), [.reshape, .mul])
            XCTAssertEqual(g.initializers["k"]?.floats, [3, 5, 7, 9])
            XCTAssertNil(g.initializers["shape1"])
        }
    }
}

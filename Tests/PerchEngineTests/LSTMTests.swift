import PerchEngine
import PerchGraph
import XCTest

/// LSTM's forward cases are checked against ONNX's backend data by the conformance suite
/// (defaults, bias, peepholes with sequence_lens and initial states, layout 1); these check what
/// those cases do not: the reverse and bidirectional directions, against the forward direction run
/// on time-reversed input, with R known at prepare time (packed once) and only at run time.
final class LSTMTests: XCTestCase {
    let (seq, batch, inSize, hidden) = (5, 2, 3, 4)

    func weights(_ dirs: Int, seed: UInt64) -> [String: Tensor] {
        func t(_ shape: [Int], _ s: UInt64) -> Tensor {
            var rng = SplitMix(seed: s)
            return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(Int64(rng.next() % 2001) - 1000) / 1500 })
        }
        return ["W": t([dirs, 4 * hidden, inSize], seed), "R": t([dirs, 4 * hidden, hidden], seed + 1),
                "B": t([dirs, 8 * hidden], seed + 2), "P": t([dirs, 3 * hidden], seed + 3)]
    }

    func run(_ x: Tensor, _ w: [String: Tensor], direction: String, constantR: Bool) throws -> [Tensor] {
        var constants = w
        if !constantR { constants["R"] = nil }
        return try runSingleNode(.lstm, inputs: [("x", x), ("W", w["W"]!), ("R", w["R"]!), ("B", w["B"]!), ("", x), ("", x), ("", x), ("P", w["P"]!)],
                                 constants: constants, outputs: ["Y", "Yh", "Yc"],
                                 attributes: ["hidden_size": .int(hidden), "direction": .string(direction)])
    }

    /// [S, …] rows in reverse time order.
    func reversedInTime(_ t: Tensor) -> Tensor {
        let v = t.floats, row = v.count / seq
        return Tensor(shape: t.shape, values: (0..<seq).flatMap { s in v[((seq - 1 - s) * row)..<((seq - s) * row)] })
    }

    func testReverseAndBidirectionalMatchForwardOnReversedInput() throws {
        var rng = SplitMix(seed: 71)
        let x = Tensor(shape: [seq, batch, inSize], values: (0..<(seq * batch * inSize)).map { _ in Float(Int64(rng.next() % 2001) - 1000) / 500 })
        let fw = weights(1, seed: 10), bw = weights(1, seed: 20)
        for constantR in [true, false] {
            let forward = try run(x, fw, direction: "forward", constantR: constantR)
            let reverse = try run(reversedInTime(x), fw, direction: "reverse", constantR: constantR)
            // The reverse direction over reversed input is the forward one, its Y in reversed order.
            assertClose(reverse[0], reversedInTime(forward[0]), rtol: 1e-5, atol: 1e-6)
            assertClose(reverse[1], forward[1], rtol: 1e-5, atol: 1e-6)
            assertClose(reverse[2], forward[2], rtol: 1e-5, atol: 1e-6)
            // Bidirectional = forward with the first weights, reverse with the second.
            var both = [String: Tensor]()
            for k in ["W", "R", "B", "P"] {
                both[k] = Tensor(shape: [2] + Array(fw[k]!.shape.dropFirst()), values: fw[k]!.floats + bw[k]!.floats)
            }
            let bi = try run(x, both, direction: "bidirectional", constantR: constantR)
            let back = try run(x, bw, direction: "reverse", constantR: constantR)
            XCTAssertEqual(bi[0].shape, [seq, 2, batch, hidden])
            let y = bi[0].floats, yf = forward[0].floats, yb = back[0].floats, step = batch * hidden
            for s in 0..<seq {
                XCTAssertEqual(Array(y[(2 * s * step)..<((2 * s + 1) * step)]), Array(yf[(s * step)..<((s + 1) * step)]), "forward half, step \(s)")
                XCTAssertEqual(Array(y[((2 * s + 1) * step)..<((2 * s + 2) * step)]), Array(yb[(s * step)..<((s + 1) * step)]), "reverse half, step \(s)")
            }
            XCTAssertEqual(bi[1].floats, forward[1].floats + back[1].floats)
        }
    }

    /// With two threads a bidirectional LSTM, GRU and RNN run their directions side by side, each
    /// in its own scratch: the same bits as one thread, R constant or not, with lengths and layout 1.
    func testBidirectionalOnTwoThreadsMatchesOneThread() throws {
        var rng = SplitMix(seed: 91)
        func t(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(Int64(rng.next() % 2001) - 1000) / 1500 })
        }
        for (op, gates) in [(OpType.lstm, 4), (.gru, 3), (.rnn, 1)] {
            for layout in [0, 1] {
                let x = t(layout == 0 ? [seq, batch, inSize] : [batch, seq, inSize])
                let w = t([2, gates * hidden, inSize]), r = t([2, gates * hidden, hidden]), b = t([2, 2 * gates * hidden])
                let lens = Tensor(shape: [batch], values: [Int32(seq), Int32(seq - 2)])
                for constantR in [true, false] {
                    let node = Node(name: "rec", op: op, inputs: ["x", "W", "R", "B", "lens"], outputs: ["Y", "Yh"],
                                    attributes: Attributes(["hidden_size": .int(hidden), "direction": .string("bidirectional"), "layout": .int(layout)]))
                    var inputs = [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: x.shape))]
                    var feeds = ["x": x]
                    if !constantR {
                        inputs.append(ValueInfo(name: "R", type: TensorType(dtype: .f32, shape: r.shape)))
                        feeds["R"] = r
                    }
                    var g = Graph(name: "bi", nodes: [node], inputs: inputs,
                                  outputs: [ValueInfo(name: "Y", type: TensorType(dtype: .f32, dims: [])), ValueInfo(name: "Yh", type: TensorType(dtype: .f32, dims: []))])
                    g.initializers = ["W": w, "B": b, "lens": lens]
                    if constantR { g.initializers["R"] = r }
                    let one = try Session(graph: g, options: SessionOptions(threads: 1)).run(feeds)
                    let two = try Session(graph: g, options: SessionOptions(threads: 2)).run(feeds)
                    XCTAssertEqual(two["Y"]!.bytes, one["Y"]!.bytes, "\(op) layout \(layout) constant R \(constantR)")
                    XCTAssertEqual(two["Yh"]!.bytes, one["Yh"]!.bytes, "\(op) layout \(layout) constant R \(constantR)")
                    XCTAssertTrue(one["Y"]!.floats.contains { $0 != 0 })
                }
            }
        }
    }

    /// R as 8-bit codes with a scale and zero point (inputs 8 and 9, what the importer makes of
    /// DynamicQuantizeLSTM) gives the LSTM of the dequantized float R, to float rounding: int8
    /// codes with per-column scales and non-zero zero points, uint8 codes with one scale a
    /// direction; 4·hidden = 160 gate columns (a group of 8 panels and ragged single ones), one and
    /// two threads.
    func testQuantizedRMatchesTheDequantizedFloatR() throws {
        let (h, dirs) = (40, 2)
        var rng = SplitMix(seed: 909)
        func floats(_ count: Int, _ scale: Float) -> [Float] { (0..<count).map { _ in Float(Int64(rng.next() % 2001) - 1000) / 1000 * scale } }
        let x = Tensor(shape: [seq, batch, inSize], values: floats(seq * batch * inSize, 2))
        let w = Tensor(shape: [dirs, 4 * h, inSize], values: floats(dirs * 4 * h * inSize, 0.7))
        let b = Tensor(shape: [dirs, 8 * h], values: floats(dirs * 8 * h, 0.3))
        for unsigned in [false, true] {
            let codes = (0..<(dirs * 4 * h * h)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let perColumn = !unsigned
            let scaleCount = perColumn ? dirs * 4 * h : dirs
            let scales = (0..<scaleCount).map { _ in Float(1 + rng.next() % 100) / 4000 }
            let zeros: [UInt8] = (0..<scaleCount).map { _ in unsigned ? UInt8(120 + rng.next() % 16) : UInt8(bitPattern: Int8(Int64(rng.next() % 11) - 5)) }
            var dequantized = [Float](repeating: 0, count: codes.count)
            for d in 0..<dirs {
                for j in 0..<(4 * h) {
                    let i = perColumn ? d * 4 * h + j : d
                    let z = unsigned ? Float(zeros[i]) : Float(Int8(bitPattern: zeros[i]))
                    for k in 0..<h {
                        let c = codes[(d * 4 * h + j) * h + k]
                        dequantized[(d * 4 * h + j) * h + k] = ((unsigned ? Float(c) : Float(Int8(bitPattern: c))) - z) * scales[i]
                    }
                }
            }
            let dtype: DType = unsigned ? .u8 : .i8
            let rq = Tensor(dtype: dtype, shape: [dirs, 4 * h, h], bytes: codes)
            let sShape = perColumn ? [dirs, 4 * h] : [dirs]
            let rs = Tensor(shape: sShape, values: scales), rz = Tensor(dtype: dtype, shape: sShape, bytes: zeros)
            let rf = Tensor(shape: [dirs, 4 * h, h], values: dequantized)
            let attrs: [String: Attribute] = ["hidden_size": .int(h), "direction": .string("bidirectional")]
            for threads in [1, 2] {
                let want = try runSingleNode(.lstm, inputs: [("x", x), ("W", w), ("R", rf), ("B", b)],
                                             constants: ["W": w, "R": rf, "B": b], outputs: ["Y", "Yh", "Yc"], attributes: attrs, threads: threads)
                let got = try runSingleNode(.lstm, inputs: [("x", x), ("W", w), ("R", rq), ("B", b), ("", x), ("", x), ("", x), ("", x), ("Rs", rs), ("Rz", rz)],
                                            constants: ["W": w, "R": rq, "B": b, "Rs": rs, "Rz": rz], outputs: ["Y", "Yh", "Yc"],
                                            attributes: attrs, threads: threads)
                for i in 0..<3 { assertClose(got[i], want[i], rtol: 1e-5, atol: 2e-6) }
                // And not by accident: a different scale changes the result.
                let off = try runSingleNode(.lstm, inputs: [("x", x), ("W", w), ("R", rq), ("B", b), ("", x), ("", x), ("", x), ("", x), ("Rs", rs), ("Rz", rz)],
                                            constants: ["W": w, "R": rq, "B": b, "Rs": Tensor(shape: sShape, values: scales.map { $0 * 1.5 }), "Rz": rz],
                                            outputs: ["Y", "Yh", "Yc"], attributes: attrs, threads: threads)
                XCTAssertNotEqual(off[0].floats, want[0].floats)
            }
        }
    }
}

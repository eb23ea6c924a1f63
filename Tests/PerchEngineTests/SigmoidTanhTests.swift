import CPerchShims
import Foundation
import PerchEngine
import PerchGraph
import XCTest

/// The vectorized Sigmoid, Tanh and SiLU kernels (CPerchSigmoidTanh.h): every SIMD path this CPU
/// has gives the scalar reference's bits, and the reference is within a few float32 ulps of the
/// exact functions (float64 libm).
final class SigmoidTanhTests: XCTestCase {
    /// −40…40 densely (both tanh branches and the switch at 0.625), tiny values, the clamps of
    /// e^x, ±0, infinities and NaN; odd lengths leave a tail shorter than a vector.
    func samples() -> [Float] {
        var xs = [Float]()
        var v: Float = -40
        while v <= 40 { xs.append(v); v += 0.0071 }
        v = -1
        while v <= 1 { xs.append(v); v += 0.000_31 }
        xs += [0, -0, 1e-8, -1e-8, 1e-30, 0.625, -0.625, 0.62499997, 87.5, -87.5, 88.5, -88.5, 100, -100, .infinity, -.infinity, .nan, 3]
        return xs
    }

    func isas() -> [VectorISA] {
        let best = VectorISA.best()
        return [best, VectorISA(avx512: false, avx512vbmi: false, avx2: best.avx2, neon: best.neon)]
    }

    func testSIMDMatchesScalarBitForBit() {
        for xs in [samples(), Array(samples().prefix(13))] {
            for curve in [FloatCurve.sigmoid, .tanh, .silu] {
                var want = [Float](repeating: 0, count: xs.count)
                perch_sigmoid_tanh_f32_scalar(xs, xs.count, curve.rawValue, &want)
                for isa in isas() {
                    var got = [Float](repeating: 7, count: xs.count)
                    xs.withUnsafeBufferPointer { px in got.withUnsafeMutableBufferPointer { py in
                        isa.sigmoidTanh(px.baseAddress!, xs.count, curve, py.baseAddress!)
                    } }
                    for i in xs.indices where !(want[i].isNaN && got[i].isNaN) {
                        XCTAssertEqual(got[i].bitPattern, want[i].bitPattern, "\(curve) \(isa) at x = \(xs[i]): \(got[i]) vs \(want[i])")
                        if got[i].bitPattern != want[i].bitPattern { break }
                    }
                    XCTAssertEqual(got.map(\.isNaN), want.map(\.isNaN), "\(curve) \(isa): NaN where the reference has it")
                }
            }
        }
    }

    /// Against float64: tanh within 3e-7 relative (and exact sign and ±0), sigmoid within 3e-7
    /// relative where the result is a normal float, SiLU the same; NaN through, ±∞ to the limits.
    func testScalarReferenceAccuracy() {
        let xs = samples()
        var sig = [Float](repeating: 0, count: xs.count), th = sig, silu = sig
        perch_sigmoid_tanh_f32_scalar(xs, xs.count, FloatCurve.sigmoid.rawValue, &sig)
        perch_sigmoid_tanh_f32_scalar(xs, xs.count, FloatCurve.tanh.rawValue, &th)
        perch_sigmoid_tanh_f32_scalar(xs, xs.count, FloatCurve.silu.rawValue, &silu)
        var worst = (sigmoid: 0.0, tanh: 0.0, silu: 0.0)
        for (i, x) in xs.enumerated() where x.isFinite {
            let d = Double(x)
            let s = 1 / (1 + Foundation.exp(-d)), t = Foundation.tanh(d)
            if s > 1e-37 {
                worst.sigmoid = max(worst.sigmoid, abs(Double(sig[i]) - s) / s)
                if abs(d * s) > 1e-37 { worst.silu = max(worst.silu, abs(Double(silu[i]) - d * s) / abs(d * s)) }
            } else {
                XCTAssertLessThan(sig[i], 1e-37, "x = \(x)")
            }
            if t != 0 { worst.tanh = max(worst.tanh, abs(Double(th[i]) - t) / abs(t)) }
            XCTAssertEqual(th[i].sign, x.sign, "tanh keeps the sign of \(x)")
        }
        XCTAssertLessThanOrEqual(worst.sigmoid, 3e-7)
        XCTAssertLessThanOrEqual(worst.tanh, 3e-7)
        XCTAssertLessThanOrEqual(worst.silu, 3e-7)
        let at = { (x: Float) in xs.firstIndex { $0 == x }! }
        XCTAssertEqual(th[at(.infinity)], 1)
        XCTAssertEqual(th[at(-.infinity)], -1)
        XCTAssertEqual(sig[at(.infinity)], 1)
        XCTAssertEqual(sig[at(-.infinity)], 0, accuracy: 1e-37)
        let nan = xs.firstIndex { $0.isNaN }!
        XCTAssertTrue(th[nan].isNaN && sig[nan].isNaN && silu[nan].isNaN)
    }

    /// The Sigmoid and Tanh operators on a tensor large enough to split across two threads give
    /// the kernel's bits in every part.
    func testOperatorsSplitAcrossThreads() throws {
        var rng = TestRandom(seed: 31)
        let n = 3 * (1 << 15) + 5
        let values = rng.floats(n).map { $0 * 12 }
        for (op, curve) in [(OpType.sigmoid, FloatCurve.sigmoid), (.tanh, .tanh)] {
            let g = Graph(name: "curve", nodes: [Node(name: "a", op: op, inputs: ["x"], outputs: ["y"])],
                          inputs: [ValueInfo(name: "x", type: TensorType(dtype: .f32, shape: [n]))],
                          outputs: [ValueInfo(name: "y", type: TensorType(dtype: .f32, dims: []))])
            let y = try Session(graph: g, options: SessionOptions(threads: 2)).run(["x": Tensor(shape: [n], values: values)])["y"]!.floats
            var want = [Float](repeating: 0, count: n)
            perch_sigmoid_tanh_f32_scalar(values, n, curve.rawValue, &want)
            XCTAssertEqual(y.map(\.bitPattern), want.map(\.bitPattern), "\(op)")
        }
    }
}

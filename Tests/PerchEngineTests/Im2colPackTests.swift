import CPerchShims
import XCTest

/// The AVX-512 implicit im2col packing must write the same panels as the portable one, bit for
/// bit, for every panel shape: one run, a run across a row end, runs across several rows (small
/// maps), stride 2, dilation and a last panel short of 16 columns.
final class Im2colPackTests: XCTestCase {
    struct Shape {
        var channels, hp, wp, outH, outW, kH, kW, sH, sW, dH, dW: Int
    }

    static let shapes = [
            Shape(channels: 3, hp: 58, wp: 58, outH: 56, outW: 56, kH: 3, kW: 3, sH: 1, sW: 1, dH: 1, dW: 1),
            Shape(channels: 5, hp: 16, wp: 16, outH: 14, outW: 14, kH: 3, kW: 3, sH: 1, sW: 1, dH: 1, dW: 1),
            Shape(channels: 4, hp: 9, wp: 9, outH: 7, outW: 7, kH: 3, kW: 3, sH: 1, sW: 1, dH: 1, dW: 1),
            Shape(channels: 3, hp: 229, wp: 229, outH: 112, outW: 112, kH: 7, kW: 7, sH: 2, sW: 2, dH: 1, dW: 1),
            Shape(channels: 2, hp: 15, wp: 15, outH: 7, outW: 7, kH: 3, kW: 3, sH: 2, sW: 2, dH: 1, dW: 1),
            Shape(channels: 2, hp: 20, wp: 20, outH: 16, outW: 16, kH: 3, kW: 3, sH: 1, sW: 1, dH: 2, dW: 2),
            Shape(channels: 3, hp: 12, wp: 30, outH: 10, outW: 26, kH: 3, kW: 5, sH: 1, sW: 1, dH: 1, dW: 1),
            Shape(channels: 2, hp: 5, wp: 40, outH: 3, outW: 19, kH: 3, kW: 3, sH: 1, sW: 2, dH: 1, dW: 1),
            // Stride 2 on a map wider than a panel (the even-element gather of whole panels).
            Shape(channels: 3, hp: 65, wp: 65, outH: 32, outW: 32, kH: 3, kW: 3, sH: 2, sW: 2, dH: 1, dW: 1),
        ]

    /// The portable packing (AVX2 and NEON machines' path) against the definition of the panel:
    /// row p, column j is input channel c at (oy·sH + kh·dH, ox·sW + kw·dW), zeros past the columns.
    func testPortablePackingMatchesDefinition() {
        var rng = TestRandom(seed: 12)
        for s in Self.shapes {
            let plane = s.hp * s.wp, taps = s.kH * s.kW
            let x = rng.floats(s.channels * plane)
            let n = s.outH * s.outW, k = s.channels * taps
            x.withUnsafeBufferPointer { xb in
                var g = perch_conv_im2col(x: xb.baseAddress, planeSize: plane, Wp: s.wp, outW: s.outW, kH: s.kH, kW: s.kW,
                                          sH: s.sH, sW: s.sW, dH: s.dH, dW: s.dW)
                for (q0, kc) in [(0, k), (1, k - 1), (k / 2, k - k / 2)] where kc > 0 {
                    for j0 in stride(from: 0, to: n, by: 16) {
                        let cols = min(16, n - j0)
                        var got = [Float](repeating: -7, count: kc * 16)
                        perch_sgemm_pack_b_conv_portable(kc, q0, j0, cols, &g, &got)
                        var want = [Float](repeating: 0, count: kc * 16)
                        for p in 0..<kc {
                            let q = q0 + p, c = q / taps, kh = q % taps / s.kW, kw = q % s.kW
                            for j in 0..<cols {
                                let oy = (j0 + j) / s.outW, ox = (j0 + j) % s.outW
                                want[p * 16 + j] = x[c * plane + (oy * s.sH + kh * s.dH) * s.wp + ox * s.sW + kw * s.dW]
                            }
                        }
                        guard got.map(\.bitPattern) == want.map(\.bitPattern) else {
                            XCTFail("\(s) q0 \(q0) j0 \(j0) cols \(cols): panel differs from the definition")
                            return
                        }
                    }
                }
            }
        }
    }

    func testAVX512PackingMatchesPortable() throws {
        #if arch(x86_64)
        guard perch_sgemm_best() == Int32(PERCH_SGEMM_AVX512) else { throw XCTSkip("no AVX-512 on this CPU") }
        var rng = TestRandom(seed: 11)
        for s in Self.shapes {
            let plane = s.hp * s.wp
            // The input exactly as large as it is: reads past it would fault or differ.
            let x = rng.floats(s.channels * plane)
            let n = s.outH * s.outW, k = s.channels * s.kH * s.kW
            try x.withUnsafeBufferPointer { xb in
                var g = perch_conv_im2col(x: xb.baseAddress, planeSize: plane, Wp: s.wp, outW: s.outW, kH: s.kH, kW: s.kW,
                                          sH: s.sH, sW: s.sW, dH: s.dH, dW: s.dW)
                for (q0, kc) in [(0, k), (1, k - 1), (k / 2, k - k / 2)] where kc > 0 {
                    var j0 = 0
                    while j0 < n {
                        let cols = min(16, n - j0)
                        var a = [Float](repeating: -7, count: kc * 16), b = a
                        perch_sgemm_pack_b_conv_avx512(kc, q0, j0, cols, &g, &a)
                        perch_sgemm_pack_b_conv_portable(kc, q0, j0, cols, &g, &b)
                        guard a.map(\.bitPattern) == b.map(\.bitPattern) else {
                            XCTFail("\(s) q0 \(q0) j0 \(j0) cols \(cols): panels differ")
                            return
                        }
                        j0 += 16
                    }
                }
                _ = try XCTUnwrap(xb.baseAddress)
            }
        }
        #else
        throw XCTSkip("x86-64 only")
        #endif
    }
}

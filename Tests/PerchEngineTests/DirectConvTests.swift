import CPerchShims
import PerchEngine
import XCTest

/// The AVX-512 direct conv kernel against its scalar reference, bit for bit: both sum the taps
/// in (c, kh, kw) order from the bias with one fused multiply-add each. Tiles of 1…12 pixels,
/// one and two vectors of channels, stride 1 and 2, dilation, a fused clamp with NaN.
final class DirectConvTests: XCTestCase {
    func testAVX512TilesMatchReferenceBits() throws {
        #if arch(x86_64)
        guard VectorISA.best().avx512 else { throw XCTSkip("no AVX-512 on this CPU") }
        let shapes: [(cin: Int, kH: Int, kW: Int, s: Int, d: Int, outH: Int, outW: Int, cout: Int)] = [
            (3, 3, 3, 1, 1, 3, 29, 40), (5, 3, 3, 2, 1, 2, 13, 32), (2, 5, 3, 1, 2, 2, 12, 7), (4, 7, 7, 2, 1, 1, 25, 17), (6, 1, 3, 3, 1, 2, 9, 33),
        ]
        var rng = TestRandom(seed: 17)
        for sh in shapes {
            let hp = (sh.outH - 1) * sh.s + (sh.kH - 1) * sh.d + 1, wp = (sh.outW - 1) * sh.s + (sh.kW - 1) * sh.d + 1
            var x = rng.floats(sh.cin * hp * wp)
            x[x.count / 3] = .nan
            let k = sh.cin * sh.kH * sh.kW, blocks = (sh.cout + 31) / 32
            let w = rng.floats(sh.cout * k)
            var wt = [Float](repeating: 0, count: blocks * k * 32)
            perch_conv_direct_pack(w, sh.cout, k, &wt)
            let bias = rng.floats(blocks * 32)
            try x.withUnsafeBufferPointer { xb in
                var g = perch_conv_direct(x: xb.baseAddress, planeSize: hp * wp, Wp: wp, cin: sh.cin, kH: sh.kH, kW: sh.kW, sH: sh.s, sW: sh.s,
                                          dH: sh.d, dW: sh.d, outW: sh.outW, outSize: sh.outH * sh.outW)
                for blk in 0..<blocks {
                    let nco = min(32, sh.cout - blk * 32)
                    for clamp in [Int32(0), 1] {
                        for nt in 1...min(12, sh.outW) {
                            for oy in 0..<sh.outH {
                                let ox0 = sh.outW - nt
                                var a = [Float](repeating: 9, count: 32 * sh.outH * sh.outW), b = a
                                let off = oy * sh.outW + ox0
                                wt.withUnsafeBufferPointer { wb in
                                    let wp = wb.baseAddress! + blk * k * 32
                                    let bp = bias.withUnsafeBufferPointer { $0.baseAddress! } + blk * 32
                                    a.withUnsafeMutableBufferPointer {
                                        perch_conv_direct_tile_avx512(&g, wp, bp, oy, ox0, nt, nco, clamp, -0.5, 0.75, $0.baseAddress! + off)
                                    }
                                    b.withUnsafeMutableBufferPointer {
                                        perch_conv_direct_tile_reference(&g, wp, bp, oy, ox0, nt, nco, clamp, -0.5, 0.75, $0.baseAddress! + off)
                                    }
                                }
                                guard a.map(\.bitPattern) == b.map(\.bitPattern) else {
                                    XCTFail("\(sh) block \(blk) nt \(nt) oy \(oy) clamp \(clamp)")
                                    return
                                }
                            }
                        }
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

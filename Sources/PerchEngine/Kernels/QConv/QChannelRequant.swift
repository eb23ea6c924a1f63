import CPerchShims

/// A layer's per-output-channel requantization in the form the fused GEMM epilogues take
/// (`perch_qchannel_requant`): the accumulators start at the column term and leave the kernel as
/// bytes, so no int32 block is written and re-read between the GEMM and a requantization pass.
struct QChannelRequant {
    let add: [Int32]
    let mult: [Int32]
    let right: [Int32]
    let zp: Int32
    let lo: Int32
    let hi: Int32
    /// The AVX-512 epilogue's ready-made constants (see perch_qchannel_requant).
    let mult64: [Int64]
    let round64: [Int64]
    let shift64: [Int64]
    let zpFolded: Bool

    /// nil where the fused epilogue does not apply: weights with zero points (their row sums are
    /// subtracted between the GEMM and the requantization) or a multiplier of 1 or more.
    init?(_ layer: QLinearLayer) {
        guard !layer.needsRowSums, !layer.int32Output, layer.multipliers.allSatisfy({ $0.isRightShift }) else { return nil }
        self.init(add: layer.columnTerm, mult: layer.multipliers.map { $0.multiplier }, right: layer.multipliers.map { -$0.shift },
                  zp: layer.outZero, lo: layer.lo, hi: layer.hi)
    }

    /// Channels with accumulators starting at `add`, multipliers `mult` and right shifts `right` (0...31).
    init(add: [Int32], mult: [Int32], right: [Int32], zp: Int32, lo: Int32, hi: Int32) {
        self.add = add
        self.mult = mult
        self.right = right
        self.zp = zp
        self.lo = lo
        self.hi = hi
        // |x·m| < 2^62 and |zp|·2^(31 + right) ≤ 2^61 keep the folded sum inside int64.
        let fold = right.allSatisfy { $0 <= 22 } && zp >= -256 && zp <= 256
        zpFolded = fold
        mult64 = mult.map { Int64($0) }
        shift64 = right.map { 31 + Int64($0) }
        round64 = right.map { r in (Int64(1) << (30 + Int64(r))) + (fold ? Int64(zp) << (31 + Int64(r)) : 0) }
    }

    /// Calls `body` with the parameters of channels `first...` (channel `first` is the kernel's row 0).
    @inline(__always)
    func withParameters<R>(from first: Int, _ body: (UnsafePointer<perch_qchannel_requant>) -> R) -> R {
        add.withUnsafeBufferPointer { a in
            mult.withUnsafeBufferPointer { m in
                right.withUnsafeBufferPointer { r in
                    mult64.withUnsafeBufferPointer { m64 in
                        round64.withUnsafeBufferPointer { k64 in
                            shift64.withUnsafeBufferPointer { s64 in
                                var p = perch_qchannel_requant(add: a.baseAddress! + first, mult: m.baseAddress! + first,
                                                               right: r.baseAddress! + first, zp: zp, lo: lo, hi: hi,
                                                               mult64: m64.baseAddress! + first, round64: k64.baseAddress! + first,
                                                               shift64: s64.baseAddress! + first, zpFolded: zpFolded ? 1 : 0)
                                return withUnsafePointer(to: &p) { body($0) }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension QConvISA {
    /// Requantized bytes out[n·ldo + p] of the tap GEMM (perch_qconv_taps_q8_*).
    @inline(__always)
    func convTapsRequant(n: Int, p: Int, k4: Int, taps: Int, offsets: UnsafePointer<Int>, x: UnsafePointer<UInt8>, ldx: Int,
                         w: UnsafePointer<Int8>, ldw: Int, requant: UnsafePointer<perch_qchannel_requant>,
                         out: UnsafeMutablePointer<UInt8>, ldo: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qconv_taps_q8_vnni(n, p, k4, taps, offsets, x, ldx, w, ldw, requant, out, ldo)
            return
        }
        #endif
        perch_qconv_taps_q8_scalar(n, p, k4, taps, offsets, x, ldx, w, ldw, requant, out, ldo)
    }

    /// The tap GEMM over the valid pixels of `rows` output rows (`outW` a multiple of 16, grid rows
    /// `wp` long): bytes out[n·ldo + r·outW + ox] (perch_qconv_taps_rows_q8_*).
    @inline(__always)
    func convTapsRowsRequant(n: Int, rows: Int, outW: Int, wp: Int, k4: Int, taps: Int, offsets: UnsafePointer<Int>,
                             x: UnsafePointer<UInt8>, ldx: Int, w: UnsafePointer<Int8>, ldw: Int,
                             requant: UnsafePointer<perch_qchannel_requant>, out: UnsafeMutablePointer<UInt8>, ldo: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qconv_taps_rows_q8_vnni(n, rows * outW, k4, taps, offsets, x, ldx, w, ldw, requant, out, ldo, outW, wp)
            return
        }
        #endif
        for r in 0..<rows {
            perch_qconv_taps_q8_scalar(n, outW, k4, taps, offsets, x + r * wp * 4, ldx, w, ldw, requant, out + r * outW, ldo)
        }
    }

    /// Requantized bytes of the K4 conv GEMM (one tap at offset 0).
    @inline(__always)
    func convK4Requant(n: Int, p: Int, k4: Int, x: UnsafePointer<UInt8>, ldx: Int, w: UnsafePointer<Int8>, ldw: Int,
                       requant: UnsafePointer<perch_qchannel_requant>, out: UnsafeMutablePointer<UInt8>, ldo: Int) {
        #if arch(x86_64)
        if self == .avx512 {
            perch_qconv_k4_q8_vnni(n, p, k4, x, ldx, w, ldw, requant, out, ldo)
            return
        }
        #endif
        var none = 0
        perch_qconv_taps_q8_scalar(n, p, k4, 1, &none, x, ldx, w, ldw, requant, out, ldo)
    }
}

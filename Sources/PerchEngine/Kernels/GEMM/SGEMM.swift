/// Packed, cache-blocked fp32 matrix multiply in plain Swift SIMD, shared by Gemm, MatMul, Conv
/// and ConvTranspose.
///
/// Computes `C = alpha * op(A) * op(B) + (accumulate ? C : 0)` where
/// - `op(A)` is m×k, element (i, p) at `a[i * aRowStride + p * aColStride]` (so a transposed A is
///   just swapped strides),
/// - `op(B)` is k×n, element (p, j) at `b[p * bRowStride + j * bColStride]`,
/// - `C` is m×n row-major with row stride `ldc` (unit column stride).
///
/// `workspace` must hold `sgemmWorkspaceCount(m:n:k:)` floats; it is used to pack panels of A
/// and B so that the 4×16 micro-kernel streams contiguous memory. Does not allocate.
public func sgemm(
    m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    accumulate: Bool,
    workspace: UnsafeMutablePointer<Float>
) {
    if m <= 0 || n <= 0 { return }
    if k <= 0 {
        if !accumulate {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        }
        return
    }
    let kcMax = SGEMMBlocking.kc(k)
    let mcMax = SGEMMBlocking.mc(m)
    let ncMax = SGEMMBlocking.nc(n)
    let packA = workspace
    let packB = workspace + mcMax * kcMax
    let mr = SGEMMBlocking.mr
    let nr = SGEMMBlocking.nr
    var jc = 0
    while jc < n {
        let nc = min(ncMax, n - jc)
        let ncPanels = (nc + nr - 1) / nr
        var pc = 0
        while pc < k {
            let kc = min(kcMax, k - pc)
            // Pack B[pc..<pc+kc, jc..<jc+nc] into column panels of nr, zero-padded.
            for panel in 0..<ncPanels {
                let j0 = jc + panel * nr
                let cols = min(nr, n - j0)
                let dst = packB + panel * kc * nr
                for p in 0..<kc {
                    let row = dst + p * nr
                    let src = b + (pc + p) * bRowStride + j0 * bColStride
                    if cols == nr && bColStride == 1 {
                        row.update(from: src, count: nr)
                    } else {
                        for j in 0..<cols { row[j] = src[j * bColStride] }
                        var j = cols
                        while j < nr { row[j] = 0; j += 1 }
                    }
                }
            }
            let add = accumulate || pc > 0
            var ic = 0
            while ic < m {
                let mc = min(mcMax, m - ic)
                let mcPanels = (mc + mr - 1) / mr
                // Pack alpha * A[ic..<ic+mc, pc..<pc+kc] into row panels of mr, zero-padded.
                for panel in 0..<mcPanels {
                    let i0 = ic + panel * mr
                    let rows = min(mr, m - i0)
                    let dst = packA + panel * kc * mr
                    for r in 0..<mr {
                        if r < rows {
                            let src = a + (i0 + r) * aRowStride + pc * aColStride
                            if alpha == 1 {
                                for p in 0..<kc { dst[p * mr + r] = src[p * aColStride] }
                            } else {
                                for p in 0..<kc { dst[p * mr + r] = alpha * src[p * aColStride] }
                            }
                        } else {
                            for p in 0..<kc { dst[p * mr + r] = 0 }
                        }
                    }
                }
                for jp in 0..<ncPanels {
                    let j0 = jc + jp * nr
                    let cols = min(nr, n - j0)
                    let bp = UnsafePointer(packB + jp * kc * nr)
                    for ip in 0..<mcPanels {
                        let i0 = ic + ip * mr
                        let rows = min(mr, m - i0)
                        sgemmMicro4x16(
                            kc: kc, a: UnsafePointer(packA + ip * kc * mr), b: bp,
                            c: c + i0 * ldc + j0, ldc: ldc, rows: rows, cols: cols, add: add)
                    }
                }
                ic += mc
            }
            pc += kc
        }
        jc += nc
    }
}

/// Floats of workspace `sgemm` needs for these sizes.
public func sgemmWorkspaceCount(m: Int, n: Int, k: Int) -> Int {
    if m <= 0 || n <= 0 || k <= 0 { return 0 }
    return SGEMMBlocking.mc(m) * SGEMMBlocking.kc(k) + SGEMMBlocking.kc(k) * SGEMMBlocking.nc(n)
}

enum SGEMMBlocking {
    static let mr = 4
    static let nr = 16
    static let kcBlock = 256
    static let mcBlock = 128
    static let ncBlock = 2048
    static func kc(_ k: Int) -> Int { min(kcBlock, k) }
    static func mc(_ m: Int) -> Int { min(mcBlock, (m + mr - 1) / mr * mr) }
    static func nc(_ n: Int) -> Int { min(ncBlock, (n + nr - 1) / nr * nr) }
}

/// 4×16 register tile: `a` is a packed panel (kc × 4), `b` a packed panel (kc × 16).
@inline(__always)
func sgemmMicro4x16(
    kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, cols: Int, add: Bool
) {
    var c0l = SIMD8<Float>(), c0h = SIMD8<Float>()
    var c1l = SIMD8<Float>(), c1h = SIMD8<Float>()
    var c2l = SIMD8<Float>(), c2h = SIMD8<Float>()
    var c3l = SIMD8<Float>(), c3h = SIMD8<Float>()
    let braw = UnsafeRawPointer(b)
    var ap = a
    for p in 0..<kc {
        let bl = braw.loadUnaligned(fromByteOffset: p * 64, as: SIMD8<Float>.self)
        let bh = braw.loadUnaligned(fromByteOffset: p * 64 + 32, as: SIMD8<Float>.self)
        let a0 = SIMD8<Float>(repeating: ap[0])
        let a1 = SIMD8<Float>(repeating: ap[1])
        let a2 = SIMD8<Float>(repeating: ap[2])
        let a3 = SIMD8<Float>(repeating: ap[3])
        c0l += a0 * bl; c0h += a0 * bh
        c1l += a1 * bl; c1h += a1 * bh
        c2l += a2 * bl; c2h += a2 * bh
        c3l += a3 * bl; c3h += a3 * bh
        ap += 4
    }
    if rows == 4 && cols == 16 {
        sgemmStoreRow(c, c0l, c0h, add)
        sgemmStoreRow(c + ldc, c1l, c1h, add)
        sgemmStoreRow(c + 2 * ldc, c2l, c2h, add)
        sgemmStoreRow(c + 3 * ldc, c3l, c3h, add)
        return
    }
    for r in 0..<rows {
        let lo: SIMD8<Float>
        let hi: SIMD8<Float>
        switch r {
        case 0: lo = c0l; hi = c0h
        case 1: lo = c1l; hi = c1h
        case 2: lo = c2l; hi = c2h
        default: lo = c3l; hi = c3h
        }
        let row = c + r * ldc
        for j in 0..<cols {
            let v = j < 8 ? lo[j] : hi[j - 8]
            row[j] = add ? row[j] + v : v
        }
    }
}

@inline(__always)
func sgemmStoreRow(_ c: UnsafeMutablePointer<Float>, _ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ add: Bool) {
    let raw = UnsafeMutableRawPointer(c)
    if add {
        let ol = raw.loadUnaligned(as: SIMD8<Float>.self)
        let oh = raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        raw.storeBytes(of: ol + lo, as: SIMD8<Float>.self)
        raw.storeBytes(of: oh + hi, toByteOffset: 32, as: SIMD8<Float>.self)
    } else {
        raw.storeBytes(of: lo, as: SIMD8<Float>.self)
        raw.storeBytes(of: hi, toByteOffset: 32, as: SIMD8<Float>.self)
    }
}

/// Scalar reference for `sgemm` (same contract, no workspace), accumulating in Double. Used by
/// tests to check the packed kernel.
public func sgemmReference(
    m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    accumulate: Bool
) {
    for i in 0..<max(m, 0) {
        for j in 0..<max(n, 0) {
            var s: Double = 0
            for p in 0..<max(k, 0) {
                s += Double(a[i * aRowStride + p * aColStride]) * Double(b[p * bRowStride + j * bColStride])
            }
            let v = Float(Double(alpha) * s)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + v : v
        }
    }
}

#ifndef CPERCH_QGEMM_SIMD_H
#define CPERCH_QGEMM_SIMD_H
// AVX2 and aarch64 (NEON, dotprod) forms of the two K4-layout int8 GEMMs of CPerchQConv.h:
//
// - conv:      C[n][p] = sum_k W[n][k] * X[k][p], X uint8 as [K4][ldx][4], W int8 rows;
// - row-major: C[m][n] = sum_k A[m][k] * B[k][n], B int8 as [K4][ldb][4], A uint8 rows.
//
// Both are "R broadcast rows × a vector of columns" over the same layout: the vector operand V
// (X or B: 4 consecutive k of one column in one 32-bit word) and the broadcast operand S (W or A
// rows, 4*K4 bytes, zero padded). They differ only in which operand is signed, so each ISA has
// one tile body with a `vecSigned` switch (0: V uint8 / S int8 = conv; 1: V int8 / S uint8 =
// row-major). Every path computes the exact int32 sum, bit for bit the scalar reference:
//
// - AVX2: both operands widened to int16, vpmaddwd (exact pair sums of products |p| <= 32640),
//   per-column pairs added at the end;
// - NEON: vld4 deinterleaves 8 columns × 4 k, widened to int16, smlal by a lane of the row;
// - dotprod: V is flipped with XOR 0x80 so both operands have one signedness: conv uses SDOT
//   (x − 128)·w and adds 128·Σw per row; row-major uses UDOT a·(b + 128) and subtracts 128·Σa per
//   row (the uint32 sums wrap exactly like the int32 ones);
// - i8mm: USDOT (uint8 × int8 dot products of 4) straight on the operands.
//
// V is read only for the columns asked for (tails use masked / lane loads), C only written there.
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "CPerchQConv.h"

/// Columns per panel of perch_qgemv_panels_avx2's B (its 12-column tile).
#define PERCH_GEMV_PANEL 12

#if defined(__x86_64__)
#include <immintrin.h>

#define PERCH_AVX2_TARGET __attribute__((target("avx2")))
#define PERCH_AVX2_INLINE __attribute__((target("avx2"), always_inline)) static inline

/// R rows × G groups of 4 columns (G <= 3). `left` columns are valid (masked loads/stores when
/// left < 4*G). V points at the tile's first column (k4 row stride 4*ldv bytes); S at its first row.
PERCH_AVX2_INLINE void perch_k4_tile_avx2(int R, int G, int masked, int vecSigned, size_t K4, const uint8_t *V, size_t ldv,
                                          const uint8_t *S, size_t lds, int32_t *C, size_t ldc, size_t left) {
    __m256i acc[4][3];
    PERCH_UNROLL
    for (int r = 0; r < R; r++)
        PERCH_UNROLL
        for (int g = 0; g < G; g++) acc[r][g] = _mm256_setzero_si256();
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
    __m128i lm[3];
    PERCH_UNROLL
    for (int g = 0; g < G; g++) lm[g] = _mm_cmpgt_epi32(_mm_set1_epi32((int)left - 4 * g), lane);
    for (size_t k4 = 0; k4 < K4; k4++) {
        const uint8_t *v = V + k4 * ldv * 4;
        __m256i x[3];
        PERCH_UNROLL
        for (int g = 0; g < G; g++) {
            __m128i raw = masked ? _mm_maskload_epi32((const int *)(const void *)(v + 16 * g), lm[g])
                                 : _mm_loadu_si128((const __m128i *)(const void *)(v + 16 * g));
            x[g] = vecSigned ? _mm256_cvtepi8_epi16(raw) : _mm256_cvtepu8_epi16(raw);
        }
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            int32_t s4;
            memcpy(&s4, S + r * lds + 4 * k4, 4);
            __m128i b = _mm_set1_epi32(s4);
            __m256i w = vecSigned ? _mm256_cvtepu8_epi16(b) : _mm256_cvtepi8_epi16(b);
            PERCH_UNROLL
            for (int g = 0; g < G; g++) acc[r][g] = _mm256_add_epi32(acc[r][g], _mm256_madd_epi16(x[g], w));
        }
    }
    // Lane pairs (k0+k1, k2+k3) of each column → one sum: hadd, then undo its lane interleave.
    const __m256i lane8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i sm0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lane8);
    const __m128i sm1 = _mm_cmpgt_epi32(_mm_set1_epi32((int)left - 8), lane);
    PERCH_UNROLL
    for (int r = 0; r < R; r++) {
        int32_t *c = C + r * ldc;
        __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], G > 1 ? acc[r][1] : acc[r][0]), 0xD8);
        if (G == 1) {
            if (masked) _mm_maskstore_epi32(c, _mm256_castsi256_si128(sm0), _mm256_castsi256_si128(lo));
            else _mm_storeu_si128((__m128i *)(void *)c, _mm256_castsi256_si128(lo));
            continue;
        }
        if (masked) _mm256_maskstore_epi32(c, sm0, lo);
        else _mm256_storeu_si256((__m256i *)(void *)c, lo);
        if (G == 3) {
            __m128i hi = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][2]), 0xD8));
            if (masked) _mm_maskstore_epi32(c + 8, sm1, hi);
            else _mm_storeu_si128((__m128i *)(void *)(c + 8), hi);
        }
    }
}

/// Rows in tiles of 4 for one block of columns (G groups, constant after inlining).
PERCH_AVX2_INLINE void perch_k4_rows_avx2(int G, int masked, int vecSigned, size_t rows, size_t K4, const uint8_t *V, size_t ldv,
                                          const uint8_t *S, size_t lds, int32_t *C, size_t ldc, size_t left) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) perch_k4_tile_avx2(4, G, masked, vecSigned, K4, V, ldv, S + r * lds, lds, C + r * ldc, ldc, left);
    switch (rows - r) {
    case 3: perch_k4_tile_avx2(3, G, masked, vecSigned, K4, V, ldv, S + r * lds, lds, C + r * ldc, ldc, left); break;
    case 2: perch_k4_tile_avx2(2, G, masked, vecSigned, K4, V, ldv, S + r * lds, lds, C + r * ldc, ldc, left); break;
    case 1: perch_k4_tile_avx2(1, G, masked, vecSigned, K4, V, ldv, S + r * lds, lds, C + r * ldc, ldc, left); break;
    default: break;
    }
}

/// C[r][col] = sum_k S[r][k] * V[k][col] for r < rows, col < cols: blocks of 12 columns.
PERCH_AVX2_INLINE void perch_k4_avx2(int vecSigned, size_t rows, size_t cols, size_t K4, const uint8_t *V, size_t ldv,
                                     const uint8_t *S, size_t lds, int32_t *C, size_t ldc) {
    size_t p = 0;
    for (; p + 12 <= cols; p += 12) perch_k4_rows_avx2(3, 0, vecSigned, rows, K4, V + 4 * p, ldv, S, lds, C + p, ldc, 12);
    size_t left = cols - p;
    if (left > 8) perch_k4_rows_avx2(3, 1, vecSigned, rows, K4, V + 4 * p, ldv, S, lds, C + p, ldc, left);
    else if (left > 4) perch_k4_rows_avx2(2, 1, vecSigned, rows, K4, V + 4 * p, ldv, S, lds, C + p, ldc, left);
    else if (left > 0) perch_k4_rows_avx2(1, 1, vecSigned, rows, K4, V + 4 * p, ldv, S, lds, C + p, ldc, left);
}

/// AVX2 K4 conv GEMM (same contract as perch_qconv_k4_scalar).
PERCH_AVX2_TARGET static inline void perch_qconv_k4_avx2(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx,
                                                         const int8_t *W, size_t ldw, int32_t *C, size_t ldc) {
    perch_k4_avx2(0, N, P, K4, X, ldx, (const uint8_t *)W, ldw, C, ldc);
}

/// AVX2 row-major GEMM (same contract as perch_qgemm_rm_scalar).
PERCH_AVX2_TARGET static inline void perch_qgemm_rm_avx2(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda,
                                                         const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    perch_k4_avx2(1, M, N, K4, (const uint8_t *)B, ldb, A, lda, C, ldc);
}

/// Row-major C = A·B (same sums as perch_qgemm_rm_scalar) for a few rows of A — a classifier's
/// GEMV — with B packed in panels of PERCH_GEMV_PANEL columns, each [K4][12][4] and contiguous
/// (panel j at Bp + 48·K4·j, the last one zero padded): the kernel streams each panel front to
/// back, where the row-major layout read 48 bytes of every 4·ldb-byte row of B. 1×1280 by
/// 1280×1000 on Zen 3: 0.07 → 0.03 ms with B in cache, 0.25 → 0.10 ms with it cold.
PERCH_AVX2_TARGET static inline void perch_qgemv_panels_avx2(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda, const int8_t *Bp,
                                                             int32_t *C, size_t ldc) {
    for (size_t p0 = 0; p0 < N; p0 += PERCH_GEMV_PANEL) {
        size_t w = N - p0 < PERCH_GEMV_PANEL ? N - p0 : PERCH_GEMV_PANEL;
        perch_k4_avx2(1, M, w, K4, (const uint8_t *)(Bp + p0 * K4 * 4), PERCH_GEMV_PANEL, A, lda, C + p0, ldc);
    }
}

/// AVX2 depthwise row with taps in pairs: the bytes of two tap rows interleaved and widened to
/// int16, one vpmaddwd by the (w[t], w[t+1]) int16 pair gives r_t·w_t + r_t+1·w_t+1 exactly
/// (|w| <= 255: 8-bit weights minus their zero point; other weights take perch_qdw_row_avx2).
/// 16 outputs per step, then 8, then a scalar tail; same sums as perch_qdw_row_scalar.
PERCH_AVX2_TARGET static inline void perch_qdw_row_avx2_pairs(const uint8_t *const *rows, const int32_t *w, size_t taps, size_t n,
                                                              int32_t init, int32_t *acc) {
    int32_t wp[64];
    size_t pairs = (taps + 1) / 2;
    int fits = pairs <= 64;
    for (size_t t = 0; t < taps && fits; t++) fits = w[t] >= -32768 && w[t] <= 32767;
    if (!fits) {
        perch_qdw_row_avx2(rows, w, taps, n, init, acc);
        return;
    }
    for (size_t i = 0; i < pairs; i++) {
        uint32_t w1 = 2 * i + 1 < taps ? (uint32_t)w[2 * i + 1] : 0;
        wp[i] = (int32_t)(((uint32_t)w[2 * i] & 0xFFFFu) | (w1 << 16));
    }
    const __m256i vinit = _mm256_set1_epi32(init);
    const __m128i zero = _mm_setzero_si128();
    size_t x = 0;
    for (; x + 16 <= n; x += 16) {
        __m256i a0 = vinit, a1 = vinit;
        for (size_t i = 0; i < pairs; i++) {
            __m128i r0 = _mm_loadu_si128((const __m128i *)(const void *)(rows[2 * i] + x));
            __m128i r1 = 2 * i + 1 < taps ? _mm_loadu_si128((const __m128i *)(const void *)(rows[2 * i + 1] + x)) : zero;
            __m256i vw = _mm256_set1_epi32(wp[i]);
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r0, r1)), vw));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(r0, r1)), vw));
        }
        _mm256_storeu_si256((__m256i *)(void *)(acc + x), a0);
        _mm256_storeu_si256((__m256i *)(void *)(acc + x + 8), a1);
    }
    for (; x + 8 <= n; x += 8) {
        __m256i a0 = vinit;
        for (size_t i = 0; i < pairs; i++) {
            __m128i r0 = _mm_loadl_epi64((const __m128i *)(const void *)(rows[2 * i] + x));
            __m128i r1 = 2 * i + 1 < taps ? _mm_loadl_epi64((const __m128i *)(const void *)(rows[2 * i + 1] + x)) : zero;
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(r0, r1)), _mm256_set1_epi32(wp[i])));
        }
        _mm256_storeu_si256((__m256i *)(void *)(acc + x), a0);
    }
    for (; x < n; x++) {
        acc[x] = init;
        for (size_t t = 0; t < taps; t++) acc[x] += (int32_t)rows[t][x] * w[t];
    }
}

/// floor((x·mult + 2^(30 + right)) / 2^(31 + right)) in 8 int32 lanes: perch_requant1 without
/// the left shift, zero point and clamp, from bits 31..62 of the 64-bit sums, then >> right.
/// vmult / vmultOdd hold the even / odd lanes' multipliers in the low dword of each 64-bit lane,
/// ke / ko the even / odd lanes' 2^(30 + right) as 64-bit values.
PERCH_AVX2_INLINE __m256i perch_requant_mul8_avx2(__m256i x, __m256i vmult, __m256i vmultOdd, __m256i ke, __m256i ko,
                                                  __m256i vright) {
    __m256i pe = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, vmult), ke), 31);
    __m256i po = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), vmultOdd), ko), 1);
    return _mm256_srav_epi32(_mm256_blend_epi32(pe, po, 0xAA), vright);
}

/// perch_requant_mul8_avx2's rounding terms for per-lane right shifts `vright` (as
/// perch_requant16_avx512): 2^(30 + right) of the even lanes in `ke`, of the odd lanes in `ko`.
PERCH_AVX2_INLINE void perch_requant_round8_avx2(__m256i vright, __m256i *ke, __m256i *ko) {
    const __m256i one = _mm256_set1_epi64x(1), thirty = _mm256_set1_epi64x(30);
    *ke = _mm256_sllv_epi64(one, _mm256_add_epi64(_mm256_and_si256(vright, _mm256_set1_epi64x(0xFFFFFFFF)), thirty));
    *ko = _mm256_sllv_epi64(one, _mm256_add_epi64(_mm256_srli_epi64(vright, 32), thirty));
}

/// Four vectors of 8 requantized int32 (before the zero point) → 32 bytes in lane order: saturating
/// packs to int16, the zero point added on int16 (`zp16`), packs to bytes (signed when `sig`, for
/// int8 outputs) and the clamp on bytes. The packs saturate monotonically, so this equals adding
/// the zero point and clamping each int32 to [lo, hi] ⊆ the byte range.
PERCH_AVX2_INLINE __m256i perch_requant_narrow32_avx2(__m256i y0, __m256i y1, __m256i y2, __m256i y3, __m256i zp16, int sig,
                                                      __m256i lo8, __m256i hi8) {
    // packs per 128-bit lane: a = (y0 lo, y1 lo, y0 hi, y1 hi) as int16, likewise b.
    __m256i a = _mm256_adds_epi16(_mm256_packs_epi32(y0, y1), zp16);
    __m256i b = _mm256_adds_epi16(_mm256_packs_epi32(y2, y3), zp16);
    __m256i q = sig ? _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(a, b), lo8), hi8)
                    : _mm256_min_epu8(_mm256_max_epu8(_mm256_packus_epi16(a, b), lo8), hi8);
    // Bytes are in 4-byte runs ordered y0a y1a y2a y3a y0b y1b y2b y3b (a/b: the two 128-bit
    // halves of each y); put each y's 8 bytes back in order.
    return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/// 8 lanes of perch_requant1; vmult holds the multiplier in the low dword of each 64-bit lane
/// (even columns) and `vmultOdd` in the low dword for the odd columns; left/right shift per lane
/// (right at most 31).
PERCH_AVX2_INLINE __m256i perch_requant8_avx2(__m256i x, __m256i vleft, __m256i vright, int anyLeft, __m256i vmult,
                                              __m256i vmultOdd, __m256i vzp, __m256i vlo, __m256i vhi) {
    if (anyLeft) {
        // Saturating left shift: x << left clamps to INT32_MAX / INT32_MIN when it overflows.
        __m256i hiT = _mm256_srav_epi32(_mm256_set1_epi32(INT32_MAX), vleft);
        __m256i loT = _mm256_srav_epi32(_mm256_set1_epi32(INT32_MIN), vleft);
        __m256i over = _mm256_cmpgt_epi32(x, hiT), under = _mm256_cmpgt_epi32(loT, x);
        x = _mm256_sllv_epi32(x, vleft);
        x = _mm256_blendv_epi8(x, _mm256_set1_epi32(INT32_MAX), over);
        x = _mm256_blendv_epi8(x, _mm256_set1_epi32(INT32_MIN), under);
    }
    __m256i ke, ko;
    perch_requant_round8_avx2(vright, &ke, &ko);
    __m256i y = _mm256_add_epi32(perch_requant_mul8_avx2(x, vmult, vmultOdd, ke, ko, vright), vzp);
    return _mm256_min_epi32(_mm256_max_epi32(y, vlo), vhi);
}

/// Low bytes of 8 int32 lanes → 8 bytes at out.
PERCH_AVX2_INLINE void perch_store8_lowbytes_avx2(__m256i y, uint8_t *out) {
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i b = _mm256_shuffle_epi8(y, pick);
    __m128i v = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    _mm_storel_epi64((__m128i *)(void *)out, v);
}

/// The conv GEMM with the weights widened to int16 once, when the layer is prepared: W16 rows of
/// 4·K4 int16, `ldw` apart. Each k4 step broadcasts one 8-byte group of 4 weights per row from
/// memory (no per-step sign extension, which took a shuffle uop per row and left too few registers
/// for the accumulators), widens 8 pixels of X once, and runs R ≤ 6 rows × G ≤ 2 groups of 4
/// pixels: 12 accumulators, two X vectors, one weight vector. 25–35% faster than perch_k4_tile_avx2
/// on MobileNetV2's 1×1 convs (Zen 3). Still one vpaddd per vpmaddwd: ONNX Runtime's AVX2 kernel
/// adds half as often with vpmaddubsw, whose int16 pair sums saturate (not exact).
/// `vecSigned`: X holds int8 (the row-major GEMM's weights) instead of uint8.
PERCH_AVX2_INLINE void perch_k4w16_tile_avx2(int R, int G, int masked, int vecSigned, size_t K4, const uint8_t *X, size_t ldx,
                                             const int16_t *W, size_t ldw, int32_t *C, size_t ldc, size_t left) {
    __m256i acc[6][2];
    PERCH_UNROLL
    for (int r = 0; r < R; r++)
        PERCH_UNROLL
        for (int g = 0; g < G; g++) acc[r][g] = _mm256_setzero_si256();
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
    __m128i lm[2];
    PERCH_UNROLL
    for (int g = 0; g < G; g++) lm[g] = _mm_cmpgt_epi32(_mm_set1_epi32((int)left - 4 * g), lane);
    for (size_t k4 = 0; k4 < K4; k4++) {
        const uint8_t *v = X + k4 * ldx * 4;
        __m256i x[2];
        PERCH_UNROLL
        for (int g = 0; g < G; g++) {
            __m128i raw = masked ? _mm_maskload_epi32((const int *)(const void *)(v + 16 * g), lm[g])
                                 : _mm_loadu_si128((const __m128i *)(const void *)(v + 16 * g));
            x[g] = vecSigned ? _mm256_cvtepi8_epi16(raw) : _mm256_cvtepu8_epi16(raw);
        }
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            int64_t w4;
            memcpy(&w4, W + r * ldw + 4 * k4, 8);
            __m256i w = _mm256_set1_epi64x(w4);
            PERCH_UNROLL
            for (int g = 0; g < G; g++) acc[r][g] = _mm256_add_epi32(acc[r][g], _mm256_madd_epi16(x[g], w));
        }
    }
    const __m256i lane8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i sm = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lane8);
    PERCH_UNROLL
    for (int r = 0; r < R; r++) {
        __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], G > 1 ? acc[r][1] : acc[r][0]), 0xD8);
        int32_t *c = C + r * ldc;
        if (G == 1) {
            if (masked) _mm_maskstore_epi32(c, _mm256_castsi256_si128(sm), _mm256_castsi256_si128(s));
            else _mm_storeu_si128((__m128i *)(void *)c, _mm256_castsi256_si128(s));
        } else if (masked) {
            _mm256_maskstore_epi32(c, sm, s);
        } else {
            _mm256_storeu_si256((__m256i *)(void *)c, s);
        }
    }
}

PERCH_AVX2_INLINE void perch_k4w16_rows_avx2(int G, int masked, int vecSigned, size_t rows, size_t K4, const uint8_t *X, size_t ldx,
                                             const int16_t *W, size_t ldw, int32_t *C, size_t ldc, size_t left) {
    size_t r = 0;
#define PERCH_K4W16_TILE(R) perch_k4w16_tile_avx2(R, G, masked, vecSigned, K4, X, ldx, W + r * ldw, ldw, C + r * ldc, ldc, left)
    for (; r + 6 <= rows; r += 6) PERCH_K4W16_TILE(6);
    switch (rows - r) {
    case 5: PERCH_K4W16_TILE(5); break;
    case 4: PERCH_K4W16_TILE(4); break;
    case 3: PERCH_K4W16_TILE(3); break;
    case 2: PERCH_K4W16_TILE(2); break;
    case 1: PERCH_K4W16_TILE(1); break;
    default: break;
    }
#undef PERCH_K4W16_TILE
}

/// C[n][p] = Σ_k W16[n][k]·X[k][p] (X in the K4 layout as perch_qconv_k4_scalar; W16: int16
/// rows of 4·K4, `ldw` apart). Wide blocks (P ≥ 128) run a tile of 6 weight rows (in L1) over
/// every 8 columns; narrow ones every 6 rows over each 8 columns (the block of X stays in L1).
/// 1×1 convs of MobileNetV2 ran 15–30% faster in the wide order, late 7×7 layers in the narrow one.
PERCH_AVX2_TARGET static inline void perch_qconv_k4w16_avx2(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx,
                                                            const int16_t *W, size_t ldw, int32_t *C, size_t ldc) {
    size_t row0 = 0;
    if (P >= 128) {
        for (; row0 + 6 <= N; row0 += 6) {
            size_t q = 0;
            for (; q + 8 <= P; q += 8)
                perch_k4w16_tile_avx2(6, 2, 0, 0, K4, X + 4 * q, ldx, W + row0 * ldw, ldw, C + row0 * ldc + q, ldc, 8);
            if (q < P) perch_k4w16_rows_avx2(2, 1, 0, 6, K4, X + 4 * q, ldx, W + row0 * ldw, ldw, C + row0 * ldc + q, ldc, P - q);
        }
        if (row0 == N) return;
    }
    size_t p = 0, rows = N - row0;
    const int16_t *Wr = W + row0 * ldw;
    int32_t *Cr = C + row0 * ldc;
    for (; p + 8 <= P; p += 8) perch_k4w16_rows_avx2(2, 0, 0, rows, K4, X + 4 * p, ldx, Wr, ldw, Cr + p, ldc, 8);
    size_t left = P - p;
    if (left > 4) perch_k4w16_rows_avx2(2, 1, 0, rows, K4, X + 4 * p, ldx, Wr, ldw, Cr + p, ldc, left);
    else if (left > 0) perch_k4w16_rows_avx2(1, 1, 0, rows, K4, X + 4 * p, ldx, Wr, ldw, Cr + p, ldc, left);
}

/// Row-major C[m][n] = Σ_k A[m][k]·B[k][n] (same contract as perch_qgemm_rm_scalar) on the
/// widened-operand tiles: each block of up to 6 rows of A is widened to int16 once (on the stack,
/// so K4 ≤ 512) and broadcast against every 8 columns of B, whose int8 groups are sign-extended as
/// they are read. The transformer's MatMuls (64 rows) ran 15–50% faster than with
/// perch_k4_tile_avx2, which extends A's bytes again for every block of 12 columns; with fewer
/// than 4 rows (a classifier's GEMV) that kernel's wider column blocks win, and it takes them.
PERCH_AVX2_TARGET static inline void perch_qgemm_rm_w16_avx2(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda, const int8_t *B,
                                                             size_t ldb, int32_t *C, size_t ldc) {
    if (K4 > 512 || M < 4) {
        perch_k4_avx2(1, M, N, K4, (const uint8_t *)B, ldb, A, lda, C, ldc);
        return;
    }
    int16_t a16[6 * 2048];
    const size_t K = 4 * K4;
    // Column blocks whose part of B (K4·NB·4 bytes) stays in L2 while every 6-row tile of A
    // passes over it: a recognizer's 20×1024 by 1024×8210 classifier streamed its 8 MB of B from
    // memory once per tile, four times. Re-widening the tile's rows per block costs K per row.
    size_t NB = (256 * 1024 / (4 * K4)) / 8 * 8;
    if (NB < 64) NB = 64;
    for (size_t c0 = 0; c0 < N; c0 += NB) {
        const size_t end = N - c0 < NB ? N : c0 + NB;
        for (size_t r0 = 0; r0 < M; r0 += 6) {
            size_t R = M - r0 < 6 ? M - r0 : 6;
            for (size_t r = 0; r < R; r++) {
                const uint8_t *src = A + (r0 + r) * lda;
                int16_t *dst = a16 + r * K;
                size_t k = 0;
                for (; k + 16 <= K; k += 16)
                    _mm256_storeu_si256((__m256i *)(void *)(dst + k), _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(src + k))));
                for (; k < K; k++) dst[k] = src[k];
            }
            int32_t *Cr = C + r0 * ldc;
            size_t p = c0;
            for (; p + 8 <= end; p += 8) perch_k4w16_rows_avx2(2, 0, 1, R, K4, (const uint8_t *)B + 4 * p, ldb, a16, K, Cr + p, ldc, 8);
            size_t left = end - p;
            if (left > 4) perch_k4w16_rows_avx2(2, 1, 1, R, K4, (const uint8_t *)B + 4 * p, ldb, a16, K, Cr + p, ldc, left);
            else if (left > 0) perch_k4w16_rows_avx2(1, 1, 1, R, K4, (const uint8_t *)B + 4 * p, ldb, a16, K, Cr + p, ldc, left);
        }
    }
}

/// AVX2 perch_qrequant_row (one multiplier): without a left shift (multipliers below 1, the
/// usual case) 32 outputs per step, whose zero point and clamp run on packed int16 and bytes (the
/// saturating packs are monotone, so clamping after them equals clamping the int32 value; about
/// a third fewer instructions per output than the 8-lane path, which in a 16→96 1×1 conv took
/// 31% of the model's time against the GEMM's 36%); then 8 at a time; scalar tail. `lo` < 0 means
/// int8 output (signed packs). A value within 255 of INT32_MAX before the zero point (only
/// reachable with sums near 2^31 and a multiplier near 1) clamps instead of wrapping.
PERCH_AVX2_TARGET static inline void perch_qrequant_row_avx2(const int32_t *acc, size_t n, int32_t add, int32_t mult,
                                                             int32_t shift, int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const __m256i vleft = _mm256_set1_epi32(left), vright = _mm256_set1_epi32(right), vmult = _mm256_set1_epi64x(mult),
                  vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi),
                  vadd = _mm256_set1_epi32(add);
    size_t i = 0;
    if (left == 0 && n >= 32) {
        const __m256i round = _mm256_set1_epi64x((int64_t)1 << (30 + right)), zp16 = _mm256_set1_epi16((int16_t)zp);
        const int sig = lo < 0;
        const __m256i lo8 = _mm256_set1_epi8((char)lo), hi8 = _mm256_set1_epi8((char)hi);
        for (; i + 32 <= n; i += 32) {
            __m256i y[4];
            for (int j = 0; j < 4; j++)
                y[j] = perch_requant_mul8_avx2(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + i + 8 * j)), vadd),
                                               vmult, vmult, round, round, vright);
            _mm256_storeu_si256((__m256i *)(void *)(out + i), perch_requant_narrow32_avx2(y[0], y[1], y[2], y[3], zp16, sig, lo8, hi8));
        }
    }
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + i)), vadd);
        perch_store8_lowbytes_avx2(perch_requant8_avx2(x, vleft, vright, left > 0, vmult, vmult, vzp, vlo, vhi), out + i);
    }
    for (; i < n; i++) out[i] = (uint8_t)perch_requant1((int32_t)((uint32_t)acc[i] + (uint32_t)add), mult, shift, zp, lo, hi);
}

PERCH_AVX2_TARGET static inline void perch_qrequant_rows_avx2(const int32_t *acc, size_t lda, size_t n, size_t rows, int32_t add,
                                                              int32_t mult, int32_t shift, int32_t zp, int32_t lo, int32_t hi,
                                                              uint8_t *out, size_t ldo) {
    for (size_t r = 0; r < rows; r++) perch_qrequant_row_avx2(acc + r * lda, n, add, mult, shift, zp, lo, hi, out + r * ldo);
}

/// AVX2 perch_qrequant_cols (a multiplier and shift per column; any shift sign), scalar tail.
PERCH_AVX2_TARGET static inline void perch_qrequant_cols_avx2(const int32_t *acc, size_t n, const int32_t *add,
                                                              const int32_t *mult, const int32_t *shift, int32_t zp, int32_t lo,
                                                              int32_t hi, uint8_t *out) {
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi), z = _mm256_setzero_si256();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + j)),
                                     _mm256_loadu_si256((const __m256i *)(const void *)(add + j)));
        __m256i vm = _mm256_loadu_si256((const __m256i *)(const void *)(mult + j));
        __m256i vs = _mm256_loadu_si256((const __m256i *)(const void *)(shift + j));
        __m256i vleft = _mm256_max_epi32(vs, z), vright = _mm256_max_epi32(_mm256_sub_epi32(z, vs), z);
        int anyLeft = !_mm256_testz_si256(vleft, vleft);
        perch_store8_lowbytes_avx2(perch_requant8_avx2(x, vleft, vright, anyLeft, vm, _mm256_srli_epi64(vm, 32), vzp, vlo, vhi),
                                   out + j);
    }
    for (; j < n; j++)
        out[j] = (uint8_t)perch_requant1((int32_t)((uint32_t)acc[j] + (uint32_t)add[j]), mult[j], shift[j], zp, lo, hi);
}
#endif  // __x86_64__

#if defined(__aarch64__)
#include <arm_neon.h>

#define PERCH_NEON_INLINE __attribute__((always_inline)) static inline

/// Loads 8 columns × 4 k of V deinterleaved (one int16x8 per k); only `left` (< 8) columns in a
/// tail, the others zero.
PERCH_NEON_INLINE uint8x8x4_t perch_k4_ld4_neon(const uint8_t *v, size_t left) {
    if (left >= 8) return vld4_u8(v);
    uint8x8x4_t x;
    x.val[0] = x.val[1] = x.val[2] = x.val[3] = vdup_n_u8(0);
    x = vld4_lane_u8(v, x, 0);
    if (left > 1) x = vld4_lane_u8(v + 4, x, 1);
    if (left > 2) x = vld4_lane_u8(v + 8, x, 2);
    if (left > 3) x = vld4_lane_u8(v + 12, x, 3);
    if (left > 4) x = vld4_lane_u8(v + 16, x, 4);
    if (left > 5) x = vld4_lane_u8(v + 20, x, 5);
    if (left > 6) x = vld4_lane_u8(v + 24, x, 6);
    return x;
}

/// Stores 8 int32 (two vectors) or the first `left` of them.
PERCH_NEON_INLINE void perch_store8_s32_neon(int32_t *c, int32x4_t a, int32x4_t b, size_t left) {
    if (left >= 8) {
        vst1q_s32(c, a);
        vst1q_s32(c + 4, b);
        return;
    }
    int32_t t[8];
    vst1q_s32(t, a);
    vst1q_s32(t + 4, b);
    for (size_t i = 0; i < left; i++) c[i] = t[i];
}

/// NEON tile: R rows (<= 8) × 8 columns; 2R accumulators, smlal by a lane of the row's 4 k.
PERCH_NEON_INLINE void perch_k4_tile_neon(int R, int vecSigned, size_t K4, const uint8_t *V, size_t ldv, const uint8_t *S,
                                          size_t lds, int32_t *C, size_t ldc, size_t left) {
    int32x4_t acc[8][2];
    PERCH_UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
    for (size_t k4 = 0; k4 < K4; k4++) {
        uint8x8x4_t raw = perch_k4_ld4_neon(V + k4 * ldv * 4, left);
        int16x8_t x[4];
        PERCH_UNROLL
        for (int j = 0; j < 4; j++)
            x[j] = vecSigned ? vmovl_s8(vreinterpret_s8_u8(raw.val[j])) : vreinterpretq_s16_u16(vmovl_u8(raw.val[j]));
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            uint32_t s4;
            memcpy(&s4, S + r * lds + 4 * k4, 4);
            uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(s4));
            int16x4_t w = vget_low_s16(vecSigned ? vreinterpretq_s16_u16(vmovl_u8(b)) : vmovl_s8(vreinterpret_s8_u8(b)));
            acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(x[0]), w, 0);
            acc[r][1] = vmlal_high_lane_s16(acc[r][1], x[0], w, 0);
            acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(x[1]), w, 1);
            acc[r][1] = vmlal_high_lane_s16(acc[r][1], x[1], w, 1);
            acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(x[2]), w, 2);
            acc[r][1] = vmlal_high_lane_s16(acc[r][1], x[2], w, 2);
            acc[r][0] = vmlal_lane_s16(acc[r][0], vget_low_s16(x[3]), w, 3);
            acc[r][1] = vmlal_high_lane_s16(acc[r][1], x[3], w, 3);
        }
    }
    PERCH_UNROLL
    for (int r = 0; r < R; r++) perch_store8_s32_neon(C + r * ldc, acc[r][0], acc[r][1], left);
}

/// C[r][col] = sum_k S[r][k] * V[k][col]: blocks of 8 columns × 8 rows.
PERCH_NEON_INLINE void perch_k4_neon(int vecSigned, size_t rows, size_t cols, size_t K4, const uint8_t *V, size_t ldv,
                                     const uint8_t *S, size_t lds, int32_t *C, size_t ldc) {
    for (size_t p = 0; p < cols; p += 8) {
        size_t left = cols - p;
        const uint8_t *v = V + 4 * p;
        int32_t *c = C + p;
        size_t r = 0;
        for (; r + 8 <= rows; r += 8) perch_k4_tile_neon(8, vecSigned, K4, v, ldv, S + r * lds, lds, c + r * ldc, ldc, left);
        switch (rows - r) {
#define PERCH_NEON_TAIL(n) \
    case n: perch_k4_tile_neon(n, vecSigned, K4, v, ldv, S + r * lds, lds, c + r * ldc, ldc, left); break;
        PERCH_NEON_TAIL(7) PERCH_NEON_TAIL(6) PERCH_NEON_TAIL(5) PERCH_NEON_TAIL(4)
        PERCH_NEON_TAIL(3) PERCH_NEON_TAIL(2) PERCH_NEON_TAIL(1)
#undef PERCH_NEON_TAIL
        default: break;
        }
    }
}

static inline void perch_qconv_k4_neon(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx, const int8_t *W, size_t ldw,
                                       int32_t *C, size_t ldc) {
    perch_k4_neon(0, N, P, K4, X, ldx, (const uint8_t *)W, ldw, C, ldc);
}

static inline void perch_qgemm_rm_neon(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda, const int8_t *B, size_t ldb,
                                       int32_t *C, size_t ldc) {
    perch_k4_neon(1, M, N, K4, (const uint8_t *)B, ldb, A, lda, C, ldc);
}

/// NEON depthwise row with int16 weights (|w| <= 32767; 8-bit weights minus their zero point):
/// uint8 widened to int16, smlal by the tap's weight straight into int32 (exact), 16 outputs
/// per step; other weights take perch_qdw_row_neon.
static inline void perch_qdw_row_neon16(const uint8_t *const *rows, const int32_t *w, size_t taps, size_t n, int32_t init,
                                        int32_t *acc) {
    for (size_t t = 0; t < taps; t++) {
        if (w[t] < -32768 || w[t] > 32767) {
            perch_qdw_row_neon(rows, w, taps, n, init, acc);
            return;
        }
    }
    size_t x = 0;
    for (; x + 16 <= n; x += 16) {
        int32x4_t a0 = vdupq_n_s32(init), a1 = a0, a2 = a0, a3 = a0;
        for (size_t t = 0; t < taps; t++) {
            uint8x16_t v = vld1q_u8(rows[t] + x);
            int16x8_t lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))), hi = vreinterpretq_s16_u16(vmovl_high_u8(v));
            int16_t wt = (int16_t)w[t];
            a0 = vmlal_n_s16(a0, vget_low_s16(lo), wt);
            a1 = vmlal_high_n_s16(a1, lo, wt);
            a2 = vmlal_n_s16(a2, vget_low_s16(hi), wt);
            a3 = vmlal_high_n_s16(a3, hi, wt);
        }
        vst1q_s32(acc + x, a0);
        vst1q_s32(acc + x + 4, a1);
        vst1q_s32(acc + x + 8, a2);
        vst1q_s32(acc + x + 12, a3);
    }
    for (; x + 8 <= n; x += 8) {
        int32x4_t a0 = vdupq_n_s32(init), a1 = a0;
        for (size_t t = 0; t < taps; t++) {
            int16x8_t v = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(rows[t] + x)));
            a0 = vmlal_n_s16(a0, vget_low_s16(v), (int16_t)w[t]);
            a1 = vmlal_high_n_s16(a1, v, (int16_t)w[t]);
        }
        vst1q_s32(acc + x, a0);
        vst1q_s32(acc + x + 4, a1);
    }
    for (; x < n; x++) {
        acc[x] = init;
        for (size_t t = 0; t < taps; t++) acc[x] += (int32_t)rows[t][x] * w[t];
    }
}

/// 4 lanes of perch_requant1 with per-lane shifts (left = max(shift, 0) saturating, right =
/// max(−shift, 0), given negated) and multipliers (>= 0): sqshl, then floor((x·m + k) / 2^31) with
/// k = 2^(30 + right) per 64-bit product (klo for lanes 0–1, khi for 2–3), then an arithmetic
/// shift right by `right`: perch_requant1's one rounding. Exact: every lane gives the scalar bits.
PERCH_NEON_INLINE int32x4_t perch_requant4_neon(int32x4_t x, int32x4_t vleft, int32x4_t vnegright, int64x2_t klo, int64x2_t khi,
                                                int32x4_t vmult, int32x4_t vzp, int32x4_t vlo, int32x4_t vhi) {
    x = vqshlq_s32(x, vleft);
    int64x2_t pl = vaddq_s64(vmull_s32(vget_low_s32(x), vget_low_s32(vmult)), klo);
    int64x2_t ph = vaddq_s64(vmull_high_s32(x, vmult), khi);
    int32x4_t y = vcombine_s32(vshrn_n_s64(pl, 31), vshrn_n_s64(ph, 31));
    y = vshlq_s32(y, vnegright);  // arithmetic shift right by `right`
    y = vaddq_s32(y, vzp);
    return vminq_s32(vmaxq_s32(y, vlo), vhi);
}

/// k = 2^(30 + right) for two lanes' products (right given negated, as 32-bit lanes).
PERCH_NEON_INLINE int64x2_t perch_requant_k_neon(int32x2_t vnegright) {
    return vshlq_s64(vdupq_n_s64(1), vaddq_s64(vmovl_s32(vneg_s32(vnegright)), vdupq_n_s64(30)));
}

/// Low bytes of 8 int32 lanes → 8 bytes.
PERCH_NEON_INLINE void perch_store8_lowbytes_neon(int32x4_t a, int32x4_t b, uint8_t *out) {
    vst1_u8(out, vmovn_u16(vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(a)), vmovn_u32(vreinterpretq_u32_s32(b)))));
}

/// NEON perch_qrequant_row (one multiplier): 8 at a time, scalar tail.
static inline void perch_qrequant_row_neon(const int32_t *acc, size_t n, int32_t add, int32_t mult, int32_t shift, int32_t zp,
                                           int32_t lo, int32_t hi, uint8_t *out) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32x4_t vleft = vdupq_n_s32(left), vnr = vdupq_n_s32(-right), vmult = vdupq_n_s32(mult), vzp = vdupq_n_s32(zp),
                    vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi), vadd = vdupq_n_s32(add);
    const int64x2_t k = vdupq_n_s64((int64_t)1 << (30 + right));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        int32x4_t a = perch_requant4_neon(vaddq_s32(vld1q_s32(acc + i), vadd), vleft, vnr, k, k, vmult, vzp, vlo, vhi);
        int32x4_t b = perch_requant4_neon(vaddq_s32(vld1q_s32(acc + i + 4), vadd), vleft, vnr, k, k, vmult, vzp, vlo, vhi);
        perch_store8_lowbytes_neon(a, b, out + i);
    }
    for (; i < n; i++) out[i] = (uint8_t)perch_requant1((int32_t)((uint32_t)acc[i] + (uint32_t)add), mult, shift, zp, lo, hi);
}

static inline void perch_qrequant_rows_neon(const int32_t *acc, size_t lda, size_t n, size_t rows, int32_t add, int32_t mult,
                                            int32_t shift, int32_t zp, int32_t lo, int32_t hi, uint8_t *out, size_t ldo) {
    for (size_t r = 0; r < rows; r++) perch_qrequant_row_neon(acc + r * lda, n, add, mult, shift, zp, lo, hi, out + r * ldo);
}

/// NEON perch_qrequant_cols (a multiplier and shift per column, any shift sign), scalar tail.
static inline void perch_qrequant_cols_neon(const int32_t *acc, size_t n, const int32_t *add, const int32_t *mult,
                                            const int32_t *shift, int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    const int32x4_t vzp = vdupq_n_s32(zp), vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi), z = vdupq_n_s32(0);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        int32x4_t r[2];
        PERCH_UNROLL
        for (int h = 0; h < 2; h++) {
            size_t o = j + 4 * (size_t)h;
            int32x4_t vs = vld1q_s32(shift + o);
            int32x4_t vleft = vmaxq_s32(vs, z), vnr = vminq_s32(vs, z);  // −right = min(shift, 0)
            r[h] = perch_requant4_neon(vaddq_s32(vld1q_s32(acc + o), vld1q_s32(add + o)), vleft, vnr,
                                       perch_requant_k_neon(vget_low_s32(vnr)), perch_requant_k_neon(vget_high_s32(vnr)),
                                       vld1q_s32(mult + o), vzp, vlo, vhi);
        }
        perch_store8_lowbytes_neon(r[0], r[1], out + j);
    }
    for (; j < n; j++)
        out[j] = (uint8_t)perch_requant1((int32_t)((uint32_t)acc[j] + (uint32_t)add[j]), mult[j], shift[j], zp, lo, hi);
}

#define PERCH_DOT_INLINE __attribute__((target("dotprod"), always_inline)) static inline

/// Loads 4 columns (16 bytes) of V, or the first `left` (< 4) of them, the others zero.
PERCH_NEON_INLINE uint8x16_t perch_k4_ld4col_dot(const uint8_t *v, size_t left) {
    if (left >= 4) return vld1q_u8(v);
    uint32x4_t x = vdupq_n_u32(0);
    x = vld1q_lane_u32((const uint32_t *)(const void *)v, x, 0);
    if (left > 1) x = vld1q_lane_u32((const uint32_t *)(const void *)(v + 4), x, 1);
    if (left > 2) x = vld1q_lane_u32((const uint32_t *)(const void *)(v + 8), x, 2);
    return vreinterpretq_u8_u32(x);
}

/// dotprod tile: R rows (<= 8) × 8 columns. V ^ 0x80 with SDOT (conv: V uint8 → x − 128, S int8;
/// + 128·Σs) or UDOT (row-major: V int8 → b + 128, S uint8; − 128·Σs). acc starts at the
/// correction, so the stored sums are exact.
PERCH_DOT_INLINE void perch_k4_tile_dot(int R, int vecSigned, size_t K4, const uint8_t *V, size_t ldv, const uint8_t *S,
                                        size_t lds, int32_t *C, size_t ldc, size_t left) {
    int32x4_t acc[8][2];
    PERCH_UNROLL
    for (int r = 0; r < R; r++) {
        const uint8_t *s = S + r * lds;
        int32_t sum = 0;
        if (vecSigned) {
            for (size_t k = 0; k < 4 * K4; k++) sum += s[k];
        } else {
            for (size_t k = 0; k < 4 * K4; k++) sum += (int8_t)s[k];
        }
        // uint32 arithmetic: the wrapped int32 sum, as the scalar kernel's.
        int32_t corr = (int32_t)((uint32_t)sum * 128u);
        acc[r][0] = acc[r][1] = vdupq_n_s32(vecSigned ? (int32_t)(0u - (uint32_t)corr) : corr);
    }
    const uint8x16_t flip = vdupq_n_u8(0x80);
    size_t left1 = left > 4 ? left - 4 : 0;
    for (size_t k4 = 0; k4 < K4; k4++) {
        const uint8_t *v = V + k4 * ldv * 4;
        uint8x16_t x0 = veorq_u8(perch_k4_ld4col_dot(v, left), flip);
        uint8x16_t x1 = left1 ? veorq_u8(perch_k4_ld4col_dot(v + 16, left1), flip) : flip;
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            uint32_t s4;
            memcpy(&s4, S + r * lds + 4 * k4, 4);
            uint8x16_t w = vreinterpretq_u8_u32(vdupq_n_u32(s4));
            if (vecSigned) {
                acc[r][0] = vreinterpretq_s32_u32(vdotq_u32(vreinterpretq_u32_s32(acc[r][0]), x0, w));
                acc[r][1] = vreinterpretq_s32_u32(vdotq_u32(vreinterpretq_u32_s32(acc[r][1]), x1, w));
            } else {
                acc[r][0] = vdotq_s32(acc[r][0], vreinterpretq_s8_u8(x0), vreinterpretq_s8_u8(w));
                acc[r][1] = vdotq_s32(acc[r][1], vreinterpretq_s8_u8(x1), vreinterpretq_s8_u8(w));
            }
        }
    }
    PERCH_UNROLL
    for (int r = 0; r < R; r++) perch_store8_s32_neon(C + r * ldc, acc[r][0], acc[r][1], left);
}

PERCH_DOT_INLINE void perch_k4_dot(int vecSigned, size_t rows, size_t cols, size_t K4, const uint8_t *V, size_t ldv,
                                   const uint8_t *S, size_t lds, int32_t *C, size_t ldc) {
    for (size_t p = 0; p < cols; p += 8) {
        size_t left = cols - p;
        const uint8_t *v = V + 4 * p;
        int32_t *c = C + p;
        size_t r = 0;
        for (; r + 8 <= rows; r += 8) perch_k4_tile_dot(8, vecSigned, K4, v, ldv, S + r * lds, lds, c + r * ldc, ldc, left);
        switch (rows - r) {
#define PERCH_DOT_TAIL(n) \
    case n: perch_k4_tile_dot(n, vecSigned, K4, v, ldv, S + r * lds, lds, c + r * ldc, ldc, left); break;
        PERCH_DOT_TAIL(7) PERCH_DOT_TAIL(6) PERCH_DOT_TAIL(5) PERCH_DOT_TAIL(4)
        PERCH_DOT_TAIL(3) PERCH_DOT_TAIL(2) PERCH_DOT_TAIL(1)
#undef PERCH_DOT_TAIL
        default: break;
        }
    }
}

__attribute__((target("dotprod"))) static inline void perch_qconv_k4_neondot(size_t N, size_t P, size_t K4, const uint8_t *X,
                                                                             size_t ldx, const int8_t *W, size_t ldw, int32_t *C,
                                                                             size_t ldc) {
    perch_k4_dot(0, N, P, K4, X, ldx, (const uint8_t *)W, ldw, C, ldc);
}

__attribute__((target("dotprod"))) static inline void perch_qgemm_rm_neondot(size_t M, size_t N, size_t K4, const uint8_t *A,
                                                                             size_t lda, const int8_t *B, size_t ldb, int32_t *C,
                                                                             size_t ldc) {
    perch_k4_dot(1, M, N, K4, (const uint8_t *)B, ldb, A, lda, C, ldc);
}
#define PERCH_I8MM_INLINE __attribute__((target("i8mm"), always_inline)) static inline

/// i8mm tile: USDOT multiplies uint8 by int8 directly (no flip, no correction). R rows (<= 8) ×
/// 8 columns; conv: V uint8 × S int8, row-major: S uint8 (broadcast) × V int8.
PERCH_I8MM_INLINE void perch_k4_tile_usdot(int R, int vecSigned, size_t K4, const uint8_t *V, size_t ldv, const uint8_t *S,
                                           size_t lds, int32_t *C, size_t ldc, size_t left) {
    int32x4_t acc[8][2];
    PERCH_UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
    size_t left1 = left > 4 ? left - 4 : 0;
    for (size_t k4 = 0; k4 < K4; k4++) {
        const uint8_t *v = V + k4 * ldv * 4;
        uint8x16_t x0 = perch_k4_ld4col_dot(v, left);
        uint8x16_t x1 = left1 ? perch_k4_ld4col_dot(v + 16, left1) : vdupq_n_u8(0);
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            uint32_t s4;
            memcpy(&s4, S + r * lds + 4 * k4, 4);
            uint8x16_t w = vreinterpretq_u8_u32(vdupq_n_u32(s4));
            if (vecSigned) {
                acc[r][0] = vusdotq_s32(acc[r][0], w, vreinterpretq_s8_u8(x0));
                acc[r][1] = vusdotq_s32(acc[r][1], w, vreinterpretq_s8_u8(x1));
            } else {
                acc[r][0] = vusdotq_s32(acc[r][0], x0, vreinterpretq_s8_u8(w));
                acc[r][1] = vusdotq_s32(acc[r][1], x1, vreinterpretq_s8_u8(w));
            }
        }
    }
    PERCH_UNROLL
    for (int r = 0; r < R; r++) perch_store8_s32_neon(C + r * ldc, acc[r][0], acc[r][1], left);
}

PERCH_I8MM_INLINE void perch_k4_usdot(int vecSigned, size_t rows, size_t cols, size_t K4, const uint8_t *V, size_t ldv,
                                      const uint8_t *S, size_t lds, int32_t *C, size_t ldc) {
    for (size_t p = 0; p < cols; p += 8) {
        size_t left = cols - p;
        const uint8_t *v = V + 4 * p;
        int32_t *c = C + p;
        size_t r = 0;
        for (; r + 8 <= rows; r += 8) perch_k4_tile_usdot(8, vecSigned, K4, v, ldv, S + r * lds, lds, c + r * ldc, ldc, left);
        switch (rows - r) {
#define PERCH_USDOT_TAIL(n) \
    case n: perch_k4_tile_usdot(n, vecSigned, K4, v, ldv, S + r * lds, lds, c + r * ldc, ldc, left); break;
        PERCH_USDOT_TAIL(7) PERCH_USDOT_TAIL(6) PERCH_USDOT_TAIL(5) PERCH_USDOT_TAIL(4)
        PERCH_USDOT_TAIL(3) PERCH_USDOT_TAIL(2) PERCH_USDOT_TAIL(1)
#undef PERCH_USDOT_TAIL
        default: break;
        }
    }
}

__attribute__((target("i8mm"))) static inline void perch_qconv_k4_i8mm(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx,
                                                                       const int8_t *W, size_t ldw, int32_t *C, size_t ldc) {
    perch_k4_usdot(0, N, P, K4, X, ldx, (const uint8_t *)W, ldw, C, ldc);
}

__attribute__((target("i8mm"))) static inline void perch_qgemm_rm_i8mm(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda,
                                                                       const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    perch_k4_usdot(1, M, N, K4, (const uint8_t *)B, ldb, A, lda, C, ldc);
}
#endif  // __aarch64__

#endif

#ifndef CPERCH_QCONV_TAPS_H
#define CPERCH_QCONV_TAPS_H
// Stride-1 int8 convolution without im2col. The input is padded once into the K4 layout of the
// GEMM kernels ([C/4][Hp·Wp][4] bytes: four channels of one padded pixel per 32-bit word), and
// output pixels are computed on the padded grid (p = oy·Wp + ox; the kW − 1 columns past outW of
// each row are computed and dropped). Tap (kh, kw) then reads that same buffer shifted by
// kh·dH·Wp + kw·dW pixels, so the GEMM's K loop runs over (tap, channel group) with a pointer
// offset per tap instead of reading a copied im2col matrix — im2col wrote and re-read 9× the
// input per 3×3 layer, a third of the time of VGG's convolutions.
//
// - perch_qconv_pad_k4: NCHW input (one group) → padded K4 buffer.
// - perch_qconv_taps_*: C[n][p] = Σ_t Σ_k4 W[n][t·K4 + k4] · X[k4][p + off[t]] (4-byte dot products).
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "CPerchQConv.h"

/// Pads channels 0..<C (planes inSize = inH·inW bytes apart, XORed with flip) into dst: group k4
/// at dst + k4·ldx·4, padded pixel (y, x) at word y·Wp + x; padding and channels ≥ C get `pad`.
/// ldx ≥ Hp·Wp (the caller leaves slack past it for the taps' reads).
static inline void perch_qconv_pad_k4(const uint8_t *x, size_t C, long inH, long inW, long pH, long pW, long Hp, long Wp,
                                      uint8_t flip, uint8_t pad, uint8_t *dst, size_t ldx) {
    size_t K4 = (C + 3) / 4, inSize = (size_t)(inH * inW);
    for (size_t k4 = 0; k4 < K4; k4++) {
        uint8_t *d = dst + k4 * ldx * 4;
        memset(d, pad, ldx * 4);
        size_t chans = C - 4 * k4 < 4 ? C - 4 * k4 : 4;
        for (long iy = 0; iy < inH && iy + pH < Hp; iy++) {
            long n = inW < Wp - pW ? inW : Wp - pW;
            if (n <= 0) continue;
            uint8_t *row = d + ((iy + pH) * Wp + pW) * 4;
            // One K4 group of one row: perch_interleave4 with K = chans (missing channels → 0).
            perch_interleave4(x + 4 * k4 * inSize + iy * inW, inSize, chans, (size_t)n, (size_t)n, flip, row);
        }
    }
}

/// Scalar reference.
static inline void perch_qconv_taps_scalar(size_t N, size_t P, size_t K4, size_t taps, const long *off, const uint8_t *X,
                                           size_t ldx, const int8_t *W, size_t ldw, int32_t *C, size_t ldc) {
    for (size_t n = 0; n < N; n++) {
        for (size_t p = 0; p < P; p++) {
            int32_t acc = 0;
            for (size_t t = 0; t < taps; t++) {
                for (size_t k4 = 0; k4 < K4; k4++) {
                    const uint8_t *x = X + (k4 * ldx + p + (size_t)off[t]) * 4;
                    const int8_t *w = W + n * ldw + (t * K4 + k4) * 4;
                    for (int j = 0; j < 4; j++) acc += (int32_t)x[j] * (int32_t)w[j];
                }
            }
            C[n * ldc + p] = acc;
        }
    }
}

/// Per-output-channel requantization done in a GEMM's epilogue (the `_q8` kernels): output
/// channel n (relative to the kernel's first weight row) is perch_requant1(acc + add[n], mult[n],
/// −right[n], zp, lo, hi). Right shifts only (0...31), as every convolution's multiplier below 1 is.
/// The int32 accumulators then never leave registers: the separate requantization pass re-read a
/// block of them from L2 (64 channels × 512 pixels is 128 KB) and took a third of a 1×1 conv's time.
/// The AVX-512 per-row epilogue reads each channel's constants ready-made: `mult64` (the multiplier
/// sign-extended), `shift64` (31 + right) and `round64` (2^(30 + right), plus zp·2^(31 + right) when
/// `zpFolded`: floor((x·m + k + zp·2^s) / 2^s) = floor((x·m + k) / 2^s) + zp exactly, so the zero
/// point costs nothing; folded only when every right ≤ 22, where the sum stays below 2^63). Built
/// per row they took four vector instructions per two rows, a fifth of the requantization.
typedef struct {
    const int32_t *add;
    const int32_t *mult;
    const int32_t *right;
    int32_t zp, lo, hi;
    const int64_t *mult64;
    const int64_t *round64;
    const int64_t *shift64;
    int32_t zpFolded;
} perch_qchannel_requant;

/// Scalar reference of the fused kernel: out[n·ldo + p] = requant(Σ_t Σ_k4 …) (bytes).
static inline void perch_qconv_taps_q8_scalar(size_t N, size_t P, size_t K4, size_t taps, const long *off, const uint8_t *X,
                                              size_t ldx, const int8_t *W, size_t ldw, const perch_qchannel_requant *rq,
                                              uint8_t *out, size_t ldo) {
    for (size_t n = 0; n < N; n++) {
        for (size_t p = 0; p < P; p++) {
            int32_t acc = rq->add[n];
            for (size_t t = 0; t < taps; t++) {
                for (size_t k4 = 0; k4 < K4; k4++) {
                    const uint8_t *x = X + (k4 * ldx + p + (size_t)off[t]) * 4;
                    const int8_t *w = W + n * ldw + (t * K4 + k4) * 4;
                    for (int j = 0; j < 4; j++) acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)x[j] * (int32_t)w[j]));
                }
            }
            out[n * ldo + p] = (uint8_t)perch_requant1(acc, rq->mult[n], -rq->right[n], rq->zp, rq->lo, rq->hi);
        }
    }
}

#if defined(__x86_64__)
/// Requantizes two output rows of 32 accumulators each (y0 y1: row 0, y2 y3: row 1) with their
/// channels' multipliers and stores 32 bytes per row under `mask` (row 1 only when o1 is set).
PERCH_AVX512_TARGET static inline __attribute__((always_inline)) void
perch_q8_store_rows(__m512i y0, __m512i y1, __m512i y2, __m512i y3, const perch_qchannel_requant *rq, size_t n, int two,
                    uint8_t *o0, uint8_t *o1, __mmask32 mask) {
    __m512i k = _mm512_set1_epi64(rq->round64[n]), vm = _mm512_set1_epi64(rq->mult64[n]);
    __m128i sh = _mm_loadl_epi64((const __m128i *)(const void *)(rq->shift64 + n));
    y0 = perch_requant16_right_raw_avx512(y0, vm, k, sh);
    y1 = perch_requant16_right_raw_avx512(y1, vm, k, sh);
    if (two) {
        k = _mm512_set1_epi64(rq->round64[n + 1]);
        vm = _mm512_set1_epi64(rq->mult64[n + 1]);
        sh = _mm_loadl_epi64((const __m128i *)(const void *)(rq->shift64 + n + 1));
        y2 = perch_requant16_right_raw_avx512(y2, vm, k, sh);
        y3 = perch_requant16_right_raw_avx512(y3, vm, k, sh);
    }
    if (!rq->zpFolded) {
        const __m512i vzp = _mm512_set1_epi32(rq->zp);
        y0 = _mm512_add_epi32(y0, vzp);
        y1 = _mm512_add_epi32(y1, vzp);
        y2 = _mm512_add_epi32(y2, vzp);
        y3 = _mm512_add_epi32(y3, vzp);
    }
    __m512i b = perch_pack64_clamped_avx512(y0, y1, y2, y3, rq->lo >= 0, _mm512_set1_epi8((char)rq->lo), _mm512_set1_epi8((char)rq->hi));
    _mm256_mask_storeu_epi8(o0, mask, _mm512_castsi512_si256(b));
    if (two) _mm256_mask_storeu_epi8(o1, mask, _mm512_extracti64x4_epi64(b, 1));
}

/// VNNI: tiles of 8 output channels × 32 pixels (16 accumulators; per K4 step two activation
/// vectors and eight broadcast weight words), the K loop over taps and channel groups. P tails are
/// masked (the masked-off lanes' addresses are never read). With `rq` the accumulators start at
/// the channels' `add` and leave as requantized bytes (out, row stride ldo); otherwise as int32 (C).
PERCH_AVX512_TARGET static inline __attribute__((always_inline)) void
perch_qconv_taps_vnni_body(size_t N, size_t P, size_t K4, size_t taps, const long *off, const uint8_t *X, size_t ldx,
                           const int8_t *W, size_t ldw, int32_t *C, size_t ldc, const perch_qchannel_requant *rq, uint8_t *out,
                           size_t ldo, size_t outW, size_t wp) {
    for (size_t p = 0; p < P; p += 32) {
        // Grid mode (outW = 0): pixel p is grid position p. Row mode: P output pixels of rows outW
        // long (a multiple of 16, so a vector never spans two rows) on a grid of rows wp long.
        size_t g0 = outW ? (p / outW) * wp + p % outW : p, g1 = outW ? ((p + 16) / outW) * wp + (p + 16) % outW : p + 16;
        size_t left = P - p;
        __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : (left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0);
        __mmask32 mb = (__mmask32)m0 | ((__mmask32)m1 << 16);
        size_t n = 0;
        for (; n + 8 <= N; n += 8) {
            const int8_t *wk = W + n * ldw;
            __m512i a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51, a60, a61, a70, a71;
#define PERCH_TAPS_INIT(r, c0, c1) c0 = c1 = rq ? _mm512_set1_epi32(rq->add[n + (r)]) : _mm512_setzero_si512();
            PERCH_TAPS_INIT(0, a00, a01) PERCH_TAPS_INIT(1, a10, a11) PERCH_TAPS_INIT(2, a20, a21)
            PERCH_TAPS_INIT(3, a30, a31) PERCH_TAPS_INIT(4, a40, a41) PERCH_TAPS_INIT(5, a50, a51)
            PERCH_TAPS_INIT(6, a60, a61) PERCH_TAPS_INIT(7, a70, a71)
#undef PERCH_TAPS_INIT
            for (size_t t = 0; t < taps; t++) {
                const uint8_t *xt0 = X + (g0 + (size_t)off[t]) * 4, *xt1 = X + (g1 + (size_t)off[t]) * 4;
                for (size_t k4 = 0; k4 < K4; k4++, wk += 4) {
                    __m512i x0 = _mm512_maskz_loadu_epi32(m0, xt0 + k4 * ldx * 4), x1 = _mm512_maskz_loadu_epi32(m1, xt1 + k4 * ldx * 4);
                    __m512i b;
#define PERCH_TAPS_ROW(r, c0, c1)                                             \
    b = _mm512_set1_epi32(*(const int32_t *)(const void *)(wk + (r) * ldw)); \
    c0 = _mm512_dpbusd_epi32(c0, x0, b);                                      \
    c1 = _mm512_dpbusd_epi32(c1, x1, b);
                    PERCH_TAPS_ROW(0, a00, a01) PERCH_TAPS_ROW(1, a10, a11) PERCH_TAPS_ROW(2, a20, a21)
                    PERCH_TAPS_ROW(3, a30, a31) PERCH_TAPS_ROW(4, a40, a41) PERCH_TAPS_ROW(5, a50, a51)
                    PERCH_TAPS_ROW(6, a60, a61) PERCH_TAPS_ROW(7, a70, a71)
#undef PERCH_TAPS_ROW
                }
            }
            if (rq) {
                uint8_t *o = out + n * ldo + p;
                perch_q8_store_rows(a00, a01, a10, a11, rq, n, 1, o, o + ldo, mb);
                perch_q8_store_rows(a20, a21, a30, a31, rq, n + 2, 1, o + 2 * ldo, o + 3 * ldo, mb);
                perch_q8_store_rows(a40, a41, a50, a51, rq, n + 4, 1, o + 4 * ldo, o + 5 * ldo, mb);
                perch_q8_store_rows(a60, a61, a70, a71, rq, n + 6, 1, o + 6 * ldo, o + 7 * ldo, mb);
                continue;
            }
            int32_t *c = C + n * ldc + p;
#define PERCH_TAPS_STORE(r, c0, c1)                  \
    _mm512_mask_storeu_epi32(c + (r) * ldc, m0, c0); \
    if (m1) _mm512_mask_storeu_epi32(c + (r) * ldc + 16, m1, c1);
            PERCH_TAPS_STORE(0, a00, a01) PERCH_TAPS_STORE(1, a10, a11) PERCH_TAPS_STORE(2, a20, a21)
            PERCH_TAPS_STORE(3, a30, a31) PERCH_TAPS_STORE(4, a40, a41) PERCH_TAPS_STORE(5, a50, a51)
            PERCH_TAPS_STORE(6, a60, a61) PERCH_TAPS_STORE(7, a70, a71)
#undef PERCH_TAPS_STORE
        }
        for (; n < N; n++) {
            const int8_t *wk = W + n * ldw;
            __m512i c0 = rq ? _mm512_set1_epi32(rq->add[n]) : _mm512_setzero_si512(), c1 = c0;
            for (size_t t = 0; t < taps; t++) {
                const uint8_t *xt0 = X + (g0 + (size_t)off[t]) * 4, *xt1 = X + (g1 + (size_t)off[t]) * 4;
                for (size_t k4 = 0; k4 < K4; k4++, wk += 4) {
                    __m512i b = _mm512_set1_epi32(*(const int32_t *)(const void *)wk);
                    c0 = _mm512_dpbusd_epi32(c0, _mm512_maskz_loadu_epi32(m0, xt0 + k4 * ldx * 4), b);
                    c1 = _mm512_dpbusd_epi32(c1, _mm512_maskz_loadu_epi32(m1, xt1 + k4 * ldx * 4), b);
                }
            }
            if (rq) {
                perch_q8_store_rows(c0, c1, c0, c1, rq, n, 0, out + n * ldo + p, 0, mb);
                continue;
            }
            int32_t *c = C + n * ldc + p;
            _mm512_mask_storeu_epi32(c, m0, c0);
            if (m1) _mm512_mask_storeu_epi32(c + 16, m1, c1);
        }
    }
}

/// The tap GEMM into int32 accumulators C (row stride ldc).
PERCH_AVX512_TARGET static inline void perch_qconv_taps_vnni(size_t N, size_t P, size_t K4, size_t taps, const long *off,
                                                             const uint8_t *X, size_t ldx, const int8_t *W, size_t ldw,
                                                             int32_t *C, size_t ldc) {
    perch_qconv_taps_vnni_body(N, P, K4, taps, off, X, ldx, W, ldw, C, ldc, 0, 0, 0, 0, 0);
}

/// The tap GEMM with the requantization fused (see perch_qchannel_requant): bytes into `out`.
PERCH_AVX512_TARGET static inline void perch_qconv_taps_q8_vnni(size_t N, size_t P, size_t K4, size_t taps, const long *off,
                                                                const uint8_t *X, size_t ldx, const int8_t *W, size_t ldw,
                                                                const perch_qchannel_requant *rq, uint8_t *out, size_t ldo) {
    perch_qconv_taps_vnni_body(N, P, K4, taps, off, X, ldx, W, ldw, 0, 0, rq, out, ldo, 0, 0);
}

/// The same over the valid output pixels only, for maps whose width `outW` is a multiple of 16:
/// pixel p (row p / outW) reads grid position (p / outW)·wp + p % outW, and `out` gets P
/// contiguous pixels per channel — the (kW − 1) padding columns of each grid row, 6% of a 32-wide
/// map's work and 12.5% of a 16-wide one's, are not computed.
PERCH_AVX512_TARGET static inline void perch_qconv_taps_rows_q8_vnni(size_t N, size_t P, size_t K4, size_t taps, const long *off,
                                                                     const uint8_t *X, size_t ldx, const int8_t *W, size_t ldw,
                                                                     const perch_qchannel_requant *rq, uint8_t *out, size_t ldo,
                                                                     size_t outW, size_t wp) {
    perch_qconv_taps_vnni_body(N, P, K4, taps, off, X, ldx, W, ldw, 0, 0, rq, out, ldo, outW, wp);
}

/// VNNI K4 conv GEMM (CPerchQConv.h's perch_qconv_k4_*): the tap GEMM with one tap at offset 0.
PERCH_AVX512_TARGET static inline void perch_qconv_k4_vnni(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx,
                                                           const int8_t *W, size_t ldw, int32_t *C, size_t ldc) {
    const long none = 0;
    perch_qconv_taps_vnni(N, P, K4, 1, &none, X, ldx, W, ldw, C, ldc);
}

/// The K4 conv GEMM with the requantization fused: bytes into `out` (row stride ldo).
PERCH_AVX512_TARGET static inline void perch_qconv_k4_q8_vnni(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx,
                                                              const int8_t *W, size_t ldw, const perch_qchannel_requant *rq,
                                                              uint8_t *out, size_t ldo) {
    const long none = 0;
    perch_qconv_taps_q8_vnni(N, P, K4, 1, &none, X, ldx, W, ldw, rq, out, ldo);
}
#endif

#endif

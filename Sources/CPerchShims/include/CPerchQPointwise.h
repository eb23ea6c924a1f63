#ifndef CPERCH_QPOINTWISE_H
#define CPERCH_QPOINTWISE_H
// 1×1 int8 convolution on small maps, pixels × channels. The NCHW kernels tile 32 pixels per
// vector pair, so a 10×10 map (100 pixels) computed 128 and a quarter of the GEMM was padding;
// here output channels fill the vectors (a multiple of 16 in every CNN) and pixels are the rows:
// C[p][n] = Σ_k X[k][p]·W[n][k], read straight from the K4 pack of the activations, requantized
// per channel (lanes) in the kernel's epilogue and transposed back to NCHW 16×16 bytes at a time.
//
// - perch_qconv_k4t_q8_*: out[m][n] = requant_n(Σ_k4 dot4(X[k4][m], B[k4][n])) with X in the K4
//   layout ([K4][ldx][4] bytes), B packed [K4][ldb][4] (ldb a multiple of 64, zero padded) and
//   the channels' requantization in a perch_qchannel_requant (CPerchQConvTaps.h).
// - perch_transpose_bytes: dst[c·dstStride + r] = src[r·srcStride + c].
#include <stdint.h>
#include <stddef.h>
#include "CPerchQDepthwise.h"
#include "CPerchQConvTaps.h"

/// Scalar reference.
static inline void perch_qconv_k4t_q8_scalar(size_t M, size_t N, size_t K4, const uint8_t *X, size_t ldx, const int8_t *B,
                                             size_t ldb, const perch_qchannel_requant *rq, uint8_t *out, size_t ldo) {
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            int32_t acc = rq->add[n];
            for (size_t k4 = 0; k4 < K4; k4++) {
                const uint8_t *x = X + (k4 * ldx + m) * 4;
                const int8_t *b = B + (k4 * ldb + n) * 4;
                for (int j = 0; j < 4; j++) acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)x[j] * (int32_t)b[j]));
            }
            out[m * ldo + n] = (uint8_t)perch_requant1(acc, rq->mult[n], -rq->right[n], rq->zp, rq->lo, rq->hi);
        }
    }
}

/// dst[c·dstStride + r] = src[r·srcStride + c] for r < rows, c < cols.
static inline void perch_transpose_bytes(const uint8_t *src, size_t rows, size_t cols, size_t srcStride, uint8_t *dst,
                                         size_t dstStride) {
    size_t r0 = 0;
#if defined(__x86_64__)
    if (rows >= 16 && cols >= 16) {
        for (; r0 < rows; r0 += 16) {
            if (r0 + 16 > rows) r0 = rows - 16;  // the last block overlaps the one before
            for (size_t c0 = 0; c0 < cols; c0 += 16) {
                if (c0 + 16 > cols) c0 = cols - 16;
                __m128i v[16];
                PERCH_UNROLL
                for (int i = 0; i < 16; i++) v[i] = _mm_loadu_si128((const __m128i *)(const void *)(src + (r0 + i) * srcStride + c0));
                perch_transpose16x16_bytes(v);
                PERCH_UNROLL
                for (int i = 0; i < 16; i++) _mm_storeu_si128((__m128i *)(void *)(dst + (c0 + i) * dstStride + r0), v[i]);
            }
        }
        return;
    }
#endif
    for (size_t r = r0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[c * dstStride + r] = src[r * srcStride + c];
}

#if defined(__x86_64__)
/// One pixel's 64 channels (the first `nvec` of four vectors of accumulators) requantized with
/// per-lane constants and stored as 64 bytes under `mask`: saturating packs, then the clamp on bytes.
PERCH_AVX512_TARGET static inline __attribute__((always_inline)) void
perch_q8_store_pixel(const __m512i *acc, const int nvec, const perch_requant16_lanes *q, __m512i vzp, int unsignedOut, __m512i lo8,
                     __m512i hi8, uint8_t *o, __mmask64 mask) {
    __m512i y[4];
    PERCH_UNROLL
    for (int j = 0; j < 4; j++) y[j] = j < nvec ? perch_requant16_lanes_unclamped(acc[j], &q[j], vzp) : vzp;  // vectors ≥ nvec: masked off
    __m512i b = perch_pack64_clamped_avx512(y[0], y[1], y[2], y[3], unsignedOut, lo8, hi8);
    _mm512_mask_storeu_epi8(o, mask, b);
}

/// One block of up to 64 channels (n..n+16·nvec) of perch_qconv_k4t_q8_vnni: tiles of 4 pixels ×
/// nvec vectors (started at the channels' `add`; per K4 step nvec weight vectors and 4 broadcast
/// activation words), requantized in the epilogue. A channel tail of 32 (96 = 64 + 32 channels)
/// runs two vectors instead of four, not multiply-adds on B's zero padding. N tails inside a vector
/// are masked (B is zero padded to ldb; the masked lanes' constants are never read).
PERCH_AVX512_TARGET static inline __attribute__((always_inline)) void
perch_qconv_k4t_q8_vnni_block(size_t M, size_t N, size_t n, const int nvec, size_t K4, const uint8_t *X, size_t ldx, const int8_t *B,
                              size_t ldb, const perch_qchannel_requant *rq, uint8_t *out, size_t ldo) {
    const __m512i vzp = _mm512_set1_epi32(rq->zp), lo8 = _mm512_set1_epi8((char)rq->lo), hi8 = _mm512_set1_epi8((char)rq->hi);
    const int unsignedOut = rq->lo >= 0;
    __mmask16 mk[4];
    __m512i add[4];
    perch_requant16_lanes q[4];
    for (int j = 0; j < 4; j++) {
        size_t lo = n + 16 * (size_t)j;
        mk[j] = j >= nvec || lo >= N ? 0 : (N - lo >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - lo)) - 1));
        int32_t mult[16] = {0}, right[16] = {0};
        for (int i = 0; i < 16; i++)
            if (mk[j] >> i & 1) {
                mult[i] = rq->mult[lo + (size_t)i];
                right[i] = rq->right[lo + (size_t)i];
            }
        q[j] = perch_requant16_lanes_make(mult, right);
        add[j] = mk[j] ? _mm512_maskz_loadu_epi32(mk[j], rq->add + lo) : _mm512_setzero_si512();
    }
    __mmask64 mb = (__mmask64)mk[0] | (__mmask64)mk[1] << 16 | (__mmask64)mk[2] << 32 | (__mmask64)mk[3] << 48;
    const int8_t *bp = B + n * 4;
    size_t m = 0;
    for (; m + 4 <= M; m += 4) {
        __m512i acc[4][4];
        PERCH_UNROLL
        for (int r = 0; r < 4; r++) {
            PERCH_UNROLL
            for (int j = 0; j < 4; j++) acc[r][j] = add[j];
        }
        for (size_t k4 = 0; k4 < K4; k4++) {
            const int8_t *b = bp + k4 * ldb * 4;
            __m512i bv[4];
            PERCH_UNROLL
            for (int j = 0; j < nvec; j++) bv[j] = _mm512_loadu_si512(b + 64 * j);
            const uint8_t *x = X + (k4 * ldx + m) * 4;
            PERCH_UNROLL
            for (int r = 0; r < 4; r++) {
                __m512i a = _mm512_set1_epi32(*(const int32_t *)(const void *)(x + 4 * r));
                PERCH_UNROLL
                for (int j = 0; j < nvec; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], a, bv[j]);
            }
        }
        PERCH_UNROLL
        for (int r = 0; r < 4; r++)
            perch_q8_store_pixel(acc[r], nvec, q, vzp, unsignedOut, lo8, hi8, out + (m + (size_t)r) * ldo + n, mb);
    }
    for (; m < M; m++) {
        __m512i acc[4] = {add[0], add[1], add[2], add[3]};
        for (size_t k4 = 0; k4 < K4; k4++) {
            const int8_t *b = bp + k4 * ldb * 4;
            __m512i a = _mm512_set1_epi32(*(const int32_t *)(const void *)(X + (k4 * ldx + m) * 4));
            PERCH_UNROLL
            for (int j = 0; j < nvec; j++) acc[j] = _mm512_dpbusd_epi32(acc[j], a, _mm512_loadu_si512(b + 64 * j));
        }
        perch_q8_store_pixel(acc, nvec, q, vzp, unsignedOut, lo8, hi8, out + m * ldo + n, mb);
    }
}

/// VNNI: out[m][n] for all N channels in blocks of 64 (the last one 16 to 64 wide).
PERCH_AVX512_TARGET static inline void perch_qconv_k4t_q8_vnni(size_t M, size_t N, size_t K4, const uint8_t *X, size_t ldx,
                                                               const int8_t *B, size_t ldb, const perch_qchannel_requant *rq,
                                                               uint8_t *out, size_t ldo) {
    for (size_t n = 0; n < N; n += 64) {
        switch (N - n >= 64 ? 4 : (int)((N - n + 15) / 16)) {
        case 4: perch_qconv_k4t_q8_vnni_block(M, N, n, 4, K4, X, ldx, B, ldb, rq, out, ldo); break;
        case 3: perch_qconv_k4t_q8_vnni_block(M, N, n, 3, K4, X, ldx, B, ldb, rq, out, ldo); break;
        case 2: perch_qconv_k4t_q8_vnni_block(M, N, n, 2, K4, X, ldx, B, ldb, rq, out, ldo); break;
        default: perch_qconv_k4t_q8_vnni_block(M, N, n, 1, K4, X, ldx, B, ldb, rq, out, ldo); break;
        }
    }
}
#endif

#endif

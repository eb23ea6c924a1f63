#ifndef CPERCH_QPOINTWISE_H
#define CPERCH_QPOINTWISE_H
// 1×1 int8 convolution on small maps, pixels × channels. The NCHW kernels tile 32 pixels per
// vector pair, so a 10×10 map (100 pixels) computed 128 and a quarter of the GEMM was padding;
// here output channels fill the vectors (a multiple of 16 in every CNN) and pixels are the rows:
// C[p][n] = Σ_k X[k][p]·W[n][k], read straight from the K4 pack of the activations, then
// requantized per channel (lanes) and transposed back to NCHW 16×16 bytes at a time.
//
// - perch_qconv_k4t_*: C[m][n] = Σ_k4 dot4(X[k4][m], B[k4][n]) with X in the K4 layout
//   ([K4][ldx][4] bytes) and B packed [K4][ldb][4] (ldb a multiple of 64, zero padded).
// - perch_transpose_bytes: dst[c·dstStride + r] = src[r·srcStride + c].
#include <stdint.h>
#include <stddef.h>
#include "CPerchQDepthwise.h"

/// Scalar reference.
static inline void perch_qconv_k4t_scalar(size_t M, size_t N, size_t K4, const uint8_t *X, size_t ldx, const int8_t *B, size_t ldb,
                                          int32_t *C, size_t ldc) {
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            int32_t acc = 0;
            for (size_t k4 = 0; k4 < K4; k4++) {
                const uint8_t *x = X + (k4 * ldx + m) * 4;
                const int8_t *b = B + (k4 * ldb + n) * 4;
                for (int j = 0; j < 4; j++) acc += (int32_t)x[j] * (int32_t)b[j];
            }
            C[m * ldc + n] = acc;
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
/// VNNI: tiles of 4 pixels × 64 channels (16 accumulators; per K4 step 4 weight vectors and 4
/// broadcast activation words). N tails are masked on the stores (B is zero padded to ldb).
PERCH_AVX512_TARGET static inline void perch_qconv_k4t_vnni(size_t M, size_t N, size_t K4, const uint8_t *X, size_t ldx,
                                                            const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    for (size_t n = 0; n < N; n += 64) {
        __mmask16 mk[4];
        for (int j = 0; j < 4; j++) {
            size_t lo = n + 16 * (size_t)j;
            mk[j] = lo >= N ? 0 : (N - lo >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - lo)) - 1));
        }
        const int8_t *bp = B + n * 4;
        size_t m = 0;
        for (; m + 4 <= M; m += 4) {
            __m512i acc[4][4];
            PERCH_UNROLL
            for (int r = 0; r < 4; r++) {
                PERCH_UNROLL
                for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_si512();
            }
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *b = bp + k4 * ldb * 4;
                __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64), b2 = _mm512_loadu_si512(b + 128),
                        b3 = _mm512_loadu_si512(b + 192);
                const uint8_t *x = X + (k4 * ldx + m) * 4;
                PERCH_UNROLL
                for (int r = 0; r < 4; r++) {
                    __m512i a = _mm512_set1_epi32(*(const int32_t *)(const void *)(x + 4 * r));
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, b0);
                    acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, b1);
                    acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], a, b2);
                    acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], a, b3);
                }
            }
            PERCH_UNROLL
            for (int r = 0; r < 4; r++) {
                PERCH_UNROLL
                for (int j = 0; j < 4; j++) _mm512_mask_storeu_epi32(C + (m + (size_t)r) * ldc + n + 16 * (size_t)j, mk[j], acc[r][j]);
            }
        }
        for (; m < M; m++) {
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *b = bp + k4 * ldb * 4;
                __m512i a = _mm512_set1_epi32(*(const int32_t *)(const void *)(X + (k4 * ldx + m) * 4));
                a0 = _mm512_dpbusd_epi32(a0, a, _mm512_loadu_si512(b));
                a1 = _mm512_dpbusd_epi32(a1, a, _mm512_loadu_si512(b + 64));
                a2 = _mm512_dpbusd_epi32(a2, a, _mm512_loadu_si512(b + 128));
                a3 = _mm512_dpbusd_epi32(a3, a, _mm512_loadu_si512(b + 192));
            }
            int32_t *c = C + m * ldc + n;
            _mm512_mask_storeu_epi32(c, mk[0], a0);
            _mm512_mask_storeu_epi32(c + 16, mk[1], a1);
            _mm512_mask_storeu_epi32(c + 32, mk[2], a2);
            _mm512_mask_storeu_epi32(c + 48, mk[3], a3);
        }
    }
}
#endif

#endif

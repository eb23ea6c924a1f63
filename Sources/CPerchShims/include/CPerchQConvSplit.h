#ifndef CPERCH_QCONV_SPLIT_H
#define CPERCH_QCONV_SPLIT_H
// The AVX2 conv GEMM on vpmaddubsw, kept exact by splitting the weights.
//
// vpmaddubsw multiplies uint8 activations by int8 weights and adds adjacent products into int16
// with saturation: a·w₁ + b·w₂ is exact only while |w₁| + |w₂| ≤ 128 (255·128 = 32640). ONNX
// Runtime's AVX2 kernel accepts the saturation (its outputs drift by several quantization steps);
// Perch splits each weight row once, when the layer is prepared:
//
//     W = S + R,   S: every pair with |w₁| + |w₂| > 128 halved (s = w / 2, truncated), R = W − S
//
// so S runs dense through vpmaddubsw → vpmaddwd(1) → vpaddd (3 ops per 32 products, against 4 for
// the exact int16 vpmaddwd kernel; on the Zen 3 this was measured on, ~8 G vector ops/s of any
// kind were the limit, not the multipliers)
// and the few nonzero 4-weight groups of R (|r| ≤ 64, so their pairs are exact too) are added to
// the same accumulators from a per-row list. Layers whose rows have many such groups (more than
// about one in seven: 1×1 layers with few inputs) keep perch_qconv_k4w16_avx2.
//
// Same contract as perch_qconv_k4_scalar with the unsplit W, except that whole blocks of 8 or 16
// columns are read from X and written to C: ldx and ldc must cover P rounded up to 16.
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "CPerchQConv.h"

/// The residual of a split row set: entries of row n are start[n] ..< start[n + 1], each a K4
/// group index and its 4 residual weights as one little-endian word.
typedef struct {
    const int32_t *start;
    const int32_t *group;
    const int32_t *weights;
} perch_qsplit_residual;

/// Splits N rows of 4·K4 int8 weights (stride ldw) into `safe` (same layout) and the residual
/// groups; returns how many groups the residual has (at most N·K4). `start` has N + 1 entries,
/// `group` and `weights` room for N·K4; pass NULL for all four outputs to only count.
static inline size_t perch_qsplit_weights(size_t N, size_t K4, const int8_t *W, size_t ldw, int8_t *safe, int32_t *start,
                                          int32_t *group, int32_t *weights) {
    size_t count = 0;
    for (size_t n = 0; n < N; n++) {
        if (start) start[n] = (int32_t)count;
        for (size_t g = 0; g < K4; g++) {
            const int8_t *w = W + n * ldw + 4 * g;
            int8_t s[4], r[4];
            int any = 0;
            for (int p = 0; p < 4; p += 2) {
                int a = w[p], b = w[p + 1];
                int over = (a < 0 ? -a : a) + (b < 0 ? -b : b) > 128;
                s[p] = (int8_t)(over ? a / 2 : a);
                s[p + 1] = (int8_t)(over ? b / 2 : b);
                r[p] = (int8_t)(a - s[p]);
                r[p + 1] = (int8_t)(b - s[p + 1]);
                any |= over;
            }
            if (safe) memcpy(safe + n * ldw + 4 * g, s, 4);
            if (any) {
                if (group) {
                    uint32_t packed = (uint32_t)(uint8_t)r[0] | (uint32_t)(uint8_t)r[1] << 8 | (uint32_t)(uint8_t)r[2] << 16 |
                                      (uint32_t)(uint8_t)r[3] << 24;
                    group[count] = (int32_t)g;
                    weights[count] = (int32_t)packed;
                }
                count++;
            }
        }
    }
    if (start) start[N] = (int32_t)count;
    return count;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define PERCH_QSPLIT_INLINE __attribute__((target("avx2"), always_inline)) static inline

/// Rows per tile (4 × 16 columns: 8 accumulators, two X vectors, the weight, a product and the
/// ones fit the 16 ymm registers; 6 rows spilled).
#define PERCH_QSPLIT_ROWS 4

/// R rows × 8G columns (G = 1 or 2): the dense S pass over all K4 groups, then each row's
/// residual groups, both into the same R·G accumulators (each lane: one column's exact sum).
PERCH_QSPLIT_INLINE void perch_qsplit_tile_avx2(int R, int G, size_t K4, const uint8_t *X, size_t ldx, const int8_t *S, size_t ldw,
                                                perch_qsplit_residual res, size_t row0, int32_t *C, size_t ldc) {
    __m256i acc[PERCH_QSPLIT_ROWS][2];
    const __m256i ones = _mm256_set1_epi16(1);
    PERCH_UNROLL
    for (int r = 0; r < R; r++)
        PERCH_UNROLL
        for (int g = 0; g < G; g++) acc[r][g] = _mm256_setzero_si256();
    for (size_t k4 = 0; k4 < K4; k4++) {
        const uint8_t *v = X + k4 * ldx * 4;
        __m256i x[2];
        PERCH_UNROLL
        for (int g = 0; g < G; g++) x[g] = _mm256_loadu_si256((const __m256i *)(const void *)(v + 32 * g));
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            int32_t w4;
            memcpy(&w4, S + r * ldw + 4 * k4, 4);
            __m256i w = _mm256_set1_epi32(w4);
            PERCH_UNROLL
            for (int g = 0; g < G; g++) acc[r][g] = _mm256_add_epi32(acc[r][g], _mm256_madd_epi16(_mm256_maddubs_epi16(x[g], w), ones));
        }
    }
    PERCH_UNROLL
    for (int r = 0; r < R; r++) {
        for (int32_t e = res.start[row0 + r]; e < res.start[row0 + r + 1]; e++) {
            const uint8_t *v = X + (size_t)res.group[e] * ldx * 4;
            __m256i w = _mm256_set1_epi32(res.weights[e]);
            PERCH_UNROLL
            for (int g = 0; g < G; g++)
                acc[r][g] = _mm256_add_epi32(
                    acc[r][g], _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(v + 32 * g)), w), ones));
        }
        PERCH_UNROLL
        for (int g = 0; g < G; g++) _mm256_storeu_si256((__m256i *)(void *)(C + r * ldc + 8 * g), acc[r][g]);
    }
}

PERCH_QSPLIT_INLINE void perch_qsplit_rows_avx2(size_t rows, int G, size_t K4, const uint8_t *X, size_t ldx, const int8_t *S, size_t ldw,
                                                perch_qsplit_residual res, size_t row0, int32_t *C, size_t ldc) {
    size_t r = 0;
#define PERCH_QSPLIT_TILE(R) perch_qsplit_tile_avx2(R, G, K4, X, ldx, S + r * ldw, ldw, res, row0 + r, C + r * ldc, ldc)
    for (; r + PERCH_QSPLIT_ROWS <= rows; r += PERCH_QSPLIT_ROWS) PERCH_QSPLIT_TILE(PERCH_QSPLIT_ROWS);
    switch (rows - r) {
    case 3: PERCH_QSPLIT_TILE(3); break;
    case 2: PERCH_QSPLIT_TILE(2); break;
    case 1: PERCH_QSPLIT_TILE(1); break;
    default: break;
    }
#undef PERCH_QSPLIT_TILE
}

/// `rows` rows of one column block of `cols` ≤ 16 columns: one vector of 8 columns when that
/// covers them (a 7×7 map's last block: 56 columns computed, not 64), else two.
PERCH_QSPLIT_INLINE void perch_qsplit_block_avx2(size_t rows, size_t cols, size_t K4, const uint8_t *X, size_t ldx, const int8_t *S,
                                                 size_t ldw, perch_qsplit_residual res, size_t row0, int32_t *C, size_t ldc) {
    if (cols <= 8) perch_qsplit_rows_avx2(rows, 1, K4, X, ldx, S, ldw, res, row0, C, ldc);
    else perch_qsplit_rows_avx2(rows, 2, K4, X, ldx, S, ldw, res, row0, C, ldc);
}

/// C[n][p] = Σ_k W[n][k]·X[k][p] for n < N, p < P (written up to P rounded to 8), from the split
/// S + R of W (perch_qsplit_weights; `res` indexes rows from 0 = S's first row), in blocks of 16
/// columns. Wide blocks (P ≥ 128) run each row tile over every column block (its weights stay in
/// L1); narrow ones all rows over each column block (the column slab of X stays in L1), as
/// perch_qconv_k4w16_avx2.
__attribute__((target("avx2"))) static inline void perch_qconv_split_avx2(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx,
                                                                         const int8_t *S, size_t ldw, perch_qsplit_residual res,
                                                                         int32_t *C, size_t ldc) {
    const size_t band = P >= 128 ? PERCH_QSPLIT_ROWS : N;  // rows per pass over the columns
    for (size_t r = 0; r < N; r += band) {
        size_t rows = N - r < band ? N - r : band;
        for (size_t p = 0; p < P; p += 16)
            perch_qsplit_block_avx2(rows, P - p, K4, X + 4 * p, ldx, S + r * ldw, ldw, res, r, C + r * ldc + p, ldc);
    }
}
#endif

#endif

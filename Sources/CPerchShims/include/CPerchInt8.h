#ifndef CPERCH_INT8_H
#define CPERCH_INT8_H
// int8 GEMM microkernels: C[m][n] = sum_k A[m][k] * B[n][k] with A uint8 (activations), B int8
// (weights), C int32. Both operands are K-contiguous ("dot product" layout), so one kernel serves
// MatMul (weights transposed once at prepare time) and Conv (im2col rows × filter rows).
//
// Every path computes the exact integer sum (no saturating i16 steps), so all ISAs agree bit for
// bit with the scalar reference. SIMD paths need K to be a multiple of PERCH_QGEMM_KALIGN and the
// rows padded with zeros to that length; the scalar path takes any K.
//
// Row ranges can be split between threads by offsetting A and C: each call touches only
// its M rows of C.
#include <stdint.h>
#include <stddef.h>

#define PERCH_QGEMM_KALIGN 64

enum {
    PERCH_CPU_AVX2 = 1,
    PERCH_CPU_AVX512VNNI = 2,
    PERCH_CPU_NEON = 4,
    PERCH_CPU_DOTPROD = 8,
    PERCH_CPU_I8MM = 16,
};

/// Scalar reference: the definition every SIMD path must match.
static inline void perch_qgemm_u8i8_scalar(size_t M, size_t N, size_t K, const uint8_t *A, size_t lda,
                                           const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            int32_t acc = 0;
            const uint8_t *a = A + m * lda;
            const int8_t *b = B + n * ldb;
            for (size_t k = 0; k < K; k++) acc += (int32_t)a[k] * (int32_t)b[k];
            C[m * ldc + n] = acc;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

static inline int perch_cpu_features(void) {
    int f = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= PERCH_CPU_AVX2;
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512f"))
        f |= PERCH_CPU_AVX512VNNI;
    return f;
}

__attribute__((target("avx2"))) static inline int32_t perch_hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/// AVX2: u8 and i8 widened to i16, multiplied and pair-summed exactly by vpmaddwd.
/// Tiles of 1 row of A × 4 rows of B.
__attribute__((target("avx2"))) static inline void perch_qgemm_u8i8_avx2(
    size_t M, size_t N, size_t K, const uint8_t *A, size_t lda, const int8_t *B, size_t ldb, int32_t *C,
    size_t ldc) {
    for (size_t m = 0; m < M; m++) {
        const uint8_t *a = A + m * lda;
        size_t n = 0;
        for (; n + 4 <= N; n += 4) {
            const int8_t *b0 = B + n * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
            for (size_t k = 0; k < K; k += 16) {
                __m256i av = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + k)));
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b0 + k)))));
                c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b1 + k)))));
                c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b2 + k)))));
                c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b3 + k)))));
            }
            int32_t *c = C + m * ldc + n;
            c[0] = perch_hsum256_epi32(c0);
            c[1] = perch_hsum256_epi32(c1);
            c[2] = perch_hsum256_epi32(c2);
            c[3] = perch_hsum256_epi32(c3);
        }
        for (; n < N; n++) {
            const int8_t *b = B + n * ldb;
            __m256i acc = _mm256_setzero_si256();
            for (size_t k = 0; k < K; k += 16) {
                __m256i av = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + k)));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(av, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + k)))));
            }
            C[m * ldc + n] = perch_hsum256_epi32(acc);
        }
    }
}

#define PERCH_VNNI_TARGET __attribute__((target("avx512vnni,avx512bw,avx512f")))

/// AVX-512 VNNI: vpdpbusd (u8 × i8, 4 products summed into i32, no saturation).
/// Tiles of 4 rows of A × 4 rows of B (16 accumulators), edges 1 × 1.
PERCH_VNNI_TARGET static inline int32_t perch_vnni_dot(const uint8_t *a, const int8_t *b, size_t K) {
    __m512i acc = _mm512_setzero_si512();
    for (size_t k = 0; k < K; k += 64)
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(a + k), _mm512_loadu_si512(b + k));
    return _mm512_reduce_add_epi32(acc);
}

PERCH_VNNI_TARGET static inline void perch_qgemm_u8i8_avx512vnni(
    size_t M, size_t N, size_t K, const uint8_t *A, size_t lda, const int8_t *B, size_t ldb, int32_t *C,
    size_t ldc) {
    size_t m = 0;
    for (; m + 4 <= M; m += 4) {
        const uint8_t *a0 = A + m * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        size_t n = 0;
        for (; n + 4 <= N; n += 4) {
            const int8_t *b0 = B + n * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00;
            __m512i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
            __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00;
            __m512i c30 = c00, c31 = c00, c32 = c00, c33 = c00;
            for (size_t k = 0; k < K; k += 64) {
                __m512i w0 = _mm512_loadu_si512(b0 + k), w1 = _mm512_loadu_si512(b1 + k);
                __m512i w2 = _mm512_loadu_si512(b2 + k), w3 = _mm512_loadu_si512(b3 + k);
                __m512i x = _mm512_loadu_si512(a0 + k);
                c00 = _mm512_dpbusd_epi32(c00, x, w0); c01 = _mm512_dpbusd_epi32(c01, x, w1);
                c02 = _mm512_dpbusd_epi32(c02, x, w2); c03 = _mm512_dpbusd_epi32(c03, x, w3);
                x = _mm512_loadu_si512(a1 + k);
                c10 = _mm512_dpbusd_epi32(c10, x, w0); c11 = _mm512_dpbusd_epi32(c11, x, w1);
                c12 = _mm512_dpbusd_epi32(c12, x, w2); c13 = _mm512_dpbusd_epi32(c13, x, w3);
                x = _mm512_loadu_si512(a2 + k);
                c20 = _mm512_dpbusd_epi32(c20, x, w0); c21 = _mm512_dpbusd_epi32(c21, x, w1);
                c22 = _mm512_dpbusd_epi32(c22, x, w2); c23 = _mm512_dpbusd_epi32(c23, x, w3);
                x = _mm512_loadu_si512(a3 + k);
                c30 = _mm512_dpbusd_epi32(c30, x, w0); c31 = _mm512_dpbusd_epi32(c31, x, w1);
                c32 = _mm512_dpbusd_epi32(c32, x, w2); c33 = _mm512_dpbusd_epi32(c33, x, w3);
            }
            int32_t *c = C + m * ldc + n;
            c[0] = _mm512_reduce_add_epi32(c00); c[1] = _mm512_reduce_add_epi32(c01);
            c[2] = _mm512_reduce_add_epi32(c02); c[3] = _mm512_reduce_add_epi32(c03);
            c += ldc;
            c[0] = _mm512_reduce_add_epi32(c10); c[1] = _mm512_reduce_add_epi32(c11);
            c[2] = _mm512_reduce_add_epi32(c12); c[3] = _mm512_reduce_add_epi32(c13);
            c += ldc;
            c[0] = _mm512_reduce_add_epi32(c20); c[1] = _mm512_reduce_add_epi32(c21);
            c[2] = _mm512_reduce_add_epi32(c22); c[3] = _mm512_reduce_add_epi32(c23);
            c += ldc;
            c[0] = _mm512_reduce_add_epi32(c30); c[1] = _mm512_reduce_add_epi32(c31);
            c[2] = _mm512_reduce_add_epi32(c32); c[3] = _mm512_reduce_add_epi32(c33);
        }
        for (; n < N; n++) {
            const int8_t *b = B + n * ldb;
            C[m * ldc + n] = perch_vnni_dot(a0, b, K);
            C[(m + 1) * ldc + n] = perch_vnni_dot(a1, b, K);
            C[(m + 2) * ldc + n] = perch_vnni_dot(a2, b, K);
            C[(m + 3) * ldc + n] = perch_vnni_dot(a3, b, K);
        }
    }
    for (; m < M; m++)
        for (size_t n = 0; n < N; n++) C[m * ldc + n] = perch_vnni_dot(A + m * lda, B + n * ldb, K);
}
#endif  // __x86_64__

#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif

static inline int perch_cpu_features(void) {
    int f = PERCH_CPU_NEON;
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) f |= PERCH_CPU_DOTPROD;
    if (getauxval(AT_HWCAP2) & HWCAP2_I8MM) f |= PERCH_CPU_I8MM;
#endif
    return f;
}

/// NEON: u8 widened to u16 (fits s16), i8 to s16, multiply-accumulate long into s32.
static inline int32_t perch_neon_dot(const uint8_t *a, const int8_t *b, size_t K) {
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
    for (size_t k = 0; k < K; k += 16) {
        uint8x16_t av = vld1q_u8(a + k);
        int8x16_t bv = vld1q_s8(b + k);
        int16x8_t alo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(av)));
        int16x8_t ahi = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(av)));
        int16x8_t blo = vmovl_s8(vget_low_s8(bv));
        int16x8_t bhi = vmovl_s8(vget_high_s8(bv));
        acc0 = vmlal_s16(acc0, vget_low_s16(alo), vget_low_s16(blo));
        acc1 = vmlal_s16(acc1, vget_high_s16(alo), vget_high_s16(blo));
        acc0 = vmlal_s16(acc0, vget_low_s16(ahi), vget_low_s16(bhi));
        acc1 = vmlal_s16(acc1, vget_high_s16(ahi), vget_high_s16(bhi));
    }
    return vaddvq_s32(vaddq_s32(acc0, acc1));
}

static inline void perch_qgemm_u8i8_neon(size_t M, size_t N, size_t K, const uint8_t *A, size_t lda,
                                         const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) C[m * ldc + n] = perch_neon_dot(A + m * lda, B + n * ldb, K);
}

/// dotprod (SDOT): A is flipped to signed (a - 128) with an XOR, so sum(a*b) = sdot + 128*sum(b);
/// the correction is exact in int32.
__attribute__((target("dotprod"))) static inline int32_t perch_neondot_dot(const uint8_t *a, const int8_t *b,
                                                                          size_t K) {
    const uint8x16_t flip = vdupq_n_u8(0x80);
    const int8x16_t ones = vdupq_n_s8(1);
    int32x4_t acc = vdupq_n_s32(0), bsum = vdupq_n_s32(0);
    for (size_t k = 0; k < K; k += 16) {
        int8x16_t av = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + k), flip));
        int8x16_t bv = vld1q_s8(b + k);
        acc = vdotq_s32(acc, av, bv);
        bsum = vdotq_s32(bsum, ones, bv);
    }
    return vaddvq_s32(acc) + 128 * vaddvq_s32(bsum);
}

__attribute__((target("dotprod"))) static inline void perch_qgemm_u8i8_neondot(
    size_t M, size_t N, size_t K, const uint8_t *A, size_t lda, const int8_t *B, size_t ldb, int32_t *C,
    size_t ldc) {
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) C[m * ldc + n] = perch_neondot_dot(A + m * lda, B + n * ldb, K);
}
#endif  // __aarch64__

#if !defined(__x86_64__) && !defined(__aarch64__)
static inline int perch_cpu_features(void) { return 0; }
#endif

#endif

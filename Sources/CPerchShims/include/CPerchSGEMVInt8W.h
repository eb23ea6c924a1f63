#ifndef CPERCH_SGEMV_INT8W_H
#define CPERCH_SGEMV_INT8W_H
// One float row times an int8 weight matrix kept in int8: c[j] = s_j · (Σ_p a[p]·q[p][j] −
// z_j·Σ_p a[p]), for a recurrent step's H·Rᵀ when R came quantized (ONNX Runtime's
// DynamicQuantizeLSTM). At batch 1 such a step is a matrix–vector product that streams all of R
// for 4·hidden² multiply-adds; a 512-wide LSTM's R is 4 MB a direction in float32, past L2, and
// 1 MB in int8, inside it. The weights are widened to float as they are loaded; the sums stay
// float32, so the result is as close to the dequantized float LSTM as float arithmetic is (no
// quantization of the activations).
//
// Layout (`perch_sgemv_i8w_pack`): 16-column panels, each kc rows of 16 int8 (row p of the
// panel at p·16), zero-padded past n. Every column's sum is one fused multiply-add per p in
// ascending order, from 0, in every variant; then t = fma(−z_j, Σa, sum) and c[j] = s_j·t. So
// all variants give the same bits (the scalar one is the reference).
#include <stddef.h>
#include <stdint.h>
#include "CPerchSGEMM.h"

/// Packs column j of the weights (q[p·ldq + j], or q[j·ldq + p] when `transposed`) into the
/// panel layout at dst (⌈n/16⌉·kc·16 bytes).
static inline void perch_sgemv_i8w_pack(long kc, long n, const int8_t *q, long ldq, int transposed, int8_t *dst) {
    for (long j0 = 0; j0 < n; j0 += 16) {
        int8_t *panel = dst + (j0 / 16) * kc * 16;
        for (long p = 0; p < kc; p++)
            for (long j = 0; j < 16; j++) {
                long col = j0 + j;
                panel[p * 16 + j] = col < n ? (transposed ? q[col * ldq + p] : q[p * ldq + col]) : 0;
            }
    }
}

/// The finish of one column: s·fma(−z, Σa, sum).
static inline float perch_sgemv_i8w_finish(float sum, float scale, float zero, float sumA) {
    return scale * __builtin_fmaf(-zero, sumA, sum);
}

/// Writes `cols` ≤ 16 finished columns from their sums.
static inline void perch_sgemv_i8w_store(const float *sums, long cols, const float *scale, const float *zero, float sumA, float *c) {
    for (long j = 0; j < cols; j++) c[j] = perch_sgemv_i8w_finish(sums[j], scale[j], zero ? zero[j] : 0.0f, sumA);
}

/// The reference. `zero` may be NULL (all zero points 0; `sumA` is then unused).
static inline void perch_sgemv_i8w_scalar(long kc, const float *a, const int8_t *packed, long n, const float *scale, const float *zero,
                                          float sumA, float *c) {
    for (long j0 = 0; j0 < n; j0 += 16) {
        const int8_t *panel = packed + (j0 / 16) * kc * 16;
        float acc[16];
        for (int j = 0; j < 16; j++) acc[j] = 0.0f;
        for (long p = 0; p < kc; p++)
            for (int j = 0; j < 16; j++) acc[j] = __builtin_fmaf(a[p], (float)panel[p * 16 + j], acc[j]);
        long cols = n - j0 < 16 ? n - j0 : 16;
        perch_sgemv_i8w_store(acc, cols, scale + j0, zero ? zero + j0 : 0, sumA, c + j0);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// 8 panels side by side (8 accumulator chains) into out[0..<128].
__attribute__((target("avx512f"))) static inline void perch_sgemv_i8w_group8_avx512(long kc, const float *a, const int8_t *panel,
                                                                                   float *out) {
    const long s = kc * 16;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
#define PERCH_W(i) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + (i) * s))))
    for (long p = 0; p < kc; p++) {
        const int8_t *b = panel + p * 16;
        __m512 av = _mm512_set1_ps(a[p]);
        c0 = _mm512_fmadd_ps(av, PERCH_W(0), c0);
        c1 = _mm512_fmadd_ps(av, PERCH_W(1), c1);
        c2 = _mm512_fmadd_ps(av, PERCH_W(2), c2);
        c3 = _mm512_fmadd_ps(av, PERCH_W(3), c3);
        c4 = _mm512_fmadd_ps(av, PERCH_W(4), c4);
        c5 = _mm512_fmadd_ps(av, PERCH_W(5), c5);
        c6 = _mm512_fmadd_ps(av, PERCH_W(6), c6);
        c7 = _mm512_fmadd_ps(av, PERCH_W(7), c7);
    }
    _mm512_storeu_ps(out, c0); _mm512_storeu_ps(out + 16, c1); _mm512_storeu_ps(out + 32, c2); _mm512_storeu_ps(out + 48, c3);
    _mm512_storeu_ps(out + 64, c4); _mm512_storeu_ps(out + 80, c5); _mm512_storeu_ps(out + 96, c6); _mm512_storeu_ps(out + 112, c7);
}

__attribute__((target("avx512f"))) static inline void perch_sgemv_i8w_group1_avx512(long kc, const float *a, const int8_t *panel,
                                                                                   float *out) {
    __m512 c0 = _mm512_setzero_ps();
    for (long p = 0; p < kc; p++) {
        const int8_t *b = panel + p * 16;
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[p]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)b))), c0);
    }
#undef PERCH_W
    _mm512_storeu_ps(out, c0);
}

__attribute__((target("avx512f"))) static inline void perch_sgemv_i8w_avx512(long kc, const float *a, const int8_t *packed, long n,
                                                                            const float *scale, const float *zero, float sumA, float *c) {
    const long panels = (n + 15) / 16, stride = kc * 16;
    float out[8 * 16];
    for (long q = 0; q < panels;) {
        long g = panels - q >= 8 ? 8 : 1;
        if (g == 8) perch_sgemv_i8w_group8_avx512(kc, a, packed + q * stride, out);
        else perch_sgemv_i8w_group1_avx512(kc, a, packed + q * stride, out);
        long cols = n - q * 16 < g * 16 ? n - q * 16 : g * 16;
        perch_sgemv_i8w_store(out, cols, scale + q * 16, zero ? zero + q * 16 : 0, sumA, c + q * 16);
        q += g;
    }
}

/// 4 panels side by side, two 8-column halves each (8 chains), into out[0..<64].
__attribute__((target("avx2,fma"))) static inline void perch_sgemv_i8w_group4_avx2(long kc, const float *a, const int8_t *panel,
                                                                                  float *out) {
    const long s = kc * 16;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
#define PERCH_W(off) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + (off)))))
    for (long p = 0; p < kc; p++) {
        const int8_t *b = panel + p * 16;
        __m256 av = _mm256_set1_ps(a[p]);
        c0 = _mm256_fmadd_ps(av, PERCH_W(0), c0);
        c1 = _mm256_fmadd_ps(av, PERCH_W(8), c1);
        c2 = _mm256_fmadd_ps(av, PERCH_W(s), c2);
        c3 = _mm256_fmadd_ps(av, PERCH_W(s + 8), c3);
        c4 = _mm256_fmadd_ps(av, PERCH_W(2 * s), c4);
        c5 = _mm256_fmadd_ps(av, PERCH_W(2 * s + 8), c5);
        c6 = _mm256_fmadd_ps(av, PERCH_W(3 * s), c6);
        c7 = _mm256_fmadd_ps(av, PERCH_W(3 * s + 8), c7);
    }
    _mm256_storeu_ps(out, c0); _mm256_storeu_ps(out + 8, c1); _mm256_storeu_ps(out + 16, c2); _mm256_storeu_ps(out + 24, c3);
    _mm256_storeu_ps(out + 32, c4); _mm256_storeu_ps(out + 40, c5); _mm256_storeu_ps(out + 48, c6); _mm256_storeu_ps(out + 56, c7);
}

__attribute__((target("avx2,fma"))) static inline void perch_sgemv_i8w_group1_avx2(long kc, const float *a, const int8_t *panel,
                                                                                  float *out) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    for (long p = 0; p < kc; p++) {
        const int8_t *b = panel + p * 16;
        __m256 av = _mm256_set1_ps(a[p]);
        c0 = _mm256_fmadd_ps(av, PERCH_W(0), c0);
        c1 = _mm256_fmadd_ps(av, PERCH_W(8), c1);
    }
#undef PERCH_W
    _mm256_storeu_ps(out, c0); _mm256_storeu_ps(out + 8, c1);
}

__attribute__((target("avx2,fma"))) static inline void perch_sgemv_i8w_avx2(long kc, const float *a, const int8_t *packed, long n,
                                                                           const float *scale, const float *zero, float sumA, float *c) {
    const long panels = (n + 15) / 16, stride = kc * 16;
    float out[4 * 16];
    for (long q = 0; q < panels;) {
        long g = panels - q >= 4 ? 4 : 1;
        if (g == 4) perch_sgemv_i8w_group4_avx2(kc, a, packed + q * stride, out);
        else perch_sgemv_i8w_group1_avx2(kc, a, packed + q * stride, out);
        long cols = n - q * 16 < g * 16 ? n - q * 16 : g * 16;
        perch_sgemv_i8w_store(out, cols, scale + q * 16, zero ? zero + q * 16 : 0, sumA, c + q * 16);
        q += g;
    }
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

/// 2 panels side by side, four 4-column quarters each (8 chains), into out[0..<32].
static inline void perch_sgemv_i8w_group2_neon(long kc, const float *a, const int8_t *panel, float *out) {
    const long s = kc * 16;
    float32x4_t acc[8];
    for (int i = 0; i < 8; i++) acc[i] = vdupq_n_f32(0.0f);
    for (long p = 0; p < kc; p++) {
        const int8_t *b = panel + p * 16;
        float32x4_t av = vdupq_n_f32(a[p]);
        for (int h = 0; h < 2; h++) {
            int8x16_t q = vld1q_s8(b + h * s);
            int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
            acc[4 * h + 0] = vfmaq_f32(acc[4 * h + 0], av, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))));
            acc[4 * h + 1] = vfmaq_f32(acc[4 * h + 1], av, vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))));
            acc[4 * h + 2] = vfmaq_f32(acc[4 * h + 2], av, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))));
            acc[4 * h + 3] = vfmaq_f32(acc[4 * h + 3], av, vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))));
        }
    }
    for (int i = 0; i < 8; i++) vst1q_f32(out + 4 * i, acc[i]);
}

static inline void perch_sgemv_i8w_neon(long kc, const float *a, const int8_t *packed, long n, const float *scale, const float *zero,
                                        float sumA, float *c) {
    const long panels = (n + 15) / 16, stride = kc * 16;
    float out[2 * 16];
    long q = 0;
    for (; q + 2 <= panels; q += 2) {
        perch_sgemv_i8w_group2_neon(kc, a, packed + q * stride, out);
        long cols = n - q * 16 < 32 ? n - q * 16 : 32;
        perch_sgemv_i8w_store(out, cols, scale + q * 16, zero ? zero + q * 16 : 0, sumA, c + q * 16);
    }
    if (q < panels) perch_sgemv_i8w_scalar(kc, a, packed + q * stride, n - q * 16, scale + q * 16, zero ? zero + q * 16 : 0, sumA, c + q * 16);
}
#endif

/// perch_sgemv_i8w_* for GEMM variant `variant` (perch_sgemm_best()'s choice).
static inline void perch_sgemv_i8w(int variant, long kc, const float *a, const int8_t *packed, long n, const float *scale,
                                   const float *zero, float sumA, float *c) {
    switch (variant) {
#if defined(__x86_64__)
    case PERCH_SGEMM_AVX512: perch_sgemv_i8w_avx512(kc, a, packed, n, scale, zero, sumA, c); return;
    case PERCH_SGEMM_AVX2: perch_sgemv_i8w_avx2(kc, a, packed, n, scale, zero, sumA, c); return;
#elif defined(__aarch64__)
    case PERCH_SGEMM_NEON: perch_sgemv_i8w_neon(kc, a, packed, n, scale, zero, sumA, c); return;
#endif
    default: perch_sgemv_i8w_scalar(kc, a, packed, n, scale, zero, sumA, c); return;
    }
}

#endif
